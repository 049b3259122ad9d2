"""Bulk retries past one request's share: the queue hands them to a worker that retries in batches,
records its progress, and the page shows it; every retry is audited under the person who asked."""

from __future__ import annotations

import json
import os
import signal

import pytest
from django.core.cache import cache
from django.db import connection

from integrations.models import AuditEvent, BulkRetry, SyncException, ValueMap, ValueMapEntry
from integrations.selectors import QueueQuery
from integrations.services.exceptions import exceptions_bulk_retry_run, exceptions_bulk_retry_start
from tests.integrations.test_approved_time import run_to_end
from tests.integrations.test_worker_runs import committed_workspace, install, wait_for, worker_env  # noqa: F401
from tests.support import NORTHWIND, SUMMIT, browser_for, start_worker

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture(autouse=True)
def _cold_cache():
    cache.clear()
    yield
    cache.clear()


def unbillable_then_mapped(sandboxes) -> int:
    """Run approved time: entries on projects the ERP lacks become exceptions; then map every such
    code to an ERP project (without retrying), so a retry resolves them. Returns how many."""
    flow = install(sandboxes)
    run_to_end(flow)
    codes = {
        fix["value"]
        for exception in SyncException.objects.filter(status="open", error_code="PROJECT_NOT_IN_TARGET")
        for fix in exception.fix_actions
        if fix.get("action") == "map_value"
    }
    value_map = ValueMap.objects.get(key="project-codes")
    for code in codes:
        ValueMapEntry.objects.get_or_create(
            value_map=value_map, source_value=code, defaults={"target_value": "PRJ-101"}
        )
    return SyncException.objects.filter(status="open", error_code="PROJECT_NOT_IN_TARGET").count()


@pytest.mark.django_db
def test_a_bulk_retry_runs_in_batches_records_progress_and_keeps_the_actor(allow_sandboxes, in_workspace, world):
    fixable = unbillable_then_mapped(allow_sandboxes)
    open_before = SyncException.objects.filter(status="open").count()
    assert fixable > 20, "the test firm should leave a few dozen unbillable entries"
    finance = world.user("admin@northwind.localhost")
    job = exceptions_bulk_retry_start(query=QueueQuery(), sla_hours=None, total=open_before, actor=finance)
    assert AuditEvent.objects.filter(action="exception.bulk_retry_started", actor_email=finance.email).exists()

    # A slice that runs out of time after its first batch leaves the rest for the next slice.
    assert exceptions_bulk_retry_run(job_id=job.pk, seconds=1e-9, batch_size=10) == "continue"
    job.refresh_from_db()
    assert (job.status, job.total, job.done, job.percent) == ("running", open_before, 10, int(1000 / open_before))
    assert job.cursor is not None

    assert exceptions_bulk_retry_run(job_id=job.pk, batch_size=10) == "done"
    job.refresh_from_db()
    assert job.status == "done" and job.done == open_before and job.percent == 100
    assert job.resolved >= fixable and job.resolved + job.still_open == open_before
    assert not SyncException.objects.filter(error_code="PROJECT_NOT_IN_TARGET", status="open").exists()
    retried = AuditEvent.objects.filter(action="exception.retried")
    assert retried.count() == open_before and set(retried.values_list("actor_email", flat=True)) == {finance.email}
    finished = AuditEvent.objects.get(action="exception.bulk_retry_finished")
    assert finished.actor_email == finance.email and f"Retried {open_before} exceptions" in finished.summary
    assert exceptions_bulk_retry_run(job_id=job.pk) == "done"  # a redelivered message does nothing twice
    assert AuditEvent.objects.filter(action="exception.retried").count() == open_before


