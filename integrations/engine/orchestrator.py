"""The orchestrator: a run is pages, a page is a few set-based steps.

    read (engine.pages: the next page arrives while this one is written)
    map (engine.mapping) -> plan (engine.store: find, diff, validate; nothing written)
    -> record what cannot sync (engine.failures) -> apply the canonical rows (one transaction)
    -> write each target step (engine.writer) -> exceptions, run records, counts and cursor (one transaction)

and, when the run has read what it will read, invoices rebuilt and written once (engine.invoicing).

The cursor moves only in the transaction that records a page's outcome, after its target writes returned;
a crash before that re-reads the page, and every write is an upsert keyed by our record key or the target's
id, so nothing is duplicated. Before anything is created in a system, that system's records are read (its
reference flows, under a lock every workspace shares) and the ones already there are linked instead. A
record held up by another exception is parked behind it (engine.parking); every record read gets a
RunRecord saying where it went.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from dataclasses import dataclass, field

from django.db import DataError, IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from connectors.base import AuthenticationFailed, DestinationRefused, RejectedRecord, SourceRecord
from integrations.engine import bulk, invoicing, parking
from integrations.engine.describe import describe_item, describe_record, original_value
from integrations.engine.entities import ENTITIES
from integrations.engine.failures import Failures
from integrations.engine.issues import ExceptionBook, exceptions_resolve_for_records
from integrations.engine.mapping import MappingContext, Problem, Rule, apply_mapping, get_path, split_entities
from integrations.engine.pages import gathered, prefetched
from integrations.engine.store import CanonicalStore, cost_rate_on, cost_rates_for
from integrations.engine.writer import StepWriter, Written
from integrations.models import ExternalRef, Flow, FlowStep, RunRecord, SyncException, SyncRun, TimeEntry, ValueMap

logger = logging.getLogger("integrations.engine")

month_bounds = invoicing.month_bounds  # kept here for the callers that import it from the orchestrator


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
    entities: dict[str, dict] = field(default_factory=dict)  # what the mapping made of it, per entity
    records: dict = field(default_factory=dict)  # canonical records it produced or points at, per entity
    plan: dict = field(default_factory=dict)  # entity -> store.Planned, until applied
    problems: list = field(default_factory=list)  # why it cannot sync (mapping.Problem), first one first
    conflicts: list = field(default_factory=list)  # fields another system owns that it tried to change
    skipped_entities: set = field(default_factory=set)  # parts it has nothing for (a person's cost rate)
    created: bool = False  # a canonical record was created for it
    updated: bool = False  # a canonical record changed
    linked: bool = False  # its canonical record was found by match keys (another system brought it)
    failed: bool = False
    skipped: bool = False
    exception_id: int | None = None  # the exception it ended in
    parked_on: int | None = None  # the exception it waits on
    book_key: tuple[str, str] | None = None  # its row in the page's ExceptionBook, for exception_id
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
        for action in ("created", "linked", "updated"):
            if action in actions:
                return action
        if self.created:
            return RunRecord.Outcome.CREATED
        if self.linked:
            return RunRecord.Outcome.LINKED
        if self.updated:
            return RunRecord.Outcome.UPDATED
        return RunRecord.Outcome.UNCHANGED


# A run adds rows faster than autovacuum counts them; with stale counts PostgreSQL plans a page's lookups for a
# table far smaller than it is, and every page gets slower (61 -> 99 ms per page over 100,000 entries, against
# 60 -> 71 ms with this). So the tables a run grows are analysed every this many gathered pages (about 10,000
# records).
STATISTICS_EVERY_PAGES = 10

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

    def add(self, outcome: str) -> None:
        name = OUTCOME_COUNT[outcome]
        setattr(self, name, getattr(self, name) + 1)

    def __add__(self, other: Tally) -> Tally:
        return Tally(**{name: getattr(self, name) + getattr(other, name) for name in COUNTS})


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
        self.flow, self.run, self.notify = flow, run, notify
        self.source_connection = flow.source_connection
        self.source = connector_for(self.source_connection)
        steps = list(flow.steps.select_related("target_connection", "outbound_mapping"))
        outbound_rules = {s.pk: rules_of(s.outbound_mapping) for s in steps if s.outbound_mapping}
        # A target added to a live flow has no rules until someone maps it: writing would send empty
        # records, and refusing the whole run would stop the flow's schedule. Skip it and say so.
        self.skipped_steps = [s for s in steps if _unmapped_write(s, outbound_rules)]
        self.steps = [s for s in steps if s not in self.skipped_steps]
        self.inbound_rules = rules_of(flow.inbound_mapping)
        maps = list(ValueMap.objects.prefetch_related("entries"))
        self.context = MappingContext(
            value_maps={vm.key: vm.as_dict() for vm in maps}, value_map_names={vm.key: vm.name for vm in maps}
        )
        guard = link_before_create or (lambda connection, object_name: nullcontext())
        self.writers = {
            s.pk: StepWriter(
                step=s,
                target=connector_for(s.target_connection),
                rules=outbound_rules.get(s.pk, []),
                context=self.context,
                link_before_create=guard,
            )
            for s in self.steps
            if s.target_connection
        }
        invoice_steps = [s for s in self.steps if s.action == FlowStep.Action.INVOICE]
        self.store = CanonicalStore(
            source_connection=self.source_connection,
            category=self.source.category,
            lookup_maps={
                rule.target: t["value_map"]
                for rule in self.inbound_rules
                for t in rule.transforms
                if t.get("name") == "lookup"
            },
            value_maps=self.context.value_maps,
            match_keys=flow.match_keys,
        )
        self.failures = Failures(
            flow=flow,
            run=run,
            source=self.source,
            store=self.store,
            rules=self.inbound_rules,
            billing_target=self.writers[invoice_steps[0].pk].target.label if invoice_steps else None,
        )
        # A flow that maps a person's cost rate says so when the source has none (employee to resource).
        self.maps_cost_rate = any(rule.target == "rate.amount" for rule in self.inbound_rules)
        self._in_target: dict[tuple[int, int], bool] = {}  # (target connection, project) -> linked there
        # The tables a run of this flow grows by a row or more per record read.
        entity_model = ENTITIES[flow.entity].model if flow.entity in ENTITIES else None
        self._growing = [m for m in (entity_model, ExternalRef, SyncException, RunRecord) if m is not None]

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
            pages = prefetched(gathered(self.source.read(self.flow.source_object, since=self.flow.cursor or None)))
            for number, page in enumerate(pages, start=1):
                total += self.process(page.records, page.rejects, cursor=page.cursor)
                if number % STATISTICS_EVERY_PAGES == 0:
                    bulk.statistics_refresh(self._growing)
                if on_page:
                    on_page(page)
                # A slice ends between pages, and only where the source gave a place to resume from: a read
                # that has none until its last page (a list in id order) would start over and read twice.
                if deadline is not None and time.monotonic() > deadline and page.has_more and page.cursor:
                    pages.close()
                    self.flush()
                    return total, False
            self.flush()
        except (AuthenticationFailed, DestinationRefused) as error:
            raise ConnectionBroken(self.source_connection, error) from error
        return total, True

    # -- one page -----------------------------------------------------------------------------
    def process(
        self, records: Iterable[SourceRecord], rejects: Iterable[RejectedRecord] = (), *, cursor: str | None = None
    ) -> Tally:
        """Handle one page of source records; its counts are added to the run and `cursor` saved with them."""
        book = ExceptionBook(flow=self.flow, run=self.run, source_system=self.source.vendor)
        rejects = list(rejects)
        for reject in rejects:
            self.failures.malformed(reject, book)
        items = [Item(source=record) for record in records]
        for item in items:
            if not matches_filter(item.source.data, self.flow.source_filter):
                item.skipped = True
                continue
            mapped = apply_mapping(self.inbound_rules, item.source.data, self.context)
            item.entities = split_entities(mapped.values)  # even a partly mapped record names itself in its exception
            item.problems = list(mapped.problems) if not mapped.ok else []
        self.store.plan(items, primary=self.flow.entity, object_name=self.flow.source_object)
        self.validate(items)
        twins_of_new = self._record_problems(items, book, defer_twins=True)
        self._apply(items, book)
        self._record_problems(twins_of_new, book)
        self._write_steps(items, book)
        return self._finish_page(items, rejects, book, cursor)

    def _record_problems(
        self, items: list[Item], book: ExceptionBook, step: FlowStep | None = None, *, defer_twins: bool = False
    ) -> list[Item]:
        """Record why each troubled item cannot sync. With `defer_twins`, a record whose twin this page creates is
        returned instead: its exception names that record (and the pair's link), so it waits until it is written."""
        troubled = [item for item in items if item.problems and not item.failed]
        held = self.failures.held_by(troubled)
        deferred = []
        for item in troubled:
            item.plan = {}
            if defer_twins and _twin_of_new(item):
                deferred.append(item)
                continue
            self.failures.record(item, book, held, step=step)
        return deferred

    def _apply(self, items: list[Item], book: ExceptionBook) -> None:
        """The page's canonical rows in one transaction; a row the database refuses (a value too long, a
        record another run created a moment ago) sends the page through again a record at a time, so only
        that record fails. Then what a person must decide about records that did sync."""
        going = [item for item in items if item.plan and not item.failed]
        try:
            with transaction.atomic():
                self._apply_items(going)
        except (DataError, IntegrityError) as error:
            logger.info("Page of flow %s applied a record at a time: %s", self.flow.pk, str(error).splitlines()[0])
            self.store.forget()
            for item in going:
                self._apply_alone(item, book)
            going = [item for item in going if not item.failed]
        for item in going:
            for conflict in item.conflicts:
                message = _conflict_message(conflict, self.source.label)
                self.failures.decision(item, book, "FIELD_CONFLICT", message, [{"action": "ignore"}])
            if "rate" in item.skipped_entities and self.maps_cost_rate and "resource" in item.records:
                self.failures.cost_rate_missing(item.records["resource"])
        if self.flow.entity == "resource":
            self._leavers(going, book)

    def _apply_alone(self, item: Item, book: ExceptionBook) -> None:
        """One record planned and written on its own, after its page was refused."""
        item.plan, item.problems, item.conflicts, item.records, item.skipped_entities = {}, [], [], {}, set()
        self.store.plan([item], primary=self.flow.entity, object_name=self.flow.source_object)
        self.validate([item])
        if not item.problems:
            try:
                with transaction.atomic():
                    self._apply_items([item])
            except (DataError, IntegrityError) as error:
                self.store.forget()
                message = f"a value does not fit: {str(error).splitlines()[0]}"
                item.problems = [Problem(self.flow.entity, "INVALID_RECORD", message)]
        self._record_problems([item], book)

    def _apply_items(self, going: list[Item]) -> None:
        self.store.apply(going, primary=self.flow.entity, object_name=self.flow.source_object)
        for item in going:
            for entity, planned in item.plan.items():
                item.records[entity] = planned.record
                if planned.new or planned.changed:
                    item.changed_entities.add(entity)
            primary = item.plan.get(self.flow.entity)
            item.created = primary is not None and primary.new
            item.linked = primary is not None and primary.how == "key"
            item.updated = any(
                (not p.new and p.changed) or (p.new and entity != self.flow.entity) for entity, p in item.plan.items()
            )
        if any(s.action == FlowStep.Action.INVOICE for s in self.steps):
            invoicing.invoices_mark(
                [rec for item in going for rec in (item.records.get("time_entry"), item.records.get("expense")) if rec]
            )

    def _leavers(self, items: list[Item], book: ExceptionBook) -> None:
        """A person who left but still has work booked after their last day needs a human decision."""
        people = {
            item.records["resource"].pk: item
            for item in items
            if "resource" in item.records
            and item.records["resource"].status in ("terminated", "inactive")
            and item.records["resource"].termination_date
        }
        if not people:
            return
        later = (
            TimeEntry.objects.filter(resource_id__in=people, date__gt=F("resource__termination_date"))
            .select_related("project", "resource")
            .order_by("resource_id", "date")
            .distinct("resource_id")
        )
        for entry in later:
            person = entry.resource
            self.failures.decision(
                people[person.pk],
                book,
                "LEAVER_WITH_OPEN_WORK",
                f"{person} left on {person.termination_date:%-d %b %Y} but still has time booked on "
                f"{entry.date:%-d %b %Y} on project {entry.project.code}: reassign the work, then ignore this.",
                [{"action": "assign"}, {"action": "ignore"}],
            )

    # -- validation before any write ----------------------------------------------------------
    def validate(self, items: list[Item]) -> None:
        """What stops time or an expense before any write, for the whole page: its project is not in the system
        it is billed in, or its person has no cost rate on the day. Each is a cause the record is parked behind."""
        entries = [
            (item, item.plan.get("time_entry") or item.plan.get("expense"))
            for item in items
            if not item.problems and not item.skipped
        ]
        entries = [(item, planned) for item, planned in entries if planned is not None]
        if not entries:
            return
        targets = [
            step
            for step in self.steps
            if step.target_connection and step.action in (FlowStep.Action.WRITE, FlowStep.Action.INVOICE)
        ]
        projects = {planned.record.project_id for _, planned in entries}
        for step in targets:
            unknown = {pk for pk in projects if (step.target_connection_id, pk) not in self._in_target}
            linked = set(
                ExternalRef.objects.filter(
                    connection_id=step.target_connection_id, entity="project", record_id__any=unknown, alias=False
                ).values_list("record_id", flat=True)
            )
            for pk in unknown:
                self._in_target[(step.target_connection_id, pk)] = pk in linked
        people = {
            p.record.resource_id for _, p in entries if isinstance(p.record, TimeEntry) and p.record.cost_rate is None
        }
        rates = cost_rates_for(people) if people else {}
        for item, planned in entries:
            entry = planned.record
            missing = next(
                (s for s in targets if not self._in_target[(s.target_connection_id, entry.project_id)]), None
            )
            if missing is not None:
                fix = self._project_code_fix(item, entry.project.code)
                label = self.writers[missing.pk].target.label
                item.problems.append(
                    Problem(
                        "project",
                        "PROJECT_NOT_IN_TARGET",
                        f"project code not found in {label}",
                        fix,
                        {"project": entry.project, "step": missing},
                    )
                )
                continue
            if isinstance(entry, TimeEntry) and entry.cost_rate is None:
                rate = cost_rate_on(entry.resource, entry.date, rates.get(entry.resource_id, []))
                if rate is None:
                    message = f"{entry.resource} has no cost rate on {entry.date:%-d %b %Y}"
                    item.problems.append(Problem("cost_rate", "MISSING_COST_RATE", message, None, entry.resource))
                    continue
                entry.cost_rate = rate.amount
                planned.changed.add("cost_rate")

    def _project_code_fix(self, item: Item, code: str) -> dict | None:
        for target, key in self.store.lookup_maps.items():
            if target.endswith(".project"):
                original = original_value(self.inbound_rules, target, item.source.data)
                if original is None or original.isdigit():
                    original = code  # a reference by id: the clerk maps the project's code
                return {"action": "map_value", "value_map": key, "value": original}
        return None

    # -- target writes ------------------------------------------------------------------------
    def _write_steps(self, items: list[Item], book: ExceptionBook) -> None:
        for step in self.steps:
            live = [item for item in items if not item.failed and not item.skipped and item.records]
            if not live:
                return
            try:
                if step.action == FlowStep.Action.WRITE:
                    self._write(step, live, book)
                elif step.action == FlowStep.Action.NOTIFY and self.notify:
                    # Delivery leadership hears of work set up somewhere for the first time, not of history.
                    self.notify(step=step, items=[i for i in live if any(t["action"] == "created" for t in i.targets)])
            except (AuthenticationFailed, DestinationRefused) as error:
                raise ConnectionBroken(step.target_connection, error) from error

    def _write(self, step: FlowStep, items: list[Item], book: ExceptionBook) -> None:
        """Write the step's records; a record the target holds twice waits on the exception that says so."""
        groups: dict[int, tuple[list[Item], object]] = {}
        for item in items:
            record = item.records.get(step.entity)
            if record is not None:
                groups.setdefault(record.pk, ([], record))[0].append(item)
        blockers = self._blocked_in_target(step, set(groups))
        ready = []
        for pk, (group, record) in groups.items():
            if pk in blockers and any(step.entity in item.changed_entities for item in group):
                for item in group:
                    self.failures.park(item, blockers[pk], book)
                continue
            ready.append((group, record))
        writer = self.writers[step.pk]
        for written in writer.write(ready):
            self._said(step, written, book)

    def _said(self, step: FlowStep, written: Written, book: ExceptionBook) -> None:
        """What the target did with a group of items, said in each item (or its exception)."""
        target = self.writers[step.pk].target
        for item in written.items:
            if written.problems:
                self.failures.record(item, book, {}, step=step, problems=written.problems)
            elif written.refused:
                code, message = written.refused
                if code != "TARGET_UNAVAILABLE":
                    message = f"{describe_record(step.entity, written.record)} could not be written to {target.label}: {message}"
                fix = (
                    [{"action": "retry"}]
                    if code == "TARGET_UNAVAILABLE"
                    else [{"action": "edit_field"}, {"action": "retry"}]
                )
                detail = "" if code == "TARGET_UNAVAILABLE" else written.refused[1]
                self.failures.fail(
                    item, book, code=code, message=message, detail=detail, fix=fix, step=step, target=target.vendor
                )
            else:
                # A record's first sync that found the target's record already there linked it, whatever it then
                # brought up to date.
                action = written.action
                if item.first_sync and action in ("updated", "unchanged"):
                    action = "linked"
                item.targets.append(
                    {
                        "step": step.name,
                        "system": target.label,
                        "object": step.target_object,
                        "action": action,
                        "id": str(written.target_id or ""),
                    }
                )

    def _blocked_in_target(self, step: FlowStep, record_ids: set[int]) -> dict[int, SyncException]:
        """The exceptions writes of these records wait on: the target holds a record twice and a person has not
        said which one stands for it (one query for the batch)."""
        if not record_ids:
            return {}
        prefix = parking.duplicate_cause(
            connection_id=step.target_connection_id, entity=step.entity, record_id=0, external_id=""
        )
        prefix = prefix.rsplit(":", 2)[0] + ":"
        blockers = {}
        for exception in SyncException.objects.filter(cause__startswith=prefix, status__in=parking.LIVE).order_by("pk"):
            record_id = exception.cause[len(prefix) :].split(":", 1)[0]
            if record_id.isdigit() and int(record_id) in record_ids:
                blockers.setdefault(int(record_id), exception)
        return blockers

    # -- the page's outcome -------------------------------------------------------------------
    def _finish_page(self, items: list[Item], rejects: list[RejectedRecord], book: ExceptionBook, cursor) -> Tally:
        """Exceptions, resolutions, run records, counts and cursor, in one transaction."""
        tally = Tally(read=len(items) + len(rejects))
        object_name = self.flow.source_object
        with transaction.atomic():
            standing = book.flush()
            synced = [item.source.external_id for item in items if not item.failed and not item.skipped]
            if synced:
                exceptions_resolve_for_records(flow=self.flow, object_name=object_name, external_ids=synced)
            rows = [
                self._run_record(
                    reject.external_id or "", "exception", standing.get((object_name, reject.external_id or ""))
                )
                for reject in rejects
            ]
            for item in items:
                if item.book_key and item.exception_id is None:
                    item.exception_id = standing.get(item.book_key)
                primary = item.records.get(self.flow.entity)
                rows.append(
                    self._run_record(
                        item.source.external_id,
                        item.outcome,
                        item.parked_on or item.exception_id,
                        description=describe_item(self.flow, item, self.store, self.inbound_rules)[:200],
                        entity=self.flow.entity if primary is not None else "",
                        record_id=getattr(primary, "pk", None),
                        targets=item.targets,
                    )
                )
            for row in rows:
                tally.add(row["outcome"])
            bulk.copy_in(RunRecord, rows)
            SyncRun.objects.filter(pk=self.run.pk).update(
                **{name: F(name) + getattr(tally, name) for name in COUNTS if getattr(tally, name)}
            )
            if cursor:
                Flow.objects.filter(pk=self.flow.pk).update(cursor=cursor, cursor_updated_at=timezone.now())
                self.flow.cursor = cursor
        return tally

    def _run_record(self, external_id: str, outcome: str, exception_id, **fields) -> dict:
        return {
            "run_id": self.run.pk,
            "flow_id": self.flow.pk,
            "object": self.flow.source_object,
            "external_id": external_id[:200],
            "outcome": outcome,
            "exception_id": exception_id,
            "description": fields.get("description", ""),
            "entity": fields.get("entity", ""),
            "record_id": fields.get("record_id"),
            "targets": fields.get("targets", []),
        }

    # -- invoices -----------------------------------------------------------------------------
    def flush(self) -> None:
        """Rebuild every invoice new time or expenses touched and write it to the ERP once, a chunk at a time,
        instead of once per page that touched it."""
        for step in self.steps:
            if step.action != FlowStep.Action.INVOICE:
                continue
            writer, after = self.writers[step.pk], 0
            try:
                with invoicing.invoices_flushing():
                    while chunk := invoicing.invoices_pending(after, environment=self.flow.environment):
                        after = chunk[-1].pk
                        with transaction.atomic():
                            ready = invoicing.invoices_rebuild(chunk)
                        self._invoices_write(step, writer, chunk, ready)
            except (AuthenticationFailed, DestinationRefused) as error:
                raise ConnectionBroken(step.target_connection, error) from error

    def _invoices_write(self, step: FlowStep, writer: StepWriter, chunk: list, ready: list) -> None:
        book = ExceptionBook(flow=self.flow, run=self.run, source_system=self.source.vendor)
        written_ok = [invoice for invoice in chunk if invoice not in ready]  # no lines: nothing to bill
        for written in writer.write([([], invoice) for invoice in ready], always=True):
            invoice = written.record
            if written.problems or written.refused:
                if written.problems:
                    code, reason = written.problems[0].code, "; ".join(p.message for p in written.problems)
                else:
                    code, reason = written.refused
                book.fail(
                    object_name="invoice",
                    external_id=invoice.number,
                    code=code,
                    message=f"Invoice {invoice.number} could not be written to {writer.target.label}: {reason}"
                    if code != "TARGET_UNAVAILABLE"
                    else reason,
                    detail=reason,
                    fix_actions=[{"action": "retry"}],
                    payload={"invoice": invoice.number},  # rebuilt from the canonical store on retry
                    step=step,
                    target_system=writer.target.vendor,
                    subject=invoice.number,
                )
            else:
                written_ok.append(invoice)
        with transaction.atomic():
            book.flush()
            invoicing.invoices_written(written_ok)
            exceptions_resolve_for_records(
                flow=self.flow, object_name="invoice", external_ids=[invoice.number for invoice in written_ok]
            )


def _twin_of_new(item: Item) -> bool:
    first = item.problems[0]
    return (
        first.code == "DUPLICATE_IN_SOURCE" and first.value["record"] is not None and first.value["record"].pk is None
    )


def _conflict_message(conflict, source_label: str) -> str:
    return (
        f"{ENTITIES[conflict.entity].label} {conflict.field.replace('_', ' ')} is owned by the "
        f"{conflict.owner.upper()}: {source_label} tried to change it from “{conflict.current}” "
        f"to “{conflict.proposed}”; kept “{conflict.current}”."
    )


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
