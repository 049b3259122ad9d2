"""The four dashboards' figures (exceptions, utilization, margin, sync health), each read from up to a
million rows over a bounded period. Pages get them through integrations.dashboard_cache, not from here.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.core.cache import cache
from django.db import connection as db
from django.db.models import Count, DateField, DecimalField, ExpressionWrapper, F, Max, Q, Sum
from django.db.models.functions import TruncMonth, TruncWeek
from django.utils import timezone

from integrations.models import Customer, Environment, Flow, Project, Resource, SyncException, SyncRun, TimeEntry
from integrations.selectors.counting import open_exceptions_by
from integrations.selectors.labels import error_label, vendor_label
from integrations.selectors.queue import LIVE_EXCEPTION
from portal.months import month_last_day


def _weeks_back(end: date, weeks: int) -> tuple[date, date]:
    """Monday `weeks - 1` weeks before the week of `end`, and the Sunday ending `end`'s week."""
    last_monday = end - timedelta(days=end.weekday())
    return last_monday - timedelta(weeks=weeks - 1), last_monday + timedelta(days=6)


def exceptions_dashboard(*, sla_hours: int | None, weeks: int = 12) -> dict:
    now = timezone.now()
    live = SyncException.objects.filter(status__in=LIVE_EXCEPTION)
    by_kind = list(live.values("error_code", "source_system").annotate(n=Count("id")).order_by("-n", "error_code"))
    by_error: dict[str, int] = defaultdict(int)
    by_system: dict[str, int] = defaultdict(int)
    for row in by_kind:
        by_error[row["error_code"]] += row["n"]
        by_system[row["source_system"]] += row["n"]
    sla = timedelta(hours=sla_hours or 48)
    bucket_edges = [
        ("Under half the SLA", now - sla / 2, None),
        ("Half the SLA to the SLA", now - sla, now - sla / 2),
        ("Up to twice the SLA", now - 2 * sla, now - sla),
        ("Over twice the SLA", None, now - 2 * sla),
    ]
    aggregates = {}
    for index, (_, newest_before, oldest_after) in enumerate(bucket_edges):
        condition = Q()
        if newest_before is not None:
            condition &= Q(created_at__gte=newest_before)
        if oldest_after is not None:
            condition &= Q(created_at__lt=oldest_after)
        aggregates[f"b{index}"] = Count("id", filter=condition)
    counted = live.aggregate(**aggregates)
    ages = [
        {"label": label, "count": counted[f"b{index}"], "breached": index >= 2}
        for index, (label, _, _) in enumerate(bucket_edges)
    ]
    start, _ = _weeks_back(timezone.localdate(), weeks)
    opened = _weekly_counts("created_at", start)
    resolved = _weekly_counts("resolved_at", start)
    trend = []
    for offset in range(weeks):
        week = start + timedelta(weeks=offset)
        trend.append({"week": week, "opened": opened.get(week, 0), "resolved": resolved.get(week, 0)})
    return {
        "open_total": sum(by_error.values()),
        "by_error": sorted(
            ({"code": code, "label": error_label(code), "count": n} for code, n in by_error.items()),
            key=lambda row: -row["count"],
        ),
        "by_system": sorted(
            ({"system": s, "label": vendor_label(s), "count": n} for s, n in by_system.items()),
            key=lambda row: -row["count"],
        ),
        "by_kind": [
            {
                "code": row["error_code"],
                "label": error_label(row["error_code"]),
                "system": row["source_system"],
                "system_label": vendor_label(row["source_system"]),
                "count": row["n"],
            }
            for row in by_kind
        ],
        "ages": ages,
        "sla_hours": sla_hours,
        "trend": trend,
    }


def _weekly_counts(column: str, start: date) -> dict[date, int]:
    """Exceptions per week by `column` (created_at, resolved_at) from `start` on. Finished weeks never
    change, so they are counted once and kept for hours; only the current week is counted each time."""
    today = timezone.localdate()
    this_week = today - timedelta(days=today.weekday())
    since = timezone.make_aware(datetime.combine(start, time.min))
    week_start = timezone.make_aware(datetime.combine(this_week, time.min))
    key = f"dash:{db.schema_name}:weekly:{column}:{start}:{this_week}"
    past = cache.get(key)
    if past is None:
        rows = (
            SyncException.objects.filter(**{f"{column}__gte": since, f"{column}__lt": week_start})
            .annotate(week=TruncWeek(column))
            .values("week")
            .annotate(n=Count("id"))
            .values_list("week", "n")
        )
        past = {(week.date() if isinstance(week, datetime) else week): n for week, n in rows}
        cache.set(key, past, 6 * 3600)
    current = SyncException.objects.filter(**{f"{column}__gte": week_start}).count()
    return {**past, this_week: current}


