"""Flows built by hand: the service's checks, the build page and "Add a target", and a hand-built
flow run end to end over the sandboxes (HubSpot companies -> canonical customers -> NetSuite)."""

from __future__ import annotations

import logging

import pytest
from django.db import OperationalError, connection

from connectors.base import OutboundRecord
from integrations.engine.views import record_key
from integrations.models import AuditEvent, Customer, ExternalRef, Flow, FlowStep, MappingRule, SyncRun
from integrations.services.configuration import mapping_rule_add
from integrations.services.connections import connection_create, connector_for
from integrations.services.flows import FlowConfigurationError, flow_create
from integrations.services.runs import SyncNotAllowed, flow_steps_unmapped, run_start
from tenants.plans import PlanLimitReached
from tests.integrations.conftest import lock_held_elsewhere, make_connection
from tests.integrations.test_approved_time import run_to_end
from tests.integrations.workspace_fixtures import UNREACHABLE, demo_credentials
from tests.integrations.workspace_views import HTMX, admin, cold_cache, within  # noqa: F401 -- fixtures

pytestmark = pytest.mark.django_db


def companies_to_customers(hubspot, netsuite, admin, *, name: str = "Companies to ERP customers"):
    """The hand-built flow these tests build: HubSpot companies to canonical customers to NetSuite customers, hourly."""
    return flow_create(
        name=name,
        source_connection=hubspot,
        source_object="companies",
        entity="customer",
        target_connection=netsuite,
        target_object="customer",
        schedule_minutes=60,
        actor=admin,
    )


def rule(target, sources, transforms=(), required=False, label=""):
    return {
        "target": target,
        "sources": list(sources),
        "transforms": list(transforms),
        "required": required,
        "label": label,
    }


# --- The engine runs a hand-built flow ------------------------------------------------------------


def test_a_hand_built_flow_reads_maps_and_writes_end_to_end(allow_sandboxes, in_workspace, world):
    allow_sandboxes["netsuite"].reset()
    admin = world.user("admin@northwind.localhost")
    hubspot = make_connection("hubspot", allow_sandboxes["hubspot"])
    netsuite = make_connection("netsuite", allow_sandboxes["netsuite"])
    flow = companies_to_customers(hubspot, netsuite, admin)
    step = flow.steps.get()
    assert (step.target_object, step.entity, step.action) == ("customer", "customer", FlowStep.Action.WRITE)
    assert not flow.inbound_mapping.rules.exists() and not step.outbound_mapping.rules.exists()
    created = AuditEvent.objects.get(action="flow.created", target_id=str(flow.pk))
    assert created.actor_email == admin.email and "Hubspot companies → Customer → Netsuite customer" in created.summary

    # Nothing to run until fields are mapped: a run would write empty records.
    with pytest.raises(SyncNotAllowed, match="maps no fields yet"):
        run_start(flow=flow, trigger="manual")

    mapping_rule_add(
        mapping=flow.inbound_mapping,
        values=rule("customer.name", ["name"], [{"name": "trim"}], True, "Company"),
        actor=admin,
    )
    mapping_rule_add(
        mapping=flow.inbound_mapping,
        values=rule(
            "customer.domain", ["domain"], [{"name": "trim"}, {"name": "lower"}, {"name": "default", "value": ""}]
        ),
        actor=admin,
    )
    assert flow_steps_unmapped(flow) == [step]  # runs would skip the target until its mapping has rules
    for values in (
        rule("entityId", ["key"], required=True, label="Customer id"),
        rule("companyName", ["name"], required=True, label="Company name"),
        rule("subsidiary", [], [{"name": "default", "value": {"id": "1"}}]),
    ):
        mapping_rule_add(mapping=step.outbound_mapping, values=values, actor=admin)

    erp = allow_sandboxes["netsuite"].app.records["customer"]
    seeded = set(erp)
    run = run_to_end(flow)
    # The ERP holds the firm's customers already: the flow read them first (a reference flow came with the
    # target) and linked every one; the customer the CRM holds twice is one exception, nothing is created.
    companies = allow_sandboxes["hubspot"].app.portal.objects["companies"]
    assert flow.prerequisites.filter(source_connection=netsuite, source_object="customer").exists()
    assert run.status == SyncRun.Status.PARTIAL, run.error
    assert (run.read, run.linked, run.created, run.failed) == (len(companies), len(companies) - 1, 0, 1)
    (twice,) = flow.exceptions.filter(status="open")
    assert twice.error_code == "DUPLICATE_IN_SOURCE" and twice.subject.endswith("Ltd.")
    assert set(erp) == seeded
    for customer in Customer.objects.filter(external_refs_of_hubspot(hubspot)):
        ref = ExternalRef.objects.get(connection=netsuite, entity="customer", record_id=customer.pk)
        assert erp[int(ref.external_id)]["companyName"] == customer.name

    # A company the ERP has never seen is created there once, under our key.
    crm = connector_for(hubspot)
    crm.write("companies", [OutboundRecord("new-co", {"name": "Brightwater Labs", "domain": "brightwater.example"})])
    created = run_to_end(flow)
    assert created.created == 1
    (new,) = [record for key, record in erp.items() if key not in seeded]
    customer = Customer.objects.get(name="Brightwater Labs")
    assert new["companyName"] == "Brightwater Labs" and new["entityId"] == record_key("customer", customer.pk)

    again = run_to_end(flow)  # idempotent: the next run creates nothing, here or in the ERP
    assert again.created == 0
    assert len(erp) == len(seeded) + 1


