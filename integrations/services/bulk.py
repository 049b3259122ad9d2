"""The exception queue's bulk actions: retry or ignore the ticked exceptions, or every one the filters match, in
the request up to BULK_LIMIT and past it as a BulkAction job a worker runs in batches (started, run, recovered
when it stops moving, summarised)."""

from __future__ import annotations

import dataclasses
import logging
import time
import zlib
from dataclasses import dataclass

from django.db import connection as db
from django.db import transaction
from django.utils import timezone

from connectors.base import ConnectorError
from integrations import selectors
from integrations.engine.orchestrator import ConnectionBroken
from integrations.models import (
    BulkAction,
    SyncException,
)
from integrations.services.audit import audit_record
from integrations.services.exceptions import (
    BULK_LIVE,
    BulkActionRunning,
    ExceptionActionRefused,
    RetryUnreachable,
    WorkspaceSuspended,
    after_bulk_cursor,
    exception_ignore,
    exceptions_retry,
    retrying,
)
from integrations.services.locks import workspace_lock
from integrations.services.runs import SUSPENDED, connection_rollback_if_needed, workspace_suspended

logger = logging.getLogger("integrations.exceptions")  # the name the exception services log under

# Bulk actions run in the request: this many at a time keeps it to seconds.
BULK_LIMIT = 500


@dataclass(frozen=True)
class BulkOutcome:
    """What to tell the person, and what changed: the queue refreshes on `event`, or not at all."""

    note: str
    level: str = "success"
    event: str = "exceptions-changed"  # "bulk-started" when a worker took it; "" when nothing changed


def exceptions_bulk_act(
    *, query, action: str, scope: str | None, ids: list[str], reason: str, actor, sla_hours: int | None
) -> BulkOutcome:
    """Retry or ignore the chosen live exceptions: the ticked `ids`, or all the filters match (`scope` "filtered").

    `action` "ignore-all" is one button's way of saying "ignore every one that matches"; anything else but
    "ignore" retries. Ignoring needs a reason, refused before anything runs. Past BULK_LIMIT matches a worker
    takes over (exceptions_bulk_start); within it they are acted on here, oldest first.
    """
    matching = selectors.exceptions_filtered(query, user_id=getattr(actor, "pk", None), sla_hours=sla_hours)
    live = matching.filter(status__in=selectors.LIVE_EXCEPTION)
    if action == "ignore-all":
        action, scope = "ignore", "filtered"
    elif action != "ignore":
        action = "retry"
    reason = (reason or "").strip()
    if action == "ignore" and not reason:
        # Nothing changed, so the table is not refreshed: the ticks stay.
        return BulkOutcome("Say why these exceptions are ignored.", "error", event="")
    if scope == "filtered":
        chosen = live.order_by("created_at", "id")
        total = selectors.bounded_count(live)
    else:
        picked = [int(value) for value in ids if value.isascii() and value.isdigit()][:BULK_LIMIT]
        chosen = live.filter(pk__in=picked).order_by("created_at", "id")
        total = None
    if total is not None and int(total) > BULK_LIMIT:
        return _in_background(query=query, action=action, reason=reason, actor=actor, sla_hours=sla_hours)
    batch = list(chosen.select_related("flow")[:BULK_LIMIT])
    if not batch:
        return BulkOutcome("Nothing to do: choose open exceptions first.", "error")
    level = "success"
    if action == "ignore":
        for exception in batch:
            exception_ignore(exception=exception, reason=reason[:300], actor=actor)
        note = f"Ignored {len(batch)} exception{'s' if len(batch) != 1 else ''}."
    else:
        try:
            outcome = retrying(exceptions_retry, exceptions=batch, actor=actor)
        except (ExceptionActionRefused, RetryUnreachable) as refused:
            note, level = str(refused), "error"
        else:
            note = (
                f"Retried {outcome['retried']}: {outcome['resolved']} resolved, {outcome['still_open']} still open."
                if outcome["retried"]
                else "None of these can be retried: they have no stored record."
            )
    if total is not None and int(total) > len(batch):
        note += f" That was the oldest {len(batch)} of {int(total):,}; run it again for the next ones."
    return BulkOutcome(note, level)


def _in_background(*, query, action: str, reason: str, actor, sla_hours: int | None) -> BulkOutcome:
    """More than one request should handle: a worker acts on them in batches; the queue shows its progress."""
    try:
        job = exceptions_bulk_start(action=action, reason=reason, query=query, sla_hours=sla_hours, actor=actor)
    except ExceptionActionRefused as refused:  # one already running, or the workspace is suspended
        return BulkOutcome(str(refused), "error", event="bulk-started")
    return BulkOutcome(
        f"{job.doing} {job.total:,} exceptions in the background; progress shows above the queue.",
        event="bulk-started",
    )


# --- Bulk retries and ignores past what one request handles --------------------------------------------

BULK_BATCH = 200


