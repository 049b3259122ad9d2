"""The Dynamics 365 Sales connector against its Dataverse sandbox, over real HTTP on loopback."""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid

import pytest
import requests
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from connectors.base import AuthenticationFailed, OutboundRecord, RateLimited, WebhookRejected
from connectors.dynamics365.client import BATCH_SIZE, DELTA_PREFIX, DataverseConnector
from connectors.dynamics365.sandbox import API, DEMO_CREDENTIALS, create_app
from connectors.http import HttpPolicy, InMemoryMetrics, InMemoryTokenBucket
from connectors.registry import get_connector_class
from connectors.sandbox import serve_in_thread
from connectors.sandbox.firm import Firm
from tests.connectors.kit import read_whole, sandbox_connector, sandbox_fixture

FIRM = Firm()
ACCOUNTS = len(FIRM.crm_companies())
OPPORTUNITIES = len(FIRM.deals())
WEBHOOK_KEY = DEMO_CREDENTIALS["webhook_secret"]


sandbox = sandbox_fixture(lambda: create_app(FIRM))


@pytest.fixture(autouse=True)
def clean(sandbox):
    sandbox.reset()
    app = sandbox.app
    yield
    app.throttle_code, app.concurrency_limit, app.processing_seconds = "0x80072322", 52, 0.0


def connect(sandbox, credentials=None, **policy) -> DataverseConnector:
    return sandbox_connector(
        DataverseConnector,
        sandbox,
        {**DEMO_CREDENTIALS, "authority": sandbox.url, **(credentials or {})},
        backoff=(0.02, 0.1),
        connection_key=uuid.uuid4().hex,
        **policy,
    )


def bearer(sandbox) -> dict[str, str]:
    token = connect(sandbox).tokens.token()
    return {"Authorization": f"Bearer {token}", "Accept": "application/json"}


# -- connection -------------------------------------------------------------------------------------------------


def test_registry_offers_the_dataverse_connector():
    assert get_connector_class("dynamics365") is DataverseConnector
    assert DataverseConnector.objects["accounts"].batch_size == BATCH_SIZE == 250
    assert DataverseConnector.objects["opportunities"].page_size == 5000
    assert {"name", "accountnumber", "websiteurl"} <= set(DataverseConnector.objects["accounts"].fields)


def test_connection_names_the_application_user_and_checks_the_alternate_keys(sandbox):
    result = connect(sandbox).test_connection()
    assert result.ok, result.message
    assert result.message.startswith(f"Connected to Dynamics 365 at {sandbox.host} as application user ")
    assert result.detail["missing_keys"] == []
    other = connect(sandbox, {"external_id_field": "new_legacyid"}).test_connection()
    assert other.ok and "No alternate key on new_legacyid for account, opportunity" in other.message


def test_a_wrong_client_secret_is_explained_and_reads_refuse(sandbox):
    connector = connect(sandbox, {"client_secret": "wrong-secret-value"})
    result = connector.test_connection()
    assert not result.ok
    assert result.message == (
        "Microsoft Entra refused the sign-in (AADSTS7000215): the client secret is wrong; paste the secret's value, "
        "not its id."
    )
    with pytest.raises(AuthenticationFailed):
        next(connector.read("accounts"))


def test_a_revoked_token_is_replaced_once(sandbox):
    connector = connect(sandbox)
    assert connector.test_connection().ok
    sandbox.app.entra.revoke_all()
    sandbox.clear_stats()
    _, records, _ = read_whole(connector, "accounts")
    assert len(records) == ACCOUNTS
    assert sandbox.stats()["by_path"][f"/{DEMO_CREDENTIALS['tenant_id']}/oauth2/v2.0/token"] == {"200": 1}
    assert sandbox.stats()["by_path"][f"{API}/accounts"] == {"401": 1, "200": 1}


# -- reads ------------------------------------------------------------------------------------------------------


def test_reads_follow_skiptoken_pages_and_end_with_a_delta_cursor(sandbox):
    sandbox.clear_stats()
    pages, records, rejects = read_whole(connect(sandbox), "accounts", page_size=15)
    assert [len(p.records) for p in pages] == [15, 15, ACCOUNTS - 30]
    assert [p.has_more for p in pages] == [True, True, False]
    assert not rejects and len({r.external_id for r in records}) == ACCOUNTS
    assert [p.cursor for p in pages[:-1]] == [None, None]  # only the delta link is a place to resume from
    assert pages[-1].cursor.startswith(DELTA_PREFIX)
    first = records[0].data
    assert first["name"] == FIRM.crm_companies()[0]["name"] and first["accountnumber"] == "C5001"
    assert sandbox.stats()["by_path"][f"{API}/accounts"] == {"200": 3}