def external_refs_of_hubspot(hubspot):
    from django.db.models import Q

    linked = ExternalRef.objects.filter(connection=hubspot, entity="customer").values_list("record_id", flat=True)
    return Q(pk__in=list(linked))


def test_flow_create_refuses_what_cannot_work(allow_sandboxes, in_workspace):
    hubspot = make_connection("hubspot", allow_sandboxes["hubspot"])
    kantata = make_connection("kantata", allow_sandboxes["kantata"])
    base = {"name": "Deals", "source_connection": hubspot, "source_object": "deals", "entity": "opportunity"}
    cases = [
        ({"source_object": "tickets"}, "HubSpot cannot read “tickets”; it can read companies, deals."),
        ({"entity": "spaceship"}, "Choose what the records become"),
        (
            {"target_connection": kantata, "target_object": "invoices"},
            "Kantata OX cannot write “invoices”; it can write projects, resources,",
        ),
        ({"trigger": "schedule"}, "Choose how often it runs"),
        (
            {"source_connection": kantata, "source_object": "users", "trigger": "webhook", "schedule_minutes": 60},
            "Kantata OX sends no webhooks",
        ),
        ({"schedule_minutes": 15}, "syncs at most every 60 minutes"),  # Wingtip is on Essentials
        ({"name": "  "}, "Name the flow."),
    ]
    for change, message in cases:
        with pytest.raises(FlowConfigurationError) as refused:
            flow_create(**{**base, **change})
        assert message in str(refused.value), change
    flow = flow_create(**base, trigger="webhook", schedule_minutes=60)  # HubSpot signs its webhooks
    assert flow.trigger == "webhook" and flow.schedule_minutes == 60
    with pytest.raises(FlowConfigurationError, match="already exists"):
        flow_create(**{**base, "name": "deals"})
    manual = flow_create(**{**base, "name": "By hand", "schedule_minutes": 120, "trigger": "manual"})
    assert manual.schedule_minutes is None and manual.trigger == "manual"


def test_flow_create_stops_at_the_plans_flow_limit(allow_sandboxes, in_workspace):
    hubspot = make_connection("hubspot", allow_sandboxes["hubspot"])
    limit = in_workspace.plan.max_flows
    for index in range(limit):
        flow_create(name=f"Flow {index}", source_connection=hubspot, source_object="deals", entity="opportunity")
    with pytest.raises(PlanLimitReached, match=f"includes {limit} flows"):
        flow_create(name="One too many", source_connection=hubspot, source_object="deals", entity="opportunity")
    assert Flow.objects.count() == limit


