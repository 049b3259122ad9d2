"""Alert recipients: managed and audited through the service, and each email reaches only the
people who asked for that event on that flow (the real mail outbox, real runs against sandboxes)."""

from __future__ import annotations

import pytest
from django.core import mail
from django.db import connection
from django.utils import timezone

from connectors.base import SourceRecord
from integrations.engine.orchestrator import Item
from integrations.housekeeping import sla_alerts
from integrations.models import AuditEvent, FlowStep, NotificationRecipient, Project, SyncException, SyncRun
from integrations.notifications import flows_using, notify_step
from integrations.selectors.alerts import flow_alert_recipients
from integrations.services.alerts import (
    AlertRecipientRefused,
    alert_recipient_add,
    alert_recipient_remove,
    alert_recipient_update,
)
from integrations.services.connections import connection_create
from integrations.services.flows import template_install
from tests.integrations.conftest import make_connection
from tests.integrations.test_approved_time import run_to_end
from tests.integrations.workspace_fixtures import UNREACHABLE, demo_credentials

pytestmark = pytest.mark.django_db

RUN_FAILED = ["on_run_failed"]


def unreachable(vendor: str, name: str | None = None):
    return connection_create(
        name=name or vendor.title(), vendor=vendor, base_url=UNREACHABLE, credentials=demo_credentials(vendor)
    )


def main_flow(flows, key: str):
    return next(f for f in flows if f.template_key.endswith(f"/{key}"))


def won_deals_and_approved_time():
    """Lead-to-project and approved-time-to-invoice installed on unreachable systems: their won-deals and
    approved-time flows."""
    connections = {
        "crm": unreachable("hubspot"),
        "erp": unreachable("netsuite"),
        "psa": unreachable("kantata"),
        "ticketing": unreachable("jira"),
    }
    won_deals = main_flow(template_install(key="lead-to-project", connections=connections), "won-deals")
    approved = main_flow(
        template_install(
            key="approved-time-to-invoice", connections={"psa": connections["psa"], "erp": connections["erp"]}
        ),
        "approved-time",
    )
    return won_deals, approved


# --- The service ------------------------------------------------------------------------------


def test_adding_a_recipient_stores_a_lower_case_address_and_audits_it(in_workspace, world):
    admin = world.user("admin@contoso.localhost")
    flows = template_install(
        key="approved-time-to-invoice", connections={"psa": unreachable("kantata"), "erp": unreachable("netsuite")}
    )
    approved = main_flow(flows, "approved-time")

    recipient = alert_recipient_add(
        email="  Ana.Costa@Wingtip.Example ", events=RUN_FAILED, flows=[approved], actor=admin
    )

    recipient.refresh_from_db()
    assert recipient.email == "ana.costa@wingtip.example"
    assert recipient.events() == ["on_run_failed"]
    assert list(recipient.flows.all()) == [approved]
    event = AuditEvent.objects.get(action="alert.recipient_added")
    assert event.actor_email == admin.email and event.target_id == str(recipient.pk)
    assert event.after == {"email": "ana.costa@wingtip.example", "events": ["on_run_failed"], "flows": [approved.name]}
    assert event.summary == f"ana.costa@wingtip.example is alerted on run failed for {approved.name}"


def test_an_address_already_listed_is_refused_however_it_is_typed(in_workspace):
    alert_recipient_add(email="ops@wingtip.example", events=RUN_FAILED)
    with pytest.raises(AlertRecipientRefused, match="already gets alerts"):
        alert_recipient_add(email="OPS@wingtip.example", events=["on_sla_breach"])
    assert NotificationRecipient.objects.count() == 1
    assert AuditEvent.objects.filter(action="alert.recipient_added").count() == 1


@pytest.mark.parametrize("email", ["", "not-an-address", "ops@", "two@at@example.com"])
def test_an_invalid_address_is_refused(in_workspace, email):
    with pytest.raises(AlertRecipientRefused, match="valid email address"):
        alert_recipient_add(email=email, events=RUN_FAILED)
    assert not NotificationRecipient.objects.exists()


def test_a_recipient_needs_at_least_one_known_event(in_workspace):
    with pytest.raises(AlertRecipientRefused, match="at least one alert"):
        alert_recipient_add(email="ops@wingtip.example", events=[])
    with pytest.raises(AlertRecipientRefused, match="Unknown alert"):
        alert_recipient_add(email="ops@wingtip.example", events=["on_everything"])
    recipient = alert_recipient_add(email="ops@wingtip.example", events=RUN_FAILED)
    with pytest.raises(AlertRecipientRefused, match="at least one alert"):
        alert_recipient_update(recipient=recipient, events=[])
    recipient.refresh_from_db()
    assert recipient.events() == ["on_run_failed"]


