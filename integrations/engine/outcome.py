"""A page's outcome, in one transaction: its exceptions written, the ones it fixed resolved, a run record for every
record read, the run's counts and the flow's cursor."""

from __future__ import annotations

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from connectors.base import RejectedRecord
from integrations.engine import bulk
from integrations.engine.describe import describe_item
from integrations.engine.issues import ExceptionBook, exceptions_resolve_for_records
from integrations.engine.items import COUNTS, Item, Tally
from integrations.models import Flow, RunRecord, SyncRun


class PageOutcome:
    def __init__(self, *, flow: Flow, run: SyncRun, store, rules: list):
        self.flow, self.run, self.store, self.rules = flow, run, store, rules

    def finish(self, items: list[Item], rejects: list[RejectedRecord], book: ExceptionBook, cursor) -> Tally:
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
                        description=describe_item(self.flow, item, self.store, self.rules)[:200],
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
