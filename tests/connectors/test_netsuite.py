"""NetSuite connector against its sandbox over real HTTP: JWT sign-in, SuiteQL paging, upserts, limits, faults."""

from __future__ import annotations

import logging
from datetime import date, timedelta

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from connectors.base import AuthenticationFailed, OutboundRecord
from connectors.netsuite import client as netsuite_client
from connectors.netsuite.client import NetSuiteConnector
from connectors.netsuite.sandbox import ACCOUNT_CONCURRENCY, DEMO_CREDENTIALS, TERMS, create_app
from connectors.sandbox.firm import Firm
from tests.connectors.kit import connector_maker, sandbox_fixture

SEEDED_CUSTOMERS = 40


sandbox = sandbox_fixture(lambda: create_app(Firm()))


@pytest.fixture(autouse=True)
def fresh_sandbox(sandbox):
    sandbox.reset()
    app = sandbox.app
    yield
    app.concurrency_limit = ACCOUNT_CONCURRENCY
    app.processing_seconds = 0.0
    app.suiteql_max_results = netsuite_client.SUITEQL_MAX_RESULTS


make_connector = connector_maker(NetSuiteConnector, DEMO_CREDENTIALS, backoff=(0.02, 0.1), own_connection=True)


def other_private_key() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def customer_internal_id(sandbox, external_id: str) -> str:
    return str(sandbox.app.get_by_external_id("customer", external_id)["id"])


# -- authentication ---------------------------------------------------------------------------------------------


def test_connection_signs_a_jwt_and_reports_the_account(sandbox):
    result = make_connector(sandbox).test_connection()
    assert result.ok, result.message
    assert "1234567" in result.message
    assert result.detail["customers"] == SEEDED_CUSTOMERS


def test_a_key_that_does_not_match_the_certificate_is_refused_clearly(sandbox):
    connector = make_connector(sandbox, {**DEMO_CREDENTIALS, "private_key": other_private_key()})
    result = connector.test_connection()
    assert not result.ok
    assert "NetSuite refused the sign-in (invalid_client)" in result.message
    assert "private key matches the uploaded certificate" in result.message
    with pytest.raises(AuthenticationFailed):
        list(connector.read("customer"))


def test_a_key_pasted_into_a_one_line_field_still_signs(sandbox):
    one_line = " ".join(DEMO_CREDENTIALS["private_key"].splitlines())
    assert make_connector(sandbox, {**DEMO_CREDENTIALS, "private_key": one_line}).test_connection().ok


def test_an_unknown_certificate_id_or_unreadable_key_fails_the_test(sandbox):
    assert not make_connector(sandbox, {**DEMO_CREDENTIALS, "certificate_id": "nope"}).test_connection().ok
    result = make_connector(sandbox, {**DEMO_CREDENTIALS, "private_key": "not a key"}).test_connection()
    assert not result.ok
    assert "PEM" in result.message


# -- reads ------------------------------------------------------------------------------------------------------


def test_reads_follow_suiteql_next_links_page_by_page(sandbox):
    connector = make_connector(sandbox)
    sandbox.clear_stats()
    pages = list(connector.read("customer", page_size=15))
    assert [len(p.records) for p in pages] == [15, 15, 10]
    assert [p.has_more for p in pages] == [True, True, False]
    ids = [r.external_id for p in pages for r in p.records]
    assert len(set(ids)) == SEEDED_CUSTOMERS
    stamps = [r.updated_at for p in pages for r in p.records]
    assert stamps == sorted(stamps)
    assert pages[-1].cursor == stamps[-1]
    first = pages[0].records[0].data
    assert first["companyName"] and first["terms"]["id"] and first["isInactive"] is False
    suiteql_calls = sandbox.stats()["by_path"]["/services/rest/query/v1/suiteql"]
    assert suiteql_calls == {"200": 3}


