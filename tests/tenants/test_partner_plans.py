"""Plans: the partner admin defines them, and their limits hold in client workspaces at once."""

from decimal import Decimal

import pytest

from tenants import services
from tenants.models import Client, Plan
from tenants.plans import PlanLimitReached, plan_limit_check, plan_min_interval_check
from tests.support import NORTHWIND, SUMMIT, browser_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_flow_plan(world):
    return Plan.objects.create(
        partner=world.partners["northwind"],
        name="Essentials 2",
        monthly_price=Decimal("250.00"),
        max_flows=2,
        max_connections=1,
        min_sync_interval_minutes=60,
    )


@pytest.fixture
def client_on_two_flows(world, two_flow_plan):
    client = Client.objects.get(pk=world.clients["wingtip"].pk)
    client.plan = two_flow_plan
    client.save(update_fields=["plan"])
    return client


def test_third_flow_is_refused_with_the_plans_words(client_on_two_flows):
    plan_limit_check(client=client_on_two_flows, resource="flows", current_count=0)
    plan_limit_check(client=client_on_two_flows, resource="flows", current_count=1)
    with pytest.raises(PlanLimitReached) as refused:
        plan_limit_check(client=client_on_two_flows, resource="flows", current_count=2)
    assert refused.value.message == (
        'Your plan "Essentials 2" includes 2 flows; remove one or ask Northwind Advisory to upgrade.'
    )
    assert str(refused.value) == refused.value.message


def test_connection_limit_speaks_in_the_singular_when_the_plan_includes_one(client_on_two_flows):
    with pytest.raises(PlanLimitReached, match=r"includes 1 connection; remove one or ask Northwind Advisory"):
        plan_limit_check(client=client_on_two_flows, resource="connections", current_count=1)


def test_a_plan_change_takes_effect_at_once_even_for_a_client_loaded_before(client_on_two_flows, two_flow_plan):
    loaded_before = Client.objects.get(pk=client_on_two_flows.pk)
    services.plan_update(plan=two_flow_plan, values={"max_flows": 3}, actor=None)
    plan_limit_check(client=loaded_before, resource="flows", current_count=2)
    with pytest.raises(PlanLimitReached, match="includes 3 flows"):
        plan_limit_check(client=loaded_before, resource="flows", current_count=3)


def test_moving_a_client_to_a_bigger_plan_lifts_the_limit_at_once(world, client_on_two_flows):
    loaded_before = Client.objects.get(pk=client_on_two_flows.pk)
    professional = world.partners["northwind"].plans.get(name="Professional")
    services.client_plan_change(
        client=client_on_two_flows, plan=professional, actor=world.user("admin@northwind.localhost")
    )
    plan_limit_check(client=loaded_before, resource="flows", current_count=2)


def test_schedules_more_frequent_than_the_plan_allows_are_refused(client_on_two_flows):
    plan_min_interval_check(client=client_on_two_flows, interval_minutes=60)
    plan_min_interval_check(client=client_on_two_flows, interval_minutes=240)
    with pytest.raises(PlanLimitReached) as refused:
        plan_min_interval_check(client=client_on_two_flows, interval_minutes=15)
    assert refused.value.message == (
        'Your plan "Essentials 2" syncs at most every 60 minutes; choose 60 minutes or more,'
        " or ask Northwind Advisory to upgrade."
    )


def test_a_client_without_a_plan_has_no_limits(world):
    client = Client.objects.get(pk=world.clients["wingtip"].pk)
    client.plan = None
    client.save(update_fields=["plan"])
    plan_limit_check(client=client, resource="flows", current_count=500)
    plan_min_interval_check(client=client, interval_minutes=1)


def test_an_unknown_resource_is_a_programming_error(client_on_two_flows):
    with pytest.raises(ValueError, match="Unknown plan resource"):
        plan_limit_check(client=client_on_two_flows, resource="users", current_count=1)


# --- The plans pages -----------------------------------------------------------------------------

VALID_PLAN = {
    "name": "Scale",
    "monthly_price": "2490.00",
    "currency": "EUR",
    "included_records": "1000000",
    "overage_per_1000": "1.75",
    "max_connections": "30",
    "max_flows": "40",
    "min_sync_interval_minutes": "5",
    "sla_support_hours": "4",
    "sla_resolution_hours": "8",
    "sla_freshness_hours": "2",
}


def test_partner_admin_creates_a_plan_and_sees_it_listed(world):
    admin = browser_for(world.user("admin@northwind.localhost"), host=NORTHWIND)
    response = admin.post("/partner/plans/new", VALID_PLAN)
    assert response.status_code == 302
    plan = Plan.objects.get(partner=world.partners["northwind"], name="Scale")
    assert plan.monthly_price == Decimal("2490.00") and plan.currency == "EUR" and plan.max_flows == 40
    page = admin.get("/partner/plans/").content.decode()
    assert "Scale" in page and "€2,490.00" in page
    assert "Essentials" in page and "Professional" in page


