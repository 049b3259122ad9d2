"""Integration templates in the browser: a partner admin saves a client's flow, deploys it, a client installs it,
the admin saves a second version and upgrades the client, reading the version table at each step.

Runs on a partner of its own (Quayside Advisory, on quayside.localhost), committed once for this module.
"""

from __future__ import annotations

import os
import re
import signal
from dataclasses import dataclass

import pytest
from playwright.sync_api import expect

from tenants.demo import DEMO_PASSWORD
from tests.browser.conftest import screenshot, sign_in
from tests.integrations.workspace_fixtures import UNREACHABLE, demo_credentials
from tests.support import start_worker, user_who_can_sign_in

# No django_db mark: what the test writes between browser steps must be committed for the web server to see it.
pytestmark = [pytest.mark.browser]

HOST = "quayside.localhost"
ADMIN = "admin@quayside.localhost"


@dataclass
class Quayside:
    base: str
    flow_id: int


@pytest.fixture(scope="module")
def quayside(world, web, django_db_blocker) -> Quayside:
    """Three clients: Bayview runs approved time to invoices; Cove and Delta have connected their systems."""
    with django_db_blocker.unblock():
        from django_tenants.utils import tenant_context

        from integrations.models import Flow, ValueMap, ValueMapEntry
        from integrations.services.connections import connection_create
        from integrations.services.flows import template_install
        from tenants import services
        from tenants.models import Client, MfaPolicy, Partner

        if not Partner.objects.filter(slug="quayside").exists():
            partner = services.partner_create(
                name="Quayside Advisory", slug="quayside", domain=HOST, admin_email=ADMIN, admin_name="Quinn Admin"
            )
            user_who_can_sign_in(ADMIN, DEMO_PASSWORD)
            # These journeys are about templates; two-factor sign-in has journeys of its own.
            Partner.objects.filter(pk=partner.pk).update(mfa_policy=MfaPolicy.OPTIONAL)
            standard = partner.plans.get(name="Standard")
            for slug, name in (
                ("bayview", "Bayview Engineering"),
                ("cove", "Cove Consulting"),
                ("delta", "Delta Design"),
            ):
                client = services.client_create(partner=partner, name=name, slug=slug, plan=standard)
                with tenant_context(client):
                    own = {
                        vendor: connection_create(
                            name=label, vendor=vendor, base_url=UNREACHABLE, credentials=demo_credentials(vendor)
                        )
                        for vendor, label in (("kantata", "Kantata OX"), ("netsuite", "NetSuite"))
                    }
                    if slug == "bayview":
                        template_install(
                            key="approved-time-to-invoice", connections={"psa": own["kantata"], "erp": own["netsuite"]}
                        )
                        ValueMapEntry.objects.create(
                            value_map=ValueMap.objects.get(key="project-codes"),
                            source_value="BV-7",
                            target_value="PRJ-107",
                        )
        bayview = Client.objects.get(partner__slug="quayside", slug="bayview")
        with tenant_context(bayview):
            flow_id = Flow.objects.get(template_key="approved-time-to-invoice/approved-time").pk
    return Quayside(base=f"http://{HOST}:{web}", flow_id=flow_id)


def version_row(page, client_name: str):
    return page.get_by_test_id("version-table").get_by_role("row").filter(has_text=client_name)


