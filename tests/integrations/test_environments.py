"""Sandbox and Production in one workspace: a flow built and run in Sandbox against one set of systems is
promoted and runs in Production against another, over real HTTP; the diff says exactly what changes."""

from __future__ import annotations

import importlib
from decimal import Decimal

import pytest
from django.db.models import Count
from django.utils import timezone

from connectors.base import OutboundRecord
from connectors.sandbox.firm import Firm
from connectors.sandbox.server import serve_in_thread
from integrations.models import AuditEvent, Environment, ExternalRef, Flow, SyncRun, TimeEntry
from integrations.selectors.dashboards import time_entries_latest
from integrations.selectors.workspace import usage_for_month
from integrations.services.configuration import flow_schedule_set, mapping_rule_update
from integrations.services.connections import connection_create, connector_for
from integrations.services.environments import PromotionRefused, flow_promote, promotion_preview
from integrations.services.flows import FlowConfigurationError, flow_create, flow_step_add, template_install
from tests.integrations.conftest import TEST_FIRM
from tests.integrations.test_approved_time import run_to_end
from tests.integrations.test_flow_build import companies_to_customers, rule
from tests.integrations.workspace_views import cold_cache  # noqa: F401 -- fixtures
from tests.support import vendor_sandboxes

pytestmark = pytest.mark.django_db


@pytest.fixture
def test_systems(systems, settings):
    """A second HubSpot and NetSuite, seeded like the first: the firm's test accounts, which Sandbox points at."""
    with vendor_sandboxes(("hubspot", "netsuite"), **TEST_FIRM) as started:
        settings.CONNECTOR_ALLOWED_HOSTS = [
            *settings.CONNECTOR_ALLOWED_HOSTS,
            *(f"127.0.0.1:{sandbox.port}" for sandbox in started.values()),
        ]
        yield started


def connect(vendor: str, sandbox, environment: str, name: str):
    module = importlib.import_module(f"connectors.{vendor}.sandbox")
    return connection_create(
        name=name,
        vendor=vendor,
        base_url=sandbox.url,
        credentials=dict(module.DEMO_CREDENTIALS),
        environment=environment,
    )


def build_in_sandbox(test_systems, admin) -> Flow:
    hubspot = connect("hubspot", test_systems["hubspot"], Environment.SANDBOX, "HubSpot test portal")
    netsuite = connect("netsuite", test_systems["netsuite"], Environment.SANDBOX, "NetSuite test account")
    flow = companies_to_customers(hubspot, netsuite, admin)
    step = flow.steps.get()
    for values in (
        rule("customer.name", ["name"], [{"name": "trim"}], True, "Company"),
        rule("customer.domain", ["domain"], [{"name": "trim"}, {"name": "lower"}, {"name": "default", "value": ""}]),
    ):
        from integrations.services.configuration import mapping_rule_add

        mapping_rule_add(mapping=flow.inbound_mapping, values=values, actor=admin)
    for values in (
        rule("entityId", ["key"], required=True, label="Customer id"),
        rule("companyName", ["name"], required=True, label="Company name"),
        rule("subsidiary", [], [{"name": "default", "value": {"id": "1"}}]),
    ):
        from integrations.services.configuration import mapping_rule_add

        mapping_rule_add(mapping=step.outbound_mapping, values=values, actor=admin)
    return flow