def test_hand_built_flows_count_when_a_template_is_installed(allow_sandboxes, in_workspace):
    from integrations.services.flows import template_install

    hubspot = make_connection("hubspot", allow_sandboxes["hubspot"])
    psa = make_connection("kantata", allow_sandboxes["kantata"])
    erp = make_connection("netsuite", allow_sandboxes["netsuite"])
    limit = in_workspace.plan.max_flows
    for index in range(limit - 1):  # the packaged template brings two flows that write
        flow_create(name=f"Flow {index}", source_connection=hubspot, source_object="deals", entity="opportunity")
    with pytest.raises(PlanLimitReached, match=f"includes {limit} flows"):
        template_install(key="approved-time-to-invoice", connections={"psa": psa, "erp": erp})
    assert Flow.objects.count() == limit - 1


def test_a_target_on_a_templates_reference_flow_counts_against_the_plan(allow_sandboxes, in_workspace):
    from integrations.selectors.workspace import flows_counted_by_plan
    from integrations.services.flows import flow_step_add, template_install
    from tenants.models import Plan

    psa = make_connection("kantata", allow_sandboxes["kantata"])
    erp = make_connection("netsuite", allow_sandboxes["netsuite"])
    flows = template_install(key="approved-time-to-invoice", connections={"psa": psa, "erp": erp})
    reference = next(f for f in flows if f.template_key.endswith("/erp-customers"))
    assert not reference.steps.exists()  # free while it only reads
    Plan.objects.filter(pk=in_workspace.plan_id).update(max_flows=flows_counted_by_plan())
    with pytest.raises(PlanLimitReached, match="includes"):
        flow_step_add(flow=reference, target_connection=psa, target_object="workspaces", entity="project")
    assert not reference.steps.exists()
    # A flow the plan already counts takes another target at the limit: it is still one flow.
    counted = next(f for f in flows if f.template_key.endswith("/approved-time"))
    flow_step_add(flow=counted, target_connection=erp, target_object="job", entity="project")
    Plan.objects.filter(pk=in_workspace.plan_id).update(max_flows=flows_counted_by_plan() + 1)
    hand_built = flow_create(name="Projects", source_connection=psa, source_object="workspaces", entity="project")
    flow_step_add(flow=hand_built, target_connection=erp, target_object="job")


@pytest.mark.parametrize("service", ["flow_create", "flow_step_add", "template_install"])
def test_counting_flows_and_creating_one_waits_for_the_workspace_lock(allow_sandboxes, in_workspace, service):
    """Two saves at once must not both count room for one more flow: each takes the same lock first."""
    from integrations.models import Mapping
    from integrations.services.flows import flow_step_add, template_install

    psa = make_connection("kantata", allow_sandboxes["kantata"])
    erp = make_connection("netsuite", allow_sandboxes["netsuite"])
    hr = make_connection("bamboohr", allow_sandboxes["bamboohr"])
    reference = Flow.objects.create(  # as a template installs a reference flow (no steps), without its lock
        name="Projects from the ERP",
        template_key="approved-time-to-invoice/erp-projects",
        source_connection=erp,
        source_object="job",
        entity="project",
        inbound_mapping=Mapping.objects.create(name="Projects"),
    )
    attempt = {
        "flow_create": lambda: flow_create(
            name="Projects", source_connection=psa, source_object="workspaces", entity="project"
        ),
        "flow_step_add": lambda: flow_step_add(
            flow=reference, target_connection=psa, target_object="workspaces", entity="project"
        ),
        "template_install": lambda: template_install(
            key="employee-to-resource", connections={"hr": hr, "psa": psa, "erp": erp}
        ),
    }[service]
    before = Flow.objects.count(), FlowStep.objects.count()
    with lock_held_elsewhere("flows"), pytest.raises(OperationalError, match="lock timeout"):
        attempt()
    assert (Flow.objects.count(), FlowStep.objects.count()) == before
    attempt()  # and once the other save is done, it goes ahead


