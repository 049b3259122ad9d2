"""Delivery health back to the CRM: a client admin installs the packaged flow from the catalog, sees which Salesforce
fields it writes, maps one to a field Salesforce already has, runs it and sees the run; the partner's admin opens the
same flow and its run from the partner's host (real gunicorn, a real Celery worker, sandboxes over HTTP).

It runs on a partner of its own (Larch Advisory, larch.localhost) whose client, Birchwood Consulting, has the firm's
approved time in its books.
"""

from __future__ import annotations

import importlib
import os
import signal

import pytest
from django.db import connection
from django.test import override_settings
from playwright.sync_api import expect

from connectors.sandbox.firm import Firm
from connectors.sandbox.server import serve_in_thread
from tenants.demo import DEMO_PASSWORD
from tests.browser.conftest import screenshot, sign_in
from tests.support import sandbox_env, start_worker, web_server

pytestmark = [pytest.mark.django_db, pytest.mark.browser]

HOST = "larch.localhost"
FIRM = dict(people=20, customers=8, projects=12, time_entries=60, expenses=10)


@pytest.fixture(scope="module")
def systems():
    running = {}
    for vendor in ("kantata", "netsuite", "salesforce"):
        module = importlib.import_module(f"connectors.{vendor}.sandbox")
        running[vendor] = serve_in_thread(module.create_app(Firm(**FIRM)))
    yield running
    for sandbox in running.values():
        sandbox.stop()


@pytest.fixture(scope="module")
def settings_env(systems):
    return sandbox_env(systems.values())


@pytest.fixture(scope="module")
def larch_web(world, settings_env, tmp_path_factory):
    with web_server(tmp_path_factory.mktemp("larch-web") / "web.log", **settings_env) as port:
        yield f"http://{HOST}:{port}"


@pytest.fixture(scope="module")
def birchwood(world, systems, settings_env, django_db_blocker):
    """The client with Salesforce connected and the firm's approved time already booked (run here, in-process)."""
    from integrations.models import Connection
    from integrations.services.connections import connection_create
    from integrations.services.flows import template_install
    from tenants import services
    from tenants.models import Client, Membership, Role
    from tests.integrations.test_approved_time import run_to_end
    from tests.support import journey_partner, user_who_can_sign_in

    allowed = settings_env["CONNECTOR_ALLOWED_HOSTS"].split(",")
    with django_db_blocker.unblock(), override_settings(CONNECTOR_ALLOWED_HOSTS=allowed, CONNECTOR_RATE_PER_SECOND=500):
        partner = journey_partner(slug="larch", name="Larch Advisory", host=HOST)
        user_who_can_sign_in(f"admin@{HOST}", DEMO_PASSWORD, full_name="Lena Partner")
        client = Client.objects.filter(partner=partner, slug="birchwood").first() or services.client_create(
            partner=partner,
            name="Birchwood Consulting",
            slug="birchwood",
            plan=partner.plans.order_by("-max_connections").first(),
        )
        admin = user_who_can_sign_in("admin@birchwood.localhost", DEMO_PASSWORD, full_name="Bea Admin")
        Membership.objects.get_or_create(user=admin, client=client, defaults={"role": Role.CLIENT_ADMIN})
        connection.set_tenant(client)
        if not Connection.objects.exists():
            made = {}
            for vendor, name in (("kantata", "Kantata"), ("netsuite", "NetSuite"), ("salesforce", "Salesforce")):
                module = importlib.import_module(f"connectors.{vendor}.sandbox")
                made[vendor] = connection_create(
                    name=name, vendor=vendor, base_url=systems[vendor].url, credentials=dict(module.DEMO_CREDENTIALS)
                )
            flows = template_install(
                key="approved-time-to-invoice", connections={"psa": made["kantata"], "erp": made["netsuite"]}
            )
            for flow in flows:
                if flow.steps.exists():
                    run_to_end(flow)
        connection.set_schema_to_public()
    return client


