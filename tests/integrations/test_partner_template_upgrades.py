"""An upgrade of a partner template keeps what the client made, matches steps once, and two at once do the work
once.
"""

from __future__ import annotations

import threading
import time

import pytest
from django.db import IntegrityError, OperationalError, connection, transaction
from django_tenants.utils import tenant_context

from integrations.models import AuditEvent, Flow, FlowStep, MappingRule
from integrations.partner_templates.selectors import template_for
from integrations.partner_templates.services import (
    deployment_upgrade,
    deployments_upgrade,
    template_deploy,
)
from integrations.services.flows import FlowConfigurationError, flow_step_add, template_install
from tests.integrations.partner_templates_support import PARTNER_ADMIN, connect, install_in, next_version, saved  # noqa: F401 -- fixtures

pytestmark = pytest.mark.django_db


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
    return next_version(world, saved)


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

    [outcome] = deployments_upgrade(
        template=saved.template, version=saved.template.versions.get(number=2), actor=world.user(PARTNER_ADMIN)
    )
    assert outcome.message == f"Tailspin Consulting runs v2 now: 1 rule changed, kept your changes to “{MAIN_MAPPING}”."
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
