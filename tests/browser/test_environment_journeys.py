"""Sandbox and Production: a client admin tests a flow in Sandbox against the firm's test systems, edits it,
reads the diff, promotes it, and watches it run in Production against the live systems (real gunicorn, a
real Celery worker, vendor sandboxes over HTTP: one HubSpot and NetSuite for each environment)."""

from __future__ import annotations

import importlib
import os
import re
import signal

import pytest
from django.db import connection
from django.test import override_settings
from playwright.sync_api import expect

from connectors.sandbox.firm import Firm
from connectors.sandbox.server import serve_in_thread
from tests.browser.conftest import screenshot
from tests.browser.test_workspace_journeys import HOST, _member, harbor, in_schema, sign_in  # noqa: F401
from tests.support import sandbox_env, start_worker, web_server

pytestmark = [pytest.mark.django_db, pytest.mark.browser]

FIRM = dict(people=20, customers=12, projects=20, time_entries=50, expenses=10)


@pytest.fixture(scope="module")
def two_environments():
    """The firm's live systems and its test accounts: one HubSpot and one NetSuite each."""
    running = {}
    for environment in ("production", "sandbox"):
        for vendor in ("hubspot", "netsuite"):
            module = importlib.import_module(f"connectors.{vendor}.sandbox")
            running[environment, vendor] = serve_in_thread(module.create_app(Firm(**FIRM)))
    yield running
    for sandbox in running.values():
        sandbox.stop()


@pytest.fixture(scope="module")
def env_settings(two_environments):
    return sandbox_env(two_environments.values(), SYNC_SLICE_SECONDS="5")


@pytest.fixture(scope="module")
def cedar_web(world, env_settings, tmp_path_factory):
    with web_server(tmp_path_factory.mktemp("cedar-web") / "web.log", **env_settings) as port:
        yield f"http://{HOST}:{port}"


@pytest.fixture(scope="module")
def cedar(harbor, two_environments, env_settings, django_db_blocker):  # noqa: F811
    """Cedar Partners: connections in both environments and a flow built in Sandbox, mapped, not yet run."""
    from integrations.models import Environment, Flow
    from integrations.services.configuration import mapping_rule_add
    from integrations.services.connections import connection_create
    from integrations.services.flows import flow_create
    from tenants import services
    from tenants.models import Client, Role

    allowed = env_settings["CONNECTOR_ALLOWED_HOSTS"].split(",")
    with django_db_blocker.unblock(), override_settings(CONNECTOR_ALLOWED_HOSTS=allowed):
        partner = harbor["alder"].partner
        client = Client.objects.filter(partner=partner, slug="cedar").first() or services.client_create(
            partner=partner, name="Cedar Partners", slug="cedar", plan=harbor["alder"].plan
        )
        _member(client, "admin@cedar.localhost", "Cleo Admin", Role.CLIENT_ADMIN)
        connection.set_tenant(client)
        if not Flow.objects.exists():
            made = {}
            for environment, suffix in ((Environment.PRODUCTION, ""), (Environment.SANDBOX, " test account")):
                for vendor, label in (("hubspot", "HubSpot"), ("netsuite", "NetSuite")):
                    module = importlib.import_module(f"connectors.{vendor}.sandbox")
                    made[environment, vendor] = connection_create(
                        name=label + suffix,
                        vendor=vendor,
                        base_url=two_environments[environment, vendor].url,
                        credentials=dict(module.DEMO_CREDENTIALS),
                        environment=environment,
                    )
            flow = flow_create(
                name="Companies to ERP customers",
                source_connection=made[Environment.SANDBOX, "hubspot"],
                source_object="companies",
                entity="customer",
                target_connection=made[Environment.SANDBOX, "netsuite"],
                target_object="customer",
                schedule_minutes=60,
            )
            rules = (
                (flow.inbound_mapping, ("customer.name", ["name"], [{"name": "trim"}], True, "Company")),
                (flow.steps.get().outbound_mapping, ("entityId", ["key"], [], True, "Customer id")),
                (flow.steps.get().outbound_mapping, ("companyName", ["name"], [], True, "Company name")),
                (
                    flow.steps.get().outbound_mapping,
                    ("subsidiary", [], [{"name": "default", "value": {"id": "1"}}], False, ""),
                ),
            )
            for mapping, (target, sources, transforms, required, label) in rules:
                values = dict(target=target, sources=sources, transforms=transforms, required=required, label=label)
                mapping_rule_add(mapping=mapping, values=values)
        connection.set_schema_to_public()
    return client


