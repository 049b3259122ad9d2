"""Writing a page's records to each target of the flow, and saying in each record what the target did."""

from __future__ import annotations

from connectors.base import AuthenticationFailed, DestinationRefused
from integrations.engine import parking
from integrations.engine.describe import describe_record
from integrations.engine.issues import ExceptionBook
from integrations.engine.items import ConnectionBroken, Item
from integrations.engine.writer import Written
from integrations.models import FlowStep, SyncException


class TargetWrites:
    """The flow's write and notify steps for a page (`writers`: step pk -> engine.writer.StepWriter)."""

    def __init__(self, *, steps: list[FlowStep], writers: dict, failures, notify=None):
        self.steps, self.writers, self.failures, self.notify = steps, writers, failures, notify

    def write(self, items: list[Item], book: ExceptionBook) -> None:
        """Each step in turn, for the records still going."""
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
        for exception in SyncException.objects.filter(cause__startswith=prefix, status__in=SyncException.LIVE).order_by(
            "pk"
        ):
            record_id = exception.cause[len(prefix) :].split(":", 1)[0]
            if record_id.isdigit() and int(record_id) in record_ids:
                blockers.setdefault(int(record_id), exception)
        return blockers
