"""ADP Workforce Now connector against its sandbox over real TLS: mutual TLS with a client certificate held in
memory, OAuth client credentials, $top/$skip paging, the event queue acknowledged only after its page is stored,
throttling, and malformed workers."""

from __future__ import annotations

import logging

import pytest
import requests

from connectors.adp.client import QUEUE, ADPConnector
from connectors.adp.sandbox import DEMO_CREDENTIALS, DEMO_PKI, NO_CERTIFICATE, create_app
from connectors.base import AuthenticationFailed, CertificateRejected, ConnectorError, OutboundRecord, Page
from connectors.http import TLSContextAdapter
from connectors.sandbox.firm import Firm
from connectors.sandbox.tls import DemoPKI
from tests.connectors.kit import connector_maker, read_whole, sandbox_fixture

PEOPLE = 200
QUEUE_PATH = "/core/v1/event-notification-messages"


sandbox = sandbox_fixture(lambda: create_app(Firm()))


@pytest.fixture(autouse=True)
def fresh_sandbox(sandbox):
    sandbox.reset()


make_connector = connector_maker(ADPConnector, DEMO_CREDENTIALS, backoff=(0.02, 0.1), own_connection=True)


def everything(connector, **kwargs):
    return read_whole(connector, "workers", **kwargs)


def test_connection_presents_the_client_certificate(sandbox):
    assert sandbox.url.startswith("https://")
    result = make_connector(sandbox).test_connection()
    assert result.ok, result.message
    assert result.message == "Connected to ADP Workforce Now with a client certificate; 200 workers visible."


def test_the_sandbox_requires_the_client_certificate(sandbox):
    """Without a certificate ADP answers 401 at the HTTP layer; with one from another CA the handshake fails."""
    anonymous = requests.Session()
    anonymous.mount("https://", TLSContextAdapter(DEMO_PKI.trusting_context()))
    token = anonymous.post(f"{sandbox.url}/auth/oauth/v2/token", data={"grant_type": "client_credentials"}, timeout=10)
    assert token.status_code == 401
    assert token.json() == {"error": "invalid_request", "error_description": NO_CERTIFICATE}
    workers = anonymous.get(f"{sandbox.url}/hr/v2/workers", timeout=10)
    assert workers.status_code == 401
    assert workers.json()["response"]["applicationCode"]["message"] == NO_CERTIFICATE
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://{sandbox.host}/hr/v2/workers", timeout=10)  # TLS only


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        (
            {"client_secret": "not-the-secret"},
            AuthenticationFailed,
            "ADP refused the client ID or secret (The given client credentials were not valid).",
        ),
        (
            {"client_private_key": DemoPKI("adp").client_certificate("Somebody")[1]},
            AuthenticationFailed,
            "The ADP client certificate cannot be used: The client certificate and private key cannot be used "
            "together (KEY_VALUES_MISMATCH).",
        ),
        (
            dict(
                zip(
                    ("client_certificate", "client_private_key"),
                    DemoPKI("elsewhere").client_certificate("X"),
                    strict=True,
                )
            ),
            CertificateRejected,
            "The TLS handshake with adp failed on a certificate",
        ),
        ({"ca_certificate": ""}, CertificateRejected, "CERTIFICATE_VERIFY_FAILED"),
    ],
)
def test_refused_credentials_and_certificates_are_understood_without_retries(sandbox, change, error, message):
    sandbox.clear_stats()
    connector = make_connector(sandbox, {**DEMO_CREDENTIALS, **change})
    result = connector.test_connection()
    assert not result.ok and message in result.message
    with pytest.raises(error):
        everything(connector)
    assert connector.policy.metrics.stats("adp", connector.connection_key).retries == 0
    assert sandbox.stats()["calls"] == (2 if "client_secret" in change else 0)


def test_a_full_read_pages_with_top_and_skip_then_follows_the_queue(sandbox):
    connector = make_connector(sandbox)
    pages, records, rejects = everything(connector, page_size=60)
    assert [len(p.records) for p in pages] == [60, 60, 60, 20]
    assert [p.total for p in pages] == [PEOPLE] * 4
    assert [p.cursor for p in pages] == ["all|60", "all|120", "all|180", QUEUE]
    assert not rejects and len({r.external_id for r in records}) == PEOPLE

    resumed = list(connector.read("workers", since="all|120", page_size=60))
    assert [r.external_id for p in resumed for r in p.records] == [r.external_id for p in pages[2:] for r in p.records]

    by_number = {r.data["workerID"]: r for r in records}
    first = by_number["E1001"]
    assert first.external_id.startswith("G3") and first.external_id != "E1001"  # associateOID is not the number
    assert first.data["emailUri"] == Firm().person(1)["work_email"]
    assert (first.data["annualRateAmount"], first.data["costRate"]) == (260000.0, 190.0)
    assert any(r.data["costRate"] is None for r in records)
    terminated = [r for r in records if r.data["workerStatus"] == "Terminated"]
    assert terminated and all(r.data["terminationDate"] for r in terminated)
    # The firm's HR records without a work email or a department lack them in ADP too, and are read all the same.
    gaps = {Firm().person(pid)["employee_number"]: missing for pid, missing in Firm().hr_gaps().items()}
    assert {n for n, r in by_number.items() if r.data["emailUri"] is None} == {
        n for n, missing in gaps.items() if missing == "work_email"
    }
    assert {n for n, r in by_number.items() if r.data["department"] is None} == {
        n for n, missing in gaps.items() if missing == "department"
    }
    assert [p.cursor for p in make_connector(sandbox).read("workers")] == ["all|100", QUEUE]  # $top is 100 at most

    assert list(connector.read("workers", since=QUEUE)) == [Page(records=[], rejects=[], cursor=QUEUE, has_more=False)]


