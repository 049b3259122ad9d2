"""A client admin names who is alerted, in the browser: Chromium against the real web server.

It runs on a partner of its own (Juniper Advisory, juniper.localhost) whose client, Cedar
Architects, has two packaged flows installed and one recipient already, so the demo partners stay
as seeded.
"""

from __future__ import annotations

import pytest
from django.db import connection
from playwright.sync_api import expect

from tenants.demo import DEMO_PASSWORD
from tests.browser.conftest import screenshot, sign_in

pytestmark = [pytest.mark.django_db, pytest.mark.browser]

HOST = "juniper.localhost"
SLA_HOURS = 36


@pytest.fixture(scope="module")
def cedar(world, django_db_blocker):
    """Cedar Architects, committed for the server: admin and finance members, flows, one recipient."""
    from integrations.models import Flow, NotificationRecipient
    from integrations.services.alerts import alert_recipient_add
    from integrations.services.connections import connection_create
    from integrations.services.flows import template_install
    from tenants import services
    from tenants.models import Client, Membership, Role
    from tests.integrations.workspace_fixtures import UNREACHABLE, demo_credentials
    from tests.support import journey_partner, user_who_can_sign_in

    with django_db_blocker.unblock():
        brand = dict(product_name="Juniper Connect", primary_color="#9D174D", accent_color="#0369A1")
        partner = journey_partner(slug="juniper", name="Juniper Advisory", host=HOST, brand=brand)
        plan = partner.plans.get(name="Standard")
        plan.sla_resolution_hours = SLA_HOURS
        plan.save(update_fields=["sla_resolution_hours"])
        client = Client.objects.filter(partner=partner, slug="cedar").first() or services.client_create(
            partner=partner, name="Cedar Architects", slug="cedar", plan=plan
        )
        for email, name, role in (
            ("admin@cedar.localhost", "Cleo Admin", Role.CLIENT_ADMIN),
            ("finance@cedar.localhost", "Fiona Finance", Role.CLIENT_FINANCE),
        ):
            user = user_who_can_sign_in(email, DEMO_PASSWORD, full_name=name)
            Membership.objects.get_or_create(user=user, client=client, defaults={"role": role})
        connection.set_tenant(client)
        if not Flow.objects.exists():
            made = {
                vendor: connection_create(
                    name=name, vendor=vendor, base_url=UNREACHABLE, credentials=demo_credentials(vendor)
                )
                for vendor, name in (("bamboohr", "BambooHR"), ("kantata", "Kantata OX"), ("netsuite", "NetSuite"))
            }
            template_install(
                key="approved-time-to-invoice", connections={"psa": made["kantata"], "erp": made["netsuite"]}
            )
            template_install(
                key="employee-to-resource",
                connections={"hr": made["bamboohr"], "psa": made["kantata"], "erp": made["netsuite"]},
            )
        NotificationRecipient.objects.all().delete()
        alert_recipient_add(
            email="it-ops@cedar.localhost", events=["on_run_failed", "on_connection_failed", "on_sla_breach"]
        )
        connection.set_schema_to_public()
    return client


def test_client_admin_alerts_finance_of_run_failures_only(page, web, cedar):
    base = f"http://{HOST}:{web}"
    sign_in(page, base, "admin@cedar.localhost")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="People").click()
    page.get_by_role("navigation", name="People").get_by_role("link", name="Alerts").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Alerts")
    form = page.get_by_test_id("alert-add-form")
    expect(form.get_by_label(f"Exceptions past the plan's SLA ({SLA_HOURS} h)")).to_be_checked()

    # A typo first: the form says so and keeps what was typed.
    form.get_by_label("Email").fill("finance@cedar")
    form.get_by_role("button", name="Add to alerts").click()
    form = page.get_by_test_id("alert-add-form")
    expect(form).to_contain_text("Enter a valid email address")
    expect(form.get_by_label("Email")).to_have_value("finance@cedar")

    form.get_by_label("Email").fill("finance@cedar.localhost")
    form.get_by_label("Connection failing").uncheck()
    form.get_by_label(f"Exceptions past the plan's SLA ({SLA_HOURS} h)").uncheck()
    expect(form.get_by_label("Run failed")).to_be_checked()
    form.get_by_role("button", name="Add to alerts").click()

    added = page.get_by_test_id("alert-finance@cedar.localhost")
    expect(added).to_be_visible()
    expect(added.get_by_test_id("alert-events")).to_have_text("Run failed")
    expect(added.get_by_test_id("alert-scope")).to_have_text("Every flow")
    expect(page.locator(".toast").last).to_contain_text("finance@cedar.localhost is on the alert list.")
    expect(page.get_by_test_id("alert-add-form").get_by_label("Email")).to_have_value("")  # ready for the next one

    # Limit it to approved time: the row's own form, and the list says so.
    added.get_by_text("Change alerts").click()
    added.get_by_label("Approved time to invoices").check()
    screenshot(page, "alerts-change-open")
    added.get_by_role("button", name="Save alerts").click()
    expect(page.get_by_test_id("alert-finance@cedar.localhost").get_by_test_id("alert-scope")).to_have_text(
        "Only Approved time to invoices"
    )
    page.mouse.move(0, 0)
    screenshot(page, "alerts-finance-added")

    # Finance sees who is alerted, themselves included, and nothing to change it with.
    page.context.clear_cookies()
    sign_in(page, base, "finance@cedar.localhost")
    page.goto(f"{base}/c/cedar/alerts/")
    expect(page.get_by_test_id("alert-finance@cedar.localhost").get_by_test_id("alert-events")).to_have_text(
        "Run failed"
    )
    expect(page.get_by_role("heading", name="Who changes this list")).to_be_visible()
    expect(page.get_by_role("button")).to_have_count(0)
    expect(page.get_by_text("Change alerts")).to_have_count(0)
    screenshot(page, "alerts-as-finance")

    from integrations.models import AuditEvent, NotificationRecipient

    connection.set_tenant(cedar)
    try:
        recipient = NotificationRecipient.objects.get(email="finance@cedar.localhost")
        assert recipient.events() == ["on_run_failed"]
        assert list(recipient.flows.values_list("name", flat=True)) == ["Approved time to invoices"]
        actions = list(
            AuditEvent.objects.filter(actor_email="admin@cedar.localhost", action__startswith="alert.")
            .order_by("at")
            .values_list("action", flat=True)
        )
        assert actions == ["alert.recipient_added", "alert.recipient_changed"]
    finally:
        connection.set_schema_to_public()
