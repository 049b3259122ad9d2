"""The firm's systems after the packaged flows ran, compared with figures computed from the firm itself.

The firm adopts the product with history everywhere (customers, projects and employees in the ERP,
projects and people in the PSA, staffing requests in the ticketing system) and a few deliberate
faults. Whatever order the first runs take and however often they run again, every record is in each
system exactly once, each fault is one true exception with what waits on it, invoices bill every
approved billable hour once to the cent, and the dashboards show the firm's own figures.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import connection

from connectors.base import OutboundRecord
from connectors.sandbox.firm import Firm
from integrations import selectors
from integrations.models import ExternalRef, Flow, SyncException, SyncRun
from integrations.services.connections import connector_for
from integrations.services.flows import template_install
from tests.integrations.conftest import TEST_FIRM, make_connection
from tests.integrations.firm_state import expect, jira_state, kantata_state, netsuite_state
from tests.integrations.test_approved_time import run_to_end

pytestmark = pytest.mark.django_db

ALL = ("lead-to-project", "approved-time-to-invoice", "employee-to-resource")
ROLES = {
    "lead-to-project": ("crm", "erp", "psa", "ticketing"),
    "approved-time-to-invoice": ("psa", "erp"),
    "employee-to-resource": ("hr", "psa", "erp"),
}


def workspace(world, slug: str):
    """A fresh copy of a world client on the partner's largest plan, entered (rolled back after the test)."""
    from tenants.models import Client

    connection.set_schema_to_public()
    client = Client.objects.get(pk=world.clients[slug].pk)
    client.plan = client.partner.plans.order_by("-max_connections").first()
    client.save(update_fields=["plan"])
    connection.set_tenant(client)
    return client


def connect(systems, *, crm: str = "hubspot") -> dict:
    vendors = {"crm": crm, "erp": "netsuite", "psa": "kantata", "hr": "bamboohr", "ticketing": "jira"}
    return {role: make_connection(vendor, systems[vendor]) for role, vendor in vendors.items()}


def install(connections: dict, templates) -> dict[str, list[Flow]]:
    """Install each template; returns its main flows (those a person runs), by template key."""
    main = {}
    for key in templates:
        flows = template_install(key=key, connections={role: connections[role] for role in ROLES[key]})
        main[key] = [f for f in flows if f.steps.exists()]
    return main


def run_all(main: dict[str, list[Flow]], order) -> list[SyncRun]:
    runs = []
    for key in order:
        for flow in main[key]:
            run = run_to_end(flow)
            assert run.status in (SyncRun.Status.SUCCEEDED, SyncRun.Status.PARTIAL), (flow.name, run.error)
            runs.append(run)
    return runs


def open_faults() -> dict[str, dict[str, int]]:
    """Live exceptions a clerk sees, by code and subject, with how many records wait on each."""
    faults: dict[str, dict[str, int]] = {}
    for exception in SyncException.objects.filter(status=SyncException.Status.OPEN):
        parked = exception.parked.filter(status=SyncException.Status.PARKED).count()
        assert exception.subject not in faults.get(exception.error_code, {}), f"raised twice: {exception.message}"
        faults.setdefault(exception.error_code, {})[exception.subject] = parked
    return faults


def snapshot(systems) -> dict:
    return {
        "netsuite": netsuite_state(systems["netsuite"].app),
        "kantata": kantata_state(systems["kantata"].app),
        "jira": jira_state(systems["jira"].app),
    }


def assert_roles_hold_the_firm(erp: dict, psa: dict, ticketing: dict, expected) -> None:
    """What the ERP, the PSA and the ticketing system hold once the firm's flows ran, their invoices aside."""
    assert erp["customers"] == expected.erp_customer_names()
    assert erp["jobs"] == expected.erp_project_codes()
    assert erp["employees"] == expected.erp_employee_emails()
    assert erp["history"] == {invoice["number"] for invoice in expected.firm.erp_invoices()}
    assert psa["workspaces"] == expected.psa_project_codes()
    assert psa["users"] == expected.psa_user_emails()
    assert ticketing["staffing"] == expected.staffing_request_codes()


