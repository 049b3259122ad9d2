"""Dashboards: exceptions against the SLA, utilization, margin and sync health, as SVG charts with tables."""

from __future__ import annotations

from datetime import date

from django.views.decorators.http import require_safe

from integrations import selectors
from integrations.views.charts import bar_list, column_chart, stacked_bar_list
from integrations.views.support import render_page, sla_hours
from tenants.decorators import WORKSPACE_ALL, workspace_role_required


def _choice(value: str | None, allowed: tuple[int, ...], default: int) -> int:
    return int(value) if value and value.isdigit() and int(value) in allowed else default


def _date(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


@require_safe
@workspace_role_required(WORKSPACE_ALL)
def exceptions_dashboard(request, client_slug):
    hours = sla_hours(request)
    data = selectors.dashboard_cached(f"exceptions:{hours}", lambda: selectors.exceptions_dashboard(sla_hours=hours))
    severity = ["ok", "warn", "bad", "worst"]
    charts = {
        "by_error": bar_list([(row["label"], row["count"], "series-a") for row in data["by_error"][:10]]),
        "by_system": bar_list([(row["label"], row["count"], "series-b") for row in data["by_system"]]),
        "ages": column_chart(
            ["Under ½ SLA", "½ SLA to SLA", "1–2× SLA", "Over 2× SLA"],
            [("Open exceptions", "series-a", [row["count"] for row in data["ages"]])],
            width=520,
        ),
        "trend": column_chart(
            [row["week"].strftime("%-d %b") for row in data["trend"]],
            [
                ("Opened", "series-bad", [row["opened"] for row in data["trend"]]),
                ("Resolved", "series-ok", [row["resolved"] for row in data["trend"]]),
            ],
            width=520,
        ),
    }
    for column, state in zip(charts["ages"].columns, severity, strict=False):
        for rect in column.rects:
            rect.css = f"age-{state}"
    context = {"data": data, "charts": charts, "section": "dashboards", "tab": "exceptions"}
    return render_page(request, "integrations/dashboards/exceptions.html", context)


@require_safe
@workspace_role_required(WORKSPACE_ALL)
def utilization_dashboard(request, client_slug):
    weeks = _choice(request.GET.get("weeks"), (4, 8, 12, 26), 8)
    end = _date(request.GET.get("end"))
    practice = request.GET.get("practice", "")[:80]
    key = f"utilization:{weeks}:{end}"
    data = selectors.dashboard_cached(key, lambda: selectors.utilization_dashboard(weeks=weeks, end=end))
    people = [p for p in data["people"] if not practice or p["practice"] == practice]
    context = {
        "data": data,
        "people": people[:100],
        "people_listed": len(people),
        "practice": practice,
        "weeks": weeks,
        "week_choices": (4, 8, 12, 26),
        "charts": {
            "by_week": column_chart(
                [row["week"].strftime("%-d %b") for row in data["by_week"]],
                [("Utilization", "series-a", [row["utilization"] or 0 for row in data["by_week"]])],
                percent=True,
                reference=data["utilization"],
                reference_label=f"average {data['utilization'] or 0:.0f}%",
                width=520,
            ),
            "by_practice": bar_list(
                [(row["practice"], row["utilization"] or 0, "series-b") for row in data["by_practice"]],
                percent=True,
                maximum=max([100.0] + [row["utilization"] or 0 for row in data["by_practice"]]),
            ),
        },
        "section": "dashboards",
        "tab": "utilization",
    }
    return render_page(request, "integrations/dashboards/utilization.html", context)


@require_safe
@workspace_role_required(WORKSPACE_ALL)
def margin_dashboard(request, client_slug):
    months = _choice(request.GET.get("months"), (1, 3, 6, 12), 3)
    end = _date(request.GET.get("end"))
    currency = request.GET.get("currency", "")[:3].upper()
    data = selectors.dashboard_cached(
        f"margin:{months}:{end}:{currency}",
        lambda: selectors.margin_dashboard(months=months, end=end, currency=currency),
    )
    short = lambda value: f"{value / 1000:,.0f}k" if abs(value) >= 10_000 else f"{value:,.0f}"  # noqa: E731
    context = {
        "data": data,
        "months": months,
        "month_choices": (1, 3, 6, 12),
        "charts": {
            "by_customer": stacked_bar_list(
                [
                    (
                        row["customer"],
                        [
                            (float(row["cost"]), "series-c", f"cost {short(float(row['cost']))}"),
                            (float(max(row["margin"], 0)), "series-a", f"margin {short(float(row['margin']))}"),
                        ],
                        f"{short(float(row['revenue']))} · {row['margin_percent'] or 0:.0f}%",
                    )
                    for row in data["by_customer"][:8]
                ]
            ),
            "by_month": column_chart(
                [row["month"].strftime("%b %Y") for row in data["by_month"]],
                [
                    ("Revenue", "series-a", [float(row["revenue"]) for row in data["by_month"]]),
                    ("Cost", "series-c", [float(row["cost"]) for row in data["by_month"]]),
                ],
                value_format=short,
                width=520,
            ),
        },
        "customer_legend": [("Cost", "series-c"), ("Margin", "series-a")],
        "section": "dashboards",
        "tab": "margin",
    }
    return render_page(request, "integrations/dashboards/margin.html", context)


@require_safe
@workspace_role_required(WORKSPACE_ALL)
def sync_health_dashboard(request, client_slug):
    days = _choice(request.GET.get("days"), (7, 14, 30), 14)
    data = selectors.dashboard_cached(f"sync:{days}", lambda: selectors.sync_health_dashboard(days=days))
    busy = sorted((row for row in data["flows"] if row["records_per_second"]), key=lambda r: -r["records_per_second"])
    context = {
        "data": data,
        "days": days,
        "day_choices": (7, 14, 30),
        "charts": {
            "by_day": column_chart(
                [row["day"].strftime("%-d %b") for row in data["by_day"]],
                [
                    ("Succeeded", "series-ok", [row["succeeded"] for row in data["by_day"]]),
                    ("With exceptions", "series-warn", [row["partial"] for row in data["by_day"]]),
                    ("Failed", "series-bad", [row["failed"] for row in data["by_day"]]),
                ],
                stacked=True,
                width=520,
            ),
            "throughput": bar_list(
                [(row["flow"].name, row["records_per_second"], "series-a") for row in busy],
                value_format=lambda v: f"{v:,.1f}/s",
                label_width=200,
            ),
        },
        "section": "dashboards",
        "tab": "sync",
    }
    return render_page(request, "integrations/dashboards/sync_health.html", context)
