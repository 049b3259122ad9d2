"""The Acumatica connector against its contract-based REST sandbox, over real HTTP on loopback."""

from __future__ import annotations

import logging
import time

import pytest
import requests

from connectors.acumatica.client import AcumaticaConnector
from connectors.acumatica.sandbox import DEMO_CREDENTIALS, create_app
from connectors.base import AuthenticationFailed, OutboundRecord, RateLimited, VendorUnavailable
from connectors.registry import get_connector_class
from connectors.sandbox.firm import Firm
from tests.connectors.kit import connector_maker, records_read, sandbox_fixture

pytestmark = pytest.mark.timeout(120)
FIRM = Firm()
ROOT = "/entity/Default/24.200.001"


sandbox = sandbox_fixture(lambda: create_app(FIRM))


@pytest.fixture(autouse=True)
def fresh(sandbox):
    sandbox.reset()
    sandbox.app.seats = 2
    yield
    assert sandbox.app.active_sessions() == 0, "a piece of work left its API seat taken"


connect = connector_maker(AcumaticaConnector, DEMO_CREDENTIALS)


def login(sandbox) -> requests.Response:
    body = {"name": DEMO_CREDENTIALS["username"], "password": DEMO_CREDENTIALS["password"], "tenant": "HaldenRowe"}
    return requests.post(f"{sandbox.url}/entity/auth/login", json=body, timeout=5)


def test_the_registry_offers_acumatica_as_an_erp():
    assert get_connector_class("acumatica") is AcumaticaConnector
    assert AcumaticaConnector.category == "erp"
    assert set(AcumaticaConnector.objects) == {"Customer", "Project", "Employee", "Invoice"}
    assert all(spec.writable for spec in AcumaticaConnector.objects.values())


def test_connection_signs_in_names_the_endpoint_and_signs_out(sandbox):
    result = connect(sandbox).test_connection()

    assert result.ok, result.message
    assert "tenant HaldenRowe" in result.message and "Default/24.200.001" in result.message
    assert sandbox.app.logins == 1 and sandbox.app.logouts == 1


def test_an_endpoint_version_the_instance_does_not_publish_is_said_so(sandbox):
    result = connect(sandbox, {**DEMO_CREDENTIALS, "endpoint_version": "25.100.001"}).test_connection()

    assert not result.ok and "does not publish the Default endpoint 25.100.001" in result.message
    assert sandbox.app.active_sessions() == 0


def test_a_wrong_password_is_understood_and_not_retried(sandbox):
    sandbox.clear_stats()
    connector = connect(sandbox, {**DEMO_CREDENTIALS, "password": "nope"})

    result = connector.test_connection()

    assert not result.ok and "Invalid credentials" in result.message and "HaldenRowe" in result.message
    with pytest.raises(AuthenticationFailed):
        records_read(connector, "Customer")
    assert sandbox.stats()["by_path"]["/entity/auth/login"] == {"500": 2}  # one answer each, no retry


def test_every_field_comes_wrapped_and_is_read_unwrapped(sandbox):
    cookie = login(sandbox).cookies
    raw = requests.get(
        f"{sandbox.url}{ROOT}/Employee", params={"$top": 1, "$expand": "ContactInfo"}, cookies=cookie, timeout=5
    )
    requests.post(f"{sandbox.url}/entity/auth/logout", cookies=cookie, timeout=5)

    employees = {r.data["ContactInfo"]["Email"]: r for r in records_read(connect(sandbox), "Employee")}

    assert raw.json()[0]["EmployeeID"] == {"value": "E1001"}
    assert raw.json()[0]["ContactInfo"]["Email"] == {"value": FIRM.people()[0]["work_email"]}
    assert set(employees) == {p["work_email"] for p in FIRM.erp_people()}
    assert employees[FIRM.people()[0]["work_email"]].external_id == "E1001"


def test_the_erp_holds_the_firms_history(sandbox):
    connector = connect(sandbox)

    customers = {r.external_id: r.data for r in records_read(connector, "Customer")}
    projects = {r.external_id: r.data for r in records_read(connector, "Project")}
    invoices = records_read(connector, "Invoice")

    assert set(customers) == {c["number"] for c in FIRM.customers()}
    assert set(projects) == {p["code"] for p in FIRM.erp_projects()}  # not the last deals, not the PSA phases
    assert {r.data["ReferenceNbr"] for r in invoices} == {i["number"] for i in FIRM.erp_invoices()}
    project = FIRM.erp_projects()[0]
    # A project names its customer by the CustomerID the customers' read gives as their external id.
    assert customers[projects[project["code"]]["Customer"]]["CustomerName"] == project["customer_name"]
    assert customers["C5001"]["MainContact"]["WebSite"] == f"www.{FIRM.customers()[0]['domain']}"
    assert invoices[0].data["Date"] == FIRM.erp_invoices()[0]["date"]  # a date, not midnight with an offset