def test_a_plan_bills_sandbox_records_separately_when_the_partner_says_so(world):
    admin = browser_for(world.user("admin@northwind.localhost"), host=NORTHWIND)
    form = admin.get("/partner/plans/new").content.decode()
    assert "Records synced in Sandbox" in form and "Sandbox price per 1,000 records" in form
    values = {**VALID_PLAN, "sandbox_billing": "separate", "sandbox_per_1000": "1.25"}
    assert admin.post("/partner/plans/new", values).status_code == 302
    plan = Plan.objects.get(partner=world.partners["northwind"], name="Scale")
    assert (plan.sandbox_billing, plan.sandbox_per_1000) == ("separate", Decimal("1.25"))
    refused = admin.post("/partner/plans/new", {**values, "name": "Scale 2", "sandbox_per_1000": "-1"})
    assert refused.status_code == 422 and not Plan.objects.filter(name="Scale 2").exists()


def test_a_plan_sets_the_hourly_rate_change_requests_are_quoted_at(world):
    admin = browser_for(world.user("admin@northwind.localhost"), host=NORTHWIND)
    assert "Hourly rate for change requests" in admin.get("/partner/plans/new").content.decode()
    assert admin.post("/partner/plans/new", VALID_PLAN).status_code == 302  # left out: fixed fees
    assert Plan.objects.get(partner=world.partners["northwind"], name="Scale").hourly_rate == Decimal("0.00")
    values = {**VALID_PLAN, "name": "Scale hourly", "hourly_rate": "135.50"}
    assert admin.post("/partner/plans/new", values).status_code == 302
    plan = Plan.objects.get(partner=world.partners["northwind"], name="Scale hourly")
    assert plan.hourly_rate == Decimal("135.50")
    assert "€135.50 an hour" in admin.get("/partner/plans/").content.decode()
    refused = admin.post("/partner/plans/new", {**values, "name": "Scale 3", "hourly_rate": "-1"})
    assert refused.status_code == 422 and not Plan.objects.filter(name="Scale 3").exists()


def test_a_bad_plan_form_comes_back_with_its_errors(world):
    admin = browser_for(world.user("admin@northwind.localhost"), host=NORTHWIND)
    response = admin.post(
        "/partner/plans/new", {**VALID_PLAN, "name": "essentials", "monthly_price": "-5", "sla_support_hours": "0"}
    )
    assert response.status_code == 422
    page = response.content.decode()
    assert "You already have a plan with this name." in page
    assert "A price cannot be negative." in page or "greater than or equal to 0" in page
    assert 'value="-5"' in page  # what was typed stays in the form
    assert not Plan.objects.filter(partner=world.partners["northwind"], monthly_price=Decimal("-5")).exists()


def test_htmx_plan_form_with_errors_answers_only_the_form(world):
    admin = browser_for(world.user("admin@northwind.localhost"), host=NORTHWIND)
    response = admin.post("/partner/plans/new", {**VALID_PLAN, "name": ""}, HTTP_HX_REQUEST="true")
    page = response.content.decode()
    assert response.status_code == 200  # htmx 2 swaps no 4xx; the partial carries the errors
    assert page.lstrip().startswith('<form id="plan-form"') and "<html" not in page


def test_htmx_plan_form_that_succeeds_redirects_the_whole_page(world):
    admin = browser_for(world.user("admin@northwind.localhost"), host=NORTHWIND)
    response = admin.post("/partner/plans/new", VALID_PLAN, HTTP_HX_REQUEST="true")
    assert response.status_code == 204
    assert response["HX-Redirect"] == "/partner/plans/"


def test_editing_a_plan_changes_the_limits_clients_live_under(world):
    admin = browser_for(world.user("admin@northwind.localhost"), host=NORTHWIND)
    professional = world.partners["northwind"].plans.get(name="Professional")
    values = {**VALID_PLAN, "name": "Professional", "max_flows": "2"}
    assert admin.post(f"/partner/plans/{professional.pk}/", values).status_code == 302
    with pytest.raises(PlanLimitReached, match='"Professional" includes 2 flows'):
        plan_limit_check(client=world.clients["contoso"], resource="flows", current_count=2)


def test_a_plan_clients_are_on_cannot_be_deleted(world):
    admin = browser_for(world.user("admin@northwind.localhost"), host=NORTHWIND)
    professional = world.partners["northwind"].plans.get(name="Professional")
    response = admin.post(f"/partner/plans/{professional.pk}/delete", follow=True)
    assert Plan.objects.filter(pk=professional.pk).exists()
    assert "move them to another plan before deleting it" in response.content.decode()


def test_an_unused_plan_is_deleted(world, two_flow_plan):
    admin = browser_for(world.user("admin@northwind.localhost"), host=NORTHWIND)
    assert admin.post(f"/partner/plans/{two_flow_plan.pk}/delete").status_code == 302
    assert not Plan.objects.filter(pk=two_flow_plan.pk).exists()


def test_staff_and_other_partners_cannot_touch_plans(world):
    engineer = browser_for(world.user("engineer@northwind.localhost"), host=NORTHWIND)
    assert engineer.get("/partner/plans/").status_code == 403
    assert engineer.post("/partner/plans/new", VALID_PLAN).status_code == 403
    summit_plan = world.partners["summit"].plans.first()
    summit_admin = browser_for(world.user("admin@summit.localhost"), host=SUMMIT)
    northwind_plan = world.partners["northwind"].plans.first()
    assert summit_admin.get(f"/partner/plans/{northwind_plan.pk}/").status_code == 404
    assert summit_admin.post(f"/partner/plans/{northwind_plan.pk}/delete").status_code == 404
    assert summit_admin.get(f"/partner/plans/{summit_plan.pk}/").status_code == 200