def _bulk_matching(job: BulkAction):
    """The exceptions a bulk job acts on: live ones its filters matched when it was asked for."""
    from integrations import selectors

    return selectors.exceptions_filtered(
        selectors.QueueQuery(**job.query), user_id=job.actor_id, sla_hours=job.sla_hours
    ).filter(status__in=SyncException.LIVE, created_at__lte=job.up_to)


def exceptions_bulk_start(*, action: str, query, sla_hours: int | None, actor, reason: str = "") -> BulkAction:
    """Queue a worker to retry or ignore every live exception the queue's filters match, as they are now.

    They are counted exactly here, once: the person is told that number, and the progress counts up to it
    (the queue only estimates counts past its cap)."""
    from integrations.tasks import exceptions_bulk_action

    reason = reason.strip()[:300]
    if action not in BulkAction.Action.values:
        raise ValueError(f"Unknown bulk action {action!r}")
    if action == BulkAction.Action.IGNORE and not reason:
        raise ExceptionActionRefused("Say why these exceptions are ignored.")
    with transaction.atomic():
        # Ignoring writes nothing to the targets, so a suspended workspace may still ignore, as it may
        # one exception at a time; retrying writes to them.
        if action == BulkAction.Action.RETRY and workspace_suspended():
            raise WorkspaceSuspended(SUSPENDED)
        # Checking for a live job and creating one is a race two requests can both win; the lock is not.
        # One job at a time per workspace, whatever it does: two would fight over the same exceptions.
        workspace_lock("bulk_retry")
        running = BulkAction.objects.filter(status__in=BULK_LIVE).first()
        if running is not None:
            raise BulkActionRunning(
                f"A bulk {running.get_action_display().lower()} is already running here: "
                "let it finish, then act on what is left."
            )
        job = BulkAction(
            action=action,
            reason=reason,
            query=dataclasses.asdict(query),
            sla_hours=sla_hours,
            actor_id=getattr(actor, "pk", None),
            actor_email=getattr(actor, "email", "") or "",
        )
        job.total = _bulk_matching(job).count()
        job.save()
        audit_record(
            actor=actor,
            action=f"exception.bulk_{action}_started",
            target_type="exception",
            summary=f"Started {job.doing.lower()} {job.total:,} exceptions that match the queue's filters"
            + (f": {reason}" if reason else ""),
            after={"filters": query.params(), "bulk_action": job.pk, "reason": reason},
        )
        transaction.on_commit(lambda: exceptions_bulk_action.delay(job.pk))
    return job


def _bulk_lock(job_id: int) -> int:
    # The key says "retry" for any action: a worker still running a job across a deploy keeps its lock.
    return zlib.crc32(f"{db.schema_name}:bulk-retry:{job_id}".encode())


def exceptions_bulk_run(*, job_id: int, seconds: float | None = None, batch_size: int = BULK_BATCH) -> str:
    """Retry or ignore the job's exceptions in batches, oldest first, recording progress after each batch.

    Returns "done", "continue" (time is up: queue the rest, so other workspaces get the worker
    too) or "busy" (another worker holds this job, e.g. a redelivered message). The keyset cursor
    is saved with each batch, so a worker that dies mid-job is resumed where it stopped. Any other
    error fails the job (never left "running", which would block every later bulk job) and is
    raised again.
    """
    with db.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [_bulk_lock(job_id)])
        if not cursor.fetchone()[0]:
            return "busy"
    batch: list[SyncException] = []
    try:
        return _bulk_run_locked(job_id, seconds, batch_size, batch)
    except Exception as error:
        logger.exception("Bulk job %s in %s stopped by an internal error", job_id, db.schema_name)
        connection_rollback_if_needed()
        SyncException.objects.filter(pk__in=[e.pk for e in batch], status=SyncException.Status.RETRYING).update(
            status=SyncException.Status.OPEN
        )
        job = BulkAction.objects.filter(pk=job_id).first()
        noun = job.get_action_display().lower() if job else "job"
        BulkAction.objects.filter(pk=job_id, status__in=BULK_LIVE).update(
            status=BulkAction.Status.FAILED,
            error=f"The bulk {noun} stopped on an internal error ({type(error).__name__}); "
            f"the exceptions it had not {job.done_verb if job else 'handled'} are still open.",
            finished_at=timezone.now(),
        )
        raise
    finally:
        with db.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [_bulk_lock(job_id)])


