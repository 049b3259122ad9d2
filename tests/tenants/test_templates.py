"""Integration templates: a partner saves a client's flow as a version, deploys it, clients install it, upgrades.

Contoso's approved-time flow is the source; Tailspin and Wingtip (same partner) receive it;
Summit's people must reach none of it. Every test runs in a transaction of its own.
"""

from __future__ import annotations

import json
import re
import threading
import time
from decimal import Decimal

import pytest
from django.db import IntegrityError, OperationalError, connection, transaction
from django_tenants.utils import tenant_context

from integrations.models import AuditEvent, Connection, Flow, FlowStep, MappingRule, ValueMap, ValueMapEntry
from integrations.partner_templates.selectors import template_for
from integrations.partner_templates.services import (
    TemplateRefused,
    deployment_install,
    deployment_upgrade,
    deployment_withdraw,
    deployments_upgrade,
    template_delete,
    template_deploy,
    template_version_save,
)
from integrations.services.connections import connection_create
from integrations.services.flows import FlowConfigurationError, flow_step_add, template_install
from tenants.models import Client, IntegrationTemplate, IntegrationTemplateVersion, Plan, TemplateDeployment
from tests.integrations.workspace_fixtures import UNREACHABLE, demo_credentials
from tests.support import NORTHWIND, SUMMIT, browser_for

pytestmark = pytest.mark.django_db

PARTNER_ADMIN = "admin@northwind.localhost"
STAFF = "engineer@northwind.localhost"


def connect(vendors=("kantata", "netsuite")) -> dict[str, Connection]:
    """This schema's own connections to the systems the template needs (never reached in these tests)."""
    return {
        vendor: connection_create(
            name=f"{vendor.title()} ({connection.tenant.slug})",
            vendor=vendor,
            base_url=UNREACHABLE,
            credentials=demo_credentials(vendor),
        )
        for vendor in vendors
    }


def source_flow(client) -> int:
    """Contoso's approved-time flow, installed from the packaged template, with a project code mapped."""
    with tenant_context(client):
        own = connect()
        flows = template_install(
            key="approved-time-to-invoice", connections={"psa": own["kantata"], "erp": own["netsuite"]}
        )
        project_codes = ValueMap.objects.get(key="project-codes")
        ValueMapEntry.objects.create(value_map=project_codes, source_value="OLD-1", target_value="PRJ-101")
        return next(f for f in flows if f.template_key.endswith("/approved-time")).pk


@pytest.fixture
def saved(world):
    """Version 1 of “Time to invoice”, saved from Contoso's approved-time flow."""
    contoso = world.clients["contoso"]
    flow_id = source_flow(contoso)
    version = template_version_save(
        partner=world.partners["northwind"],
        client=contoso,
        flow_id=flow_id,
        actor=world.user(PARTNER_ADMIN),
        name="Time to invoice",
        summary="Approved time becomes invoices per project and month.",
    )
    version.flow_id = flow_id
    return version


def install_in(client, template_key: str, user_email: str, world) -> list[Flow]:
    """The client installs the deployed template with its own connections, through its Flows page."""
    with tenant_context(client):
        own = connect()
    browser = browser_for(world.user(user_email), host=NORTHWIND)
    listing = browser.get(f"/c/{client.slug}/flows/").content.decode()
    assert "From Northwind Advisory" in listing and f'data-testid="install-{template_key}"' in listing
    response = browser.post(
        f"/c/{client.slug}/flows/install/{template_key}", {"psa": own["kantata"].pk, "erp": own["netsuite"].pk}
    )
    assert response.status_code == 302, response.content.decode()[-2000:]
    connection.set_schema_to_public()
    with tenant_context(client):
        return list(Flow.objects.filter(template_key__startswith=f"{template_key}/"))


def test_saving_a_clients_flow_makes_version_1_with_its_rules_and_value_map_entries(world, saved):
    assert saved.number == 1 and saved.template.key == "time-to-invoice"
    assert saved.source_flow_name == "Approved time to invoices"
    spec = saved.spec
    flows = {flow["key"]: flow for flow in spec["flows"]}
    # The flow and the reference flows it needs, prerequisites first; not the expenses flow beside it.
    references = {"erp-customers", "erp-projects", "psa-projects", "psa-people"}
    assert set(list(flows)[:4]) == references and list(flows)[4] == "approved-time"
    main = flows["approved-time"]
    assert set(main["prerequisites"]) == references
    assert main["source"] == "psa" and main["object"] == "time_entries"
    assert main["source_filter"] == {"path": "approved", "in": [True, "true"]}
    project_rule = next(rule for rule in main["rules"] if rule["target"] == "time_entry.project")
    assert project_rule["sources"] == ["workspace_id"] and project_rule["required"] is True
    assert {"name": "lookup", "value_map": "project-codes", "fallback": "keep"} in project_rule["transforms"]
    assert [step["name"] for step in main["steps"]] == ["Invoice per project and month"]
    assert main["steps"][0]["target"] == "erp" and main["steps"][0]["action"] == "invoice"
    assert spec["value_maps"] == [
        {
            "key": "project-codes",
            "name": "Project codes (PSA → ERP)",
            "description": "When the PSA spells a project code differently from the ERP.",
            "entries": [["OLD-1", "PRJ-101"]],
        }
    ]
    assert spec["connections"] == {
        "psa": {"vendors": ["kantata"], "label": "PSA"},
        "erp": {"vendors": ["netsuite"], "label": "ERP"},
    }
    # Nothing of Contoso's connections travels: not their names, addresses or credentials.
    text = json.dumps(spec)
    assert UNREACHABLE not in text and "(contoso" not in text.lower() and "secret" not in text.lower()
    with tenant_context(world.clients["contoso"]):
        assert AuditEvent.objects.filter(action="template.saved", summary__contains="“Time to invoice” v1").exists()


