"""Reads of a client schema for pages, dashboards and the partner's roll-ups.

Everything here stays fast at a million exceptions and a million time entries in one schema:
lists page by keyset on indexed columns, counts stop at a cap (then the planner estimates),
dashboards read index-only over a bounded period (see docs/benchmarks.md).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time as time_module
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from django.core.cache import cache
from django.db import connection as db
from django.db import transaction
from django.db.models import Count, DateField, Max, Min, Q, Sum
from django.db.models.functions import TruncMonth, TruncWeek
from django.utils import timezone

from connectors.registry import CONNECTORS
from integrations.models import (
    AuditEvent,
    Connection,
    Customer,
    Environment,
    ExternalRef,
    FieldOwnership,
    Flow,
    FlowStep,
    NotificationRecipient,
    Project,
    Resource,
    RunRecord,
    SyncException,
    SyncRun,
    TimeEntry,
    ValueMap,
)

logger = logging.getLogger(__name__)

LIVE_EXCEPTION = [SyncException.Status.OPEN, SyncException.Status.RETRYING]
DONE = [SyncRun.Status.SUCCEEDED, SyncRun.Status.PARTIAL]


def month_range(month: date) -> tuple[date, date]:
    start = month.replace(day=1)
    end = (start.replace(day=28) + timezone.timedelta(days=4)).replace(day=1)
    return start, end


def usage_for_month(month: date) -> dict[str, int]:
    """Records synced (created + updated) and runs finished in the current schema during `month`, production
    and Sandbox apart (a plan bills Sandbox separately or not at all; a scheduled run that could not start
    is in the flow's history, not in the usage)."""
    start, end = month_range(month)
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


# --- Counting without scanning a million rows ----------------------------------------------------

COUNT_CAP = 1_000


@dataclass(frozen=True)
class Tally:
    """A count that is exact up to COUNT_CAP, and the planner's estimate above it."""

    value: int
    exact: bool = True

    def __int__(self):
        return self.value

    def __bool__(self):
        return self.value > 0


def bounded_count(queryset, cap: int = COUNT_CAP) -> Tally:
    counted = queryset.order_by()[: cap + 1].count()
    if counted <= cap:
        return Tally(counted)
    return _estimate(queryset, cap)


def _estimate(queryset, cap: int, *, key: str = "") -> Tally:
    """The planner's row estimate, for a count past the cap. Approximate by nature, so it is kept a
    minute rather than planned again on every page."""
    key = key or _estimate_key(*queryset.order_by().query.sql_with_params())
    estimate = cache.get(key)
    if estimate is None:
        plan = json.loads(queryset.order_by().explain(format="json"))
        estimate = int(plan[0]["Plan"]["Plan Rows"])
        cache.set(key, estimate, 60)
    return Tally(max(estimate, cap + 1), exact=False)


def _estimate_key(sql: str, params) -> str:
    # A cutoff such as "past the SLA" moves with the clock: to the minute in the key, or every
    # request would plan its estimate again.
    params = [p.replace(second=0, microsecond=0) if isinstance(p, datetime) else p for p in params]
    return f"estimate:{db.schema_name}:{hashlib.sha256(f'{sql}{params}'.encode()).hexdigest()}"


def bounded_counts(querysets: dict, cap: int = COUNT_CAP) -> dict[str, Tally]:
    """Several bounded counts in one round trip (one scalar subquery each); the estimates of those
    past the cap in one more, keyed by the SQL already compiled for the count."""
    parts, params, keys = [], [], []
    for queryset in querysets.values():
        sql, values = queryset.order_by().values("pk")[: cap + 1].query.sql_with_params()
        parts.append(f"(SELECT count(*) FROM ({sql}) AS counted)")  # noqa: S608 - SQL compiled by the ORM
        params.extend(values)
        keys.append(_estimate_key(sql, values))
    with db.cursor() as cursor:
        cursor.execute("SELECT " + ", ".join(parts), params)  # noqa: S608 - SQL compiled by the ORM
        counted = cursor.fetchone()
    known = cache.get_many([key for key, value in zip(keys, counted, strict=True) if value > cap])
    tallies = {}
    for (name, queryset), value, key in zip(querysets.items(), counted, keys, strict=True):
        if value <= cap:
            tallies[name] = Tally(value)
        elif key in known:
            tallies[name] = Tally(max(known[key], cap + 1), exact=False)
        else:
            tallies[name] = _estimate(queryset, cap, key=key)
    return tallies


def open_exceptions_by(column: str, values) -> dict:
    """Open exceptions per value of an indexed column, each a bounded count, in one statement."""
    live = SyncException.objects.filter(status=SyncException.Status.OPEN)
    values = list(values)
    if not values:
        return {}
    return bounded_counts({value: live.filter(**{column: value}) for value in values})


def distinct_values(model, column: str) -> list[str]:
    """Distinct values of an indexed column by walking the index (a loose index scan), not the table."""
    table = db.ops.quote_name(model._meta.db_table)
    col = db.ops.quote_name(column)
    sql = (
        f"WITH RECURSIVE walk AS ("  # noqa: S608 - table and column names come from the model, not the request
        f" (SELECT {col} AS v FROM {table} WHERE {col} IS NOT NULL ORDER BY {col} LIMIT 1)"
        f" UNION ALL SELECT (SELECT {col} FROM {table} WHERE {col} > walk.v ORDER BY {col} LIMIT 1)"
        f" FROM walk WHERE walk.v IS NOT NULL) SELECT v FROM walk WHERE v IS NOT NULL"
    )
    with db.cursor() as cursor:
        cursor.execute(sql)
        return [row[0] for row in cursor.fetchall() if row[0] != ""]


@contextmanager
def planner(**settings):
    """PostgreSQL planner settings for the queries inside, in a transaction of their own.

    JIT is off throughout: it compiles for tens of milliseconds to save a few on these queries.
    """
    with transaction.atomic(), db.cursor() as cursor:
        for name, value in {"jit": "off", **settings}.items():
            cursor.execute(f"SET LOCAL {name} = {value}")  # names and values from this module only
        yield


def dashboard_cached(key: str, compute, *, seconds: int = 60):
    """Figures read from a million rows, computed at most once a minute per workspace (the cache
    is shared by every process). The four dashboards go through `dashboard_figures` instead."""
    full_key = f"dash:{db.schema_name}:{key}"
    value = cache.get(full_key)
    if value is None:
        with planner():
            value = compute()
        value["computed_at"] = timezone.now()
        cache.set(full_key, value, seconds)
    return value


# --- Vocabulary ---------------------------------------------------------------------------------

ERROR_LABELS = {
    "PROJECT_NOT_IN_TARGET": "Project code not found",
    "PROJECT_NOT_FOUND": "Project code not found",
    "VALUE_NOT_MAPPED": "Value not mapped",
    "REQUIRED_MISSING": "Required field missing",
    "MISSING_COST_RATE": "No cost rate",
    "FIELD_CONFLICT": "Field owned by another system",
    "TARGET_UNAVAILABLE": "Target system unavailable",
    "TARGET_REJECTED": "Rejected by the target",
    "MALFORMED_RECORD": "Unreadable record",
    "BAD_DATE": "Not a date",
    "BAD_NUMBER": "Not a number",
    "BAD_CURRENCY": "Not a currency",
}

CATEGORY_LABELS = {"crm": "CRM", "erp": "ERP", "psa": "PSA", "hr": "HR", "ticketing": "Ticketing"}


def error_label(code: str) -> str:
    return ERROR_LABELS.get(code) or code.replace("_", " ").capitalize()


def vendor_label(vendor: str) -> str:
    cls = CONNECTORS.get(vendor)
    return cls.label if cls else vendor.title()


# --- Exception queue ----------------------------------------------------------------------------

QUEUE_PAGE_SIZE = 50
SEARCH_CANDIDATES = 5_000
QUEUE_STATUSES = {
    "open": "Open",
    "retrying": "Retrying",
    "parked": "Waiting",
    "resolved": "Resolved",
    "ignored": "Ignored",
    "all": "All",
}
QUEUE_AGES = {
    "": "Any age",
    "1d": "Under a day",
    "1-3d": "1–3 days",
    "3-7d": "3–7 days",
    "7d": "Over a week",
    "sla": "Past the resolution SLA",
}
QUEUE_SORTS = {"oldest": "Oldest first", "newest": "Newest first"}


@dataclass(frozen=True)
class QueueQuery:
    """The queue's filters, validated (forms.ExceptionFilterForm builds one from the query string)."""

    status: str = "open"
    flow: int | None = None
    system: str = ""  # "from:kantata" or "to:netsuite"
    error_code: str = ""
    age: str = ""
    assignee: str = ""  # "me", "none" or a user id
    q: str = ""
    sort: str = "oldest"

    def params(self) -> dict[str, str]:
        """The non-default filters, for links, the CSV export and "retry all filtered"."""
        values = {
            "status": self.status if self.status != "open" else "",
            "flow": str(self.flow) if self.flow else "",
            "system": self.system,
            "error_code": self.error_code,
            "age": self.age,
            "assignee": self.assignee,
            "q": self.q,
            "sort": self.sort if self.sort != "oldest" else "",
        }
        return {key: value for key, value in values.items() if value}

    @property
    def filtered(self) -> bool:
        return any(key not in ("status", "sort") for key in self.params())


def exceptions_filtered(query: QueueQuery, *, user_id: int | None, sla_hours: int | None):
    """The queryset behind the queue, the CSV export and bulk actions (unordered)."""
    qs = SyncException.objects.all()
    if query.status != "all":
        qs = qs.filter(status=query.status)
    if query.flow:
        qs = qs.filter(flow_id=query.flow)
    if query.system.startswith("from:"):
        qs = qs.filter(source_system=query.system[5:])
    elif query.system.startswith("to:"):
        qs = qs.filter(target_system=query.system[3:])
    if query.error_code:
        qs = qs.filter(error_code=query.error_code)
    now = timezone.now()
    if query.age == "1d":
        qs = qs.filter(created_at__gte=now - timedelta(days=1))
    elif query.age == "1-3d":
        qs = qs.filter(created_at__lt=now - timedelta(days=1), created_at__gte=now - timedelta(days=3))
    elif query.age == "3-7d":
        qs = qs.filter(created_at__lt=now - timedelta(days=3), created_at__gte=now - timedelta(days=7))
    elif query.age == "7d":
        qs = qs.filter(created_at__lt=now - timedelta(days=7))
    elif query.age == "sla" and sla_hours:
        qs = qs.filter(created_at__lt=now - timedelta(hours=sla_hours))
    if query.assignee == "me":
        qs = qs.filter(assignee_id=user_id)
    elif query.assignee == "none":
        qs = qs.filter(assignee_id__isnull=True)
    elif query.assignee.isascii() and query.assignee.isdigit():
        qs = qs.filter(assignee_id=int(query.assignee))
    if query.q:
        term = query.q
        match = Q(message__icontains=term) | Q(external_id=term)
        if term.isascii() and term.isdigit():
            match |= Q(pk=int(term))
        qs = qs.filter(match)
    return qs


QUEUE_FIELDS = (
    "id",
    "flow_id",
    "status",
    "error_code",
    "message",
    "source_system",
    "target_system",
    "object",
    "external_id",
    "assignee_id",
    "assignee_email",
    "occurrences",
    "created_at",
    "last_seen_at",
)


def cursor_encode(row) -> str:
    micros = int(row.created_at.timestamp()) * 1_000_000 + row.created_at.microsecond
    return f"{micros}.{row.pk}"


def cursor_decode(value: str) -> tuple[datetime, int] | None:
    try:
        micros, pk = (int(part) for part in value.split(".", 1))
        moment = datetime.fromtimestamp(micros // 1_000_000, tz=UTC).replace(microsecond=micros % 1_000_000)
        return moment, pk
    except (ValueError, OverflowError, OSError):
        return None


@dataclass
class QueuePage:
    rows: list
    matching: Tally
    next_cursor: str | None = None
    prev_cursor: str | None = None
    flows: dict = field(default_factory=dict)


def exception_queue(
    query: QueueQuery,
    *,
    user_id: int | None,
    sla_hours: int | None,
    after: str = "",
    before: str = "",
    size: int = QUEUE_PAGE_SIZE,
    total: Tally | None = None,
    flows: dict | None = None,
) -> QueuePage:
    """One page of the queue by keyset on (created_at, id): as fast on page 1,000 as on page 1."""
    base = exceptions_filtered(query, user_id=user_id, sla_hours=sla_hours)
    if query.q:
        # Searched text is rare or common, and the planner cannot tell which: gather the hits
        # through the trigram index first (unordered, bounded). A few thousand at most are then
        # ordered and paged exactly; more than that and they are dense enough for the ordered scan.
        hits = list(base.order_by().values_list("pk", flat=True)[: SEARCH_CANDIDATES + 1])
        if len(hits) <= SEARCH_CANDIDATES:
            base = SyncException.objects.filter(pk__in=hits)
            total = Tally(len(hits)) if len(hits) <= COUNT_CAP else _estimate(base, COUNT_CAP)
        else:
            # Dense matches: walking the ordered index finds a page in a few hundred rows, but the
            # planner (which misjudges LIKE on trigrams) would bitmap-scan every match and sort.
            with planner(enable_bitmapscan="off", enable_seqscan="off", max_parallel_workers_per_gather=0):
                return _queue_page(query, base, after, before, size, total, flows)
    return _queue_page(query, base, after, before, size, total, flows)


def _queue_page(query, base, after, before, size, total, flows) -> QueuePage:
    ascending = query.sort != "newest"
    after_key = cursor_decode(after) if after else None
    before_key = None if after_key else (cursor_decode(before) if before else None)
    qs = base.only(*QUEUE_FIELDS)
    backwards = before_key is not None
    forward_asc = ascending != backwards  # the direction we read in
    if after_key or before_key:
        moment, pk = after_key or before_key
        if forward_asc:
            qs = qs.filter(created_at__gte=moment).filter(Q(created_at__gt=moment) | Q(pk__gt=pk))
        else:
            qs = qs.filter(created_at__lte=moment).filter(Q(created_at__lt=moment) | Q(pk__lt=pk))
    if total is None:
        # Counted before paging, and the ids kept when there are few: the planner assumes the
        # filters independent, so for a combination that matches nothing (no open exceptions of
        # that code from that system) it would walk the whole created_at index to fill a page
        # (270 ms at a million rows). A thousand ids or fewer are ordered and paged exactly.
        ids = list(base.order_by().values_list("pk", flat=True)[: COUNT_CAP + 1])
        if len(ids) <= COUNT_CAP:
            total = Tally(len(ids))
            qs = qs.filter(pk__in=ids)
        else:
            total = _estimate(base, COUNT_CAP)
    order = ("created_at", "id") if forward_asc else ("-created_at", "-id")
    rows = list(qs.order_by(*order)[: size + 1])
    more = len(rows) > size
    rows = rows[:size]
    if backwards:
        rows.reverse()
    page = QueuePage(rows=rows, matching=total)
    if rows:
        if backwards:
            page.prev_cursor = cursor_encode(rows[0]) if more else None
            page.next_cursor = cursor_encode(rows[-1])
        else:
            page.next_cursor = cursor_encode(rows[-1]) if more else None
            page.prev_cursor = cursor_encode(rows[0]) if after_key else None
    if flows is None or any(row.flow_id not in flows for row in rows):
        flows = dict(Flow.objects.values_list("pk", "name"))
    page.flows = flows
    return page


def queue_counters(*, user_id: int | None, sla_hours: int | None) -> dict[str, Tally]:
    """The live counters above the queue, in one statement of bounded index range counts."""
    live = SyncException.objects.filter(status=SyncException.Status.OPEN)
    today = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    wanted = {
        "open": live,
        "resolved_today": SyncException.objects.filter(status=SyncException.Status.RESOLVED, resolved_at__gte=today),
    }
    if user_id:
        wanted["mine"] = live.filter(assignee_id=user_id)
    if sla_hours:
        wanted["past_sla"] = live.filter(created_at__lt=timezone.now() - timedelta(hours=sla_hours))
    counters = {"mine": Tally(0), "past_sla": Tally(0)}
    counters.update(bounded_counts(wanted))
    return counters


def queue_choices() -> dict:
    """Options of the queue's filters: flows, systems in both directions, error codes present.

    They change when a flow or connection is added or a new kind of error first appears: kept a
    minute per workspace."""
    key = f"queue-choices:{db.schema_name}"
    choices = cache.get(key)
    if choices is None:
        choices = _queue_choices()
        cache.set(key, choices, 60)
    return choices


def queue_choices_forget() -> None:
    """A flow or connection was added here: the filters list it at once."""
    cache.delete(f"queue-choices:{db.schema_name}")


def _queue_choices() -> dict:
    vendors = sorted(set(Connection.objects.values_list("vendor", flat=True)))
    codes = distinct_values(SyncException, "error_code")
    return {
        "flows": list(Flow.objects.values_list("pk", "name")),
        "systems": [(f"from:{v}", f"From {vendor_label(v)}") for v in vendors]
        + [(f"to:{v}", f"To {vendor_label(v)}") for v in vendors],
        "error_codes": [(code, error_label(code)) for code in codes],
    }


def exception_get(pk: int) -> SyncException:
    return SyncException.objects.select_related("flow", "step", "step__target_connection").get(pk=pk)


def record_fields(data, prefix: str = "", depth: int = 0) -> list[tuple[str, str]]:
    """A stored record as (path, value) rows for people to read: nested dicts and lists flattened."""
    rows: list[tuple[str, str]] = []
    if isinstance(data, dict):
        items = data.items()
    elif isinstance(data, list):
        items = enumerate(data)
    else:
        return [(prefix or "value", _readable(data))]
    for key, value in items:
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict | list) and value and depth < 3:
            rows.extend(record_fields(value, path, depth + 1))
        else:
            rows.append((path, _readable(value)))
    return rows[:200]


def _readable(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)[:300] if value else "—"
    return str(value)[:300]


def exceptions_fixed_by(*, value_map: str, value: str) -> int:
    """How many live exceptions one value-map entry would fix (and so be retried)."""
    fix = [{"action": "map_value", "value_map": value_map, "value": value}]
    return SyncException.objects.filter(status__in=LIVE_EXCEPTION, fix_actions__contains=fix).count()


def map_value_suggestions(*, exception: SyncException, value_map_key: str) -> list[str]:
    """Values a clerk would likely map to: the map's existing targets and, for project maps, the
    project codes the target system already knows."""
    value_map = ValueMap.objects.filter(key=value_map_key).first()
    suggestions: list[str] = []
    if value_map is not None:
        suggestions = list(
            value_map.entries.order_by("target_value").values_list("target_value", flat=True).distinct()[:50]
        )
    rules_target = [
        rule.target
        for rule in exception.flow.inbound_mapping.rules.all()
        if any(t.get("name") == "lookup" and t.get("value_map") == value_map_key for t in rule.transforms)
    ]
    if any(target.endswith(".project") for target in rules_target):
        targets = [s.target_connection_id for s in exception.flow.steps.all() if s.target_connection_id]
        known = ExternalRef.objects.filter(connection_id__in=targets, entity="project").values("record_id")
        suggestions += list(Project.objects.filter(pk__in=known).order_by("code").values_list("code", flat=True)[:200])
    return sorted(set(suggestions))


def exception_waiting(exception: SyncException, *, limit: int = 20) -> dict:
    """The records parked behind an exception: how many, of which kinds, and the first few, for its page."""
    from integrations.engine.entities import ENTITIES

    parked = exception.parked.filter(status=SyncException.Status.PARKED)
    kinds = []
    for row in parked.values("flow__entity").annotate(n=Count("id")).order_by("-n"):
        spec = ENTITIES.get(row["flow__entity"])
        label = (spec.label if spec else row["flow__entity"]).lower()
        plural = label[:-1] + "ies" if label.endswith("y") and label[-2:-1] not in "aeiou" else label + "s"
        kinds.append(f"{row['n']:,} {label if row['n'] == 1 else plural}")
    rows = list(parked.select_related("flow").order_by("created_at", "id")[:limit])
    count = sum(int(k.split(" ", 1)[0].replace(",", "")) for k in kinds)
    return {"count": count, "kinds": kinds, "rows": rows, "more": count - len(rows)}


def exception_waiting_on(exception: SyncException) -> SyncException | None:
    """For a parked record, the exception a person must act on (the end of its chain of waits)."""
    from integrations.engine.parking import root_of

    if exception.status != SyncException.Status.PARKED or not exception.waiting_on_id:
        return None
    return root_of(exception)


def exception_history(exception: SyncException) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(target_type="exception", target_id=str(exception.pk)).order_by("-at")[:30])


