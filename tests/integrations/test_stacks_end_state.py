"""The packaged flows with the newer systems in their roles, checked against the firm itself.

Each stack takes the firm's history as its systems hold it (customers, projects and employees in the ERP,
projects and people in the PSA) and runs the three packaged flows twice: every record is in each system
exactly once, each fault is one true exception with what waits on it, invoices bill every approved billable
hour once to the cent, the dashboards show the firm's own figures, and the second round changes nothing.
Certinia approves a week's timecard as a whole, and Workday keeps every worker in a supervisory organization
(so it lacks the firm's missing work emails, not its missing departments): the figures expected are computed
from the firm with those two rules (tests/integrations/firm_state.py).
"""

from __future__ import annotations

import pytest

from connectors.sandbox.firm import Firm
from integrations.catalog import TEMPLATES
from integrations.models import Resource, SyncException
from tests.integrations.conftest import TEST_FIRM, make_connection
from tests.integrations.firm_state import (
    acumatica_state,
    amounts_only,
    businesscentral_state,
    certinia_state,
    expect,
    float_state,
    intacct_state,
    jira_state,
    kantata_state,
    kimble_state,
    netsuite_state,
    weekly_approval,
    workday_gaps,
)
from tests.integrations.test_firm_end_state import (
    ALL,
    ORDERS,
    assert_dashboards_show_the_firm,
    assert_roles_hold_the_firm,
    install,
    open_faults,
    run_all,
    workspace,
)

pytestmark = pytest.mark.django_db

STACKS = {
    # The Microsoft stack a Dynamics shop runs, with Certinia for delivery and Workday for people.
    "dynamics365-businesscentral-certinia-workday": {
        "crm": "dynamics365",
        "erp": "businesscentral",
        "psa": "certinia",
        "hr": "workday",
        "ticketing": "jira",
    },
    "workday-certinia-intacct": {
        "crm": "dynamics365",
        "erp": "intacct",
        "psa": "certinia",
        "hr": "workday",
        "ticketing": "jira",
    },
    "adp-kantata-netsuite": {"crm": "hubspot", "erp": "netsuite", "psa": "kantata", "hr": "adp", "ticketing": "jira"},
    "salesforce-acumatica-kimble-bamboohr": {
        "crm": "salesforce",
        "erp": "acumatica",
        "psa": "kimble",
        "hr": "bamboohr",
        "ticketing": "jira",
    },
}
ERP_STATE = {
    "netsuite": netsuite_state,
    "businesscentral": businesscentral_state,
    "intacct": intacct_state,
    "acumatica": acumatica_state,
}
PSA_STATE = {"kantata": kantata_state, "certinia": certinia_state, "kimble": kimble_state}


def snapshot(systems, stack: dict) -> dict:
    return {
        "erp": ERP_STATE[stack["erp"]](systems[stack["erp"]].app),
        "psa": PSA_STATE[stack["psa"]](systems[stack["psa"]].app),
        "ticketing": jira_state(systems["jira"].app),
    }


def expected_for(stack: dict):
    firm = Firm(**TEST_FIRM)
    return expect(
        firm,
        set(ALL),
        approved=weekly_approval(firm) if stack["psa"] == "certinia" else None,
        hr_gaps=workday_gaps(firm) if stack["hr"] == "workday" else None,
    )


def assert_systems_hold_the_firm(state: dict, expected, stack: dict) -> None:
    erp, psa, ticketing = state["erp"], state["psa"], state["ticketing"]
    assert_roles_hold_the_firm(erp, psa, ticketing, expected)
    assert erp["invoices"] == expected.invoices
    lines = amounts_only(expected.invoice_lines) if stack["erp"] == "intacct" else expected.invoice_lines
    assert erp["invoice_lines"] == lines


def assert_leavers_are_the_firms(expected) -> None:
    """Whoever left the firm is a leaver in the canonical store, whatever the HR system calls it, and nobody else."""
    people = {person["work_email"].lower(): person for person in expected.firm.people() if person["work_email"]}
    synced = dict(Resource.objects.values_list("email", "status"))
    assert synced, "no people reached the canonical store"
    left = {email for email, status in synced.items() if status in ("terminated", "inactive")}
    assert left == {email for email in synced if people[email]["status"] == "Inactive"}
    assert left, "the firm has leavers"


