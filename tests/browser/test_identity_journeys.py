"""Lead-to-project in the browser, on a firm with history: the flow page's webhook address and reconciliation
(the CSV's totals are the run's counts), and a clerk deciding that two CRM records are one customer, which
releases the won deal that waited on them.

Runs on a partner of its own (Cove Partners, cove.localhost; client Oak Advisory) against its own sandboxes.
"""

from __future__ import annotations

import csv
import importlib
import io
import re
from decimal import Decimal

import pytest
from django.db import connection
from django.test import override_settings
from playwright.sync_api import expect

from tests.browser.conftest import screenshot
from tests.browser.test_workspace_journeys import _member, _run_to_end, in_schema, number, sign_in
from tests.support import journey_partner, sandbox_env, vendor_sandboxes, web_server

pytestmark = [pytest.mark.django_db, pytest.mark.browser]

HOST = "cove.localhost"
FIRM = dict(people=40, customers=12, projects=24, time_entries=200, expenses=20)


@pytest.fixture(scope="module")
def cove_sandboxes():
    with vendor_sandboxes(("hubspot", "netsuite", "kantata", "jira"), **FIRM) as running:
        yield running


@pytest.fixture(scope="module")
def cove_env(cove_sandboxes):
    return sandbox_env(cove_sandboxes.values())


@pytest.fixture(scope="module")
def cove_web(world, cove_env, tmp_path_factory):
    with web_server(tmp_path_factory.mktemp("cove-web") / "web.log", **cove_env) as port:
        yield f"http://{HOST}:{port}"


@pytest.fixture(scope="module")
def oak(world, cove_sandboxes, cove_env, django_db_blocker):
    """Oak Advisory has installed lead-to-project and run it once, on systems full of the firm's history."""
    from integrations.models import Flow
    from integrations.services.connections import connection_create
    from integrations.services.flows import template_install

    with django_db_blocker.unblock():
        from tenants import services
        from tenants.models import Client, Plan, Role

        brand = dict(product_name="Cove Connect", primary_color="#1D4ED8")
        partner = journey_partner(slug="cove", name="Cove Partners", host=HOST, brand=brand)
        plan, _ = Plan.objects.get_or_create(
            partner=partner,
            name="Professional",
            defaults=dict(monthly_price=Decimal("990.00"), max_connections=12, max_flows=15),
        )
        client = Client.objects.filter(partner=partner, slug="oak").first() or services.client_create(
            partner=partner, name="Oak Advisory", slug="oak", plan=plan
        )
        _member(client, "admin@oak.localhost", "Olive Admin", Role.CLIENT_ADMIN)
        _member(client, "finance@oak.localhost", "Otto Finance", Role.CLIENT_FINANCE)
        allowed = cove_env["CONNECTOR_ALLOWED_HOSTS"].split(",")
        with override_settings(CONNECTOR_ALLOWED_HOSTS=allowed, CONNECTOR_RATE_PER_SECOND=500):
            connection.set_tenant(client)
            if not Flow.objects.exists():
                made = {}
                for role, vendor in (
                    ("crm", "hubspot"),
                    ("erp", "netsuite"),
                    ("psa", "kantata"),
                    ("ticketing", "jira"),
                ):
                    module = importlib.import_module(f"connectors.{vendor}.sandbox")
                    made[role] = connection_create(
                        name=vendor.title(),
                        vendor=vendor,
                        base_url=cove_sandboxes[vendor].url,
                        credentials=dict(module.DEMO_CREDENTIALS),
                    )
                flows = template_install(key="lead-to-project", connections=made)
                _run_to_end(next(f for f in flows if f.steps.exists()))
            connection.set_schema_to_public()
    return client


def test_the_flow_page_shows_its_webhook_address_and_where_every_record_went(page, cove_web, oak, django_db_blocker):
    from integrations.models import Flow, SyncRun

    with django_db_blocker.unblock():
        flow, run = in_schema(
            oak,
            lambda: (
                (f := Flow.objects.get(template_key="lead-to-project/won-deals")),
                SyncRun.objects.filter(flow=f, trigger="manual").latest("pk"),
            ),
        )
    sign_in(page, cove_web, "admin@oak.localhost")
    page.goto(f"{cove_web}/c/oak/flows/{flow.pk}/")
    webhook = page.get_by_test_id("webhook-url")
    expect(webhook).to_have_value(f"{cove_web}/hooks/oak/{flow.webhook_token}")
    expect(page.get_by_test_id("webhook")).to_contain_text("HubSpot starts this flow")
    assert number(page.get_by_test_id("count-linked").inner_text()) == run.linked > 0
    screenshot(page, "flow-webhook-and-counts")

    page.get_by_test_id("run-reconciliation").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(f"Where run #{run.pk}'s records went")
    tiles = {
        outcome: number(page.get_by_test_id(f"outcome-{outcome}").locator(".tile-count").inner_text())
        for outcome in ("created", "linked", "updated", "unchanged", "parked", "exception", "skipped")
    }
    assert sum(tiles.values()) == run.read
    screenshot(page, "flow-reconciliation")
    with page.expect_download() as download:
        page.get_by_test_id("reconciliation-csv").click()
    rows = list(csv.DictReader(io.StringIO(open(download.value.path(), encoding="utf-8").read())))
    assert len(rows) == run.read
    assert {outcome: sum(1 for r in rows if r["outcome"] == outcome) for outcome in tiles} == tiles
    assert tiles["created"] == run.created and tiles["linked"] == run.linked and tiles["parked"] == run.parked


def test_a_clerk_says_two_crm_records_are_one_customer_and_the_deal_waiting_on_them_syncs(
    page, cove_web, oak, django_db_blocker
):
    from integrations.models import SyncException

    with django_db_blocker.unblock():
        pair = in_schema(oak, lambda: SyncException.objects.get(error_code="DUPLICATE_IN_SOURCE", status="open"))
        waiting = in_schema(oak, lambda: list(pair.parked.filter(status="parked").values_list("pk", flat=True)))
    assert len(waiting) == 1, "the firm's won deal on the second record waits on the pair"
    sign_in(page, cove_web, "finance@oak.localhost")
    page.goto(f"{cove_web}/c/oak/exceptions/")
    page.get_by_role("link", name=re.compile("look like one customer in HubSpot")).click()
    expect(page.get_by_test_id("waiting")).to_contain_text("1 record waits on this")
    decision = page.get_by_test_id("fix-same")
    expect(decision).to_contain_text("Are they the same?")
    screenshot(page, "exception-duplicate-pair")
    decision.get_by_role("button", name=re.compile("^The same: keep “Piper Health” ")).click()
    outcome = page.get_by_test_id("outcome")
    expect(outcome).to_contain_text("The same: both now stand for one")
    expect(outcome).to_contain_text("1 record waiting on it synced")
    expect(page.locator(".badge-ok", has_text="Resolved")).to_be_visible()
    screenshot(page, "exception-duplicate-resolved")
    with django_db_blocker.unblock():
        left = in_schema(oak, lambda: SyncException.objects.filter(pk__in=waiting).exclude(status="resolved").count())
    assert left == 0
