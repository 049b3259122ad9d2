"""The exception queue's actions. Every one is audited (who, when, before, after) with the change."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from connectors.base import ConnectorError
from integrations.engine.mapping import get_path
from integrations.engine.orchestrator import ConnectionBroken, FlowRunner
from integrations.models import (
    BulkAction,
    Invoice,
    SyncException,
    SyncExceptionComment,
    SyncRun,
    ValueMap,
    ValueMapEntry,
)
from integrations.services.audit import audit_record
from integrations.services.connections import connector_for
from integrations.services.releases import exceptions_release
from integrations.services.reruns import exception_source_record, rerun_finish
from integrations.services.runs import SUSPENDED, target_guard, workspace_suspended

logger = logging.getLogger("integrations.exceptions")


class ExceptionActionRefused(Exception):
    """The action does not apply to this exception (already resolved, no payload to edit...)."""


class WorkspaceSuspended(ExceptionActionRefused):
    """A retry writes to the targets, which a suspended workspace must not do."""


class BulkActionRunning(ExceptionActionRefused):
    """A bulk retry or ignore is already queued or running in this workspace."""


def _snapshot(exception: SyncException) -> dict:
    return {"status": exception.status, "assignee": exception.assignee_email, "error_code": exception.error_code}


def exceptions_retry(*, exceptions: Iterable[SyncException], actor=None) -> dict:
    """Run the stored records through their flows again; the fixed ones resolve themselves.

    An exception about a cause (a project not in the ERP, a person without a cost rate) is checked
    again instead: its system is read again, and when the cause is gone it resolves and the records
    waiting on it are released. The outcome counts what resolved and says why the rest did not.
    """
    exceptions = list(exceptions)
    causes = [e for e in exceptions if e.is_live and e.cause and e.payload.get("data") is None]
    by_flow: dict[int, list[SyncException]] = defaultdict(list)
    for exception in exceptions:
        if exception in causes:
            continue
        if exception.status in RETRYABLE and (
            exception.payload.get("data") is not None or exception.object == "invoice"
        ):
            by_flow[exception.flow_id].append(exception)
    outcome = {"retried": 0, "resolved": 0, "still_open": 0, "released": 0, "reasons": []}
    if (by_flow or causes) and workspace_suspended():
        raise WorkspaceSuspended(SUSPENDED)
    if causes:
        _causes_recheck(causes, outcome, actor)
    for group in by_flow.values():
        flow = group[0].flow
        ids = [e.pk for e in group]
        before = {e.pk: e.status for e in group}
        with transaction.atomic():
            SyncException.objects.filter(pk__in=ids).update(status=SyncException.Status.RETRYING)
            for exception in group:
                audit_record(
                    actor=actor,
                    action="exception.retried",
                    target_type="exception",
                    target_id=exception.pk,
                    summary=f"Retried: {exception.message}",
                    before=_snapshot(exception),
                    after={**_snapshot(exception), "status": "retrying"},
                )
        run = SyncRun.objects.create(
            flow=flow, trigger="retry", status=SyncRun.Status.RUNNING, started_at=timezone.now()
        )
        try:
            tally = _retry_group(flow, run, group)
        except (ConnectorError, ConnectionBroken) as error:
            # The vendor or the connection failed: the run says why; the exceptions go back to open below.
            SyncRun.objects.filter(pk=run.pk).update(
                status=SyncRun.Status.FAILED, error=str(error)[:500], finished_at=timezone.now()
            )
            outcome["failed_runs"] = outcome.get("failed_runs", 0) + 1
            outcome["reasons"].append(str(error)[:200])
        except Exception as error:
            # Not left "running": housekeeping would requeue it as a whole sync of the flow.
            SyncRun.objects.filter(pk=run.pk).update(
                status=SyncRun.Status.FAILED,
                error=f"Internal error: {type(error).__name__}",
                finished_at=timezone.now(),
            )
            raise
        finally:
            # Anything that neither resolved nor failed again goes back to where it was, never stuck retrying.
            for pk, status in before.items():
                SyncException.objects.filter(pk=pk, status=SyncException.Status.RETRYING).update(
                    status=status if status != SyncException.Status.RETRYING else SyncException.Status.OPEN
                )
        if run.pk and SyncRun.objects.filter(pk=run.pk, status=SyncRun.Status.RUNNING).exists():
            rerun_finish(run=run, tally=tally)
        resolved = SyncException.objects.filter(pk__in=ids, status=SyncException.Status.RESOLVED).count()
        outcome["retried"] += len(group)
        outcome["resolved"] += resolved
        outcome["still_open"] += len(group) - resolved
        outcome["reasons"] += _still_open_reasons(ids)
    if outcome["resolved"] or outcome["retried"]:
        # What was fixed may be what other records waited on (causes elsewhere are left to their own checks).
        outcome["released"] += exceptions_release(only=[]).synced
    outcome["reasons"] = sorted(set(outcome["reasons"]))[:5]
    return outcome


RETRYABLE = (SyncException.Status.OPEN, SyncException.Status.RETRYING, SyncException.Status.PARKED)


def _causes_recheck(causes: list[SyncException], outcome: dict, actor) -> None:
    """Read again the systems a cause is about (their reference flows), then release what it holds."""
    from integrations.models import Connection, Flow
    from integrations.services.runs import reference_refresh

    for cause in causes:
        audit_record(
            actor=actor,
            action="exception.retried",
            target_type="exception",
            target_id=cause.pk,
            summary=f"Checked again: {cause.message}",
            before=_snapshot(cause),
        )
        kind, _, rest = cause.cause.partition(":")
        if kind == "not_in_target":
            connection = Connection.objects.filter(pk=int(rest.split(":")[0])).first()
            for reference in Flow.objects.filter(source_connection=connection, steps__isnull=True).distinct():
                try:
                    reference_refresh(flow=reference)
                except (ConnectorError, ConnectionBroken) as error:
                    outcome["reasons"].append(f"{connection.name} could not be read: {error}"[:200])
    released = exceptions_release(only=causes)
    resolved = SyncException.objects.filter(pk__in=[c.pk for c in causes], status=SyncException.Status.RESOLVED).count()
    outcome["retried"] += len(causes)
    outcome["resolved"] += resolved
    outcome["still_open"] += len(causes) - resolved
    outcome["released"] += released.synced
    for cause in causes:
        if SyncException.objects.filter(pk=cause.pk, status__in=SyncException.LIVE).exists():
            outcome["reasons"].append(f"still true: {cause.message}"[:200])


def _still_open_reasons(ids: list[int]) -> list[str]:
    """Why the exceptions a retry did not resolve are still there, in their own words."""
    reasons = []
    for exception in SyncException.objects.filter(pk__in=ids).exclude(status=SyncException.Status.RESOLVED):
        if exception.status == SyncException.Status.PARKED and exception.waiting_on_id:
            reasons.append(f"waiting on exception #{exception.waiting_on_id}")
        else:
            reasons.append(exception.message.split(": ", 1)[-1][:200])
    return reasons


def _retry_group(flow, run, group):
    runner = FlowRunner(flow, run, connector_for=connector_for, link_before_create=target_guard)
    records = [exception_source_record(e) for e in group if e.object != "invoice"]
    Invoice.objects.filter(
        number__in=[e.external_id for e in group if e.object == "invoice"], environment=flow.environment
    ).update(needs_sync=True, marks=F("marks") + 1)
    tally = runner.process(records)
    runner.flush()
    return tally


def exception_retry(*, exception: SyncException, actor=None) -> dict:
    if not exception.is_live:
        raise ExceptionActionRefused("Only open exceptions can be retried.")
    return exceptions_retry(exceptions=[exception], actor=actor)


class RetryUnreachable(ExceptionActionRefused):
    """A target system could not be reached while retrying; the message says which and why."""


def retrying(action, **kwargs):
    """Run a retrying service; a connection that fails mid-retry is refused with a sentence, never a 500.

    The service leaves the exceptions it was retrying in "retrying" when a connector raises: they go
    back to open here, so none stays stuck. Those a live bulk retry still holds are its worker's to put
    back (it does, batch by batch): reopening them under it would let a person retry one twice at once.
    The pages and the API both retry through this.
    """
    from connectors.base import ConnectorError
    from integrations.engine.orchestrator import ConnectionBroken

    try:
        return action(**kwargs)
    except (ConnectorError, ConnectionBroken) as error:
        stuck = SyncException.objects.filter(status=SyncException.Status.RETRYING)
        for job in BulkAction.objects.filter(status__in=BULK_LIVE, action=BulkAction.Action.RETRY):
            stuck = stuck.exclude(pk__in=_bulk_held(job).values("pk"))
        stuck.update(status=SyncException.Status.OPEN)
        raise RetryUnreachable(f"A target system could not be reached, nothing was written: {error}") from error


def exception_retry_reported(*, exception: SyncException, actor=None) -> dict:
    """Retry one exception; ExceptionActionRefused (with the reason) when it cannot be retried or reached."""
    return retrying(exception_retry, exception=exception, actor=actor)


def exception_edit_and_retry(*, exception: SyncException, field: str, value: str, actor=None) -> dict[str, int]:
    """Correct one field of the stored source record, then retry it."""
    data = exception.payload.get("data")
    if not exception.is_live or data is None:
        raise ExceptionActionRefused("This exception has no record to edit.")
    if workspace_suspended():  # before the edit, so a refused retry leaves nothing half done
        raise WorkspaceSuspended(SUSPENDED)
    before = get_path(data, field)
    with transaction.atomic():
        target = data
        parts = field.split(".")
        for part in parts[:-1]:
            target = target.setdefault(part, {})
        target[parts[-1]] = value
        exception.save(update_fields=["payload"])
        audit_record(
            actor=actor,
            action="exception.edited",
            target_type="exception",
            target_id=exception.pk,
            summary=f"Set {field} to “{value}”",
            before={field: None if before is None else str(before)},
            after={field: value},
        )
    return exceptions_retry(exceptions=[exception], actor=actor)


def value_map_entry_add_and_retry(
    *, value_map_key: str, source_value: str, target_value: str, actor=None
) -> dict[str, int]:
    """Add the mapping a clerk chose, then retry every live exception it can fix."""
    value_map = ValueMap.objects.get(key=value_map_key)
    with transaction.atomic():
        entry, created = ValueMapEntry.objects.update_or_create(
            value_map=value_map, source_value=source_value, defaults={"target_value": target_value}
        )
        audit_record(
            actor=actor,
            action="value_map.entry_set",
            target_type="value_map",
            target_id=value_map.pk,
            summary=f"{value_map.name}: “{source_value}” → “{target_value}”",
            before=None if created else {"source_value": source_value},
            after={"source_value": source_value, "target_value": target_value},
        )
    # JSON containment uses the GIN index on fix_actions: no scan of every live exception.
    fixable = list(
        SyncException.objects.filter(
            status__in=SyncException.LIVE,
            fix_actions__contains=[{"action": "map_value", "value_map": value_map_key, "value": source_value}],
        ).select_related("flow")
    )
    return exceptions_retry(exceptions=fixable, actor=actor)


@transaction.atomic
def exception_ignore(*, exception: SyncException, reason: str, actor=None) -> SyncException:
    """Set an exception aside, saying why; the records waiting on it are set aside with it."""
    if not reason.strip():
        raise ExceptionActionRefused("Say why this exception is ignored.")
    before = _snapshot(exception)
    now = timezone.now()
    exception.status = SyncException.Status.IGNORED
    exception.ignored_reason = reason.strip()[:300]
    exception.resolved_at = now
    exception.save(update_fields=["status", "ignored_reason", "resolved_at"])
    waiting = exception.parked.filter(status=SyncException.Status.PARKED).update(
        status=SyncException.Status.IGNORED, ignored_reason=exception.ignored_reason, resolved_at=now
    )
    audit_record(
        actor=actor,
        action="exception.ignored",
        target_type="exception",
        target_id=exception.pk,
        summary=f"Ignored: {reason.strip()[:200]}" + (f" (and the {waiting} records waiting on it)" if waiting else ""),
        before=before,
        after={**_snapshot(exception), "records_waiting_ignored": waiting},
    )
    return exception


@transaction.atomic
def exception_assign(*, exception: SyncException, assignee, actor=None) -> SyncException:
    before = _snapshot(exception)
    exception.assignee_id = getattr(assignee, "pk", None)
    exception.assignee_email = getattr(assignee, "email", "") or ""
    exception.save(update_fields=["assignee_id", "assignee_email"])
    audit_record(
        actor=actor,
        action="exception.assigned",
        target_type="exception",
        target_id=exception.pk,
        summary=f"Assigned to {exception.assignee_email or 'nobody'}",
        before=before,
        after=_snapshot(exception),
    )
    return exception


@transaction.atomic
def exception_comment(*, exception: SyncException, body: str, actor=None) -> SyncExceptionComment:
    if not body.strip():
        raise ExceptionActionRefused("A comment cannot be empty.")
    comment = SyncExceptionComment.objects.create(
        exception=exception,
        author_id=getattr(actor, "pk", None),
        author_email=getattr(actor, "email", "") or "",
        body=body.strip(),
    )
    audit_record(
        actor=actor,
        action="exception.commented",
        target_type="exception",
        target_id=exception.pk,
        summary=body.strip()[:200],
    )
    return comment


# --- What a running bulk job holds (its worker retries them; integrations.services.bulk runs it) ----------

BULK_LIVE = [BulkAction.Status.QUEUED, BulkAction.Status.RUNNING]


def after_bulk_cursor(exceptions, job: BulkAction):
    """Those of `exceptions` past the cursor of the job's last recorded batch (all of them before its first)."""
    if not job.cursor:
        return exceptions
    after, last_id = datetime.fromisoformat(job.cursor[0]), job.cursor[1]
    return exceptions.filter(Q(created_at__gt=after) | Q(created_at=after, id__gt=last_id))


def _bulk_held(job: BulkAction):
    """The exceptions a live bulk retry holds: those its filters match past the cursor of its last recorded batch,
    whatever their status now (the batch its worker is retrying is "retrying", not "open", until it is done)."""
    from integrations import selectors

    query = selectors.QueueQuery(**{**job.query, "status": "all"})
    held = selectors.exceptions_filtered(query, user_id=job.actor_id, sla_hours=job.sla_hours).filter(
        status__in=SyncException.LIVE, created_at__lte=job.up_to
    )
    return after_bulk_cursor(held, job)
