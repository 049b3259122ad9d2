"""Dashboards: exceptions against the SLA, utilization, margin and sync health, as SVG charts with tables."""

from __future__ import annotations

from datetime import date

from django.core.cache import cache
from django.template.loader import render_to_string
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_safe

from integrations import dashboard_cache
from integrations.charts import exceptions_charts, margin_charts, sync_charts, utilization_charts
from integrations.views.support import render_page, sla_hours
from tenants.decorators import WORKSPACE_ALL, workspace_role_required


def _choice(value: str | None, allowed: tuple[int, ...], default: int) -> int:
    return int(value) if value and value.isascii() and value.isdigit() and int(value) in allowed else default


def _date(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def _dashboard(request, name: str, params: dict, template: str, build, *, tab: str, variant: str = ""):
    """A dashboard page whose body (figures, charts, tables: the same for everyone in the workspace)
    is rendered once per computation of its figures and kept beside them in the shared cache; a
    request renders only the page around it. `variant`: what else the body depends on."""
    body_key = f"{dashboard_cache.dashboard_key(name, params)}:body:{variant}"
    computed_at, found = dashboard_cache.dashboard_peek(name, params, body_key)
    body = found.get(body_key)
    if body is None or computed_at is None or body[0] != computed_at:
        data = dashboard_cache.dashboard_figures(name, params)
        # Only what is the same for everyone in the workspace: never the user or their role.
        context = {"client": request.client, "sla_hours": sla_hours(request), "data": data, "tab": tab, **build(data)}
        body = (data["computed_at"], render_to_string(f"{template}#body", context))
        cache.set(body_key, body, dashboard_cache.DASHBOARD_KEEP)
    context = {"body": mark_safe(body[1]), "section": "dashboards", "tab": tab}  # noqa: S308 - rendered by our template
    return render_page(request, template, context)


@require_safe
@workspace_role_required(WORKSPACE_ALL)
def exceptions_dashboard(request, client_slug):
    return _dashboard(
        request,
        "exceptions",
        {"sla_hours": sla_hours(request)},
        "integrations/dashboards/exceptions.html",
        _exceptions_context,
        tab="exceptions",
    )


def _exceptions_context(data: dict) -> dict:
    return {"charts": exceptions_charts(data)}


@require_safe
@workspace_role_required(WORKSPACE_ALL)
def utilization_dashboard(request, client_slug):
    weeks = _choice(request.GET.get("weeks"), (4, 8, 12, 26), 8)
    params = {"weeks": weeks, "end": dashboard_cache.dashboard_end(_date(request.GET.get("end")), period="week")}
    practice = request.GET.get("practice", "")[:80]
    if practice and practice not in dashboard_cache.dashboard_figures("utilization", params)["practices"]:
        practice = ""  # each practice's page is kept in the cache: only the workspace's own
    return _dashboard(
        request,
        "utilization",
        params,
        "integrations/dashboards/utilization.html",
        lambda data: _utilization_context(data, weeks=weeks, practice=practice),
        tab="utilization",
        variant=practice,
    )


def _utilization_context(data: dict, *, weeks: int, practice: str) -> dict:
    people = [p for p in data["people"] if not practice or p["practice"] == practice]
    return {
        "people": people[:100],
        "people_listed": len(people),
        "practice": practice,
        "weeks": weeks,
        "week_choices": (4, 8, 12, 26),
        "charts": utilization_charts(data),
    }


@require_safe
@workspace_role_required(WORKSPACE_ALL)
def margin_dashboard(request, client_slug):
    months = _choice(request.GET.get("months"), (1, 3, 6, 12), 3)
    end = dashboard_cache.dashboard_end(_date(request.GET.get("end")), period="month")
    currency = request.GET.get("currency", "")[:3].upper()
    if currency:
        # A currency is a variant of the figures: only one the period has time in, and the one
        # shown anyway is the default page's.
        usual = dashboard_cache.dashboard_figures("margin", {"months": months, "end": end, "currency": ""})
        if currency not in usual["currencies"] or currency == usual["currency"]:
            currency = ""
    return _dashboard(
        request,
        "margin",
        {"months": months, "end": end, "currency": currency},
        "integrations/dashboards/margin.html",
        lambda data: _margin_context(data, months=months),
        tab="margin",
    )


def _margin_context(data: dict, *, months: int) -> dict:
    return {
        "months": months,
        "month_choices": (1, 3, 6, 12),
        "charts": margin_charts(data),
        "customer_legend": [("Cost", "series-c"), ("Margin", "series-a")],
    }


@require_safe
@workspace_role_required(WORKSPACE_ALL)
def sync_health_dashboard(request, client_slug):
    days = _choice(request.GET.get("days"), (7, 14, 30), 14)
    return _dashboard(
        request,
        "sync",
        {"days": days},
        "integrations/dashboards/sync_health.html",
        lambda data: _sync_context(data, days=days),
        tab="sync",
    )


def _sync_context(data: dict, *, days: int) -> dict:
    return {"days": days, "day_choices": (7, 14, 30), "charts": sync_charts(data)}
