"""The orchestrator: read a page, map, validate, upsert canonical, write each step, commit, advance.

The cursor moves only in the same transaction that records a page's outcome, after its target
writes returned; a crash before that re-reads the page, and every write is an upsert keyed by
our record key or the target's id, so nothing is duplicated.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from django.db import transaction
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
from integrations.engine.entities import ENTITIES
from integrations.engine.issues import exception_raise, exceptions_resolve_for_records
from integrations.engine.mapping import MISSING, MappingContext, Problem, Rule, apply_mapping, get_path, split_entities
from integrations.engine.store import CanonicalStore, cost_rate_on
from integrations.engine.views import canonical_view, record_key
from integrations.models import ExternalRef, Flow, FlowStep, Invoice, InvoiceLine, SyncRun, TimeEntry, ValueMap

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
    created: bool = False
    updated: bool = False
    failed: bool = False
    changed_entities: set = field(default_factory=set)  # canonical records this item created or changed
    skipped: bool = False

    def payload(self) -> dict:
        return {
            "external_id": self.source.external_id,
            "updated_at": self.source.updated_at,
            "data": dict(self.source.data),
        }


@dataclass
class Tally:
    read: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0
    skipped: int = 0

    def add(self, item: Item) -> None:
        if item.skipped:
            self.skipped += 1
        elif item.failed:
            self.failed += 1
        elif item.created:
            self.created += 1
        elif item.updated:
            self.updated += 1
        else:
            self.unchanged += 1


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
    return True


def month_bounds(day: date) -> tuple[date, date]:
    start = day.replace(day=1)
    following = (start.replace(day=28) + timezone.timedelta(days=4)).replace(day=1)
    return start, following - timezone.timedelta(days=1)


class FlowRunner:
    def __init__(self, flow: Flow, run: SyncRun, *, connector_for: Callable, notify: Callable | None = None):
        self.flow = flow
        self.run = run
        self.connector_for = connector_for
        self.notify = notify
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
        invoice_steps = [s for s in self.steps if s.action == FlowStep.Action.INVOICE]
        self.billing_target = self.targets[invoice_steps[0].pk].label if invoice_steps else None
        self.store: CanonicalStore = CanonicalStore(
            source_connection=self.source_connection,
            category=self.source.category,
            lookup_maps=lookup_maps,
            value_maps=self.context.value_maps,
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
                if deadline is not None and time.monotonic() > deadline and page.has_more:
                    self.flush()
                    return total, False
            self.flush()
        except (AuthenticationFailed, DestinationRefused) as error:
            raise ConnectionBroken(self.source_connection, error) from error
        return total, True

    def commit_page(self, tally: Tally, cursor: str | None) -> None:
        with transaction.atomic():
            SyncRun.objects.filter(pk=self.run.pk).update(
                read=F("read") + tally.read,
                created=F("created") + tally.created,
                updated=F("updated") + tally.updated,
                unchanged=F("unchanged") + tally.unchanged,
                failed=F("failed") + tally.failed,
                skipped=F("skipped") + tally.skipped,
            )
            if cursor:
                Flow.objects.filter(pk=self.flow.pk).update(cursor=cursor, cursor_updated_at=timezone.now())
                self.flow.cursor = cursor

    # -- one batch of source records ----------------------------------------------------------
    def process(self, records: Iterable[SourceRecord], rejects: Iterable[RejectedRecord] = ()) -> Tally:
        tally = Tally()
        for reject in rejects:
            tally.read += 1
            tally.failed += 1
            self.fail(
                None,
                code="MALFORMED_RECORD",
                message=f"A {self.flow.source_object} record from {self.source.label} could not be read: {reject.reason}",
                external_id=reject.external_id or "",
                payload={"raw": _jsonable(reject.raw)},
                fix=[{"action": "retry"}],
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
                    self.notify(step=step, items=[i for i in live if i.created])
            except (AuthenticationFailed, DestinationRefused) as error:
                raise ConnectionBroken(step.target_connection, error) from error
        synced = [item.source.external_id for item in items if not item.failed and not item.skipped]
        if synced:
            exceptions_resolve_for_records(flow=self.flow, object_name=self.flow.source_object, external_ids=synced)
        for item in items:
            tally.add(item)
        return tally

    def upsert(self, item: Item) -> bool:
        mapped = apply_mapping(self.inbound_rules, item.source.data, self.context)
        if not mapped.ok:
            self.fail_problems(item, mapped.problems)
            return False
        item.entities = split_entities(mapped.values)
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
        if problems:
            self.fail_problems(item, problems)
            return False
        item.records = result.records
        item.changed_entities = result.created | result.changed
        item.created = bool(result.created)
        item.updated = bool(result.changed)
        for conflict in result.conflicts:
            self.conflict(item, conflict)
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
        problems = []
        entry = records.get("time_entry") or records.get("expense")
        if entry is not None:
            for step in self.steps:
                if step.target_connection and step.action in (FlowStep.Action.WRITE, FlowStep.Action.INVOICE):
                    key = (step.target_connection_id, entry.project_id)
                    if key not in self._in_target:
                        self._in_target[key] = ExternalRef.objects.filter(
                            connection=step.target_connection, entity="project", record_id=entry.project_id
                        ).exists()
                    in_target = self._in_target[key]
                    if not in_target:
                        code = entry.project.code
                        fix = None
                        for target, key in self.store.lookup_maps.items():
                            if target.endswith(".project"):
                                original = _original_value(self.inbound_rules, target, item.source.data)
                                if original is None or original.isdigit():
                                    original = code  # a reference by id: the clerk maps the project's code
                                fix = {"action": "map_value", "value_map": key, "value": original}
                        problems.append(
                            Problem(
                                "project",
                                "PROJECT_NOT_IN_TARGET",
                                f"project code not found in {self.targets[step.pk].label}",
                                fix,
                                code,
                            )
                        )
                        break
        if isinstance(entry, TimeEntry) and entry.cost_rate is None:
            rate = cost_rate_on(entry.resource, entry.date)
            if rate is None:
                problems.append(
                    Problem(
                        "cost_rate",
                        "MISSING_COST_RATE",
                        f"{entry.resource} has no cost rate on {entry.date:%-d %b %Y}",
                        {"action": "edit_field", "field": "cost_rate_in_cents"},
                    )
                )
            else:
                entry.cost_rate = rate.amount
                entry.save(update_fields=["cost_rate"])
        return problems

    # -- target writes ------------------------------------------------------------------------
    def write_step(self, step: FlowStep, items: list[Item], object_name: str | None = None) -> None:
        target = self.targets[step.pk]
        self._fail_object = object_name
        by_record: dict[int, list[Item]] = defaultdict(list)
        for item in items:
            record = item.records.get(step.entity)
            if record is not None:
                by_record[record.pk].append(item)
        outbound: list[tuple[OutboundRecord, list[Item], object]] = []
        for group in by_record.values():
            record = group[0].records[step.entity]
            view = canonical_view(step.entity, record, step.target_connection)
            if view["ref"] and object_name is None and not any(step.entity in i.changed_entities for i in group):
                continue  # already in the target and nothing changed here: no call, nothing to write
            mapped = apply_mapping(self.outbound_rules.get(step.pk, []), view, self.context)
            if not mapped.ok:
                for item in group:
                    self.fail_problems(item, mapped.problems, step=step)
                continue
            outbound.append(
                (OutboundRecord(external_id=view["key"], fields=mapped.values, target_id=view["ref"]), group, record)
            )
        size = max(1, target.batch_size(step.target_object))
        for start in range(0, len(outbound), size):
            batch = outbound[start : start + size]
            try:
                results = target.write(step.target_object, [entry[0] for entry in batch], mode="upsert")
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
                        defaults={"external_id": result.target_id},
                    )
                for item in group:
                    item.created = item.created or result.outcome == "created"
                    item.updated = item.updated or result.outcome == "updated"

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
        first = problems[0]
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
    ) -> None:
        if item is not None:
            if item.failed:
                return  # one exception per failed record: later steps are parked behind the first
            item.failed = True
            external_id = item.source.external_id
            payload = item.payload()
        target_system = ""
        if step is not None and step.pk in self.targets:
            target_system = self.targets[step.pk].vendor
        object_name = getattr(self, "_fail_object", None) or self.flow.source_object
        if object_name == "invoice" and item is not None:
            payload = {"invoice": item.source.external_id}  # rebuilt from the canonical store on retry
        exception_raise(
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
        )

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
    return Tally(
        *(getattr(a, f) + getattr(b, f) for f in ("read", "created", "updated", "unchanged", "failed", "skipped"))
    )


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
            return str(value)
    return None