def test_reading_since_a_cursor_returns_only_newer_records(sandbox):
    connector = make_connector(sandbox)
    pages = list(connector.read("customer", page_size=100))
    cursor = pages[-1].cursor
    again = [r for p in connector.read("customer", since=cursor) for r in p.records]
    assert [r.updated_at for r in again] == [cursor]  # only the record at the watermark comes back

    changed = connector.write(
        "customer", [OutboundRecord(external_id="C5003", fields={"phone": "+1 555 0199"})], mode="upsert"
    )
    assert changed[0].outcome == "updated"
    newer = [r for p in connector.read("customer", since=cursor) for r in p.records]
    assert "C5003" in [r.data["externalId"] for r in newer]
    assert all(r.updated_at >= cursor for r in newer)
    assert len(newer) == 2


def test_a_query_past_suiteql_result_cap_restarts_from_the_watermark(sandbox, monkeypatch):
    monkeypatch.setattr(netsuite_client, "SUITEQL_MAX_RESULTS", 25)
    monkeypatch.setattr(sandbox.app, "suiteql_max_results", 25)  # restored for the tests after this one
    pages = list(make_connector(sandbox).read("customer", page_size=10))
    ids = {r.external_id for p in pages for r in p.records}
    assert len(ids) == SEEDED_CUSTOMERS


def test_malformed_rows_are_rejected_one_by_one(sandbox):
    sandbox.set_faults(malformed_every=7)
    pages = list(make_connector(sandbox).read("customer", page_size=20))
    records = [r for p in pages for r in p.records]
    rejects = [r for p in pages for r in p.rejects]
    assert len(rejects) == 4  # rows 7 and 14 of each page of 20
    assert len(records) == SEEDED_CUSTOMERS - 4
    reasons = {r.reason for r in rejects}
    assert "The row has no internal id." in reasons
    assert any("lastModifiedDate is not a date and time" in reason for reason in reasons)


def test_server_errors_are_retried_and_all_rows_arrive(sandbox):
    sandbox.set_faults(error_every=2)
    pages = list(make_connector(sandbox).read("customer", page_size=10))
    assert len({r.external_id for p in pages for r in p.records}) == SEEDED_CUSTOMERS
    assert sandbox.stats()["errors_injected"] >= 2


def test_rate_limit_is_honoured_and_a_budget_keeps_under_it(sandbox):
    sandbox.set_faults(rate_limit={"calls": 3, "window": 0.5, "retry_after": 1})
    # Without a budget the connector runs into the limit and waits out Retry-After.
    pages = list(make_connector(sandbox).read("customer", page_size=10))
    assert len({r.external_id for p in pages for r in p.records}) == SEEDED_CUSTOMERS
    assert sandbox.stats()["rate_limited"] >= 1

    sandbox.set_faults(rate_limit={"calls": 3, "window": 0.5, "retry_after": 1})
    sandbox.clear_stats()
    # With a budget of 1 + 4/s it never sends more than 3 calls in any half second.
    pages = list(make_connector(sandbox, rate_per_second=4, burst=1).read("customer", page_size=10))
    assert len({r.external_id for p in pages for r in p.records}) == SEEDED_CUSTOMERS
    stats = sandbox.stats()
    assert stats["rate_limited"] == 0
    assert stats["max_calls_in_window"] <= 3


# -- writes -----------------------------------------------------------------------------------------------------


def project_records(sandbox, count: int) -> list[OutboundRecord]:
    parent = customer_internal_id(sandbox, "C5001")
    return [
        OutboundRecord(
            external_id=f"DEAL-{n:03d}",
            fields={
                "companyName": f"Northwind rollout {n}",
                "parent": {"id": parent},
                "startDate": "2024-03-01",
                "projectedEndDate": "2024-09-30",
                "jobBillingType": "TM",
            },
        )
        for n in range(count)
    ]


