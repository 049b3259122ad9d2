"""The Sage Intacct connector against its XML gateway sandbox, over real HTTP on loopback."""

from __future__ import annotations

import logging
import time

import pytest
import requests

from connectors.base import AuthenticationFailed, OutboundRecord
from connectors.intacct.client import IntacctConnector
from connectors.intacct.sandbox import DEMO_CREDENTIALS, POD_PATH, create_app
from connectors.registry import get_connector_class
from connectors.sandbox.firm import Firm
from tests.connectors.kit import connector_maker, records_read, sandbox_fixture

pytestmark = pytest.mark.timeout(120)
FIRM = Firm()
LOGIN_PATH = "/ia/xml/xmlgw.phtml"


sandbox = sandbox_fixture(lambda: create_app(FIRM))


@pytest.fixture(autouse=True)
def fresh(sandbox):
    sandbox.reset()


connect = connector_maker(IntacctConnector, DEMO_CREDENTIALS)


def customer(external_id: str, number: str, name: str, **fields) -> OutboundRecord:
    return OutboundRecord(external_id, {"CUSTOMERID": number, "NAME": name, **fields})


def test_the_registry_offers_intacct_as_an_erp():
    assert get_connector_class("intacct") is IntacctConnector
    assert IntacctConnector.category == "erp"
    assert IntacctConnector.objects["CUSTOMER"].page_size == 2000
    assert "ARINVOICEITEMS" in IntacctConnector.objects["ARINVOICE"].fields


def test_connection_signs_in_and_counts_customers(sandbox):
    result = connect(sandbox).test_connection()

    assert result.ok, result.message
    assert "company haldenrowe-demo" in result.message and "(40 customers)" in result.message
    assert result.detail["objects_missing_external_id"] == []


def test_a_wrong_sender_password_is_understood_though_intacct_answers_http_200(sandbox):
    connector = connect(sandbox, {**DEMO_CREDENTIALS, "sender_password": "nope"})
    raw = requests.post(f"{sandbox.url}{LOGIN_PATH}", data=b"<request><control/></request>", timeout=5)

    result = connector.test_connection()

    assert raw.status_code == 200 and b"<status>failure</status>" in raw.content
    assert not result.ok and "refused the Web Services sender" in result.message
    with pytest.raises(AuthenticationFailed):
        records_read(connector, "CUSTOMER")


def test_a_wrong_user_password_is_understood(sandbox):
    with pytest.raises(AuthenticationFailed, match="Sign-in information is incorrect"):
        records_read(connect(sandbox, {**DEMO_CREDENTIALS, "user_password": "nope"}), "CUSTOMER")


def test_calls_go_to_the_endpoint_the_session_names(sandbox):
    sandbox.clear_stats()

    records_read(connect(sandbox), "PROJECT")

    paths = sandbox.stats()["by_path"]
    assert paths[LOGIN_PATH] == {"200": 1}  # getAPISession only
    assert paths[POD_PATH] == {"200": 1}


def test_the_erp_holds_the_firms_history(sandbox):
    connector = connect(sandbox)

    customers = {r.data["CUSTOMERID"]: r.data for r in records_read(connector, "CUSTOMER")}
    projects = {r.data["PROJECTID"]: r.data for r in records_read(connector, "PROJECT")}
    employees = {r.data["PERSONALINFO.EMAIL1"]: r.data for r in records_read(connector, "EMPLOYEE")}
    invoices = records_read(connector, "ARINVOICE")

    assert set(customers) == {c["number"] for c in FIRM.customers()}
    assert set(projects) == {p["code"] for p in FIRM.erp_projects()}  # not the last deals, not the PSA phases
    assert set(employees) == {p["work_email"] for p in FIRM.erp_people()}
    assert len(invoices) == len(FIRM.erp_invoices())
    project = FIRM.erp_projects()[0]
    assert projects[project["code"]]["CUSTOMERNAME"] == project["customer_name"]
    # Owned fields are also nested, so a mapping's dotted path walks to them.
    assert employees[FIRM.erp_people()[0]["work_email"]]["PERSONALINFO"]["EMAIL1"] == FIRM.erp_people()[0]["work_email"]
    # A project names its customer by RECORDNO too, as the customer's read names it.
    customer = next(c for c in customers.values() if c["NAME"] == project["customer_name"])
    assert projects[project["code"]]["CUSTOMERKEY"] == customer["RECORDNO"]
    assert projects[project["code"]]["BEGINDATE"] == project["start_date"]  # read back as ISO dates


