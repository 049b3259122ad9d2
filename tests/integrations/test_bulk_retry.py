"""Bulk retries and ignores past one request's share: the queue hands them to a worker that works in
batches, records its progress, and the page shows it; every retry or ignore is audited under the
person who asked."""

from __future__ import annotations

import json
import logging
import os
import signal

import psycopg
import pytest
from django.db import OperationalError, connection

from integrations.models import AuditEvent, BulkAction, SyncException, SyncRun, ValueMap, ValueMapEntry
from integrations.selectors.queue import QueueQuery
from integrations.services.bulk import exceptions_bulk_run, exceptions_bulk_start
from tests.integrations.test_approved_time import run_to_end
from tests.integrations.test_worker_runs import committed_workspace, install, wait_for, worker_env  # noqa: F401
from tests.integrations.workspace_views import HTMX, cold_cache  # noqa: F401 -- fixtures
from tests.support import NORTHWIND, SUMMIT, browser_for, database_url_for_children, start_worker


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
def test_a_bulk_retry_runs_in_batches_records_progress_and_keeps_the_actor(systems, in_workspace, world):
    # `systems`: the sandboxes as the firm seeds them (a test before may have added the ERP's missing projects).
    fixable = unbillable_then_mapped(systems)
    open_before = SyncException.objects.filter(status="open").count()
    assert fixable > 20, "the test firm should leave a few dozen unbillable entries"
    finance = world.user("admin@northwind.localhost")
    job = exceptions_bulk_start(action="retry", query=QueueQuery(), sla_hours=None, actor=finance)
    assert AuditEvent.objects.filter(action="exception.bulk_retry_started", actor_email=finance.email).exists()

    # A slice that runs out of time after its first batch leaves the rest for the next slice.
    assert exceptions_bulk_run(job_id=job.pk, seconds=1e-9, batch_size=10) == "continue"
    job.refresh_from_db()
    assert (job.status, job.total, job.done, job.percent) == ("running", open_before, 10, int(1000 / open_before))
    assert job.cursor is not None

    assert exceptions_bulk_run(job_id=job.pk, batch_size=10) == "done"
    job.refresh_from_db()
    assert job.status == "done" and job.done == open_before and job.percent == 100
    assert job.resolved >= fixable and job.resolved + job.still_open == open_before
    assert not SyncException.objects.filter(error_code="PROJECT_NOT_IN_TARGET", status="open").exists()
    retried = AuditEvent.objects.filter(action="exception.retried")
    assert retried.count() == open_before and set(retried.values_list("actor_email", flat=True)) == {finance.email}
    finished = AuditEvent.objects.get(action="exception.bulk_retry_finished")
    assert finished.actor_email == finance.email and f"Retried {open_before} exceptions" in finished.summary
    assert exceptions_bulk_run(job_id=job.pk) == "done"  # a redelivered message does nothing twice
    assert AuditEvent.objects.filter(action="exception.retried").count() == open_before


def past_the_limit(world, monkeypatch):
    """Contoso seeded with more open exceptions than a request acts on (the limit set to 2), its finance clerk
    signed in, and the background jobs the queue starts collected instead of sent: (clerk, open count, job ids)."""
    from integrations.services import bulk
    from tests.integrations.workspace_fixtures import seed_workspace

    connection.set_tenant(world.clients["contoso"])
    seed_workspace()
    open_now = SyncException.objects.filter(status="open").count()
    connection.set_schema_to_public()
    monkeypatch.setattr(bulk, "BULK_LIMIT", 2)
    finance = browser_for(world.user("finance@contoso.localhost"), host=NORTHWIND)
    queued = []
    monkeypatch.setattr("integrations.tasks.exceptions_bulk_action.delay", lambda job_id: queued.append(job_id))
    return finance, open_now, queued