def test_deploy_install_save_again_and_upgrade_keeps_the_clients_own_data(world, saved):
    tailspin, wingtip = world.clients["tailspin"], world.clients["wingtip"]
    template = saved.template
    admin = browser_for(world.user(PARTNER_ADMIN), host=NORTHWIND)

    # Deploy v1 to Tailspin and Wingtip from the template page.
    response = admin.post(
        f"/partner/templates/{template.pk}/deploy", {"version": saved.pk, "clients": [tailspin.pk, wingtip.pk]}
    )
    assert response.status_code == 302
    assert set(template.deployments.values_list("client__slug", "version__number")) == {
        ("tailspin", 1),
        ("wingtip", 1),
    }

    # Tailspin connects its own systems and installs it; its flows carry the version.
    flows = install_in(tailspin, "p-time-to-invoice", "admin@tailspin.localhost", world)
    assert {flow.template_key for flow in flows} >= {"p-time-to-invoice/approved-time"}
    assert {flow.template_version for flow in flows} == {1}
    with tenant_context(tailspin):
        main = Flow.objects.get(template_key="p-time-to-invoice/approved-time")
        assert main.source_connection.name == "Kantata (tailspin)"
        assert main.steps.get().target_connection.name == "Netsuite (tailspin)"
        assert ValueMap.objects.get(key="project-codes").as_dict() == {"OLD-1": "PRJ-101"}
        # Tailspin runs it for a while: a cursor, and a project code of its own.
        main.cursor = "2026-01-31T00:00:00Z"
        main.save(update_fields=["cursor"])
        ValueMapEntry.objects.create(
            value_map=ValueMap.objects.get(key="project-codes"), source_value="TS-9", target_value="PRJ-900"
        )

    page = admin.get(f"/partner/templates/{template.pk}/").content.decode()
    assert re.search(r'data-client="tailspin".*?v1 · up to date', page, re.S)
    assert re.search(r'data-client="wingtip".*?Not installed yet', page, re.S)

    # Contoso's flow changes: notes now upper-cased, a new project code; saved as version 2.
    with tenant_context(world.clients["contoso"]):
        rule = MappingRule.objects.get(mapping__inbound_flows__pk=saved.flow_id, target="time_entry.notes")
        rule.transforms = [{"name": "trim"}, {"name": "upper"}]
        rule.save()
        ValueMapEntry.objects.create(
            value_map=ValueMap.objects.get(key="project-codes"), source_value="OLD-2", target_value="PRJ-102"
        )
    response = admin.post(
        f"/partner/templates/{template.pk}/versions/new",
        {"client": world.clients["contoso"].pk, "flow": saved.flow_id, "notes": "Notes in capitals"},
    )
    assert response.status_code == 302
    assert list(template.versions.values_list("number", flat=True)) == [2, 1]
    page = admin.get(f"/partner/templates/{template.pk}/").content.decode()
    assert "1 rule changed, 1 value-map entry added" in page
    assert re.search(r'data-client="tailspin".*?v1 · behind', page, re.S)

    # Upgrade everyone to v2 at once.
    response = admin.post(f"/partner/templates/{template.pk}/upgrade", follow=True)
    text = response.content.decode()
    assert "Tailspin Consulting runs v2 now: 1 rule changed, 1 value-map entry added." in text
    assert "Wingtip Partners is offered the new version" in text
    connection.set_schema_to_public()
    assert set(template.deployments.values_list("client__slug", "version__number")) == {
        ("tailspin", 2),
        ("wingtip", 2),
    }
    with tenant_context(tailspin):
        main = Flow.objects.get(template_key="p-time-to-invoice/approved-time")
        assert main.template_version == 2
        notes = main.inbound_mapping.rules.get(target="time_entry.notes")
        assert notes.transforms == [{"name": "trim"}, {"name": "upper"}]
        assert main.cursor == "2026-01-31T00:00:00Z"  # it reads on from where it was
        assert main.source_connection.name == "Kantata (tailspin)"
        assert main.steps.get().target_connection.name == "Netsuite (tailspin)"
        assert ValueMap.objects.get(key="project-codes").as_dict() == {
            "OLD-1": "PRJ-101",
            "OLD-2": "PRJ-102",
            "TS-9": "PRJ-900",  # Tailspin's own entry stays
        }
        assert set(
            Flow.objects.filter(template_key__startswith="p-time-to-invoice/").values_list(
                "template_version", flat=True
            )
        ) == {2}
        audit = AuditEvent.objects.get(action="template.upgraded")
        assert audit.summary.startswith("Upgraded “Time to invoice” from v1 to v2")
        assert audit.actor_email == PARTNER_ADMIN
    with tenant_context(wingtip):
        assert not Flow.objects.exists()  # not installed: only the offer moved
    page = admin.get(f"/partner/templates/{template.pk}/").content.decode()
    assert re.search(r'data-client="tailspin".*?v2 · up to date', page, re.S)
    assert 'data-testid="upgrade-all"' not in page


def test_a_failed_upgrade_leaves_the_client_and_its_offer_as_they_were(world, saved):
    """Version 2 adds a flow; a client whose plan has no room for it keeps v1 whole."""
    tailspin = world.clients["tailspin"]
    template = saved.template
    template_deploy(template=template, version=saved, clients=[tailspin], actor=world.user(PARTNER_ADMIN))
    install_in(tailspin, "p-time-to-invoice", "admin@tailspin.localhost", world)
    with tenant_context(world.clients["contoso"]):
        expenses = Flow.objects.get(template_key="approved-time-to-invoice/approved-expenses")
        Flow.objects.get(pk=saved.flow_id).prerequisites.add(expenses)  # v2 needs the expenses flow too
    version_2 = template_version_save(
        partner=template.partner,
        client=world.clients["contoso"],
        flow_id=saved.flow_id,
        actor=world.user(PARTNER_ADMIN),
        template=template,
    )
    tight = Plan.objects.create(partner=template.partner, name="One flow", monthly_price=Decimal("90"), max_flows=1)
    # A copy: world.clients outlive this test's rollback, and a later test would meet this plan on them.
    tailspin = Client.objects.get(pk=tailspin.pk)
    tailspin.plan = tight
    tailspin.save(update_fields=["plan"])
    [outcome] = deployments_upgrade(template=template, version=version_2, actor=world.user(PARTNER_ADMIN))
    assert outcome.refused == 'Your plan "One flow" includes 1 flow; remove one or ask Northwind Advisory to upgrade.'
    assert TemplateDeployment.objects.get(template=template, client=tailspin).version == saved
    with tenant_context(tailspin):
        assert set(Flow.objects.values_list("template_version", flat=True)) == {1}
        assert not Flow.objects.filter(name="Expenses to invoices").exists()


def test_an_upgrade_waits_while_the_clients_flow_is_syncing(world, saved):
    from integrations.models import SyncRun

    tailspin = world.clients["tailspin"]
    template = saved.template
    template_deploy(template=template, version=saved, clients=[tailspin], actor=world.user(PARTNER_ADMIN))
    flows = install_in(tailspin, "p-time-to-invoice", "admin@tailspin.localhost", world)
    with tenant_context(tailspin):
        SyncRun.objects.create(flow=next(f for f in flows if f.steps.exists()), status=SyncRun.Status.RUNNING)
    version_2 = template_version_save(
        partner=template.partner,
        client=world.clients["contoso"],
        flow_id=saved.flow_id,
        actor=world.user(PARTNER_ADMIN),
        template=template,
    )
    [outcome] = deployments_upgrade(template=template, version=version_2, actor=world.user(PARTNER_ADMIN))
    assert outcome.refused == "“Approved time to invoices” is syncing now; upgrade it when the run has finished."
    assert TemplateDeployment.objects.get(template=template, client=tailspin).version == saved


