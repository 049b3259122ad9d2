"""Ticket time to billable time, end to end: time logged on tickets in each ticketing system reaches Kantata once,
on the project whose code the ticket's project carries and for the person with the same email, and when Kantata
has approved it the approved-time flow bills it once, linked to the same canonical time entry.

The firm's systems hold their history (every project and person in Kantata, the firm's own time there, projects,
customers and employees in NetSuite, people in BambooHR); the expected end state is computed from the firm alone:
which logs reach Kantata (their code is a project's, their person has a cost rate), minutes per project and person,
the one exception the mistyped code raises with the logs waiting on it, and every invoice to the cent.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from decimal import Decimal

import pytest

from connectors.registry import get_connector_class
from connectors.sandbox.firm import Firm
from connectors.servicenow.sandbox.state import sys_id
from integrations.models import ExternalRef, Flow, SyncException, TimeEntry
from integrations.services.exceptions import value_map_entry_add_and_retry
from integrations.services.flows import template_install
from integrations.services.releases import exceptions_release
from tests.integrations.conftest import TEST_FIRM, make_connection
from tests.integrations.firm_state import TicketTime as Expected
from tests.integrations.firm_state import expect, hours_of, netsuite_state
from tests.integrations.test_approved_time import run_to_end
from tests.integrations.test_firm_end_state import open_faults, workspace

pytestmark = pytest.mark.django_db

TICKETING = ["jira", "asana", "monday", "servicenow"]
# Time logged in a ticketing system: the object the flow reads and our key for a log there.
LOG_IDS = {
    "jira": lambda log: str(100000 + log["id"]),
    "asana": lambda log: str(1205000000000000 + log["id"]),
    "monday": lambda log: str(7100000000 + log["id"]),
    "servicenow": lambda log: sys_id("task_time_worked", log["id"]),
}
ORDERS = {"ticket-time-first": ("ticket", "time"), "approved-time-first": ("time", "ticket")}


def kantata_ticket_entries(app) -> Counter:
    """The entries written to Kantata through its API (the seeded ones are the firm's own), as
    (project code, person email, date, minutes)."""
    with app.lock:
        return Counter(
            (
                app.workspaces[entry["workspace_id"]]["title"].split(" ", 1)[0],
                app.users[entry["user_id"]]["email_address"],
                entry["date_performed"],
                entry["time_in_minutes"],
            )
            for entry in app.time_entry_table.created.values()
        )


def approve_in_kantata(app) -> int:
    """A manager approves the submitted time in Kantata: the entries written through the API become approved."""
    with app.lock:
        now = app._tick()
        for entry in app.time_entry_table.created.values():
            if not entry["approved"]:
                entry["approved"], entry["updated_at"] = True, now
        return len(app.time_entry_table.created)


def install(systems, ticketing: str) -> dict[str, Flow]:
    connections = {
        "ticketing": make_connection(ticketing, systems[ticketing]),
        "psa": make_connection("kantata", systems["kantata"]),
        "erp": make_connection("netsuite", systems["netsuite"]),
        "hr": make_connection("bamboohr", systems["bamboohr"]),
    }
    roles = {
        "employee-to-resource": ("hr", "psa", "erp"),
        "approved-time-to-invoice": ("psa", "erp"),
        "ticket-time-to-psa": ("ticketing", "psa"),
    }
    main = {}
    for key, needed in roles.items():
        flows = template_install(key=key, connections={role: connections[role] for role in needed})
        main.update({f.template_key.split("/", 1)[1]: f for f in flows if f.steps.exists()})
    return {"hr": main["employees"], "time": main["approved-time"], "ticket": main["ticket-time"],
            "expenses": main["approved-expenses"], "ticketing": connections["ticketing"],
            "psa": connections["psa"]}  # fmt: skip


def run(flows, *names) -> list:
    return [run_to_end(flows[name]) for name in names]


def assert_each_log_is_one_time_entry_everywhere(flows, expected: Expected, ticketing: str) -> None:
    """Each synced log is one canonical time entry, linked to its log and to the Kantata entry written for it."""
    key_of = LOG_IDS[ticketing]
    from_tickets = dict(
        ExternalRef.objects.filter(connection=flows["ticketing"], entity="time_entry").values_list(
            "external_id", "record_id"
        )
    )
    assert set(from_tickets) == {key_of(log) for log in expected.synced}
    in_psa = Counter(
        ExternalRef.objects.filter(
            connection=flows["psa"], entity="time_entry", record_id__in=from_tickets.values()
        ).values_list("record_id", flat=True)
    )
    assert in_psa == Counter(from_tickets.values())  # one Kantata entry each, and the same canonical record
    hours = defaultdict(Decimal)
    for code, email, value in TimeEntry.objects.filter(pk__in=from_tickets.values()).values_list(
        "project__code", "resource__email", "hours"
    ):
        hours[(code, email)] += value
    want = defaultdict(Decimal)
    for log in expected.synced:
        want[(log["code"], log["person_email"])] += hours_of(log["minutes"])
    assert hours == want


@pytest.mark.parametrize("order", sorted(ORDERS))
@pytest.mark.parametrize("ticketing", TICKETING)
def test_ticket_time_reaches_the_psa_once_and_is_billed_once(systems, world, ticketing, order):
    workspace(world, "wingtip")
    flows = install(systems, ticketing)
    firm = Firm(**TEST_FIRM)
    expected = Expected(firm)
    kantata = systems["kantata"].app

    run(flows, "hr")
    for name in ORDERS[order]:
        run(flows, name)
    assert kantata_ticket_entries(kantata) == Counter(
        (log["code"], log["person_email"], log["date"], log["minutes"]) for log in expected.synced
    )
    assert open_faults()["PROJECT_NOT_FOUND"] == expected.ticket_faults()["PROJECT_NOT_FOUND"]
    mistyped = SyncException.objects.get(error_code="PROJECT_NOT_FOUND", status=SyncException.Status.OPEN)
    assert mistyped.message == (
        f"No project here has the code PRJ-1O5 that {get_connector_class(ticketing).label} gives, so the time "
        "logged under it cannot be synced: map PRJ-1O5 to the project's code."
    )

    # Kantata approves the time; the approved-time flow reads it, links it and bills it with the rest.
    assert approve_in_kantata(kantata) == len(expected.synced)
    run(flows, "time", "expenses")
    assert_each_log_is_one_time_entry_everywhere(flows, expected, ticketing)
    billed = expect(firm, {"approved-time-to-invoice", "employee-to-resource"}, extra_time=expected.as_psa_time)
    state = netsuite_state(systems["netsuite"].app)
    assert state["invoices"] == billed.invoices
    assert state["invoice_lines"] == billed.invoice_lines
    faults = open_faults()
    for code, subjects in expected.ticket_faults().items():
        for subject, parked in subjects.items():
            if code == "MISSING_COST_RATE":
                assert faults[code][subject] >= parked, subject  # the firm's own time waits on it too
            else:
                assert faults[code][subject] == parked, subject

    # A second round of every flow changes nothing anywhere.
    entries_before = kantata_ticket_entries(kantata)
    exceptions = SyncException.objects.count()
    again = run(flows, "hr", "ticket", "time", "expenses")
    assert [r.created for r in again] == [0, 0, 0, 0]
    assert kantata_ticket_entries(kantata) == entries_before
    assert SyncException.objects.count() == exceptions
    assert netsuite_state(systems["netsuite"].app)["invoices"] == billed.invoices


@pytest.mark.parametrize("ticketing", TICKETING)
def test_mapping_the_mistyped_code_syncs_every_log_that_waited_on_it(systems, world, ticketing):
    workspace(world, "wingtip")
    flows = install(systems, ticketing)
    expected = Expected(Firm(**TEST_FIRM))
    run(flows, "hr", "ticket")
    outcome = value_map_entry_add_and_retry(
        value_map_key="ticket-project-codes", source_value="PRJ-1O5", target_value="PRJ-105"
    )
    exceptions_release()
    assert outcome["resolved"] == 1
    assert not SyncException.objects.filter(error_code="PROJECT_NOT_FOUND", status=SyncException.Status.OPEN)
    people = {p["work_email"]: p for p in expected.firm.people()}
    gaps = expected.firm.hr_gaps()
    released = [
        log
        for log in expected.unknown
        if people[log["person_email"]]["cost_rate"] is not None and people[log["person_email"]]["id"] not in gaps
    ]
    assert kantata_ticket_entries(systems["kantata"].app) == Counter(
        ("PRJ-105" if log["code"] == "PRJ-1O5" else log["code"], log["person_email"], log["date"], log["minutes"])
        for log in [*expected.synced, *released]
    )


@pytest.mark.parametrize("ticketing", ["jira"])
def test_ticket_time_read_before_hr_waits_on_the_same_causes_once_hr_has_run(systems, world, ticketing):
    """In whichever order the flows first run, a clerk sees the same causes: time of a person whose HR record
    could not sync waits on that record's exception, not on a "no cost rate" that HR would contradict."""
    workspace(world, "wingtip")
    flows = install(systems, ticketing)
    expected = Expected(Firm(**TEST_FIRM))

    run(flows, "ticket", "hr")

    faults = open_faults()
    for code, subjects in expected.ticket_faults().items():
        for subject, parked in subjects.items():
            if code == "MISSING_COST_RATE":
                assert faults[code][subject] >= parked, subject
            else:
                assert faults[code][subject] == parked, (code, subject)
    hr_gaps = {p["work_email"] for p in expected.firm.people() if p["id"] in expected.firm.hr_gaps()}
    assert not hr_gaps & set(faults.get("MISSING_COST_RATE", {}))
    # Nor, before HR had synced, was anyone said to lack a cost rate that HR holds: their time waited on that
    # first sync, one exception that the sync resolved.
    rated_in_hr = {
        p["work_email"]
        for p in expected.firm.people()
        if p["cost_rate"] is not None and p["id"] not in expected.firm.hr_gaps()
    }
    said = set(SyncException.objects.filter(error_code="MISSING_COST_RATE").values_list("subject", flat=True))
    assert not said & rated_in_hr
    (waited,) = SyncException.objects.filter(error_code="AWAITING_FIRST_SYNC")
    assert waited.status == SyncException.Status.RESOLVED
    assert waited.message.startswith("Cost rates come from Bamboohr (flow ")
