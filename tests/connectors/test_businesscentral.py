"""The Business Central connector against its sandbox, over real HTTP on loopback."""

from __future__ import annotations

import json
import logging
import threading
import uuid

import pytest
import requests
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from connectors.base import AuthenticationFailed, OutboundRecord, WebhookRejected
from connectors.businesscentral.client import BATCH_LIMIT, BusinessCentralConnector
from connectors.businesscentral.sandbox import COMPANY_ID, DEMO_CREDENTIALS, ENVIRONMENT, TENANT_ID, create_app
from connectors.registry import get_connector_class
from connectors.sandbox.firm import Firm
from tests.connectors.kit import read_whole, sandbox_connector, sandbox_fixture

FIRM = Firm()
ROOT = f"/v2.0/{TENANT_ID}/{ENVIRONMENT}/api/v2.0"
COMPANY = f"{ROOT}/companies({COMPANY_ID})"
CLIENT_STATE = DEMO_CREDENTIALS["webhook_secret"]


sandbox = sandbox_fixture(lambda: create_app(FIRM))


@pytest.fixture(autouse=True)
def clean(sandbox):
    sandbox.reset()
    yield
    sandbox.app.set_queue(5, 95)
    sandbox.app.processing_seconds = 0.0


def connect(sandbox, credentials=None, **policy) -> BusinessCentralConnector:
    return sandbox_connector(
        BusinessCentralConnector,
        sandbox,
        {**DEMO_CREDENTIALS, "authority": sandbox.url, **(credentials or {})},
        backoff=(0.02, 0.1),
        connection_key=uuid.uuid4().hex,
        **policy,
    )


def bearer(sandbox) -> dict[str, str]:
    return {"Authorization": f"Bearer {connect(sandbox).tokens.token()}", "Accept": "application/json"}


# -- connection -------------------------------------------------------------------------------------------------


def test_registry_offers_the_business_central_connector():
    assert get_connector_class("businesscentral") is BusinessCentralConnector
    assert BusinessCentralConnector.objects["customers"].batch_size == BATCH_LIMIT == 100
    assert BusinessCentralConnector.objects["employees"].page_size == 20_000
    assert {"number", "displayName", "taxRegistrationNumber", "website"} <= set(
        BusinessCentralConnector.objects["customers"].fields
    )


def test_connection_names_the_environment_and_company(sandbox):
    result = connect(sandbox).test_connection()
    assert result.ok, result.message
    assert result.message == (
        f"Connected to Business Central environment production, company {FIRM.name} ({len(FIRM.customers())} customers)."
    )


def test_an_unknown_company_or_secret_is_explained(sandbox):
    missing = connect(sandbox, {"company": "Fabrikam"}).test_connection()
    assert not missing.ok and f"no company named 'Fabrikam' in this environment (there: {FIRM.name})" in missing.message
    refused = connect(sandbox, {"client_secret": "nope-nope-nope"})
    assert "AADSTS7000215" in refused.test_connection().message
    with pytest.raises(AuthenticationFailed):
        read_whole(refused, "customers")


# -- reads ------------------------------------------------------------------------------------------------------


def test_the_erp_holds_the_firms_history(sandbox):
    connector = connect(sandbox)
    customers = read_whole(connector, "customers")[1]
    projects = read_whole(connector, "projects")[1]
    employees = read_whole(connector, "employees")[1]
    invoices = read_whole(connector, "salesInvoices")[1]
    assert sorted(r.data["number"] for r in customers) == sorted(c["number"] for c in FIRM.customers())
    assert [r.data["number"] for r in projects] == [p["code"] for p in FIRM.erp_projects()]
    assert {r.data["email"] for r in employees} == {p["work_email"] for p in FIRM.erp_people()}
    assert len(invoices) == len(FIRM.erp_invoices())
    line = invoices[0].data["salesInvoiceLines"][0]
    assert line["description"].startswith("Consulting services PRJ-") and line["netAmount"] > 0