@pytest.mark.django_db
def test_retry_all_past_the_limit_starts_a_background_job_once(world, monkeypatch, django_capture_on_commit_callbacks):
    finance, open_now, queued = past_the_limit(world, monkeypatch)
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
    monkeypatch.setattr("integrations.services.bulk.BULK_LIMIT", 500)
    viewer = browser_for(world.user("viewer@contoso.localhost"), host=NORTHWIND)
    assert viewer.get("/c/contoso/exceptions/bulk/progress", **HTMX).status_code == 200


@pytest.mark.worker
def test_a_worker_retries_thousands_in_batches_and_the_page_follows(
    committed_workspace,  # noqa: F811
    systems,
    worker_env,  # noqa: F811
    world,
    tmp_path,
    monkeypatch,
):
    from integrations.services import bulk

    fixable = unbillable_then_mapped(systems)
    open_before = SyncException.objects.filter(status="open").count()
    monkeypatch.setattr(bulk, "BULK_LIMIT", 2)  # this firm's few causes stand in for thousands
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
        job = BulkAction.objects.get()
        page = browser.get(f"/c/{committed_workspace.slug}/exceptions/bulk/progress", **HTMX).content.decode()
        assert 'data-testid="bulk-progress"' in page
        connection.set_tenant(committed_workspace)  # each request leaves the connection in public
        wait_for(lambda: BulkAction.objects.filter(pk=job.pk, status="done").exists(), timeout=240)
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


# --- A job never stays live by mistake, never runs twice, never writes for a suspended workspace -------


@pytest.fixture
def seeded(in_workspace):
    from tests.integrations.workspace_fixtures import seed_workspace

    return seed_workspace()


@pytest.mark.django_db
def test_a_bulk_retry_stopped_by_an_internal_error_fails_and_reopens_its_exceptions(seeded, world, monkeypatch, caplog):
    open_before = SyncException.objects.filter(status="open").count()
    finance = world.user("admin@northwind.localhost")
    job = exceptions_bulk_start(action="retry", query=QueueQuery(), sla_hours=None, actor=finance)

    def broken(flow, run, group):
        raise RuntimeError("a fault of ours, not the vendor's")

    monkeypatch.setattr("integrations.services.exceptions._retry_group", broken)
    with caplog.at_level(logging.ERROR, logger="integrations.exceptions"), pytest.raises(RuntimeError):
        exceptions_bulk_run(job_id=job.pk, batch_size=3)
    job.refresh_from_db()
    assert job.status == BulkAction.Status.FAILED and job.finished_at is not None
    assert job.error.startswith("The bulk retry stopped on an internal error (RuntimeError)")
    assert SyncException.objects.filter(status="open").count() == open_before  # none left "retrying"
    assert not SyncRun.objects.filter(trigger="retry", status__in=["queued", "running"]).exists()
    logged = [r for r in caplog.records if r.name == "integrations.exceptions" and r.levelno == logging.ERROR]
    assert len(logged) == 1 and logged[0].exc_info is not None
    # The failed job no longer blocks the next bulk retry.
    monkeypatch.undo()
    assert exceptions_bulk_start(action="retry", query=QueueQuery(), sla_hours=None, actor=finance).live