@pytest.mark.django_db
def test_retry_all_past_the_limit_starts_a_background_job_once(world, monkeypatch, django_capture_on_commit_callbacks):
    from integrations.views import exceptions as views
    from tests.integrations.workspace_fixtures import seed_workspace

    connection.set_tenant(world.clients["contoso"])
    seed_workspace()
    open_now = SyncException.objects.filter(status="open").count()
    connection.set_schema_to_public()
    monkeypatch.setattr(views, "BULK_LIMIT", 2)
    finance = browser_for(world.user("finance@contoso.localhost"), host=NORTHWIND)
    queued = []
    monkeypatch.setattr("integrations.tasks.exceptions_bulk_retry.delay", lambda job_id: queued.append(job_id))
    with django_capture_on_commit_callbacks(execute=True):
        response = finance.post("/c/contoso/exceptions/bulk", {"scope": "filtered", "status": "open"}, **HTMX)
    assert response.status_code == 204
    events = json.loads(response["HX-Trigger"])
    assert events["bulk-started"] and events["toast"]["message"].startswith(f"Retrying {open_now} exceptions")
    assert len(queued) == 1
    progress = finance.get("/c/contoso/exceptions/bulk/progress", **HTMX).content.decode()
    assert f"Retrying {open_now} exceptions…" in progress and f'?job={queued[0]}"' in progress
    assert 'hx-trigger="every 1s"' in progress and "0 of" in progress
    again = finance.post("/c/contoso/exceptions/bulk", {"scope": "filtered", "status": "open"}, **HTMX)
    assert "already running" in json.loads(again["HX-Trigger"])["toast"]["message"] and len(queued) == 1
    queue = finance.get("/c/contoso/exceptions/").content.decode()
    assert 'id="bulk-progress"' in queue and "/c/contoso/exceptions/bulk/progress" in queue
    # Small selections still run in the request, as before.
    monkeypatch.setattr(views, "BULK_LIMIT", 500)
    viewer = browser_for(world.user("viewer@contoso.localhost"), host=NORTHWIND)
    assert viewer.get("/c/contoso/exceptions/bulk/progress", **HTMX).status_code == 200


@pytest.mark.worker
def test_a_worker_retries_thousands_in_batches_and_the_page_follows(
    committed_workspace,  # noqa: F811
    allow_sandboxes,
    worker_env,  # noqa: F811
    world,
    tmp_path,
    monkeypatch,
):
    from integrations.views import exceptions as views

    fixable = unbillable_then_mapped(allow_sandboxes)
    open_before = SyncException.objects.filter(status="open").count()
    monkeypatch.setattr(views, "BULK_LIMIT", 5)  # this firm's few dozen stand in for thousands
    admin = world.user("admin@summit.localhost")
    browser = browser_for(admin, host=SUMMIT)
    worker = start_worker(tmp_path / "worker.log", **worker_env)
    try:
        response = browser.post(
            f"/c/{committed_workspace.slug}/exceptions/bulk", {"scope": "filtered", "status": "open"}, **HTMX
        )
        assert response.status_code == 204, response.content[:300]
        assert f"Retrying {open_before} exceptions" in json.loads(response["HX-Trigger"])["toast"]["message"]
        connection.set_tenant(committed_workspace)
        job = BulkRetry.objects.get()
        page = browser.get(f"/c/{committed_workspace.slug}/exceptions/bulk/progress", **HTMX).content.decode()
        assert 'data-testid="bulk-progress"' in page
        connection.set_tenant(committed_workspace)  # each request leaves the connection in public
        wait_for(lambda: BulkRetry.objects.filter(pk=job.pk, status="done").exists(), timeout=240)
        done = browser.get(f"/c/{committed_workspace.slug}/exceptions/bulk/progress?job={job.pk}", **HTMX)
        events = json.loads(done["HX-Trigger"])
        assert events["exceptions-changed"] and events["toast"]["level"] == "success"
        assert events["toast"]["message"].startswith(f"Retried {open_before} exceptions: ")
        assert "Bulk retry finished" in done.content.decode() and "every 1s" not in done.content.decode()
        connection.set_tenant(committed_workspace)
        job.refresh_from_db()
        assert job.done == open_before and job.resolved >= fixable
        assert not SyncException.objects.filter(error_code="PROJECT_NOT_IN_TARGET", status="open").exists()
        actors = set(AuditEvent.objects.filter(action="exception.retried").values_list("actor_email", flat=True))
        assert actors == {admin.email}
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=30)
