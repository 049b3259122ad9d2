"""Usage roll-ups, statements (plan price + overage, in Decimal), MRR per currency and the CSV export."""

import csv
import io
from datetime import date
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from tenants import services
from tenants.models import Client, Plan, UsageRecord
from tenants.selectors.revenue import client_statement, partner_mrr, partner_statements, statement_totals
from tests.support import NORTHWIND, browser_for

pytestmark = pytest.mark.django_db

PAST = date(2025, 3, 1)


@pytest.fixture
def essentials_client(world):
    """Wingtip on Essentials: 390.00 USD, 20,000 records included, 4.00 per 1,000 above."""
    client = Client.objects.get(pk=world.clients["wingtip"].pk)
    client.plan = world.partners["northwind"].plans.get(name="Essentials")
    client.save(update_fields=["plan"])
    return client


def test_usage_upsert_sets_the_month_and_running_it_again_counts_nothing_twice(world):
    client = world.clients["contoso"]
    services.usage_record_upsert(client=client, month=date(2025, 3, 17), records_synced=1200, runs=3)
    services.usage_record_upsert(client=client, month=date(2025, 3, 17), records_synced=1200, runs=3)
    record = UsageRecord.objects.get(client=client, month=PAST)
    assert (record.records_synced, record.runs) == (1200, 3)
    services.usage_record_upsert(client=client, month=PAST, records_synced=1500, runs=4)
    assert UsageRecord.objects.filter(client=client, month=PAST).count() == 1
    assert UsageRecord.objects.get(client=client, month=PAST).records_synced == 1500
    with pytest.raises(ValueError, match="negative"):
        services.usage_record_upsert(client=client, month=PAST, records_synced=-1, runs=0)


def test_the_database_keeps_one_row_per_client_and_month_on_the_first_day(world):
    client = world.clients["contoso"]
    UsageRecord.objects.create(client=client, month=PAST)
    with pytest.raises(IntegrityError), transaction.atomic():
        UsageRecord.objects.create(client=client, month=PAST)
    with pytest.raises(IntegrityError), transaction.atomic():
        UsageRecord.objects.create(client=client, month=date(2025, 4, 2))


def test_within_the_included_records_a_statement_is_the_plan_price(essentials_client):
    services.usage_record_upsert(client=essentials_client, month=PAST, records_synced=20_000, runs=31)
    statement = client_statement(client=essentials_client, month=PAST)
    assert statement.currency == "USD"
    assert statement.overage_records == 0 and statement.overage_amount == Decimal("0.00")
    assert statement.total == Decimal("390.00") and statement.runs == 31


def test_overage_is_charged_per_record_at_the_price_per_thousand(essentials_client):
    services.usage_record_upsert(client=essentials_client, month=PAST, records_synced=22_500, runs=40)
    statement = client_statement(client=essentials_client, month=PAST)
    assert statement.overage_records == 2_500
    assert statement.overage_amount == Decimal("10.00")
    assert statement.total == Decimal("400.00")


@pytest.mark.parametrize(
    ("records_over", "overage"),
    [(1, "0.00"), (2, "0.01"), (3, "0.01"), (6, "0.02"), (1_000, "2.50"), (123_457, "308.64")],
)
def test_overage_rounds_half_up_to_the_cent_once(world, essentials_client, records_over, overage):
    plan = essentials_client.plan
    services.plan_update(plan=plan, values={"overage_per_1000": Decimal("2.50")}, actor=None)
    services.usage_record_upsert(client=essentials_client, month=PAST, records_synced=20_000 + records_over, runs=1)
    statement = client_statement(client=essentials_client, month=PAST)
    assert statement.overage_amount == Decimal(overage)  # 2 records: 0.005 -> 0.01 (half up, not to even)
    assert statement.total == Decimal("390.00") + Decimal(overage)


def test_no_usage_means_the_plan_price_alone_and_no_plan_means_nothing(world):
    client = Client.objects.get(pk=world.clients["wingtip"].pk)
    client.plan = None
    client.save(update_fields=["plan"])
    statement = client_statement(client=client, month=PAST)
    assert statement.total == Decimal("0.00") and statement.plan_name == ""


def test_statements_total_each_currency_apart_and_mrr_counts_active_clients(world, essentials_client):
    northwind = world.partners["northwind"]
    euro = Plan.objects.create(partner=northwind, name="Euro Basic", monthly_price=Decimal("300.00"), currency="EUR")
    tailspin = Client.objects.get(pk=world.clients["tailspin"].pk)
    tailspin.plan = euro
    tailspin.save(update_fields=["plan"])
    month = timezone.localdate()
    services.usage_record_upsert(client=essentials_client, month=month, records_synced=25_000, runs=10)

    statements = partner_statements(partner=northwind, month=month)
    assert [line.client.slug for line in statements] == ["contoso", "tailspin", "wingtip"]
    totals = {line.currency: line for line in statement_totals(statements)}
    # contoso: Professional 1,290.00 USD; wingtip: Essentials 390.00 + 5,000 over x 4.00 = 20.00
    assert totals["USD"].total == Decimal("1700.00") and totals["USD"].overage_amount == Decimal("20.00")
    assert totals["EUR"].total == Decimal("300.00") and totals["EUR"].clients == 1

    mrr = {line.currency: line.total for line in partner_mrr(northwind)}
    assert mrr == {"USD": Decimal("1680.00"), "EUR": Decimal("300.00")}
    services.client_suspend(client=tailspin, actor=world.user("admin@northwind.localhost"))
    assert {line.currency for line in partner_mrr(northwind)} == {"USD"}