def test_partner_admin_saves_deploys_and_upgrades_a_template(page, quayside, django_db_blocker, tmp_path):
    base = quayside.base
    sign_in(page, base, ADMIN)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Templates").click()
    expect(page.get_by_role("heading", name="No templates yet")).to_be_visible()
    page.get_by_role("link", name="Save a client's flow as a template").click()

    # Choosing the client lists its flows (HTMX swaps the form); reference flows are not offered.
    form = page.locator("#template-save-form")
    form.get_by_label("Client").select_option(label="Bayview Engineering")
    flow = form.get_by_label("Flow")
    expect(flow).to_contain_text("Approved time to invoices · reads Kantata OX")
    assert "(reference)" not in flow.inner_text()
    flow.select_option(label="Approved time to invoices · reads Kantata OX")
    # The partner sees which value maps travel, and with how many of Bayview's entries.
    maps = form.get_by_test_id("template-value-maps")
    expect(maps).to_contain_text("offered to every client that installs it")
    expect(maps.get_by_label("Project codes (PSA → ERP): include its 1 entry")).to_be_checked()
    page.get_by_label("Template name").fill("Time to invoice")
    page.get_by_label("What it does").fill("Approved PSA time becomes ERP invoices per project and month.")
    screenshot(page, "partner-template-save")
    page.get_by_role("button", name="Save template").click()
    expect(page.locator(".toast")).to_contain_text("“Time to invoice” v1 saved")
    expect(page.get_by_test_id("versions")).to_contain_text("First version: 5 flows")

    # Deploy v1 to Cove and Delta.
    page.get_by_label("Cove Consulting").check()
    page.get_by_label("Delta Design").check()
    page.get_by_role("button", name="Deploy").click()
    expect(page.locator(".toast")).to_contain_text("v1 offered to Cove Consulting, Delta Design")
    expect(version_row(page, "Cove Consulting")).to_contain_text("Not installed yet")

    # Cove installs it from its Flows page with its own connections (the partner admin acting for it).
    page.goto(f"{base}/c/cove/flows/")
    card = page.get_by_role("article", name="Time to invoice", exact=True)
    expect(card).to_contain_text("From Quayside Advisory · version 1")
    card.get_by_role("link", name="Install").click()
    expect(page.locator(".eyebrow")).to_have_text("From Quayside Advisory · version 1")
    page.get_by_role("button", name="Install Time to invoice").click()
    expect(page.locator(".toast")).to_contain_text("“Time to invoice” is installed")

    page.goto(f"{base}/partner/templates/")
    page.get_by_role("link", name="Time to invoice").first.click()
    expect(version_row(page, "Cove Consulting")).to_contain_text("v1 · up to date")
    expect(version_row(page, "Delta Design")).to_contain_text("Not installed yet")

    # Bayview's notes rule changes; the admin saves it as version 2.
    with django_db_blocker.unblock():
        from django_tenants.utils import tenant_context

        from integrations.models import MappingRule
        from tenants.models import Client

        with tenant_context(Client.objects.get(partner__slug="quayside", slug="bayview")):
            rule = MappingRule.objects.get(mapping__inbound_flows__pk=quayside.flow_id, target="time_entry.notes")
            rule.transforms = [{"name": "trim"}, {"name": "upper"}]
            rule.save()
    page.get_by_role("link", name="Save a new version").click()
    expect(page.locator("#template-save-form").get_by_label("Flow")).to_contain_text("Approved time to invoices")
    page.get_by_label("What changed").fill("Invoice notes in capitals")
    page.get_by_role("button", name="Save as the next version").click()
    expect(page.locator(".toast")).to_contain_text("“Time to invoice” v2 saved")
    expect(page.get_by_test_id("versions")).to_contain_text("v2 · Invoice notes in capitals")
    expect(page.get_by_test_id("versions")).to_contain_text("1 rule changed")
    expect(version_row(page, "Cove Consulting")).to_contain_text("v1 · behind")

    # A small submit button is as small as a small link (a rule for submit buttons once overrode it here).
    for small_button in (
        page.get_by_test_id("upgrade-all"),
        version_row(page, "Cove Consulting").get_by_role("button"),
    ):
        expect(small_button).to_have_css("font-size", "12.75px")  # .85rem of the 15px root
        expect(small_button).to_have_css("padding", "4.5px 10.5px")

    # Upgrade everyone, after confirming: a worker moves the clients one task each, the page shows how far it has
    # gone and reloads itself when every client is done.
    dialogs = []
    page.once("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.accept()))
    worker = start_worker(tmp_path / "worker.log")
    try:
        page.get_by_test_id("upgrade-all").click()
        expect(page.locator(".toast").first).to_contain_text("Moving 2 clients to v2, one at a time")
        assert dialogs and re.match(r"Upgrade 2 clients to v2\?", dialogs[0])
        rollout = page.get_by_test_id("rollout")
        expect(rollout).to_have_attribute("data-running", "no", timeout=60_000)
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=30)
    expect(page.get_by_test_id("rollout-caption")).to_contain_text("2 of 2 clients done · 2 upgraded")
    expect(version_row(page, "Cove Consulting")).to_contain_text("v2 · up to date")
    expect(version_row(page, "Delta Design")).to_contain_text("v2")
    expect(page.get_by_test_id("upgrade-all")).to_have_count(0)
    screenshot(page, "partner-templates")

    # Cove's audit log tells its people what happened to their flows.
    page.goto(f"{base}/c/cove/audit/")
    expect(page.locator("main")).to_contain_text("Upgraded “Time to invoice” from v1 to v2")

    # The deploy form says who has it; the admin renames it, withdraws Delta's unused offer, and is
    # told why it cannot be deleted while Cove runs it.
    page.goto(f"{base}/partner/templates/")
    page.get_by_role("link", name="Time to invoice").first.click()
    clients = page.get_by_test_id("deploy-clients")
    expect(clients.locator("label").filter(has_text="Cove Consulting")).to_contain_text("runs v2")
    expect(clients.locator("label").filter(has_text="Delta Design")).to_contain_text("offered v2")
    expect(clients.locator("label").filter(has_text="Bayview Engineering")).to_have_text("Bayview Engineering")
    edit = page.locator("#template-edit-form")
    edit.get_by_label("Template name").fill("Monthly time to invoice")
    edit.get_by_role("button", name="Save name and summary").click()
    expect(page.locator(".toast")).to_contain_text("“Time to invoice” is now called “Monthly time to invoice”")
    expect(page.get_by_role("heading", level=1)).to_have_text("Monthly time to invoice")
    page.reload()  # the toasts were read; the picture shows the page's own controls
    screenshot(page, "partner-template-manage")

    dialogs.clear()
    page.once("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.accept()))
    page.get_by_test_id("withdraw-delta").click()
    expect(page.locator(".toast")).to_contain_text("withdrawn from Delta Design: its Flows page no longer offers it")
    assert dialogs and dialogs[0].startswith("Withdraw “Monthly time to invoice” from Delta Design?")
    expect(version_row(page, "Delta Design")).to_have_count(0)
    expect(page.get_by_test_id("withdraw-cove")).to_have_count(0)  # Cove installed it: its flows are its own
    expect(page.locator("#delete-blocked")).to_contain_text("Cove Consulting runs it")
    expect(page.get_by_role("button", name="Delete template")).to_be_disabled()
    expect(page.get_by_test_id("deploy-clients").locator("label").filter(has_text="Delta Design")).not_to_contain_text(
        "offered"
    )

    page.goto(f"{base}/c/delta/flows/")
    expect(page.get_by_role("article", name="Monthly time to invoice", exact=True)).to_have_count(0)
    page.goto(f"{base}/c/cove/flows/")
    expect(page.get_by_role("article", name="Monthly time to invoice", exact=True)).to_contain_text("Installed · v2")