def test_reads_page_with_next_links_report_the_total_and_continue_from_the_cursor(sandbox):
    connector = connect(sandbox)
    sandbox.clear_stats()
    pages, records, rejects = read_whole(connector, "employees", page_size=50)
    people = len(FIRM.erp_people())
    assert [len(p.records) for p in pages] == [50, 50, 50, people - 150] and not rejects
    assert {p.total for p in pages} == {people}
    assert sandbox.stats()["by_path"][f"{COMPANY}/employees"] == {"200": 4}
    stamps = [r.updated_at for r in records]
    assert stamps == sorted(stamps) and pages[-1].cursor == stamps[-1]

    changed = connector.write("employees", [OutboundRecord("ignored", {"number": "E1003", "jobTitle": "Partner"})])
    assert changed[0].outcome == "updated"
    _, newer, _ = read_whole(connector, "employees", since=pages[-1].cursor)
    assert [r.data["number"] for r in newer][-1] == "E1003"
    assert len(newer) == 2  # the one at the watermark again, and the change


def test_malformed_rows_are_rejected_one_by_one(sandbox):
    sandbox.set_faults(malformed_every=7)
    _, records, rejects = read_whole(connect(sandbox), "customers", page_size=20)
    assert len(rejects) == sandbox.stats()["malformed_sent"] == 4
    assert len(records) + len(rejects) == len(FIRM.customers())
    reasons = {r.reason for r in rejects}
    assert "The row has no id." in reasons
    assert "The row's lastModifiedDateTime '0001-01-01T00:00:00Z' is not a real date and time." in reasons


def test_ten_thousand_customers_under_the_limit_without_one_429(sandbox):
    sandbox.seed(customers=10_000)
    sandbox.set_faults(rate_limit={"calls": 5, "window": 1.0})
    _, records, _ = read_whole(connect(sandbox, rate_per_second=4.0, burst=1), "customers", page_size=500)
    stats = sandbox.stats()
    assert len({r.external_id for r in records}) == 10_000
    assert stats["rate_limited"] == 0 and stats["max_calls_in_window"] <= 5


def test_a_429_is_waited_out(sandbox):
    sandbox.set_faults(rate_limit={"calls": 2, "window": 1.0, "retry_after": 1})
    _, records, _ = read_whole(connect(sandbox), "employees", page_size=40)
    assert len(records) == len(FIRM.erp_people()) and sandbox.stats()["rate_limited"] >= 1


