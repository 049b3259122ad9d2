"""The orchestrator: read a page, map, validate, upsert canonical, write each step, commit, advance.

The cursor moves only in the same transaction that records a page's outcome, after its target
writes returned; a crash before that re-reads the page, and every write is an upsert keyed by
our record key or the target's id, so nothing is duplicated. Before anything is created in a
system, that system's records are read (its reference flows, under a lock every workspace shares)
and the ones already there are linked instead. A record held up by another exception is parked
behind it (engine.parking); every record read gets a RunRecord saying where it went.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from django.db import DataError, IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from connectors.base import (
    AuthenticationFailed,
    ConnectorError,
    DestinationRefused,
    OutboundRecord,
    RejectedRecord,
    SourceRecord,
)
from integrations.engine import parking
from integrations.engine.entities import ENTITIES
from integrations.engine.issues import exception_raise, exceptions_resolve_for_records
from integrations.engine.mapping import (
    MISSING,
    MappingContext,
    Problem,
    Ref,
    Rule,
    apply_mapping,
    get_path,
    split_entities,
)
from integrations.engine.store import CanonicalStore, cost_rate_on
from integrations.engine.views import canonical_view, record_key
from integrations.models import (
    ExternalRef,
    Flow,
    FlowStep,
    Invoice,
    InvoiceLine,
    RunRecord,
    SyncException,
    SyncRun,
    TimeEntry,
    ValueMap,
)

logger = logging.getLogger("integrations.engine")


class ConnectionBroken(Exception):
    """A connection refused our credentials or address: stop the run, do not fill the queue."""

    def __init__(self, connection, error: Exception):
        super().__init__(str(error))
        self.connection = connection
        self.error = error


@dataclass
class Item:
    """One source record on its way through a run."""

    source: SourceRecord
    entities: dict[str, dict] = field(default_factory=dict)
    records: dict = field(default_factory=dict)
    created: bool = False  # a canonical record was created for it
    updated: bool = False  # a canonical record changed
    linked: bool = False  # its canonical record was found by match keys (another system brought it)
    failed: bool = False
    skipped: bool = False
    exception_id: int | None = None  # the exception it ended in
    parked_on: int | None = None  # the exception it waits on
    changed_entities: set = field(default_factory=set)  # canonical records this item created or changed
    targets: list[dict] = field(default_factory=list)  # what each target did: created, linked, updated...

    def payload(self) -> dict:
        return {
            "external_id": self.source.external_id,
            "updated_at": self.source.updated_at,
            "data": dict(self.source.data),
        }

    @property
    def first_sync(self) -> bool:
        return self.created or self.linked

    @property
    def outcome(self) -> str:
        if self.skipped:
            return RunRecord.Outcome.SKIPPED
        if self.parked_on:
            return RunRecord.Outcome.PARKED
        if self.failed:
            return RunRecord.Outcome.EXCEPTION
        actions = {target["action"] for target in self.targets}
        if "created" in actions:
            return RunRecord.Outcome.CREATED
        if "linked" in actions:
            return RunRecord.Outcome.LINKED
        if "updated" in actions:
            return RunRecord.Outcome.UPDATED
        if self.created:
            return RunRecord.Outcome.CREATED
        if self.linked:
            return RunRecord.Outcome.LINKED
        if self.updated:
            return RunRecord.Outcome.UPDATED
        return RunRecord.Outcome.UNCHANGED


COUNTS = ("read", "created", "linked", "updated", "unchanged", "parked", "failed", "skipped")
OUTCOME_COUNT = {
    RunRecord.Outcome.CREATED: "created",
    RunRecord.Outcome.LINKED: "linked",
    RunRecord.Outcome.UPDATED: "updated",
    RunRecord.Outcome.UNCHANGED: "unchanged",
    RunRecord.Outcome.PARKED: "parked",
    RunRecord.Outcome.EXCEPTION: "failed",
    RunRecord.Outcome.SKIPPED: "skipped",
}


@dataclass
class Tally:
    """Where a run's records went; everything but `read` adds up to `read`."""

    read: int = 0
    created: int = 0
    linked: int = 0
    updated: int = 0
    unchanged: int = 0
    parked: int = 0
    failed: int = 0
    skipped: int = 0

    def add(self, item: Item) -> None:
        name = OUTCOME_COUNT[item.outcome]
        setattr(self, name, getattr(self, name) + 1)


def rules_of(mapping) -> list[Rule]:
    return [
        Rule(
            target=r.target,
            sources=tuple(r.sources),
            transforms=tuple(r.transforms),
            required=r.required,
            label=r.label,
        )
        for r in mapping.rules.all()
    ]


def matches_filter(data, source_filter: dict) -> bool:
    if not source_filter:
        return True
    value = get_path(data, source_filter["path"])
    if "in" in source_filter:
        return value in source_filter["in"]
    if "equals" in source_filter:
        return value == source_filter["equals"]
    if "contains" in source_filter:  # a list field holding this value (an issue's labels)
        return isinstance(value, list | tuple) and source_filter["contains"] in value
    return True


def month_bounds(day: date) -> tuple[date, date]:
    start = day.replace(day=1)
    following = (start.replace(day=28) + timezone.timedelta(days=4)).replace(day=1)
    return start, following - timezone.timedelta(days=1)