@pytest.mark.django_db
def test_housekeeping_requeues_a_bulk_retry_that_stopped_moving(in_workspace, monkeypatch):
    from django.utils import timezone

    from integrations.housekeeping import runs_recover_all
    from integrations.services.bulk import _bulk_lock

    queued = []
    monkeypatch.setattr(
        "integrations.tasks.exceptions_bulk_action.delay",
        lambda job_id: queued.append((connection.schema_name, job_id)),
    )
    monkeypatch.setattr("integrations.services.runs.run_enqueue", lambda **_: None)  # other workspaces' runs
    idle = timezone.now() - timezone.timedelta(minutes=10)
    stalled = BulkAction.objects.create(status=BulkAction.Status.RUNNING, total=10, done=4, progress_at=idle)
    never_started = BulkAction.objects.create(status=BulkAction.Status.QUEUED, progress_at=idle)
    moving = BulkAction.objects.create(status=BulkAction.Status.RUNNING, progress_at=timezone.now())
    BulkAction.objects.create(status=BulkAction.Status.DONE, progress_at=idle)
    working = BulkAction.objects.create(status=BulkAction.Status.RUNNING, progress_at=idle)
    worker = psycopg.connect(database_url_for_children(), autocommit=True)  # a live worker holds its job's lock
    try:
        worker.execute("SELECT pg_advisory_lock(%s)", [_bulk_lock(working.pk)])
        connection.set_schema_to_public()
        runs_recover_all()
        assert sorted(queued) == [(in_workspace.schema_name, stalled.pk), (in_workspace.schema_name, never_started.pk)]
        runs_recover_all()  # a requeued job gets time to reach a worker before it is requeued again
        assert len(queued) == 2
    finally:
        worker.close()
        connection.set_tenant(in_workspace)
    assert moving.pk not in {job_id for _, job_id in queued}


@pytest.mark.django_db
def test_a_second_bulk_retry_is_refused_while_one_is_live(seeded, world):
    from integrations.services.exceptions import BulkActionRunning
    from tests.integrations.conftest import lock_held_elsewhere

    finance = world.user("admin@northwind.localhost")
    start = lambda: exceptions_bulk_start(action="retry", query=QueueQuery(), sla_hours=None, actor=finance)  # noqa: E731
    # The check and the create happen under one workspace lock: a second request waits for the first.
    with lock_held_elsewhere("bulk_retry"), pytest.raises(OperationalError, match="lock timeout"):
        start()
    assert not BulkAction.objects.exists()
    first = start()
    with pytest.raises(BulkActionRunning, match="already running"):
        start()
    assert list(BulkAction.objects.values_list("pk", flat=True)) == [first.pk]
    assert AuditEvent.objects.filter(action="exception.bulk_retry_started").count() == 1


@pytest.mark.django_db
def test_a_suspended_workspace_retries_nothing(seeded, world, in_workspace):
    from integrations.services.exceptions import (
        WorkspaceSuspended,
        exception_edit_and_retry,
        exception_retry,
        exceptions_retry,
    )
    from integrations.services.runs import SyncNotAllowed, run_start
    from tenants.models import Client

    finance = world.user("admin@northwind.localhost")
    live = list(SyncException.objects.filter(status="open").select_related("flow"))
    job = exceptions_bulk_start(action="retry", query=QueueQuery(), sla_hours=None, actor=finance)
    # Suspended by the partner after the request (or the job) loaded the client: the database says so.
    Client.objects.filter(pk=in_workspace.pk).update(status=Client.Status.SUSPENDED)
    assert not connection.tenant.is_suspended

    for attempt in (
        lambda: exception_retry(exception=live[0], actor=finance),
        lambda: exceptions_retry(exceptions=live, actor=finance),
        lambda: exception_edit_and_retry(exception=live[0], field="notes", value="edited", actor=finance),
        lambda: exceptions_bulk_start(action="retry", query=QueueQuery(), sla_hours=None, actor=finance),
    ):
        with pytest.raises(WorkspaceSuspended, match="suspended"):
            attempt()
    with pytest.raises(SyncNotAllowed, match="suspended"):
        run_start(flow=seeded.flow, trigger="manual")

    assert exceptions_bulk_run(job_id=job.pk) == "done"
    job.refresh_from_db()
    assert job.status == BulkAction.Status.FAILED and job.done == 0
    assert job.error.startswith("The workspace is suspended")
    assert not SyncRun.objects.filter(trigger="retry").exists()
    assert not AuditEvent.objects.filter(action="exception.retried").exists()
    assert SyncException.objects.filter(status="open").count() == len(live)
    live[0].refresh_from_db()
    assert live[0].payload["data"].get("notes") != "edited"


