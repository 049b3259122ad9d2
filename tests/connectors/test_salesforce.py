"""The Salesforce connector against its sandbox, over real HTTP on loopback."""

from __future__ import annotations

import json
import logging
import math
import threading
import time

import pytest
import requests
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from connectors.base import AuthenticationFailed, OutboundRecord, WebhookRejected
from connectors.salesforce.client import SalesforceConnector
from connectors.salesforce.sandbox import DEMO_CREDENTIALS, WEBHOOK_SECRET, create_app
from connectors.sandbox.firm import Firm
from connectors.sandbox.server import self_signed_certificate, serve_in_thread
from tests.connectors.kit import connector_maker, pages_read, sandbox_fixture, simple_salesforce_for

pytestmark = pytest.mark.timeout(60)


sandbox = sandbox_fixture(create_app)


@pytest.fixture(autouse=True)
def fresh_org(sandbox):
    sandbox.reset()
    yield


connect = connector_maker(SalesforceConnector, DEMO_CREDENTIALS)


def count(sandbox, object_name: str) -> int:
    org = sandbox.app.org
    with org.lock:
        return sum(1 for r in org.records[object_name].values() if not r["IsDeleted"])


def test_wrong_password_fails_with_a_clear_message(sandbox):
    connector = connect(sandbox, {**DEMO_CREDENTIALS, "password": "not-the-password"})

    result = connector.test_connection()

    assert result.ok is False
    assert "Salesforce refused the sign-in: authentication failure (invalid_grant)" in result.message
    with pytest.raises(AuthenticationFailed, match="authentication failure"):
        pages_read(connector, "Account")


def test_wrong_consumer_secret_is_named(sandbox):
    result = connect(sandbox, {**DEMO_CREDENTIALS, "client_secret": "nope"}).test_connection()

    assert result.ok is False
    assert "invalid client credentials" in result.message


def test_connection_with_password_and_with_client_credentials(sandbox):
    with_password = connect(sandbox).test_connection()
    client_credentials = {k: v for k, v in DEMO_CREDENTIALS.items() if k not in ("username", "password")}
    with_client_credentials = connect(sandbox, client_credentials).test_connection()

    assert with_password.ok, with_password.message
    assert f"as {DEMO_CREDENTIALS['username']}" in with_password.message
    assert "API usage today" in with_password.message
    assert with_client_credentials.ok, with_client_credentials.message
    assert with_client_credentials.detail["objects_missing_external_id"] == []


def test_reads_all_pages_by_following_next_records_url(sandbox):
    sandbox.seed(opportunities=400)  # 120 seeded + 400 = 520 -> pages of 200, 200, 120
    sandbox.clear_stats()
    connector = connect(sandbox)

    pages = pages_read(connector, "Opportunity", page_size=200)

    assert [len(p.records) for p in pages] == [200, 200, 120]
    assert [p.has_more for p in pages] == [True, True, False]
    ids = [r.external_id for p in pages for r in p.records]
    assert len(set(ids)) == 520 == count(sandbox, "Opportunity")
    stamps = [r.updated_at for p in pages for r in p.records]
    assert stamps == sorted(stamps)
    cursors = [p.cursor for p in pages]
    assert cursors == sorted(cursors) and cursors[-1] == stamps[-1]
    # The first page came from /query, the next two from the nextRecordsUrl locator.
    paths = sandbox.stats()["by_path"]
    assert sum(n for path, statuses in paths.items() if "/query/" in path for n in statuses.values()) == 2
    first = pages[0].records[0].data
    assert first["Account"]["Name"] and "attributes" not in first["Account"]


def test_incremental_read_returns_only_what_changed_since_the_cursor(sandbox):
    connector = connect(sandbox)
    cursor = pages_read(connector, "Opportunity")[-1].cursor
    changed = [r.external_id for p in pages_read(connector, "Opportunity") for r in p.records][:3]

    time.sleep(1.1)  # Salesforce timestamps have whole seconds: make the change land after the watermark
    results = connector.write(
        "Opportunity",
        [
            OutboundRecord(external_id=f"X{i}", target_id=oid, fields={"Amount": 1234.5})
            for i, oid in enumerate(changed)
        ],
        mode="update",
    )
    assert [r.outcome for r in results] == ["updated"] * 3

    pages = pages_read(connector, "Opportunity", since=cursor)
    seen = [r for p in pages for r in p.records]
    newer = {r.external_id for r in seen if r.updated_at > cursor}
    assert newer == set(changed)
    assert all(r.updated_at >= cursor for r in seen)
    assert len(seen) <= 4  # the three changes, plus at most the record sitting exactly on the watermark
    assert pages[-1].cursor > cursor