MICROSOFT = "dynamics365-businesscentral-certinia-workday"
# Each stack in the order a partner sets flows up; the Microsoft stack in the other two first-run orders too.
RUNS = [(name, ALL) for name in sorted(STACKS)] + [(MICROSOFT, order) for order in ORDERS if order != ALL]


@pytest.mark.parametrize(("name", "order"), RUNS, ids=[f"{name}:{order[0]}-first" for name, order in RUNS])
def test_a_stack_of_newer_systems_ends_as_the_firm_says_and_a_second_round_changes_nothing(systems, world, name, order):
    stack = STACKS[name]
    workspace(world, "wingtip")
    connections = {role: make_connection(vendor, systems[vendor]) for role, vendor in stack.items()}
    main = install(connections, ALL)
    expected = expected_for(stack)

    run_all(main, order)
    first = snapshot(systems, stack)
    assert_systems_hold_the_firm(first, expected, stack)
    assert open_faults() == expected.faults
    assert_dashboards_show_the_firm(expected)
    assert_leavers_are_the_firms(expected)
    exceptions = SyncException.objects.count()
    # A worker whose work email is missing is named by name in the sentence, not by the HR system's id for them.
    for exception in SyncException.objects.filter(error_code="REQUIRED_MISSING", status=SyncException.Status.OPEN):
        assert exception.external_id not in exception.message, exception.message
        assert exception.subject in exception.message, exception.message

    if stack["erp"] == "acumatica":  # every piece of work signed out: no API seat is left taken, none was refused
        assert systems["acumatica"].app.active_sessions() == 0 and systems["acumatica"].app.refused_logins == 0

    again = run_all(main, order)  # the schedules' next round: nothing left to do
    assert snapshot(systems, stack) == first
    assert [run.created for run in again] == [0] * len(again)
    assert open_faults() == expected.faults
    assert SyncException.objects.count() == exceptions


# Float schedules people on projects: it is the PSA of lead-to-project and employee to resource, never of approved
# time to invoice (no approvals, no rates, one currency, no expenses).
FLOAT_STACK = {"crm": "hubspot", "erp": "netsuite", "psa": "float", "hr": "bamboohr", "ticketing": "jira"}
PLANNING = ("lead-to-project", "employee-to-resource")


@pytest.mark.parametrize(
    "order", [PLANNING, PLANNING[::-1]], ids=[f"{order[0]}-first" for order in (PLANNING, PLANNING[::-1])]
)
def test_float_as_the_psa_of_lead_to_project_and_employee_to_resource_ends_as_the_firm_says_twice(
    systems, world, order
):
    assert "float" not in TEMPLATES["approved-time-to-invoice"].vendors("psa")
    workspace(world, "wingtip")
    connections = {role: make_connection(vendor, systems[vendor]) for role, vendor in FLOAT_STACK.items()}
    main = install(connections, PLANNING)
    expected = expect(Firm(**TEST_FIRM), set(PLANNING))

    def state() -> dict:
        return {
            "erp": netsuite_state(systems["netsuite"].app),
            "psa": float_state(systems["float"].app),
            "ticketing": jira_state(systems["jira"].app),
        }

    run_all(main, order)
    first = state()
    erp, psa = first["erp"], first["psa"]
    assert erp["customers"] == expected.erp_customer_names()
    assert erp["jobs"] == expected.erp_project_codes()  # the won deals' projects too, each once
    assert erp["employees"] == expected.erp_employee_emails()
    assert erp["invoices"] == {}  # nothing bills through Float
    assert psa["workspaces"] == expected.psa_project_codes()
    assert psa["users"] == expected.psa_user_emails()
    assert first["ticketing"]["staffing"] == expected.staffing_request_codes()
    assert open_faults() == expected.faults
    assert_leavers_are_the_firms(expected)
    exceptions = SyncException.objects.count()

    again = run_all(main, order)
    assert state() == first
    assert [run.created for run in again] == [0] * len(again)
    assert open_faults() == expected.faults
    assert SyncException.objects.count() == exceptions