def test_dataverse_refuses_skip_and_caps_pages_at_5000(sandbox):
    url = f"{sandbox.url}{API}/accounts"
    refused = requests.get(url, params={"$skip": "10"}, headers=bearer(sandbox), timeout=10)
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "0x80060888"
    sandbox.seed(accounts=5200)
    body = requests.get(url, headers={**bearer(sandbox), "Prefer": "odata.maxpagesize=9000"}, timeout=30).json()
    assert len(body["value"]) == 5000 and "$skiptoken=" in body["@odata.nextLink"]


def test_the_delta_cursor_returns_only_what_changed(sandbox):
    connector = connect(sandbox)
    cursor = read_whole(connector, "accounts")[0][-1].cursor
    nothing = read_whole(connector, "accounts", since=cursor)
    assert nothing[1] == [] and nothing[0][-1].cursor.startswith(DELTA_PREFIX)

    written = connector.write("accounts", [OutboundRecord("contoso-customer-1", {"name": "Contoso Engineering"})])
    assert written[0].outcome == "created"
    pages, changed, _ = read_whole(connector, "accounts", since=cursor)
    assert [r.external_id for r in changed] == [written[0].target_id]
    assert changed[0].data["new_externalid"] == "contoso-customer-1"
    # The delta is taken again from the new cursor: nothing more.
    assert read_whole(connector, "accounts", since=pages[-1].cursor)[1] == []


def test_a_date_cursor_filters_on_modifiedon_and_reports_the_total(sandbox):
    since = "2024-01-03T00:00:00Z"
    pages, records, _ = read_whole(connect(sandbox), "accounts", since=since, page_size=10)
    expected = [c for i, c in enumerate(FIRM.crm_companies()) if i >= 15]  # seeded an hour apart from 09:00 on Jan 2
    assert len(records) == len(expected) and {p.total for p in pages} == {len(expected)}
    stamps = [r.updated_at for r in records]
    assert stamps == sorted(stamps) and stamps[0] >= since
    assert pages[-1].cursor == stamps[-1]


def test_each_row_carries_its_currency_code_for_mappings(sandbox):
    sandbox.clear_stats()
    _, records, _ = read_whole(connect(sandbox), "opportunities", page_size=50)
    by_id = {r.external_id: r.data for r in records}
    for deal in FIRM.deals():
        row = next(d for d in by_id.values() if d["name"] == deal["name"][:300])
        assert row["isocurrencycode"] == deal["currency"], deal["name"]
    # The environment's currencies are read once for the whole read, not once a page or a row.
    assert sandbox.stats()["by_path"][f"{API}/transactioncurrencies"] == {"200": 1}


def test_malformed_rows_are_rejected_one_by_one(sandbox):
    sandbox.set_faults(malformed_every=10)
    _, records, rejects = read_whole(connect(sandbox), "accounts", page_size=20)
    assert len(rejects) == sandbox.stats()["malformed_sent"] == 4  # the 10th and 20th of each full page
    assert len(records) + len(rejects) == ACCOUNTS
    reasons = {r.reason for r in rejects}
    assert "The row has no valid accountid." in reasons
    assert "The row's modifiedon 'last tuesday' is not a date and time." in reasons


def test_ten_thousand_records_under_the_limit_without_one_429(sandbox):
    sandbox.seed(accounts=10_000)
    sandbox.set_faults(rate_limit={"calls": 5, "window": 1.0})
    connector = connect(sandbox, rate_per_second=4.0, burst=1)  # 1 + 4/s never makes 6 calls in a second
    _, records, rejects = read_whole(connector, "accounts", page_size=500)
    stats = sandbox.stats()
    assert len({r.external_id for r in records}) == 10_000 and not rejects
    assert stats["rate_limited"] == 0
    assert stats["max_calls_in_window"] <= 5


@pytest.mark.parametrize("code", ["0x80072322", "0x80072321", "0x80072326"])
def test_each_service_protection_429_is_waited_out(sandbox, code):
    sandbox.app.throttle_code = code
    sandbox.set_faults(rate_limit={"calls": 2, "window": 1.0, "retry_after": 1})
    started = time.monotonic()
    _, records, _ = read_whole(connect(sandbox), "accounts", page_size=10)
    assert len(records) == ACCOUNTS
    assert sandbox.stats()["rate_limited"] >= 1
    assert time.monotonic() - started >= 1.0  # Retry-After was honoured, not hammered


