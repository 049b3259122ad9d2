"""The systems a plan includes: the partner sets them, the client workspace keeps to them, statements count them."""

from __future__ import annotations

import csv
import html
import io
import re
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from integrations.models import Connection, Environment
from integrations.services.connections import connection_create
from tenants import services
from tenants.models import Client, PartnerAuditEvent, Plan
from tenants.plans import PlanLimitReached, plan_system_check
from tenants.selectors.revenue import client_statement
from tests.integrations.workspace_fixtures import demo_credentials
from tests.integrations.workspace_views import within
from tests.support import NORTHWIND, SUMMIT, browser_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def essentials(world):
    """A Northwind plan with one Salesforce and two NetSuite connections, and nothing else."""
    return services.plan_create(
        partner=world.partners["northwind"],
        values={
            "name": "Essentials Systems",
            "monthly_price": Decimal("400.00"),
            "max_connections": 10,
            "included_systems": {"salesforce": 1, "netsuite": 2},
        },
        actor=None,
    )


@pytest.fixture
def contoso_on_essentials(world, essentials):
    Client.objects.filter(pk=world.clients["contoso"].pk).update(plan=essentials)
    return world.clients["contoso"]


def connect(vendor: str, environment: str = Environment.PRODUCTION, name: str = ""):
    return connection_create(
        name=name or f"{vendor} {environment}",
        vendor=vendor,
        base_url="http://127.0.0.1:9",
        credentials=demo_credentials(vendor),
        environment=environment,
    )


def production_count(world, vendor: str) -> int:
    return within(world, lambda: Connection.objects.filter(vendor=vendor, environment="production").count())


# --- The rule -------------------------------------------------------------------------------------


def test_a_system_is_refused_past_the_connections_the_plan_includes_in_its_own_words(contoso_on_essentials):
    plan_system_check(client=contoso_on_essentials, vendor="netsuite", current_count=0)
    plan_system_check(client=contoso_on_essentials, vendor="netsuite", current_count=1)
    with pytest.raises(PlanLimitReached) as refused:
        plan_system_check(client=contoso_on_essentials, vendor="netsuite", current_count=2)
    assert refused.value.message == (
        'Your plan "Essentials Systems" includes 2 NetSuite connections; you have 2.'
        " Ask Northwind Advisory to change your plan."
    )
    with pytest.raises(PlanLimitReached, match="includes 1 Salesforce connection; you have 1"):
        plan_system_check(client=contoso_on_essentials, vendor="salesforce", current_count=1)


def test_a_system_the_plan_leaves_out_is_refused_from_the_first_connection(contoso_on_essentials):
    with pytest.raises(PlanLimitReached) as refused:
        plan_system_check(client=contoso_on_essentials, vendor="hubspot", current_count=0)
    assert refused.value.message == (
        'Your plan "Essentials Systems" does not include HubSpot. Ask Northwind Advisory to change your plan.'
    )


def test_plans_made_before_systems_existed_allow_every_system(world):
    professional = Plan.objects.get(partner=world.partners["northwind"], name="Professional")
    assert professional.included_systems == {} and not professional.limits_systems
    for vendor in ("hubspot", "netsuite", "workday"):
        plan_system_check(client=world.clients["contoso"], vendor=vendor, current_count=500)
    no_plan = Client.objects.get(pk=world.clients["wingtip"].pk)
    no_plan.plan = None
    no_plan.save(update_fields=["plan"])
    plan_system_check(client=no_plan, vendor="hubspot", current_count=500)


def test_a_plan_names_only_known_systems_with_at_least_one_connection(world):
    partner = world.partners["northwind"]
    with pytest.raises(ValidationError, match="not a system the portal connects to"):
        services.plan_create(partner=partner, values={"name": "Bad", "included_systems": {"sap": 1}}, actor=None)
    with pytest.raises(ValidationError, match="NetSuite: include at least 1 connection"):
        services.plan_create(partner=partner, values={"name": "Bad", "included_systems": {"netsuite": 0}}, actor=None)
    assert not Plan.objects.filter(partner=partner, name="Bad").exists()


def test_changing_the_systems_is_audited_with_before_and_after(world, essentials):
    admin = world.user("admin@northwind.localhost")
    services.plan_update(plan=essentials, values={"included_systems": {"netsuite": 3}}, actor=admin)
    row = PartnerAuditEvent.objects.filter(action="plan.updated", target_id=str(essentials.pk)).latest("at")
    assert row.before == {"included_systems": {"salesforce": 1, "netsuite": 2}}
    assert row.after == {"included_systems": {"netsuite": 3}}
    assert "included systems" in row.summary and row.actor_email == "admin@northwind.localhost"


# --- Enforced where a connection is made -----------------------------------------------------------


