"""The HubSpot connector against its sandbox, over real HTTP on loopback."""

from __future__ import annotations

import json
import logging
import threading
import time

import pytest
import requests
from hubspot import HubSpot
from hubspot.crm.deals import SimplePublicObjectInputForCreate
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from connectors.base import AuthenticationFailed, OutboundRecord, WebhookRejected
from connectors.hubspot.client import HubSpotConnector
from connectors.hubspot.sandbox import DEMO_CREDENTIALS, PORTAL_ID, WEBHOOK_SECRET, create_app
from connectors.hubspot.webhooks import closed_won_deal_ids, signature_v3
from connectors.sandbox.firm import Firm
from tests.connectors.kit import connector_maker, pages_read, sandbox_fixture

pytestmark = pytest.mark.timeout(60)


sandbox = sandbox_fixture(create_app)


@pytest.fixture(autouse=True)
def fresh_portal(sandbox):
    sandbox.reset()
    yield


connect = connector_maker(HubSpotConnector, DEMO_CREDENTIALS)


def count(sandbox, object_name: str) -> int:
    portal = sandbox.app.portal
    with portal.lock:
        return sum(1 for r in portal.objects[object_name].values() if not r["archived"])


def calls_to(sandbox, suffix: str) -> int:
    return sum(sum(s.values()) for path, s in sandbox.stats()["by_path"].items() if path.endswith(suffix))


def test_a_wrong_token_fails_with_a_clear_message(sandbox):
    connector = connect(sandbox, {"access_token": "pat-na1-not-a-real-token"})

    result = connector.test_connection()

    assert result.ok is False
    assert result.message.startswith("HubSpot refused the access token: Authentication credentials not found.")
    assert "(INVALID_AUTHENTICATION)" in result.message
    with pytest.raises(AuthenticationFailed):
        pages_read(connector, "deals")


def test_connection_names_the_account(sandbox):
    result = connect(sandbox).test_connection()

    assert result.ok
    assert result.message == f"Connected to HubSpot account {PORTAL_ID} (USD)."
    assert result.detail["objects_missing_external_id"] == []


def test_full_read_follows_the_after_cursor(sandbox):
    sandbox.seed(deals=130)  # 120 seeded + 130 = 250 deals -> pages of 100, 100, 50
    sandbox.clear_stats()
    connector = connect(sandbox)

    pages = pages_read(connector, "deals", page_size=500)  # more than HubSpot allows: capped at 100

    assert [len(p.records) for p in pages] == [100, 100, 50]
    assert [p.has_more for p in pages] == [True, True, False]
    # The list is in id order, so only the last page may move the watermark.
    assert [p.cursor is None for p in pages] == [True, True, False]
    records = [r for p in pages for r in p.records]
    assert len({r.external_id for r in records}) == 250 == count(sandbox, "deals")
    assert pages[-1].cursor == max(r.updated_at for r in records)
    assert records[0].data["company_ids"] and records[0].data["dealname"]
    assert calls_to(sandbox, "/crm/v3/objects/deals") == 3


def test_incremental_read_pages_the_search_for_what_changed(sandbox):
    connector = connect(sandbox)
    cursor = pages_read(connector, "deals")[-1].cursor
    deals = [r for p in pages_read(connector, "deals") for r in p.records]
    changed = [r.external_id for r in deals[:120]]
    results = connector.write(
        "deals",
        [OutboundRecord(f"UPD-{i}", {"description": "Scope confirmed"}, target_id=d) for i, d in enumerate(changed)],
        mode="update",
    )
    assert {r.outcome for r in results} == {"updated"}
    sandbox.clear_stats()

    pages = pages_read(connector, "deals", since=cursor, page_size=50)

    seen = [r for p in pages for r in p.records]
    assert [len(p.records) for p in pages][:2] == [50, 50] and len(pages) == 3
    assert {r.external_id for r in seen if r.updated_at > cursor} == set(changed)
    assert len(seen) <= 121  # the changes, plus at most the deal sitting exactly on the watermark
    assert [p.cursor for p in pages] == sorted(p.cursor for p in pages)
    assert all(r.data["company_ids"] for r in seen)  # associations fetched for search pages too
    stats = sandbox.stats()
    assert calls_to(sandbox, "/crm/v3/objects/deals/search") == 3
    assert stats["rate_limited"] == 0  # searches were paced under HubSpot's 5-a-second search limit


