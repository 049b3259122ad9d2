"""Packaged flows through real Celery tasks on a real worker, and a worker killed mid-run."""

from __future__ import annotations

import os
import signal
import time

import pytest
from django.db import connection

from integrations.models import ExternalRef, Flow, Invoice, SyncException, SyncRun, TimeEntry
from integrations.services.flows import template_install
from integrations.services.runs import run_start, runs_recover_stale
from tenants import services as tenant_services
from tests.integrations.conftest import make_connection
from tests.support import sandbox_env, start_worker

pytestmark = pytest.mark.worker


@pytest.fixture
def committed_workspace(world, django_db_blocker, allow_sandboxes):
    """A client whose data is really committed, so worker processes see it; dropped afterwards."""
    with django_db_blocker.unblock():
        client = tenant_services.client_create(partner=world.partners["summit"], name="Worker Test", slug="worker-test")
        connection.set_tenant(client)
        yield client
        connection.set_schema_to_public()
        client.delete(force_drop=True)


@pytest.fixture
def worker_env(allow_sandboxes):
    return sandbox_env(allow_sandboxes.values(), SYNC_SLICE_SECONDS="2")


def wait_for(predicate, timeout: float = 180):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError("timed out")


def install(allow_sandboxes):
    kantata = make_connection("kantata", allow_sandboxes["kantata"])
    netsuite = make_connection("netsuite", allow_sandboxes["netsuite"])
    flows = template_install(key="approved-time-to-invoice", connections={"psa": kantata, "erp": netsuite})
    return next(f for f in flows if f.template_key.endswith("/approved-time"))


def finished(run):
    run.refresh_from_db()
    return run.status in (SyncRun.Status.SUCCEEDED, SyncRun.Status.PARTIAL, SyncRun.Status.FAILED)


def test_run_now_goes_through_the_worker_in_slices(committed_workspace, allow_sandboxes, worker_env, tmp_path):
    flow = install(allow_sandboxes)
    worker = start_worker(tmp_path / "worker.log", **worker_env)
    try:
        run = run_start(flow=flow, trigger="manual")
        wait_for(lambda: finished(run))
        assert run.status == SyncRun.Status.PARTIAL, (run.error, (tmp_path / "worker.log").read_text()[-3000:])
        assert run.read > 0 and TimeEntry.objects.count() > 0 and Invoice.objects.exists()
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=30)


def test_sigkilled_worker_resumes_and_writes_every_record_once(
    committed_workspace, allow_sandboxes, worker_env, tmp_path
):
    allow_sandboxes["netsuite"].reset()  # other tests' invoices share our record keys
    allow_sandboxes["kantata"].seed(time_entries=int(os.environ.get("SIGKILL_TEST_ENTRIES", "10000")))
    flow = install(allow_sandboxes)
    log = tmp_path / "worker.log"
    worker = start_worker(log, **worker_env)
    run = run_start(flow=flow, trigger="manual")
    kill_after = int(os.environ.get("SIGKILL_AFTER_RECORDS", "300"))  # bench/sigkill_soak.py varies it
    wait_for(lambda: SyncRun.objects.filter(pk=run.pk, read__gt=kill_after).exists())
    os.killpg(worker.pid, signal.SIGKILL)  # mid-run: no chance to finish the page or ack the message
    worker.wait(timeout=30)
    assert not finished(run)
    worker = start_worker(log, **worker_env)
    try:
        # The killed worker's advisory lock goes once PostgreSQL notices its session is gone (a moment, on a busy
        # machine longer); then the stale run is requeued, unless its redelivered message got there first.
        wait_for(lambda: runs_recover_stale(older_than_seconds=0) == 1 or finished(run), timeout=60)
        wait_for(lambda: finished(run), timeout=300)
        assert run.status == SyncRun.Status.PARTIAL, run.error
        # Every time entry once in the canonical store, every invoice once in the ERP.
        refs = ExternalRef.objects.filter(entity="time_entry").values_list("external_id", flat=True)
        assert len(refs) == len(set(refs)) == TimeEntry.objects.count()
        erp = [r.get("externalId") for r in allow_sandboxes["netsuite"].app.records["invoice"].values()]
        ours = [r for r in erp if r and r.startswith(f"{committed_workspace.slug}-invoice-")]
        assert len(ours) == len(set(ours))
        in_erp = {int(r.rsplit("-", 1)[1]) for r in ours}
        canonical = set(Invoice.objects.exclude(lines=None).values_list("pk", flat=True))
        assert in_erp <= canonical
        refused = set(
            SyncException.objects.filter(object="invoice", status="open").values_list("external_id", flat=True)
        )
        for pk in canonical - in_erp:  # an invoice the ERP refused is an exception, never silently missing
            assert Invoice.objects.get(pk=pk).number in refused
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=30)
        allow_sandboxes["kantata"].reset()


