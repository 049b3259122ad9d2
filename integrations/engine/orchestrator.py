"""The orchestrator: a run is pages, a page is a few set-based steps, each a unit of its own.

    read (engine.pages: vendor pages gathered, the next one read while this one is handled)
    -> map (engine.mapping) -> plan (engine.store: find, diff, check each record; nothing written)
    -> validate (engine.validation: project in the billing system, cost rate on the day)
    -> record what cannot sync (engine.failures) -> apply the canonical rows (engine.store, one transaction)
    -> write each target step (engine.targets, engine.writer)
    -> exceptions, run records, counts and cursor (engine.outcome, one transaction)

and, when the run has read what it will read, invoices rebuilt and written once (engine.invoicing). What a
record carries through a page is an engine.items.Item.

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

from django.db import DataError, IntegrityError, transaction

from connectors.base import AuthenticationFailed, DestinationRefused, RejectedRecord, SourceRecord
from integrations.engine import bulk, invoicing
from integrations.engine.entities import ENTITIES
from integrations.engine.failures import Failures
from integrations.engine.issues import ExceptionBook
from integrations.engine.items import COUNTS, ConnectionBroken, Item, Tally
from integrations.engine.mapping import MappingContext, Problem, Rule, apply_mapping, get_path, split_entities
from integrations.engine.outcome import PageOutcome
from integrations.engine.pages import gathered, prefetched
from integrations.engine.store import CanonicalStore
from integrations.engine.targets import TargetWrites
from integrations.engine.validation import PageValidator, leavers_with_later_work
from integrations.engine.writer import StepWriter
from integrations.models import ExternalRef, Flow, FlowStep, RunRecord, SyncException, SyncRun, ValueMap

__all__ = ["COUNTS", "ConnectionBroken", "FlowRunner", "Item", "Tally", "steps_skipped_note"]

logger = logging.getLogger("integrations.engine")


# A run adds rows faster than autovacuum counts them; with stale counts PostgreSQL plans a page's lookups for a
# table far smaller than it is, and every page gets slower (61 -> 99 ms per page over 100,000 entries, against
# 60 -> 71 ms with this). So the tables a run grows are analysed every this many gathered pages (about 10,000
# records).
STATISTICS_EVERY_PAGES = 10


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
        self.validator = PageValidator(
            steps=self.steps, writers=self.writers, store=self.store, rules=self.inbound_rules
        )
        self.targets = TargetWrites(steps=self.steps, writers=self.writers, failures=self.failures, notify=notify)
        self.outcome = PageOutcome(flow=flow, run=run, store=self.store, rules=self.inbound_rules)
        # A flow that maps a person's cost rate says so when the source has none (employee to resource).
        self.maps_cost_rate = any(rule.target == "rate.amount" for rule in self.inbound_rules)
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
        self.validator.validate(items)
        twins_of_new = self._record_problems(items, book, defer_twins=True)
        self._apply(items, book)
        self._record_problems(twins_of_new, book)
        self.targets.write(items, book)
        return self.outcome.finish(items, rejects, book, cursor)

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
        self.validator.validate([item])
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
        for item, entry in leavers_with_later_work(items):
            person = entry.resource
            self.failures.decision(
                item,
                book,
                "LEAVER_WITH_OPEN_WORK",
                f"{person} left on {person.termination_date:%-d %b %Y} but still has time booked on "
                f"{entry.date:%-d %b %Y} on project {entry.project.code}: reassign the work, then ignore this.",
                [{"action": "assign"}, {"action": "ignore"}],
            )

    # -- invoices -----------------------------------------------------------------------------
    def flush(self) -> None:
        """Rebuild every invoice new time or expenses touched and write it to the ERP once, a chunk at a time,
        instead of once per page that touched it."""
        invoicing.invoices_flush(
            flow=self.flow, run=self.run, steps=self.steps, writers=self.writers, source_system=self.source.vendor
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