def test_batch_of_100_with_3_invalid_deals_creates_97(sandbox):
    before = count(sandbox, "deals")
    records = [
        OutboundRecord(
            f"DEAL-{i:03d}", {"dealname": f"Batch deal {i}", "dealstage": "qualifiedtobuy", "amount": "5000"}
        )
        for i in range(100)
    ]
    for bad in (3, 50, 97):
        records[bad] = OutboundRecord(f"DEAL-{bad:03d}", {"dealname": f"Bad {bad}", "dealstage": "won"})

    results = connect(sandbox).write("deals", records, mode="upsert")

    assert [r.external_id for r in results] == [r.external_id for r in records]
    failed = [i for i, r in enumerate(results) if r.outcome == "failed"]
    assert failed == [3, 50, 97]
    assert {results[i].error_code for i in failed} == {"INVALID_OPTION"}
    assert "won was not one of the allowed options" in results[3].error_message
    assert sum(r.outcome == "created" for r in results) == 97
    assert count(sandbox, "deals") == before + 97


def test_upserting_the_same_batch_twice_creates_nothing_new(sandbox):
    records = [
        OutboundRecord(f"DEAL-{i:03d}", {"dealname": f"Deal {i}", "dealstage": "appointmentscheduled"})
        for i in range(100)
    ]
    connector = connect(sandbox)

    first = connector.write("deals", records)
    after_first = count(sandbox, "deals")
    second = connector.write("deals", records)

    assert {r.outcome for r in first} == {"created"}
    assert {r.outcome for r in second} == {"updated"}
    assert [r.target_id for r in first] == [r.target_id for r in second]
    assert count(sandbox, "deals") == after_first


def test_companies_are_matched_on_their_domain_before_creating(sandbox):
    existing = [r for p in pages_read(connect(sandbox), "companies") for r in p.records][:2]
    records = [
        OutboundRecord(
            "ERP-C-1", {"name": existing[0].data["name"], "domain": f"https://www.{existing[0].data['domain']}/"}
        ),
        OutboundRecord("ERP-C-2", {"name": existing[1].data["name"], "domain": existing[1].data["domain"].upper()}),
        OutboundRecord("ERP-C-3", {"name": "Brand New Client", "domain": "brandnewclient.example"}),
    ]
    before = count(sandbox, "companies")
    connector = connect(sandbox)

    first = connector.write("companies", records)
    second = connector.write("companies", records)

    assert [r.outcome for r in first] == ["updated", "updated", "created"]
    assert [r.target_id for r in first[:2]] == [existing[0].external_id, existing[1].external_id]
    assert [r.outcome for r in second] == ["updated"] * 3
    assert [r.target_id for r in second] == [r.target_id for r in first]
    assert count(sandbox, "companies") == before + 1


def test_stays_inside_the_rate_budget(sandbox):
    sandbox.seed(deals=380)  # 500 deals -> 5 list pages
    sandbox.set_faults(rate_limit={"calls": 4, "window": 1.0})
    sandbox.clear_stats()
    # A token bucket lets at most burst + rate * window calls into any window: 1 + 2.5 = 3.5 < 4.
    connector = connect(sandbox, rate_per_second=2.5, burst=1)

    pages = pages_read(connector, "deals")

    stats = sandbox.stats()
    assert sum(len(p.records) for p in pages) == 500
    assert stats["calls"] == 5
    assert stats["rate_limited"] == 0
    assert stats["max_calls_in_window"] <= 3


def test_429_and_retry_after_are_honoured(sandbox):
    sandbox.seed(deals=180)  # 300 deals -> 3 pages
    sandbox.set_faults(rate_limit={"calls": 1, "window": 1.0, "retry_after": 1})
    connector = connect(sandbox)
    waits: list[float] = []
    connector.session.sleep = lambda seconds: (waits.append(seconds), time.sleep(seconds))

    pages = pages_read(connector, "deals")

    assert sum(len(p.records) for p in pages) == 300
    assert sandbox.stats()["rate_limited"] >= 1
    assert 1.0 in waits


