"""Recording and resolving SyncExceptions from the engine: one live exception per record and error."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils import timezone

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
            external_id__in=external_ids,
            status__in=[SyncException.Status.OPEN, SyncException.Status.RETRYING, SyncException.Status.PARKED],
        )
        .exclude(error_code__in=DECISIONS)
        .update(status=SyncException.Status.RESOLVED, resolved_at=timezone.now(), waiting_on=None)
    )