def test_pages_of_2000_rows_follow_numremaining(sandbox):
    sandbox.seed(customers=4500)
    sandbox.clear_stats()

    pages = list(connect(sandbox).read("CUSTOMER"))

    assert [len(p.records) for p in pages] == [2000, 2000, 500]
    assert [p.has_more for p in pages] == [True, True, False]
    assert pages[0].total == 4500
    assert len({r.external_id for p in pages for r in p.records}) == 4500
    stamps = [r.updated_at for p in pages for r in p.records]
    assert stamps == sorted(stamps) and pages[-1].cursor == stamps[-1]
    assert sandbox.stats()["by_path"][POD_PATH] == {"200": 3}


def test_incremental_read_returns_only_what_changed(sandbox):
    connector = connect(sandbox)
    cursor = list(connector.read("CUSTOMER"))[-1].cursor
    first = records_read(connector, "CUSTOMER")[0]

    time.sleep(1.1)  # WHENMODIFIED has whole seconds
    changed = connector.write(
        "CUSTOMER", [OutboundRecord("x", {"DISPLAYCONTACT.PHONE1": "+1 555 0199"}, target_id=first.external_id)]
    )
    again = records_read(connector, "CUSTOMER", since=cursor)

    assert changed[0].outcome == "updated"
    assert first.external_id in {r.external_id for r in again if r.updated_at > cursor}
    assert len(again) <= 2  # the change, and the record sitting on the watermark


def test_a_batch_upserted_twice_creates_nothing_new(sandbox):
    batch = [customer(f"contoso-customer-{i}", f"N{i:04d}", f"New Customer {i}") for i in range(100)]
    connector = connect(sandbox)

    first = connector.write("CUSTOMER", batch)
    second = connector.write("CUSTOMER", batch)

    assert {r.outcome for r in first} == {"created"} and {r.outcome for r in second} == {"updated"}
    assert [r.target_id for r in first] == [r.target_id for r in second]
    assert sandbox.app.count("CUSTOMER") == 40 + 100


def test_failures_inside_http_200_fail_their_record_only(sandbox):
    connector = connect(sandbox)
    project = {"NAME": "Pricing Review", "PROJECTCATEGORY": "Contract", "BEGINDATE": "2026-02-02"}

    results = connector.write(
        "PROJECT",
        [
            OutboundRecord("p-1", {**project, "PROJECTID": "PRJ-900", "CUSTOMERID": "C5001"}),
            OutboundRecord("p-2", {**project, "PROJECTID": "PRJ-901", "CUSTOMERID": "C9999"}),
            OutboundRecord("p-3", {**project, "PROJECTID": "PRJ-101", "CUSTOMERID": "C5001"}),
            OutboundRecord("p-4", {**project, "PROJECTID": "PRJ-902", "CUSTOMERID": "C5001", "BILLINGTYPE": "Hourly"}),
            OutboundRecord("p-5", {**project, "PROJECTID": "PRJ-903", "CUSTOMERID": "C5002"}),
        ],
    )

    assert [r.outcome for r in results] == ["created", "failed", "failed", "failed", "created"]
    assert "Invalid Customer C9999" in results[1].error_message
    assert "already exists" in results[2].error_message  # the ERP's own PRJ-101
    assert "Invalid value Hourly" in results[3].error_message


def test_an_invoice_is_written_with_its_lines(sandbox):
    connector = connect(sandbox)
    line = {"ACCOUNTNO": "4000", "AMOUNT": "1750.00", "PROJECTID": "PRJ-101", "MEMO": "January"}
    invoice = {"CUSTOMERID": "C5001", "WHENCREATED": "2026-01-31", "TERMNAME": "Net 30", "RECORDID": "INV-2026-1"}

    results = connector.write(
        "ARINVOICE",
        [
            OutboundRecord("contoso-invoice-1", {**invoice, "ARINVOICEITEMS": [line, {**line, "AMOUNT": "250.00"}]}),
            OutboundRecord("contoso-invoice-2", {**invoice, "ARINVOICEITEMS": [{**line, "PROJECTID": "PRJ-999"}]}),
        ],
    )

    assert [r.outcome for r in results] == ["created", "failed"]
    assert "invalid Project PRJ-999" in results[1].error_message
    [stored] = sandbox.app.find("ARINVOICE", "INTEGRATION_RECORD_ID", "contoso-invoice-1")
    assert stored["TOTALENTERED"] == "2000.00" and stored["WHENCREATED"] == "01/31/2026"
    assert len(stored["ARINVOICEITEMS"]) == 2