def test_server_errors_are_retried_and_all_data_arrives(sandbox):
    sandbox.seed(deals=80)  # 200 deals -> 2 pages
    sandbox.set_faults(error_every=2)
    connector = connect(sandbox)

    pages = pages_read(connector, "deals")
    results = connector.write(
        "deals", [OutboundRecord(f"R-{i}", {"dealname": f"Retry {i}", "dealstage": "closedlost"}) for i in range(5)]
    )

    assert sum(len(p.records) for p in pages) == 200
    assert [r.outcome for r in results] == ["created"] * 5
    assert sandbox.stats()["errors_injected"] >= 2


def test_malformed_records_are_rejected_one_by_one(sandbox):
    sandbox.set_faults(malformed_every=10)

    pages = pages_read(connect(sandbox), "companies")

    rejects = [r for p in pages for r in p.rejects]
    records = [r for p in pages for r in p.records]
    companies = len(Firm().crm_companies())  # every tenth record is malformed
    assert len(rejects) == companies // 10 and len(records) == companies - companies // 10
    assert "The record has no valid HubSpot id." in {r.reason for r in rejects}
    assert any("updatedAt 'yesterday-ish' is not a date and time" in r.reason for r in rejects)


def test_secrets_never_reach_the_logs(sandbox, caplog):
    caplog.set_level(logging.DEBUG)
    wrong = "pat-na1-00000000-dead-beef-0000-wrongtoken01"
    with pytest.raises(AuthenticationFailed) as refused:
        pages_read(connect(sandbox, {"access_token": wrong}), "companies")
    sandbox.set_faults(error_every=2)
    good = connect(sandbox)
    good.test_connection()
    pages_read(good, "companies")
    good.write("companies", [OutboundRecord("S-1", {"name": "Secretive", "domain": "secretive.example"})])

    logged = caplog.text + str(refused.value)
    assert "connectors.http" in {r.name for r in caplog.records}
    for secret in (wrong, DEMO_CREDENTIALS["access_token"], DEMO_CREDENTIALS["webhook_secret"]):
        assert secret not in logged