def test_a_sign_in_past_the_licence_seats_is_refused_as_acumatica_does(sandbox):
    held = [login(sandbox), login(sandbox)]
    third = login(sandbox)

    assert [r.status_code for r in held] == [204, 204]
    assert third.status_code == 500 and third.json()["exceptionMessage"] == "API Login Limit"
    with pytest.raises(RateLimited, match="every API seat of its licence is in use"):
        records_read(connect(sandbox), "Customer")
    for response in held:
        requests.post(f"{sandbox.url}/entity/auth/logout", cookies=response.cookies, timeout=5)
    assert len(records_read(connect(sandbox), "Customer")) == 40


def test_a_trial_licence_serves_many_reads_and_writes_because_each_one_signs_out(sandbox):
    sandbox.app.seats = 1
    connector = connect(sandbox)

    for n in range(5):
        records_read(connector, "Project")
        connector.write("Customer", [OutboundRecord(f"c-{n}", {"CustomerID": f"T{n}", "CustomerName": f"Trial {n}"})])

    assert sandbox.app.logins == sandbox.app.logouts == 10 and sandbox.app.refused_logins == 0


def test_work_that_fails_still_signs_out(sandbox):
    sandbox.set_faults(error_every=1)  # every call after sign-in answers 503
    connector = connect(sandbox, max_retries=1)

    with pytest.raises(VendorUnavailable):
        records_read(connector, "Customer")
    sandbox.set_faults()

    assert sandbox.app.active_sessions() == 0 or sandbox.app.logins == 0


def test_a_read_abandoned_half_way_signs_out_when_closed(sandbox):
    sandbox.seed(customers=2500)
    pages = connect(sandbox).read("Customer", page_size=1000)

    next(pages)
    assert sandbox.app.active_sessions() == 1
    pages.close()

    assert sandbox.app.active_sessions() == 0 and sandbox.app.logouts == 1


def test_pages_follow_top_and_skip_and_the_cursor_waits_for_the_last_page(sandbox):
    sandbox.seed(customers=2500)
    sandbox.clear_stats()

    pages = list(connect(sandbox).read("Customer"))

    assert [len(p.records) for p in pages] == [1000, 1000, 500]
    assert [p.has_more for p in pages] == [True, True, False]
    assert len({r.external_id for p in pages for r in p.records}) == 2500
    # Key order is not change order: only the last page may move the cursor, to when the read began.
    assert [p.cursor for p in pages[:-1]] == [None, None] and pages[-1].cursor
    assert sandbox.stats()["by_path"][f"{ROOT}/Customer"] == {"200": 3}


def test_incremental_read_returns_only_what_changed(sandbox):
    connector = connect(sandbox)
    cursor = list(connector.read("Customer"))[-1].cursor
    time.sleep(1.1)  # the cursor has whole seconds

    changed = connector.write(
        "Customer", [OutboundRecord("x", {"CustomerID": "C5003", "MainContact.Phone1": "+1 555 0199"})]
    )
    again = records_read(connector, "Customer", since=cursor)

    assert changed[0].outcome == "updated" and changed[0].target_id == "C5003"
    assert [r.external_id for r in again] == ["C5003"]
    assert again[0].data["MainContact"]["Phone1"] == "+1 555 0199"


def test_a_batch_upserted_twice_creates_nothing_new(sandbox):
    batch = [
        OutboundRecord(f"contoso-customer-{i}", {"CustomerID": f"n{i:04d}", "CustomerName": f"New Customer {i}"})
        for i in range(30)
    ]
    connector = connect(sandbox)

    first = connector.write("Customer", batch)
    sandbox.clear_stats()
    second = connector.write("Customer", batch)

    assert {r.outcome for r in first} == {"created"} and {r.outcome for r in second} == {"unchanged"}
    assert [r.target_id for r in first] == [f"N{i:04d}" for i in range(30)]  # the key's input mask upper-cases
    assert len(sandbox.app.tables["Customer"]) == 40 + 30
    assert f"{ROOT}/Customer" in sandbox.stats()["by_path"] and "PUT" not in str(sandbox.stats())
    assert sandbox.stats()["by_path"][f"{ROOT}/Customer"] == {"200": 1}  # one look-up, no PUT