class FlowRunner:
    """Runs one flow's pages. `link_before_create(connection, object)` is a context manager the services
    give: it locks that target system for every workspace and reads its records again, so a record another
    run created a moment ago is linked, not created twice."""

    def __init__(
        self,
        flow: Flow,
        run: SyncRun,
        *,
        connector_for: Callable,
        notify: Callable | None = None,
        link_before_create: Callable | None = None,
    ):
        self.flow = flow
        self.run = run
        self.connector_for = connector_for
        self.notify = notify
        self.link_before_create = link_before_create or (lambda connection, object_name: nullcontext())
        self.source_connection = flow.source_connection
        self.source = connector_for(self.source_connection)
        steps = list(flow.steps.select_related("target_connection", "outbound_mapping"))
        self.outbound_rules = {s.pk: rules_of(s.outbound_mapping) for s in steps if s.outbound_mapping}
        # A target added to a live flow has no rules until someone maps it: writing would send empty
        # records, and refusing the whole run would stop the flow's schedule. Skip it and say so.
        self.skipped_steps = [s for s in steps if _unmapped_write(s, self.outbound_rules)]
        self.steps = [s for s in steps if s not in self.skipped_steps]
        self.targets = {s.pk: connector_for(s.target_connection) for s in self.steps if s.target_connection}
        self.inbound_rules = rules_of(flow.inbound_mapping)
        maps = list(ValueMap.objects.prefetch_related("entries"))
        self.context = MappingContext(
            value_maps={vm.key: vm.as_dict() for vm in maps}, value_map_names={vm.key: vm.name for vm in maps}
        )
        lookup_maps = {
            rule.target: t["value_map"]
            for rule in self.inbound_rules
            for t in rule.transforms
            if t.get("name") == "lookup"
        }
        self._in_target: dict[tuple[int, int], bool] = {}
        self._marked: set[tuple[int, date]] = set()
        self._causes: dict[str, SyncException] = {}
        invoice_steps = [s for s in self.steps if s.action == FlowStep.Action.INVOICE]
        self.billing_target = self.targets[invoice_steps[0].pk].label if invoice_steps else None
        # A flow that maps a person's cost rate says so when the source has none (employee to resource).
        self.maps_cost_rate = any(rule.target == "rate.amount" for rule in self.inbound_rules)
        self.store: CanonicalStore = CanonicalStore(
            source_connection=self.source_connection,
            category=self.source.category,
            lookup_maps=lookup_maps,
            value_maps=self.context.value_maps,
            match_keys=flow.match_keys,
        )
        self.store.inbound_rules = self.inbound_rules

    @property
    def note(self) -> str:
        """What the run should tell people beyond its counts: the targets it skipped."""
        return steps_skipped_note(self.skipped_steps)

    # -- the whole run ------------------------------------------------------------------------
    def execute(self, *, deadline: float | None = None, on_page: Callable | None = None) -> tuple[Tally, bool]:
        """Read and handle pages since the cursor; stop after `deadline` (time.monotonic) between pages.

        Returns the counts and whether the source had no more pages.
        """
        total = Tally()
        try:
            for page in self.source.read(self.flow.source_object, since=self.flow.cursor or None):
                tally = self.process(page.records, page.rejects)
                self.commit_page(tally, cursor=page.cursor)
                total = _sum(total, tally)
                if on_page:
                    on_page(page)
                # A slice ends between pages, and only where the source gave a place to resume from: a read
                # that has none until its last page (a list in id order) would start over and read twice.
                if deadline is not None and time.monotonic() > deadline and page.has_more and page.cursor:
                    self.flush()
                    return total, False
            self.flush()
        except (AuthenticationFailed, DestinationRefused) as error:
            raise ConnectionBroken(self.source_connection, error) from error
        return total, True

    def commit_page(self, tally: Tally, cursor: str | None) -> None:
        with transaction.atomic():
            SyncRun.objects.filter(pk=self.run.pk).update(
                **{name: F(name) + getattr(tally, name) for name in COUNTS if getattr(tally, name)}
            )
            if cursor:
                Flow.objects.filter(pk=self.flow.pk).update(cursor=cursor, cursor_updated_at=timezone.now())
                self.flow.cursor = cursor

    # -- one batch of source records ----------------------------------------------------------
    def process(self, records: Iterable[SourceRecord], rejects: Iterable[RejectedRecord] = ()) -> Tally:
        tally = Tally()
        rows: list[RunRecord] = []
        for reject in rejects:
            tally.read += 1
            tally.failed += 1
            exception = self.fail(
                None,
                code="MALFORMED_RECORD",
                message=f"A {self.flow.source_object} record from {self.source.label} could not be read: {reject.reason}",
                external_id=reject.external_id or "",
                payload={"raw": _jsonable(reject.raw)},
                fix=[{"action": "retry"}],
            )
            rows.append(
                self._run_record(external_id=reject.external_id or "", outcome="exception", exception=exception)
            )
        items = [Item(source=record) for record in records]
        tally.read += len(items)
        self.store.prefetch_primary(self.flow.source_object, [item.source.external_id for item in items])
        live = []
        # One transaction for the page's canonical upserts (a savepoint per record inside), so a
        # page costs one commit, not one per record.
        with transaction.atomic():
            for item in items:
                if not matches_filter(item.source.data, self.flow.source_filter):
                    item.skipped = True
                    continue
                if self.upsert(item):
                    live.append(item)
        for step in self.steps:
            live = [item for item in live if not item.failed]
            if not live:
                break
            try:
                if step.action == FlowStep.Action.WRITE:
                    self.write_step(step, live)
                elif step.action == FlowStep.Action.INVOICE:
                    self.invoice_step(step, live)
                elif step.action == FlowStep.Action.NOTIFY and self.notify:
                    # Delivery leadership hears of work set up somewhere for the first time, not of history.
                    self.notify(step=step, items=[i for i in live if any(t["action"] == "created" for t in i.targets)])
            except (AuthenticationFailed, DestinationRefused) as error:
                raise ConnectionBroken(step.target_connection, error) from error
        synced = [item.source.external_id for item in items if not item.failed and not item.skipped]
        if synced:
            exceptions_resolve_for_records(flow=self.flow, object_name=self.flow.source_object, external_ids=synced)
        for item in items:
            tally.add(item)
            rows.append(self._item_record(item))
        RunRecord.objects.bulk_create(rows, batch_size=500)
        return tally

    def _item_record(self, item: Item) -> RunRecord:
        primary = item.records.get(self.flow.entity) if item.records else None
        return self._run_record(
            external_id=item.source.external_id,
            outcome=item.outcome,
            exception=item.parked_on or item.exception_id,
            description=_describe_source(self.flow, item, self.store)[:200],
            entity=self.flow.entity if primary is not None else "",
            record_id=getattr(primary, "pk", None),
            targets=item.targets,
        )

    def _run_record(self, *, external_id: str, outcome: str, exception=None, **fields) -> RunRecord:
        return RunRecord(
            run_id=self.run.pk,
            flow_id=self.flow.pk,
            object=self.flow.source_object,
            external_id=external_id[:200],
            outcome=outcome,
            exception_id=getattr(exception, "pk", exception),
            **fields,
        )

    def upsert(self, item: Item) -> bool:
        mapped = apply_mapping(self.inbound_rules, item.source.data, self.context)
        item.entities = split_entities(mapped.values)  # even a partly mapped record names itself in its exception
        if not mapped.ok:
            self.fail_problems(item, mapped.problems)
            return False
        try:
            with transaction.atomic():
                result = self.store.upsert(
                    entities=item.entities,
                    primary=self.flow.entity,
                    object_name=self.flow.source_object,
                    external_id=item.source.external_id,
                )
                problems = result.problems or self.validate(item, result.records)
                if problems:
                    transaction.set_rollback(True)
        except (DataError, IntegrityError) as error:
            # A value the database refuses (too long, out of range): this record's exception, not the run's end.
            logger.warning(
                "Record %s of flow %s refused by the database: %s", item.source.external_id, self.flow.pk, error
            )
            problems = [
                Problem(self.flow.entity, "INVALID_RECORD", f"a value does not fit: {str(error).splitlines()[0]}")
            ]
        if problems:
            self.store.forget(self.flow.source_object, item.source.external_id)
            self.fail_problems(item, problems)
            return False
        item.records = result.records
        item.changed_entities = result.created | result.changed
        item.created = self.flow.entity in result.created
        item.linked = self.flow.entity in result.linked
        item.updated = bool(result.changed) or (bool(result.created) and not item.created)
        for conflict in result.conflicts:
            self.conflict(item, conflict)
        if "rate" in result.skipped and self.maps_cost_rate and "resource" in result.records:
            self.cost_rate_missing(result.records["resource"])
        self.check_leaver(item)
        return True

    def check_leaver(self, item: Item) -> None:
        """A person who left but still has work booked after their last day needs a human decision."""
        person = item.records.get("resource")
        if person is None or person.status not in ("terminated", "inactive") or not person.termination_date:
            return
        later = (
            TimeEntry.objects.filter(resource=person, date__gt=person.termination_date)
            .select_related("project")
            .order_by("date")
            .first()
        )
        if later is None:
            return
        self.decision(
            item,
            "LEAVER_WITH_OPEN_WORK",
            f"{person} left on {person.termination_date:%-d %b %Y} but still has time booked on "
            f"{later.date:%-d %b %Y} on project {later.project.code}: reassign the work, then ignore this.",
            [{"action": "assign"}, {"action": "ignore"}],
        )

    # -- validation before any write ----------------------------------------------------------
    def validate(self, item: Item, records: dict) -> list[Problem]:
        """What stops a record before any write: its project is not in the system it is billed in, or its
        person has no cost rate. Each is a cause the record is parked behind (fail_problems)."""
        entry = records.get("time_entry") or records.get("expense")
        if entry is None:
            return []
        for step in self.steps:
            if step.target_connection and step.action in (FlowStep.Action.WRITE, FlowStep.Action.INVOICE):
                key = (step.target_connection_id, entry.project_id)
                if key not in self._in_target:
                    self._in_target[key] = ExternalRef.objects.filter(
                        connection=step.target_connection, entity="project", record_id=entry.project_id, alias=False
                    ).exists()
                if not self._in_target[key]:
                    project = entry.project
                    return [
                        Problem(
                            "project",
                            "PROJECT_NOT_IN_TARGET",
                            f"project code not found in {self.targets[step.pk].label}",
                            self._project_code_fix(item, project.code),
                            {"project": project, "step": step},
                        )
                    ]
        if isinstance(entry, TimeEntry) and entry.cost_rate is None:
            rate = cost_rate_on(entry.resource, entry.date)
            if rate is None:
                return [
                    Problem(
                        "cost_rate",
                        "MISSING_COST_RATE",
                        f"{entry.resource} has no cost rate on {entry.date:%-d %b %Y}",
                        None,
                        entry.resource,
                    )
                ]
            entry.cost_rate = rate.amount
            entry.save(update_fields=["cost_rate"])
        return []

    def _project_code_fix(self, item: Item, code: str) -> dict | None:
        for target, key in self.store.lookup_maps.items():
            if target.endswith(".project"):
                original = _original_value(self.inbound_rules, target, item.source.data)
                if original is None or original.isdigit():
                    original = code  # a reference by id: the clerk maps the project's code
                return {"action": "map_value", "value_map": key, "value": original}
        return None

    # -- target writes ------------------------------------------------------------------------
    def write_step(self, step: FlowStep, items: list[Item], object_name: str | None = None) -> None:
        """Write the step's records: updates to the ones the target has, and, after looking again for
        the ones it may have (link_before_create), creates for the rest."""
        target = self.targets[step.pk]
        self._fail_object = object_name
        by_record: dict[int, list[Item]] = defaultdict(list)
        for item in items:
            record = item.records.get(step.entity)
            if record is not None:
                by_record[record.pk].append(item)
        updates: list[tuple[OutboundRecord, list[Item], object]] = []
        unlinked: list[tuple[list[Item], object]] = []
        for group in by_record.values():
            record = group[0].records[step.entity]
            blocker = self._blocked_in_target(step, record) if object_name is None else None
            if blocker is not None and any(step.entity in item.changed_entities for item in group):
                for item in group:
                    self.park(item, blocker)
                continue
            view = canonical_view(step.entity, record, step.target_connection)
            if view["ref"] is None and object_name is None:
                unlinked.append((group, record))
                continue
            entry = self._outbound(step, group, record, view, object_name)
            if entry is not None:
                updates.append(entry)
        creates: list[tuple[OutboundRecord, list[Item], object]] = []
        if unlinked:
            with self.link_before_create(step.target_connection, step.target_object):
                for group, record in unlinked:
                    view = canonical_view(step.entity, record, step.target_connection)
                    entry = self._outbound(step, group, record, view, object_name)
                    if entry is not None:
                        creates.append(entry)
                self._send(step, target, creates)
        self._send(step, target, updates)

    def _outbound(self, step: FlowStep, group: list[Item], record, view: dict, object_name: str | None):
        """The record as the target's fields, or None when nothing needs writing (then said in the items)."""
        ref = view["ref"]
        if ref and object_name is None and not any(step.entity in i.changed_entities for i in group):
            # Already in the target and nothing changed here: no call. A record's first sync that found the
            # target's record already there is "linked"; later runs leave it "unchanged".
            for item in group:
                action = "linked" if item.first_sync else "unchanged"
                item.targets.append(self._target_row(step, action, ref))
            return None
        mapped = apply_mapping(self.outbound_rules.get(step.pk, []), view, self.context)
        if not mapped.ok:
            for item in group:
                self.fail_problems(item, mapped.problems, step=step)
            return None
        return OutboundRecord(external_id=view["key"], fields=mapped.values, target_id=ref), group, record

    def _send(self, step: FlowStep, target, outbound: list) -> None:
        """Records the target has are updated by its id; the others are upserted by our key, so a retry
        after a crash finds what the first attempt created instead of creating it again."""
        updates = [entry for entry in outbound if entry[0].target_id]
        upserts = [entry for entry in outbound if not entry[0].target_id]
        for mode, entries in (("update", updates), ("upsert", upserts)):
            self._send_batches(step, target, entries, mode)

    def _send_batches(self, step: FlowStep, target, outbound: list, mode: str) -> None:
        size = max(1, target.batch_size(step.target_object))
        for start in range(0, len(outbound), size):
            batch = outbound[start : start + size]
            try:
                results = target.write(step.target_object, [entry[0] for entry in batch], mode=mode)
            except (AuthenticationFailed, DestinationRefused):
                raise
            except ConnectorError as error:
                for _, group, _ in batch:
                    for item in group:
                        self.fail(
                            item,
                            step=step,
                            code="TARGET_UNAVAILABLE",
                            message=f"{target.label} did not accept the {ENTITIES[step.entity].label.lower()}: {error}",
                            fix=[{"action": "retry"}],
                        )
                continue
            for (_, group, record), result in zip(batch, results, strict=True):
                if result.outcome == "failed":
                    for item in group:
                        self.fail(
                            item,
                            step=step,
                            code=result.error_code or "TARGET_REJECTED",
                            message=f"{_describe(step.entity, record)} could not be written to {target.label}: "
                            f"{result.error_message or 'refused'}",
                            detail=result.error_message or "",
                            fix=[{"action": "edit_field"}, {"action": "retry"}],
                        )
                    continue
                if result.target_id:
                    ExternalRef.objects.update_or_create(
                        connection=step.target_connection,
                        object=step.target_object,
                        entity=step.entity,
                        record_id=record.pk,
                        alias=False,
                        defaults={"external_id": result.target_id},
                    )
                for item in group:
                    # A record's first sync that found the target's record already there linked it, whatever
                    # it then brought up to date.
                    linked = mode == "update" and item.first_sync and result.outcome in ("updated", "unchanged")
                    item.targets.append(
                        self._target_row(step, "linked" if linked else result.outcome, result.target_id)
                    )

    def _target_row(self, step: FlowStep, action: str, target_id) -> dict:
        return {
            "step": step.name,
            "system": self.targets[step.pk].label,
            "object": step.target_object,
            "action": action,
            "id": str(target_id or ""),
        }

    def _blocked_in_target(self, step: FlowStep, record) -> SyncException | None:
        """The exception a write of `record` waits on: the target holds it twice and a person has not said
        which one stands for it. (Records that only point at it, like a project at its customer, use the
        one the target's own data links, so they are not held up.)"""
        prefix = parking.duplicate_cause(
            connection_id=step.target_connection_id, entity=step.entity, record_id=record.pk, external_id=""
        )
        return SyncException.objects.filter(cause__startswith=prefix, status__in=parking.LIVE).first()

    def invoice_step(self, step: FlowStep, items: list[Item]) -> None:
        """Rebuild each affected project-month invoice in the canonical store; `flush` writes them."""
        periods = set()
        for item in items:
            entry = item.records.get("time_entry") or item.records.get("expense")
            if entry is not None:
                periods.add((entry.project_id, month_bounds(entry.date)[0]))
        for project_id, period_start in periods - self._marked:
            invoice_mark(project_id=project_id, period_start=period_start)
            self._marked.add((project_id, period_start))

    def flush(self) -> None:
        """Write every rebuilt invoice to the ERP once, instead of once per page that touched it."""
        for step in self.steps:
            if step.action != FlowStep.Action.INVOICE:
                continue
            self._marked.clear()
            pending = [
                invoice_rebuild(project_id=invoice.project_id, period_start=invoice.period_start)
                for invoice in Invoice.objects.filter(needs_sync=True).only("project_id", "period_start")
            ]
            pending = [invoice for invoice in pending if invoice.lines.exists()]
            carriers = []
            for invoice in pending:
                source = SourceRecord(external_id=invoice.number, updated_at="", data={"invoice": invoice.number})
                carriers.append(Item(source=source, records={"invoice": invoice}))
            for start in range(0, len(carriers), 200):
                chunk = carriers[start : start + 200]
                self.write_step(step, chunk, object_name="invoice")
                written = [c.records["invoice"].pk for c in chunk if not c.failed]
                Invoice.objects.filter(pk__in=written).update(needs_sync=False)
                exceptions_resolve_for_records(
                    flow=self.flow,
                    object_name="invoice",
                    external_ids=[c.source.external_id for c in chunk if not c.failed],
                )
            Invoice.objects.filter(needs_sync=True, lines__isnull=True).update(needs_sync=False)

    # -- exceptions ---------------------------------------------------------------------------
    def fail_problems(self, item: Item, problems: list[Problem], step: FlowStep | None = None) -> None:
        """Record why `item` could not sync: parked behind the exception that holds it up when there is one
        (its project not in the ERP, its company in the CRM twice...), else an exception of its own."""
        first = problems[0]
        if isinstance(first.value, Ref):
            held = parking.record_exception(
                connection=self.source_connection, object_name=first.value.object, external_id=first.value.external_id
            )
            if held is not None:
                self.park(item, parking.root_of(held))
                return
        if first.code == "PROJECT_NOT_IN_TARGET":
            self.park(item, self.project_not_in_target(first.value["project"], first.value["step"], first.fix))
            return
        if first.code == "MISSING_COST_RATE":
            self.park(item, self.cost_rate_missing(first.value))
            return
        if first.code == "DUPLICATE_IN_SOURCE":
            self.duplicate(item, first)
            return
        if first.code == "AMBIGUOUS_MATCH":
            self.ambiguous(item, first)
            return
        if first.code == "PROJECT_NOT_FOUND" and self.billing_target:
            first = Problem(
                first.target,
                "PROJECT_NOT_IN_TARGET",
                f"project code not found in {self.billing_target}",
                first.fix,
                first.value,
            )
            problems = [first, *problems[1:]]
        subject = _describe_source(self.flow, item, self.store)
        verb = "cannot be billed" if self.billing_target else "cannot be synced"
        message = f"{subject} {verb}: {first.message}"
        if len(problems) > 1:
            message += f" (and {len(problems) - 1} more problem{'s' if len(problems) > 2 else ''})"
        fixes = [p.fix for p in problems if p.fix] + [{"action": "retry"}]
        detail = "\n".join(p.message for p in problems)
        self.fail(item, step=step, code=first.code, message=message, detail=detail, fix=fixes)

    def project_not_in_target(self, project, step: FlowStep, fix: dict | None) -> SyncException:
        """The one exception for "project X is not in the ERP" (or, when the ERP has X but could not link
        it, the exception that stops it), whichever flow meets it first."""
        known = parking.subject_exception(connection=step.target_connection, subject=project.code)
        if known is not None:
            return parking.root_of(known)
        label = self.targets[step.pk].label
        cause = parking.not_in_target_cause(
            connection_id=step.target_connection_id, entity="project", record_id=project.pk
        )
        if cause not in self._causes:
            self._causes[cause] = parking.cause_raise(
                cause=cause,
                flow=self.flow,
                run=self.run,
                subject=project.code,
                object_name="project",
                error_code="PROJECT_NOT_IN_TARGET",
                message=f"Project {project.code} is not in {label}, so its time and expenses cannot be billed: "
                f"create it in {label}, or map {project.code} to a {label} project.",
                source_system=self.source.vendor,
                target_system=self.targets[step.pk].vendor,
                fix_actions=[fix, {"action": "retry"}] if fix else [{"action": "retry"}],
            )
        return self._causes[cause]

    def cost_rate_missing(self, person) -> SyncException:
        """The one exception for "this person has no cost rate", which their time waits on."""
        cause = parking.missing_cost_rate_cause(resource_id=person.pk)
        if cause not in self._causes:
            where = self.source.label if self.source.category == "hr" else "your HR system"
            self._causes[cause] = parking.cause_raise(
                cause=cause,
                flow=self.flow,
                run=self.run,
                subject=person.email or str(person),
                object_name="resource",
                error_code="MISSING_COST_RATE",
                message=f"{person} has no cost rate, so their time cannot be costed or billed: "
                f"add it in {where} (the next sync brings it), or set one here.",
                source_system=self.source.vendor,
                fix_actions=[{"action": "set_cost_rate", "resource": person.pk}, {"action": "retry"}],
            )
        return self._causes[cause]

    def duplicate(self, item: Item, problem: Problem) -> None:
        """Two records of the source stand for one record here: one exception for the pair."""
        twin, record_id = problem.value["twin"], problem.value["record"]
        entity = ENTITIES[self.flow.entity]
        record = entity.model.objects.filter(pk=record_id).first()
        name = _describe_source(self.flow, item, self.store)
        system, object_name = self.source.label, self.flow.source_object
        cause = parking.duplicate_cause(
            connection_id=self.source_connection.pk,
            entity=self.flow.entity,
            record_id=record_id,
            external_id=item.source.external_id,
        )
        live = SyncException.objects.filter(cause=cause, status__in=parking.LIVE).exclude(flow=self.flow).first()
        if live is not None:  # another flow reading the same records raised it
            self.park(item, live)
            return
        shown = str(record) if record is not None else twin
        item.failed = True
        exception = exception_raise(
            flow=self.flow,
            run=self.run,
            source_system=self.source.vendor,
            object_name=object_name,
            external_id=item.source.external_id,
            payload=item.payload(),
            error_code="DUPLICATE_IN_SOURCE",
            message=f"{name} ({system} {object_name} {item.source.external_id}) and “{shown}” ({object_name} {twin}) "
            f"look like one {entity.label.lower()} in {system}: say which stands for it, or that they are different.",
            fix_actions=[
                {"action": "same", "keep": twin, "label": f"The same: keep “{shown}” ({twin})"},
                {
                    "action": "same",
                    "keep": item.source.external_id,
                    "label": f"The same: keep “{_subject_of(item, self.flow.entity) or name}” "
                    f"({item.source.external_id})",
                },
                {"action": "different"},
            ],
            subject=_subject_of(item, self.flow.entity) or name,
            cause=cause,
        )
        item.exception_id = exception.pk
        self._supersede(item, keep=exception)

    def ambiguous(self, item: Item, problem: Problem) -> None:
        """A record matching several here: one exception that lets a person pick (the pick is remembered)."""
        entity = ENTITIES[self.flow.entity]
        candidates = list(entity.model.objects.filter(pk__in=problem.value))
        name = _describe_source(self.flow, item, self.store)
        self.fail(
            item,
            code="AMBIGUOUS_MATCH",
            message=f"{name} matches {len(candidates)} {entity.label.lower()}s here: "
            + " and ".join(f"“{c}”" for c in candidates)
            + ": pick the one it is, or say it is a new one.",
            fix=[{"action": "pick", "record": c.pk, "label": str(c)} for c in candidates] + [{"action": "different"}],
        )

    def park(self, item: Item, parent: SyncException) -> None:
        """`item` waits on `parent`: one row that fixing `parent` releases, instead of an exception of its own."""
        item.failed = True
        item.parked_on = parent.pk
        now = timezone.now()
        message = f"Waiting on exception #{parent.pk}: {parent.message}"[:500]
        subject = _describe_source(self.flow, item, self.store)[:200]
        row = SyncException.objects.filter(
            flow=self.flow,
            object=self._fail_object_name(),
            external_id=item.source.external_id,
            error_code=parking.WAITING_ON,
            status__in=(*parking.LIVE, SyncException.Status.PARKED),
        ).first()
        if row is None:
            row = SyncException.objects.create(
                flow=self.flow,
                object=self._fail_object_name(),
                external_id=item.source.external_id,
                error_code=parking.WAITING_ON,
                status=SyncException.Status.PARKED,
                first_run=self.run,
                last_run=self.run,
                source_system=self.source.vendor,
                payload=item.payload(),
                message=message,
                subject=subject,
                waiting_on=parent,
                created_at=now,
                last_seen_at=now,
            )
        else:
            row.status, row.payload, row.waiting_on, row.message, row.last_run, row.last_seen_at = (
                SyncException.Status.PARKED,
                item.payload(),
                parent,
                message,
                self.run,
                now,
            )
            row.save(update_fields=["status", "payload", "waiting_on", "message", "last_run", "last_seen_at"])
        self._supersede(item, keep=row)

    def _fail_object_name(self) -> str:
        return getattr(self, "_fail_object", None) or self.flow.source_object

    def _supersede(self, item: Item, *, keep: SyncException) -> None:
        """A record has one live row: the exception it is in now replaces whatever it was in before."""
        SyncException.objects.filter(
            flow=self.flow,
            object=self._fail_object_name(),
            external_id=item.source.external_id,
            status__in=(*parking.LIVE, SyncException.Status.PARKED),
            cause="",
        ).exclude(pk=keep.pk).exclude(error_code__in=("FIELD_CONFLICT", "LEAVER_WITH_OPEN_WORK")).update(
            status=SyncException.Status.RESOLVED, resolved_at=timezone.now(), waiting_on=None
        )

    def fail(
        self,
        item: Item | None,
        *,
        code: str,
        message: str,
        step: FlowStep | None = None,
        detail: str = "",
        fix: list | None = None,
        external_id: str | None = None,
        payload: dict | None = None,
    ) -> SyncException | None:
        if item is not None:
            if item.failed:
                return None  # one exception per failed record: later steps are parked behind the first
            item.failed = True
            external_id = item.source.external_id
            payload = item.payload()
        target_system = ""
        if step is not None and step.pk in self.targets:
            target_system = self.targets[step.pk].vendor
        object_name = self._fail_object_name()
        if object_name == "invoice" and item is not None:
            payload = {"invoice": item.source.external_id}  # rebuilt from the canonical store on retry
        exception = exception_raise(
            flow=self.flow,
            run=self.run,
            step=step,
            source_system=self.source.vendor,
            target_system=target_system,
            object_name=object_name,
            external_id=external_id or "",
            payload=payload or {},
            error_code=code,
            message=message,
            detail=detail,
            fix_actions=fix,
            subject=(_subject_of(item, self.flow.entity) if item is not None else "") or (external_id or ""),
        )
        if item is not None:
            item.exception_id = exception.pk
            self._supersede(item, keep=exception)
        return exception

    def conflict(self, item: Item, conflict) -> None:
        self.decision(
            item,
            "FIELD_CONFLICT",
            f"{ENTITIES[conflict.entity].label} {conflict.field.replace('_', ' ')} is owned by the "
            f"{conflict.owner.upper()}: {self.source.label} tried to change it from “{conflict.current}” "
            f"to “{conflict.proposed}”; kept “{conflict.current}”.",
            [{"action": "ignore"}],
        )

    def decision(self, item: Item, code: str, message: str, fixes: list) -> None:
        """An exception about a record that did sync: a person decides (issues.DECISIONS)."""
        exception_raise(
            flow=self.flow,
            run=self.run,
            source_system=self.source.vendor,
            object_name=self.flow.source_object,
            external_id=item.source.external_id,
            payload=item.payload(),
            error_code=code,
            message=message,
            fix_actions=fixes,
            subject=_subject_of(item, self.flow.entity),
        )


