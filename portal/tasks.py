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