def test_a_flow_built_in_sandbox_is_promoted_and_runs_in_production_against_other_systems(
    systems, test_systems, in_workspace, world
):
    admin = world.user("admin@northwind.localhost")
    flow = build_in_sandbox(test_systems, admin)
    assert flow.environment == Environment.SANDBOX
    sandbox_netsuite = flow.steps.get().target_connection

    # Tested in Sandbox: the test NetSuite's customers are linked, nothing reaches the production systems.
    tested = run_to_end(flow)
    companies = test_systems["hubspot"].app.portal.objects["companies"]
    assert (tested.read, tested.linked, tested.failed) == (len(companies), len(companies) - 1, 1), tested.error
    assert ExternalRef.objects.filter(connection=sandbox_netsuite, entity="customer").count() == len(companies) - 1
    production_erp = systems["netsuite"].app.records["customer"]
    seeded = set(production_erp)

    # Production has no connections yet: the promotion says which system is missing and changes nothing.
    with pytest.raises(PromotionRefused, match="Production has no HubSpot connection to take the place of"):
        flow_promote(flow=flow, actor=admin)
    assert not Flow.objects.filter(environment=Environment.PRODUCTION).exists()
    assert not AuditEvent.objects.filter(action="flow.promoted").exists()

    hubspot = connect("hubspot", systems["hubspot"], Environment.PRODUCTION, "HubSpot")
    netsuite = connect("netsuite", systems["netsuite"], Environment.PRODUCTION, "NetSuite")
    other = connect("netsuite", systems["netsuite"], Environment.PRODUCTION, "NetSuite (second subsidiary)")
    # Two Production NetSuite connections: it asks which one takes the test account's place.
    with pytest.raises(PromotionRefused, match="Choose which Production NetSuite connection takes the place of"):
        flow_promote(flow=flow, actor=admin)
    preview = promotion_preview(flow=flow)
    role = next(b.role for b in preview.unbound)
    assert {c.pk for c in next(b for b in preview.bindings if b.role == role).choices} == {netsuite.pk, other.pk}

    chosen = {role: netsuite.pk}
    first = promotion_preview(flow=flow, chosen=chosen)
    main = {(c.where, c.what, c.kind) for c in first.changes if c.where.startswith("Companies to ERP customers")}
    assert main == {
        ("Companies to ERP customers: read into the workspace", "Company", "added"),
        ("Companies to ERP customers: read into the workspace", "customer.domain", "added"),
        ("Companies to ERP customers: schedule", "Runs", "added"),
        ("Companies to ERP customers: Customer in NetSuite test account", "Target", "added"),
        ("Companies to ERP customers: Customer in NetSuite test account", "Customer id", "added"),
        ("Companies to ERP customers: Customer in NetSuite test account", "Company name", "added"),
        ("Companies to ERP customers: Customer in NetSuite test account", "subsidiary", "added"),
    }
    promoted = flow_promote(flow=flow, chosen=chosen, fingerprint=first.fingerprint, actor=admin)
    production = promoted.production
    assert production.environment == Environment.PRODUCTION and production.source_connection == hubspot
    assert [(s.name, s.target_connection) for s in production.steps.all()] == [("Customer in NetSuite", netsuite)]
    assert all(p.source_connection == netsuite for p in production.prerequisites.all())
    assert production.schedule_minutes == 60
    flow.refresh_from_db()
    assert flow.promoted_to == production
    audit = AuditEvent.objects.get(action="flow.promoted")
    assert audit.actor_email == admin.email and audit.target_id == str(production.pk)
    assert len(audit.after["changes"]) == len(first.changes)
    assert audit.after["connections"][role] == {"sandbox": "NetSuite test account", "production": "NetSuite"}

    # Production runs against the production systems: a company new there is created in the production
    # NetSuite only; the test account is untouched.
    connector_for(hubspot).write(
        "companies", [OutboundRecord("new-co", {"name": "Brightwater Labs", "domain": "brightwater.example"})]
    )
    test_erp_before = dict(test_systems["netsuite"].app.records["customer"])
    live = run_to_end(production)
    assert live.status == SyncRun.Status.PARTIAL and live.created == 1, live.error
    assert [production_erp[k]["companyName"] for k in set(production_erp) - seeded] == ["Brightwater Labs"]
    assert dict(test_systems["netsuite"].app.records["customer"]) == test_erp_before
    assert ExternalRef.objects.filter(connection=netsuite, entity="customer").count() == len(companies)

    # An edit in Sandbox: the diff lists exactly the changed rule and the changed schedule.
    company = flow.steps.get().outbound_mapping.rules.get(target="companyName")
    mapping_rule_update(
        rule=company,
        values=rule("companyName", ["name"], [{"name": "trim"}, {"name": "upper"}], True, "Company name"),
        actor=admin,
    )
    flow_schedule_set(flow=flow, schedule_minutes=120, actor=admin)
    second = promotion_preview(flow=flow)
    assert [(c.where, c.what, c.kind, c.before, c.after) for c in second.changes] == [
        (
            "Companies to ERP customers: schedule",
            "Runs",
            "changed",
            "every hour",
            "every 2 h",
        ),
        (
            "Companies to ERP customers: Customer in NetSuite test account",
            "Company name",
            "changed",
            "from name, required",
            "from name, trim, upper, required",
        ),
    ]
    # A confirmation of another diff is refused: nothing changes in Production that was not shown.
    with pytest.raises(PromotionRefused, match="changed since this diff was shown"):
        flow_promote(flow=flow, fingerprint=first.fingerprint, actor=admin)
    flow_promote(flow=flow, fingerprint=second.fingerprint, actor=admin)
    production.refresh_from_db()
    assert production.schedule_minutes == 120
    written = production.steps.get().outbound_mapping.rules.get(target="companyName")
    assert written.transforms == [{"name": "trim"}, {"name": "upper"}]
    assert promotion_preview(flow=flow).changes == []
    with pytest.raises(PromotionRefused, match="nothing to promote"):
        flow_promote(flow=flow, actor=admin)
    assert AuditEvent.objects.filter(action="flow.promoted").count() == 2

    # Usage: the Sandbox run is counted apart from Production's.
    usage = usage_for_month(timezone.localdate())
    assert usage["sandbox_runs"] >= 1 and usage["runs"] >= 2