# --- Ignoring every exception that matches, with one reason --------------------------------------------

REASON = "Owned by NetSuite: the ERP team fixes these at the source"


@pytest.mark.django_db
def test_a_bulk_ignore_runs_in_batches_resumes_and_keeps_the_reason_and_the_actor(seeded, world, in_workspace):
    from integrations.services.exceptions import BulkActionRunning, ExceptionActionRefused
    from tenants.models import Client

    finance = world.user("admin@northwind.localhost")
    query = QueueQuery(error_code="PROJECT_NOT_IN_TARGET")
    matching = SyncException.objects.filter(status="open", error_code="PROJECT_NOT_IN_TARGET")
    count = matching.count()
    assert count == 6
    with pytest.raises(ExceptionActionRefused, match="Say why these exceptions are ignored"):
        exceptions_bulk_start(action="ignore", reason="  ", query=query, sla_hours=None, actor=finance)
    assert not BulkAction.objects.exists()
    job = exceptions_bulk_start(action="ignore", reason=REASON, query=query, sla_hours=None, actor=finance)
    started = AuditEvent.objects.get(action="exception.bulk_ignore_started")
    assert started.actor_email == finance.email and REASON in started.summary
    # One bulk job at a time per workspace, whatever it does.
    with pytest.raises(BulkActionRunning, match="bulk ignore is already running"):
        exceptions_bulk_start(action="retry", query=QueueQuery(), sla_hours=None, actor=finance)
    # Ignoring writes nothing to the targets: a suspended workspace may ignore, as one at a time.
    Client.objects.filter(pk=in_workspace.pk).update(status=Client.Status.SUSPENDED)

    assert exceptions_bulk_run(job_id=job.pk, seconds=1e-9, batch_size=4) == "continue"
    job.refresh_from_db()
    assert (job.status, job.done, job.total) == ("running", 4, count) and job.cursor is not None
    assert SyncException.objects.filter(status="ignored").count() == 4

    # The next slice (or a worker that picked the job up after another died) resumes at the cursor.
    assert exceptions_bulk_run(job_id=job.pk, batch_size=4) == "done"
    job.refresh_from_db()
    assert (job.status, job.done, job.percent) == ("done", count, 100)
    ignored = SyncException.objects.filter(status="ignored")
    assert ignored.count() == count and set(ignored.values_list("ignored_reason", flat=True)) == {REASON}
    assert all(e.resolved_at is not None for e in ignored)
    assert SyncException.objects.filter(status="open", error_code="MISSING_COST_RATE").count() == 1  # filtered out
    audited = AuditEvent.objects.filter(action="exception.ignored")
    assert audited.count() == count and set(audited.values_list("actor_email", flat=True)) == {finance.email}
    assert set(audited.values_list("target_id", flat=True)) == {str(pk) for pk in ignored.values_list("pk", flat=True)}
    finished = AuditEvent.objects.get(action="exception.bulk_ignore_finished")
    assert finished.actor_email == finance.email and finished.summary == f"Ignored {count} exceptions: {REASON}"
    assert not SyncRun.objects.filter(trigger="retry").exists()  # nothing was sent to a target
    assert exceptions_bulk_run(job_id=job.pk) == "done"  # a redelivered message does nothing twice
    assert AuditEvent.objects.filter(action="exception.ignored").count() == count