# --- Connections and flows ---------------------------------------------------------------------


def connection_settings(connection: Connection) -> list[tuple[str, str]]:
    """The non-secret settings of a connection, for its page (secrets are never read back out)."""
    from integrations.crypto import CredentialsUnreadable, credentials_decrypt

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
    from integrations.models import FlowStep

    for flow_id, target_id in FlowStep.objects.exclude(target_connection=None).values_list(
        "flow_id", "target_connection_id"
    ):
        uses[target_id].add(flow_id)
    for connection in connections:
        connection.flow_count = len(uses[connection.pk])
        cls = CONNECTORS.get(connection.vendor)
        connection.vendor_label = cls.label if cls else connection.vendor
        connection.category = cls.category if cls else ""
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
    from django.db import connection as db

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


# --- Dashboards ------------------------------------------------------------------------------------


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
    return TimeEntry.objects.aggregate(latest=Max("date"))["latest"]


def utilization_dashboard(*, weeks: int = 8, end: date | None = None) -> dict:
    """Billable hours over capacity per person, practice and week, from canonical time and HR capacity.

    Capacity counts each person who logged time in the period, at their weekly capacity from HR,
    in every week of the period that has time (a person away one week lowers that week's rate).
    """
    end = end or time_entries_latest() or timezone.localdate()
    start, finish = _weeks_back(end, weeks)
    # Two aggregations of the period's entries (index-only on the covering date index): per
    # person, and per week; a few thousand rows reach Python, not one per person-week.
    period = TimeEntry.objects.filter(date__gte=start, date__lte=finish).order_by()
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


