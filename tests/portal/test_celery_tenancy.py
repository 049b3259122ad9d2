"""A task queued from a client schema runs in that schema, on a real worker over the real broker."""

import json
import os
import signal
from pathlib import Path

import pytest
from django.db import connection
from django_celery_beat.models import PeriodicTask
from django_celery_beat.schedulers import ModelEntry

from integrations.models import AuditEvent
from integrations.tasks import workspace_note
from portal.celery import app
from portal.tasks import schema_probe
from tenants import services
from tests.support import start_worker

pytestmark = [pytest.mark.django_db, pytest.mark.worker]


@pytest.fixture(scope="module")
def worker(tmp_path_factory, django_db_blocker):
    log = Path(tmp_path_factory.mktemp("worker")) / "worker.log"
    process = start_worker(log)
    yield process
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=20)


def test_task_queued_from_a_client_schema_runs_there(world, worker):
    contoso = world.clients["contoso"]
    connection.set_tenant(contoso)
    result = workspace_note.delay("queued from contoso").get(timeout=90)
    assert result["schema"] == contoso.schema_name
    assert AuditEvent.objects.filter(pk=result["audit_event_id"], summary="queued from contoso").exists()
    connection.set_tenant(world.clients["tailspin"])
    assert not AuditEvent.objects.filter(summary="queued from contoso").exists()


def test_task_queued_from_public_runs_in_public(world, worker):
    connection.set_schema_to_public()
    assert schema_probe.delay().get(timeout=90) == "public"


def test_beat_schedule_runs_in_the_tenant_it_names(world, worker):
    fabrikam = world.clients["fabrikam"]
    services.client_periodic_task_upsert(
        client=fabrikam, name="probe", task="portal.tasks.schema_probe", every_seconds=3600, kwargs={}
    )
    connection.set_schema_to_public()  # beat runs in public; the header must carry the tenant
    entry = ModelEntry(PeriodicTask.objects.get(name=f"{fabrikam.schema_name}:probe"), app=app)
    assert json.loads(PeriodicTask.objects.get(name=f"{fabrikam.schema_name}:probe").headers)["_schema_name"]
    result = app.tasks[entry.task].apply_async(entry.args, entry.kwargs, **entry.options)
    assert result.get(timeout=90) == fabrikam.schema_name