def test_a_retry_after_longer_than_the_policy_allows_gives_up_at_once(sandbox):
    sandbox.set_faults(rate_limit={"calls": 1, "window": 60.0, "retry_after": 300})
    connector = connect(sandbox, max_retry_after=30)
    with pytest.raises(RateLimited) as limited:
        read_whole(connector, "accounts", page_size=10)
    assert limited.value.retry_after == 300


def test_more_concurrent_requests_than_dataverse_allows_are_retried(sandbox):
    app = sandbox.app
    app.concurrency_limit, app.processing_seconds = 2, 0.05
    counts: list[int] = []

    def read() -> None:
        counts.append(len(read_whole(connect(sandbox, backoff_base=0.05, max_retries=8), "accounts", page_size=10)[1]))

    threads = [threading.Thread(target=read) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert counts == [ACCOUNTS] * 4
    refused = sum(statuses.get("429", 0) for statuses in sandbox.stats()["by_path"].values())
    assert refused >= 1  # 0x80072326, waited out and retried
    assert app.max_inflight <= 2


# -- writes -----------------------------------------------------------------------------------------------------


def account(n: int, **fields) -> OutboundRecord:
    return OutboundRecord(
        f"contoso-customer-{n}", {"name": f"Contoso client {n}", "accountnumber": f"K{n:05d}", **fields}
    )


def test_a_batch_upserts_by_our_external_id_and_a_rerun_creates_nothing(sandbox):
    connector = connect(sandbox)
    records = [account(n, paymenttermscode=1, transactioncurrencyid="GBP") for n in range(600)]
    sandbox.clear_stats()
    first = connector.write("accounts", records)
    assert [r.outcome for r in first] == ["created"] * 600
    assert sandbox.stats()["by_path"][f"{API}/$batch"] == {"200": 3}  # 250 + 250 + 100
    count = len(sandbox.app.tables["accounts"])
    second = connector.write("accounts", records)
    assert [r.outcome for r in second] == ["updated"] * 600
    assert [r.target_id for r in second] == [r.target_id for r in first]
    assert len(sandbox.app.tables["accounts"]) == count == ACCOUNTS + 600
    row = sandbox.app.tables["accounts"][first[7].target_id]
    assert row["new_externalid"] == "contoso-customer-7" and row["paymenttermscode"] == 1
    gbp = next(r for r in sandbox.app.tables["transactioncurrencies"].values() if r["isocurrencycode"] == "GBP")
    assert row["_transactioncurrencyid_value"] == gbp["transactioncurrencyid"]


def test_create_only_and_update_only_use_if_none_match_and_if_match(sandbox):
    connector = connect(sandbox)
    created = connector.write("accounts", [account(1)], mode="create")
    again = connector.write("accounts", [account(1)], mode="create")
    assert created[0].outcome == "created"
    assert again[0].outcome == "unchanged" and again[0].target_id == created[0].target_id
    missing = connector.write("accounts", [account(2)], mode="update")
    assert missing[0].outcome == "failed" and missing[0].error_code == "0x80040217"
    updated = connector.write("accounts", [account(1, telephone1="+1 555 0142")], mode="update")
    assert updated[0].outcome == "updated"
    assert sandbox.app.tables["accounts"][created[0].target_id]["telephone1"] == "+1 555 0142"


def test_bad_records_fail_one_by_one_and_the_rest_of_the_batch_lands(sandbox):
    records = [account(n) for n in range(6)]
    records[1] = account(1, name="x" * 161)
    records[3] = account(3, paymenttermscode=99)
    records[4] = account(4, shoe_size=42)
    records[5] = OutboundRecord("y" * 101, {"name": "Too long an id"})
    results = connect(sandbox).write("accounts", records)
    assert [r.outcome for r in results] == ["created", "failed", "created", "failed", "failed", "failed"]
    assert results[1].error_code == "0x80044331" and "maximum allowed length of '160'" in results[1].error_message
    assert results[3].error_code == "0x80044331" and "outside the valid range" in results[3].error_message
    assert results[4].error_code == "0x80060888" and "'shoe_size' does not exist" in results[4].error_message
    assert results[5].error_code == "INVALID_EXTERNAL_ID"


def test_a_batch_over_the_dataverse_cap_is_refused(sandbox):
    boundary = "batch_cap"
    part = (
        f"--{boundary}\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
        f"GET {sandbox.url}{API}/WhoAmI HTTP/1.1\r\n\r\n\r\n"
    )
    response = requests.post(
        f"{sandbox.url}{API}/$batch",
        data=(part * 1001 + f"--{boundary}--\r\n").encode(),
        headers={**bearer(sandbox), "Content-Type": f"multipart/mixed; boundary={boundary}"},
        timeout=30,
    )
    assert response.status_code == 400
    assert "exceeded the limit of 1000" in response.json()["error"]["message"]


def test_winning_an_opportunity_goes_through_the_win_opportunity_action(sandbox):
    connector = connect(sandbox)
    connector.write("accounts", [account(1)])
    deal = OutboundRecord(
        "contoso-deal-1",
        {"name": "Contoso rollout", "customerid": "contoso-customer-1", "estimatedvalue": 48000, "statecode": 1},
    )
    sandbox.clear_stats()
    first = connector.write("opportunities", [deal])
    second = connector.write("opportunities", [deal])  # already won: counted as done, not failed
    assert first[0].outcome == "created" and second[0].outcome == "updated"
    row = sandbox.app.tables["opportunities"][first[0].target_id]
    assert (row["statecode"], row["statuscode"], row["actualvalue"]) == (1, 3, 48000.0)
    assert len(sandbox.app.closures) == 1

    # Dataverse itself refuses to close an opportunity by an update.
    open_row = next(r for r in sandbox.app.tables["opportunities"].values() if r["statecode"] == 0)
    refused = requests.patch(
        f"{sandbox.url}{API}/opportunities({open_row['opportunityid']})",
        json={"statecode": 1},
        headers=bearer(sandbox),
        timeout=10,
    )
    assert refused.status_code == 400 and "WinOpportunity" in refused.json()["error"]["message"]


def test_a_deal_whose_save_fails_is_not_won(sandbox):
    connector = connect(sandbox)
    made = connector.write("opportunities", [OutboundRecord("deal-x", {"name": "Open deal"})])
    result = connector.write("opportunities", [OutboundRecord("deal-x", {"name": "x" * 301, "statecode": 1})])
    assert result[0].outcome == "failed" and result[0].error_code == "0x80044331"
    assert sandbox.app.tables["opportunities"][made[0].target_id]["statecode"] == 0
    assert sandbox.app.closures == []


def test_an_opportunity_on_an_unknown_account_fails_alone(sandbox):
    results = connect(sandbox).write(
        "opportunities",
        [
            OutboundRecord("deal-a", {"name": "No such customer", "customerid": "nobody-12"}),
            OutboundRecord("deal-b", {"name": "Fine", "estimatedvalue": 10}),
        ],
    )
    assert results[0].outcome == "failed" and results[0].error_code == "0x80040217"
    assert results[1].outcome == "created"


# -- webhooks ---------------------------------------------------------------------------------------------------


@pytest.fixture
def receiver():
    received: list[tuple[str, str, dict, bytes]] = []
    arrived = threading.Event()

    def app(environ, start_response):
        request = Request(environ)
        received.append((request.method, request.url, dict(request.headers), request.get_data()))
        arrived.set()
        return Response("ok")(environ, start_response)

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.port}/hooks/dynamics", received, arrived
    server.shutdown()
    thread.join(5)


