"""The pages of issue 10: where each record went (page and CSV, totals equal to the run's counts), an exception
with what waits on it and the decisions a clerk takes there, the webhook address, and the matching keys."""

from __future__ import annotations

import csv
import io

import pytest
from django.db import connection

from integrations.models import AuditEvent, Flow, Rate, RunRecord, SyncException
from tests.integrations.test_approved_time import run_to_end
from tests.integrations.test_firm_end_state import connect, install, workspace
from tests.integrations.workspace_views import cold_cache  # noqa: F401 -- fixtures
from tests.support import NORTHWIND, browser_for

pytestmark = pytest.mark.django_db

ADMIN = "admin@northwind.localhost"


@pytest.fixture
def lead_to_project(allow_sandboxes, world):
    for sandbox in allow_sandboxes.values():
        sandbox.reset()  # through its own client, which trusts ADP's demo certificate authority
    client = workspace(world, "wingtip")
    (flow,) = install(connect(allow_sandboxes), ["lead-to-project"])["lead-to-project"]
    run = run_to_end(flow)
    return client, flow, run


def page(world, path: str):
    connection.set_schema_to_public()
    return browser_for(world.user(ADMIN), host=NORTHWIND).get(path)


def test_the_reconciliation_csv_accounts_for_every_record_the_run_read(lead_to_project, world):
    client, flow, run = lead_to_project
    answer = page(world, f"/c/{client.slug}/runs/{run.pk}/records.csv")
    assert answer.status_code == 200
    rows = list(csv.DictReader(io.StringIO(b"".join(answer.streaming_content).decode())))
    assert len(rows) == run.read
    by_outcome = {outcome: sum(1 for r in rows if r["outcome"] == outcome) for outcome in {r["outcome"] for r in rows}}
    assert by_outcome == {
        name: count
        for name, count in {
            "created": run.created,
            "linked": run.linked,
            "updated": run.updated,
            "unchanged": run.unchanged,
            "parked": run.parked,
            "exception": run.failed,
            "skipped": run.skipped,
        }.items()
        if count
    }
    created = [r for r in rows if r["outcome"] == "created"]
    assert created and all("NetSuite job" in r["targets"] and " created" in r["targets"] for r in created)
    parked = next(r for r in rows if r["outcome"] == "parked")
    connection.set_tenant(client)
    assert SyncException.objects.get(pk=int(parked["exception"])).error_code == "DUPLICATE_IN_SOURCE"

    shown = page(world, f"/c/{client.slug}/runs/{run.pk}/records?outcome=linked").content.decode()
    assert f"{run.read} records read" in shown and "Linked to existing" in shown
    flow_wide = page(world, f"/c/{client.slug}/flows/{flow.pk}/records").content.decode()
    assert f"{run.read} records read" in flow_wide  # nothing read twice yet: the flow's records are the run's
    detail = page(world, f"/c/{client.slug}/flows/{flow.pk}/").content.decode()
    assert f"Where each of the {run.read} records went" in detail


def test_a_pair_of_duplicates_shows_what_waits_and_same_releases_it(lead_to_project, world):
    client, flow, run = lead_to_project
    connection.set_tenant(client)
    pair = SyncException.objects.get(error_code="DUPLICATE_IN_SOURCE", status="open")
    waiting = list(pair.parked.values_list("external_id", flat=True))
    assert len(waiting) == 1
    shown = page(world, f"/c/{client.slug}/exceptions/{pair.pk}/").content.decode()
    assert "1 record waits on this" in shown and 'data-testid="fix-same"' in shown
    keep = next(fix["keep"] for fix in pair.fix_actions if fix.get("action") == "same")

    connection.set_schema_to_public()
    answer = browser_for(world.user(ADMIN), host=NORTHWIND).post(
        f"/c/{client.slug}/exceptions/{pair.pk}/same", {"keep": keep}, HTTP_HX_REQUEST="true"
    )
    assert answer.status_code == 200
    assert "The same: both now stand for one" in answer.content.decode()
    assert "1 record waiting on it synced" in answer.content.decode()
    connection.set_tenant(client)
    pair.refresh_from_db()
    assert pair.status == "resolved"
    assert not SyncException.objects.filter(status="parked").exists()
    assert AuditEvent.objects.filter(action="exception.duplicate_resolved", target_id=str(pair.pk)).exists()
    # The deal on the second company record now stands where its project does: linked in every system.
    assert RunRecord.objects.filter(external_id=waiting[0], outcome="linked").exists()


