"""Partner-scope resources through the API: clients, their keys, plans, template deployments, usage, statements."""

import pytest
from django.core import mail
from django.db import connection
from django_tenants.utils import schema_exists, tenant_context

from tenants.models import Client
from tests.api.conftest import Api
from tests.integrations.workspace_fixtures import seed_workspace

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(northwind_key):
    return Api(northwind_key.secret)


def test_a_partner_creates_a_client_and_its_admin_is_invited(world, api, django_capture_on_commit_callbacks):
    from integrations.models import AuditEvent

    plan = world.partners["northwind"].plans.get(name="Essentials")
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        created = api.post(
            "/clients", {"name": "Fourth Coffee", "plan_id": plan.pk, "admin_email": "ana@fourthcoffee.example"}
        )
    assert created.status_code == 201, created.content
    assert created.json()["slug"] == "fourth-coffee" and created["Location"] == "/api/v1/clients/fourth-coffee"
    client = Client.objects.get(partner=world.partners["northwind"], slug="fourth-coffee")
    assert schema_exists(client.schema_name) and client.plan == plan
    assert [m.to for m in mail.outbox] == [["ana@fourthcoffee.example"]]
    with tenant_context(client):
        assert AuditEvent.objects.filter(action="workspace.created", actor_email="admin@northwind.localhost").exists()
        assert AuditEvent.objects.filter(action="api.clients.create", target_id="fourth-coffee").exists()


def test_a_bad_client_is_refused_with_the_forms_reasons(world, api):
    summit_plan = world.partners["summit"].plans.first()
    refused = api.post(
        "/clients", {"name": "Contoso Again", "slug": "contoso", "plan_id": summit_plan.pk, "admin_email": "nope"}
    )
    assert refused.status_code == 422 and refused["Content-Type"] == "application/problem+json"
    errors = refused.json()["errors"]
    assert {"slug", "plan_id", "admin_email"} <= set(errors)


def test_suspend_resume_and_a_plan_change_refused_on_a_stale_etag(world, api):
    read = api.get("/clients/tailspin")
    assert read.status_code == 200 and read.json()["status"] == "active"
    assert api.post("/clients/tailspin/suspend").json()["status"] == "suspended"
    assert api.post("/clients/tailspin/resume").json()["status"] == "active"
    other = world.partners["northwind"].plans.exclude(pk=read.json()["plan_id"]).first()
    assert api.patch("/clients/tailspin", {"plan_id": other.pk}, **{"If-Match": '"stale"'}).status_code == 412
    changed = api.patch("/clients/tailspin", {"plan_id": other.pk}, **{"If-Match": read["ETag"]})
    assert changed.status_code == 200 and changed.json()["plan_id"] == other.pk
    foreign_plan = world.partners["summit"].plans.first()
    refused = api.patch("/clients/tailspin", {"plan_id": foreign_plan.pk}, **{"If-Match": changed["ETag"]})
    assert refused.status_code == 422


def test_a_partner_creates_a_client_key_shown_once(world, api):
    issued = api.post("/clients/contoso/keys", {"name": "Service desk", "scopes": ["exceptions:write"]})
    assert issued.status_code == 201 and issued.json()["key"].startswith("ck_")
    assert Api(issued.json()["key"]).get("/clients/contoso/exceptions").status_code == 200
    listed = api.get("/clients/contoso/keys").json()
    assert issued.json()["prefix"] in [k["prefix"] for k in listed] and "key" not in listed[0]
    refused = api.post("/clients/contoso/keys", {"name": "Too much", "scopes": ["clients:write"]})
    assert refused.status_code == 422


def test_plans_usage_and_statements(world, api):
    plans = api.get("/plans").json()
    assert {p["name"] for p in plans} == set(world.partners["northwind"].plans.values_list("name", flat=True))
    assert api.get(f"/plans/{plans[0]['id']}").json()["name"] == plans[0]["name"]
    assert api.get(f"/plans/{world.partners['summit'].plans.first().pk}").status_code == 404
    usage = api.get("/clients/contoso/usage", months=2).json()
    assert usage["client"] == "contoso" and 1 <= len(usage["months"]) <= 2
    statements = api.get("/statements").json()
    assert {s["client"] for s in statements} >= {"contoso", "tailspin"} and "fabrikam" not in {
        s["client"] for s in statements
    }
    assert api.get("/statements", month="2026-13").status_code == 422


def test_a_template_is_offered_to_a_client_who_installs_it(world, api):
    from integrations.partner_templates.services import template_version_save

    contoso = world.clients["contoso"]
    connection.set_tenant(contoso)
    seeded = seed_workspace()
    connection.set_schema_to_public()
    version = template_version_save(
        partner=world.partners["northwind"],
        client=contoso,
        flow_id=seeded.flow.pk,
        actor=world.user("admin@northwind.localhost"),
        name="Time to invoices",
    )
    templates = api.get("/templates").json()
    assert [t["name"] for t in templates] == ["Time to invoices"] and templates[0]["latest_version"] == 1
    deployed = api.post(f"/templates/{version.template_id}/deployments", {"client": "tailspin"})
    assert deployed.status_code == 201 and deployed.json()["version"] == 1
    assert api.post(f"/templates/{version.template_id}/deployments", {"client": "fabrikam"}).status_code == 404
    assert [d["client"] for d in api.get(f"/templates/{version.template_id}/deployments").json()] == ["tailspin"]
    offered = api.get("/clients/tailspin/templates").json()
    assert deployed.json()["install_key"] in [t["key"] for t in offered]


def test_a_plan_read_through_the_api_says_which_systems_it_includes(world, api):
    from tenants.models import Plan

    essentials = world.partners["northwind"].plans.get(name="Essentials")
    Plan.objects.filter(pk=essentials.pk).update(included_systems={"netsuite": 2, "salesforce": 1})
    read = api.get(f"/plans/{essentials.pk}")
    assert read.status_code == 200 and read.json()["included_systems"] == {"netsuite": 2, "salesforce": 1}
    others = [plan for plan in api.get("/plans").json() if plan["id"] != essentials.pk]
    assert others and all(plan["included_systems"] == {} for plan in others)  # every system, as before
