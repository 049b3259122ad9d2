"""Change requests, in the browser, from both sides: the client's admin asks for a change, the partner's admin
quotes it in hours at the plan's rate, the client approves it, the partner delivers it, and the month's statement
bills the quote.

On a partner of its own (Elder Partners, elder.localhost) with one client (Quince Studio), committed once for this
module.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from playwright.sync_api import expect

from tenants.demo import DEMO_PASSWORD
from tests.browser.conftest import screenshot
from tests.support import user_who_can_sign_in

pytestmark = [pytest.mark.django_db, pytest.mark.browser]

HOST = "elder.localhost"


@pytest.fixture(scope="module")
def elder(world, web, django_db_blocker) -> str:
    """Elder Partners; Quince Studio on its Standard plan, which quotes changes at 120.00 an hour."""
    with django_db_blocker.unblock():
        from tenants import services
        from tenants.models import Membership, MfaPolicy, Partner, Role, User

        if not Partner.objects.filter(slug="elder").exists():
            partner = services.partner_create(
                name="Elder Partners", slug="elder", domain=HOST, admin_email="admin@elder.localhost"
            )
            Partner.objects.filter(pk=partner.pk).update(mfa_policy=MfaPolicy.OPTIONAL)
            user_who_can_sign_in("admin@elder.localhost", DEMO_PASSWORD)
            User.objects.filter(email="admin@elder.localhost").update(full_name="Edith Elder")
            standard = partner.plans.get(name="Standard")
            standard.hourly_rate = Decimal("120.00")
            standard.save()
            client = services.client_create(partner=partner, name="Quince Studio", slug="quince", plan=standard)
            admin = user_who_can_sign_in("admin@quince.localhost", DEMO_PASSWORD, full_name="Quinn Admin")
            Membership.objects.create(user=admin, client=client, role=Role.CLIENT_ADMIN)
    return f"http://{HOST}:{web}"


def sign_in(page, base: str, email_address: str) -> None:
    page.goto(f"{base}/accounts/login/")
    page.get_by_label("Email").fill(email_address)
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state("networkidle")


def test_a_change_is_asked_quoted_approved_delivered_and_billed(page, chromium, elder):
    base = elder
    client = page
    sign_in(client, base, "admin@quince.localhost")
    client.goto(f"{base}/c/quince/")
    client.get_by_role("navigation", name="Main").get_by_role("link", name="Changes").click()
    expect(client.get_by_role("heading", name="Change requests", exact=True)).to_be_visible()
    screenshot(client, "workspace-changes-empty")
    client.get_by_role("link", name="Ask for a change").click()
    client.get_by_role("button", name="Send request").click()  # nothing filled in: the form says what is missing
    expect(client.locator(".form-errors")).to_contain_text("Please correct the highlighted field")
    client.get_by_label("What kind of change").select_option("new_flow")
    client.get_by_label("Title").fill("Send approved expenses to the ERP")
    client.get_by_label("What you need").fill("Every night, approved expenses as bill lines on the project.")
    screenshot(client, "workspace-change-new")
    client.get_by_role("button", name="Send request").click()
    expect(client.locator(".toast")).to_contain_text("Change request #1 “Send approved expenses to the ERP” sent")
    expect(client.get_by_test_id("change-status")).to_have_text("Requested")

    partner = chromium.new_context(viewport={"width": 1280, "height": 800}).new_page()
    partner.set_default_timeout(15_000)
    sign_in(partner, base, "admin@elder.localhost")
    partner.get_by_role("navigation", name="Main").get_by_role("link", name="Changes").click()
    expect(partner.get_by_test_id("changes-to-quote")).to_have_text("1")
    screenshot(partner, "partner-changes")
    partner.get_by_role("link", name="Send approved expenses to the ERP").click()
    partner.get_by_label("Hours at the plan's rate").check()
    partner.get_by_label("Hours", exact=True).fill("6.5")
    partner.get_by_label("Note for the client").fill("Includes a test run in Sandbox first.")
    partner.get_by_role("button", name="Send quote").click()
    expect(partner.locator(".toast")).to_contain_text("Quote sent to Quince Studio: $780.00")
    expect(partner.get_by_test_id("change-quote-amount")).to_have_text("$780.00")
    partner.get_by_label("Message").fill("Which ERP project codes should the lines use?")
    partner.get_by_role("button", name="Post message").click()
    expect(partner.get_by_test_id("change-comments")).to_contain_text("Which ERP project codes")
    screenshot(partner, "partner-change-quoted")

    client.reload()
    expect(client.get_by_test_id("change-status")).to_have_text("Quoted")
    expect(client.get_by_test_id("change-quote-amount")).to_have_text("$780.00")
    expect(client.get_by_test_id("change-quote")).to_contain_text("6.5 h × $120.00")
    expect(client.get_by_test_id("change-comments")).to_contain_text("Edith Elder")
    client.get_by_label("Message").fill("The same codes as in the PSA.")
    client.get_by_role("button", name="Post message").click()
    expect(client.locator(".toast")).to_contain_text("Comment posted.")
    screenshot(client, "workspace-change-quoted")
    client.get_by_role("button", name="Approve quote").click()
    expect(client.locator(".toast")).to_contain_text("it is billed on this month's statement")
    expect(client.get_by_test_id("change-status")).to_have_text("Approved")

    partner.reload()
    expect(partner.get_by_test_id("change-comments")).to_contain_text("The same codes as in the PSA.")
    partner.get_by_label("What was done (optional)").fill("Live from tonight's run.")
    partner.get_by_role("button", name="Mark delivered").click()
    expect(partner.locator(".toast")).to_contain_text("Marked #1 “Send approved expenses to the ERP” delivered")
    expect(partner.get_by_test_id("change-status")).to_have_text("Delivered")
    screenshot(partner, "partner-change-delivered")

    client.get_by_role("link", name="Changes").first.click()
    row = client.get_by_test_id("change-1")
    expect(row).to_contain_text("Delivered")
    expect(row).to_contain_text("$780.00")
    screenshot(client, "workspace-changes")

    partner.goto(f"{base}/partner/revenue/quince/")
    expect(partner.get_by_test_id("statement-change-1")).to_contain_text("6.5 h × $120.00")
    expect(partner.get_by_test_id("statement-change-1")).to_contain_text("$780.00")
    expect(partner.get_by_test_id("statement-total")).to_have_text("$1,279.00")  # 499.00 plan + 780.00
    screenshot(partner, "partner-statement-change")
    partner.context.close()