def test_the_flow_page_shows_its_webhook_address_and_a_new_one_replaces_it(lead_to_project, world):
    client, flow, run = lead_to_project
    shown = page(world, f"/c/{client.slug}/flows/{flow.pk}/").content.decode()
    address = f"http://{NORTHWIND}/hooks/{client.slug}/{flow.webhook_token}"
    assert address in shown and 'data-copy="webhook-url"' in shown
    connection.set_schema_to_public()
    browser_for(world.user(ADMIN), host=NORTHWIND).post(f"/c/{client.slug}/flows/{flow.pk}/webhook/rotate")
    connection.set_tenant(client)
    assert Flow.objects.get(pk=flow.pk).webhook_token != flow.webhook_token
    old = browser_for(host=NORTHWIND).post(
        f"/hooks/{client.slug}/{flow.webhook_token}", data=b"[]", content_type="application/json"
    )
    assert old.status_code == 404


def test_matching_keys_are_chosen_in_the_mapping_editor_and_never_left_empty(lead_to_project, world):
    client, flow, run = lead_to_project
    connection.set_tenant(client)
    companies = Flow.objects.get(source_object="companies")
    mapping = companies.inbound_mapping_id
    shown = page(world, f"/c/{client.slug}/mappings/{mapping}/").content.decode()
    assert "Recognising records the systems already hold" in shown
    admin = browser_for(world.user(ADMIN), host=NORTHWIND)
    admin.post(f"/c/{client.slug}/mappings/{mapping}/matching", {"match-customer": ["domain"]})
    connection.set_tenant(client)
    assert Flow.objects.get(pk=companies.pk).match_keys == {"customer": ["domain"]}
    connection.set_schema_to_public()
    refused = admin.post(f"/c/{client.slug}/mappings/{mapping}/matching", {}, follow=True).content.decode()
    assert "Choose at least one way to recognise a customer" in refused
    connection.set_tenant(client)
    assert Flow.objects.get(pk=companies.pk).match_keys == {"customer": ["domain"]}


def test_a_cost_rate_set_on_the_exception_releases_the_time_waiting_on_it(allow_sandboxes, world):
    for sandbox in allow_sandboxes.values():
        sandbox.reset()  # through its own client, which trusts ADP's demo certificate authority
    client = workspace(world, "wingtip")
    flows = install(connect(allow_sandboxes), ["approved-time-to-invoice"])["approved-time-to-invoice"]
    run_to_end(next(f for f in flows if f.source_object == "time_entries"))
    missing = SyncException.objects.filter(error_code="MISSING_COST_RATE", status="open").first()
    assert missing is not None, "the firm has people without a cost rate who log time"
    waiting = missing.parked.count()
    assert waiting > 0
    connection.set_schema_to_public()
    admin = browser_for(world.user(ADMIN), host=NORTHWIND)
    bad = admin.post(
        f"/c/{client.slug}/exceptions/{missing.pk}/cost-rate",
        {"amount": "-3", "currency": "US"},
        HTTP_HX_REQUEST="true",
    )
    assert "greater than or equal to 0.01" in bad.content.decode() and "three-letter code" in bad.content.decode()
    answer = admin.post(
        f"/c/{client.slug}/exceptions/{missing.pk}/cost-rate",
        {"amount": "88.50", "currency": "usd"},
        HTTP_HX_REQUEST="true",
    )
    assert f"{waiting} records waiting on it synced" in answer.content.decode() or (
        waiting == 1 and "1 record waiting on it synced" in answer.content.decode()
    )
    connection.set_tenant(client)
    missing.refresh_from_db()
    assert missing.status == "resolved"
    assert Rate.objects.filter(kind="cost", amount="88.50", currency="USD").exists()


def test_a_record_taken_as_new_that_its_flow_now_filters_out_is_counted_skipped(allow_sandboxes, world):
    """ "A new record" runs the exception's record again: the run's counts add up to what it read, skipped included."""
    from connectors.sandbox.firm import Firm
    from integrations.models import Customer
    from integrations.services.matching import exception_pick
    from tests.integrations.conftest import TEST_FIRM

    for sandbox in allow_sandboxes.values():
        sandbox.reset()
    workspace(world, "wingtip")
    name = Firm(**TEST_FIRM).customers()[0]["name"]
    Customer.objects.create(name=name)
    Customer.objects.create(name=f"{name}.")  # the same match key: the CRM's customer matches both
    (flow,) = install(connect(allow_sandboxes), ["lead-to-project"])["lead-to-project"]
    run_to_end(flow)
    ambiguous = SyncException.objects.filter(error_code="AMBIGUOUS_MATCH", status="open").exclude(payload__data=None)
    exception = ambiguous.select_related("flow").first()
    assert exception is not None
    exception.flow.source_filter = {"path": "no.such.field", "in": ["anything"]}
    exception.flow.save(update_fields=["source_filter"])

    exception_pick(exception=exception, record_id=None)

    rerun = exception.flow.runs.latest("pk")
    assert (rerun.trigger, rerun.read, rerun.skipped) == ("retry", 1, 1)
    counts = (rerun.created, rerun.linked, rerun.updated, rerun.unchanged, rerun.parked, rerun.failed, rerun.skipped)
    assert sum(counts) == rerun.read