def test_a_sandbox_flow_cannot_write_to_a_production_connection(systems, test_systems, in_workspace, world):
    admin = world.user("admin@northwind.localhost")
    flow = build_in_sandbox(test_systems, admin)
    production = connect("netsuite", systems["netsuite"], Environment.PRODUCTION, "NetSuite")
    with pytest.raises(FlowConfigurationError, match="is a Production connection and this flow runs in Sandbox"):
        flow_step_add(flow=flow, target_connection=production, target_object="customer", entity="customer")
    with pytest.raises(FlowConfigurationError, match="Production connection"):
        flow_create(
            name="Mixed",
            source_connection=flow.source_connection,
            source_object="companies",
            entity="customer",
            target_connection=production,
            target_object="customer",
        )
    with pytest.raises(FlowConfigurationError, match="flows are promoted from Sandbox"):
        promotion_preview(
            flow=Flow.objects.create(
                name="Prod",
                source_connection=production,
                source_object="customer",
                entity="customer",
                inbound_mapping=flow.inbound_mapping,
            )
        )


# --- The promotion page: who may promote, and what it shows -------------------------------------------


def sandbox_flow_unreachable(admin) -> Flow:
    """A Sandbox flow with rules, on connections nobody calls: the promotion page never reaches a system."""
    from integrations.services.configuration import mapping_rule_add
    from tests.integrations.workspace_fixtures import UNREACHABLE, demo_credentials

    def make(vendor, name, environment):
        return connection_create(
            name=name,
            vendor=vendor,
            base_url=UNREACHABLE,
            credentials=demo_credentials(vendor),
            environment=environment,
        )

    hubspot = make("hubspot", "HubSpot test portal", Environment.SANDBOX)
    netsuite = make("netsuite", "NetSuite test account", Environment.SANDBOX)
    make("hubspot", "HubSpot", Environment.PRODUCTION)
    make("netsuite", "NetSuite", Environment.PRODUCTION)
    flow = companies_to_customers(hubspot, netsuite, admin, name="Companies to ERP customers (test)")
    mapping_rule_add(mapping=flow.inbound_mapping, values=rule("customer.name", ["name"], [], True, "Company"))
    mapping_rule_add(mapping=flow.steps.get().outbound_mapping, values=rule("companyName", ["name"], [], True))
    return flow


