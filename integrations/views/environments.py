"""Promoting a Sandbox flow to Production: the diff of what changes, the Production connections, the promotion."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import get_object_or_404

from integrations.models import Environment, Flow
from integrations.services.environments import flow_promote, promotion_preview
from integrations.services.flows import FlowConfigurationError
from integrations.views.support import redirect_to, render_page, url
from tenants.decorators import WORKSPACE_EDITORS, workspace_role_required
from tenants.plans import PlanLimitReached


def _chosen(data) -> dict[str, int]:
    """The Production connection picked for each role ("bind-<role>" fields)."""
    chosen = {}
    for name, value in data.items():
        if name.startswith("bind-") and value.isascii() and value.isdigit():
            chosen[name.removeprefix("bind-")] = int(value)
    return chosen


# Promoting changes what Production writes to the client's books: the people who may change flows there
# (client admins and the partner's staff), never finance or viewers, may see the diff and promote.
@workspace_role_required(WORKSPACE_EDITORS)
def flow_promote_view(request, client_slug, pk):
    flow = get_object_or_404(Flow.objects.select_related("source_connection"), pk=pk)
    if flow.environment != Environment.SANDBOX:
        messages.error(request, f"“{flow.name}” runs in Production already: flows are promoted from Sandbox.")
        return redirect_to(request, url(request, "flow_detail", flow.pk))
    data = request.POST if request.method == "POST" else request.GET
    chosen = _chosen(data)
    error = ""
    if request.method == "POST":
        try:
            promotion = flow_promote(
                flow=flow, chosen=chosen, fingerprint=request.POST.get("fingerprint", ""), actor=request.user
            )
        except (FlowConfigurationError, PlanLimitReached) as refused:  # PromotionRefused, or the install's own
            error = getattr(refused, "message", None) or str(refused)
        else:
            count = len(promotion.changes)
            messages.success(
                request,
                f"“{flow.name}” is promoted: Production runs it with {count} change{'s' if count != 1 else ''}.",
            )
            return redirect_to(request, url(request, "flow_detail", promotion.production.pk))
    preview = promotion_preview(flow=flow, chosen=chosen)
    context = {"flow": flow, "preview": preview, "error": error, "section": "flows"}
    return render_page(request, "integrations/flows/promote.html", context, status=422 if error else 200)
