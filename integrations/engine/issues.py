"""Recording and resolving SyncExceptions from the engine: one live exception per record and error."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils import timezone

from integrations.engine import bulk
from integrations.models import SyncException

# Raised for records that did sync, about something a person must decide: they are not resolved
# by the record syncing again, only by a person (ignore, or fix the other system).
DECISIONS = ("FIELD_CONFLICT", "LEAVER_WITH_OPEN_WORK")


def exception_raise(
    *,
    flow,
    run,
    step=None,
    source_system: str,
    target_system: str = "",
    object_name: str,
    external_id: str,
    payload: dict,
    error_code: str,
    message: str,
    detail: str = "",
    fix_actions: list | None = None,
    waiting_on=None,
    subject: str = "",
    cause: str = "",
) -> SyncException:
    """Open an exception for a record, or bump the live one for the same record and error."""
    live = SyncException.objects.filter(
        flow=flow,
        object=object_name,
        external_id=external_id,
        error_code=error_code,
        status__in=[SyncException.Status.OPEN, SyncException.Status.RETRYING],
    ).first()
    now = timezone.now()
    if live:
        live.payload = payload
        live.message = message[:500]
        live.detail = detail
        live.fix_actions = fix_actions or []
        live.status = SyncException.Status.OPEN
        live.last_run = run
        live.step = step
        live.waiting_on = waiting_on
        live.subject = subject[:200] or live.subject
        live.cause = cause or live.cause
        live.occurrences += 1
        live.last_seen_at = now
        live.save()
        return live
    try:
        with transaction.atomic():
            return SyncException.objects.create(
                flow=flow,
                step=step,
                first_run=run,
                last_run=run,
                source_system=source_system,
                target_system=target_system,
                object=object_name,
                external_id=external_id,
                payload=payload,
                error_code=error_code,
                message=message[:500],
                detail=detail,
                fix_actions=fix_actions or [],
                waiting_on=waiting_on,
                subject=subject[:200],
                cause=cause,
                created_at=now,
                last_seen_at=now,
            )
    except IntegrityError:  # a concurrent run opened it first
        return exception_raise(
            flow=flow,
            run=run,
            step=step,
            source_system=source_system,
            target_system=target_system,
            object_name=object_name,
            external_id=external_id,
            payload=payload,
            error_code=error_code,
            message=message,
            detail=detail,
            fix_actions=fix_actions,
            waiting_on=waiting_on,
            subject=subject,
            cause=cause,
        )


def exceptions_resolve_for_record(*, flow, object_name: str, external_id: str) -> int:
    """The record synced: every live exception about it resolves itself."""
    return SyncException.objects.filter(
        flow=flow,
        object=object_name,
        external_id=external_id,
        status__in=[SyncException.Status.OPEN, SyncException.Status.RETRYING],
    ).update(status=SyncException.Status.RESOLVED, resolved_at=timezone.now(), waiting_on=None)


def exceptions_resolve_for_records(*, flow, object_name: str, external_ids: list[str]) -> int:
    """exceptions_resolve_for_record for a whole page in one statement (records parked included)."""
    return (
        SyncException.objects.filter(
            flow=flow,
            object=object_name,
            external_id__any=external_ids,
            status__in=[SyncException.Status.OPEN, SyncException.Status.RETRYING, SyncException.Status.PARKED],
        )
        .exclude(error_code__in=DECISIONS)
        .update(status=SyncException.Status.RESOLVED, resolved_at=timezone.now(), waiting_on=None)
    )


WAITING_ON = "WAITING_ON"


class ExceptionBook:
    """The exceptions one page raises, parks and resolves, written together when the page ends.

    One live row per record and error (a repeat bumps `occurrences`), one live row per record overall
    (a record in a new exception leaves its old one), a handful of statements however many records failed.
    Cause exceptions ("project X is not in the ERP") are not kept here: they exist before a record is
    parked behind them (engine.parking.cause_raise).
    """

    def __init__(self, *, flow, run, source_system: str):
        self.flow, self.run, self.source_system = flow, run, source_system
        self._rows: dict[tuple[str, str, str], dict] = {}  # (object, external id, code) -> fields
        self._failed: set[tuple[str, str]] = set()  # records now in an exception, which leave their old ones
        self._kept: set[int] = set()  # exceptions raised outside the book that records now stand in

    def fail(self, *, object_name: str, external_id: str, code: str, decision: bool = False, **fields) -> None:
        """An exception about a record (a decision is about a record that synced: it does not replace others)."""
        key = (object_name, external_id or "", code)
        self._rows[key] = {**fields, "decision": decision}
        if not decision:
            self._failed.add((object_name, external_id or ""))

    def park(self, *, object_name: str, external_id: str, parent: SyncException, **fields) -> None:
        self._rows[(object_name, external_id or "", WAITING_ON)] = {**fields, "waiting_on": parent, "decision": False}
        self._failed.add((object_name, external_id or ""))

    def supersede_only(self, *, object_name: str, external_id: str, keep: int) -> None:
        """The record stands in exception `keep`, raised already (a cause): it leaves any other it was in."""
        self._failed.add((object_name, external_id or ""))
        self._kept.add(keep)

    def flush(self) -> dict[tuple[str, str], int]:
        """Write the page's exceptions; returns the exception id each failed record now stands in."""
        now = timezone.now()
        if not self._rows:
            self._supersede(keep=self._kept, now=now)
            return {}
        by_object: dict[str, set[str]] = {}
        for object_name, external_id, _ in self._rows:
            by_object.setdefault(object_name, set()).add(external_id)
        live: dict[tuple[str, str, str], SyncException] = {}
        for object_name, external_ids in by_object.items():
            for row in SyncException.objects.filter(
                flow=self.flow,
                object=object_name,
                external_id__any=external_ids,
                status__in=(*SyncException.LIVE, SyncException.Status.PARKED),
                error_code__in={code for _, _, code in self._rows},
            ).only("pk", "object", "external_id", "error_code", "occurrences", "subject"):
                live[(row.object, row.external_id, row.error_code)] = row
        created: list[dict] = []
        created_keys: list[tuple[str, str, str]] = []
        bumped = []
        values: dict = {}
        for key, fields in self._rows.items():
            object_name, external_id, code = key
            parked = code == WAITING_ON
            values = {
                "payload": fields.get("payload") or {},
                "message": fields["message"][:500],
                "detail": fields.get("detail", ""),
                "fix_actions": fields.get("fix_actions") or [],
                "subject": (fields.get("subject") or "")[:200],
                "step_id": getattr(fields.get("step"), "pk", None),
                "target_system": fields.get("target_system", ""),
                "waiting_on_id": getattr(fields.get("waiting_on"), "pk", None),
                "status": SyncException.Status.PARKED if parked else SyncException.Status.OPEN,
                "last_run_id": self.run.pk,
                "last_seen_at": now,
            }
            row = live.get(key)
            if row is None:
                # Rows, not instances: a page can park hundreds of records, and nothing reads them back here.
                created.append(
                    {
                        "flow_id": self.flow.pk,
                        "first_run_id": self.run.pk,
                        "source_system": self.source_system,
                        "object": object_name,
                        "external_id": external_id,
                        "error_code": code,
                        "created_at": now,
                        **values,
                    }
                )
                created_keys.append(key)
            else:
                for name, value in values.items():
                    setattr(row, name, value)
                if not parked:
                    row.occurrences += 1
                bumped.append(row)
        ids = bulk.copy_in(SyncException, created, with_ids=True)
        bulk.update(bumped, ["occurrences", *values])
        written = [
            *zip(created_keys, ids, strict=True),
            *(((r.object, r.external_id, r.error_code), r.pk) for r in bumped),
        ]
        standing = {(key[0], key[1]): pk for key, pk in written if not self._rows[key]["decision"]}
        self._supersede(keep={pk for _, pk in written} | self._kept, now=now)
        return standing

    def _supersede(self, *, keep: set[int], now) -> None:
        """Records failing now for a new reason leave the exception they were in (one statement per object)."""
        if not self._failed:
            return
        by_object: dict[str, list[str]] = {}
        for object_name, external_id in self._failed:
            by_object.setdefault(object_name, []).append(external_id)
        for object_name, external_ids in by_object.items():
            SyncException.objects.filter(
                flow=self.flow,
                object=object_name,
                external_id__any=external_ids,
                status__in=(*SyncException.LIVE, SyncException.Status.PARKED),
                cause="",
            ).exclude(pk__any=keep).exclude(error_code__in=DECISIONS).update(
                status=SyncException.Status.RESOLVED, resolved_at=now, waiting_on=None
            )
