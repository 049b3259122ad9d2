"""Finance reads backlog and unbilled work in the browser: filters, opens the records behind a figure, exports CSV.

It runs on a partner of its own (Maple Advisory, maple.localhost) whose client, Rowan Consulting, holds a won
deal, time over two months with the first month's invoice in the ERP, and time in a second currency.
"""

from __future__ import annotations

import csv
import io
import re

import pytest
from django.db import connection
from playwright.sync_api import expect

from tenants.demo import DEMO_PASSWORD
from tests.browser.conftest import screenshot

pytestmark = [pytest.mark.django_db, pytest.mark.browser]

HOST = "maple.localhost"


@pytest.fixture(scope="module")
def rowan(world, django_db_blocker):
    from integrations.models import Customer
    from tenants import services
    from tenants.models import Client, Membership, Role
    from tests.integrations.test_views_backlog import seed_books
    from tests.support import journey_partner, user_who_can_sign_in

    with django_db_blocker.unblock():
        partner = journey_partner(slug="maple", name="Maple Advisory", host=HOST)
        client = Client.objects.filter(partner=partner, slug="rowan").first() or services.client_create(
            partner=partner, name="Rowan Consulting", slug="rowan", plan=partner.plans.get(name="Standard")
        )
        user = user_who_can_sign_in("finance@rowan.localhost", DEMO_PASSWORD, full_name="Rhea Finance")
        Membership.objects.get_or_create(user=user, client=client, defaults={"role": Role.CLIENT_FINANCE})
        connection.set_tenant(client)
        if not Customer.objects.exists():
            seed_books()
        connection.set_schema_to_public()
    return client


def test_finance_filters_the_backlog_opens_unbilled_work_and_exports_it(page, web, rowan):
    base = f"http://{HOST}:{web}"
    page.goto(f"{base}/accounts/login/")
    page.get_by_label("Email").fill("finance@rowan.localhost")
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state("networkidle")
    page.goto(f"{base}/c/rowan/dashboards/")
    page.get_by_role("navigation", name="Dashboards").get_by_role("link", name="Backlog & WIP").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Backlog & work in progress")
    expect(page.get_by_test_id("backlog-total-USD")).to_have_text("$47,820")
    expect(page.get_by_test_id("wip-total-EUR")).to_have_text("€300")
    screenshot(page, "backlog-all")

    # One customer, one month: the page body follows without a reload, and the address keeps the filters.
    page.get_by_label("Customer", exact=True).select_option(label="Acme Health")
    expect(page.get_by_test_id("backlog-projects")).not_to_contain_text("Globex shop")
    expect(page.get_by_test_id("wip-total-EUR")).to_have_count(0)
    page.get_by_label("Month", exact=True).select_option(label="February 2025")
    expect(page.locator(".period-label")).to_contain_text("February 2025")
    expect(page.get_by_test_id("wip-BK-1")).to_have_text("$680")
    expect(page).to_have_url(re.compile(r"customer=\d+&month=2025-02$"))
    screenshot(page, "backlog-acme-february")

    # The unbilled figure opens the records behind it.
    page.get_by_test_id("wip-BK-1").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Delivered, not yet billed: $680")
    expect(page.get_by_test_id("backlog-time")).to_contain_text("3 Feb 2025")
    expect(page.get_by_test_id("backlog-time").locator("tbody tr")).to_have_count(1)
    expect(page.get_by_test_id("backlog-expenses")).to_contain_text("80.50")
    screenshot(page, "backlog-unbilled-records")
    page.get_by_role("link", name="Backlog & WIP").first.click()
    expect(page.get_by_label("Month", exact=True)).to_have_value("2025-02")

    with page.expect_download() as download:
        page.get_by_test_id("backlog-csv").click()
    rows = list(csv.DictReader(io.StringIO(open(download.value.path(), encoding="utf-8").read())))
    assert [(r["customer"], r["project_code"], r["month"], r["unbilled"]) for r in rows] == [
        ("Acme Health", "BK-1", "2025-02", "680.50")
    ]
