"""Starting and executing sync runs, in slices so one client's big sync never starves another's."""

from __future__ import annotations

import logging
import time
import zlib
from contextlib import contextmanager

from django.conf import settings
from django.db import connection as db
from django.db import transaction
from django.utils import timezone

from connectors.base import AuthenticationFailed, ConnectorError, DestinationRefused
from integrations.engine.orchestrator import ConnectionBroken, FlowRunner
from integrations.models import Flow, FlowStep, SyncRun
from integrations.services.account_health import ACCOUNT_HEALTH
from integrations.services.audit import audit_record
from integrations.services.connections import connection_status_set, connector_for

logger = logging.getLogger("integrations.runs")


class SyncNotAllowed(Exception):
    """The workspace is suspended or the flow is paused; the message says so."""


def _client():
    return getattr(db, "tenant", None)


def workspace_suspended() -> bool:
    """Whether the current workspace is suspended, as the database says now.

    The client object on the connection was loaded when the request or task began; a bulk retry
    or a long run that outlives a suspension must still see it.
    """
    from tenants.models import Client

    client = _client()
    if client is None or not getattr(client, "pk", None):
        return False
    return Client.objects.filter(pk=client.pk, status=Client.Status.SUSPENDED).exists()


SUSPENDED = "This workspace is suspended: syncs are stopped until your partner resumes it."


def run_start(*, flow: Flow, trigger: str = "manual", actor=None, enqueue: bool = True) -> SyncRun:
    """Queue a run of `flow`; an already queued or running run is returned instead of a second one.

    enqueue=False leaves the execution to the caller (benchmarks and scripts calling run_slice).
    """
    if workspace_suspended():
        raise SyncNotAllowed(SUSPENDED)
    if not flow.enabled and trigger != "manual":
        raise SyncNotAllowed(f"“{flow.name}” is paused.")
    unmapped = flow_unmapped(flow)
    if unmapped:
        raise SyncNotAllowed(unmapped)
    with transaction.atomic():
        Flow.objects.select_for_update().get(pk=flow.pk)
        existing = flow.runs.filter(status__in=SyncRun.LIVE).first()
        if existing:
            return existing
        run = SyncRun.objects.create(flow=flow, trigger=trigger)
        if actor is not None:
            audit_record(
                actor=actor,
                action="flow.run_started",
                target_type="flow",
                target_id=flow.pk,
                summary=f"Started “{flow.name}” by hand",
            )
        if enqueue:
            transaction.on_commit(lambda: run_enqueue(run_id=run.pk))
    return run


def flow_unmapped(flow: Flow) -> str:
    """Why a flow built by hand cannot run yet (its inbound mapping has no rules), or "".

    A target whose mapping has no rules yet does not stop the flow: runs skip it and say so
    (FlowRunner.skipped_steps), so adding a target to a live flow never stops its schedule.
    """
    if flow.entity == ACCOUNT_HEALTH:
        return ""  # it maps figures to CRM fields (its step's options), not a source's fields
    if not flow.inbound_mapping.rules.exists():
        return f"“{flow.name}” maps no fields yet: add rules in its mapping, then run it."
    return ""


def flow_steps_unmapped(flow: Flow) -> list[FlowStep]:
    """The flow's targets that runs skip because their mapping has no rules yet."""
    return list(
        flow.steps.filter(
            action=FlowStep.Action.WRITE, outbound_mapping__isnull=False, outbound_mapping__rules__isnull=True
        ).order_by("order")
    )


def run_refused(*, flow: Flow, trigger: str, reason: str) -> SyncRun:
    """A run nobody asked for by hand (a schedule) that could not start: recorded as a failed run,
    so the flow's run history says why it did not sync instead of staying silent."""
    logger.warning("%s run of flow %s (%s) refused: %s", trigger, flow.pk, db.schema_name, reason)
    now = timezone.now()
    return SyncRun.objects.create(
        flow=flow,
        trigger=trigger,
        status=SyncRun.Status.FAILED,
        error=f"{SyncRun.REFUSED}{reason}"[:500],
        queued_at=now,
        started_at=now,
        finished_at=now,
    )


def run_enqueue(*, run_id: int, countdown: float = 0, woken: bool = False) -> None:
    from integrations.tasks import run_sync

    run_sync.apply_async(args=[run_id], kwargs={"woken": True} if woken else {}, countdown=countdown)


def runs_wake_next() -> int | None:
    """A run of this client just finished: the oldest run queued behind it may start now."""
    waiting = SyncRun.objects.filter(status=SyncRun.Status.QUEUED).order_by("queued_at", "pk").first()
    if waiting is None:
        return None
    run_enqueue(run_id=waiting.pk, woken=True)
    return waiting.pk


def connection_rollback_if_needed() -> None:
    if db.needs_rollback or not db.is_usable():
        db.rollback()


def _lock_key(run_id: int) -> int:
    return zlib.crc32(f"{db.schema_name}:run:{run_id}".encode())


