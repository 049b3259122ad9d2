"""Approved time to invoice, end to end over real HTTP: Kantata sandbox -> engine -> NetSuite sandbox."""

from decimal import Decimal

import pytest

from integrations.models import AuditEvent, ExternalRef, Invoice, SyncException, SyncRun, TimeEntry
from integrations.services.exceptions import value_map_entry_add_and_retry
from integrations.services.flows import template_install
from integrations.services.runs import run_slice, run_start
from tests.integrations.conftest import make_connection

pytestmark = pytest.mark.django_db


def run_to_end(flow):
    run = run_start(flow=flow, trigger="manual")
    while run_slice(run_id=run.pk, slice_seconds=60) == "continue":
        pass
    run.refresh_from_db()
    return run


@pytest.fixture
def approved_time(allow_sandboxes, in_workspace):
    kantata = make_connection("kantata", allow_sandboxes["kantata"])
    netsuite = make_connection("netsuite", allow_sandboxes["netsuite"])
    flows = template_install(key="approved-time-to-invoice", connections={"psa": kantata, "erp": netsuite})
    return next(f for f in flows if f.template_key.endswith("/approved-time")), allow_sandboxes["netsuite"]


def netsuite_invoices(sandbox) -> dict:
    return {r.get("externalId"): r for r in sandbox.app.records["invoice"].values() if r.get("externalId")}


def test_approved_time_becomes_one_invoice_per_project_and_month(approved_time):
    flow, netsuite = approved_time
    run = run_to_end(flow)
    assert run.status == SyncRun.Status.PARTIAL  # projects the ERP does not have yet are exceptions
    assert run.read > 0 and run.created > 0

    invoices = Invoice.objects.exclude(lines=None)
    assert invoices.exists()
    in_erp = netsuite_invoices(netsuite)
    for invoice in invoices:
        ref = ExternalRef.objects.get(entity="invoice", record_id=invoice.pk)
        erp_invoice = netsuite.app.records["invoice"][int(ref.external_id)]
        lines = erp_invoice["item"]["items"] if isinstance(erp_invoice["item"], dict) else erp_invoice["item"]
        lines_total = sum(Decimal(str(line["amount"])) for line in lines)
        assert lines_total == invoice.total
    hours = sum(TimeEntry.objects.filter(approved=True, billable=True).values_list("hours", flat=True))
    assert hours > 0

    # Running it again changes nothing in the ERP.
    again = run_to_end(flow)
    assert again.created == 0
    assert netsuite_invoices(netsuite).keys() == in_erp.keys()


def test_every_unbillable_entry_waits_on_one_exception_per_cause_a_clerk_can_read(approved_time):
    flow, _ = approved_time
    run = run_to_end(flow)
    assert run.parked > 0 and run.failed == 0
    assert run.read == run.created + run.linked + run.updated + run.unchanged + run.parked + run.failed + run.skipped
    # One exception per project the ERP lacks and per person without a cost rate; the entries wait on them.
    causes = SyncException.objects.filter(status="open").exclude(cause="")
    assert {c.error_code for c in causes} == {"PROJECT_NOT_IN_TARGET", "MISSING_COST_RATE"}
    waiting = SyncException.objects.filter(status="parked", waiting_on__in=causes)
    assert waiting.count() == run.parked
    assert len({c.subject for c in causes}) == causes.count()
    project = causes.filter(error_code="PROJECT_NOT_IN_TARGET").first()
    assert project.message.startswith(f"Project {project.subject} is not in NetSuite, so its time and expenses")
    assert {"action": "map_value", "value_map": "project-codes", "value": project.subject} in project.fix_actions
    child = project.parked.first()
    assert child.message.startswith(f"Waiting on exception #{project.pk}: Project {project.subject}")
    assert child.payload["data"]  # the entry itself is kept, to run again when the project is linked


def test_mapping_a_project_code_resolves_its_exception_and_releases_every_entry_waiting(approved_time, world):
    flow, netsuite = approved_time
    run_to_end(flow)
    project = SyncException.objects.filter(status="open", error_code="PROJECT_NOT_IN_TARGET").first()
    code = project.subject
    waiting = list(project.parked.values_list("pk", flat=True))
    assert waiting
    finance = world.user("admin@northwind.localhost")
    outcome = value_map_entry_add_and_retry(
        value_map_key="project-codes", source_value=code, target_value="PRJ-101", actor=finance
    )
    project.refresh_from_db()
    assert project.status == "resolved"
    assert outcome["resolved"] == 1 and outcome["released"] > 0
    assert not SyncException.objects.filter(pk__in=waiting).exclude(status="resolved").exists()
    assert AuditEvent.objects.filter(action="value_map.entry_set", actor_email="admin@northwind.localhost").exists()
    assert AuditEvent.objects.filter(action="exception.retried", target_id=str(project.pk)).exists()