def time_entries_latest() -> date | None:
    return TimeEntry.objects.filter(environment=Environment.PRODUCTION).aggregate(latest=Max("date"))["latest"]


def utilization_dashboard(*, weeks: int = 8, end: date | None = None) -> dict:
    """Billable hours over capacity per person, practice and week, from canonical time and HR capacity.

    Capacity counts each person who logged time in the period, at their weekly capacity from HR,
    in every week of the period that has time (a person away one week lowers that week's rate).
    """
    end = end or time_entries_latest() or timezone.localdate()
    start, finish = _weeks_back(end, weeks)
    # Two aggregations of the period's entries (index-only on the covering date index): per
    # person, and per week; a few thousand rows reach Python, not one per person-week.
    # Production's books only: time read from a Sandbox system is a test, not work done.
    period = TimeEntry.objects.filter(date__gte=start, date__lte=finish, environment=Environment.PRODUCTION).order_by()
    per_person: dict[int, dict] = {
        row["resource_id"]: {"billable": row["billable"] or Decimal(0), "total": row["total"] or Decimal(0)}
        for row in period.values("resource_id").annotate(
            billable=Sum("hours", filter=Q(billable=True)), total=Sum("hours")
        )
    }
    week_hours: dict[date, Decimal] = {}
    for row in (
        period.annotate(week=TruncWeek("date", output_field=DateField()))
        .values("week")
        .annotate(billable=Sum("hours", filter=Q(billable=True)))
    ):
        week = row["week"].date() if isinstance(row["week"], datetime) else row["week"]
        week_hours[week] = row["billable"] or Decimal(0)
    resources = {
        r["pk"]: r
        for r in Resource.objects.filter(pk__in=list(per_person)).values(
            "pk", "first_name", "last_name", "email", "practice", "department", "weekly_capacity_hours"
        )
    }
    people: list[dict] = []
    practices: dict[str, dict] = defaultdict(lambda: {"billable": Decimal(0), "capacity": Decimal(0), "people": 0})
    weekly_total = Decimal(0)
    active_weeks = len(week_hours)  # weeks of the period with any time logged
    for pk, figures in per_person.items():
        resource = resources.get(pk, {})
        weekly = Decimal(resource.get("weekly_capacity_hours") or 40)
        capacity = weekly * active_weeks
        name = (
            f"{resource.get('first_name', '')} {resource.get('last_name', '')}".strip()
            or resource.get("email")
            or f"#{pk}"
        )
        team = resource.get("practice") or resource.get("department") or "Unassigned"
        people.append(
            {
                "name": name,
                "practice": team,
                "billable": figures["billable"],
                "total": figures["total"],
                "capacity": capacity,
                "utilization": _percent(figures["billable"], capacity),
            }
        )
        practices[team]["billable"] += figures["billable"]
        practices[team]["capacity"] += capacity
        practices[team]["people"] += 1
        weekly_total += weekly
    by_week = []
    for offset in range(weeks):
        week = start + timedelta(weeks=offset)
        capacity = weekly_total if week in week_hours else Decimal(0)
        by_week.append(
            {
                "week": week,
                "billable": week_hours.get(week, Decimal(0)),
                "capacity": capacity,
                "utilization": _percent(week_hours.get(week, Decimal(0)), capacity),
            }
        )
    by_practice = sorted(
        (
            {
                "practice": name,
                "people": figures["people"],
                "billable": figures["billable"],
                "capacity": figures["capacity"],
                "utilization": _percent(figures["billable"], figures["capacity"]),
            }
            for name, figures in practices.items()
        ),
        key=lambda row: -(row["utilization"] or 0),
    )
    total_billable = sum((p["billable"] for p in people), Decimal(0))
    total_capacity = sum((p["capacity"] for p in people), Decimal(0))
    people.sort(key=lambda row: (row["utilization"] or 0, row["name"]))
    return {
        "start": start,
        "end": finish,
        "weeks": weeks,
        "people_count": len(people),
        "billable": total_billable,
        "capacity": total_capacity,
        "utilization": _percent(total_billable, total_capacity),
        "by_week": by_week,
        "by_practice": by_practice,
        "people": people,
        "practices": sorted(practices),
    }


def _percent(part, whole) -> float | None:
    if not whole:
        return None
    return round(float(part) * 100 / float(whole), 1)


