"""The partner console's clients: the list with health at a glance, creation, health page, suspension."""

from __future__ import annotations

from django.contrib import messages
from django.db.models import Q
from django.urls import reverse
from django.views.decorators.http import require_POST

from integrations.selectors.client_health import client_health, clients_health
from tenants import services
from tenants.decorators import partner_role_required
from tenants.forms import ClientCreateForm, ClientPlanForm
from tenants.models import Membership, Plan, Role
from tenants.models.changes import OPEN_STATUSES
from tenants.selectors.access import workspaces_for
from tenants.selectors.changes import change_requests_of
from tenants.selectors.people import client_members
from tenants.selectors.revenue import partner_mrr, subscription_of
from tenants.selectors.usage import usage_as_of
from tenants.views.support import (
    is_partner_admin,
    partner_client,
    reachable_client,
    redirect_to,
    render_page,
    wants_partial,
)

STATUS_FILTERS = {"": "All clients", "attention": "Needs attention", "active": "Active", "suspended": "Suspended"}


@partner_role_required(Role.PARTNER_ADMIN, Role.PARTNER_STAFF)
def partner_home(request):
    """Clients the user may reach, with health at a glance; partner admins also see MRR."""
    admin = is_partner_admin(request)
    reachable = workspaces_for(request.user, request.partner).select_related("plan")
    query = request.GET.get("q", "").strip()[:80]
    status = request.GET.get("status", "")
    status = status if status in STATUS_FILTERS else ""
    listed = reachable
    if query:
        listed = listed.filter(Q(name__icontains=query) | Q(slug__icontains=query))
    if status in ("active", "suspended"):
        listed = listed.filter(status=status)
    healths = clients_health(listed)
    if status == "attention":
        healths = [health for health in healths if health.needs_attention]
    context = {
        "membership": request.partner_membership,
        "is_admin": admin,
        "healths": healths,
        "query": query,
        "status": status,
        "status_filters": STATUS_FILTERS,
        "filtered": bool(query or status),
        "section": "clients",
        "has_plans": Plan.objects.filter(partner=request.partner).exists(),
    }
    if wants_partial(request):
        return render_page(request, "tenants/partner_home.html", context, partial="client_table")
    everyone = healths if not context["filtered"] else clients_health(reachable)
    context.update(
        client_count=len(everyone),
        suspended_count=sum(1 for health in everyone if health.client.is_suspended),
        attention_count=sum(1 for health in everyone if health.needs_attention),
        open_exceptions=sum(health.open_exceptions for health in everyone),
        records_this_month=sum(health.records_this_month for health in everyone),
        included_this_month=sum(health.included_records or 0 for health in everyone),
        usage_as_of=usage_as_of(health.usage for health in everyone),
    )
    if admin:
        context["mrr"] = partner_mrr(request.partner)
    return render_page(request, "tenants/partner_home.html", context)


@partner_role_required(Role.PARTNER_ADMIN)
def client_new(request):
    form = ClientCreateForm(request.POST or None, partner=request.partner)
    if request.method == "POST" and form.is_valid():
        client = services.client_create(partner=request.partner, actor=request.user, **form.cleaned_data)
        messages.success(
            request,
            f"{client.name} is ready at {client.path}; an invitation went to {form.cleaned_data['admin_email']}.",
        )
        return redirect_to(request, reverse("partner_client", args=[client.slug]))
    context = {"form": form, "section": "clients", "has_plans": form.fields["plan"].queryset.exists()}
    return render_page(request, "tenants/client_new.html", context, partial="client_form", status=_status(form))


def _status(form) -> int:
    return 422 if form.is_bound and form.errors else 200


@partner_role_required(Role.PARTNER_ADMIN, Role.PARTNER_STAFF)
def client_detail(request, slug):
    """A client's health against its plan: partner admins and the staff assigned to it."""
    client = reachable_client(request, slug)
    health = client_health(client, with_activity=True)
    context = {
        "this_client": client,
        "health": health,
        "plan": health.plan,
        "members": client_members(client),
        "assigned_staff": Membership.objects.filter(
            partner=request.partner, role=Role.PARTNER_STAFF, assigned_clients=client
        ).select_related("user"),
        "is_admin": is_partner_admin(request),
        "open_changes": change_requests_of(client).filter(status__in=OPEN_STATUSES).count(),
        "section": "clients",
    }
    if context["is_admin"]:
        context["plan_form"] = ClientPlanForm(partner=request.partner, initial={"plan": client.plan_id})
        context["subscription"] = subscription_of(client)
        context["subscription_term"] = context["subscription"].current_term if context["subscription"] else None
    return render_page(request, "tenants/client_detail.html", context)


@require_POST
@partner_role_required(Role.PARTNER_ADMIN)
def client_suspend(request, slug):
    client = services.client_suspend(client=partner_client(request, slug), actor=request.user)
    messages.success(request, f"{client.name} is suspended: its syncs stop and its users see a notice.")
    return redirect_to(request, reverse("partner_client", args=[client.slug]))


@require_POST
@partner_role_required(Role.PARTNER_ADMIN)
def client_resume(request, slug):
    client = services.client_resume(client=partner_client(request, slug), actor=request.user)
    messages.success(request, f"{client.name} is active again; its syncs resume on schedule.")
    return redirect_to(request, reverse("partner_client", args=[client.slug]))


@require_POST
@partner_role_required(Role.PARTNER_ADMIN)
def client_plan_change(request, slug):
    client = partner_client(request, slug)
    form = ClientPlanForm(request.POST, partner=request.partner)
    if form.is_valid():
        plan = form.cleaned_data["plan"]
        if plan.pk != client.plan_id:
            services.client_plan_change(client=client, plan=plan, actor=request.user)
            messages.success(request, f"{client.name} is now on {plan.name}; its limits changed at once.")
    else:
        messages.error(request, "Choose one of your plans.")
    return redirect_to(request, reverse("partner_client", args=[client.slug]))