def _subject_of(item: Item, entity: str) -> str:
    """What a person calls the record: its code, name or email as mapped, else nothing."""
    mapped = item.entities.get(entity, {}) if item.entities else {}
    for name in ("code", "name", "email", "number"):
        value = mapped.get(name)
        if value not in (None, ""):
            return str(value)[:200]
    person = " ".join(str(mapped.get(name) or "") for name in ("first_name", "last_name")).strip()
    return person[:200]


def _unmapped_write(step: FlowStep, outbound_rules: dict) -> bool:
    return (
        step.action == FlowStep.Action.WRITE
        and step.outbound_mapping_id is not None
        and not outbound_rules.get(step.pk)
    )


def steps_skipped_note(steps: list[FlowStep]) -> str:
    """“Skipped “Customer in NetSuite”: it maps no fields yet…”, or "" when nothing was skipped."""
    if not steps:
        return ""
    names = ", ".join(f"“{step.name}”" for step in steps)
    if len(steps) == 1:
        return f"Skipped {names}: it maps no fields yet. Add rules in its mapping to write there."
    return f"Skipped {names}: they map no fields yet. Add rules in their mappings to write there."


def invoice_mark(*, project_id: int, period_start: date) -> None:
    """Note that a project-month has new time or expenses: its invoice is rebuilt and written at flush."""
    from integrations.models import Project

    start, end = month_bounds(period_start)
    updated = Invoice.objects.filter(project_id=project_id, period_start=start).update(needs_sync=True)
    if not updated:
        project = Project.objects.only("code", "customer_id", "currency").get(pk=project_id)
        Invoice.objects.get_or_create(
            project_id=project_id,
            period_start=start,
            defaults={
                "number": f"{project.code}-{start:%Y-%m}",
                "customer_id": project.customer_id,
                "period_end": end,
                "currency": project.currency,
                "needs_sync": True,
            },
        )