def test_a_scheduled_run_that_cannot_start_is_recorded_on_the_flow_and_logged(allow_sandboxes, in_workspace, caplog):
    from integrations.tasks import flow_scheduled

    hubspot = make_connection("hubspot", allow_sandboxes["hubspot"])
    flow = flow_create(
        name="Deals", source_connection=hubspot, source_object="deals", entity="opportunity", schedule_minutes=60
    )
    with caplog.at_level(logging.WARNING, logger="integrations.runs"):
        assert flow_scheduled(flow.pk) is None  # its inbound mapping has no rules yet
    run = flow.runs.get()
    assert (run.status, run.trigger) == (SyncRun.Status.FAILED, "schedule")
    assert run.error == "Did not start: “Deals” maps no fields yet: add rules in its mapping, then run it."
    assert run.started_at and run.finished_at
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "maps no fields yet" in r.getMessage()]
    assert len(warnings) == 1
    from django.utils import timezone

    from integrations.selectors.workspace import usage_for_month

    assert usage_for_month(timezone.localdate())["runs"] == 0  # in the history, not billed as a run


# --- The build page and "Add a target" ------------------------------------------------------------


@pytest.fixture
def contoso_connections(world):
    connection.set_tenant(world.clients["contoso"])
    made = {
        vendor: connection_create(
            name=f"{vendor.title()} test", vendor=vendor, base_url=UNREACHABLE, credentials=demo_credentials(vendor)
        )
        for vendor in ("hubspot", "netsuite")
    }
    connection.set_schema_to_public()
    return made


def test_the_build_page_offers_each_connections_objects(admin, contoso_connections):
    page = admin.get("/c/contoso/flows/new").content.decode()
    hubspot, netsuite = contoso_connections["hubspot"], contoso_connections["netsuite"]
    assert f'value="{hubspot.pk}:companies"' in page and f'value="{hubspot.pk}:deals"' in page
    assert f'value="{netsuite.pk}:invoice"' in page
    assert '<option value="time_entry">Time entry</option>' in page
    assert "Build a flow" in admin.get("/c/contoso/flows/").content.decode()


def test_building_a_flow_leads_to_its_page_and_mapping(admin, world, contoso_connections):
    hubspot, netsuite = contoso_connections["hubspot"], contoso_connections["netsuite"]
    response = admin.post(
        "/c/contoso/flows/new",
        {
            "name": "Won deals <b>now</b>",
            "source": f"{hubspot.pk}:deals",
            "entity": "opportunity",
            "target": f"{netsuite.pk}:job",
            "trigger": "schedule",
            "schedule_minutes": "60",
        },
    )
    assert response.status_code == 302
    flow = within(world, lambda: Flow.objects.select_related("inbound_mapping").get(name="Won deals <b>now</b>"))
    assert response["Location"] == f"/c/contoso/flows/{flow.pk}/"
    page = admin.get(response["Location"]).content.decode()
    assert "Won deals &lt;b&gt;now&lt;/b&gt;" in page and "<b>now</b>" not in page
    assert 'data-testid="flow-unmapped"' in page and "maps no fields yet" in page
    assert f"/c/contoso/mappings/{flow.inbound_mapping_id}/" in page
    assert "Opportunity in Netsuite test" in page
    # The mapping editor takes over from here, and its first rule is the flow's first field.
    editor = admin.get(f"/c/contoso/mappings/{flow.inbound_mapping_id}/")
    assert editor.status_code == 200
    added = admin.post(
        f"/c/contoso/mappings/{flow.inbound_mapping_id}/rules/add",
        {"target": "opportunity.name", "sources": "dealname", "t0_name": "trim", "label": "Deal"},
    )
    assert added.status_code in (200, 204, 302), added.content.decode()[:500]
    assert within(
        world,
        lambda: list(MappingRule.objects.filter(mapping=flow.inbound_mapping_id).values_list("target", flat=True)),
    ) == ["opportunity.name"]
    # The target's mapping is still empty: the run goes ahead without it, and the page says so.
    run = admin.post(f"/c/contoso/flows/{flow.pk}/run", follow=True).content.decode()
    assert 'data-status="queued"' in run
    assert "Skipped “Opportunity in Netsuite test”: it maps no fields yet" in run
    assert (
        within(
            world,
            lambda: AuditEvent.objects.filter(action="flow.created", actor_email="admin@contoso.localhost").count(),
        )
        == 1
    )