def test_a_customer_named_by_the_recordno_a_read_gave_is_sent_as_its_customerid(sandbox):
    connector = connect(sandbox)
    read = {r.data["CUSTOMERID"]: r.external_id for r in records_read(connector, "CUSTOMER")}
    first = FIRM.customers()[0]
    line = {"ACCOUNTNO": "4000", "AMOUNT": "100.00", "MEMO": "March"}
    invoice = {"WHENCREATED": "2026-03-31", "TERMNAME": "Net 30", "ARINVOICEITEMS": [line]}

    results = connector.write(
        "ARINVOICE",
        [
            OutboundRecord("contoso-invoice-7", {**invoice, "CUSTOMERID": {"RECORDNO": read[first["number"]]}}),
            OutboundRecord("contoso-invoice-8", {**invoice, "CUSTOMERID": {"RECORDNO": "999999"}}),
        ],
    )

    assert [r.outcome for r in results] == ["created", "failed"]
    assert results[1].error_code == "INVALID_REFERENCE" and "RECORDNO 999999" in results[1].error_message
    [stored] = sandbox.app.find("ARINVOICE", "INTEGRATION_RECORD_ID", "contoso-invoice-7")
    assert stored["CUSTOMERID"] == first["number"]
    assert not sandbox.app.find("ARINVOICE", "INTEGRATION_RECORD_ID", "contoso-invoice-8")


def test_a_resubmitted_control_id_is_refused(sandbox):
    body = (
        "<request><control><senderid>{s}</senderid><password>{p}</password><controlid>same-one</controlid>"
        "<uniqueid>true</uniqueid><dtdversion>3.0</dtdversion></control><operation><authentication><login>"
        "<userid>{u}</userid><companyid>{c}</companyid><password>{up}</password></login></authentication><content>"
        "<function controlid='f'><getAPISession/></function></content></operation></request>"
    ).format(
        s=DEMO_CREDENTIALS["sender_id"],
        p=DEMO_CREDENTIALS["sender_password"],
        u=DEMO_CREDENTIALS["user_id"],
        c=DEMO_CREDENTIALS["company_id"],
        up=DEMO_CREDENTIALS["user_password"],
    )
    first = requests.post(f"{sandbox.url}{LOGIN_PATH}", data=body, timeout=5)
    second = requests.post(f"{sandbox.url}{LOGIN_PATH}", data=body, timeout=5)

    assert b"<status>success</status>" in first.content
    assert second.status_code == 200 and b"XL03000009" in second.content and b"<operation>" not in second.content


def test_a_write_whose_answer_was_lost_is_not_written_twice(sandbox):
    requests.post(f"{sandbox.url}/_sandbox/lose_answers", json={"count": 1}, timeout=5).raise_for_status()
    batch = [customer(f"lost-{i}", f"L{i:03d}", f"Lost Answer {i}") for i in range(5)]

    results = connect(sandbox).write("CUSTOMER", batch)

    assert [r.outcome for r in results] == ["created"] * 5 and all(r.target_id for r in results)
    assert sandbox.app.count("CUSTOMER") == 40 + 5  # the retry was refused as a duplicate, nothing doubled
    assert sandbox.stats()["by_path"][POD_PATH].get("502") == 1


def test_a_10000_record_read_stays_inside_the_rate_budget(sandbox):
    sandbox.seed(customers=10000)
    sandbox.set_faults(rate_limit={"calls": 3, "window": 1.0})
    sandbox.clear_stats()

    read = records_read(connect(sandbox, rate_per_second=2.0, burst=1), "CUSTOMER")

    stats = sandbox.stats()
    assert len(read) == 10000
    assert stats["rate_limited"] == 0 and stats["max_calls_in_window"] <= 3
    assert stats["calls"] == 6  # getAPISession and five pages of 2,000


def test_throttling_answers_are_waited_out(sandbox):
    sandbox.seed(customers=5000)
    sandbox.set_faults(rate_limit={"calls": 2, "window": 1.0})

    read = records_read(connect(sandbox), "CUSTOMER")

    assert len(read) == 5000 and sandbox.stats()["rate_limited"] >= 1


def test_an_expired_session_is_renewed_once(sandbox):
    connector = connect(sandbox)
    records_read(connector, "CUSTOMER")
    sandbox.app.sessions.clear()
    sandbox.clear_stats()

    again = records_read(connector, "CUSTOMER")

    assert len(again) == 40
    assert sandbox.stats()["by_path"][LOGIN_PATH] == {"200": 1}


def test_malformed_rows_are_rejected_one_by_one(sandbox):
    sandbox.set_faults(malformed_every=8)

    pages = list(connect(sandbox).read("CUSTOMER"))

    rejects = [r for p in pages for r in p.rejects]
    assert len(rejects) == 5 and sum(len(p.records) for p in pages) == 35
    reasons = {r.reason for r in rejects}
    assert "The record has no RECORDNO." in reasons and any("WHENMODIFIED" in r for r in reasons)


def test_secrets_stay_out_of_the_logs(sandbox, caplog):
    caplog.set_level(logging.DEBUG)
    connector = connect(sandbox)
    sandbox.set_faults(error_every=2)
    records_read(connector, "CUSTOMER")

    assert sandbox.stats()["errors_injected"] >= 1
    for secret in (DEMO_CREDENTIALS["sender_password"], DEMO_CREDENTIALS["user_password"], *sandbox.app.sessions):
        assert secret not in caplog.text