def invoice_rebuild(*, project_id: int, period_start: date) -> Invoice:
    """The canonical invoice of a project and month, from all its approved billable time and expenses."""
    from integrations.models import Expense, Project

    project = Project.objects.select_related("customer").get(pk=project_id)
    start, end = month_bounds(period_start)
    entries = TimeEntry.objects.filter(project=project, date__range=(start, end), approved=True, billable=True)
    expenses = Expense.objects.filter(project=project, date__range=(start, end), billable=True)
    with transaction.atomic():
        invoice, _ = Invoice.objects.update_or_create(
            project=project,
            period_start=start,
            defaults={
                "number": f"{project.code}-{start:%Y-%m}",
                "customer": project.customer,
                "period_end": end,
                "currency": project.currency,
                "needs_sync": True,
            },
        )
        invoice.lines.all().delete()
        lines = []
        by_rate: dict[Decimal, Decimal] = defaultdict(Decimal)
        for hours, rate in entries.values_list("hours", "bill_rate"):
            by_rate[rate or Decimal(0)] += hours
        for rate, hours in sorted(by_rate.items()):
            lines.append(
                InvoiceLine(
                    invoice=invoice,
                    description=f"Professional services {start:%B %Y} at {rate}/h",
                    quantity=hours,
                    rate=rate,
                    amount=(hours * rate).quantize(Decimal("0.01")),
                )
            )
        for expense in expenses:
            lines.append(
                InvoiceLine(
                    invoice=invoice,
                    kind="expense",
                    description=f"Expense: {expense.category or 'other'}",
                    quantity=1,
                    rate=expense.amount,
                    amount=expense.amount,
                )
            )
        InvoiceLine.objects.bulk_create(lines)
        invoice.total = sum((line.amount for line in lines), Decimal(0))
        invoice.save(update_fields=["total", "updated_at"])
    return invoice