def test_a_build_form_with_mistakes_comes_back_with_them(admin, world, contoso_connections):
    hubspot = contoso_connections["hubspot"]
    empty = admin.post("/c/contoso/flows/new", {})
    assert empty.status_code == 422
    assert empty.content.decode().count('class="error"') >= 3
    too_often = admin.post(
        "/c/contoso/flows/new",
        {
            "name": "Deals",
            "source": f"{hubspot.pk}:deals",
            "entity": "opportunity",
            "trigger": "schedule",
            "schedule_minutes": "15",
        },
    )
    assert too_often.status_code == 302  # Professional allows every 15 minutes
    again = admin.post(
        "/c/contoso/flows/new",
        {"name": "deals", "source": f"{hubspot.pk}:deals", "entity": "opportunity", "trigger": "manual"},
        **HTMX,
    )
    assert again.status_code == 200 and "already exists" in again.content.decode()
    assert 'id="build-panel"' in again.content.decode() and "<html" not in again.content.decode()
    forged = admin.post(
        "/c/contoso/flows/new", {"name": "X", "source": "999999:deals", "entity": "opportunity", "trigger": "manual"}
    )
    assert forged.status_code == 422


def test_the_plans_flow_limit_reaches_the_build_form(admin, world, contoso_connections):
    from tenants.models import Plan

    hubspot = contoso_connections["hubspot"]
    count = within(world, lambda: Flow.objects.count())
    plan = world.clients["contoso"].plan
    Plan.objects.filter(pk=plan.pk).update(max_flows=count)
    response = admin.post(
        "/c/contoso/flows/new",
        {"name": "Over the limit", "source": f"{hubspot.pk}:deals", "entity": "opportunity", "trigger": "manual"},
    )
    assert response.status_code == 422
    assert f"includes {count} flow" in response.content.decode()
    assert not within(world, lambda: Flow.objects.filter(name="Over the limit").exists())


def test_add_a_target_to_a_flow(admin, world, contoso_connections):
    hubspot, netsuite = contoso_connections["hubspot"], contoso_connections["netsuite"]
    flow = within(
        world,
        lambda: flow_create(name="Companies", source_connection=hubspot, source_object="companies", entity="customer"),
    )
    page = admin.get(f"/c/contoso/flows/{flow.pk}/").content.decode()
    assert 'data-testid="step-add-form"' in page
    response = admin.post(
        f"/c/contoso/flows/{flow.pk}/steps/add", {"target": f"{netsuite.pk}:customer", "entity": "customer"}
    )
    step = within(world, lambda: FlowStep.objects.get(flow=flow))
    assert response.status_code == 302 and response["Location"] == f"/c/contoso/mappings/{step.outbound_mapping_id}/"
    assert (step.target_connection_id, step.target_object) == (netsuite.pk, "customer")
    twice = admin.post(
        f"/c/contoso/flows/{flow.pk}/steps/add", {"target": f"{netsuite.pk}:customer", "entity": "customer"}, **HTMX
    )
    assert twice.status_code == 200 and "already writes to" in twice.content.decode()
    not_writable = admin.post(
        f"/c/contoso/flows/{flow.pk}/steps/add", {"target": f"{hubspot.pk}:nothing", "entity": "customer"}
    )
    assert not_writable.status_code == 422 and "Select a valid choice" in not_writable.content.decode()
    assert (
        within(world, lambda: AuditEvent.objects.filter(action="flow.step_added", target_id=str(flow.pk)).count()) == 1
    )


def test_a_template_installs_with_connection_names_as_long_as_allowed(allow_sandboxes, in_workspace):
    from integrations.services.flows import template_install

    long_name = "Kantata PSA production account of the engineering division, EMEA and APAC regions combined (2026)"
    long_name = (long_name + " " + "x" * 120)[:120]
    psa = make_connection("kantata", allow_sandboxes["kantata"], name=long_name)
    erp = make_connection("netsuite", allow_sandboxes["netsuite"], name=long_name.replace("Kantata PSA", "NetSuite"))
    flows = template_install(key="approved-time-to-invoice", connections={"psa": psa, "erp": erp})
    for flow in flows:
        name = flow.inbound_mapping.name
        source = flow.source_connection.name
        assert len(name) == 120 and name.startswith(f"{flow.name}: {source[:20]}") and name.endswith("…")
