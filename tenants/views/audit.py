"""The partner console's audit log: every change to the partner's brand, domains, plans, team, sign-on and clients."""

from __future__ import annotations

from functools import partial

from django.views.decorators.http import require_safe

from portal.audit_log import audit_page_context
from tenants.decorators import partner_role_required
from tenants.forms import PartnerAuditFilterForm
from tenants.models import Role
from tenants.selectors.audit import partner_audit_action_groups, partner_audit_events
from tenants.views.support import render_page


@require_safe
@partner_role_required(Role.PARTNER_ADMIN)
def partner_audit_log(request):
    form = PartnerAuditFilterForm(request.GET, groups=partner_audit_action_groups(request.partner))
    context = audit_page_context(request, form, partial(partner_audit_events, request.partner))
    return render_page(request, "tenants/audit.html", context, partial="events")