def test_a_refused_record_fails_alone_with_acumaticas_field_errors(sandbox):
    project = {"Description": "Pricing Review", "Status": "Active"}

    results = connect(sandbox).write(
        "Project",
        [
            OutboundRecord("p-1", {**project, "ProjectID": "PRJ-900", "Customer": "C5001"}),
            OutboundRecord("p-2", {**project, "ProjectID": "PRJ-901", "Customer": "C9999"}),
            OutboundRecord("p-3", {**project, "ProjectID": "PRJ-902", "Customer": "C5001", "Status": "Hourly"}),
            OutboundRecord("p-4", {**project, "ProjectID": "PRJ-101", "Description": FIRM.projects()[0]["name"]}),
        ],
    )

    assert [r.outcome for r in results] == ["created", "failed", "failed", "unchanged"]
    assert "Customer 'C9999' cannot be found in the system." in results[1].error_message
    assert results[1].error_code == "VALIDATION" and "Status" in results[2].error_message
    assert sandbox.app.by_key("Project", {"ProjectID": "PRJ-900"})["Customer"] == "C5001"


def test_an_invoice_is_found_again_by_its_customer_order_and_its_lines_replaced(sandbox):
    connector = connect(sandbox)
    lines = [
        {"TransactionDescription": "Professional services at 175.00/h", "Qty": "10.50", "UnitPrice": "175.00"},
        {"TransactionDescription": "Expense: Travel", "Qty": "1", "UnitPrice": "320.10"},
    ]
    invoice = {
        "Type": "Invoice",
        "Customer": "C5001",
        "Date": "2026-01-31",
        "CustomerOrder": "PRJ-101-2026-01",
        "Hold": False,
    }

    first = connector.write("Invoice", [OutboundRecord("contoso-invoice-1", {**invoice, "Details": lines})])
    again = connector.write("Invoice", [OutboundRecord("contoso-invoice-1", {**invoice, "Details": lines})])
    changed = connector.write("Invoice", [OutboundRecord("contoso-invoice-1", {**invoice, "Details": lines[:1]})])

    assert [first[0].outcome, again[0].outcome, changed[0].outcome] == ["created", "unchanged", "updated"]
    assert first[0].target_id == again[0].target_id == changed[0].target_id
    [stored] = [i for i in sandbox.app.tables["Invoice"].values() if i["CustomerOrder"] == "PRJ-101-2026-01"]
    assert str(stored["Amount"]) == "1837.50" and len(stored["Details"]) == 1 and stored["Status"] == "Balanced"


def test_a_released_invoice_is_not_changed(sandbox):
    released = next(iter(sandbox.app.tables["Invoice"].values()))
    record = OutboundRecord("old", {"CustomerOrder": "X", "Description": "changed"}, target_id=released["id"])
    connector = connect(sandbox)
    history = {r.external_id: r for r in records_read(connector, "Invoice")}

    results = connector.write("Invoice", [record])  # no invoice holds CustomerOrder X: a new one, lacking a customer

    assert released["id"] in history and results[0].outcome == "failed"
    assert "'Customer' cannot be empty." in results[0].error_message


def test_a_10000_record_read_stays_inside_the_rate_budget(sandbox):
    sandbox.seed(customers=10000)
    sandbox.set_faults(rate_limit={"calls": 3, "window": 1.0})
    sandbox.clear_stats()

    read = records_read(connect(sandbox, rate_per_second=2.0, burst=1), "Customer")

    stats = sandbox.stats()
    assert len(read) == 10000
    assert stats["rate_limited"] == 0 and stats["max_calls_in_window"] <= 3
    assert stats["calls"] == 13  # sign-in, eleven pages of 1,000 (the last one empty), sign-out


def test_throttling_answers_are_waited_out(sandbox):
    sandbox.seed(customers=3000)
    sandbox.set_faults(rate_limit={"calls": 2, "window": 1.0, "retry_after": 1})

    read = records_read(connect(sandbox), "Customer")

    assert len(read) == 3000 and sandbox.stats()["rate_limited"] >= 1


def test_an_expired_session_is_renewed_once(sandbox):
    sandbox.seed(customers=1500)
    pages = connect(sandbox).read("Customer")
    next(pages)
    with sandbox.app.lock:
        sandbox.app.sessions.clear()  # the session timed out between two pages

    rest = [r for page in pages for r in page.records]

    assert len(rest) == 500 and sandbox.app.logins == 2


def test_malformed_rows_are_rejected_one_by_one(sandbox):
    sandbox.set_faults(malformed_every=8)

    pages = list(connect(sandbox).read("Customer"))

    rejects = [r for p in pages for r in p.rejects]
    assert len(rejects) == 5 and sum(len(p.records) for p in pages) == 35
    reasons = {r.reason for r in rejects}
    assert "Acumatica returned a record without its id." in reasons and any(
        "LastModifiedDateTime" in r for r in reasons
    )


def test_secrets_stay_out_of_the_logs(sandbox, caplog):
    caplog.set_level(logging.DEBUG)
    sandbox.set_faults(error_every=2)
    connector = connect(sandbox)
    records_read(connector, "Customer")

    assert sandbox.stats()["errors_injected"] >= 1
    assert DEMO_CREDENTIALS["password"] not in caplog.text
    for token in connector.session.secrets:
        assert token not in caplog.text