def test_changing_events_and_flows_is_audited_with_before_and_after(in_workspace, world):
    admin = world.user("admin@contoso.localhost")
    flows = template_install(
        key="approved-time-to-invoice", connections={"psa": unreachable("kantata"), "erp": unreachable("netsuite")}
    )
    approved = main_flow(flows, "approved-time")
    recipient = alert_recipient_add(email="ops@wingtip.example", events=["on_run_failed", "on_sla_breach"])

    alert_recipient_update(recipient=recipient, events=["on_connection_failed"], flows=[approved], actor=admin)

    recipient.refresh_from_db()
    assert recipient.events() == ["on_connection_failed"] and list(recipient.flows.all()) == [approved]
    event = AuditEvent.objects.get(action="alert.recipient_changed")
    assert event.actor_email == admin.email
    assert event.before == {"email": "ops@wingtip.example", "events": ["on_run_failed", "on_sla_breach"], "flows": []}
    assert event.after == {"email": "ops@wingtip.example", "events": ["on_connection_failed"], "flows": [approved.name]}

    alert_recipient_update(recipient=recipient, events=["on_connection_failed"], flows=[approved], actor=admin)
    assert AuditEvent.objects.filter(action="alert.recipient_changed").count() == 1  # nothing changed: no row


def test_removing_a_recipient_is_audited_with_what_they_received(in_workspace, world):
    admin = world.user("admin@contoso.localhost")
    recipient = alert_recipient_add(email="ops@wingtip.example", events=["on_sla_breach"])
    pk = recipient.pk

    alert_recipient_remove(recipient=recipient, actor=admin)

    assert not NotificationRecipient.objects.filter(pk=pk).exists()
    event = AuditEvent.objects.get(action="alert.recipient_removed")
    assert event.target_id == str(pk) and event.actor_email == admin.email
    assert event.before == {"email": "ops@wingtip.example", "events": ["on_sla_breach"], "flows": []}


# --- Who gets which email -----------------------------------------------------------------------


def test_a_failed_run_mails_the_recipients_of_every_flow_and_of_that_flow_only(allow_sandboxes, in_workspace):
    kantata_sandbox = allow_sandboxes["kantata"]
    kantata = make_connection("kantata", kantata_sandbox)
    netsuite = make_connection("netsuite", allow_sandboxes["netsuite"])
    approved = main_flow(
        template_install(key="approved-time-to-invoice", connections={"psa": kantata, "erp": netsuite}),
        "approved-time",
    )
    employees = main_flow(
        template_install(
            key="employee-to-resource", connections={"hr": unreachable("bamboohr"), "psa": kantata, "erp": netsuite}
        ),
        "employees",
    )
    alert_recipient_add(email="all-flows@wingtip.example", events=RUN_FAILED)
    alert_recipient_add(email="billing@wingtip.example", events=RUN_FAILED, flows=[approved])
    alert_recipient_add(email="people-ops@wingtip.example", events=RUN_FAILED, flows=[employees])
    alert_recipient_add(email="sla-only@wingtip.example", events=["on_sla_breach"])
    mail.outbox.clear()

    kantata_sandbox.set_faults(error_rate=1.0)  # the PSA answers every call with a server error
    try:
        run = run_to_end(approved)
    finally:
        kantata_sandbox.set_faults()

    assert run.status == SyncRun.Status.FAILED, run.error
    failed = [m for m in mail.outbox if m.subject.startswith("Sync failed")]
    assert len(failed) == 1
    assert sorted(failed[0].to) == ["all-flows@wingtip.example", "billing@wingtip.example"]
    assert approved.name in failed[0].subject
    assert "Alerts page (under People) lists you" in failed[0].body  # and how to stop it


def test_a_failing_connection_mails_the_recipients_of_the_flows_that_use_it(allow_sandboxes, in_workspace):
    kantata = make_connection("kantata", allow_sandboxes["kantata"])
    netsuite = make_connection("netsuite", allow_sandboxes["netsuite"])
    approved = main_flow(
        template_install(key="approved-time-to-invoice", connections={"psa": kantata, "erp": netsuite}),
        "approved-time",
    )
    bamboohr = unreachable("bamboohr", "BambooHR (old address)")  # the HTTP policy refuses it: connection failing
    employees = main_flow(
        template_install(key="employee-to-resource", connections={"hr": bamboohr, "psa": kantata, "erp": netsuite}),
        "employees",
    )
    alert_recipient_add(email="all-flows@wingtip.example", events=["on_connection_failed"])
    alert_recipient_add(email="people-ops@wingtip.example", events=["on_connection_failed"], flows=[employees])
    alert_recipient_add(email="billing@wingtip.example", events=["on_connection_failed"], flows=[approved])
    alert_recipient_add(email="runs-only@wingtip.example", events=RUN_FAILED, flows=[employees])
    mail.outbox.clear()

    run = run_to_end(employees)

    assert run.status == SyncRun.Status.FAILED and "BambooHR (old address)" in run.error
    failing = [m for m in mail.outbox if m.subject.startswith("Connection failing")]
    assert len(failing) == 1
    assert sorted(failing[0].to) == ["all-flows@wingtip.example", "people-ops@wingtip.example"]
    assert not [m for m in mail.outbox if m.subject.startswith("Sync failed")]  # the connection's mail says it