def test_a_full_request_queue_answers_429_and_the_connector_retries(sandbox):
    app = sandbox.app
    app.set_queue(1, 1)  # one running, one waiting: the third concurrent request overflows
    app.processing_seconds = 0.05
    counts: list[int] = []

    def read() -> None:
        counts.append(len(read_whole(connect(sandbox, backoff_base=0.05, max_retries=8), "projects", page_size=20)[1]))

    threads = [threading.Thread(target=read) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert counts == [len(FIRM.erp_projects())] * 4
    assert app.queue_rejections >= 1


# -- writes -----------------------------------------------------------------------------------------------------


def customer(n: int, **fields) -> OutboundRecord:
    values = {"number": f"K{n:04d}", "displayName": f"Contoso client {n}", "currencyCode": "GBP", **fields}
    return OutboundRecord(f"contoso-customer-{n}", values)


def test_a_batch_upserts_by_number_and_a_rerun_changes_nothing(sandbox):
    connector = connect(sandbox)
    records = [customer(n) for n in range(150)]
    sandbox.clear_stats()
    first = connector.write("customers", records)
    assert [r.outcome for r in first] == ["created"] * 150
    assert sandbox.stats()["by_path"][f"{ROOT}/$batch"] == {"200": 2}  # 100 + 50
    count = len(sandbox.app.tables["customers"])
    second = connector.write("customers", records)
    assert [r.outcome for r in second] == ["unchanged"] * 150
    assert [r.target_id for r in second] == [r.target_id for r in first]
    assert sandbox.stats()["by_path"][f"{ROOT}/$batch"] == {"200": 2}  # nothing to send the second time
    records[5] = customer(5, displayName="Contoso client five")
    third = connector.write("customers", records)
    assert [r.outcome for r in third].count("updated") == 1 and third[5].outcome == "updated"
    assert len(sandbox.app.tables["customers"]) == count == len(FIRM.customers()) + 150


def test_an_existing_customer_is_found_by_its_number_not_duplicated(sandbox):
    result = connect(sandbox).write(
        "customers", [OutboundRecord("halden-customer-1", {"number": "c5001", "phoneNumber": "+1 555 0199"})]
    )
    assert result[0].outcome == "updated"
    rows = [r for r in sandbox.app.tables["customers"].values() if r["number"] == "C5001"]
    assert len(rows) == 1 and rows[0]["phoneNumber"] == "+1 555 0199"


def test_changes_need_the_etag(sandbox):
    row = next(r for r in sandbox.app.tables["customers"].values() if r["number"] == "C5002")
    url = f"{sandbox.url}{COMPANY}/customers({row['id']})"
    without = requests.patch(url, json={"phoneNumber": "1"}, headers=bearer(sandbox), timeout=10)
    assert without.status_code == 400 and without.json()["error"]["code"] == "BadRequest_InvalidToken"
    current = requests.get(url, headers=bearer(sandbox), timeout=10).json()["@odata.etag"]
    ok = requests.patch(url, json={"phoneNumber": "2"}, headers={**bearer(sandbox), "If-Match": current}, timeout=10)
    assert ok.status_code == 200
    stale = requests.patch(url, json={"phoneNumber": "3"}, headers={**bearer(sandbox), "If-Match": current}, timeout=10)
    assert stale.status_code == 412 and stale.json()["error"]["code"] == "Request_EntityChanged"


def test_bad_records_fail_one_by_one(sandbox):
    records = [customer(n) for n in range(5)]
    records[1] = customer(1, displayName="x" * 101)
    records[2] = customer(2, currencyCode="XYZ")
    records[3] = OutboundRecord("contoso-customer-way-too-long-for-a-number", {"displayName": "No number"})
    records[4] = customer(4, shoeSize=9)
    results = connect(sandbox).write("customers", records)
    assert [r.outcome for r in results] == ["created", "failed", "failed", "failed", "failed"]
    assert results[1].error_code == "Application_StringExceededLength"
    assert results[2].error_code == "Internal_RecordNotFound" and "Code='XYZ'" in results[2].error_message
    assert results[3].error_code == "INVALID_KEY"
    assert (
        results[4].error_code == "BadRequest" and "The property 'shoeSize' does not exist" in results[4].error_message
    )


def test_a_batch_over_100_operations_is_refused(sandbox):
    requests_ = [{"method": "GET", "id": str(n), "url": f"companies({COMPANY_ID})/projects"} for n in range(101)]
    response = requests.post(
        f"{sandbox.url}{ROOT}/$batch", json={"requests": requests_}, headers=bearer(sandbox), timeout=30
    )
    assert response.status_code == 400 and "maximum of 100" in response.json()["error"]["message"]


def test_an_invoice_is_written_once_with_its_lines(sandbox):
    connector = connect(sandbox)
    invoice = OutboundRecord(
        "contoso-invoice-2024-05",
        {
            "customerNumber": "C5002",
            "invoiceDate": "2024-05-31",
            "salesInvoiceLines": [
                {
                    "lineType": "Account",
                    "lineObjectNumber": "40100",
                    "description": "PRJ-102 May time",
                    "quantity": 12.5,
                    "unitPrice": 175,
                },
                {
                    "lineType": "Account",
                    "lineObjectNumber": "40200",
                    "description": "PRJ-102 travel",
                    "quantity": 1,
                    "unitPrice": 420.1,
                },
            ],
        },
    )
    unknown = OutboundRecord("contoso-invoice-x", {"customerNumber": "C0000", "invoiceDate": "2024-05-31"})
    line = {"lineType": "Account", "lineObjectNumber": "49999", "description": "x", "quantity": 1, "unitPrice": 1}
    no_account = OutboundRecord("contoso-invoice-y", {"customerNumber": "C5002", "salesInvoiceLines": [line]})
    item = OutboundRecord(
        "contoso-invoice-z", {"customerNumber": "C5002", "salesInvoiceLines": [{**line, "lineType": "Item"}]}
    )
    first = connector.write("salesInvoices", [invoice, unknown, no_account, item])
    again = connector.write("salesInvoices", [invoice])
    assert first[0].outcome == "created" and again[0].outcome == "unchanged"
    assert first[1].outcome == "failed" and "No.='C0000'" in first[1].error_message
    assert first[2].error_message == "The G/L Account does not exist. Identification fields and values: No.='49999'"
    assert first[3].error_message == "The Item does not exist. Identification fields and values: No.='49999'"
    assert len(sandbox.app.tables["salesInvoices"]) == len(FIRM.erp_invoices()) + 1  # nothing half-written
    written = sandbox.app.tables["salesInvoices"][first[0].target_id]
    assert written["externalDocumentNumber"] == "CONTOSO-INVOICE-2024-05"
    assert written["totalAmountExcludingTax"] == 2607.6 and written["status"] == "Draft"


def test_an_invoice_for_a_customer_read_by_id_rounds_each_line_half_up_to_the_cent(sandbox):
    connector = connect(sandbox)
    customer = next(r for r in read_whole(connector, "customers")[1] if r.data["number"] == "C5003")
    # 3.25 h at 10.15 is 32.9875 and 0.25 h at 10.10 is 2.525: half up, not float rounding (2.52) nor to even.
    lines = [
        {
            "lineType": "Account",
            "lineObjectNumber": "40100",
            "description": "a",
            "quantity": "3.25",
            "unitPrice": "10.15",
        },
        {
            "lineType": "Account",
            "lineObjectNumber": "40100",
            "description": "b",
            "quantity": "0.25",
            "unitPrice": "10.10",
        },
    ]
    (result,) = connector.write(
        "salesInvoices",
        [OutboundRecord("inv-half-up", {"customerId": customer.external_id, "salesInvoiceLines": lines})],
    )
    written = sandbox.app.tables["salesInvoices"][result.target_id]
    assert result.outcome == "created" and written["customerNumber"] == "C5003"
    amounts = sorted(line["amountExcludingTax"] for line in sandbox.app._lines(result.target_id))
    assert amounts == [2.53, 32.99] and written["totalAmountExcludingTax"] == 35.52


def test_a_draft_invoice_whose_lines_changed_has_them_replaced_and_a_rerun_changes_nothing(sandbox):
    connector = connect(sandbox)

    def invoice(*lines) -> OutboundRecord:
        shaped = [
            {"lineType": "Account", "lineObjectNumber": "40100", "description": d, "quantity": q, "unitPrice": p}
            for d, q, p in lines
        ]
        return OutboundRecord("PRJ-102-2024-06", {"customerNumber": "C5002", "salesInvoiceLines": shaped})

    (created,) = connector.write("salesInvoices", [invoice(("time", "10.00", "175.00"))])
    # An expense is approved later in the month: the invoice, still a draft, gains its line.
    (updated,) = connector.write(
        "salesInvoices", [invoice(("time", "10.00", "175.00"), ("Expense: Travel", "1", "312.40"))]
    )
    (again,) = connector.write(
        "salesInvoices", [invoice(("time", "10.00", "175.00"), ("Expense: Travel", "1", "312.40"))]
    )

    assert (created.outcome, updated.outcome, again.outcome) == ("created", "updated", "unchanged")
    assert updated.target_id == created.target_id
    written = sandbox.app.tables["salesInvoices"][created.target_id]
    lines = sandbox.app._lines(created.target_id)
    assert [line["description"] for line in lines] == ["time", "Expense: Travel"]
    assert written["totalAmountExcludingTax"] == 2062.4

    # A posted invoice's lines are not changed: its record fails and says why.
    written["status"] = "Open"
    (refused,) = connector.write("salesInvoices", [invoice(("time", "11.00", "175.00"))])
    assert refused.outcome == "failed" and "status is Open" in refused.error_message
    assert sandbox.app.tables["salesInvoices"][created.target_id]["totalAmountExcludingTax"] == 2062.4


# -- webhooks ---------------------------------------------------------------------------------------------------


@pytest.fixture
def receiver():
    """A subscriber that answers the handshake the way the portal's webhook view does, and records notifications."""
    received: list[tuple[str, dict, bytes]] = []
    arrived = threading.Event()

    def app(environ, start_response):
        request = Request(environ)
        answer = BusinessCentralConnector.webhook_handshake(
            method=request.method, url=request.url, headers=dict(request.headers), body=request.get_data()
        )
        if answer is not None:
            status, content_type, body = answer
            return Response(body, status=status, content_type=content_type)(environ, start_response)
        received.append((request.url, dict(request.headers), request.get_data()))
        arrived.set()
        return Response("", status=202)(environ, start_response)

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.port}/hooks/bc", received, arrived
    server.shutdown()
    thread.join(5)