def run_slice(*, run_id: int, slice_seconds: float | None = None, notify=None) -> str:
    """Execute one slice of a run. Returns "done", "continue" (queue the next slice) or "busy"."""
    slice_seconds = slice_seconds if slice_seconds is not None else settings.SYNC_SLICE_SECONDS
    if notify is None:
        from integrations.notifications import engine_notify as notify
    with db.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [_lock_key(run_id)])
        if not cursor.fetchone()[0]:
            return "busy"  # another worker holds this run (a redelivered message): let it finish
    slot = _client_slot_take()
    if slot is None:
        with db.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [_lock_key(run_id)])
        return "busy"  # this client already has as many slices executing as it may
    try:
        return _run_slice_locked(run_id, slice_seconds, notify)
    except Exception as error:
        # A fault of ours (not the vendor's): the run fails visibly instead of staying "running".
        logger.exception("Run %s stopped by an internal error", run_id)
        connection_rollback_if_needed()
        SyncRun.objects.filter(pk=run_id, status__in=SyncRun.LIVE).update(
            status=SyncRun.Status.FAILED, error=f"Internal error: {type(error).__name__}", finished_at=timezone.now()
        )
        return "done"
    finally:
        with db.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [slot])
            cursor.execute("SELECT pg_advisory_unlock(%s)", [_lock_key(run_id)])


def _client_slot_take() -> int | None:
    """One of the client's SYNC_MAX_RUNS_PER_CLIENT execution slots, as a PostgreSQL advisory lock.

    Checking how many runs are "running" and then starting one is a race two workers can both
    win; taking a lock is not.
    """
    with db.cursor() as cursor:
        for index in range(max(1, settings.SYNC_MAX_RUNS_PER_CLIENT)):
            key = zlib.crc32(f"{db.schema_name}:slot:{index}".encode())
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
            if cursor.fetchone()[0]:
                return key
    return None


def _run_slice_locked(run_id: int, slice_seconds: float, notify) -> str:
    run = SyncRun.objects.select_related("flow", "flow__source_connection", "flow__inbound_mapping").get(pk=run_id)
    if run.status not in SyncRun.LIVE:
        return "done"
    running_elsewhere = SyncRun.objects.filter(status=SyncRun.Status.RUNNING).exclude(pk=run.pk).count()
    if run.status == SyncRun.Status.QUEUED and running_elsewhere >= settings.SYNC_MAX_RUNS_PER_CLIENT:
        return "busy"
    flow = run.flow
    if run.status == SyncRun.Status.QUEUED:
        run.status = SyncRun.Status.RUNNING
        run.started_at = timezone.now()
        run.save(update_fields=["status", "started_at"])
        try:
            _run_prerequisites(flow, notify)
        except ConnectionBroken as broken:
            started_failing = connection_status_set(connection=broken.connection, ok=False, error=str(broken.error))
            _finish(run, SyncRun.Status.FAILED, f"{broken.connection.name}: {broken.error}", (0, 0))
            if started_failing:
                notify(kind="connection_failed", connection=broken.connection, run=run)
            return "done"
        except ConnectorError as error:
            _finish(run, SyncRun.Status.FAILED, str(error), (0, 0))
            notify(kind="run_failed", run=run)
            return "done"
    if flow.entity == ACCOUNT_HEALTH:
        return _account_health_run(run, notify)
    calls_before = _vendor_calls(flow)
    try:
        runner = FlowRunner(flow, run, connector_for=connector_for, notify=notify, link_before_create=target_guard)

        def on_page(page):
            if page.total is not None and run.expected != page.total:
                run.expected = page.total
                SyncRun.objects.filter(pk=run.pk).update(expected=page.total)

        _, finished = runner.execute(deadline=time.monotonic() + slice_seconds, on_page=on_page)
    except ConnectionBroken as broken:
        started_failing = connection_status_set(connection=broken.connection, ok=False, error=str(broken.error))
        _finish(run, SyncRun.Status.FAILED, f"{broken.connection.name}: {broken.error}", calls_before)
        if started_failing:
            notify(kind="connection_failed", connection=broken.connection, run=run)
        return "done"
    except ConnectorError as error:
        _finish(run, SyncRun.Status.FAILED, str(error), calls_before)
        notify(kind="run_failed", run=run)
        return "done"
    if not finished:
        _record_calls(run, calls_before)
        return "continue"
    run.refresh_from_db()
    connection_status_set(connection=flow.source_connection, ok=True)
    _finish(
        run, SyncRun.Status.PARTIAL if run.failed or run.parked else SyncRun.Status.SUCCEEDED, runner.note, calls_before
    )
    # What this run linked or created may be what other records were waiting for: release them now.
    from integrations.services.releases import exceptions_release

    exceptions_release(notify=notify)
    return "done"