def margin_dashboard(*, months: int = 3, end: date | None = None, currency: str = "") -> dict:
    """Revenue at bill rates minus cost at cost rates, by project and customer, in one currency."""
    end = end or time_entries_latest() or timezone.localdate()
    finish = month_range(end)[1] - timedelta(days=1)
    start = end.replace(day=1)
    for _ in range(months - 1):
        start = (start - timedelta(days=1)).replace(day=1)
    # One pass over the period's entries (index-only on the covering date index), folded here.
    grouped = (
        TimeEntry.objects.filter(date__gte=start, date__lte=finish)
        .annotate(month=TruncMonth("date"))
        .values("project_id", "currency", "month")
        .annotate(
            total_hours=Sum("hours"),
            revenue=Sum(_product("bill_rate"), filter=Q(billable=True)),
            cost=Sum(_product("cost_rate")),
        )
        .order_by()
    )
    hours_by_currency: dict[str, Decimal] = defaultdict(Decimal)
    for row in grouped:
        hours_by_currency[row["currency"]] += row["total_hours"] or 0
    currencies = sorted(hours_by_currency, key=lambda code: -hours_by_currency[code])
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
    customers = dict(
        Customer.objects.filter(pk__in={p["customer_id"] for p in projects.values()}).values_list("pk", "name")
    )
    by_project = []
    by_customer: dict[str, dict] = defaultdict(
        lambda: {"revenue": Decimal(0), "cost": Decimal(0), "hours": Decimal(0), "projects": 0}
    )
    for row in rows:
        project = projects.get(row["project_id"], {})
        revenue = row["revenue"] or Decimal(0)
        cost = row["cost"] or Decimal(0)
        customer = customers.get(project.get("customer_id")) or "No customer"
        by_project.append(
            {
                "code": project.get("code", ""),
                "name": project.get("name", ""),
                "customer": customer,
                "hours": row["total_hours"] or 0,
                "revenue": revenue,
                "cost": cost,
                "margin": revenue - cost,
                "margin_percent": _percent(revenue - cost, revenue),
            }
        )
        entry = by_customer[customer]
        entry["revenue"] += revenue
        entry["cost"] += cost
        entry["hours"] += row["total_hours"] or 0
        entry["projects"] += 1
    by_project.sort(key=lambda row: -row["revenue"])
    customers_rows = sorted(
        (
            {
                "customer": name,
                **figures,
                "margin": figures["revenue"] - figures["cost"],
                "margin_percent": _percent(figures["revenue"] - figures["cost"], figures["revenue"]),
            }
            for name, figures in by_customer.items()
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
    from django.db.models import DecimalField, ExpressionWrapper, F

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
        SyncRun.objects.filter(status__in=DONE)
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


# --- Dashboards from the shared cache ----------------------------------------------------------
#
# A dashboard reads up to a million rows (100–500 ms). Beat recomputes the ones people look at
# once a minute (`dashboards_refresh`), so a request only reads the cache. Figures past the minute
# are served as they are, the page saying "as of HH:MM", while a worker recomputes them (stale
# while revalidate); only figures nobody refreshed for DASHBOARD_KEEP (no worker running, or a
# view nobody opened lately) are computed in the request. Every key names the client schema.

DASHBOARD_FRESH = 60
DASHBOARD_KEEP = 600
DASHBOARDS = {
    "exceptions": lambda sla_hours=None: exceptions_dashboard(sla_hours=sla_hours),
    "utilization": lambda weeks=8, end=None: utilization_dashboard(weeks=weeks, end=_day(end)),
    "margin": lambda months=3, end=None, currency="": margin_dashboard(months=months, end=_day(end), currency=currency),
    "sync": lambda days=14: sync_health_dashboard(days=days),
}


def _day(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


# How many of a workspace's dashboard variants beat keeps fresh, and how many it remembers. Every
# distinct set of parameters is a variant read from up to a million rows: without a bound, anyone
# in the workspace could have beat recompute hundreds of them every minute, and fill the shared
# cache with them. The ones over the bound are still served, and recomputed when someone opens
# them stale; only beat's every-minute refresh is kept for these.
DASHBOARD_REFRESHED = 8
DASHBOARD_DEFAULTS = {
    "utilization": {"weeks": 8, "end": None},
    "margin": {"months": 3, "end": None, "currency": ""},
    "sync": {"days": 14},
}


def time_entries_span() -> tuple[date, date] | None:
    """The first and last day with time in the current schema (two index lookups), kept a minute."""
    key = f"dash:{db.schema_name}:time-span"
    span = cache.get(key)
    if span is None:
        found = TimeEntry.objects.aggregate(first=Min("date"), latest=Max("date"))
        span = (found["first"], found["latest"]) if found["latest"] else ()
        cache.set(key, span, DASHBOARD_FRESH)
    return span or None


def dashboard_end(value: date | None, *, period: str) -> str | None:
    """The `end` a utilization ("week") or margin ("month") dashboard asks for, as the variant it
    is kept under: the last day of its week or month, within the days that have time; None (the
    latest period, the default page) from the latest period of the data on. Figures depend on the
    period only, so any day of it is the same variant, and there are as many as periods of data."""
    if value is None:
        return None
    span = time_entries_span()
    if span is None:
        return None

    def closing(day: date) -> date:
        if period == "week":
            return day + timedelta(days=6 - day.weekday())
        return month_range(day)[1] - timedelta(days=1)

    first, latest = span
    value = closing(min(max(value, first), latest))
    return None if value >= closing(latest) else value.isoformat()


def dashboard_key(name: str, params: dict, *, schema: str | None = None) -> str:
    """Params are JSON values (dates as ISO strings): a refresh task carries them as they are."""
    variant = "&".join(f"{k}={params[k]}" for k in sorted(params))
    return f"dash:{schema or db.schema_name}:{name}:{variant}"


def _demand_key(schema: str) -> str:
    return f"dash-demand:{schema}"


def dashboard_peek(name: str, params: dict, *keys: str) -> tuple[datetime | None, dict]:
    """When the figures were computed, and other cached values kept beside them (a rendered page),
    in one round trip without loading the figures. Stale figures are queued for recomputing; a
    view nobody asked for lately is put back on beat's list."""
    key = dashboard_key(name, params)
    found = cache.get_many([f"{key}:at", f"{key}:seen", *keys])
    computed_at = found.get(f"{key}:at")
    if f"{key}:seen" not in found:
        _dashboard_wanted(name, params)
    if computed_at is not None and (timezone.now() - computed_at).total_seconds() > DASHBOARD_FRESH + 15:
        if cache.add(f"{key}:queued", 1, DASHBOARD_FRESH):
            from integrations.tasks import dashboards_refresh

            try:
                dashboards_refresh.delay([[name, params]])
            except Exception:  # noqa: BLE001 - a broker down must not take the page down with it
                logger.warning("Could not queue a dashboard refresh for %s", key, exc_info=True)
    return computed_at, {k: found[k] for k in keys if k in found}


def dashboard_figures(name: str, params: dict) -> dict:
    """The figures from the cache, or computed now when there are none (once: others wait for it)."""
    key = dashboard_key(name, params)
    data = cache.get(key)
    if data is not None:
        return data
    if not cache.add(f"{key}:computing", 1, 30):
        for _ in range(100):  # another process is computing them: wait up to 10 s
            time_module.sleep(0.1)
            data = cache.get(key)
            if data is not None:
                return data
    try:
        return dashboard_compute(name, params)
    finally:
        cache.delete(f"{key}:computing")


def dashboard_compute(name: str, params: dict) -> dict:
    """Compute and store one dashboard of the current schema (beat's refresh, or a cold request)."""
    with planner():
        data = DASHBOARDS[name](**params)
    data["computed_at"] = timezone.now()
    key = dashboard_key(name, params)
    cache.set_many({key: data, f"{key}:at": data["computed_at"]}, DASHBOARD_KEEP)
    return data


def _dashboard_wanted(name: str, params: dict) -> None:
    """Someone is looking at this dashboard: beat keeps it fresh for the next ten minutes, if it is
    a default page or among the DASHBOARD_REFRESHED asked for last."""
    key = dashboard_key(name, params)
    now = time_module.time()
    cache.set(f"{key}:seen", now, DASHBOARD_KEEP)
    demand = cache.get(_demand_key(db.schema_name)) or {}
    demand[key] = [name, params, now]
    if len(demand) > 4 * DASHBOARD_REFRESHED:  # the list itself stays small: forget the oldest
        demand = dict(sorted(demand.items(), key=_demand_rank)[: 2 * DASHBOARD_REFRESHED])
    cache.set(_demand_key(db.schema_name), demand, None)


def _demand_rank(item) -> tuple:
    """Default pages first, then the latest asked for."""
    _key, (name, params, *asked) = item
    return (params != DASHBOARD_DEFAULTS.get(name, params), -(asked[0] if asked else 0))


def dashboards_wanted(schema: str) -> list[list]:
    """The dashboards of `schema` beat refreshes: of those someone looked at in the last
    DASHBOARD_KEEP seconds, the default pages and the latest asked for, DASHBOARD_REFRESHED at most.
    Others leave the list."""
    demand = cache.get(_demand_key(schema)) or {}
    if not demand:
        return []
    seen = cache.get_many([f"{key}:seen" for key in demand])
    wanted = {key: entry for key, entry in demand.items() if f"{key}:seen" in seen}
    if len(wanted) != len(demand):
        cache.set(_demand_key(schema), wanted, None)
    ranked = sorted(wanted.items(), key=_demand_rank)[:DASHBOARD_REFRESHED]
    return [[name, params] for _key, (name, params, *_asked) in ranked]


# --- Overview and audit ----------------------------------------------------------------------------


def workspace_overview(*, sla_hours: int | None) -> dict:
    connections = list(Connection.objects.values("status"))
    flows = Flow.objects.aggregate(total=Count("id"), enabled=Count("id", filter=Q(enabled=True)))
    live = SyncException.objects.filter(status=SyncException.Status.OPEN)
    wanted = {"open": live}
    if sla_hours:
        wanted["past_sla"] = live.filter(created_at__lt=timezone.now() - timedelta(hours=sla_hours))
    counted = {"past_sla": Tally(0), **bounded_counts(wanted)}
    return {
        "open": counted["open"],
        "past_sla": counted["past_sla"],
        "connections": len(connections),
        "failing": sum(1 for c in connections if c["status"] == Connection.Status.FAILING),
        "flows": flows["total"],
        "flows_enabled": flows["enabled"],
        "last_success": SyncRun.objects.filter(status__in=DONE)
        .order_by("-finished_at")
        .values_list("finished_at", flat=True)
        .first(),
        "recent_runs": list(SyncRun.objects.select_related("flow").order_by("-queued_at", "-id")[:6]),
    }


AUDIT_PAGE_SIZE = 50


def audit_events(
    *, action: str = "", actor: str = "", target_type: str = "", q: str = "", since=None, until=None, after: str = ""
) -> tuple[list[AuditEvent], str | None]:
    qs = AuditEvent.objects.all()
    if action:
        qs = qs.filter(action=action) if "." in action else qs.filter(action__startswith=f"{action}.")
    if actor:
        qs = qs.filter(actor_email__icontains=actor)
    if target_type:
        qs = qs.filter(target_type=target_type)
    if q:
        qs = qs.filter(summary__icontains=q)
    if since:
        qs = qs.filter(at__date__gte=since)
    if until:
        qs = qs.filter(at__date__lte=until)
    if after:
        try:
            at_micros, pk = (int(part) for part in after.split(".", 1))
            moment = datetime.fromtimestamp(at_micros // 1_000_000, tz=UTC).replace(microsecond=at_micros % 1_000_000)
            qs = qs.filter(at__lte=moment).filter(Q(at__lt=moment) | Q(pk__lt=pk))
        except (ValueError, OverflowError, OSError):
            pass
    events = list(qs.order_by("-at", "-id")[: AUDIT_PAGE_SIZE + 1])
    more = len(events) > AUDIT_PAGE_SIZE
    events = events[:AUDIT_PAGE_SIZE]
    next_cursor = None
    if more and events:
        last = events[-1]
        next_cursor = f"{int(last.at.timestamp()) * 1_000_000 + last.at.microsecond}.{last.pk}"
    return events, next_cursor


def audit_action_groups() -> list[str]:
    return sorted({value.split(".", 1)[0] for value in distinct_values(AuditEvent, "action")})


def flows_counted_by_plan(environment: str = Environment.PRODUCTION) -> int:
    """Flows a plan's limit counts in one environment (Sandbox mirrors Production, so each has the plan's
    allowance): every hand-built flow, and packaged flows that write somewhere (a template's reference flows
    only read into the canonical store and are free)."""
    counted = Flow.objects.filter(Q(template_key="") | Q(steps__isnull=False), environment=environment)
    return counted.distinct().count()


# --- Alerts -----------------------------------------------------------------------------------


def alert_recipients() -> list[NotificationRecipient]:
    """Everyone the workspace emails, with the flows each is limited to (none: every flow)."""
    return list(NotificationRecipient.objects.prefetch_related("flows").order_by("email"))


def alert_flows(*, chosen=()) -> list[Flow]:
    """Flows a recipient can be limited to: the main flows (a reference flow fails inside the flow that
    runs it), and any already chosen."""
    flows = Flow.objects.filter(Q(dependents__isnull=True) | Q(pk__in=[flow.pk for flow in chosen]))
    return list(flows.distinct().order_by("name"))


def flow_alert_recipients(flow: Flow) -> list[NotificationRecipient]:
    """Who hears about `flow`: recipients of every flow and those limited to it, each with
    `flow_events`, their events that concern it (won deals only if the flow announces them)."""
    events = ["on_run_failed", "on_connection_failed"]
    if flow.steps.filter(action=FlowStep.Action.NOTIFY).exists():
        events.append("on_deal_won")
    recipients = NotificationRecipient.objects.filter(Q(flows__isnull=True) | Q(flows=flow)).distinct()
    found = []
    for recipient in recipients.prefetch_related("flows").order_by("email"):
        recipient.flow_events = [event for event in events if getattr(recipient, event)]
        if recipient.flow_events:
            found.append(recipient)
    return found
