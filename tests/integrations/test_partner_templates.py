"""Integration templates: a partner saves a client's flow as a version, deploys it, clients install it, upgrades.

Contoso's approved-time flow is the source; Tailspin and Wingtip (same partner) receive it;
Summit's people must reach none of it. Every test runs in a transaction of its own.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal

import pytest
from django.db import connection
from django_tenants.utils import tenant_context

from integrations.models import AuditEvent, Flow, MappingRule, ValueMap, ValueMapEntry
from integrations.partner_templates.services import (
    deployment_install,
    deployment_withdraw,
    deployments_upgrade,
    rollout_client_upgrade,
    template_deploy,
    template_version_save,
)
from integrations.services.flows import FlowConfigurationError, template_install
from tenants.models import Client, Plan, TemplateDeployment
from tests.integrations.partner_templates_support import PARTNER_ADMIN, connect, install_in, next_version, saved  # noqa: F401 -- fixtures
from tests.integrations.workspace_fixtures import UNREACHABLE
from tests.support import NORTHWIND, SUMMIT, browser_for

pytestmark = pytest.mark.django_db


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

    # Upgrade everyone to v2: a task a client, run here as the bulk worker runs them.
    response = admin.post(f"/partner/templates/{template.pk}/upgrade", follow=True)
    text = response.content.decode()
    assert "Moving 2 clients to v2, one at a time" in text
    assert 'data-running="yes"' in text and "0 of 2 clients done" in text
    rollout = template.rollouts.get()
    for deployment in template.deployments.all():
        rollout_client_upgrade(rollout_id=rollout.pk, deployment_id=deployment.pk)
    connection.set_schema_to_public()
    rollout.refresh_from_db()
    assert (rollout.done, rollout.upgraded, rollout.refusals, rollout.running) == (2, 2, [], False)
    text = admin.get(f"/partner/templates/{template.pk}/").content.decode()
    assert 'data-running="no"' in text and "2 of 2 clients done · 2 upgraded" in text
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
    version_2 = next_version(world, saved)
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
    version_2 = next_version(world, saved)
    [outcome] = deployments_upgrade(template=template, version=version_2, actor=world.user(PARTNER_ADMIN))
    assert outcome.refused == "“Approved time to invoices” is syncing now; upgrade it when the run has finished."
    assert TemplateDeployment.objects.get(template=template, client=tailspin).version == saved


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
