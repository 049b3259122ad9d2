"""The exception queue: its filters, keyset pages and counters, and what an exception's page reads."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.core.cache import cache
from django.db import connection as db
from django.db.models import Count, Q
from django.utils import timezone

from integrations.models import AuditEvent, Connection, ExternalRef, Flow, Project, SyncException, ValueMap
from integrations.selectors.counting import (
    COUNT_CAP,
    BoundedCount,
    bounded_counts,
    count_estimate,
    distinct_values,
    planner,
)
from integrations.selectors.labels import error_label, vendor_label

LIVE_EXCEPTION = [SyncException.Status.OPEN, SyncException.Status.RETRYING]

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
    matching: BoundedCount
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
    total: BoundedCount | None = None,
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
            total = BoundedCount(len(hits)) if len(hits) <= COUNT_CAP else count_estimate(base, COUNT_CAP)
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
            total = BoundedCount(len(ids))
            qs = qs.filter(pk__in=ids)
        else:
            total = count_estimate(base, COUNT_CAP)
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


def queue_counters(*, user_id: int | None, sla_hours: int | None) -> dict[str, BoundedCount]:
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
    counters = {"mine": BoundedCount(0), "past_sla": BoundedCount(0)}
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