def _account_health_run(run: SyncRun, notify) -> str:
    """A run of a flow that writes delivery figures to CRM accounts (services.account_health), in one slice: a run
    like any other (counts, run records, exceptions, failure alerts), without the sync engine."""
    from integrations.services.account_health import AccountHealthNotReady, account_health_push, account_health_step

    calls_before = _vendor_calls(run.flow)
    step = account_health_step(run.flow)
    try:
        note = account_health_push(run=run, connector_for=connector_for)
    except (AuthenticationFailed, DestinationRefused) as error:
        crm = step.target_connection
        started_failing = connection_status_set(connection=crm, ok=False, error=str(error))
        _finish(run, SyncRun.Status.FAILED, f"{crm.name}: {error}", calls_before)
        if started_failing:
            notify(kind="connection_failed", connection=crm, run=run)
        return "done"
    except (ConnectorError, AccountHealthNotReady) as error:
        _finish(run, SyncRun.Status.FAILED, str(error), calls_before)
        notify(kind="run_failed", run=run)
        return "done"
    run.refresh_from_db()
    connection_status_set(connection=step.target_connection, ok=True)
    _finish(run, SyncRun.Status.PARTIAL if run.failed else SyncRun.Status.SUCCEEDED, note, calls_before)
    return "done"


def _run_prerequisites(flow: Flow, notify) -> None:
    """Reference flows (projects, people) are brought up to date before the flow that needs them."""
    read = {}
    for prerequisite in flow.prerequisites.select_related("source_connection"):
        reference_refresh(flow=prerequisite, notify=notify)
        read[prerequisite.source_connection_id] = prerequisite.source_connection
    # A target system is read here before anything is written to it: that read proves the connection, and a
    # system the product only writes to would otherwise show "never tested" however many runs reached it.
    for connection in read.values():
        connection_status_set(connection=connection, ok=True)


def reference_refresh(*, flow: Flow, notify=None) -> SyncRun:
    """Read a reference flow's records since its cursor now, as a run of its own (trigger "reference").

    Two runs of one workspace (its time and its expenses) need the same reference flows at the same moment:
    the second waits for the first's read, then reads on from the cursor it left, so each record is linked
    once instead of both runs inserting the same links."""
    key = zlib.crc32(f"{db.schema_name}:reference:{flow.pk}".encode())
    with db.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s)", [key])
    try:
        flow.refresh_from_db(fields=["cursor", "cursor_updated_at"])
        run = SyncRun.objects.create(
            flow=flow, trigger="reference", status=SyncRun.Status.RUNNING, started_at=timezone.now()
        )
        FlowRunner(flow, run, connector_for=connector_for, notify=notify).execute()
        run.refresh_from_db()
        _finish(run, SyncRun.Status.PARTIAL if run.failed or run.parked else SyncRun.Status.SUCCEEDED, "", (0, 0))
    finally:
        with db.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [key])
    return run


def _target_lock_key(connection, object_name: str) -> int:
    # The same system reached by two workspaces (two Connection rows, one base URL) is one key.
    where = connection.base_url.strip().rstrip("/").lower()
    return zlib.crc32(f"target:{connection.vendor}:{where}:{object_name}".encode())


@contextmanager
def target_guard(connection, object_name: str):
    """Hold `object_name` of the system `connection` reaches, for every workspace of this platform, and read
    its records again (the reference flows reading it), so what another run created a moment ago is linked
    and not created twice. The engine creates records inside this."""
    key = _target_lock_key(connection, object_name)
    with db.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s)", [key])
    try:
        for reference in Flow.objects.filter(
            source_connection=connection, source_object=object_name, steps__isnull=True
        ).distinct():
            reference_refresh(flow=reference)
        yield
    finally:
        with db.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [key])


def _vendor_calls(flow: Flow) -> tuple[int, int]:
    from connectors.http import DEFAULT_METRICS

    keys = {flow.source_connection} | {s.target_connection for s in flow.steps.all() if s.target_connection}
    calls = limited = 0
    for conn in keys:
        stats = DEFAULT_METRICS.stats(conn.vendor, conn.key)
        calls += stats.count
        limited += stats.rate_limited
    return calls, limited


def _record_calls(run: SyncRun, before: tuple[int, int]) -> None:
    after = _vendor_calls(run.flow)
    SyncRun.objects.filter(pk=run.pk).update(
        vendor_calls=run.vendor_calls + max(0, after[0] - before[0]),
        rate_limited=run.rate_limited + max(0, after[1] - before[1]),
    )
    run.refresh_from_db(fields=["vendor_calls", "rate_limited"])


def _finish(run: SyncRun, status: str, error: str, calls_before) -> None:
    _record_calls(run, calls_before)
    SyncRun.objects.filter(pk=run.pk).update(status=status, error=error[:500], finished_at=timezone.now())
    run.refresh_from_db()
    from api.webhooks import run_finished_emit
    from integrations.metrics import run_finished

    run_finished(run)
    run_finished_emit(run)


def runs_recover_stale(*, older_than_seconds: int = 120) -> int:
    """Requeue runs left "running" by a worker that died (its advisory lock is gone with it)."""
    recovered = 0
    cutoff = timezone.now() - timezone.timedelta(seconds=older_than_seconds)
    for run in SyncRun.objects.filter(status__in=SyncRun.LIVE, queued_at__lt=cutoff):
        with db.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [_lock_key(run.pk)])
            free = cursor.fetchone()[0]
            if free:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [_lock_key(run.pk)])
        if free:
            run_enqueue(run_id=run.pk)
            recovered += 1
    return recovered
