"""The partner console's audit log: every change to the partner's brand, domains, plans, team, sign-on and clients."""

from __future__ import annotations

from django.views.decorators.http import require_safe

from tenants import selectors
from tenants.decorators import partner_role_required
from tenants.forms import PartnerAuditFilterForm
from tenants.models import Role
from tenants.views.support import render_page


@require_safe
@partner_role_required(Role.PARTNER_ADMIN)
def partner_audit_log(request):
    form = PartnerAuditFilterForm(request.GET, groups=selectors.partner_audit_action_groups(request.partner))
    events, next_cursor = selectors.partner_audit_events(
        request.partner, **form.filters(), after=request.GET.get("after", "")
    )
    context = {
        "form": form,
        "events": events,
        "next_cursor": next_cursor,
        "paged": bool(request.GET.get("after")),
        "section": "audit",
    }
    return render_page(request, "tenants/audit.html", context, partial="events")
