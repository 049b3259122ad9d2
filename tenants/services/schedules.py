"""Beat schedules that run a task inside one client's schema; suspending a client turns them off."""

from __future__ import annotations

import json

from django_celery_beat.models import IntervalSchedule, PeriodicTask, PeriodicTasks

from tenants.models import (
    Client,
)


def client_periodic_task_upsert(
    *, client: Client, name: str, task: str, every_seconds: int, kwargs: dict
) -> PeriodicTask:
    """A beat schedule that runs `task` inside `client`'s schema (tenant-schemas-celery reads the header).

    A suspended client's entries are kept but disabled; `client_resume` turns them back on.
    """
    interval, _ = IntervalSchedule.objects.get_or_create(every=every_seconds, period=IntervalSchedule.SECONDS)
    suspended = Client.objects.filter(pk=client.pk, status=Client.Status.SUSPENDED).exists()
    periodic, _ = PeriodicTask.objects.update_or_create(
        name=f"{client.schema_name}:{name}",
        defaults={
            "task": task,
            "interval": interval,
            "kwargs": json.dumps(kwargs),
            "headers": json.dumps({"_schema_name": client.schema_name}),
            "enabled": not suspended,
        },
    )
    return periodic


def client_periodic_task_disable(*, client: Client, name: str) -> None:
    """Stop beat sending one of the client's entries (kept, so its history and settings stay)."""
    if PeriodicTask.objects.filter(name=f"{client.schema_name}:{name}", enabled=True).update(enabled=False):
        PeriodicTasks.update_changed()  # a queryset update sends no signal; beat reloads on this mark


def client_periodic_tasks_disable(client: Client) -> None:
    """Every beat entry of a suspended client stops; the engine still refuses a run that was already queued."""
    PeriodicTask.objects.filter(name__startswith=f"{client.schema_name}:").update(enabled=False)
    PeriodicTasks.update_changed()  # a queryset update sends no signal; beat reloads on this mark


def client_periodic_tasks_enable(client: Client) -> None:
    """A resumed client's beat entries run again, but a flow's: the flow's own state decides those (the
    `client_resumed` signal lets the flows put their entries back)."""
    prefix = f"{client.schema_name}:"
    PeriodicTask.objects.filter(name__startswith=prefix).exclude(name__startswith=f"{prefix}flow-").update(enabled=True)
    PeriodicTasks.update_changed()