def _bulk_run_locked(job_id: int, seconds: float | None, batch_size: int, batch: list) -> str:
    """The job's work while this worker holds its lock; `batch` holds the exceptions being handled."""
    from tenants.models import User

    job = BulkAction.objects.filter(pk=job_id).first()
    if job is None or not job.live:
        return "done"
    actor = User.objects.filter(pk=job.actor_id).first() if job.actor_id else None
    retrying = job.action == BulkAction.Action.RETRY
    if retrying and workspace_suspended():
        job.status, job.error = BulkAction.Status.FAILED, BULK_SUSPENDED
        _bulk_finish(job, actor)
        return "done"
    if job.status == BulkAction.Status.QUEUED:
        job.status = BulkAction.Status.RUNNING
        job.progress_at = timezone.now()
        job.save(update_fields=["status", "progress_at"])
    deadline = time.monotonic() + seconds if seconds else None
    while True:
        pending = after_bulk_cursor(_bulk_matching(job), job)
        batch[:] = pending.order_by("created_at", "id").select_related("flow")[:batch_size]
        if not batch:
            break
        if not retrying:
            _bulk_ignore_batch(job, batch, actor)
        else:
            try:
                outcome = exceptions_retry(exceptions=batch, actor=actor)
            except (ConnectorError, ConnectionBroken) as error:
                SyncException.objects.filter(pk__in=[e.pk for e in batch], status=SyncException.Status.RETRYING).update(
                    status=SyncException.Status.OPEN
                )
                job.status = BulkAction.Status.FAILED
                job.error = f"A target system could not be reached: {error}"[:500]
                break
            except WorkspaceSuspended:  # suspended while the job ran: exceptions_retry wrote nothing
                job.status, job.error = BulkAction.Status.FAILED, BULK_SUSPENDED
                break
            job.done += len(batch)
            job.resolved += outcome["resolved"]
            job.still_open += len(batch) - outcome["resolved"]
            _bulk_progress(job, batch)
        if deadline is not None and time.monotonic() > deadline:
            return "continue"
    if job.status != BulkAction.Status.FAILED:
        job.status = BulkAction.Status.DONE
    _bulk_finish(job, actor)
    return "done"


def _bulk_ignore_batch(job: BulkAction, batch: list[SyncException], actor) -> None:
    """Ignore a batch and record it in one transaction: a worker that dies mid-batch resumes at its start."""
    with transaction.atomic():
        # Locked and read again: one a person resolved or ignored since the batch was read is left alone.
        still_live = set(
            SyncException.objects.select_for_update()
            .filter(pk__in=[e.pk for e in batch], status__in=SyncException.LIVE)
            .values_list("pk", flat=True)
        )
        for exception in batch:
            if exception.pk in still_live:
                exception_ignore(exception=exception, reason=job.reason, actor=actor)
        job.done += len(batch)
        job.resolved += len(still_live)
        _bulk_progress(job, batch)


def _bulk_progress(job: BulkAction, batch: list[SyncException]) -> None:
    job.cursor = [batch[-1].created_at.isoformat(), batch[-1].pk]
    job.progress_at = timezone.now()
    job.save(update_fields=["done", "resolved", "still_open", "cursor", "progress_at"])


BULK_SUSPENDED = "The workspace is suspended: retries write to your systems, so they wait until it is resumed."


def _bulk_finish(job: BulkAction, actor) -> None:
    job.total = max(job.total, job.done)
    job.finished_at = timezone.now()
    if job.action == BulkAction.Action.IGNORE:
        tallies = {"ignored": job.resolved, "reason": job.reason}
    else:
        tallies = {"retried": job.done, "resolved": job.resolved, "still_open": job.still_open}
    with transaction.atomic():
        job.save(update_fields=["status", "error", "total", "finished_at"])
        audit_record(
            actor=actor,
            action=f"exception.bulk_{job.action}_finished",
            target_type="exception",
            summary=bulk_action_summary(job),
            after={"bulk_action": job.pk, **tallies},
        )


BULK_STALE_SECONDS = 300


def bulk_actions_recover_stale(*, idle_seconds: int = BULK_STALE_SECONDS) -> int:
    """Requeue live bulk jobs that recorded no progress for `idle_seconds` and whose lock nobody
    holds: their worker died, or their message was lost. Returns how many were requeued."""
    from integrations.tasks import exceptions_bulk_action

    now = timezone.now()
    stale = BulkAction.objects.filter(
        status__in=BULK_LIVE, progress_at__lt=now - timezone.timedelta(seconds=idle_seconds)
    )
    recovered = 0
    for job_id in stale.values_list("pk", flat=True):
        with db.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [_bulk_lock(job_id)])
            free = cursor.fetchone()[0]
            if free:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [_bulk_lock(job_id)])
        if not free:
            continue  # a worker is on it right now
        # Counted as progress, so the next sweep gives the requeued message time to reach a worker.
        BulkAction.objects.filter(pk=job_id).update(progress_at=now)
        logger.warning("Bulk job %s in %s made no progress for %s s: requeued", job_id, db.schema_name, idle_seconds)
        exceptions_bulk_action.delay(job_id)
        recovered += 1
    return recovered


def bulk_action_summary(job: BulkAction) -> str:
    """What a finished bulk job did, as the toast and the audit log say it."""
    plural = "s" if job.done != 1 else ""
    if job.status == BulkAction.Status.FAILED:
        return f"Stopped after {job.done:,} of {job.total:,}. {job.error}"
    if job.action == BulkAction.Action.IGNORE:
        return f"Ignored {job.resolved:,} exception{'s' if job.resolved != 1 else ''}: {job.reason}"
    return f"Retried {job.done:,} exception{plural}: {job.resolved:,} resolved, {job.still_open:,} still open."
