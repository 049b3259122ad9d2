"""Subscriptions and renewals, in the browser: the partner admin gives a client a term with a price rise at the
renewal, finds it among the upcoming renewals, and the statement bills the price in force.

On a partner of its own (Sorrel Partners, sorrel.localhost), committed once for this module.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from tenants.demo import DEMO_PASSWORD
from tests.browser.conftest import screenshot, sign_in
from tests.support import journey_partner, user_who_can_sign_in

pytestmark = [pytest.mark.django_db, pytest.mark.browser]

HOST = "sorrel.localhost"


@pytest.fixture(scope="module")
def sorrel(world, web, django_db_blocker) -> str:
    """Sorrel Partners with two clients on its Standard plan; Hazel Works already subscribed, renewing soon."""
    with django_db_blocker.unblock():
        from tenants import services
        from tenants.models import Client

        partner = journey_partner(slug="sorrel", name="Sorrel Partners", host=HOST)
        user_who_can_sign_in("admin@sorrel.localhost", DEMO_PASSWORD)
        if not partner.clients.exists():
            standard = partner.plans.get(name="Standard")
            for slug, name in (("hazel", "Hazel Works"), ("linden", "Linden Architects")):
                services.client_create(partner=partner, name=name, slug=slug, plan=standard)
            services.subscription_set(
                client=Client.objects.get(partner=partner, slug="hazel"),
                starts_on=timezone.localdate() - timedelta(days=340),
                term_months=12,
                monthly_price=Decimal("450.00"),
                auto_renew=False,
                reminder_days=30,
                actor=None,
            )
    return f"http://{HOST}:{web}"


def test_partner_admin_subscribes_a_client_and_follows_its_renewal(page, sorrel):
    base = sorrel
    today = timezone.localdate()
    first_of_month = today.replace(day=1)
    sign_in(page, base, "admin@sorrel.localhost")
    page.get_by_role("link", name="Clients").click()
    page.get_by_role("link", name="Linden Architects").first.click()
    subscription = page.get_by_test_id("client-subscription")
    expect(subscription).to_contain_text("No subscription")
    subscription.get_by_role("link", name="Set up a subscription").click()

    page.get_by_label("Current term starts").fill(first_of_month.isoformat())
    page.get_by_role("combobox", name="Term").select_option("12")
    page.get_by_label("Monthly price (USD)").fill("520.00")
    expect(page.get_by_label("Renews automatically")).to_be_checked()
    page.get_by_label("Price from the renewal (USD)").fill("590.00")
    page.get_by_label("Remind (days before renewal)").fill("45")
    screenshot(page, "partner-subscription-form")
    page.get_by_role("button", name="Save subscription").click()
    expect(page.locator(".toast")).to_contain_text("Subscription saved for Linden Architects")
    renewal = first_of_month.replace(year=first_of_month.year + 1)
    subscription = page.get_by_test_id("client-subscription")
    expect(subscription).to_contain_text("$520.00 / month")
    expect(subscription).to_contain_text(f"{renewal.day} {renewal:%b %Y}")
    expect(subscription).to_contain_text("$590.00 / month")
    screenshot(page, "partner-client-subscription")

    page.get_by_role("link", name="Renewals").click()
    rows = page.get_by_test_id("renewals").locator("tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("Hazel Works")  # renews soonest
    expect(rows.nth(0)).to_contain_text("Ends")
    expect(rows.nth(0)).to_contain_text("Going out now")  # its reminder is due; the next renewals run sends it
    expect(rows.nth(1)).to_contain_text("Linden Architects")
    expect(rows.nth(1)).to_contain_text("Price rise")
    screenshot(page, "partner-renewals")

    page.goto(f"{base}/partner/revenue/linden/")
    expect(page.get_by_test_id("statement-plan-line")).to_contain_text("subscription price in force")
    expect(page.get_by_test_id("statement-total")).to_contain_text("$520.00")
    screenshot(page, "partner-statement-subscription")
    page.goto(f"{base}/partner/revenue/")
    expect(page.get_by_test_id("mrr")).to_contain_text("$970.00")  # 450 + 520: the subscriptions' prices
