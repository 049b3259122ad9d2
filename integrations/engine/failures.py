"""What becomes of a record that cannot sync: parked behind the exception that holds it up, or an exception of
its own, with a sentence a finance clerk reads and the actions that fix it.

Records go into the page's ExceptionBook (written with the page); causes ("project X is not in the ERP",
"this person has no cost rate") are raised at once, the first time any flow meets them (engine.parking).
"""

from __future__ import annotations

from integrations.engine import parking
from integrations.engine.describe import describe_item, jsonable, subject_of
from integrations.engine.entities import ENTITIES
from integrations.engine.issues import ExceptionBook, exception_raise
from integrations.engine.mapping import Problem, Ref
from integrations.models import SyncException


class Failures:
    """Raises, parks and causes for one flow run; `book` is the current page's (or a flush's) book."""

    def __init__(self, *, flow, run, source, store, rules, billing_target: str | None):
        self.flow, self.run, self.source, self.store, self.rules = flow, run, source, store, rules
        self.billing_target = billing_target
        self._causes: dict[str, SyncException] = {}
        self._hr_records: dict[int, SyncException | None] = {}  # person -> their HR record's exception, if any
        self._rate_flows: list | None = None  # flows bringing cost rates that have not finished a first sync

    # -- records of a page ----------------------------------------------------------------------
    def held_by(self, items: list) -> dict[tuple[str, str], SyncException]:
        """For the page's records whose reference points at a record of the source that has an exception of
        its own (a deal whose company is in the CRM twice): that exception's root, one query for the page."""
        wanted = {
            (problem.value.object, problem.value.external_id)
            for item in items
            for problem in item.problems[:1]
            if isinstance(problem.value, Ref)
        }
        if not wanted:
            return {}
        found = {}
        for object_name in {o for o, _ in wanted}:
            ids = [e for o, e in wanted if o == object_name]
            for exception in SyncException.objects.filter(
                flow__source_connection=self.flow.source_connection,
                object=object_name,
                external_id__any=ids,
                status__in=(*SyncException.LIVE, SyncException.Status.PARKED),
            ).order_by("pk"):
                found.setdefault((object_name, exception.external_id), parking.root_of(exception))
        return found

    def record(self, item, book: ExceptionBook, held: dict, step=None, problems: list[Problem] | None = None) -> None:
        """Record why `item` could not sync (parked behind what holds it up, or its own exception)."""
        problems = problems if problems is not None else item.problems
        first = problems[0]
        if isinstance(first.value, Ref):
            parent = held.get((first.value.object, first.value.external_id))
            if parent is not None:
                return self.park(item, parent, book)
        if first.code == "PROJECT_NOT_IN_TARGET":
            return self.park(
                item, self.project_not_in_target(first.value["project"], first.value["step"], first.fix), book
            )
        if first.code == "MISSING_COST_RATE":
            # When the person's HR record could not sync, that is why the store has no cost rate: wait on it.
            waits_on = (
                self.hr_record_failed(first.value)
                or self.cost_rates_not_synced()
                or self.cost_rate_missing(first.value)
            )
            return self.park(item, waits_on, book)
        if first.code == "DUPLICATE_IN_SOURCE":
            return self.duplicate(item, first, book)
        if first.code == "AMBIGUOUS_MATCH":
            return self.ambiguous(item, first, book)
        if first.code == "PROJECT_NOT_FOUND" and not self.billing_target and _code_to_map(first):
            return self.park(item, self.code_unknown(first.value, first.fix), book)
        if first.code == "PROJECT_NOT_FOUND" and self.billing_target:
            first = Problem(
                first.target,
                "PROJECT_NOT_IN_TARGET",
                f"project code not found in {self.billing_target}",
                first.fix,
                first.value,
            )
            problems = [first, *problems[1:]]
        name = describe_item(self.flow, item, self.store, self.rules)
        verb = "cannot be billed" if self.billing_target else "cannot be synced"
        message = f"{name} {verb}: {first.message}"
        if len(problems) > 1:
            message += f" (and {len(problems) - 1} more problem{'s' if len(problems) > 2 else ''})"
        fixes = [p.fix for p in problems if p.fix] + [{"action": "retry"}]
        self.fail(
            item,
            book,
            code=first.code,
            message=message,
            detail="\n".join(p.message for p in problems),
            fix=fixes,
            step=step,
        )

    def fail(
        self, item, book: ExceptionBook, *, code: str, message: str, detail: str = "", fix=None, step=None, target=""
    ):
        item.failed = True
        book.fail(
            object_name=self.flow.source_object,
            external_id=item.source.external_id,
            code=code,
            message=message,
            detail=detail,
            fix_actions=fix or [],
            payload=item.payload(),
            step=step,
            target_system=target,
            subject=subject_of(item, self.flow.entity) or item.source.external_id,
        )
        item.book_key = (self.flow.source_object, item.source.external_id)

    def park(self, item, parent: SyncException, book: ExceptionBook) -> None:
        """`item` waits on `parent`: one row that fixing `parent` releases, instead of an exception of its own."""
        item.failed = True
        item.parked_on = parent.pk
        book.park(
            object_name=self.flow.source_object,
            external_id=item.source.external_id,
            parent=parent,
            message=f"Waiting on exception #{parent.pk}: {parent.message}",
            payload=item.payload(),
            subject=describe_item(self.flow, item, self.store, self.rules)[:200],
        )

    def decision(self, item, book: ExceptionBook, code: str, message: str, fixes: list) -> None:
        """About a record that did sync: a person decides (issues.DECISIONS); it does not fail the record."""
        book.fail(
            object_name=self.flow.source_object,
            external_id=item.source.external_id,
            code=code,
            decision=True,
            message=message,
            fix_actions=fixes,
            payload=item.payload(),
            subject=subject_of(item, self.flow.entity),
        )

    def malformed(self, reject, book: ExceptionBook) -> None:
        book.fail(
            object_name=self.flow.source_object,
            external_id=reject.external_id or "",
            code="MALFORMED_RECORD",
            message=f"A {self.flow.source_object} record from {self.source.label} could not be read: {reject.reason}",
            fix_actions=[{"action": "retry"}],
            payload={"raw": jsonable(reject.raw)},
            subject=reject.external_id or "",
        )

    # -- causes ---------------------------------------------------------------------------------
    def project_not_in_target(self, project, step, fix: dict | None) -> SyncException:
        """The one exception for "project X is not in the ERP" (or, when the ERP has X but could not link it,
        the exception that stops it), whichever flow meets it first."""
        cause = parking.not_in_target_cause(
            connection_id=step.target_connection_id, entity="project", record_id=project.pk
        )
        if cause not in self._causes:
            known = parking.subject_exception(connection=step.target_connection, subject=project.code)
            if known is not None:
                return parking.root_of(known)
            label = self.targets_label(step)
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
                target_system=step.target_connection.vendor,
                fix_actions=[fix, {"action": "retry"}] if fix else [{"action": "retry"}],
            )
        return self._causes[cause]

    def code_unknown(self, code: str, fix: dict) -> SyncException:
        """The one exception for "no project has the code this system gives", which every record naming that code
        waits on; mapping the code onto a project's releases them."""
        cause = parking.unknown_code_cause(connection_id=self.flow.source_connection_id, entity="project", code=code)
        if cause not in self._causes:
            system = self.source.label
            self._causes[cause] = parking.cause_raise(
                cause=cause,
                flow=self.flow,
                run=self.run,
                subject=code,
                object_name="project",
                error_code="PROJECT_NOT_FOUND",
                message=f"No project here has the code {code} that {system} gives, so the time logged under it "
                f"cannot be synced: map {code} to the project's code.",
                source_system=self.source.vendor,
                fix_actions=[fix, {"action": "retry"}],
            )
        return self._causes[cause]

    def targets_label(self, step) -> str:
        from connectors.registry import CONNECTORS

        cls = CONNECTORS.get(step.target_connection.vendor)
        return cls.label if cls else step.target_connection.name

    def hr_record_failed(self, person) -> SyncException | None:
        """parking.hr_record_failed, once per person and run."""
        if person.pk not in self._hr_records:
            self._hr_records[person.pk] = parking.hr_record_failed(person)
        return self._hr_records[person.pk]

    def cost_rates_not_synced(self) -> SyncException | None:
        """While the flow that brings cost rates (an HR system's) has not finished a first sync, a person without a
        rate here is not yet known to lack one: their time waits for that sync, one exception for the flow."""
        if self._rate_flows is None:
            self._rate_flows = parking.cost_rate_flows_not_synced(besides=self.flow)
        if not self._rate_flows:
            return None
        flow = self._rate_flows[0]
        cause = parking.first_sync_cause(flow_id=flow.pk)
        if cause not in self._causes:
            system = flow.source_connection.name
            self._causes[cause] = parking.cause_raise(
                cause=cause,
                flow=self.flow,
                run=self.run,
                subject=flow.name[:200],
                object_name="resource",
                error_code="AWAITING_FIRST_SYNC",
                message=f"Cost rates come from {system} (flow “{flow.name}”), which has not finished its first "
                f"sync: this time waits for it, then syncs or names who has no cost rate.",
                source_system=self.source.vendor,
                fix_actions=[],
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

    def duplicate(self, item, problem: Problem, book: ExceptionBook) -> None:
        """Two records of the source stand for one record here: one exception for the pair (raised at once, so
        records pointing at the second one can wait on it)."""
        twin, record = problem.value["twin"], problem.value["record"]
        entity = ENTITIES[self.flow.entity]
        record_id = record.pk if record is not None else None
        if record_id is None:  # its twin could not be written either
            record = None
        name = describe_item(self.flow, item, self.store, self.rules)
        system, object_name = self.source.label, self.flow.source_object
        cause = parking.duplicate_cause(
            connection_id=self.flow.source_connection_id,
            entity=self.flow.entity,
            record_id=record_id or 0,
            external_id=item.source.external_id,
        )
        live = SyncException.objects.filter(cause=cause, status__in=SyncException.LIVE).exclude(flow=self.flow).first()
        if live is not None:  # another flow reading the same records raised it
            return self.park(item, live, book)
        shown = str(record) if record is not None else twin
        mine = subject_of(item, self.flow.entity) or name
        item.failed = True
        # Raised at once (not with the page), so records pointing at this one can wait on it; seen again, the
        # same exception is counted.
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
                    "label": f"The same: keep “{mine}” ({item.source.external_id})",
                },
                {"action": "different"},
            ],
            subject=mine,
            cause=cause,
        )
        item.exception_id = exception.pk
        book.supersede_only(object_name=object_name, external_id=item.source.external_id, keep=exception.pk)

    def ambiguous(self, item, problem: Problem, book: ExceptionBook) -> None:
        """A record matching several here: one exception that lets a person pick (the pick is remembered)."""
        entity = ENTITIES[self.flow.entity]
        candidates = list(entity.model.objects.filter(pk__in=problem.value))
        name = describe_item(self.flow, item, self.store, self.rules)
        self.fail(
            item,
            book,
            code="AMBIGUOUS_MATCH",
            message=f"{name} matches {len(candidates)} {entity.label.lower()}s here: "
            + " and ".join(f"“{c}”" for c in candidates)
            + ": pick the one it is, or say it is a new one.",
            fix=[{"action": "pick", "record": c.pk, "label": str(c)} for c in candidates] + [{"action": "different"}],
        )


def _code_to_map(problem: Problem) -> bool:
    """A project named by a code (not by another record's id) that a clerk can map through a value map."""
    return isinstance(problem.value, str) and bool(problem.fix) and problem.fix.get("action") == "map_value"