def test_a_connection_used_by_a_reference_flow_counts_for_the_flows_that_run_it_first(in_workspace):
    netsuite, bamboohr = unreachable("netsuite"), unreachable("bamboohr")
    kantata = unreachable("kantata")
    approved = main_flow(
        template_install(key="approved-time-to-invoice", connections={"psa": kantata, "erp": netsuite}),
        "approved-time",
    )
    employees = main_flow(
        template_install(key="employee-to-resource", connections={"hr": bamboohr, "psa": kantata, "erp": netsuite}),
        "employees",
    )
    assert approved.pk not in flows_using(bamboohr)
    approved.prerequisites.add(employees)  # approved time now brings the HR people up to date first

    assert {approved.pk, employees.pk} <= set(flows_using(bamboohr))


def test_won_deals_are_announced_to_the_recipients_of_that_flow(in_workspace):
    won_deals, approved = won_deals_and_approved_time()
    alert_recipient_add(email="delivery@wingtip.example", events=["on_deal_won"], flows=[won_deals])
    alert_recipient_add(email="billing@wingtip.example", events=["on_deal_won"], flows=[approved])
    alert_recipient_add(email="leadership@wingtip.example", events=["on_deal_won"])
    alert_recipient_add(email="runs@wingtip.example", events=RUN_FAILED)
    step = won_deals.steps.get(action=FlowStep.Action.NOTIFY)
    project = Project.objects.create(code="PRJ-D77", name="Plant Retrofit")
    won = Item(
        source=SourceRecord(external_id="77", updated_at="2026-01-05T10:00:00Z", data={}),
        records={"project": project},
        created=True,
    )
    mail.outbox.clear()

    assert notify_step(step=step, items=[won]) == 2

    assert len(mail.outbox) == 1
    assert sorted(mail.outbox[0].to) == ["delivery@wingtip.example", "leadership@wingtip.example"]
    assert "PRJ-D77" in mail.outbox[0].body


def test_exceptions_past_the_sla_reach_everyone_who_asked_whatever_their_flows(in_workspace):
    kantata, netsuite, bamboohr = unreachable("kantata"), unreachable("netsuite"), unreachable("bamboohr")
    approved = main_flow(
        template_install(key="approved-time-to-invoice", connections={"psa": kantata, "erp": netsuite}),
        "approved-time",
    )
    employees = main_flow(
        template_install(key="employee-to-resource", connections={"hr": bamboohr, "psa": kantata, "erp": netsuite}),
        "employees",
    )
    SyncException.objects.create(
        flow=approved,
        source_system="kantata",
        object="time_entries",
        external_id="te-1",
        error_code="PROJECT_NOT_IN_TARGET",
        message="Time entry on project PRJ-9 cannot be billed: project code not found in NetSuite",
        created_at=timezone.now() - timezone.timedelta(days=10),
    )
    alert_recipient_add(email="finance-lead@wingtip.example", events=["on_sla_breach"], flows=[employees])
    alert_recipient_add(email="controller@wingtip.example", events=["on_sla_breach"])
    alert_recipient_add(email="runs@wingtip.example", events=RUN_FAILED)
    mail.outbox.clear()
    connection.set_schema_to_public()

    assert sla_alerts() == 1

    assert sorted(mail.outbox[0].to) == ["controller@wingtip.example", "finance-lead@wingtip.example"]


# --- The flow page's list -----------------------------------------------------------------------


def test_the_flow_page_lists_who_hears_about_that_flow_and_for_what(in_workspace):
    won_deals, approved = won_deals_and_approved_time()
    alert_recipient_add(email="everyone@wingtip.example", events=["on_run_failed", "on_deal_won"])
    alert_recipient_add(email="billing@wingtip.example", events=["on_connection_failed"], flows=[approved])
    alert_recipient_add(email="delivery@wingtip.example", events=["on_deal_won"], flows=[won_deals])
    alert_recipient_add(email="sla@wingtip.example", events=["on_sla_breach"])

    on_approved = {r.email: r.flow_events for r in flow_alert_recipients(approved)}
    on_won_deals = {r.email: r.flow_events for r in flow_alert_recipients(won_deals)}

    # Approved time announces no won deals: someone who only wants those does not hear about it.
    assert on_approved == {
        "billing@wingtip.example": ["on_connection_failed"],
        "everyone@wingtip.example": ["on_run_failed"],
    }
    assert on_won_deals == {
        "delivery@wingtip.example": ["on_deal_won"],
        "everyone@wingtip.example": ["on_run_failed", "on_deal_won"],
    }
