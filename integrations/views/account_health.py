"""The CRM fields a delivery-health flow writes: which ones, whether the CRM has them, and mapping to its own."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_http_methods

from connectors.base import ConnectorError
from integrations.forms.account_health import AccountFieldsForm
from integrations.models import Flow
from integrations.selectors.labels import vendor_label
from integrations.services.account_health import (
    ACCOUNT_HEALTH,
    FIGURES,
    account_health_fields_set,
    account_health_step,
    field_names,
)
from integrations.services.connections import connector_for
from integrations.views.support import redirect_to, render_page, url
from tenants.decorators import WORKSPACE_ALL, WORKSPACE_EDITORS, workspace_role_required


@require_http_methods(["GET", "HEAD", "POST"])
@workspace_role_required(WORKSPACE_ALL)
def account_fields(request, client_slug, pk):
    flow = get_object_or_404(Flow.objects.select_related("source_connection"), pk=pk, entity=ACCOUNT_HEALTH)
    step = account_health_step(flow)
    if step is None or step.target_connection is None:
        raise Http404("This flow has no CRM to write to.")
    crm = step.target_connection
    system = vendor_label(crm.vendor)
    connector = connector_for(crm)
    defaults = {figure.key: connector.account_field_name(figure.key) for figure in FIGURES}
    mapped = dict((step.options or {}).get("fields") or {})
    crm_fields, unreachable = {}, ""
    try:
        crm_fields = connector.account_fields()
    except (ConnectorError, OSError) as error:
        unreachable = f"{system} could not be asked which fields its accounts have: {error}"
    editing = request.method == "POST"
    if editing and request.workspace_role not in WORKSPACE_EDITORS:
        raise PermissionDenied("Only the workspace's administrators choose the CRM fields.")
    form = AccountFieldsForm(
        request.POST if editing else None, defaults=defaults, mapped=mapped, crm_fields=crm_fields, system=system
    )
    if editing and form.is_valid():
        account_health_fields_set(step=step, fields=form.mapping(), actor=request.user)
        messages.success(request, f"Saved: the next run writes the figures to the {system} fields chosen.")
        return redirect_to(request, url(request, "account_fields", flow.pk))
    names = field_names(step=step, connector=connector)
    rows = [
        {
            "figure": figure,
            "field": form[figure.key],
            "name": names.get(figure.key, ""),
            "present": names.get(figure.key, "") in crm_fields,
            "custom": names.get(figure.key) == defaults[figure.key],
        }
        for figure in FIGURES
    ]
    context = {
        "flow": flow,
        "crm": crm,
        "system": system,
        "form": form,
        "rows": rows,
        "unreachable": unreachable,
        "object_name": step.target_object,
        "section": "flows",
    }
    return render_page(request, "integrations/flows/account_fields.html", context)