def test_revenue_page_and_statement_show_the_figures(world, essentials_client):
    month = timezone.localdate()
    services.usage_record_upsert(client=essentials_client, month=month, records_synced=22_500, runs=9)
    admin = browser_for(world.user("admin@northwind.localhost"), host=NORTHWIND)
    page = admin.get("/partner/revenue/").content.decode()
    assert "Statements for " + month.strftime("%B %Y") in page
    assert "$2,970.00" in page  # MRR: two on Professional, one on Essentials
    assert "$400.00" in page and "2,500 over" in page
    statement = admin.get("/partner/revenue/wingtip/").content.decode()
    assert "Overage: 2,500 records × $4.00 per 1,000" in statement
    assert 'data-testid="statement-total">$400.00<' in statement


def test_csv_export_has_one_row_per_client_and_cannot_carry_formulas(world, essentials_client):
    client = Client.objects.get(pk=world.clients["contoso"].pk)
    client.name = '=HYPERLINK("http://evil.example","Click")'
    client.save(update_fields=["name"])
    month = timezone.localdate()
    services.usage_record_upsert(client=essentials_client, month=month, records_synced=21_000, runs=2)
    admin = browser_for(world.user("admin@northwind.localhost"), host=NORTHWIND)
    response = admin.get("/partner/revenue/statements.csv", {"month": month.strftime("%Y-%m")})
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert f"northwind-statements-{month:%Y-%m}.csv" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [row["workspace"] for row in rows] == ["contoso", "tailspin", "wingtip"]
    assert rows[0]["client"].startswith("'=HYPERLINK")
    wingtip = rows[2]
    assert wingtip["overage_records"] == "1000" and wingtip["overage_amount"] == "4.00" and wingtip["total"] == "394.00"


def test_only_partner_admins_see_revenue(world):
    engineer = browser_for(world.user("engineer@northwind.localhost"), host=NORTHWIND)
    for path in ("/partner/revenue/", "/partner/revenue/statements.csv", "/partner/revenue/contoso/"):
        assert engineer.get(path).status_code == 403
    admin = browser_for(world.user("admin@northwind.localhost"), host=NORTHWIND)
    assert admin.get("/partner/revenue/fabrikam/").status_code == 404
    assert admin.get("/partner/revenue/", {"month": "garbage"}).status_code == 200


@pytest.mark.parametrize(
    ("billing", "price", "amount"),
    [("free", "9.99", "0.00"), ("separate", "1.50", "4.50")],
)
def test_sandbox_records_stay_outside_the_included_records_and_are_billed_as_the_plan_says(
    world, essentials_client, billing, price, amount
):
    services.plan_update(
        plan=essentials_client.plan,
        values={"sandbox_billing": billing, "sandbox_per_1000": Decimal(price)},
        actor=None,
    )
    services.usage_record_upsert(
        client=essentials_client,
        month=PAST,
        records_synced=20_000,
        runs=31,
        sandbox_records_synced=3_000,
        sandbox_runs=12,
    )
    statement = client_statement(client=essentials_client, month=PAST)
    assert statement.overage_records == 0  # 3,000 Sandbox records would have been over the 20,000
    assert (statement.sandbox_records, statement.sandbox_runs) == (3_000, 12)
    assert statement.sandbox_amount == Decimal(amount)
    assert statement.total == Decimal("390.00") + Decimal(amount)

    admin = browser_for(world.user("admin@northwind.localhost"), host=NORTHWIND)
    page = admin.get(f"/partner/revenue/{essentials_client.slug}/", {"month": "2025-03"}).content.decode()
    assert 'data-testid="statement-sandbox-records">3,000<' in page
    assert ("not billed" in page) == (billing == "free")
    assert f"{Decimal(amount):.2f}" in page


def test_the_roll_up_counts_sandbox_runs_apart_from_production(world):
    from django.db import connection

    from integrations.housekeeping import usage_rollup
    from integrations.models import Environment, SyncRun
    from integrations.services.connections import connection_create
    from integrations.services.flows import flow_create
    from tests.integrations.workspace_fixtures import UNREACHABLE, demo_credentials

    client = world.clients["wingtip"]
    connection.set_tenant(client)
    flows = {}
    for environment in Environment.values:
        source = connection_create(
            name=f"HubSpot {environment}",
            vendor="hubspot",
            base_url=UNREACHABLE,
            credentials=demo_credentials("hubspot"),
            environment=environment,
        )
        flows[environment] = flow_create(
            name="Companies", source_connection=source, source_object="companies", entity="customer"
        )
    now = timezone.now()
    for environment, created, updated in (("production", 100, 20), ("sandbox", 40, 2), ("sandbox", 5, 0)):
        SyncRun.objects.create(
            flow=flows[environment], status="succeeded", created=created, updated=updated, finished_at=now
        )
    connection.set_schema_to_public()
    usage_rollup(month=now.date())
    record = UsageRecord.objects.get(client=client, month=now.date().replace(day=1))
    assert (record.records_synced, record.runs) == (120, 1)
    assert (record.sandbox_records_synced, record.sandbox_runs) == (47, 2)
