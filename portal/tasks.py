"""Platform housekeeping tasks."""

from __future__ import annotations

import socket

from celery import shared_task
from django.db import connection
from django.utils import timezone

from portal.models import WorkerHeartbeat


@shared_task(name="portal.tasks.heartbeat", ignore_result=True)
def heartbeat() -> None:
    """Run by beat every 15 s; /healthz reads how long ago a worker last ran it."""
    WorkerHeartbeat.objects.update_or_create(worker=socket.gethostname(), defaults={"beat_at": timezone.now()})


@shared_task(name="portal.tasks.schema_probe")
def schema_probe() -> str:
    """Answer the schema this task ran in: the operator's check that tenant routing of tasks works."""
    return connection.schema_name


@shared_task(name="portal.tasks.usage_rollup")
def usage_rollup() -> int:
    from integrations.housekeeping import usage_rollup as rollup

    return rollup()


@shared_task(name="portal.tasks.sla_alerts")
def sla_alerts() -> int:
    from integrations.housekeeping import sla_alerts as alerts

    return alerts()


@shared_task(name="portal.tasks.runs_recover")
def runs_recover() -> int:
    from integrations.housekeeping import runs_recover_all

    return runs_recover_all()