def _sum(a: Tally, b: Tally) -> Tally:
    return Tally(**{name: getattr(a, name) + getattr(b, name) for name in COUNTS})


def _jsonable(value):
    import json

    try:
        json.dumps(value)
        return value
    except TypeError:
        return repr(value)


def _original_value(rules: list[Rule], target: str, data) -> str | None:
    """The value as the source system spelled it, before any lookup: what a clerk maps."""
    for rule in rules:
        if rule.target == target and rule.sources:
            value = get_path(data, rule.sources[0])
            return None if value is MISSING or value is None else str(value).strip()
    return None


def _describe(entity: str, record) -> str:
    spec = ENTITIES[entity]
    if entity in ("time_entry", "expense"):
        return f"{spec.label} of {record.date:%-d %b} on project {record.project.code}"
    values = {f.name: getattr(record, f.name, "") for f in record._meta.concrete_fields}
    try:
        return (
            spec.describe.format(**values).strip().capitalize()
            if spec.describe != "{pk}"
            else f"{spec.label} {record.pk}"
        )
    except (KeyError, ValueError):
        return f"{spec.label} {record_key(entity, record.pk)}"


def _describe_source(flow: Flow, item: Item, store=None) -> str:
    """“Time entry of 6 Mar on project PRJ-104”, from whatever the mapping produced so far."""
    data = item.source.data
    entity = flow.entity
    label = ENTITIES[entity].label if entity in ENTITIES else flow.source_object
    mapped = item.entities.get(entity, {}) if item.entities else {}
    if entity in ("time_entry", "expense"):
        day = mapped.get("date") or _date_guess(data)
        record = item.records.get(entity) if item.records else None
        code = (
            record.project.code
            if record is not None
            else _project_code_guess(flow, data, store, getattr(store, "inbound_rules", None))
        )
        when = f" of {day:%-d %b}" if isinstance(day, date) else ""
        return f"{label}{when}" + (f" on project {code}" if code else "")
    name = (
        mapped.get("name") or mapped.get("code") or mapped.get("email") or data.get("name") or data.get("displayName")
    )
    return f"{label} {name}" if name else f"{label} {item.source.external_id}"


def _date_guess(data) -> date | None:
    for key in ("date_performed", "date", "Date"):
        value = data.get(key) if hasattr(data, "get") else None
        if value:
            try:
                return date.fromisoformat(str(value)[:10])
            except ValueError:
                return None
    return None


def _project_code_guess(flow: Flow, data, store=None, rules=None) -> str | None:
    """The project's code as the source names it; a bare id (a reference) is resolved through ExternalRef."""
    for rule in rules if rules is not None else rules_of(flow.inbound_mapping):
        if rule.target.endswith(".project") and rule.sources:
            value = get_path(data, rule.sources[0])
            if value is MISSING or value is None:
                return None
            refs = [t for t in rule.transforms if t.get("name") == "ref"]
            if refs:
                if store is not None:
                    project = store._record("project", store._ref(refs[0]["object"], str(value)))
                    return project.code if project else None
                from integrations.models import Project

                ref = ExternalRef.objects.filter(
                    connection=flow.source_connection, object=refs[0]["object"], external_id=str(value)
                ).first()
                project = Project.objects.filter(pk=ref.record_id).first() if ref else None
                return project.code if project else None