def test_closed_won_webhook_is_signed_and_verifies(sandbox):
    received = []
    arrived = threading.Event()

    def receiver(environ, start_response):
        request = Request(environ)
        received.append((request.method, request.url, dict(request.headers), request.get_data()))
        arrived.set()
        return Response("", status=204)(environ, start_response)

    server = make_server("127.0.0.1", 0, receiver, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        hook = f"http://127.0.0.1:{server.port}/hooks/hubspot?client=northwind"
        requests.post(f"{sandbox.url}/_sandbox/webhooks", json={"url": hook}, timeout=5).raise_for_status()
        connector = connect(sandbox)
        open_deal = next(
            r for p in pages_read(connector, "deals") for r in p.records if r.data["dealstage"] != "closedwon"
        )
        connector.write(
            "deals",
            [OutboundRecord("WON-1", {"dealstage": "closedwon"}, target_id=open_deal.external_id)],
            mode="update",
        )
        assert arrived.wait(5), "the sandbox did not deliver the webhook"
    finally:
        server.shutdown()
        thread.join(5)

    method, url, headers, body = received[0]
    HubSpotConnector.verify_webhook(secret=WEBHOOK_SECRET, method=method, url=url, headers=headers, body=body)
    assert closed_won_deal_ids(body) == [open_deal.external_id]
    with pytest.raises(WebhookRejected, match="signature"):
        tampered = body.replace(b"closedwon", b"closedlost")
        HubSpotConnector.verify_webhook(secret=WEBHOOK_SECRET, method=method, url=url, headers=headers, body=tampered)
    with pytest.raises(WebhookRejected, match="signature"):
        HubSpotConnector.verify_webhook(secret="another-app", method=method, url=url, headers=headers, body=body)
    with pytest.raises(WebhookRejected, match="seconds old"):
        HubSpotConnector.verify_webhook(
            secret=WEBHOOK_SECRET, method=method, url=url, headers=headers, body=body, now=time.time() + 301
        )
    assert json.loads(body)[0]["portalId"] == PORTAL_ID


def test_hubspot_api_client_lists_and_creates_deals_against_the_sandbox(sandbox):
    client = HubSpot(access_token=DEMO_CREDENTIALS["access_token"], host=sandbox.url)

    first = client.crm.deals.basic_api.get_page(limit=5, properties=["dealname", "amount"], associations=["companies"])
    second = client.crm.deals.basic_api.get_page(limit=5, after=first.paging.next.after)
    created = client.crm.deals.basic_api.create(
        SimplePublicObjectInputForCreate(properties={"dealname": "SDK deal", "dealstage": "qualifiedtobuy"})
    )

    assert len(first.results) == 5 and len(second.results) == 5
    assert {d.id for d in first.results}.isdisjoint({d.id for d in second.results})
    assert first.results[0].properties["dealname"] and first.results[0].associations["companies"].results
    assert created.id and created.properties["dealname"] == "SDK deal"
    assert count(sandbox, "deals") == 121


def test_sandbox_speaks_hubspots_limits_and_error_shapes(sandbox):
    """What any HubSpot client sees: the search limit's 429, rate-limit headers, whole-batch validation errors."""
    headers = {"Authorization": f"Bearer {DEMO_CREDENTIALS['access_token']}"}
    search = {"filterGroups": [], "limit": 1}
    answers = [
        requests.post(f"{sandbox.url}/crm/v3/objects/deals/search", json=search, headers=headers, timeout=5)
        for _ in range(6)
    ]
    refused = answers[-1]
    bad_batch = requests.post(
        f"{sandbox.url}/crm/v3/objects/deals/batch/create",
        json={
            "inputs": [
                {"properties": {"dealname": "ok", "dealstage": "closedwon"}},
                {"properties": {"dealname": "x", "dealstage": "nope"}},
            ]
        },
        headers=headers,
        timeout=5,
    )

    assert [a.status_code for a in answers[:5]] == [200] * 5
    assert refused.status_code == 429
    assert refused.json()["errorType"] == "RATE_LIMIT" and refused.json()["policyName"] == "SECONDLY"
    assert refused.headers["X-HubSpot-RateLimit-Max"] == "190"
    assert int(answers[0].headers["X-HubSpot-RateLimit-Remaining"]) < 190
    # Without objectWriteTraceId a batch is all or nothing: one bad input refuses the whole call.
    assert bad_batch.status_code == 400
    assert bad_batch.json()["category"] == "VALIDATION_ERROR"
    assert bad_batch.json()["errors"][0]["code"] == "INVALID_OPTION"
    assert count(sandbox, "deals") == 120


HOSTILE_TIMESTAMPS = ["9" * 400, "\u00b2", "1" * 5000, "١٧٠٠٠٠٠٠٠٠٠٠٠", "-1", "1e9", ""]


@pytest.mark.parametrize(
    "timestamp",
    HOSTILE_TIMESTAMPS,
    ids=["400-nines", "superscript", "5000-digits", "arabic", "negative", "float", "empty"],
)
def test_webhook_with_a_hostile_timestamp_is_refused_not_crashed(timestamp):
    url, body = "https://northwind.localhost/hooks/contoso/token", b"[]"
    unsigned = {"X-HubSpot-Signature-v3": "bm9wZQ==", "X-HubSpot-Request-Timestamp": timestamp}
    with pytest.raises(WebhookRejected):
        HubSpotConnector.verify_webhook(secret=WEBHOOK_SECRET, method="POST", url=url, headers=unsigned, body=body)
    # Even correctly signed, a timestamp that is not one is a refusal.
    signed = {**unsigned, "X-HubSpot-Signature-v3": signature_v3(WEBHOOK_SECRET, "POST", url, body, timestamp)}
    with pytest.raises(WebhookRejected):
        HubSpotConnector.verify_webhook(secret=WEBHOOK_SECRET, method="POST", url=url, headers=signed, body=body)


def test_webhook_signature_is_checked_before_the_timestamp_is_read():
    url, body = "https://northwind.localhost/hooks/contoso/token", b"[]"
    headers = {"X-HubSpot-Signature-v3": "nöt-base64-é", "X-HubSpot-Request-Timestamp": "9" * 400}
    with pytest.raises(WebhookRejected, match="signature"):
        HubSpotConnector.verify_webhook(secret=WEBHOOK_SECRET, method="POST", url=url, headers=headers, body=body)