@pytest.mark.django_db
def test_ignore_all_past_the_limit_needs_a_reason_then_runs_on_a_worker(
    world, monkeypatch, django_capture_on_commit_callbacks
):
    finance, open_now, queued = past_the_limit(world, monkeypatch)
    queue = finance.get("/c/contoso/exceptions/").content.decode()
    assert f"Ignore all {open_now} matching" in queue and 'value="ignore-all"' in queue

    ignore_all = {"action": "ignore-all", "status": "open", "reason": " "}
    refused = finance.post("/c/contoso/exceptions/bulk", ignore_all, **HTMX)
    events = json.loads(refused["HX-Trigger"])
    assert events == {"toast": {"message": "Say why these exceptions are ignored.", "level": "error"}}
    assert not queued  # and the table is not refreshed: what was ticked stays ticked

    with django_capture_on_commit_callbacks(execute=True):
        response = finance.post("/c/contoso/exceptions/bulk", {**ignore_all, "reason": REASON}, **HTMX)
    assert response.status_code == 204
    events = json.loads(response["HX-Trigger"])
    assert events["bulk-started"] and events["toast"]["message"].startswith(f"Ignoring {open_now} exceptions")
    assert len(queued) == 1
    progress = finance.get("/c/contoso/exceptions/bulk/progress", **HTMX).content.decode()
    assert f"Ignoring {open_now} exceptions…" in progress and f"0 of {open_now} ignored" in progress
    assert REASON in progress and 'hx-trigger="every 1s"' in progress
    again = finance.post("/c/contoso/exceptions/bulk", {"scope": "filtered", "status": "open"}, **HTMX)
    assert "bulk ignore is already running" in json.loads(again["HX-Trigger"])["toast"]["message"]

    connection.set_tenant(world.clients["contoso"])
    assert exceptions_bulk_run(job_id=queued[0], batch_size=3) == "done"
    connection.set_schema_to_public()
    done = finance.get(f"/c/contoso/exceptions/bulk/progress?job={queued[0]}", **HTMX)
    events = json.loads(done["HX-Trigger"])
    assert events["exceptions-changed"] and events["toast"] == {
        "message": f"Ignored {open_now} exceptions: {REASON}",
        "level": "success",
    }
    assert "Bulk ignore finished" in done.content.decode()
    connection.set_tenant(world.clients["contoso"])
    assert not SyncException.objects.filter(status="open").exists()
    actors = set(AuditEvent.objects.filter(action="exception.ignored").values_list("actor_email", flat=True))
    assert actors == {"finance@contoso.localhost"}
    connection.set_schema_to_public()


@pytest.mark.django_db
def test_past_the_counting_cap_a_person_acts_on_an_exact_number_never_an_estimate(
    world, monkeypatch, django_capture_on_commit_callbacks
):
    from integrations.services import bulk
    from tests.integrations.workspace_fixtures import seed_workspace

    connection.set_tenant(world.clients["contoso"])
    seed_workspace()
    open_now = SyncException.objects.filter(status="open", error_code="PROJECT_NOT_IN_TARGET").count()
    connection.set_schema_to_public()
    monkeypatch.setattr("integrations.selectors.queue.COUNT_CAP", 3)  # the queue counts 3 exactly, then estimates
    monkeypatch.setattr(bulk, "BULK_LIMIT", 2)
    monkeypatch.setattr("integrations.tasks.exceptions_bulk_action.delay", lambda job_id: None)
    finance = browser_for(world.user("finance@contoso.localhost"), host=NORTHWIND)
    queue = finance.get("/c/contoso/exceptions/?error_code=PROJECT_NOT_IN_TARGET").content.decode()
    assert ">Retry all matching</button>" in queue and ">Ignore all matching</button>" in queue
    assert "the exact number shows once it starts" in queue

    with django_capture_on_commit_callbacks(execute=True):
        response = finance.post(
            "/c/contoso/exceptions/bulk",
            {"scope": "filtered", "status": "open", "error_code": "PROJECT_NOT_IN_TARGET"},
            **HTMX,
        )
    assert json.loads(response["HX-Trigger"])["toast"]["message"].startswith(f"Retrying {open_now} exceptions")
    progress = finance.get("/c/contoso/exceptions/bulk/progress", **HTMX).content.decode()
    assert f"Retrying {open_now} exceptions…" in progress and f"0 of {open_now} retried" in progress
    connection.set_tenant(world.clients["contoso"])
    assert BulkAction.objects.get().total == open_now  # what the worker counts up to, from the start
    connection.set_schema_to_public()