def test_batch_of_200_with_3_invalid_records_creates_197(sandbox):
    before = count(sandbox, "Account")
    records = [
        OutboundRecord(external_id=f"CUST-{i:04d}", fields={"Name": f"Batch Customer {i}", "BillingCity": "Leeds"})
        for i in range(200)
    ]
    for bad in (7, 99, 188):
        records[bad] = OutboundRecord(external_id=f"CUST-{bad:04d}", fields={"BillingCity": "No Name Town"})
    connector = connect(sandbox)

    results = connector.write("Account", records, mode="upsert")

    assert len(results) == 200
    assert [r.external_id for r in results] == [r.external_id for r in records]
    failed = [i for i, r in enumerate(results) if r.outcome == "failed"]
    assert failed == [7, 99, 188]
    assert {results[i].error_code for i in failed} == {"REQUIRED_FIELD_MISSING"}
    assert "Required fields are missing: [Name]" in results[7].error_message
    assert sum(r.outcome == "created" for r in results) == 197
    assert all(r.target_id and r.target_id.startswith("001") for r in results if r.outcome == "created")
    assert count(sandbox, "Account") == before + 197


def test_upserting_the_same_batch_twice_creates_nothing_new(sandbox):
    records = [
        OutboundRecord(
            external_id=f"DEAL-{i:04d}",
            fields={"Name": f"Deal {i}", "StageName": "Prospecting", "CloseDate": "2025-06-30"},
        )
        for i in range(200)
    ]
    connector = connect(sandbox)

    first = connector.write("Opportunity", records, mode="upsert")
    after_first = count(sandbox, "Opportunity")
    second = connector.write("Opportunity", records, mode="upsert")

    assert {r.outcome for r in first} == {"created"}
    assert {r.outcome for r in second} == {"updated"}
    assert [r.target_id for r in first] == [r.target_id for r in second]
    assert count(sandbox, "Opportunity") == after_first


def test_a_value_salesforce_cannot_parse_fails_the_call_for_every_record(sandbox):
    records = [
        OutboundRecord(external_id="A-1", fields={"Name": "Fine"}),
        OutboundRecord(external_id="A-2", fields={"Name": "Unknown field", "Colour__c": "blue"}),
    ]
    results = connect(sandbox).write("Account", records, mode="create")

    assert [r.outcome for r in results] == ["failed", "failed"]
    assert {r.error_code for r in results} == {"INVALID_FIELD"}


def test_stays_inside_the_rate_budget(sandbox):
    sandbox.seed(opportunities=880)  # 1,000 opportunities -> 5 pages of 200
    sandbox.set_faults(rate_limit={"calls": 4, "window": 1.0})
    sandbox.clear_stats()
    # A token bucket lets at most burst + rate * window calls into any window: 1 + 2.5 = 3.5 < 4.
    connector = connect(sandbox, rate_per_second=2.5, burst=1)

    pages = pages_read(connector, "Opportunity", page_size=200)

    stats = sandbox.stats()
    assert sum(len(p.records) for p in pages) == 1000
    assert stats["calls"] == 7  # token, describe, the query and its 4 nextRecordsUrl pages
    assert stats["rate_limited"] == 0
    assert stats["max_calls_in_window"] <= 3


def test_request_limit_exceeded_is_waited_out(sandbox):
    sandbox.seed(opportunities=480)  # 600 -> 3 pages
    sandbox.set_faults(rate_limit={"calls": 2, "window": 1.0})
    connector = connect(sandbox)
    waits: list[float] = []
    connector.session.sleep = lambda seconds: (waits.append(seconds), time.sleep(seconds))

    pages = pages_read(connector, "Opportunity", page_size=200)

    stats = sandbox.stats()
    assert sum(len(p.records) for p in pages) == 600
    assert stats["rate_limited"] >= 1
    assert 1.0 in waits  # the 403 REQUEST_LIMIT_EXCEEDED was recognised as a rate limit, not an error
    assert stats["max_calls_in_window"] <= 2 + stats["rate_limited"]


def test_server_errors_are_retried_and_all_data_arrives(sandbox):
    sandbox.seed(opportunities=280)  # 400 -> 2 pages
    sandbox.set_faults(error_every=2)
    connector = connect(sandbox)

    pages = pages_read(connector, "Opportunity", page_size=200)
    results = connector.write(
        "Account", [OutboundRecord(external_id=f"R-{i}", fields={"Name": f"Retry {i}"}) for i in range(5)]
    )

    assert sum(len(p.records) for p in pages) == 400
    assert [r.outcome for r in results] == ["created"] * 5
    assert sandbox.stats()["errors_injected"] >= 2


def test_malformed_records_are_rejected_one_by_one(sandbox):
    sandbox.set_faults(malformed_every=10)
    connector = connect(sandbox)

    pages = pages_read(connector, "Account")

    rejects = [r for p in pages for r in p.rejects]
    records = [r for p in pages for r in p.records]
    companies = len(Firm().crm_companies())  # every tenth record is malformed
    assert len(rejects) == companies // 10 and len(records) == companies - companies // 10
    reasons = {r.reason for r in rejects}
    assert "The record has no valid Salesforce Id." in reasons
    assert any("is not a date and time" in reason for reason in reasons)
    assert pages[-1].cursor == max(r.updated_at for r in records)