@pytest.mark.parametrize("auth", ["WebhookKey", "HttpHeader"])
def test_a_won_opportunity_webhook_carries_the_key_and_verifies(sandbox, receiver, auth):
    url, received, arrived = receiver
    value = WEBHOOK_KEY if auth == "WebhookKey" else {"x-webhook-key": WEBHOOK_KEY}
    registration = {"url": url, "auth": auth, "value": value, "entity": "opportunity", "messages": ["Win"]}
    requests.post(f"{sandbox.url}/_sandbox/webhooks", json=registration, timeout=5).raise_for_status()
    connector = connect(sandbox)
    connector.write("opportunities", [OutboundRecord("deal-w", {"name": "Won deal", "statecode": 1})])
    assert arrived.wait(5), "the sandbox did not deliver the webhook"

    method, hook_url, headers, body = received[0]
    DataverseConnector.verify_webhook(secret=WEBHOOK_KEY, method=method, url=hook_url, headers=headers, body=body)
    context = json.loads(body)
    assert context["MessageName"] == "Win" and context["PrimaryEntityName"] == "opportunity"
    with pytest.raises(WebhookRejected, match="does not match"):
        DataverseConnector.verify_webhook(secret="another-key", method=method, url=hook_url, headers=headers, body=body)
    with pytest.raises(WebhookRejected, match="replay"):
        DataverseConnector.verify_webhook(
            secret=WEBHOOK_KEY, method=method, url=hook_url, headers=headers, body=body, now=time.time() + 7200
        )
    with pytest.raises(WebhookRejected, match="no webhook key"):  # neither ?code= nor the header
        DataverseConnector.verify_webhook(secret=WEBHOOK_KEY, method=method, url=url, headers={}, body=body)