# --- An upgrade keeps what the client made; two at once do the work once ------------------------

MAIN_MAPPING = "Approved time to invoices: Kantata (tailspin) → canonical"
PROJECTS_MAPPING = "PSA projects (reference): Kantata (tailspin) → canonical"


def installed_in_tailspin(world, saved):
    tailspin = world.clients["tailspin"]
    template_deploy(template=saved.template, version=saved, clients=[tailspin], actor=world.user(PARTNER_ADMIN))
    install_in(tailspin, "p-time-to-invoice", "admin@tailspin.localhost", world)
    return tailspin


def version_2(world, saved):
    """Contoso's flow changes notes to capitals and project names too, saved as version 2."""
    with tenant_context(world.clients["contoso"]):
        main = Flow.objects.get(pk=saved.flow_id)
        main.inbound_mapping.rules.filter(target="time_entry.notes").update(transforms=[{"name": "upper"}])
        projects = Flow.objects.get(template_key="approved-time-to-invoice/psa-projects")
        projects.inbound_mapping.rules.filter(target="project.name").update(
            transforms=[{"name": "trim"}, {"name": "upper"}]
        )
    return template_version_save(
        partner=saved.template.partner,
        client=world.clients["contoso"],
        flow_id=saved.flow_id,
        actor=world.user(PARTNER_ADMIN),
        template=saved.template,
    )


def tailspin_adds_a_target_and_relabels_its_notes(tailspin) -> FlowStep:
    with tenant_context(tailspin):
        main = Flow.objects.get(template_key="p-time-to-invoice/approved-time")
        erp = main.steps.get().target_connection
        own = flow_step_add(flow=main, target_connection=erp, target_object="job", entity="project")
        MappingRule.objects.create(mapping=own.outbound_mapping, target="companyname", sources=["project.name"])
        main.inbound_mapping.rules.filter(target="time_entry.notes").update(label="Description")
        return own


def test_an_upgrade_keeps_the_clients_own_targets_and_mapping_changes_and_audits_the_rules_it_replaced(world, saved):
    tailspin = installed_in_tailspin(world, saved)
    own = tailspin_adds_a_target_and_relabels_its_notes(tailspin)
    version_2(world, saved)

    admin = browser_for(world.user(PARTNER_ADMIN), host=NORTHWIND)
    text = admin.post(f"/partner/templates/{saved.template.pk}/upgrade", follow=True).content.decode()
    assert f"Tailspin Consulting runs v2 now: 1 rule changed, kept your changes to “{MAIN_MAPPING}”." in text, (
        text.split("<main", 1)[-1][:3000]
    )
    connection.set_schema_to_public()
    with tenant_context(tailspin):
        main = Flow.objects.get(template_key="p-time-to-invoice/approved-time")
        assert main.template_version == 2
        # The target Tailspin added stays, with its rule, after the template's own step.
        assert [(step.name, step.template_step) for step in main.steps.all()] == [
            ("Invoice per project and month", "Invoice per project and month"),
            (own.name, ""),
        ]
        assert main.steps.get(pk=own.pk).outbound_mapping.rules.get().target == "companyname"
        # The mapping Tailspin changed is as Tailspin left it: v2's capitals are not forced on it.
        notes = main.inbound_mapping.rules.get(target="time_entry.notes")
        assert (notes.label, notes.transforms) == ("Description", [{"name": "trim"}, {"name": "default", "value": ""}])
        # The one it did not change takes v2's rules.
        projects = Flow.objects.get(template_key="p-time-to-invoice/psa-projects")
        assert projects.inbound_mapping.rules.get(target="project.name").transforms == [
            {"name": "trim"},
            {"name": "upper"},
        ]
        audit = AuditEvent.objects.get(action="template.upgraded")
        assert audit.after["kept_client_changes"] == [MAIN_MAPPING]
        # The rules replaced are in the audit row, to put back by hand if the client wants them.
        [replaced] = audit.before["rules"]
        assert replaced["mapping"] == PROJECTS_MAPPING and replaced["mapping_id"] == projects.inbound_mapping_id
        v1_name = {"name": "split", "separator": " ", "index": 1, "rest": True}
        assert ["project.name", ["title"], [v1_name], True, "Project name"] in replaced["rules"]
        rules = MappingRule.objects.count()

    # A second upgrade to v2 (a double-submitted "Upgrade all" that passed the check) changes nothing.
    outcome = deployment_upgrade(
        deployment=saved.template.deployments.get(client=tailspin),
        version=saved.template.versions.get(number=2),
        actor=world.user(PARTNER_ADMIN),
    )
    assert outcome.message == "Tailspin Consulting runs v2 now: 0 rules changed."
    with tenant_context(tailspin):
        assert MappingRule.objects.count() == rules
        assert AuditEvent.objects.filter(action="template.upgraded").count() == 1


def test_steps_installed_before_they_were_marked_are_matched_by_name_once(world, saved):
    tailspin = installed_in_tailspin(world, saved)
    own = tailspin_adds_a_target_and_relabels_its_notes(tailspin)
    with tenant_context(tailspin):
        FlowStep.objects.update(template_step="")  # as every step was before the upgrade learnt whose it is
    [outcome] = deployments_upgrade(
        template=saved.template, version=version_2(world, saved), actor=world.user(PARTNER_ADMIN)
    )
    assert not outcome.refused
    with tenant_context(tailspin):
        main = Flow.objects.get(template_key="p-time-to-invoice/approved-time")
        assert [(step.name, step.template_step) for step in main.steps.all()] == [
            ("Invoice per project and month", "Invoice per project and month"),
            (own.name, ""),
        ]


def test_a_template_key_names_one_flow_in_a_workspace(world, saved):
    with tenant_context(world.clients["tailspin"]):
        own = connect()
        flow = template_install(
            template=template_for(saved), connections={"psa": own["kantata"], "erp": own["netsuite"]}
        )[0]
        copy = {"source_connection": flow.source_connection, "source_object": "users", "entity": "resource"}
        with pytest.raises(IntegrityError), transaction.atomic():
            Flow.objects.create(
                name="Twin", template_key=flow.template_key, inbound_mapping=flow.inbound_mapping, **copy
            )
        # Flows of no template, hand-built or kept as own, are many.
        Flow.objects.create(name="Own 1", inbound_mapping=flow.inbound_mapping, **copy)
        Flow.objects.create(name="Own 2", inbound_mapping=flow.inbound_mapping, **copy)