def test_setting_a_missing_cost_rate_releases_the_time_waiting_on_it(approved_time, world):
    from integrations.services.matching import resource_cost_rate_set

    flow, _ = approved_time
    run_to_end(flow)
    missing = SyncException.objects.filter(status="open", error_code="MISSING_COST_RATE").first()
    if missing is None:
        pytest.skip("this firm has no billable person without a cost rate in the sampled weeks")
    waiting = list(missing.parked.values_list("pk", flat=True))
    outcome = resource_cost_rate_set(
        exception=missing, amount="95.00", currency="USD", actor=world.user("admin@northwind.localhost")
    )
    missing.refresh_from_db()
    assert missing.status == "resolved", (outcome, missing.message)
    assert outcome["released"] == len(waiting)
    assert not SyncException.objects.filter(pk__in=waiting).exclude(status="resolved").exists()
    assert AuditEvent.objects.filter(action="rate.set_by_hand", target_id=str(missing.pk)).exists()


def test_expenses_land_on_the_same_project_month_invoices(approved_time):
    from integrations.models import Expense, Flow, InvoiceLine

    flow, netsuite = approved_time
    expenses_flow = Flow.objects.get(template_key="approved-time-to-invoice/approved-expenses")
    run_to_end(flow)
    run = run_to_end(expenses_flow)
    assert run.read > 0 and Expense.objects.exists()
    line = InvoiceLine.objects.filter(kind="expense").select_related("invoice").first()
    assert line is not None
    ref = ExternalRef.objects.get(entity="invoice", record_id=line.invoice_id)
    erp_invoice = netsuite.app.records["invoice"][int(ref.external_id)]
    lines = erp_invoice["item"]["items"] if isinstance(erp_invoice["item"], dict) else erp_invoice["item"]
    assert any(str(item.get("description", "")).startswith("Expense:") for item in lines)
    assert sum(Decimal(str(item["amount"])) for item in lines) == line.invoice.total


def test_a_target_added_to_a_live_flow_is_skipped_until_mapped_and_the_schedule_keeps_syncing(approved_time, world):
    from django.db import connection

    from integrations.models import Connection
    from integrations.services.flows import flow_step_add
    from integrations.tasks import flow_scheduled
    from tests.support import NORTHWIND, browser_for

    flow, netsuite = approved_time
    erp = Connection.objects.get(vendor="netsuite")
    jobs_before = dict(netsuite.app.records["job"])
    step = flow_step_add(flow=flow, target_connection=erp, target_object="job", entity="project")
    assert not step.outbound_mapping.rules.exists()

    run_id = flow_scheduled(flow.pk)  # beat's entry point: it used to refuse the whole flow, silently
    assert run_id is not None
    while run_slice(run_id=run_id, slice_seconds=60) == "continue":
        pass
    run = SyncRun.objects.get(pk=run_id)
    assert (run.trigger, run.status) == ("schedule", SyncRun.Status.PARTIAL)
    assert run.read > 0 and run.created > 0 and Invoice.objects.exclude(lines=None).exists()
    assert run.error == f"Skipped “{step.name}”: it maps no fields yet. Add rules in its mapping to write there."
    assert not SyncException.objects.filter(step=step).exists()  # nothing written to it, nothing failed there
    assert netsuite.app.records["job"] == jobs_before  # no empty projects written to the ERP

    page = browser_for(world.user("admin@northwind.localhost"), host=NORTHWIND).get(
        f"/c/{connection.tenant.slug}/flows/{flow.pk}/"
    )
    assert page.status_code == 200
    assert f"Skipped “{step.name}”: it maps no fields yet" in page.content.decode()


def test_a_run_shows_the_systems_it_reached_as_connected(approved_time):
    """NetSuite is only written to by this flow, and read by its reference flows first: after a run it shows
    connected, not "never tested"."""
    from integrations.models import Connection

    flow, _ = approved_time
    erp = flow.steps.exclude(target_connection=None).first().target_connection
    assert erp.last_tested_at is None

    run_to_end(flow)

    erp.refresh_from_db()
    flow.source_connection.refresh_from_db()
    assert (erp.status, flow.source_connection.status) == (Connection.Status.OK, Connection.Status.OK)
    assert erp.last_tested_at is not None
