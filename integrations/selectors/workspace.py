"""A workspace at a glance: its overview and health, usage, connections, flows, runs and where each
source record went.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta

from django.db import connection as db
from django.db.models import Count, Max, Min, Q, Sum
from django.utils import timezone

from connectors.registry import CONNECTORS
from integrations.models import (
    Connection,
    Environment,
    FieldOwnership,
    Flow,
    FlowStep,
    RunRecord,
    SyncException,
    SyncRun,
)
from integrations.selectors.counting import BoundedCount, bounded_counts
from integrations.selectors.labels import CATEGORY_LABELS
from integrations.selectors.queue import LIVE_EXCEPTION
from portal.months import month_bounds


def connections_by_system() -> dict[str, int]:
    """The workspace's Production connections by vendor key: what its plan's systems are counted against."""
    rows = Connection.objects.filter(environment=Environment.PRODUCTION).values_list("vendor").annotate(n=Count("id"))
    return dict(rows)


def usage_for_month(month: date) -> dict[str, int]:
    """Records synced (created + updated) and runs finished in the current schema during `month`, production
    and Sandbox apart (a plan bills Sandbox separately or not at all; a scheduled run that could not start
    is in the flow's history, not in the usage)."""
    start, end = month_bounds(month)
    finished = SyncRun.objects.filter(finished_at__date__gte=start, finished_at__date__lt=end)
    sandbox = Q(flow__environment=Environment.SANDBOX)
    totals = finished.exclude(error__startswith=SyncRun.REFUSED).aggregate(
        production_created=Sum("created", filter=~sandbox),
        production_updated=Sum("updated", filter=~sandbox),
        production_runs=Count("id", filter=~sandbox),
        sandbox_created=Sum("created", filter=sandbox),
        sandbox_updated=Sum("updated", filter=sandbox),
        sandbox_runs=Count("id", filter=sandbox),
    )
    return {
        "records": (totals["production_created"] or 0) + (totals["production_updated"] or 0),
        "runs": totals["production_runs"] or 0,
        "sandbox_records": (totals["sandbox_created"] or 0) + (totals["sandbox_updated"] or 0),
        "sandbox_runs": totals["sandbox_runs"] or 0,
    }


def workspace_health() -> dict:
    """What the partner's client-health page shows for the current schema."""
    now = timezone.now()
    last_success = (
        SyncRun.objects.filter(status__in=SyncRun.FINISHED)
        .order_by("-finished_at")
        .values_list("finished_at", flat=True)
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


def workspace_overview(*, sla_hours: int | None) -> dict:
    connections = list(Connection.objects.values("status"))
    flows = Flow.objects.aggregate(total=Count("id"), enabled=Count("id", filter=Q(enabled=True)))
    live = SyncException.objects.filter(status=SyncException.Status.OPEN)
    wanted = {"open": live}
    if sla_hours:
        wanted["past_sla"] = live.filter(created_at__lt=timezone.now() - timedelta(hours=sla_hours))
    counted = {"past_sla": BoundedCount(0), **bounded_counts(wanted)}
    return {
        "open": counted["open"],
        "past_sla": counted["past_sla"],
        "connections": len(connections),
        "failing": sum(1 for c in connections if c["status"] == Connection.Status.FAILING),
        "flows": flows["total"],
        "flows_enabled": flows["enabled"],
        "last_success": SyncRun.objects.filter(status__in=SyncRun.FINISHED)
        .order_by("-finished_at")
        .values_list("finished_at", flat=True)
        .first(),
        "recent_runs": list(SyncRun.objects.select_related("flow").order_by("-queued_at", "-id")[:6]),
    }


def flows_counted_by_plan(environment: str = Environment.PRODUCTION) -> int:
    """Flows a plan's limit counts in one environment (Sandbox mirrors Production, so each has the plan's
    allowance): every hand-built flow, and packaged flows that write somewhere (a template's reference flows
    only read into the canonical store and are free)."""
    counted = Flow.objects.filter(Q(template_key="") | Q(steps__isnull=False), environment=environment)
    return counted.distinct().count()


# --- Connections and flows ---------------------------------------------------------------------


def connection_settings(connection: Connection) -> list[tuple[str, str]]:
    """The non-secret settings of a connection, for its page (secrets are never read back out)."""
    from portal.crypto import CredentialsUnreadable, credentials_decrypt

    cls = CONNECTORS.get(connection.vendor)
    if cls is None:
        return []
    try:
        stored = credentials_decrypt(connection.encrypted_credentials)
    except CredentialsUnreadable:
        return []
    return [(f.label, _setting_shown(f, stored.get(f.name))) for f in cls.form_fields() if not f.secret]


def _setting_shown(spec, value: str | None) -> str:
    """A setting as its page shows it: a multi-line value (a PEM certificate) by its first line and length."""
    if not value:
        return "—"
    lines = value.strip().splitlines()
    if spec.multiline and len(lines) > 1:
        return f"{lines[0]} … ({len(lines)} lines)"
    return value


def connections_overview() -> list[Connection]:
    connections = list(Connection.objects.all())
    uses = defaultdict(set)
    for flow_id, source_id in Flow.objects.values_list("pk", "source_connection_id"):
        uses[source_id].add(flow_id)
    for flow_id, target_id in FlowStep.objects.exclude(target_connection=None).values_list(
        "flow_id", "target_connection_id"
    ):
        uses[target_id].add(flow_id)
    for connection in connections:
        connection.flow_count = len(uses[connection.pk])
        cls = CONNECTORS.get(connection.vendor)
        connection.vendor_label = cls.label if cls else connection.vendor
        connection.category_label = CATEGORY_LABELS.get(cls.category, "") if cls else ""
    return connections


def flows_overview() -> list[Flow]:
    """Main flows with their last run and open exceptions; reference flows are shown inside them."""
    flows = list(Flow.objects.select_related("source_connection").prefetch_related("prerequisites", "steps"))
    last_runs = {}
    for run in SyncRun.objects.select_related("flow").filter(
        pk__in=SyncRun.objects.values("flow_id").annotate(last=Max("id")).values("last")
    ):
        last_runs[run.flow_id] = run
    open_counts = dict(
        SyncException.objects.filter(status=SyncException.Status.OPEN)
        .values("flow_id")
        .annotate(n=Count("id"))
        .values_list("flow_id", "n")
    )
    referenced = {p.pk for flow in flows for p in flow.prerequisites.all()}
    for flow in flows:
        flow.last_run = last_runs.get(flow.pk)
        flow.open_exceptions = open_counts.get(flow.pk, 0)
        flow.is_reference = flow.pk in referenced
    return flows


def field_owners(entity: str) -> dict[str, str]:
    """Which kind of system owns each field of `entity` in this workspace (defaults and overrides)."""
    from integrations.engine.entities import DEFAULT_OWNERS

    owners = dict(DEFAULT_OWNERS.get(entity, {}))
    for row in FieldOwnership.objects.filter(entity=entity):
        owners[row.field] = row.owner
    return owners


def flow_runs(flow: Flow, *, limit: int = 20) -> list[SyncRun]:
    return list(flow.runs.order_by("-queued_at", "-id")[:limit])


# --- Reconciliation: where each source record went ------------------------------------------------

OUTCOME_ORDER = ["created", "linked", "updated", "unchanged", "parked", "exception", "skipped"]
RECONCILIATION_PAGE = 100


def run_outcomes(run: SyncRun) -> list[dict]:
    """The run's records by outcome, in a fixed order, adding up to what it read."""
    counted = {"exception": run.failed, **{name: getattr(run, name) for name in OUTCOME_ORDER if name != "exception"}}
    labels = dict(RunRecord.Outcome.choices)
    return [{"outcome": name, "label": labels[name], "count": counted[name]} for name in OUTCOME_ORDER]


def flow_outcomes(flow: Flow) -> list[dict]:
    """Every source record the flow has read, by where it stands now (its latest outcome)."""
    with db.cursor() as cursor:
        cursor.execute(
            "SELECT outcome, count(*) FROM (SELECT DISTINCT ON (object, external_id) outcome"
            " FROM integrations_runrecord WHERE flow_id = %s ORDER BY object, external_id, id DESC) latest"
            " GROUP BY outcome",
            [flow.pk],
        )
        counted = dict(cursor.fetchall())
    labels = dict(RunRecord.Outcome.choices)
    return [{"outcome": name, "label": labels[name], "count": counted.get(name, 0)} for name in OUTCOME_ORDER]


def reconciliation_rows(*, run: SyncRun | None = None, flow: Flow | None = None, outcome: str = ""):
    """The records behind a run's (or a flow's, latest per record) counts, oldest first, as a queryset."""
    if run is not None:
        rows = RunRecord.objects.filter(run=run)
    else:
        latest = (
            RunRecord.objects.filter(flow=flow)
            .order_by("object", "external_id", "-id")
            .distinct("object", "external_id")
            .values("id")
        )
        rows = RunRecord.objects.filter(pk__in=latest)
    if outcome in OUTCOME_ORDER:
        rows = rows.filter(outcome=outcome)
    return rows.select_related("exception").order_by("id")