@pytest.mark.parametrize(
    ("email", "may"),
    [
        ("admin@contoso.localhost", True),
        ("engineer@northwind.localhost", True),
        ("admin@northwind.localhost", True),
        ("finance@contoso.localhost", False),
        ("viewer@contoso.localhost", False),
    ],
)
def test_client_admins_and_partner_staff_promote_finance_and_viewers_may_not(world, email, may):
    from django.db import connection

    from tests.support import NORTHWIND, browser_for

    contoso = world.clients["contoso"]
    connection.set_tenant(contoso)
    flow = sandbox_flow_unreachable(world.user("admin@contoso.localhost"))
    connection.set_schema_to_public()
    browser = browser_for(world.user(email), host=NORTHWIND)
    path = f"/c/contoso/flows/{flow.pk}/promote"
    page = browser.get(path)
    assert page.status_code == (200 if may else 403)
    if may:
        html = page.content.decode()
        assert "Promote “Companies to ERP customers (test)” to Production" in html
        changes = page.context["preview"].changes
        assert html.count('data-testid="diff-row"') == len(changes)
        main = [(c.where, c.what, c.kind) for c in changes if c.where.startswith(flow.name)]
        assert main == [
            (f"{flow.name}: read into the workspace", "Company", "added"),
            (f"{flow.name}: schedule", "Runs", "added"),
            (f"{flow.name}: Customer in NetSuite test account", "Target", "added"),
            (f"{flow.name}: Customer in NetSuite test account", "companyName", "added"),
        ]
        # The reference flow reading the ERP's customers (to link before creating) comes along too.
        assert {c.where for c in changes} - {where for where, _, _ in main}
    fingerprint = page.context["preview"].fingerprint if may else ""
    answer = browser.post(path, {"fingerprint": fingerprint})
    connection.set_tenant(contoso)
    promoted = Flow.objects.filter(environment=Environment.PRODUCTION, name=flow.name)
    audited = AuditEvent.objects.filter(action="flow.promoted")
    if may:
        assert answer.status_code == 302 and promoted.count() == 1 and audited.get().actor_email == email
    else:
        assert answer.status_code == 403 and not promoted.exists() and not audited.exists()
    connection.set_schema_to_public()


def test_another_clients_sandbox_flow_is_not_found_from_this_workspace(world):
    from django.db import connection

    from tests.support import NORTHWIND, browser_for

    connection.set_tenant(world.clients["wingtip"])
    flow = sandbox_flow_unreachable(world.user("admin@northwind.localhost"))
    connection.set_schema_to_public()
    # Contoso's admin asks for Wingtip's flow id under Contoso: Contoso's schema has no such flow.
    browser = browser_for(world.user("admin@contoso.localhost"), host=NORTHWIND)
    assert browser.get(f"/c/contoso/flows/{flow.pk}/promote").status_code == 404
    assert browser.get(f"/c/wingtip/flows/{flow.pk}/promote").status_code in (403, 404)


def test_a_connection_added_in_sandbox_is_marked_and_has_its_own_plan_allowance(world):
    from django.db import connection

    from integrations.models import Connection
    from tenants.models import Plan
    from tests.support import NORTHWIND, browser_for

    contoso = world.clients["contoso"]
    connection.set_tenant(contoso)
    connection_create(name="HubSpot", vendor="hubspot", base_url="https://api.hubapi.com", credentials={})
    production = Connection.objects.filter(environment=Environment.PRODUCTION).count()
    connection.set_schema_to_public()
    # Production is full; Sandbox mirrors it, so it has the same allowance of its own.
    Plan.objects.filter(pk=contoso.plan_id).update(max_connections=production)
    admin = browser_for(world.user("admin@contoso.localhost"), host=NORTHWIND)
    form = {"name": "HubSpot test portal", "base_url": "https://api.hubapi.com", "cred_access_token": "pat-na1-x"}
    refused = admin.post("/c/contoso/connections/new/hubspot", {**form, "environment": "production"})
    assert refused.status_code == 422
    assert admin.post("/c/contoso/connections/new/hubspot", {**form, "environment": "sandbox"}).status_code == 302
    connection.set_tenant(contoso)
    (added,) = Connection.objects.filter(name="HubSpot test portal")
    assert added.environment == Environment.SANDBOX
    assert (
        AuditEvent.objects.get(action="connection.created", target_id=str(added.pk)).after["environment"] == "sandbox"
    )
    connection.set_schema_to_public()
    listed = admin.get("/c/contoso/connections/").content.decode()
    assert listed.count('class="badge badge-sandbox"') == 1


