"""The systems a plan includes, in the browser: the partner admin ticks them on the plan, and the client admin
sees them in the workspace's catalogue and is refused the rest in the plan's words.

On a partner of its own (Hawthorn Consulting, hawthorn.localhost), committed once for this module.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tenants.demo import DEMO_PASSWORD
from tests.browser.conftest import screenshot, sign_in
from tests.support import journey_partner, user_who_can_sign_in

pytestmark = [pytest.mark.django_db, pytest.mark.browser]

HOST = "hawthorn.localhost"


@pytest.fixture(scope="module")
def hawthorn(world, web, django_db_blocker) -> str:
    """Hawthorn Consulting with one client, Fern Studio, on its Standard plan, with one Kantata connection."""
    with django_db_blocker.unblock():
        from django_tenants.utils import tenant_context

        from integrations.services.connections import connection_create
        from tenants import services
        from tests.integrations.workspace_fixtures import demo_credentials

        partner = journey_partner(slug="hawthorn", name="Hawthorn Consulting", host=HOST)
        user_who_can_sign_in("admin@hawthorn.localhost", DEMO_PASSWORD)
        if not partner.clients.exists():
            client = services.client_create(
                partner=partner,
                name="Fern Studio",
                slug="fern",
                plan=partner.plans.get(name="Standard"),
                admin_email="admin@fern.hawthorn.localhost",
            )
            user_who_can_sign_in("admin@fern.hawthorn.localhost", DEMO_PASSWORD)
            with tenant_context(client):
                connection_create(
                    name="Kantata OX",
                    vendor="kantata",
                    base_url="http://127.0.0.1:9",
                    credentials=demo_credentials("kantata"),
                )
    return f"http://{HOST}:{web}"


def test_partner_sets_the_systems_and_the_client_sees_them_and_is_refused_the_rest(page, chromium, hawthorn):
    base = hawthorn
    sign_in(page, base, "admin@hawthorn.localhost")
    page.get_by_role("link", name="Plans").click()
    page.get_by_role("link", name="Edit Standard").click()
    systems = page.get_by_test_id("plan-systems")
    expect(systems.get_by_label("Every system, within the connection limit")).to_be_checked()
    systems.get_by_label("Only the systems ticked below, with how many of each").check()
    systems.get_by_label("Salesforce", exact=True).check()
    systems.get_by_label("Salesforce: ").fill("2")
    systems.get_by_label("Kantata OX", exact=True).check()
    systems.get_by_label("Kantata OX: ").fill("1")
    screenshot(page, "partner-plan-systems")
    page.get_by_role("button", name="Save plan").click()
    expect(page.locator(".toast")).to_contain_text("Standard saved")
    card = page.locator(".plan-card").filter(has_text="Standard")
    expect(card).to_contain_text("Kantata OX × 1")
    expect(card).to_contain_text("Salesforce × 2")
    screenshot(page, "partner-plans-with-systems")

    client_context = chromium.new_context(viewport={"width": 1280, "height": 800})
    client = client_context.new_page()
    sign_in(client, base, "admin@fern.hawthorn.localhost")
    client.goto(f"{base}/c/fern/connections/")
    expect(client.get_by_test_id("plan-systems")).to_contain_text("includes 2 Salesforce connections and 1 Kantata OX")
    expect(client.get_by_test_id("allowance-kantata")).to_contain_text("1 of 1 used")
    expect(client.get_by_test_id("allowance-salesforce")).to_contain_text("0 of 2 used")
    excluded = client.get_by_test_id("excluded-systems")
    expect(excluded).to_contain_text("Ask Hawthorn Consulting to change your plan.")
    expect(excluded.get_by_test_id("excluded-hubspot")).to_be_visible()
    assert client.get_by_test_id("add-hubspot").count() == 0
    screenshot(client, "workspace-catalogue-plan-systems")

    client.get_by_test_id("add-kantata").click()
    expect(client.get_by_test_id("plan-system")).to_contain_text(
        'Your plan "Standard" includes 1 Kantata OX connection; you have 1. Ask Hawthorn Consulting to change your plan.'
    )
    client.get_by_label("Connection name").fill("Second Kantata")
    client.get_by_label("Base URL").fill("http://127.0.0.1:9")
    client.get_by_label("Environment").select_option("production")
    client.get_by_label("OAuth access token").fill("kantata-token")
    client.get_by_role("button", name="Save connection").click()
    expect(client.locator("#connection-form")).to_contain_text("includes 1 Kantata OX connection; you have 1")
    screenshot(client, "workspace-connection-refused-by-plan")

    client.goto(f"{base}/c/fern/connections/new/hubspot")
    refusal = client.get_by_test_id("plan-refusal")
    expect(refusal).to_contain_text(
        'Your plan "Standard" does not include HubSpot. Ask Hawthorn Consulting to change your plan.'
    )
    assert client.locator("#connection-form").count() == 0
    screenshot(client, "workspace-system-not-in-plan")
    client_context.close()