def test_a_salesperson_wins_the_oldest_open_deal_with_the_next_project_code_and_the_webhook_hears(sandbox, receiver):
    url, received, arrived = receiver
    registration = {"url": url, "auth": "WebhookKey", "value": WEBHOOK_KEY, "messages": ["Win"]}
    requests.post(f"{sandbox.url}/_sandbox/webhooks", json=registration, timeout=5).raise_for_status()

    won = requests.post(f"{sandbox.url}/_sandbox/opportunities/win", json={}, timeout=5).json()
    assert arrived.wait(5), "the sandbox did not deliver the webhook"

    codes = [p["code"] for p in FIRM.projects()]
    assert won["project_code"] == f"PRJ-{int(max(codes)[4:]) + 1}" and won["delivered_to"] == [url]
    (deal,) = [r for r in read_whole(connect(sandbox), "opportunities")[1] if r.external_id == won["opportunity"]]
    assert (deal.data["statecode"], deal.data["new_projectcode"]) == (1, won["project_code"])
    context = json.loads(received[0][3])
    assert context["MessageName"] == "Win" and context["PrimaryEntityId"] == won["opportunity"]
    again = requests.post(f"{sandbox.url}/_sandbox/opportunities/win", json={"id": won["opportunity"]}, timeout=5)
    assert again.status_code == 404  # already won: no longer open


# -- secrets ----------------------------------------------------------------------------------------------------


def test_secrets_never_reach_the_logs(sandbox, caplog):
    caplog.set_level(logging.DEBUG)
    connector = connect(sandbox)
    assert connector.test_connection().ok
    read_whole(connector, "accounts", page_size=20)
    connector.write("accounts", [account(1), account(2, name=7)])
    token = connector.tokens.token()
    failing = connect(sandbox, {"client_secret": "Wr0ng-S3cret-Value"})
    with pytest.raises(AuthenticationFailed) as refused:
        read_whole(failing, "accounts")
    text = caplog.text + str(refused.value)
    assert caplog.records
    for secret in (token, DEMO_CREDENTIALS["client_secret"], "Wr0ng-S3cret-Value"):
        assert secret not in text


# -- Microsoft's own client, unchanged, against the sandbox over TLS ---------------------------------------------


@pytest.fixture(scope="module")
def tls_sandbox(tmp_path_factory):
    from connectors.sandbox.server import self_signed_certificate

    running = serve_in_thread(create_app(FIRM), tls=self_signed_certificate(tmp_path_factory.mktemp("tls")))
    yield running
    running.stop()


def test_the_official_dataverse_client_reads_pages_and_upserts(tls_sandbox, monkeypatch):
    from PowerPlatform.Dataverse.client import DataverseClient
    from PowerPlatform.Dataverse.models.upsert import UpsertItem

    from connectors.entra import EntraCredential

    monkeypatch.setenv("REQUESTS_CA_BUNDLE", tls_sandbox.ca_bundle)  # trust the test certificate; the SDK is untouched
    ours = DataverseConnector(
        base_url=tls_sandbox.url,
        credentials={**DEMO_CREDENTIALS, "authority": tls_sandbox.url},
        policy=HttpPolicy.for_sandbox(tls_sandbox.url, budget=InMemoryTokenBucket(), metrics=InMemoryMetrics()),
    )
    monkeypatch.setattr(ours.session, "verify", tls_sandbox.ca_bundle)
    with DataverseClient(tls_sandbox.url, EntraCredential(ours.tokens)) as client:
        pages = list(client.records.list_pages("account", select=["name", "accountnumber"], page_size=15))
        client.records.upsert(
            "account",
            [UpsertItem(alternate_key={"new_externalid": "sdk-customer-1"}, record={"name": "Made by the SDK"})],
        )
        created = client.records.list("account", filter="new_externalid eq 'sdk-customer-1'", select=["name"])
    assert [len(p) for p in pages] == [15, 15, ACCOUNTS - 30]
    assert [r["name"] for r in created] == ["Made by the SDK"]
    assert len(tls_sandbox.app.tables["accounts"]) == ACCOUNTS + 1