def test_a_batch_of_projects_reports_each_failure_with_netsuite_codes(sandbox):
    connector = make_connector(sandbox)
    before = sandbox.app.count("job")
    records = project_records(sandbox, 20)
    records[3] = OutboundRecord(external_id="DEAL-003", fields={**records[3].fields, "parent": {"id": "999999"}})
    records[9] = OutboundRecord(external_id="DEAL-009", fields={"parent": records[9].fields["parent"]})
    records[15] = OutboundRecord(external_id="DEAL-015", fields={**records[15].fields, "jobBillingType": "Hourly"})
    results = connector.write("job", records)

    assert [r.external_id for r in results] == [r.external_id for r in records]
    failed = {r.external_id: r for r in results if r.outcome == "failed"}
    assert set(failed) == {"DEAL-003", "DEAL-009", "DEAL-015"}
    assert failed["DEAL-003"].error_code == "INVALID_CONTENT"
    assert "Invalid Field Value 999999 for the following field: parent" in failed["DEAL-003"].error_message
    assert failed["DEAL-009"].error_code == "USER_ERROR"
    assert "Project Name" in failed["DEAL-009"].error_message
    assert failed["DEAL-015"].error_code == "INVALID_CONTENT"
    created = [r for r in results if r.outcome == "created"]
    assert len(created) == 17 and all(r.target_id for r in created)
    assert sandbox.app.count("job") == before + 17


def test_upserting_the_same_batch_twice_creates_nothing_new(sandbox):
    connector = make_connector(sandbox)
    records = project_records(sandbox, 8)
    first = connector.write("job", records)
    count = sandbox.app.count("job")
    second = connector.write("job", records)
    assert {r.outcome for r in first} == {"created"}
    assert {r.outcome for r in second} == {"updated"}
    assert [r.target_id for r in first] == [r.target_id for r in second]
    assert sandbox.app.count("job") == count


def test_a_repeated_create_is_recognised_by_its_idempotency_key(sandbox):
    connector = make_connector(sandbox)
    records = [
        OutboundRecord(external_id=f"NEW-CUST-{n}", fields={"companyName": f"Fabrikam {n}", "terms": {"id": "2"}})
        for n in range(3)
    ]
    first = connector.write("customer", records, mode="create")
    count = sandbox.app.count("customer")
    second = connector.write("customer", records, mode="create")
    assert {r.outcome for r in first} == {"created"}
    assert {r.outcome for r in second} == {"unchanged"}  # IDEMPOTENCY_ERROR means "already done"
    assert [r.target_id for r in second] == [r.target_id for r in first]
    assert sandbox.app.count("customer") == count


def test_invoice_lines_must_name_an_existing_project(sandbox):
    connector = make_connector(sandbox)
    customer = customer_internal_id(sandbox, "C5002")
    job = str(sandbox.app.get_by_external_id("job", "PRJ-102")["id"])

    def invoice(external_id: str, project_id: str) -> OutboundRecord:
        return OutboundRecord(
            external_id=external_id,
            fields={
                "entity": {"id": customer},
                "tranDate": "2024-04-30",
                "memo": "April time",
                "item": {
                    "items": [
                        {"item": {"id": "1"}, "quantity": 12.5, "rate": 175, "job": {"id": project_id}},
                        {"item": {"id": "2"}, "amount": 420.10, "description": "Travel", "job": {"id": project_id}},
                    ]
                },
            },
        )

    results = connector.write("invoice", [invoice("INV-APR-1", job), invoice("INV-APR-2", "999999")])
    assert results[0].outcome == "created"
    assert results[1].outcome == "failed"
    assert results[1].error_code == "INVALID_CONTENT"
    assert "(at item.items[0].job)" in results[1].error_message

    invoices = [r for p in connector.read("invoice") for r in p.records]
    written = next(r for r in invoices if r.data["externalId"] == "INV-APR-1")
    assert written.data["total"] == "2607.60"
    terms_days = TERMS[int(sandbox.app.get_by_external_id("customer", "C5002")["terms"])][1]
    assert written.data["dueDate"] == (date(2024, 4, 30) + timedelta(days=terms_days)).isoformat()