def test_the_promotion_page_asks_for_the_production_connection_it_lacks_and_changes_nothing(world):
    from django.db import connection

    from integrations.models import Connection
    from tests.support import NORTHWIND, browser_for

    contoso = world.clients["contoso"]
    connection.set_tenant(contoso)
    flow = sandbox_flow_unreachable(world.user("admin@contoso.localhost"))
    Connection.objects.filter(environment=Environment.PRODUCTION, vendor="netsuite").delete()
    connection.set_schema_to_public()
    admin = browser_for(world.user("admin@contoso.localhost"), host=NORTHWIND)
    path = f"/c/contoso/flows/{flow.pk}/promote"
    page = admin.get(path)
    assert page.status_code == 200
    assert 'data-testid="missing-production"' in page.content.decode()
    answer = admin.post(path, {"fingerprint": page.context["preview"].fingerprint})
    assert answer.status_code == 422
    assert "Production has no NetSuite connection to take the place of “NetSuite test account”" in (
        answer.content.decode().replace("&ldquo;", "“").replace("&rdquo;", "”")
    )
    connection.set_tenant(contoso)
    assert not Flow.objects.filter(environment=Environment.PRODUCTION, name=flow.name).exists()
    assert not AuditEvent.objects.filter(action="flow.promoted").exists()
    connection.set_schema_to_public()


def invoice_totals(netsuite) -> dict[str, Decimal]:
    """What each invoice the portal wrote to a NetSuite sandbox bills, by its number (the memo it writes; the
    firm's history of invoices, INV..., left out)."""
    totals = {}
    for record in netsuite.app.records["invoice"].values():
        if record.get("externalId") and not record["externalId"].startswith("INV"):
            lines = record["item"]["items"] if isinstance(record["item"], dict) else record["item"]
            assert record["memo"] not in totals, f"invoice {record['memo']} twice"
            totals[record["memo"]] = sum(Decimal(str(line["amount"])) for line in lines)
    return totals


def test_time_approved_in_the_test_psa_is_billed_in_the_test_erp_only(systems, in_workspace, world, settings):
    """The firm's test accounts hold the same projects and time as its live ones. Time read in Sandbox is booked
    in Sandbox: its invoices go to the test ERP, Production's invoices bill Production's time once, and the
    dashboards read Production's time only, whichever environment runs first and however often."""
    admin = world.user("admin@northwind.localhost")
    test_accounts = {}
    for vendor in ("kantata", "netsuite"):
        module = importlib.import_module(f"connectors.{vendor}.sandbox")
        test_accounts[vendor] = serve_in_thread(module.create_app(Firm(**TEST_FIRM)))
    settings.CONNECTOR_ALLOWED_HOSTS = [
        *settings.CONNECTOR_ALLOWED_HOSTS,
        *(f"127.0.0.1:{sandbox.port}" for sandbox in test_accounts.values()),
    ]
    try:
        psa = connect("kantata", test_accounts["kantata"], Environment.SANDBOX, "Kantata test account")
        erp = connect("netsuite", test_accounts["netsuite"], Environment.SANDBOX, "NetSuite test account")
        flows = template_install(key="approved-time-to-invoice", connections={"psa": psa, "erp": erp})
        tested = next(f for f in flows if f.template_key.endswith("/approved-time"))
        assert tested.environment == Environment.SANDBOX
        run_to_end(tested)
        test_erp = invoice_totals(test_accounts["netsuite"])
        assert test_erp and not invoice_totals(systems["netsuite"])  # nothing reached the live ERP

        connect("kantata", systems["kantata"], Environment.PRODUCTION, "Kantata")
        connect("netsuite", systems["netsuite"], Environment.PRODUCTION, "NetSuite")
        preview = promotion_preview(flow=tested)
        live = flow_promote(flow=tested, fingerprint=preview.fingerprint, actor=admin).production
        run_to_end(live)
        # Same firm, same time: the live ERP bills exactly what the test ERP does, not the two added up.
        assert invoice_totals(systems["netsuite"]) == test_erp
        assert invoice_totals(test_accounts["netsuite"]) == test_erp

        run_to_end(tested)  # Sandbox again, after Production: neither ERP changes
        assert invoice_totals(systems["netsuite"]) == invoice_totals(test_accounts["netsuite"]) == test_erp
        booked = TimeEntry.objects.values("environment").annotate(n=Count("id"))
        assert {row["environment"]: row["n"] for row in booked} == {
            Environment.SANDBOX: TimeEntry.objects.filter(environment=Environment.PRODUCTION).count(),
            Environment.PRODUCTION: TimeEntry.objects.filter(environment=Environment.SANDBOX).count(),
        }
        assert time_entries_latest() == TimeEntry.objects.filter(environment=Environment.PRODUCTION).latest("date").date
    finally:
        for sandbox in test_accounts.values():
            sandbox.stop()