def test_queued_events_are_acknowledged_only_after_their_page_is_stored(sandbox):
    app = sandbox.app
    app.change_worker(17, job_title="Technology Manager")
    app.change_worker(120, event="worker.terminate", status="Terminated", termination_date="2025-03-31")
    hired = app.hire(dict(Firm().person(5), employee_number="E1201", work_email="ada.byrne@haldenrowe.example"))
    connector = make_connector(sandbox)

    # A run that stops after the first event (a crash, a slice deadline) has not acknowledged it.
    reading = connector.read("workers", since=QUEUE)
    first = next(reading)
    reading.close()
    assert first.records[0].data["jobTitle"] == "Technology Manager"
    assert first.records[0].data["eventNameCode"] == "worker.work-assignment.modify"
    assert len(app.queue) == 3

    # The next run starts from the stored cursor: it acknowledges that event first, then reads on.
    sandbox.clear_stats()
    pages, records, _ = everything(connector, since=first.cursor)
    assert [r.data["eventNameCode"] for r in records] == ["worker.terminate", "worker.hire"]
    assert records[0].data["terminationDate"] == "2025-03-31" and records[0].data["workerStatus"] == "Terminated"
    assert records[1].external_id == hired and records[1].data["workerID"] == "E1201"
    assert pages[-1].cursor == QUEUE and not pages[-1].has_more
    assert app.queue == {}
    calls = sandbox.stats()["by_path"]
    assert sum(calls[path].get("200", 0) for path in calls if path.startswith(f"{QUEUE_PATH}/")) == 3  # 3 DELETEs
    assert calls[QUEUE_PATH] == {"200": 2, "204": 1}

    # Restarting from a cursor whose message was acknowledged already reads nothing twice.
    assert everything(connector, since=pages[-2].cursor)[1] == []


def test_an_expired_token_is_fetched_again_once(sandbox):
    connector = make_connector(sandbox)
    pages = connector.read("workers", page_size=50)
    assert len(next(pages).records) == 50
    sandbox.app.expire_tokens()
    assert len(next(pages).records) == 50
    assert sandbox.stats()["by_path"]["/auth/oauth/v2/token"] == {"200": 2}


def test_malformed_workers_are_rejected_one_by_one(sandbox):
    sandbox.set_faults(malformed_every=9)
    _, records, rejects = everything(make_connector(sandbox))
    assert len(rejects) == 2 * (100 // 9)
    assert len(records) == PEOPLE - len(rejects)
    assert {r.reason for r in rejects} == {
        "The worker has no associateOID.",
        "originalHireDate is not a date: '02/31/2019'",
    }


def test_server_errors_are_retried(sandbox):
    sandbox.set_faults(error_every=2)
    assert len(everything(make_connector(sandbox), page_size=50)[1]) == PEOPLE
    assert sandbox.stats()["errors_injected"] >= 2


def test_throttling_is_honoured_and_a_budget_reads_10000_workers_without_one_429(sandbox):
    sandbox.set_faults(rate_limit={"calls": 2, "window": 1.0, "retry_after": 1})
    assert len(everything(make_connector(sandbox), page_size=50)[1]) == PEOPLE
    assert sandbox.stats()["rate_limited"] >= 1

    sandbox.seed(workers=10_000)
    sandbox.set_faults(rate_limit={"calls": 5, "window": 0.25})
    sandbox.clear_stats()
    budgeted = make_connector(sandbox, rate_per_second=16, burst=1)  # at most 1 + 16 * 0.25 = 5 calls a window
    pages, records, _ = everything(budgeted)
    assert len({r.external_id for r in records}) == 10_000
    assert len(pages) == 100 and pages[0].total == 10_000
    stats = sandbox.stats()
    assert stats["rate_limited"] == 0
    assert stats["max_calls_in_window"] <= 5


def test_the_connector_is_read_only(sandbox):
    with pytest.raises(ConnectorError):
        make_connector(sandbox).write("workers", [OutboundRecord(external_id="contoso-person-1", fields={})])


def test_secrets_and_the_private_key_never_reach_the_logs(sandbox, caplog):
    caplog.set_level(logging.DEBUG)
    sandbox.set_faults(error_every=3)
    connector = make_connector(sandbox)
    everything(connector, page_size=50)
    wrong = "adp-wrong-secret-0123456789"
    with pytest.raises(AuthenticationFailed) as refused:
        everything(make_connector(sandbox, {**DEMO_CREDENTIALS, "client_secret": wrong}))
    assert caplog.records
    text = caplog.text + str(refused.value)
    key_body = DEMO_CREDENTIALS["client_private_key"].splitlines()[1]
    for secret in (DEMO_CREDENTIALS["client_secret"], wrong, connector._token, key_body):
        assert secret not in text
