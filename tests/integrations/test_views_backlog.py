"""The backlog and WIP dashboard through the test client: figures, filters, the records behind a figure, the CSV,
and nobody outside the workspace reaching any of it."""

from __future__ import annotations

import csv
import io
from datetime import date
from decimal import Decimal

import pytest

from integrations.models import Customer, Expense, Invoice, Opportunity, Project, Resource, TimeEntry
from tests.integrations.workspace_views import cold_cache, within  # noqa: F401 -- fixtures
from tests.support import NORTHWIND, SUMMIT, browser_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def books(world):
    return within(world, seed_books)


def seed_books() -> dict:
    """In the current schema, two customers: one with a won deal, time in two months and the first month's invoice
    in the ERP; one in EUR with time only. A Sandbox entry that must not count, and an unapproved one."""
    acme = Customer.objects.create(name="Acme Health", currency="USD")
    globex = Customer.objects.create(name="Globex Retail", currency="EUR")
    deal = Opportunity.objects.create(name="Acme rollout", customer=acme, amount=Decimal("50000"), is_won=True)
    rollout = Project.objects.create(code="BK-1", name="Acme rollout", customer=acme, opportunity=deal)
    shop = Project.objects.create(code="BK-2", name="Globex shop", customer=globex, currency="EUR")
    ada = Resource.objects.create(email="ada@contoso.example", first_name="Ada", last_name="Byron")

    def time(project, day, hours, rate, currency="USD", **extra):
        TimeEntry.objects.create(
            resource=ada,
            project=project,
            date=day,
            hours=Decimal(hours),
            bill_rate=Decimal(rate),
            cost_rate=Decimal("50"),
            currency=currency,
            approved=extra.pop("approved", True),
            **extra,
        )

    time(rollout, date(2025, 1, 10), "10", "150")  # 1500, billed
    time(rollout, date(2025, 2, 3), "4", "150")  # 600, not billed
    time(rollout, date(2025, 2, 4), "2", "150", approved=False)  # not approved: not delivered
    time(rollout, date(2025, 2, 5), "8", "150", environment="sandbox")  # a test: not the books
    time(shop, date(2025, 2, 6), "3", "100", currency="EUR")  # 300 EUR, no invoice
    Expense.objects.create(resource=ada, project=rollout, date=date(2025, 2, 7), amount=Decimal("80.50"))
    Invoice.objects.create(
        number="BK-1-2025-01",
        customer=acme,
        project=rollout,
        period_start=date(2025, 1, 1),
        period_end=date(2025, 1, 31),
        total=Decimal("1500"),
        needs_sync=False,
    )
    Invoice.objects.create(  # marked by new work and not yet written: its month is unbilled
        number="BK-1-2025-02",
        customer=acme,
        project=rollout,
        period_start=date(2025, 2, 1),
        period_end=date(2025, 2, 28),
        total=Decimal("0"),
        needs_sync=True,
    )
    return {"acme": acme.pk, "globex": globex.pk, "rollout": rollout.pk}


def test_finance_sees_backlog_and_unbilled_work_per_currency_and_filters_them(world, books):
    finance = browser_for(world.user("finance@contoso.localhost"), host=NORTHWIND)
    page = finance.get("/c/contoso/dashboards/backlog").content.decode()
    assert 'data-testid="backlog-total-USD">$47,820<' in page  # 50,000 - 1,500 - 600 - 80.50
    assert (
        'data-testid="wip-total-USD"' in page and ">$680<" in page
    )  # 680.50, shown in whole units as the other dashboards
    assert 'data-testid="wip-total-EUR"' in page and "€300" in page
    assert "BK-2" in page

    february = finance.get(f"/c/contoso/dashboards/backlog?month=2025-01&customer={books['acme']}").content.decode()
    assert "BK-2" not in february and "Globex shop" not in february
    assert 'data-testid="backlog-total-USD">$48,500<' in february  # backlog at the end of January
    partial = finance.get("/c/contoso/dashboards/backlog?month=2025-02", HTTP_HX_REQUEST="true").content.decode()
    assert partial.lstrip().startswith('<div id="backlog-body">')


def test_each_figure_lists_the_records_behind_it(world, books):
    finance = browser_for(world.user("finance@contoso.localhost"), host=NORTHWIND)
    base = f"/c/contoso/dashboards/backlog/records?currency=USD&project={books['rollout']}"
    unbilled = finance.get(base + "&kind=unbilled").content.decode()
    assert "Delivered, not yet billed: $680" in unbilled
    assert "3 Feb 2025" in unbilled and "10 Jan 2025" not in unbilled and "80.50" in unbilled
    assert "5 Feb 2025" not in unbilled and "4 Feb 2025" not in unbilled  # sandbox, unapproved
    delivered = finance.get(base + "&kind=delivered").content.decode()
    assert "10 Jan 2025" in delivered and "Delivered: $2,180" in delivered
    contracted = finance.get(base + "&kind=contracted").content.decode()
    assert "Won deal" in contracted and "50,000.00" in contracted
    assert finance.get("/c/contoso/dashboards/backlog/records?kind=nonsense").status_code == 302


def test_the_csv_has_a_row_per_customer_project_month_and_currency_to_the_cent(world, books):
    finance = browser_for(world.user("finance@contoso.localhost"), host=NORTHWIND)
    response = finance.get("/c/contoso/dashboards/backlog.csv")
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [
        (r["project_code"], r["month"], r["currency"], r["delivered"], r["unbilled"], r["backlog_at_month_end"])
        for r in rows
    ] == [
        ("BK-1", "2025-01", "USD", "1500.00", "0", "48500.00"),
        ("BK-1", "2025-02", "USD", "680.50", "680.50", "47819.50"),
        ("BK-2", "2025-02", "EUR", "300.00", "300.00", ""),
    ]
    only = list(
        csv.DictReader(
            io.StringIO(finance.get(f"/c/contoso/dashboards/backlog.csv?customer={books['globex']}").content.decode())
        )
    )
    assert [r["project_code"] for r in only] == ["BK-2"]


def test_nobody_outside_the_workspace_reaches_the_backlog(world, books):
    paths = (
        "/c/contoso/dashboards/backlog",
        "/c/contoso/dashboards/backlog.csv",
        f"/c/contoso/dashboards/backlog/records?kind=delivered&currency=USD&project={books['rollout']}",
    )
    for email, host in (
        ("admin@tailspin.localhost", NORTHWIND),  # another client of the same partner
        ("admin@summit.localhost", NORTHWIND),  # another partner's admin
        ("finance@contoso.localhost", SUMMIT),  # the right person on another partner's host
    ):
        browser = browser_for(world.user(email), host=host)
        for path in paths:
            assert browser.get(path).status_code == 404, (email, host, path)
    viewer = browser_for(world.user("viewer@contoso.localhost"), host=NORTHWIND)
    assert viewer.get(paths[0]).status_code == 200