@pytest.fixture
def second_workspace(world, django_db_blocker, committed_workspace):
    with django_db_blocker.unblock():
        connection.set_schema_to_public()
        client = tenant_services.client_create(partner=world.partners["summit"], name="Small Co", slug="small-co")
        yield client
        connection.set_schema_to_public()
        client.delete(force_drop=True)


def test_one_clients_big_sync_does_not_hold_up_anothers(
    committed_workspace, second_workspace, allow_sandboxes, worker_env, tmp_path
):
    """Slices: the big run yields the worker after each slice, so the small client's run gets its turn. A slice
    ends between pages of about a thousand records: ten thousand entries are ten slices or more."""
    allow_sandboxes["kantata"].seed(time_entries=10_000)
    connection.set_tenant(committed_workspace)
    big_flow = install(allow_sandboxes)
    connection.set_tenant(second_workspace)
    bamboo = make_connection("bamboohr", allow_sandboxes["bamboohr"])
    kantata = make_connection("kantata", allow_sandboxes["kantata"])
    netsuite = make_connection("netsuite", allow_sandboxes["netsuite"])
    small_flow = next(
        flow
        for flow in template_install(
            key="employee-to-resource", connections={"hr": bamboo, "psa": kantata, "erp": netsuite}
        )
        if flow.steps.exists()
    )
    worker = start_worker(tmp_path / "worker.log", **{**worker_env, "SYNC_SLICE_SECONDS": "1"})
    try:
        connection.set_tenant(committed_workspace)
        big = run_start(flow=big_flow, trigger="manual")
        wait_for(lambda: SyncRun.objects.filter(pk=big.pk, status="running").exists())
        connection.set_tenant(second_workspace)
        small = run_start(flow=small_flow, trigger="manual")
        wait_for(lambda: finished(small), timeout=240)
        connection.set_tenant(committed_workspace)
        big.refresh_from_db()
        assert big.status == SyncRun.Status.RUNNING, "the big run should still be going when the small one is done"
        wait_for(lambda: finished(big), timeout=300)
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=30)
        allow_sandboxes["kantata"].reset()


def install_template(key: str, sandboxes) -> Flow:
    roles = {
        "employee-to-resource": {"hr": "bamboohr", "psa": "kantata", "erp": "netsuite"},
        "lead-to-project": {"crm": "hubspot", "erp": "netsuite", "psa": "kantata", "ticketing": "jira"},
    }[key]
    connections = {role: make_connection(vendor, sandboxes[vendor]) for role, vendor in roles.items()}
    flows = template_install(key=key, connections=connections)
    return next(f for f in flows if not f.dependents.exists() and "(reference)" not in f.name)


@pytest.mark.parametrize("key", ["employee-to-resource", "lead-to-project"])
def test_packaged_flow_through_the_worker_then_again_changes_nothing(
    key, committed_workspace, allow_sandboxes, worker_env, tmp_path
):
    flow = install_template(key, allow_sandboxes)
    worker = start_worker(tmp_path / "worker.log", **worker_env)
    try:
        first = run_start(flow=flow, trigger="manual")
        wait_for(lambda: finished(first))
        assert first.status in (SyncRun.Status.SUCCEEDED, SyncRun.Status.PARTIAL), first.error
        # Created where the systems lacked them, linked where they had them (earlier tests may have created some).
        assert first.read > 0 and first.created + first.linked > 0
        second = run_start(flow=flow, trigger="manual")
        wait_for(lambda: finished(second))
        assert second.created == 0 and second.updated == 0, (second.created, second.updated)
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=30)


def test_a_run_queued_behind_its_clients_other_run_starts_when_that_one_is_done(
    committed_workspace, allow_sandboxes, worker_env, tmp_path
):
    """A client at its limit of runs (one here) queues the next: no polling, the second run's own recheck is
    set far beyond the test's patience, so only the first run waking it when done can start it. The first run takes several slices, so the second is asked for
    (and refused its client's slot) while the first is still going."""
    allow_sandboxes["kantata"].seed(time_entries=6000)
    time_flow = install(allow_sandboxes)
    expenses_flow = Flow.objects.get(
        template_key=time_flow.template_key.replace("/approved-time", "/approved-expenses")
    )
    worker = start_worker(
        tmp_path / "worker.log", **{**worker_env, "SYNC_BUSY_RECHECK_SECONDS": "3600", "SYNC_MAX_RUNS_PER_CLIENT": "1"}
    )
    try:
        first = run_start(flow=time_flow, trigger="manual")
        second = run_start(flow=expenses_flow, trigger="manual")
        wait_for(lambda: finished(first) and finished(second), timeout=120)
        assert first.status == second.status == SyncRun.Status.PARTIAL, (first.error, second.error)
        assert second.started_at >= first.finished_at, "one run per client at a time"
        assert (second.started_at - first.finished_at).total_seconds() < 30, "woken, not found by a recheck"
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=30)
        allow_sandboxes["kantata"].reset()