def margin_rows(*, start: date, finish: date) -> list[dict]:
    """Hours, revenue at bill rates (billable time) and cost at cost rates of Production time, per project,
    currency and month from `start` to `finish`: the one place margin is computed, for the dashboard and for
    the figures written back to CRM accounts (integrations.services.account_health)."""
    # One pass over the period's entries (index-only on the covering date index), folded by the callers.
    return list(
        TimeEntry.objects.filter(date__gte=start, date__lte=finish, environment=Environment.PRODUCTION)
        .annotate(month=TruncMonth("date"))
        .values("project_id", "currency", "month")
        .annotate(
            total_hours=Sum("hours"),
            revenue=Sum(_product("bill_rate"), filter=Q(billable=True)),
            cost=Sum(_product("cost_rate")),
        )
        .order_by()
    )


def currencies_by_hours(rows: list[dict]) -> list[str]:
    """The currencies of `rows`, the one most hours were logged in first (the dashboard shows it unless asked)."""
    hours_by_currency: dict[str, Decimal] = defaultdict(Decimal)
    for row in rows:
        hours_by_currency[row["currency"]] += row["total_hours"] or 0
    return sorted(hours_by_currency, key=lambda code: (-hours_by_currency[code], code))


def customer_margins(*, rows: list[dict]) -> dict[int | None, dict[str, dict]]:
    """margin_rows folded per customer (None: projects without one) and currency: hours, revenue, cost, margin,
    margin_percent and the number of projects."""
    project_customer = dict(
        Project.objects.filter(pk__in={row["project_id"] for row in rows}).values_list("pk", "customer_id")
    )
    folded: dict[int | None, dict[str, dict]] = defaultdict(dict)
    projects: dict[tuple, set] = defaultdict(set)
    for row in rows:
        customer_id = project_customer.get(row["project_id"])
        figures = folded[customer_id].setdefault(
            row["currency"], {"hours": Decimal(0), "revenue": Decimal(0), "cost": Decimal(0)}
        )
        figures["hours"] += row["total_hours"] or 0
        figures["revenue"] += row["revenue"] or 0
        figures["cost"] += row["cost"] or 0
        projects[(customer_id, row["currency"])].add(row["project_id"])
    for customer_id, by_currency in folded.items():
        for currency, figures in by_currency.items():
            figures["margin"] = figures["revenue"] - figures["cost"]
            figures["margin_percent"] = _percent(figures["margin"], figures["revenue"])
            figures["projects"] = len(projects[(customer_id, currency)])
    return dict(folded)


def margin_dashboard(*, months: int = 3, end: date | None = None, currency: str = "") -> dict:
    """Revenue at bill rates minus cost at cost rates, by project and customer, in one currency."""
    end = end or time_entries_latest() or timezone.localdate()
    finish = month_last_day(end)
    start = end.replace(day=1)
    for _ in range(months - 1):
        start = (start - timedelta(days=1)).replace(day=1)
    grouped = margin_rows(start=start, finish=finish)
    currencies = currencies_by_hours(grouped)
    currency = currency if currency in currencies else (currencies[0] if currencies else "USD")
    per_project: dict[int, dict] = {}
    per_month: dict[date, dict] = {}
    for row in grouped:
        if row["currency"] != currency:
            continue
        project = per_project.setdefault(
            row["project_id"],
            {"project_id": row["project_id"], "total_hours": Decimal(0), "revenue": Decimal(0), "cost": Decimal(0)},
        )
        month = row["month"].date() if isinstance(row["month"], datetime) else row["month"]
        monthly_row = per_month.setdefault(month, {"month": month, "revenue": Decimal(0), "cost": Decimal(0)})
        for figures in (project, monthly_row):
            figures["revenue"] += row["revenue"] or 0
            figures["cost"] += row["cost"] or 0
        project["total_hours"] += row["total_hours"] or 0
    rows = list(per_project.values())
    projects = {
        p["pk"]: p
        for p in Project.objects.filter(pk__in=[r["project_id"] for r in rows]).values(
            "pk", "code", "name", "customer_id"
        )
    }
    by_customer_figures = customer_margins(rows=[row for row in grouped if row["currency"] == currency])
    customers = dict(Customer.objects.filter(pk__in=[pk for pk in by_customer_figures if pk]).values_list("pk", "name"))
    by_project = []
    for row in rows:
        project = projects.get(row["project_id"], {})
        revenue = row["revenue"] or Decimal(0)
        cost = row["cost"] or Decimal(0)
        by_project.append(
            {
                "code": project.get("code", ""),
                "name": project.get("name", ""),
                "customer": customers.get(project.get("customer_id")) or "No customer",
                "hours": row["total_hours"] or 0,
                "revenue": revenue,
                "cost": cost,
                "margin": revenue - cost,
                "margin_percent": _percent(revenue - cost, revenue),
            }
        )
    by_project.sort(key=lambda row: -row["revenue"])
    customers_rows = sorted(
        (
            {
                "customer_id": customer_id,
                "customer": customers.get(customer_id) or "No customer",
                **{
                    name: figures[name] for name in ("revenue", "cost", "hours", "projects", "margin", "margin_percent")
                },
            }
            for customer_id, by_currency in by_customer_figures.items()
            for figures in by_currency.values()
        ),
        key=lambda row: -row["revenue"],
    )
    revenue = sum((row["revenue"] for row in by_project), Decimal(0))
    cost = sum((row["cost"] for row in by_project), Decimal(0))
    return {
        "start": start,
        "end": finish,
        "months": months,
        "currency": currency,
        "currencies": currencies,
        "revenue": revenue,
        "cost": cost,
        "margin": revenue - cost,
        "margin_percent": _percent(revenue - cost, revenue),
        "by_project": by_project[:25],
        "project_count": len(by_project),
        "by_customer": customers_rows[:15],
        "customer_count": len(customers_rows),
        "by_month": [
            {**row, "margin": row["revenue"] - row["cost"]}
            for row in sorted(per_month.values(), key=lambda r: r["month"])
        ],
    }


