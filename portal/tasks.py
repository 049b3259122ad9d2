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


@shared_task(name="portal.tasks.dashboards_refresh", ignore_result=True)
def dashboards_refresh() -> int:
    """Every minute: queue, in each workspace whose dashboards people are looking at, a refresh of
    those dashboards, so no page view pays for reading a million rows."""
    from django.core.cache import cache
    from django_tenants.utils import tenant_context

    from integrations.dashboard_cache import DASHBOARD_FRESH, dashboards_wanted
    from integrations.tasks import dashboards_refresh as refresh
    from tenants.models import Client

    queued = 0
    for client in Client.objects.only("pk", "schema_name"):
        variants = dashboards_wanted(client.schema_name)
        # One refresh per workspace at a time: a worker busy with a long run does not pile them up.
        if variants and cache.add(f"dash-refreshing:{client.schema_name}", 1, DASHBOARD_FRESH - 5):
            with tenant_context(client):
                refresh.delay(variants)
            queued += 1
    connection.set_schema_to_public()
    return queued
