"""The partner's plans: what it sells, with limits and service levels."""

from __future__ import annotations

from django.contrib import messages
from django.db.models import Count
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.views.decorators.http import require_POST

from tenants import services
from tenants.decorators import partner_role_required
from tenants.forms import PlanForm
from tenants.models import PLAN_FIELDS, Plan, Role
from tenants.views.support import redirect_to, refusal_said, render_page


@partner_role_required(Role.PARTNER_ADMIN)
def plan_list(request):
    plans = Plan.objects.filter(partner=request.partner).annotate(client_count=Count("clients"))
    return render_page(request, "tenants/plans.html", {"plans": plans, "section": "plans"})


@partner_role_required(Role.PARTNER_ADMIN)
def plan_new(request):
    return _plan_form(request, Plan(partner=request.partner))


@partner_role_required(Role.PARTNER_ADMIN)
def plan_edit(request, pk):
    return _plan_form(request, get_object_or_404(Plan, partner=request.partner, pk=pk))


def _plan_form(request, plan: Plan):
    form = PlanForm(request.POST or None, instance=plan, partner=request.partner)
    if request.method == "POST" and form.is_valid():
        values = {field: form.cleaned_data[field] for field in PLAN_FIELDS}
        if plan.pk:
            services.plan_update(plan=plan, values=values, actor=request.user)
            messages.success(request, f"{plan.name} saved; clients on it have the new limits now.")
        else:
            plan = services.plan_create(partner=request.partner, values=values, actor=request.user)
            messages.success(
                request, f"{plan.name} created. Put clients on it from their page or when you create them."
            )
        return redirect_to(request, reverse("partner_plans"))
    context = {"form": form, "plan": plan, "section": "plans"}
    status = 422 if form.is_bound and form.errors else 200
    return render_page(request, "tenants/plan_form.html", context, partial="plan_form", status=status)


@require_POST
@partner_role_required(Role.PARTNER_ADMIN)
def plan_delete(request, pk):
    plan = get_object_or_404(Plan, partner=request.partner, pk=pk)
    with refusal_said(request, services.PlanInUse):
        services.plan_delete(plan=plan, actor=request.user)
        messages.success(request, f"{plan.name} deleted.")
    return redirect_to(request, reverse("partner_plans"))