def test_subscribing_handshakes_and_notifications_carry_the_client_state(sandbox, receiver):
    url, received, arrived = receiver
    connector = connect(sandbox)
    subscription = connector.subscribe("customers", url)
    assert subscription["clientState"] == CLIENT_STATE and subscription["expirationDateTime"]
    assert [h["status"] for h in sandbox.app.handshakes] == [200]
    renewed = connector.renew(subscription)
    assert len(sandbox.app.handshakes) == 2 and renewed["expirationDateTime"] >= subscription["expirationDateTime"]

    connector.write("customers", [customer(1)])
    assert arrived.wait(5), "no notification arrived"
    hook_url, headers, body = received[0]
    BusinessCentralConnector.verify_webhook(
        secret=CLIENT_STATE, method="POST", url=hook_url, headers=headers, body=body
    )
    change = json.loads(body)["value"][0]
    assert change["changeType"] == "created" and change["resource"].startswith(
        f"api/v2.0/companies({COMPANY_ID})/customers("
    )
    with pytest.raises(WebhookRejected, match="clientState"):
        BusinessCentralConnector.verify_webhook(
            secret="another-state", method="POST", url=hook_url, headers=headers, body=body
        )
    with pytest.raises(WebhookRejected, match="not a Business Central notification"):
        BusinessCentralConnector.verify_webhook(
            secret=CLIENT_STATE, method="POST", url=hook_url, headers=headers, body=b"{}"
        )


def test_a_subscriber_that_does_not_echo_the_token_is_refused(sandbox):
    def app(environ, start_response):
        return Response("hello")(environ, start_response)

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with pytest.raises(Exception, match="Application_ValidationError"):
            connect(sandbox).subscribe("customers", f"http://127.0.0.1:{server.port}/nope")
    finally:
        server.shutdown()
        thread.join(5)
    assert sandbox.app.subscriptions == {}


# -- secrets ----------------------------------------------------------------------------------------------------


def test_secrets_never_reach_the_logs(sandbox, caplog):
    caplog.set_level(logging.DEBUG)
    connector = connect(sandbox)
    assert connector.test_connection().ok
    read_whole(connector, "customers", page_size=15)
    connector.write("customers", [customer(1), customer(2, displayName=5)])
    token = connector.tokens.token()
    with pytest.raises(AuthenticationFailed) as refused:
        read_whole(connect(sandbox, {"client_secret": "Wr0ng-S3cret-Value"}), "customers")
    text = caplog.text + str(refused.value)
    assert caplog.records
    for secret in (token, DEMO_CREDENTIALS["client_secret"], "Wr0ng-S3cret-Value"):
        assert secret not in text