def assert_systems_hold_the_firm(state: dict, expected) -> None:
    erp, psa, ticketing = state["netsuite"], state["kantata"], state["jira"]
    assert_roles_hold_the_firm(erp, psa, ticketing, expected)
    if expected.approved_time:
        assert erp["invoices"] == expected.invoices
        assert erp["invoice_lines"] == expected.invoice_lines


def assert_dashboards_show_the_firm(expected) -> None:
    utilization = selectors.utilization_dashboard(weeks=12)
    people = Counter((row["name"], row["billable"], row["total"]) for row in utilization["people"])
    firm_people = {p["work_email"]: p["display_name"] for p in expected.firm.people()}
    assert people == Counter(
        (firm_people[email], billable, total) for email, (billable, total) in expected.hours_by_person.items()
    )
    assert utilization["utilization"] and utilization["utilization"] > 0
    for currency in {currency for _, _, currency in expected.money_by_project.values()}:
        margin = selectors.margin_dashboard(months=3, currency=currency)
        mine = {code: figures for code, figures in expected.money_by_project.items() if figures[2] == currency}
        assert margin["revenue"] == sum((revenue for revenue, _, _ in mine.values()), Decimal(0))
        assert margin["cost"] == sum((cost for _, cost, _ in mine.values()), Decimal(0))
        for row in margin["by_project"]:
            assert (row["revenue"], row["cost"]) == mine[row["code"]][:2], row["code"]


def assert_cost_rates_never_said_missing_falsely(order) -> None:
    """Whichever flow ran first, no one whose HR record holds a cost rate was ever said to lack one: while the HR
    flow had not finished its first sync, their time waited on that sync (one exception, resolved by it)."""
    expected = expect(Firm(**TEST_FIRM), set(ALL))
    said = set(SyncException.objects.filter(error_code="MISSING_COST_RATE").values_list("subject", flat=True))
    assert said == set(expected.faults["MISSING_COST_RATE"])
    waited = SyncException.objects.filter(error_code="AWAITING_FIRST_SYNC")
    time_before_hr = order.index("approved-time-to-invoice") < order.index("employee-to-resource")
    assert waited.count() == (1 if time_before_hr else 0)
    assert not waited.exclude(status=SyncException.Status.RESOLVED).exists()


ORDERS = [
    ("lead-to-project", "approved-time-to-invoice", "employee-to-resource"),
    ("approved-time-to-invoice", "lead-to-project", "employee-to-resource"),
    ("employee-to-resource", "approved-time-to-invoice", "lead-to-project"),
]


@pytest.mark.parametrize("order", ORDERS, ids=["lead-first", "time-first", "hr-first"])
def test_three_packaged_flows_leave_every_system_as_the_firm_says_in_any_order_and_twice(systems, world, order):
    workspace(world, "wingtip")
    main = install(connect(systems), ALL)
    expected = expect(Firm(**TEST_FIRM), set(ALL))

    run_all(main, order)
    first = snapshot(systems)
    assert_systems_hold_the_firm(first, expected)
    assert open_faults() == expected.faults
    assert_cost_rates_never_said_missing_falsely(order)
    assert_dashboards_show_the_firm(expected)
    exceptions = SyncException.objects.count()

    again = run_all(main, order)  # the schedules' next round: nothing left to do
    assert snapshot(systems) == first
    assert [run.created for run in again] == [0] * len(again)
    assert open_faults() == expected.faults
    assert SyncException.objects.count() == exceptions  # not one more raised