def test_writes_stay_within_the_connection_concurrency(sandbox):
    app = sandbox.app
    app.concurrency_limit = 2
    app.processing_seconds = 0.03
    records = [
        OutboundRecord(external_id=f"E9{n:03d}", fields={"firstName": "Test", "lastName": f"Person {n}"})
        for n in range(10)
    ]
    results = make_connector(sandbox, {**DEMO_CREDENTIALS, "concurrency_limit": "2"}).write("employee", records)
    assert {r.outcome for r in results} == {"created"}
    assert app.max_inflight == 2
    assert app.concurrency_rejections == 0


def test_requests_over_the_account_concurrency_are_retried(sandbox):
    app = sandbox.app
    app.concurrency_limit = 2
    app.processing_seconds = 0.03
    records = [
        OutboundRecord(external_id=f"E8{n:03d}", fields={"firstName": "Test", "lastName": f"Person {n}"})
        for n in range(12)
    ]
    # Backoff in proportion to the sandbox's processing time, as the product's defaults (0.5 s base)
    # are to NetSuite's: with the suite's 0.02 s a loaded machine could lose one record five times.
    connector = make_connector(
        sandbox, {**DEMO_CREDENTIALS, "concurrency_limit": "4"}, backoff_base=0.06, backoff_max=0.5, max_retries=8
    )
    results = connector.write("employee", records)
    assert {r.outcome for r in results} == {"created"}
    assert app.concurrency_rejections > 0  # 429 CONCURRENCY_LIMIT_EXCEEDED, backed off and retried
    assert app.max_inflight <= 2


def test_known_netsuite_ids_skip_the_existence_lookup(sandbox):
    connector = make_connector(sandbox)
    first = connector.write("job", project_records(sandbox, 3))
    known = [
        OutboundRecord(external_id=r.external_id, fields=r.fields, target_id=w.target_id)
        for r, w in zip(project_records(sandbox, 3), first, strict=True)
    ]
    sandbox.clear_stats()
    again = connector.write("job", known)
    assert {r.outcome for r in again} == {"updated"}
    assert "/services/rest/query/v1/suiteql" not in sandbox.stats()["by_path"]


def test_a_revoked_access_token_is_replaced_once(sandbox):
    connector = make_connector(sandbox)
    assert connector.test_connection().ok
    sandbox.app.tokens.clear()  # NetSuite revoked or expired every token
    sandbox.clear_stats()
    pages = list(connector.read("customer"))
    assert len(pages[0].records) == SEEDED_CUSTOMERS
    assert sandbox.stats()["by_path"]["/services/rest/auth/oauth2/v1/token"] == {"200": 1}


def test_external_ids_netsuite_cannot_hold_fail_without_a_call(sandbox):
    results = make_connector(sandbox).write("customer", [OutboundRecord(external_id="a|b", fields={})])
    assert results[0].outcome == "failed"
    assert results[0].error_code == "INVALID_EXTERNAL_ID"


# -- secrets ----------------------------------------------------------------------------------------------------


def test_secrets_never_reach_the_logs(sandbox, caplog):
    caplog.set_level(logging.DEBUG)
    connector = make_connector(sandbox)
    assert connector.test_connection().ok
    list(connector.read("customer", page_size=25))
    connector.write("job", project_records(sandbox, 2) + [OutboundRecord(external_id="X-1", fields={})])
    sandbox.set_faults(error_every=2)
    list(connector.read("employee", page_size=100))
    token = connector._access_token

    wrong_key = other_private_key()
    failing = make_connector(sandbox, {**DEMO_CREDENTIALS, "private_key": wrong_key})
    with pytest.raises(AuthenticationFailed) as refused:
        list(failing.read("customer"))

    key_body = DEMO_CREDENTIALS["private_key"].splitlines()[1]
    wrong_body = wrong_key.splitlines()[1]
    text = caplog.text + str(refused.value)
    assert caplog.records, "the HTTP policy should have logged the calls at DEBUG"
    for secret in (token, key_body, wrong_body, DEMO_CREDENTIALS["private_key"]):
        assert secret not in text