def test_admin_tests_in_sandbox_reads_the_diff_promotes_and_sees_the_production_run(
    page, cedar_web, cedar, two_environments, env_settings, django_db_blocker, tmp_path
):
    from integrations.models import AuditEvent, Environment, Flow, SyncRun

    base = cedar_web
    with django_db_blocker.unblock():
        sandbox_flow = in_schema(cedar, lambda: Flow.objects.get(environment=Environment.SANDBOX, steps__isnull=False))
    worker = start_worker(tmp_path / "worker.log", **env_settings)
    try:
        sign_in(page, base, "admin@cedar.localhost")
        page.goto(f"{base}/c/cedar/connections/")
        expect(page.get_by_test_id("connections").locator(".badge-sandbox")).to_have_count(2)
        expect(page.get_by_test_id("connections").locator(".badge-production")).to_have_count(2)

        # Tested in Sandbox: the run is marked as a Sandbox run.
        page.goto(f"{base}/c/cedar/flows/{sandbox_flow.pk}/")
        expect(page.locator(".header-badges").get_by_test_id("environment-badge")).to_have_text("Sandbox")
        page.get_by_test_id("run-now").click()
        status = page.get_by_test_id("run-status")
        expect(status).to_have_attribute("data-status", re.compile("succeeded|partial"), timeout=120_000)
        expect(status.get_by_test_id("sandbox-run")).to_have_text("Sandbox run")
        expect(page.get_by_test_id("run-history").get_by_test_id("sandbox-run")).to_have_count(1)
        screenshot(page, "environment-sandbox-run")

        # First promotion: everything is new to Production, and each Sandbox connection has its Production one.
        page.get_by_test_id("promote").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Promote “Companies to ERP customers” to Production")
        diff = page.get_by_test_id("promotion-diff")
        expect(diff).to_contain_text("Company name")
        expect(diff).to_contain_text("every hour")
        expect(page.get_by_label("In place of NetSuite test account (NetSuite)")).to_have_value(re.compile(r"\d+"))
        screenshot(page, "environment-first-promotion")
        page.get_by_test_id("confirm-promote").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Companies to ERP customers")
        expect(page.locator(".header-badges").get_by_test_id("environment-badge")).to_have_text("Production")
        expect(page.locator(".header-badges")).to_contain_text("promoted from Sandbox")
        expect(page.locator(".flow-path")).to_contain_text("Customer in NetSuite")
        expect(page.locator(".flow-path")).not_to_contain_text("test account")
        production_url = page.url

        # An edit in Sandbox: the schedule. The diff then shows that one change, and nothing else.
        page.goto(f"{base}/c/cedar/flows/{sandbox_flow.pk}/")
        page.get_by_label("Runs").select_option(label="Every 4 hours")
        page.get_by_role("button", name="Save schedule").click()
        page.get_by_test_id("promote").click()
        rows = page.get_by_test_id("diff-row")
        expect(rows).to_have_count(1)
        expect(rows.first).to_contain_text("every hour")
        expect(rows.first).to_contain_text("every 4 h")
        screenshot(page, "environment-promotion-diff")
        page.get_by_test_id("confirm-promote").click()
        expect(page).to_have_url(production_url)
        expect(page.locator(".header-badges")).to_contain_text("Every 4 h")

        # Production runs against the live systems: no Sandbox mark.
        page.get_by_test_id("run-now").click()
        expect(status).to_have_attribute("data-status", re.compile("succeeded|partial"), timeout=120_000)
        expect(page.get_by_test_id("sandbox-run")).to_have_count(0)
        screenshot(page, "environment-production-run")
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=30)

    with django_db_blocker.unblock():

        def state():
            production = Flow.objects.select_related("source_connection").get(promoted_from=sandbox_flow.pk)
            run = SyncRun.objects.filter(flow=production, trigger="manual").get()
            return production, run, AuditEvent.objects.filter(action="flow.promoted").count()

        production, run, promotions = in_schema(cedar, state)
    assert production.environment == Environment.PRODUCTION
    assert production.source_connection.base_url == two_environments["production", "hubspot"].url
    assert run.read > 0 and promotions == 2