def _product(rate: str):
    return ExpressionWrapper(F("hours") * F(rate), output_field=DecimalField(max_digits=20, decimal_places=4))


def sync_health_dashboard(*, days: int = 14) -> dict:
    """Per flow: runs, records read, throughput, failures, freshness, and open exceptions."""
    since = timezone.now() - timedelta(days=days)
    flows = list(Flow.objects.select_related("source_connection"))
    runs = list(
        SyncRun.objects.filter(queued_at__gte=since).values(
            "flow_id", "status", "read", "failed", "started_at", "finished_at", "queued_at"
        )
    )
    stats: dict[int, dict] = {
        f.pk: {"runs": 0, "failed_runs": 0, "read": 0, "failed_records": 0, "seconds": 0.0, "wait": []} for f in flows
    }
    per_day: dict[date, dict] = defaultdict(lambda: {"succeeded": 0, "partial": 0, "failed": 0})
    for run in runs:
        figures = stats.setdefault(
            run["flow_id"], {"runs": 0, "failed_runs": 0, "read": 0, "failed_records": 0, "seconds": 0.0, "wait": []}
        )
        figures["runs"] += 1
        figures["read"] += run["read"]
        figures["failed_records"] += run["failed"]
        if run["status"] == SyncRun.Status.FAILED:
            figures["failed_runs"] += 1
        if run["started_at"] and run["finished_at"]:
            figures["seconds"] += (run["finished_at"] - run["started_at"]).total_seconds()
        if run["started_at"]:
            figures["wait"].append(max(0.0, (run["started_at"] - run["queued_at"]).total_seconds()))
        if run["status"] in per_day[timezone.localtime(run["queued_at"]).date()]:
            per_day[timezone.localtime(run["queued_at"]).date()][run["status"]] += 1
    last_success = dict(
        SyncRun.objects.filter(status__in=SyncRun.FINISHED)
        .values("flow_id")
        .annotate(at=Max("finished_at"))
        .values_list("flow_id", "at")
    )
    open_by_flow = open_exceptions_by("flow_id", [flow.pk for flow in flows])
    rows = []
    for flow in flows:
        figures = stats[flow.pk]
        rows.append(
            {
                "flow": flow,
                "runs": figures["runs"],
                "failed_runs": figures["failed_runs"],
                "read": figures["read"],
                "failed_records": figures["failed_records"],
                "records_per_second": round(figures["read"] / figures["seconds"], 1) if figures["seconds"] else None,
                "queue_wait": round(sorted(figures["wait"])[len(figures["wait"]) // 2], 1) if figures["wait"] else None,
                "last_success": last_success.get(flow.pk),
                "open_exceptions": open_by_flow.get(flow.pk, 0),
            }
        )
    rows.sort(key=lambda row: (-row["runs"], row["flow"].name))
    today = timezone.localdate()
    return {
        "days": days,
        "flows": rows,
        "runs": sum(row["runs"] for row in rows),
        "failed_runs": sum(row["failed_runs"] for row in rows),
        "read": sum(row["read"] for row in rows),
        "failed_records": sum(row["failed_records"] for row in rows),
        "by_day": [
            {"day": day, **per_day.get(day, {"succeeded": 0, "partial": 0, "failed": 0})}
            for day in (today - timedelta(days=offset) for offset in range(days - 1, -1, -1))
        ],
    }
