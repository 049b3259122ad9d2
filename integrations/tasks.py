"""Celery tasks of a client workspace. Each runs in the schema of the tenant that queued it."""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings
from django.db import connection

from integrations.services.audit import audit_record

logger = logging.getLogger("integrations.runs")


@shared_task(name="integrations.tasks.workspace_note")
def workspace_note(summary: str) -> dict:
    """Record a system note in the audit log of the workspace the task was queued from."""
    event = audit_record(actor=None, action="system.note", summary=summary)
    return {"schema": connection.schema_name, "audit_event_id": event.pk}


@shared_task(name="integrations.tasks.run_sync", acks_late=True)
def run_sync(run_id: int, woken: bool = False) -> str:
    """One slice of a run; queues the next slice behind other work, so every client gets its turn.

    A run that finds its client's slot taken waits in the queue behind the run holding it: that run wakes the
    client's oldest queued run when it is done. The run also looks again itself, rarely
    (SYNC_BUSY_RECHECK_SECONDS), in case the holder died before waking anyone; a woken run that lost the
    slot to another leaves the looking to that one message, so messages do not multiply."""
    from integrations.notifications import engine_notify
    from integrations.services.runs import run_enqueue, run_slice, runs_wake_next

    if connection.schema_name == "public":
        # The workspace that queued it is gone (deleted client): nothing to run, nothing to retry.
        return "no workspace"

    outcome = run_slice(run_id=run_id, notify=engine_notify)
    if outcome == "continue":
        run_enqueue(run_id=run_id)
    elif outcome == "busy" and not woken:
        run_enqueue(run_id=run_id, countdown=settings.SYNC_BUSY_RECHECK_SECONDS)
    elif outcome == "done":
        runs_wake_next()
    return outcome


@shared_task(name="integrations.tasks.flow_scheduled")
def flow_scheduled(flow_id: int) -> int | None:
    """Beat's entry point for a scheduled flow. A run that cannot start is recorded as a failed run
    with the reason (the flow's run history shows it) and logged: a schedule never stops silently."""
    from integrations.models import Flow
    from integrations.services.runs import SyncNotAllowed, run_refused, run_start

    flow = Flow.objects.filter(pk=flow_id).first()
    if flow is None:
        logger.warning("Scheduled flow %s is gone from %s; its beat entry outlived it", flow_id, connection.schema_name)
        return None
    try:
        return run_start(flow=flow, trigger="schedule").pk
    except SyncNotAllowed as refused:
        run_refused(flow=flow, trigger="schedule", reason=str(refused))
        return None


@shared_task(name="integrations.tasks.runs_recover")
def runs_recover() -> int:
    from integrations.services.runs import runs_recover_stale

    return runs_recover_stale()


@shared_task(name="integrations.tasks.dashboards_refresh", ignore_result=True)
def dashboards_refresh(variants: list | None = None) -> int:
    """Recompute this workspace's dashboards into the shared cache: the ones named (a page found
    them stale), or every one someone looked at in the last minutes (beat, once a minute)."""
    from integrations import dashboard_cache

    if connection.schema_name == "public":
        return 0
    if variants is None:
        variants = dashboard_cache.dashboards_wanted(connection.schema_name)
    for name, params in variants:
        if name in dashboard_cache.DASHBOARDS:
            dashboard_cache.dashboard_compute(name, params)
    return len(variants)


# Registered under its old name: messages queued before bulk ignores existed still reach it.
@shared_task(name="integrations.tasks.exceptions_bulk_retry", acks_late=True)
def exceptions_bulk_action(job_id: int) -> str:
    """A slice of a bulk retry or ignore; queues the rest behind other work, like a sync run's slices."""
    from django.conf import settings

    from integrations.services.bulk import exceptions_bulk_run

    if connection.schema_name == "public":
        return "no workspace"
    outcome = exceptions_bulk_run(job_id=job_id, seconds=settings.SYNC_SLICE_SECONDS)
    if outcome == "continue":
        exceptions_bulk_action.delay(job_id)
    elif outcome == "busy":
        exceptions_bulk_action.apply_async(args=[job_id], countdown=5)
    return outcome


@shared_task(name="integrations.tasks.template_rollout_client", acks_late=True)
def template_rollout_client(rollout_id: int, deployment_id: int) -> None:
    """One client of a partner's “Upgrade all” (integrations.partner_templates.services.rollout_start)."""
    from integrations.partner_templates.services import rollout_client_upgrade

    rollout_client_upgrade(rollout_id=rollout_id, deployment_id=deployment_id)