def test_secrets_never_reach_the_logs(sandbox, caplog):
    caplog.set_level(logging.DEBUG)
    bad = connect(sandbox, {**DEMO_CREDENTIALS, "password": "Sup3r-Secret-Passw0rd"})
    with pytest.raises(AuthenticationFailed) as refused:
        pages_read(bad, "Account")
    good = connect(sandbox)
    good.test_connection()
    sandbox.set_faults(error_every=2)
    pages_read(good, "Account")
    good.write("Account", [OutboundRecord(external_id="S-1", fields={"Name": "Secretive"})])

    tokens = list(sandbox.app.org.tokens)
    secrets = ["Sup3r-Secret-Passw0rd", DEMO_CREDENTIALS["password"], DEMO_CREDENTIALS["client_secret"], *tokens]
    logged = caplog.text + str(refused.value)
    assert tokens and "connectors.http" in {r.name for r in caplog.records}
    for secret in secrets:
        assert secret not in logged


def test_closed_won_webhook_is_signed_and_verifies(sandbox):
    received = []
    arrived = threading.Event()

    def receiver(environ, start_response):
        request = Request(environ)
        received.append((request.method, request.url, dict(request.headers), request.get_data()))
        arrived.set()
        return Response("ok")(environ, start_response)

    server = make_server("127.0.0.1", 0, receiver, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        hook = f"http://127.0.0.1:{server.port}/hooks/salesforce"
        requests.post(f"{sandbox.url}/_sandbox/webhooks", json={"url": hook}, timeout=5).raise_for_status()
        connector = connect(sandbox)
        open_deal = next(
            r for p in pages_read(connector, "Opportunity") for r in p.records if r.data["StageName"] != "Closed Won"
        )
        connector.write(
            "Opportunity",
            [OutboundRecord(external_id="WON-1", target_id=open_deal.external_id, fields={"StageName": "Closed Won"})],
            mode="update",
        )
        assert arrived.wait(5), "the sandbox did not deliver the webhook"
    finally:
        server.shutdown()
        thread.join(5)

    method, url, headers, body = received[0]
    SalesforceConnector.verify_webhook(secret=WEBHOOK_SECRET, method=method, url=url, headers=headers, body=body)
    assert json.loads(body)["payload"]["OpportunityId__c"] == open_deal.external_id
    with pytest.raises(WebhookRejected, match="signature"):
        tampered = body.replace(b"Closed Won", b"Closed Lost")
        SalesforceConnector.verify_webhook(
            secret=WEBHOOK_SECRET, method=method, url=url, headers=headers, body=tampered
        )
    with pytest.raises(WebhookRejected, match="replay"):
        SalesforceConnector.verify_webhook(
            secret=WEBHOOK_SECRET, method=method, url=url, headers=headers, body=body, now=time.time() + 600
        )


# -- simple-salesforce, unchanged, against the sandbox --------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_sandbox(tmp_path_factory):
    """The sandbox over HTTPS: simple-salesforce always builds https:// URLs from instance_url."""
    cert_path, key_path = self_signed_certificate(tmp_path_factory.mktemp("tls"))
    running = serve_in_thread(create_app(), tls=(cert_path, key_path))
    yield running.url, cert_path, running.app
    running.stop()


def test_simple_salesforce_queries_and_creates_against_the_sandbox(tls_sandbox, monkeypatch):
    url, ca_bundle, app = tls_sandbox
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", ca_bundle)  # trust the test certificate; the client is untouched
    sf = simple_salesforce_for(url, DEMO_CREDENTIALS)
    accounts = sf.query_all("SELECT Id, Name, Website FROM Account ORDER BY Name")
    account_id = accounts["records"][0]["Id"]
    created = sf.Opportunity.create(
        {
            "Name": "Simple Salesforce deal",
            "AccountId": account_id,
            "StageName": "Prospecting",
            "CloseDate": "2025-09-30",
        }
    )
    found = sf.query(f"SELECT Id, Name, Account.Name FROM Opportunity WHERE Id = '{created['id']}'")  # noqa: S608

    assert accounts["totalSize"] == len(Firm().crm_companies()) and accounts["done"] is True
    assert created["success"] is True and created["id"].startswith("006")
    assert found["records"][0]["Account"]["Name"] == accounts["records"][0]["Name"]
    assert sf.api_usage["api-usage"].used >= 3
    assert math.isclose(len(app.org.records["Opportunity"]), 121)


def test_an_expired_session_is_renewed_once_transparently(sandbox):
    connector = connect(sandbox)
    pages_read(connector, "Account")
    sandbox.app.org.tokens.clear()  # Salesforce revoked or timed out the session
    sandbox.clear_stats()

    pages = pages_read(connector, "Account")
    raw = requests.get(
        f"{sandbox.url}/services/data/v59.0/limits", headers={"Authorization": "Bearer stale"}, timeout=5
    )

    assert sum(len(p.records) for p in pages) == len(Firm().crm_companies())
    assert sandbox.stats()["by_path"]["/services/oauth2/token"] == {"200": 1}
    assert raw.status_code == 401
    assert raw.json() == [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
    assert raw.headers["Sforce-Limit-Info"].startswith("api-usage=")
