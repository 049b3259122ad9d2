"""Reads of a client schema for pages, dashboards and the partner's roll-ups."""

from __future__ import annotations

from datetime import date

from django.db.models import Count, Min, Q, Sum
from django.utils import timezone

from integrations.models import Connection, SyncException, SyncRun

LIVE_EXCEPTION = [SyncException.Status.OPEN, SyncException.Status.RETRYING]
DONE = [SyncRun.Status.SUCCEEDED, SyncRun.Status.PARTIAL]


def month_range(month: date) -> tuple[date, date]:
    start = month.replace(day=1)
    end = (start.replace(day=28) + timezone.timedelta(days=4)).replace(day=1)
    return start, end


def usage_for_month(month: date) -> dict[str, int]:
    """Records synced (created + updated) and runs finished in the current schema during `month`."""
    start, end = month_range(month)
    totals = SyncRun.objects.filter(finished_at__date__gte=start, finished_at__date__lt=end).aggregate(
        created=Sum("created"), updated=Sum("updated"), runs=Count("id")
    )
    return {"records": (totals["created"] or 0) + (totals["updated"] or 0), "runs": totals["runs"] or 0}


def workspace_health() -> dict:
    """What the partner's client-health page shows for the current schema."""
    now = timezone.now()
    last_success = (
        SyncRun.objects.filter(status__in=DONE).order_by("-finished_at").values_list("finished_at", flat=True)
    )
    exceptions = SyncException.objects.filter(status__in=LIVE_EXCEPTION).aggregate(
        open=Count("id"), oldest=Min("created_at")
    )
    usage = usage_for_month(now.date())
    return {
        "last_success_at": last_success.first(),
        "failing_connections": list(
            Connection.objects.filter(status=Connection.Status.FAILING).values("name", "vendor", "last_error")
        ),
        "open_exceptions": exceptions["open"],
        "oldest_open_exception_at": exceptions["oldest"],
        "records_this_month": usage["records"],
        "runs_this_month": usage["runs"],
    }


def exceptions_past(hours: int) -> dict:
    """Live exceptions older than `hours` (the plan's resolution target)."""
    cutoff = timezone.now() - timezone.timedelta(hours=hours)
    old = SyncException.objects.filter(status__in=LIVE_EXCEPTION, created_at__lt=cutoff)
    summary = old.aggregate(count=Count("id"), oldest=Min("created_at"))
    return {"count": summary["count"], "oldest": summary["oldest"]}


def exception_counts() -> dict[str, int]:
    return SyncException.objects.aggregate(
        open=Count("id", filter=Q(status=SyncException.Status.OPEN)),
        retrying=Count("id", filter=Q(status=SyncException.Status.RETRYING)),
        resolved=Count("id", filter=Q(status=SyncException.Status.RESOLVED)),
        ignored=Count("id", filter=Q(status=SyncException.Status.IGNORED)),
    )