def test_client_admin_installs_maps_and_runs_delivery_health_and_the_partner_admin_sees_it(
    page, larch_web, birchwood, settings_env, systems, tmp_path
):
    worker = start_worker(tmp_path / "worker.log", **settings_env)
    try:
        sign_in(page, larch_web, "admin@birchwood.localhost")
        page.goto(f"{larch_web}/c/birchwood/flows/")
        page.get_by_test_id("install-account-health-to-crm").click()
        expect(page.get_by_role("heading", level=1)).to_contain_text("Delivery health to CRM accounts")
        screenshot(page, "account-health-install")
        page.get_by_role("button", name="Install Delivery health to CRM accounts").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Delivery health to CRM accounts")
        expect(page.get_by_role("heading", name="Fields it writes")).to_be_visible()

        # Which Salesforce fields it writes: its own custom fields, created on the first run; one mapped to a field
        # Salesforce has, one left out.
        page.get_by_test_id("account-fields-link").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Fields on the Salesforce account")
        fields = page.get_by_test_id("account-fields")
        expect(fields.locator("tbody tr")).to_have_count(11)
        expect(page.get_by_test_id("figure-delivery_margin_last_month")).to_contain_text("Created on the next run")
        page.get_by_label("Salesforce field for Delivery currency").select_option("Description")
        page.get_by_label("Salesforce field for Cost, month to date").select_option(label="Don't write this figure")
        page.get_by_test_id("save-fields").click()
        expect(page.get_by_role("status").filter(has_text="Saved")).to_be_visible()
        expect(page.get_by_test_id("figure-delivery_currency")).to_contain_text("There")
        expect(page.get_by_test_id("figure-delivery_cost_month_to_date")).to_contain_text("Not written")
        screenshot(page, "account-health-fields")

        # Run it now: a run like any other, with its counts in the history.
        page.get_by_role("link", name="Delivery health to CRM accounts").click()
        page.get_by_test_id("run-now").click()
        status = page.get_by_test_id("run-status")
        expect(status).to_have_attribute("data-status", "succeeded", timeout=120_000)
        history = page.get_by_test_id("run-history")
        expect(history.locator("tbody tr")).to_have_count(1)
        expect(page.get_by_test_id("count-failed")).to_have_text("0")
        screenshot(page, "account-health-run")
        updated = int(history.locator("tbody tr td").nth(5).inner_text())
        assert updated > 0

        # Where each customer's figures went: its account, updated.
        page.get_by_test_id("run-reconciliation").click()
        expect(page.get_by_test_id("outcome-updated")).to_contain_text(str(updated))
        expect(page.locator("table").first).to_contain_text("Salesforce")
        screenshot(page, "account-health-records")
        page.go_back()

        # The fields now exist in Salesforce, and the accounts hold the figures.
        page.get_by_test_id("account-fields-link").click()
        expect(page.get_by_test_id("figure-delivery_margin_last_month")).to_contain_text("There")
        org = systems["salesforce"].app.org
        with org.lock:
            written = [r for r in org.records["Account"].values() if r.get("Delivery_Current_Month__c") is not None]
        assert len(written) == updated
        assert {r["Description"] for r in written} <= {"USD", "GBP", "EUR"}

        # The partner's admin opens the same flow from the partner's host and sees the run.
        page.context.clear_cookies()
        sign_in(page, larch_web, f"admin@{HOST}")
        page.goto(f"{larch_web}/c/birchwood/flows/")
        screenshot(page, "account-health-flows")
        page.get_by_role("link", name="Delivery health to CRM accounts").first.click()
        expect(page.get_by_test_id("run-status")).to_have_attribute("data-status", "succeeded")
        expect(page.get_by_test_id("run-history").locator("tbody tr")).to_have_count(1)
        page.get_by_test_id("account-fields-link").click()
        expect(page.get_by_test_id("figure-delivery_currency")).to_contain_text("There")
        screenshot(page, "account-health-partner")
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=30)