def test_connection_create_refuses_what_the_plan_leaves_out_and_counts_each_environment(world, contoso_on_essentials):
    with pytest.raises(PlanLimitReached, match="does not include HubSpot"):
        within(world, lambda: connect("hubspot"))
    existing = production_count(world, "salesforce")
    Plan.objects.filter(name="Essentials Systems").update(included_systems={"salesforce": existing + 1})
    within(world, lambda: connect("salesforce", name="Second Salesforce"))
    with pytest.raises(PlanLimitReached, match=f"includes {existing + 1} Salesforce connection"):
        within(world, lambda: connect("salesforce", name="Third Salesforce"))
    # Sandbox mirrors Production: it has the plan's allowance of its own.
    sandbox = within(world, lambda: connect("salesforce", Environment.SANDBOX, name="Test Salesforce"))
    assert sandbox.environment == "sandbox"


# --- The partner's plan form ---------------------------------------------------------------------

PLAN_FORM = {
    "name": "Connected",
    "monthly_price": "900.00",
    "currency": "USD",
    "included_records": "50000",
    "overage_per_1000": "2.00",
    "max_connections": "6",
    "max_flows": "6",
    "min_sync_interval_minutes": "15",
    "sla_support_hours": "8",
    "sla_resolution_hours": "24",
    "sla_freshness_hours": "12",
}


def test_partner_admin_ticks_the_systems_a_plan_includes(world):
    admin = browser_for(world.user("admin@northwind.localhost"), host=NORTHWIND)
    form = admin.get("/partner/plans/new").content.decode()
    assert "Systems clients may connect" in form and 'name="system_netsuite_count"' in form
    values = {
        **PLAN_FORM,
        "systems_scope": "chosen",
        "system_salesforce": "on",
        "system_salesforce_count": "1",
        "system_netsuite": "on",
        "system_netsuite_count": "2",
        "system_hubspot_count": "1",  # not ticked: not included, whatever its number
    }
    assert admin.post("/partner/plans/new", values).status_code == 302
    plan = Plan.objects.get(partner=world.partners["northwind"], name="Connected")
    assert plan.included_systems == {"salesforce": 1, "netsuite": 2}
    cards = admin.get("/partner/plans/").content.decode()
    assert 'NetSuite <span class="muted">× 2</span>' in cards and "Every system" in cards  # the others: every

    again = admin.get(f"/partner/plans/{plan.pk}/").content.decode()
    assert re.search(r'value="chosen"[^>]*checked', again) and re.search(r'name="system_netsuite"[^>]*checked', again)
    assert not re.search(r'name="system_hubspot"[^>]*checked', again)
    assert admin.post(f"/partner/plans/{plan.pk}/", {**PLAN_FORM, "systems_scope": "every"}).status_code == 302
    plan.refresh_from_db()
    assert plan.included_systems == {}


def test_a_plan_limited_to_no_system_is_refused_with_its_reason(world):
    admin = browser_for(world.user("admin@northwind.localhost"), host=NORTHWIND)
    response = admin.post("/partner/plans/new", {**PLAN_FORM, "systems_scope": "chosen"})
    assert response.status_code == 422
    assert "Tick at least one system" in response.content.decode()
    missing = admin.post(
        "/partner/plans/new", {**PLAN_FORM, "systems_scope": "chosen", "system_jira": "on", "system_jira_count": ""}
    )
    assert missing.status_code == 422 and "How many Jira connections?" in missing.content.decode()
    assert not Plan.objects.filter(partner=world.partners["northwind"], name="Connected").exists()


# --- The client workspace ------------------------------------------------------------------------


def test_the_catalogue_shows_what_the_plan_includes_and_sets_the_rest_apart(world, contoso_on_essentials):
    client_admin = browser_for(world.user("admin@contoso.localhost"), host=NORTHWIND)
    page = client_admin.get("/c/contoso/connections/").content.decode()
    netsuite = production_count(world, "netsuite")
    assert 'data-testid="add-netsuite"' in page and 'data-testid="add-salesforce"' in page
    assert f"{netsuite} of 2" in page
    assert 'data-testid="add-hubspot"' not in page and 'data-testid="excluded-hubspot"' in page
    assert "does not include these systems. Ask Northwind Advisory to change your plan." in page


def test_a_system_outside_the_plan_is_refused_on_its_page_and_on_a_forged_post(world, contoso_on_essentials):
    client_admin = browser_for(world.user("admin@contoso.localhost"), host=NORTHWIND)
    page = client_admin.get("/c/contoso/connections/new/hubspot").content.decode()
    assert "HubSpot is not in your plan" in page and 'id="connection-form"' not in page
    before = within(world, lambda: Connection.objects.filter(vendor="hubspot").count())
    forged = client_admin.post(
        "/c/contoso/connections/new/hubspot",
        {
            "name": "Forged HubSpot",
            "base_url": "http://127.0.0.1:9",
            "environment": "production",
            "cred_access_token": "x",
        },
    )
    assert forged.status_code == 422
    assert 'Your plan "Essentials Systems" does not include HubSpot.' in html.unescape(forged.content.decode())
    assert within(world, lambda: Connection.objects.filter(vendor="hubspot").count()) == before