@pytest.mark.django_db
def test_ignore_all_within_the_limit_runs_in_the_request(world):
    from tests.integrations.workspace_fixtures import seed_workspace

    connection.set_tenant(world.clients["contoso"])
    seed_workspace()
    connection.set_schema_to_public()
    finance = browser_for(world.user("finance@contoso.localhost"), host=NORTHWIND)
    form = {"action": "ignore-all", "status": "open", "error_code": "PROJECT_NOT_IN_TARGET", "reason": REASON}
    response = finance.post("/c/contoso/exceptions/bulk", form, **HTMX)
    events = json.loads(response["HX-Trigger"])
    assert events["exceptions-changed"] and events["toast"]["message"] == "Ignored 6 exceptions."
    connection.set_tenant(world.clients["contoso"])
    assert not BulkAction.objects.exists()
    assert set(SyncException.objects.filter(status="ignored").values_list("ignored_reason", flat=True)) == {REASON}
    assert SyncException.objects.filter(status="open").count() == 1
    connection.set_schema_to_public()


@pytest.mark.django_db
@pytest.mark.parametrize("bad", [{"flow": "999999"}, {"assignee": "424242"}, {"system": "nosuch"}, {"q": "x" * 10_000}])
def test_a_bulk_action_with_a_filter_that_no_longer_fits_is_refused_not_widened(world, bad):
    from tests.integrations.workspace_fixtures import seed_workspace

    connection.set_tenant(world.clients["contoso"])
    seed_workspace()
    connection.set_schema_to_public()
    finance = browser_for(world.user("finance@contoso.localhost"), host=NORTHWIND)
    form = {"action": "ignore-all", "status": "open", "error_code": "PROJECT_NOT_IN_TARGET", "reason": REASON, **bad}
    response = finance.post("/c/contoso/exceptions/bulk", form, **HTMX)
    events = json.loads(response["HX-Trigger"])
    assert "exceptions-changed" not in events
    assert events["toast"]["level"] == "error" and "no longer fit" in events["toast"]["message"]
    connection.set_tenant(world.clients["contoso"])
    assert not SyncException.objects.filter(status="ignored").exists()
    assert not BulkAction.objects.exists()
    connection.set_schema_to_public()


@pytest.mark.django_db
def test_a_retry_that_cannot_reach_its_target_reopens_only_what_no_live_bulk_retry_holds(seeded, world):
    """A person's retry fails on a connector while a worker retries a batch: the worker's batch stays its own."""
    import dataclasses

    from connectors.base import ConnectorError
    from integrations.services.exceptions import RetryUnreachable, retrying

    first, second, third = SyncException.objects.filter(status="open").order_by("created_at", "id")[:3]
    # The job has recorded a batch ending at `first`, and its worker is retrying the next one now.
    BulkAction.objects.create(
        action=BulkAction.Action.RETRY,
        status=BulkAction.Status.RUNNING,
        query=dataclasses.asdict(QueueQuery()),
        cursor=[first.created_at.isoformat(), first.pk],
    )
    SyncException.objects.filter(pk__in=[first.pk, second.pk, third.pk]).update(status="retrying")

    def unreachable():
        raise ConnectorError("netsuite answered 503")

    with pytest.raises(RetryUnreachable, match="could not be reached"):
        retrying(unreachable)
    statuses = dict(SyncException.objects.filter(pk__in=[first.pk, second.pk, third.pk]).values_list("pk", "status"))
    assert statuses == {first.pk: "open", second.pk: "retrying", third.pk: "retrying"}

    BulkAction.objects.update(status=BulkAction.Status.DONE)
    with pytest.raises(RetryUnreachable):
        retrying(unreachable)
    assert not SyncException.objects.filter(pk__in=[second.pk, third.pk], status="retrying").exists()