def test_a_second_upgrade_of_a_template_waits_for_the_first_to_finish(world, saved):
    """The first upgrade's transaction (this test's) is open: a second one, elsewhere (a double-submitted
    "Upgrade all", another admin), waits at the template's lock before it reads the flows, then finds them
    upgraded; it never rewrites the rules beside the first."""
    from integrations.partner_templates.workspace import template_upgrade

    tailspin = installed_in_tailspin(world, saved)
    version = version_2(world, saved)
    outcome = deployment_upgrade(
        deployment=saved.template.deployments.get(client=tailspin), version=version, actor=world.user(PARTNER_ADMIN)
    )
    assert not outcome.refused
    template = template_for(version)
    errors, waiting = [], []

    def second_upgrade():
        from django.db import connection as own_connection

        try:
            own_connection.set_tenant(tailspin)
            with transaction.atomic():
                with own_connection.cursor() as cursor:
                    cursor.execute("SET LOCAL lock_timeout = '4s'")
                template_upgrade(template=template)
        except (OperationalError, FlowConfigurationError) as error:
            errors.append(error)
        finally:
            own_connection.close()

    thread = threading.Thread(target=second_upgrade)
    thread.start()
    deadline = time.monotonic() + 3
    with connection.cursor() as cursor:
        while not waiting and time.monotonic() < deadline:
            cursor.execute(
                "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            )
            waiting = cursor.fetchall()
            time.sleep(0.05)
    thread.join(10)
    assert waiting, f"the second upgrade did not wait at the template's lock: {errors!r}"
    assert [str(error).strip() for error in errors] == ["canceling statement due to lock timeout"]


def test_an_install_takes_the_offer_as_it_stands_and_none_once_withdrawn(world, saved):
    tailspin, wingtip = world.clients["tailspin"], world.clients["wingtip"]
    actor = world.user(PARTNER_ADMIN)
    template_deploy(template=saved.template, version=saved, clients=[tailspin, wingtip], actor=actor)
    # Tailspin's install page showed v1; v2 is offered before it submits: it gets v2, the offer of now.
    version = template_version_save(
        partner=saved.template.partner,
        client=world.clients["contoso"],
        flow_id=saved.flow_id,
        actor=actor,
        template=saved.template,
    )
    template_deploy(template=saved.template, version=version, clients=[tailspin], actor=actor)
    with tenant_context(tailspin):
        own = connect()
    flows = deployment_install(
        client=tailspin,
        key="p-time-to-invoice",
        connections={"psa": own["kantata"], "erp": own["netsuite"]},
        actor=actor,
    )
    assert {flow.template_version for flow in flows} == {2}
    # Wingtip's offer is withdrawn as it submits: nothing is installed.
    deployment_withdraw(deployment=saved.template.deployments.get(client=wingtip), actor=actor)
    with tenant_context(wingtip):
        own = connect()
    with pytest.raises(FlowConfigurationError, match="no longer offered"):
        deployment_install(
            client=wingtip,
            key="p-time-to-invoice",
            connections={"psa": own["kantata"], "erp": own["netsuite"]},
            actor=actor,
        )
    with tenant_context(wingtip):
        assert not Flow.objects.exists()


def test_a_client_installing_a_deployed_template_meets_its_plans_flow_limit(world, saved):
    wingtip = world.clients["wingtip"]
    template_deploy(template=saved.template, version=saved, clients=[wingtip], actor=world.user(PARTNER_ADMIN))
    with tenant_context(wingtip):
        own = connect()
        template_install(key="approved-time-to-invoice", connections={"psa": own["kantata"], "erp": own["netsuite"]})
    wingtip = Client.objects.get(pk=wingtip.pk)  # a copy: world's object outlives the rollback
    wingtip.plan = Plan.objects.create(
        partner=wingtip.partner, name="Two flows", monthly_price=Decimal("150"), max_flows=2
    )
    wingtip.save(update_fields=["plan"])
    browser = browser_for(world.user(PARTNER_ADMIN), host=NORTHWIND)
    response = browser.post(
        "/c/wingtip/flows/install/p-time-to-invoice", {"psa": own["kantata"].pk, "erp": own["netsuite"].pk}
    )
    assert response.status_code == 422
    assert "Your plan &quot;Two flows&quot; includes 2 flows" in response.content.decode()
    connection.set_schema_to_public()
    with tenant_context(wingtip):
        assert not Flow.objects.filter(template_key__startswith="p-").exists()


def test_clients_see_only_templates_deployed_to_them(world, saved):
    template_deploy(
        template=saved.template, version=saved, clients=[world.clients["tailspin"]], actor=world.user(PARTNER_ADMIN)
    )
    tailspin = browser_for(world.user("admin@tailspin.localhost"), host=NORTHWIND)
    assert "Time to invoice" in tailspin.get("/c/tailspin/flows/").content.decode()
    assert tailspin.get("/c/tailspin/flows/install/p-time-to-invoice").status_code == 200
    # Contoso, where it was saved from, was not offered it; nor was another partner's client.
    contoso = browser_for(world.user("admin@contoso.localhost"), host=NORTHWIND)
    assert "From Northwind Advisory" not in contoso.get("/c/contoso/flows/").content.decode()
    assert contoso.get("/c/contoso/flows/install/p-time-to-invoice").status_code == 404
    fabrikam = browser_for(world.user("admin@fabrikam.localhost"), host=SUMMIT)
    assert "Time to invoice" not in fabrikam.get("/c/fabrikam/flows/").content.decode()
    assert fabrikam.get("/c/fabrikam/flows/install/p-time-to-invoice").status_code == 404


def test_another_partner_reaches_none_of_the_templates_by_id(world, saved):
    template = saved.template
    template_deploy(
        template=template, version=saved, clients=[world.clients["tailspin"]], actor=world.user(PARTNER_ADMIN)
    )
    deployment = template.deployments.get()
    summit = browser_for(world.user("admin@summit.localhost"), host=SUMMIT)
    assert "Time to invoice" not in summit.get("/partner/templates/").content.decode()
    for path in (
        f"/partner/templates/{template.pk}/",
        f"/partner/templates/{template.pk}/versions/new",
    ):
        assert summit.get(path).status_code == 404, path
    for path in (
        f"/partner/templates/{template.pk}/versions/new",
        f"/partner/templates/{template.pk}/deploy",
        f"/partner/templates/{template.pk}/upgrade",
        f"/partner/templates/{template.pk}/deployments/{deployment.pk}/upgrade",
        f"/partner/templates/{template.pk}/edit",
        f"/partner/templates/{template.pk}/deployments/{deployment.pk}/withdraw",
        f"/partner/templates/{template.pk}/delete",
    ):
        data = {"version": saved.pk, "clients": [world.clients["fabrikam"].pk], "name": "Taken over"}
        assert summit.post(path, data).status_code == 404, path
    assert IntegrationTemplate.objects.filter(pk=template.pk, name="Time to invoice").exists()
    assert template.deployments.filter(pk=deployment.pk).exists()
    # Summit cannot save Northwind's client's flow either: Contoso is not among its clients.
    response = summit.post(
        "/partner/templates/new", {"client": world.clients["contoso"].pk, "flow": saved.flow_id, "name": "Stolen"}
    )
    assert response.status_code == 422
    assert not IntegrationTemplate.objects.filter(partner=world.partners["summit"]).exists()
    # And Northwind cannot deploy to Summit's client.
    admin = browser_for(world.user(PARTNER_ADMIN), host=NORTHWIND)
    response = admin.post(
        f"/partner/templates/{template.pk}/deploy", {"version": saved.pk, "clients": [world.clients["fabrikam"].pk]}
    )
    assert response.status_code == 422
    assert not template.deployments.filter(client=world.clients["fabrikam"]).exists()


def test_partner_staff_read_templates_but_cannot_save_deploy_upgrade_rename_withdraw_or_delete(world, saved):
    template = saved.template
    template_deploy(
        template=template,
        version=saved,
        clients=[world.clients["tailspin"], world.clients["wingtip"]],
        actor=world.user(PARTNER_ADMIN),
    )
    deployment = template.deployments.get(client=world.clients["tailspin"])
    staff = browser_for(world.user(STAFF), host=NORTHWIND)
    assert "Time to invoice" in staff.get("/partner/templates/").content.decode()
    page = staff.get(f"/partner/templates/{template.pk}/").content.decode()
    assert "Tailspin Consulting" in page and "Wingtip Partners" not in page  # only the clients assigned to them
    assert 'method="post"' not in page.split("<main", 1)[1]  # the page's forms; signing out is in the header
    assert "Delete template" not in page and "Withdraw" not in page
    assert staff.get("/partner/templates/new").status_code == 403
    for path in (
        "/partner/templates/new",
        f"/partner/templates/{template.pk}/versions/new",
        f"/partner/templates/{template.pk}/deploy",
        f"/partner/templates/{template.pk}/upgrade",
        f"/partner/templates/{template.pk}/deployments/{deployment.pk}/upgrade",
        f"/partner/templates/{template.pk}/edit",
        f"/partner/templates/{template.pk}/deployments/{deployment.pk}/withdraw",
        f"/partner/templates/{template.pk}/delete",
    ):
        data = {"version": saved.pk, "clients": [world.clients["contoso"].pk], "name": "Renamed by staff"}
        assert staff.post(path, data).status_code == 403, path
    assert not template.deployments.filter(client=world.clients["contoso"]).exists()
    assert IntegrationTemplate.objects.filter(pk=template.pk, name="Time to invoice").exists()
    assert template.deployments.filter(pk=deployment.pk).exists()


# url name -> (roles that may GET it, roles that may POST to it); None: the method is not served (405).
ADMIN_ONLY = {PARTNER_ADMIN}
CONSOLE = {PARTNER_ADMIN, STAFF}
ACCESS = {
    "partner_templates": (CONSOLE, None),
    "partner_template_new": (ADMIN_ONLY, ADMIN_ONLY),
    "partner_template": (CONSOLE, None),
    "partner_template_version_new": (ADMIN_ONLY, ADMIN_ONLY),
    "partner_template_deploy": (None, ADMIN_ONLY),
    "partner_template_upgrade_all": (None, ADMIN_ONLY),
    "partner_template_upgrade": (None, ADMIN_ONLY),
    "partner_template_edit": (None, ADMIN_ONLY),
    "partner_template_withdraw": (None, ADMIN_ONLY),
    "partner_template_delete": (None, ADMIN_ONLY),
}
PEOPLE = sorted([PARTNER_ADMIN, STAFF, "admin@contoso.localhost", "viewer@contoso.localhost", "admin@summit.localhost"])


def test_the_access_table_covers_every_template_url():
    from portal.urls_partner import partner_console

    names = {entry.name for entry in partner_console if entry.name and entry.name.startswith("partner_template")}
    assert names == set(ACCESS)


@pytest.mark.parametrize("email", PEOPLE)
def test_each_role_reaches_the_template_pages_it_may_and_is_refused_the_rest(world, saved, email):
    from django.urls import reverse

    template = saved.template
    template_deploy(
        template=template, version=saved, clients=[world.clients["tailspin"]], actor=world.user(PARTNER_ADMIN)
    )
    args = {
        "partner_template": [template.pk],
        "partner_template_version_new": [template.pk],
        "partner_template_deploy": [template.pk],
        "partner_template_upgrade_all": [template.pk],
        "partner_template_upgrade": [template.pk, template.deployments.get().pk],
        "partner_template_edit": [template.pk],
        "partner_template_withdraw": [template.pk, template.deployments.get().pk],
        "partner_template_delete": [template.pk],
    }
    browser = browser_for(world.user(email), host=NORTHWIND)
    problems = []
    for name, (get_roles, post_roles) in ACCESS.items():
        path = reverse(name, urlconf="portal.urls_partner", args=args.get(name, []))
        status = browser.get(path).status_code
        expected = {405} if get_roles is None else ({200} if email in get_roles else {403})
        if status not in expected:
            problems.append(f"GET {name}: {status}, expected {sorted(expected)}")
        status = browser.post(path, {}).status_code
        expected = {405} if post_roles is None else ({200, 302, 422} if email in post_roles else {403})
        if status not in expected:
            problems.append(f"POST {name}: {status}, expected {sorted(expected)}")
    assert not problems, "\n".join(problems)


def test_the_template_list_says_what_to_do_when_empty(world):
    page = browser_for(world.user(PARTNER_ADMIN), host=NORTHWIND).get("/partner/templates/").content.decode()
    assert "No templates yet" in page and "Save a client's flow as a template" in page
    page = browser_for(world.user(STAFF), host=NORTHWIND).get("/partner/templates/").content.decode()
    assert "No templates yet" in page and "/partner/templates/new" not in page


def test_choosing_a_client_lists_its_flows_that_write_somewhere(world):
    flow_id = source_flow(world.clients["contoso"])
    admin = browser_for(world.user(PARTNER_ADMIN), host=NORTHWIND)
    form = admin.get(
        "/partner/templates/new", {"client": world.clients["contoso"].pk}, headers={"HX-Request": "true"}
    ).content.decode()
    assert form.lstrip().startswith("<form")  # the form alone, for HTMX to swap
    assert f'value="{flow_id}"' in form and "Approved time to invoices · reads Kantata (" in form
    assert "(reference)" not in form
    empty = admin.get("/partner/templates/new", {"client": world.clients["wingtip"].pk}).content.decode()
    assert "Wingtip Partners has no flow that writes to a system yet" in empty


def test_the_save_form_lists_the_value_maps_the_flow_carries_with_their_entry_counts(world):
    contoso = world.clients["contoso"]
    flow_id = source_flow(contoso)
    admin = browser_for(world.user(PARTNER_ADMIN), host=NORTHWIND)
    form = admin.get(
        "/partner/templates/new", {"client": contoso.pk, "flow": flow_id}, headers={"HX-Request": "true"}
    ).content.decode()
    maps = form[form.index('id="template-value-maps"') :]
    maps = maps[: maps.index("</fieldset>")]
    assert "Project codes (PSA → ERP)</strong>: include its 1 entry" in maps
    assert re.search(r'name="include_entries" value="project-codes"[^>]*checked', maps)  # entries go by default
    assert "offered to every client that installs it" in maps
    # Choosing the client alone shows the maps of the flow its select shows first.
    assert 'id="template-value-maps"' in admin.get("/partner/templates/new", {"client": contoso.pk}).content.decode()


def save_from_contoso(world, flow_id: int, **choices) -> IntegrationTemplateVersion:
    admin = browser_for(world.user(PARTNER_ADMIN), host=NORTHWIND)
    data = {"client": world.clients["contoso"].pk, "flow": flow_id, "name": "Time to invoice", **choices}
    response = admin.post("/partner/templates/new", data)
    assert response.status_code == 302, response.content.decode()[-2000:]
    return IntegrationTemplateVersion.objects.get(template__key="time-to-invoice", number=1)


def test_a_map_saved_without_its_entries_reaches_installing_clients_empty(world):
    contoso, tailspin = world.clients["contoso"], world.clients["tailspin"]
    flow_id = source_flow(contoso)
    version = save_from_contoso(world, flow_id, value_maps_shown=["project-codes"])  # shown, not ticked
    assert [(vm["key"], vm["entries"]) for vm in version.spec["value_maps"]] == [("project-codes", [])]
    with tenant_context(contoso):
        saved_audit = AuditEvent.objects.get(action="template.saved")
        assert saved_audit.after["value_maps_without_entries"] == ["project-codes"]
        assert ValueMap.objects.get(key="project-codes").as_dict() == {"OLD-1": "PRJ-101"}  # Contoso keeps its own

    admin = browser_for(world.user(PARTNER_ADMIN), host=NORTHWIND)
    page = admin.get(f"/partner/templates/{version.template.pk}/").content.decode()
    assert re.search(r"<dt>Value-map entries</dt><dd>0</dd>", page)
    assert re.search(r"<dt>Value maps carried empty</dt><dd>Project codes \(PSA → ERP\)</dd>", page)

    template_deploy(template=version.template, version=version, clients=[tailspin], actor=world.user(PARTNER_ADMIN))
    install_in(tailspin, "p-time-to-invoice", "admin@tailspin.localhost", world)
    with tenant_context(tailspin):
        assert ValueMap.objects.get(key="project-codes").as_dict() == {}


def test_a_ticked_map_or_a_form_that_never_listed_maps_keeps_the_entries(world):
    flow_id = source_flow(world.clients["contoso"])
    version = save_from_contoso(world, flow_id, value_maps_shown=["project-codes"], include_entries=["project-codes"])
    assert version.spec["value_maps"][0]["entries"] == [["OLD-1", "PRJ-101"]]
    version.template.delete()
    version = save_from_contoso(world, flow_id)
    assert version.spec["value_maps"][0]["entries"] == [["OLD-1", "PRJ-101"]]


def test_a_version_needing_a_system_the_client_lacks_waits_until_it_connects_one(world, saved):
    from integrations.models import FlowStep, Mapping

    tailspin, contoso = world.clients["tailspin"], world.clients["contoso"]
    template, admin = saved.template, world.user(PARTNER_ADMIN)
    template_deploy(template=template, version=saved, clients=[tailspin], actor=admin)
    install_in(tailspin, "p-time-to-invoice", "admin@tailspin.localhost", world)
    # Contoso's flow gains a step: a Jira issue per time entry.
    with tenant_context(contoso):
        jira = connect(("jira",))["jira"]
        mapping = Mapping.objects.create(name="Time entries: Jira")
        MappingRule.objects.create(mapping=mapping, target="summary", sources=["notes"], transforms=[], label="Summary")
        FlowStep.objects.create(
            flow_id=saved.flow_id,
            order=5,
            name="Issue in Jira",
            entity="time_entry",
            target_connection=jira,
            target_object="issues",
            outbound_mapping=mapping,
        )
    version_2 = template_version_save(
        partner=template.partner, client=contoso, flow_id=saved.flow_id, actor=admin, template=template
    )
    assert version_2.spec["connections"]["ticketing"] == {"vendors": ["jira"], "label": "Ticketing"}

    [outcome] = deployments_upgrade(template=template, version=version_2, actor=admin)
    assert outcome.message == (
        "Tailspin Consulting: Version 2 also needs Ticketing (Jira): connect one in this workspace first."
    )
    with tenant_context(tailspin):
        jira = connect(("jira",))["jira"]
    [outcome] = deployments_upgrade(template=template, version=version_2, actor=admin)
    assert not outcome.refused and outcome.result.rules_changed == 1
    with tenant_context(tailspin):
        main = Flow.objects.get(template_key="p-time-to-invoice/approved-time")
        steps = list(main.steps.select_related("target_connection"))
        assert [(s.name, s.target_connection.name) for s in steps] == [
            ("Invoice per project and month", "Netsuite (tailspin)"),
            ("Issue in Jira", "Jira (tailspin)"),
        ]
        assert list(steps[1].outbound_mapping.rules.values_list("target", flat=True)) == ["summary"]


# --- Rename, withdraw, delete, and what the deploy form says of each client ----------------------


def audit_summaries(client, action: str) -> list[str]:
    with tenant_context(client):
        return list(AuditEvent.objects.filter(action=action).order_by("pk").values_list("summary", flat=True))


def test_renaming_a_template_is_audited_where_clients_see_it_and_they_read_the_new_words(world, saved):
    template, tailspin = saved.template, world.clients["tailspin"]
    template_deploy(template=template, version=saved, clients=[tailspin], actor=world.user(PARTNER_ADMIN))
    admin = browser_for(world.user(PARTNER_ADMIN), host=NORTHWIND)
    page = admin.get(f"/partner/templates/{template.pk}/").content.decode()
    assert 'id="template-edit-form"' in page and 'value="Time to invoice"' in page

    response = admin.post(
        f"/partner/templates/{template.pk}/edit",
        {"name": "Time to invoices", "summary": "Approved  time,\n invoiced monthly."},
        follow=True,
    )
    assert "“Time to invoice” is now called “Time to invoices”. Clients see the new name." in response.content.decode()
    template.refresh_from_db()
    assert (template.name, template.summary) == ("Time to invoices", "Approved time, invoiced monthly.")
    assert template.key == "time-to-invoice"  # installed flows are found by the key, which never changes
    expected = "Northwind Advisory renamed template “Time to invoice” to “Time to invoices”"
    for client in (tailspin, world.clients["contoso"]):  # offered it; it was saved from here
        assert audit_summaries(client, "template.updated") == [expected]
    assert audit_summaries(world.clients["wingtip"], "template.updated") == []
    with tenant_context(tailspin):
        event = AuditEvent.objects.get(action="template.updated")
        assert event.actor_email == PARTNER_ADMIN and event.before["name"] == "Time to invoice"
    listing = browser_for(world.user("admin@tailspin.localhost"), host=NORTHWIND).get("/c/tailspin/flows/")
    assert "Time to invoices" in listing.content.decode() and "invoiced monthly" in listing.content.decode()

    # An empty or multi-line name is refused in the form's own partial; nothing changes.
    response = admin.post(
        f"/partner/templates/{template.pk}/edit", {"name": "Two\nlines", "summary": ""}, headers={"HX-Request": "true"}
    )
    form = response.content.decode()
    assert form.lstrip().startswith("<form") and "Use a single line of text." in form
    assert admin.post(f"/partner/templates/{template.pk}/edit", {"name": " ", "summary": ""}).status_code == 422
    template.refresh_from_db()
    assert template.name == "Time to invoices"


def test_withdrawing_an_offer_the_client_has_not_installed_takes_it_off_its_flows_page(world, saved):
    template, tailspin, wingtip = saved.template, world.clients["tailspin"], world.clients["wingtip"]
    template_deploy(template=template, version=saved, clients=[tailspin, wingtip], actor=world.user(PARTNER_ADMIN))
    install_in(tailspin, "p-time-to-invoice", "admin@tailspin.localhost", world)
    admin = browser_for(world.user(PARTNER_ADMIN), host=NORTHWIND)
    page = admin.get(f"/partner/templates/{template.pk}/").content.decode()
    assert 'data-testid="withdraw-wingtip"' in page and 'data-testid="withdraw-tailspin"' not in page
    assert re.search(r'data-confirm="Withdraw “Time to invoice” from Wingtip Partners\? Its Flows page stops', page)
    assert "keeps its flows, which are its own now" in page

    wingtip_offer = template.deployments.get(client=wingtip)
    response = admin.post(f"/partner/templates/{template.pk}/deployments/{wingtip_offer.pk}/withdraw", follow=True)
    assert "“Time to invoice” is withdrawn from Wingtip Partners: its Flows page no longer offers it." in (
        response.content.decode()
    )
    assert not template.deployments.filter(client=wingtip).exists()
    assert audit_summaries(wingtip, "template.withdrawn") == [
        "Northwind Advisory withdrew its offer of “Time to invoice” v1"
    ]
    connection.set_schema_to_public()
    wingtip_admin = admin  # Wingtip has no admin of its own; the partner admin works in its workspace
    assert "From Northwind Advisory" not in wingtip_admin.get("/c/wingtip/flows/").content.decode()
    assert wingtip_admin.get("/c/wingtip/flows/install/p-time-to-invoice").status_code == 404

    # Tailspin installed it: its flows are its own, so the offer stays and so do they.
    tailspin_offer = template.deployments.get(client=tailspin)
    response = admin.post(f"/partner/templates/{template.pk}/deployments/{tailspin_offer.pk}/withdraw", follow=True)
    assert (
        "Tailspin Consulting has installed “Time to invoice”: its flows are its own now and stay."
        " You can upgrade it, not withdraw it."
    ) in response.content.decode()
    assert template.deployments.filter(client=tailspin).exists()
    with tenant_context(tailspin):
        assert Flow.objects.filter(template_key="p-time-to-invoice/approved-time", template_version=1).exists()
    with pytest.raises(TemplateRefused):
        deployment_withdraw(deployment=tailspin_offer, actor=world.user(PARTNER_ADMIN))


def test_a_template_a_client_runs_is_not_deleted_and_the_page_names_who_runs_it(world, saved):
    template, tailspin = saved.template, world.clients["tailspin"]
    template_deploy(template=template, version=saved, clients=[tailspin], actor=world.user(PARTNER_ADMIN))
    install_in(tailspin, "p-time-to-invoice", "admin@tailspin.localhost", world)
    admin = browser_for(world.user(PARTNER_ADMIN), host=NORTHWIND)
    page = admin.get(f"/partner/templates/{template.pk}/").content.decode()
    assert "Tailspin Consulting runs it. Their flows are their own; once no client runs it, you can delete it." in page
    assert 'data-testid="delete-template"' not in page

    response = admin.post(f"/partner/templates/{template.pk}/delete", follow=True)
    assert (
        "“Time to invoice” cannot be deleted while Tailspin Consulting runs it. Their flows are their own;"
        " once no client runs it, you can delete it."
    ) in response.content.decode()
    assert IntegrationTemplate.objects.filter(pk=template.pk).exists()
    with tenant_context(tailspin):
        assert Flow.objects.filter(template_key__startswith="p-time-to-invoice/").count() == 5


def test_deleting_a_template_no_client_runs_removes_its_versions_and_its_offers(world, saved):
    template, tailspin, wingtip = saved.template, world.clients["tailspin"], world.clients["wingtip"]
    template_version_save(
        partner=template.partner,
        client=world.clients["contoso"],
        flow_id=saved.flow_id,
        actor=world.user(PARTNER_ADMIN),
        template=template,
    )
    template_deploy(template=template, version=saved, clients=[tailspin, wingtip], actor=world.user(PARTNER_ADMIN))
    admin = browser_for(world.user(PARTNER_ADMIN), host=NORTHWIND)
    page = admin.get(f"/partner/templates/{template.pk}/").content.decode()
    assert 'data-testid="delete-template"' in page
    assert (
        'data-confirm="Delete “Time to invoice” and its 2 versions? 2 clients stop being offered it.'
        ' This cannot be undone."'
    ) in page

    response = admin.post(f"/partner/templates/{template.pk}/delete", follow=True)
    assert response.redirect_chain[-1][0] == "/partner/templates/"
    assert "“Time to invoice” is deleted, with its versions and its offer to 2 clients." in response.content.decode()
    assert not IntegrationTemplate.objects.filter(pk=template.pk).exists()
    assert not IntegrationTemplateVersion.objects.filter(template_id=template.pk).exists()
    assert not TemplateDeployment.objects.filter(template_id=template.pk).exists()
    for client in (tailspin, wingtip):
        assert audit_summaries(client, "template.deleted") == [
            "Northwind Advisory deleted template “Time to invoice”; it is no longer offered here"
        ]
    assert audit_summaries(world.clients["contoso"], "template.deleted") == [
        "Northwind Advisory deleted template “Time to invoice”"
    ]
    connection.set_schema_to_public()
    tailspin_admin = browser_for(world.user("admin@tailspin.localhost"), host=NORTHWIND)
    assert "From Northwind Advisory" not in tailspin_admin.get("/c/tailspin/flows/").content.decode()
    assert tailspin_admin.get("/c/tailspin/flows/install/p-time-to-invoice").status_code == 404
    with pytest.raises(IntegrationTemplate.DoesNotExist):
        template_delete(template=template, actor=world.user(PARTNER_ADMIN))


def test_the_deploy_form_says_which_clients_run_or_are_offered_it(world, saved):
    template, tailspin, wingtip = saved.template, world.clients["tailspin"], world.clients["wingtip"]
    template_deploy(template=template, version=saved, clients=[tailspin, wingtip], actor=world.user(PARTNER_ADMIN))
    install_in(tailspin, "p-time-to-invoice", "admin@tailspin.localhost", world)
    version_2 = template_version_save(
        partner=template.partner,
        client=world.clients["contoso"],
        flow_id=saved.flow_id,
        actor=world.user(PARTNER_ADMIN),
        template=template,
    )
    template_deploy(template=template, version=version_2, clients=[wingtip], actor=world.user(PARTNER_ADMIN))
    admin = browser_for(world.user(PARTNER_ADMIN), host=NORTHWIND)
    page = admin.get(f"/partner/templates/{template.pk}/").content.decode()
    form = page.split('id="deploy-form"', 1)[1].split("</form>", 1)[0]

    def label(client) -> list[str]:
        match = re.search(
            rf'<label class="choice"[^>]*>\s*<input[^>]*value="{client.pk}"[^>]*>(.*?)</label>', form, re.S
        )
        assert match, client.name
        return re.sub(r"<[^>]+>", "", match.group(1)).split()

    assert label(tailspin) == ["Tailspin", "Consulting", "runs", "v1"]
    assert label(wingtip) == ["Wingtip", "Partners", "offered", "v2"]
    assert label(world.clients["contoso"]) == ["Contoso", "Engineering"]  # saved from, never offered: nothing


# --- What a partner types reaches partner staff and clients inert --------------------------------
# The template counterpart of tests/branding/test_brand_editor.py's brand and client-name injection test.

HOSTILE_NAME = "<script>alert(11)</script><img src=x onerror=alert(12)>"
HOSTILE_SUMMARY = "<style>*{display:none}</style><script>alert(13)</script>"
HOSTILE_NOTES = "<script>alert(14)</script><style>*{color:red}</style><img src=x onerror=alert(15)>"


def assert_inert(html: str, where: str) -> None:
    for raw in ("<script>alert(1", "<style>*{", "<img src=x"):
        assert raw not in html, f"{raw!r} reached {where} unescaped"


def test_script_and_style_through_template_name_summary_and_notes_render_inert(world):
    contoso, tailspin, wingtip = world.clients["contoso"], world.clients["tailspin"], world.clients["wingtip"]
    flow_id = source_flow(contoso)
    admin = browser_for(world.user(PARTNER_ADMIN), host=NORTHWIND)
    response = admin.post(
        "/partner/templates/new",
        {"client": contoso.pk, "flow": flow_id, "name": HOSTILE_NAME, "summary": HOSTILE_SUMMARY},
        follow=True,
    )
    assert response.status_code == 200 and response.redirect_chain
    assert_inert(response.content.decode(), "the toast after saving")
    template = IntegrationTemplate.objects.get(partner=world.partners["northwind"], name=HOSTILE_NAME)
    response = admin.post(
        f"/partner/templates/{template.pk}/versions/new",
        {"client": contoso.pk, "flow": flow_id, "notes": HOSTILE_NOTES},
        follow=True,
    )
    assert response.redirect_chain and template.versions.count() == 2
    assert_inert(response.content.decode(), "the toast after saving v2")
    version_1 = template.versions.get(number=1)
    template_deploy(template=template, version=version_1, clients=[tailspin, wingtip], actor=world.user(PARTNER_ADMIN))
    install_key = f"p-{template.key}"
    flows = install_in(tailspin, install_key, "admin@tailspin.localhost", world)  # its installed card and version
    assert flows
    connection.set_schema_to_public()

    staff = browser_for(world.user(STAFF), host=NORTHWIND)
    tailspin_admin = browser_for(world.user("admin@tailspin.localhost"), host=NORTHWIND)
    wingtip_admin = admin  # Wingtip has no admin of its own; the partner admin works in its workspace
    pages = {
        "partner template list": admin.get("/partner/templates/"),
        "partner template page": admin.get(f"/partner/templates/{template.pk}/"),
        "new version form": admin.get(f"/partner/templates/{template.pk}/versions/new"),
        "template list for staff": staff.get("/partner/templates/"),
        "template page for staff": staff.get(f"/partner/templates/{template.pk}/"),
        "flows of a client that installed it": tailspin_admin.get("/c/tailspin/flows/"),
        "flows of a client offered it": wingtip_admin.get("/c/wingtip/flows/"),
        "install page": wingtip_admin.get(f"/c/wingtip/flows/install/{install_key}"),
        "audit log of a client offered it": wingtip_admin.get("/c/wingtip/audit/"),
        "audit log of the client it was saved from": browser_for(
            world.user("admin@contoso.localhost"), host=NORTHWIND
        ).get("/c/contoso/audit/"),
    }
    for where, page in pages.items():
        assert page.status_code == 200, where
        html = page.content.decode()
        assert_inert(html, where)
        assert "&lt;script&gt;alert(11)&lt;/script&gt;" in html, f"the template name is not shown escaped on {where}"
    for where in ("partner template list", "partner template page", "flows of a client offered it", "install page"):
        html = pages[where].content.decode()
        assert "&lt;style&gt;*{display:none}&lt;/style&gt;" in html, f"the summary is not shown escaped on {where}"
    html = pages["partner template page"].content.decode()
    assert html.count("&lt;script&gt;alert(14)&lt;/script&gt;") >= 2  # the version history and the deploy form
    assert "&lt;script&gt;alert(14)&lt;/script&gt;" in pages["template page for staff"].content.decode()

    # Renaming to something hostile, and the confirmations that quote the name in an attribute.
    response = admin.post(
        f"/partner/templates/{template.pk}/edit",
        {"name": HOSTILE_NAME + " 2", "summary": HOSTILE_SUMMARY},
        follow=True,
    )
    html = response.content.decode()
    assert response.redirect_chain and "&lt;script&gt;alert(11)&lt;/script&gt;" in html
    assert_inert(html, "the template page after renaming")
    assert 'data-confirm="Withdraw “&lt;script&gt;alert(11)' in html
    response = admin.post(
        f"/partner/templates/{template.pk}/edit", {"name": HOSTILE_NAME + "\n"}, headers={"HX-Request": "true"}
    )
    assert_inert(response.content.decode(), "the rename form with its errors")
    response = admin.post(f"/partner/templates/{template.pk}/delete", follow=True)
    assert "cannot be deleted while Tailspin Consulting runs it" in response.content.decode()
    assert_inert(response.content.decode(), "the refusal to delete")