def test_a_full_system_is_refused_in_production_and_still_offered_in_sandbox(world, contoso_on_essentials):
    used = production_count(world, "salesforce")
    Plan.objects.filter(name="Essentials Systems").update(included_systems={"salesforce": max(used, 1)})
    if used == 0:
        within(world, lambda: connect("salesforce"))
    client_admin = browser_for(world.user("admin@contoso.localhost"), host=NORTHWIND)
    page = client_admin.get("/c/contoso/connections/new/salesforce").content.decode()
    assert "You can still add a Sandbox connection" in page and 'id="connection-form"' in page
    credentials = {f"cred_{key}": value for key, value in demo_credentials("salesforce").items()}
    form = {"name": "Another Salesforce", "base_url": "http://127.0.0.1:9", **credentials}
    refused = client_admin.post("/c/contoso/connections/new/salesforce", {**form, "environment": "production"})
    assert refused.status_code == 422
    assert f"includes {max(used, 1)} Salesforce connection" in refused.content.decode()
    sandbox = client_admin.post("/c/contoso/connections/new/salesforce", {**form, "environment": "sandbox"})
    assert sandbox.status_code == 302


# --- Isolation -----------------------------------------------------------------------------------


def test_no_one_outside_the_partner_sees_or_changes_its_plan_systems(world, essentials):
    limited = {"salesforce": 1, "netsuite": 2}
    forged = {**PLAN_FORM, "name": essentials.name, "systems_scope": "every"}
    summit_admin = browser_for(world.user("admin@summit.localhost"), host=SUMMIT)
    assert summit_admin.get(f"/partner/plans/{essentials.pk}/").status_code == 404
    assert summit_admin.post(f"/partner/plans/{essentials.pk}/", forged).status_code == 404
    client_admin = browser_for(world.user("admin@contoso.localhost"), host=NORTHWIND)
    assert client_admin.post(f"/partner/plans/{essentials.pk}/", forged).status_code in (403, 404)
    essentials.refresh_from_db()
    assert essentials.included_systems == limited


def test_another_partners_client_lives_by_its_own_plan_not_this_one(world, contoso_on_essentials):
    summit_client = Client.objects.filter(partner=world.partners["summit"]).first()
    assert summit_client.plan is not None and summit_client.plan.included_systems == {}
    plan_system_check(client=summit_client, vendor="hubspot", current_count=3)  # Northwind's plan is not its plan
    client_admin = browser_for(world.user("admin@contoso.localhost"), host=SUMMIT)
    assert client_admin.get(f"/c/{summit_client.slug}/connections/").status_code in (302, 403, 404)


# --- Statements ----------------------------------------------------------------------------------


def test_the_statement_counts_connections_per_system_against_the_plan(world, contoso_on_essentials):
    month = timezone.localdate()
    services.usage_record_upsert(
        client=contoso_on_essentials,
        month=month,
        records_synced=100,
        runs=1,
        connections={"netsuite": 3, "salesforce": 1, "hubspot": 1},
    )
    statement = client_statement(client=Client.objects.get(pk=contoso_on_essentials.pk), month=month)
    lines = {line.label: (line.used, line.included, line.over) for line in statement.systems}
    assert lines == {"HubSpot": (1, 0, True), "NetSuite": (3, 2, True), "Salesforce": (1, 1, False)}

    admin = browser_for(world.user("admin@northwind.localhost"), host=NORTHWIND)
    page = admin.get("/partner/revenue/contoso/").content.decode()
    assert 'data-testid="statement-systems"' in page and "Over plan" in page and "not included" in page
    revenue = admin.get("/partner/revenue/").content.decode()
    assert 'data-testid="systems-over-contoso"' in revenue
    rows = {
        row["workspace"]: row
        for row in csv.DictReader(io.StringIO(admin.get("/partner/revenue/statements.csv").content.decode()))
    }
    assert rows["contoso"]["connections"] == "HubSpot 1/0; NetSuite 3/2; Salesforce 1/1"


def test_the_roll_up_counts_production_connections_by_system(world):
    from integrations.housekeeping import usage_rollup

    expected = within(
        world,
        lambda: {
            vendor: Connection.objects.filter(vendor=vendor, environment="production").count()
            for vendor in Connection.objects.filter(environment="production").values_list("vendor", flat=True)
        },
    )
    within(world, lambda: connect("jira", Environment.SANDBOX))  # Sandbox: not on the statement
    usage_rollup()
    record = world.clients["contoso"].usage_records.get(month=timezone.localdate().replace(day=1))
    assert record.connections == expected