@pytest.mark.parametrize("crm", ["hubspot", "salesforce"])
def test_lead_to_project_alone_links_what_the_erp_psa_and_ticketing_already_hold(systems, world, crm):
    workspace(world, "wingtip")
    main = install(connect(systems, crm=crm), ["lead-to-project"])
    expected = expect(Firm(**TEST_FIRM), {"lead-to-project"})

    (run,) = run_all(main, ["lead-to-project"])
    state = snapshot(systems)
    assert_systems_hold_the_firm(state, expected)
    assert open_faults() == expected.faults
    # The 20 won projects the ERP did not have yet were created there; everything else was linked.
    assert run.created == len(Firm(**TEST_FIRM).projects()) - len(Firm(**TEST_FIRM).erp_projects())
    assert (
        run.linked > 0
        and run.read == run.created + run.linked + run.updated + run.unchanged + run.parked + run.failed + run.skipped
    )

    (again,) = run_all(main, ["lead-to-project"])
    assert snapshot(systems) == state
    assert again.created == 0


def test_two_workspaces_on_one_erp_never_duplicate_each_others_customers(systems, world):
    firm = Firm(**TEST_FIRM)
    workspaces = [workspace(world, "wingtip"), workspace(world, "fabrikam")]
    installed = {}
    for client in workspaces:
        connection.set_tenant(client)
        installed[client.slug] = install(connect(systems), ["lead-to-project"])
    # A new client is won in the CRM: a company the ERP has never seen, and a deal on it.
    crm = connector_for(Flow.objects.get(template_key="lead-to-project/won-deals").source_connection)
    (company,) = crm.write(
        "companies", [OutboundRecord("new-co", {"name": "Brightwater Labs", "domain": "brightwater.example"})]
    )
    crm_app = systems["hubspot"].app
    deal = crm_app.portal._insert(  # a salesperson creates and wins it in HubSpot
        "deals",
        {
            "dealname": "Brightwater Labs Data Platform",
            "dealstage": "closedwon",
            "pipeline": "default",
            "amount": "90000",
            "deal_currency_code": "USD",
        },
        datetime.now(UTC),
        companies=[company.target_id],
    )
    assert deal["id"]

    for client in workspaces + workspaces:  # each workspace twice, alternating
        connection.set_tenant(client)
        run_all(installed[client.slug], ["lead-to-project"])

    erp = netsuite_state(systems["netsuite"].app)
    assert erp["customers"] == Counter(c["name"] for c in firm.customers()) + Counter(["Brightwater Labs"])
    codes = Counter(p["code"] for p in firm.projects())
    assert set(erp["jobs"].values()) == {1} and codes.keys() <= erp["jobs"].keys()
    assert len(erp["jobs"]) == len(codes) + 1  # the new deal's project, once


def test_an_erp_that_already_holds_a_customer_twice_raises_one_exception_and_nothing_cascades(systems, world):
    workspace(world, "wingtip")
    connections = connect(systems)
    firm = Firm(**TEST_FIRM)
    original = firm.customers()[0]
    erp = connector_for(connections["erp"])
    (twice,) = erp.write(
        "customer",
        [OutboundRecord("C9001", {"entityId": "C9001", "companyName": original["name"], "subsidiary": {"id": "1"}})],
        mode="create",
    )
    assert twice.outcome == "created"
    main = install(connections, ALL)
    expected = expect(firm, set(ALL))

    run_all(main, ALL)

    faults = open_faults()
    erp_pair = faults["DUPLICATE_IN_SOURCE"].pop(original["name"])
    assert erp_pair == 0  # the second record holds no projects: nothing waits on it
    assert faults == expected.faults  # and every other fault is what the firm says, no more
    state = netsuite_state(systems["netsuite"].app)
    assert state["invoices"] == expected.invoices  # no cascade: every billable hour is billed
    assert_dashboards_show_the_firm(expected)

    # "These are the same": both ERP records now stand for one customer, and the exception is resolved.
    from integrations.services.matching import exception_duplicate_resolve

    pair = SyncException.objects.get(error_code="DUPLICATE_IN_SOURCE", subject=original["name"])
    exception_duplicate_resolve(exception=pair, keep=pair.fix_actions[0]["keep"], same=True)
    pair.refresh_from_db()
    assert pair.status == SyncException.Status.RESOLVED
    refs = ExternalRef.objects.filter(
        connection=connections["erp"], object="customer", external_id__in=[twice.target_id]
    )
    assert refs.count() == 1
