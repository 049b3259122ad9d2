"""Many clients' runs at once on a real pool of Celery workers: none deadlocks, none loses or doubles a record.

Fifty client workspaces (WORKER_POOL_CLIENTS to change it) each install approved-time-to-invoice on the
same Kantata and NetSuite sandboxes and start both of its flows (time and expenses) at the same moment, so
two flows of one client and a hundred runs of fifty clients compete for two worker processes. When all
have finished, each client's canonical store, exception queue and invoices in NetSuite are compared with
figures computed from the firm itself (tests/integrations/firm_state.py), not from the engine.
"""

from __future__ import annotations

import os
import signal
from collections import Counter
from decimal import Decimal

import pytest
from django.db import connection

from connectors.sandbox.firm import Firm
from integrations.models import ExternalRef, Flow, SyncException, SyncRun, TimeEntry
from integrations.services.flows import template_install
from integrations.services.runs import run_start
from tenants import services as tenant_services
from tests.integrations.conftest import make_connection
from tests.integrations.firm_state import expect
from tests.integrations.test_worker_runs import finished, wait_for
from tests.support import sandbox_env, start_worker

pytestmark = pytest.mark.worker

CLIENTS = int(os.environ.get("WORKER_POOL_CLIENTS", "50"))
VOLUME = dict(time_entries=120, expenses=24)  # per client: 50 clients move 7,200 records in all


@pytest.fixture
def fifty_clients(world, django_db_blocker, allow_sandboxes):
    """Committed workspaces (worker processes must see them), each with approved-time installed."""
    allow_sandboxes["netsuite"].reset()
    allow_sandboxes["kantata"].seed(**VOLUME)
    made = []
    with django_db_blocker.unblock():
        try:
            for number in range(1, CLIENTS + 1):
                connection.set_schema_to_public()
                client = tenant_services.client_create(
                    partner=world.partners["summit"], name=f"Pool {number:02}", slug=f"pool-{number:02}"
                )
                made.append(client)
                connection.set_tenant(client)
                kantata = make_connection("kantata", allow_sandboxes["kantata"])
                netsuite = make_connection("netsuite", allow_sandboxes["netsuite"])
                flows = template_install(key="approved-time-to-invoice", connections={"psa": kantata, "erp": netsuite})
                assert len([f for f in flows if f.steps.exists()]) == 2  # time and expenses
            yield made
        finally:
            connection.set_schema_to_public()
            for client in made:
                client.delete(force_drop=True)
            allow_sandboxes["kantata"].reset()
            allow_sandboxes["netsuite"].reset()


def test_fifty_clients_two_flows_each_on_a_worker_pool_sync_every_record_once(fifty_clients, allow_sandboxes, tmp_path):
    env = sandbox_env(allow_sandboxes.values(), SYNC_SLICE_SECONDS="2")
    workers = [start_worker(tmp_path / f"worker-{n}.log", name=f"pool{n}", **env) for n in (1, 2)]
    try:
        runs = []
        for client in fifty_clients:
            connection.set_tenant(client)
            for flow in Flow.objects.filter(steps__isnull=False).distinct():
                runs.append((client, run_start(flow=flow, trigger="manual")))

        def all_finished() -> bool:
            for client, run in runs:
                connection.set_tenant(client)
                if not finished(run):
                    return False
            return True

        wait_for(all_finished, timeout=900)
    finally:
        for worker in workers:
            os.killpg(worker.pid, signal.SIGTERM)
        for worker in workers:
            worker.wait(timeout=60)

    firm = expect(Firm(**VOLUME), {"approved-time-to-invoice"})
    expected_causes = firm.faults  # projects NetSuite lacks, people without a cost rate
    assert expected_causes.keys() == {"PROJECT_NOT_IN_TARGET", "MISSING_COST_RATE"}
    approved = sum(1 for entry in firm.firm.time_entries() if entry["approved"])
    erp = allow_sandboxes["netsuite"].app.records["invoice"].values()
    for client, run in runs:
        connection.set_tenant(client)
        run.refresh_from_db()
        assert run.status == SyncRun.Status.PARTIAL, (client.slug, run.status, run.error)
        assert "deadlock" not in (run.error or "")
    for client in fifty_clients:
        connection.set_tenant(client)
        # Each approved entry once in the canonical store, or parked behind one true cause.
        refs = list(ExternalRef.objects.filter(entity="time_entry").values_list("external_id", flat=True))
        assert len(refs) == len(set(refs)) == TimeEntry.objects.count(), client.slug
        parked = SyncException.objects.filter(status="parked", object="time_entries").count()
        assert TimeEntry.objects.count() + parked == approved, client.slug
        found: dict[str, dict[str, int]] = {}
        for cause in SyncException.objects.filter(status="open").exclude(cause=""):
            found.setdefault(cause.error_code, {})[cause.subject] = cause.parked.count()
        assert found == expected_causes, client.slug
        # Each invoice once in the ERP, with the firm's totals to the cent.
        mine = [i for i in erp if str(i.get("externalId", "")).startswith(f"{client.slug}-invoice-")]
        assert not [memo for memo, n in Counter(i.get("memo") for i in mine).items() if n > 1], client.slug
        totals = {i["memo"]: sum((Decimal(str(line["amount"])) for line in _lines(i)), Decimal(0)) for i in mine}
        assert totals == firm.invoices, client.slug


def _lines(invoice: dict) -> list:
    return invoice["item"]["items"] if isinstance(invoice["item"], dict) else invoice["item"]
