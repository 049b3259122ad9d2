"""The shared HTTP policy: destination guard, rate budget, retries, Retry-After, metrics and secret redaction.

Everything runs over real HTTP against a tiny sandbox built from the kit, on loopback.
"""

from __future__ import annotations

import logging
import socket
import time

import pytest
import requests
from cryptography import x509
from cryptography.x509.oid import NameOID
from werkzeug.routing import Rule
from werkzeug.wrappers import Response

from connectors.base import CertificateRejected, DestinationRefused, RateLimited, VendorUnavailable
from connectors.http import (
    HttpPolicy,
    InMemoryMetrics,
    InMemoryTokenBucket,
    TLSContextAdapter,
    VendorSession,
    check_destination,
    parse_retry_after,
    redact,
)
from connectors.sandbox import SandboxApp, json_response, serve_in_thread
from connectors.sandbox.tls import DemoPKI
from tests.connectors.kit import sandbox_fixture

SECRET = "s3cr3t-Token-9f8e7d6c"


class EchoApp(SandboxApp):
    """A minimal vendor: /items answers 200; /redirect-private points at a private address."""

    vendor = "echo"

    def routes(self):
        return [
            Rule("/items", endpoint="items"),
            Rule("/not-implemented", endpoint="not_implemented"),
            Rule("/redirect-private", endpoint="redirect_private"),
            Rule("/quota", endpoint="quota"),
        ]

    def reset_state(self):
        self.quota_calls = 0

    def items(self, request):
        return json_response({"ok": True})

    def not_implemented(self, request):
        return json_response({"error": "no"}, status=501)

    def redirect_private(self, request):
        return Response(status=302, headers={"Location": "http://10.0.0.1/steal"})

    def quota(self, request):
        # Salesforce style: every other call says the quota is spent with a 403, not a 429.
        self.quota_calls += 1
        if self.quota_calls % 2:
            return json_response([{"errorCode": "REQUEST_LIMIT_EXCEEDED", "message": "limit"}], status=403)
        return json_response({"ok": True})


sandbox = sandbox_fixture(lambda: EchoApp())


@pytest.fixture(autouse=True)
def clean(sandbox):
    sandbox.reset()
    yield


def session_for(sandbox, **policy) -> VendorSession:
    policy.setdefault("backoff_base", 0.01)
    policy.setdefault("budget", InMemoryTokenBucket())
    policy.setdefault("metrics", InMemoryMetrics())
    return VendorSession(
        policy=HttpPolicy.for_sandbox(sandbox.url, **policy), vendor="echo", connection_key="c1", secrets=[SECRET]
    )


# -- destination guard ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://10.0.0.1/", "Refused to connect to 10.0.0.1: private network addresses are not allowed"),
        ("http://127.0.0.1:5432/", "Refused to connect to 127.0.0.1:5432: loopback addresses are not allowed"),
        ("http://169.254.169.254/latest/meta-data", "link-local addresses"),
        ("http://[::1]:8080/", "loopback addresses are not allowed"),
        ("http://[::ffff:192.168.1.5]/", "private network addresses are not allowed"),
        ("http://0.0.0.0/", "unspecified addresses are not allowed"),
        ("file:///etc/passwd", "only http and https are allowed"),
    ],
)
def test_guard_refuses_private_destinations_with_a_clear_sentence(url, message):
    session = VendorSession(policy=HttpPolicy(), vendor="echo")
    with pytest.raises(DestinationRefused, match=message.replace("[", r"\[").replace(".", r"\.")):
        session.get(url)


def test_guard_resolves_host_names_before_deciding(monkeypatch):
    real_getaddrinfo = socket.getaddrinfo

    def fake_getaddrinfo(host, port, *args, **kwargs):
        if host == "evil.example":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.1.2.3", port))]
        if host == "api.vendor.example":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port))]
        return real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    with pytest.raises(DestinationRefused, match=r"evil\.example \(10\.1\.2\.3\): private network"):
        check_destination("https://evil.example/api")
    check_destination("https://api.vendor.example/api")  # public: no exception
    with pytest.raises(DestinationRefused, match="localhost"):
        check_destination("http://localhost:8101/")


def test_allow_listed_sandbox_is_reachable_and_other_ports_are_not(sandbox):
    session = session_for(sandbox)
    assert session.get(f"{sandbox.url}/items").json() == {"ok": True}
    # localhost resolves to the allow-listed address and port, so it is the same sandbox.
    assert session.get(f"http://localhost:{sandbox.port}/items").status_code == 200
    with pytest.raises(DestinationRefused, match="127.0.0.1:5432"):
        session.get("http://127.0.0.1:5432/")


def test_redirects_are_guarded_too(sandbox):
    with pytest.raises(DestinationRefused, match="10.0.0.1"):
        session_for(sandbox).get(f"{sandbox.url}/redirect-private")


@pytest.mark.parametrize(
    "path",
    [
        "/_sandbox/faults",
        "/%5Fsandbox/faults",
        "/items/../_sandbox/faults",
        "//_sandbox/faults",
        "/_sandbox/faults#/crm/v3/objects",
    ],
)
def test_an_allow_listed_sandbox_never_lets_a_connection_reach_its_controls(sandbox, path):
    session = session_for(sandbox)
    with pytest.raises(DestinationRefused, match="/_sandbox/ paths control a vendor sandbox"):
        session.post(f"{sandbox.url}{path}", json={"error_every": 1})
    assert session.get(f"{sandbox.url}/items").status_code == 200  # no fault was switched on
    assert sandbox.stats()["calls"] == 1


def test_a_name_that_rebinds_to_loopback_after_the_check_is_refused_at_connect(sandbox, monkeypatch):
    """DNS rebinding: public when checked, 127.0.0.1 when connecting. The connection checks what it uses."""
    real_getaddrinfo = socket.getaddrinfo
    answers = []

    def rebinding_getaddrinfo(host, port, *args, **kwargs):
        if host == "rebind.example":
            address = "93.184.216.34" if not answers else "127.0.0.1"
            answers.append(address)
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]
        return real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding_getaddrinfo)
    session = VendorSession(policy=HttpPolicy(max_retries=0), vendor="echo")
    with pytest.raises(DestinationRefused, match=r"rebind\.example:\d+ \(127\.0\.0\.1\): loopback"):
        session.get(f"http://rebind.example:{sandbox.port}/items")
    assert answers[:2] == ["93.184.216.34", "127.0.0.1"]
    assert sandbox.stats()["calls"] == 0


# -- retries, Retry-After and the budget ------------------------------------------------------------------------


def test_5xx_is_retried_until_the_data_arrives(sandbox):
    sandbox.set_faults(error_every=2)
    session = session_for(sandbox)
    for _ in range(6):
        assert session.get(f"{sandbox.url}/items").json() == {"ok": True}
    stats = sandbox.stats()
    assert stats["by_path"]["/items"] == {"200": 6, "500": 5}
    metrics = session.policy.metrics.stats("echo", "c1")
    assert metrics.retries == 5
    assert metrics.statuses[500] == 5


def test_5xx_past_the_retries_raises_vendor_unavailable(sandbox):
    sandbox.set_faults(error_every=1)
    session = session_for(sandbox, max_retries=2)
    with pytest.raises(VendorUnavailable, match="HTTP 500"):
        session.get(f"{sandbox.url}/items")
    assert sandbox.stats()["calls"] == 3


def test_501_is_not_retried(sandbox):
    response = session_for(sandbox).get(f"{sandbox.url}/not-implemented")
    assert response.status_code == 501
    assert sandbox.stats()["calls"] == 1


def test_connection_errors_are_retried_then_reported():
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    session = VendorSession(
        policy=HttpPolicy(allowed_hosts=frozenset({f"127.0.0.1:{port}"}), max_retries=2, backoff_base=0.01),
        vendor="echo",
    )
    with pytest.raises(VendorUnavailable, match="could not be reached after 3 attempts"):
        session.get(f"http://127.0.0.1:{port}/")


def test_read_timeouts_are_retried(sandbox):
    sandbox.set_faults(timeout=0.6, timeout_every=2)
    session = session_for(sandbox, read_timeout=0.2)
    assert session.get(f"{sandbox.url}/items").status_code == 200  # call 1 is quick
    assert session.get(f"{sandbox.url}/items").status_code == 200  # call 2 times out, call 3 answers
    assert session.policy.metrics.stats("echo", "c1").errors == 1


def test_retry_after_is_honoured(sandbox):
    sandbox.set_faults(rate_limit={"calls": 2, "window": 1.0, "retry_after": 1})
    session = session_for(sandbox)
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(seconds)

    session.sleep = sleep
    for _ in range(3):
        assert session.get(f"{sandbox.url}/items").status_code == 200
    stats = sandbox.stats()
    assert stats["rate_limited"] == 1
    assert any(w >= 1.0 for w in waits), waits
    assert session.policy.metrics.stats("echo", "c1").rate_limited == 1


def test_a_retry_after_longer_than_the_policy_allows_raises_rate_limited_at_once(sandbox):
    sandbox.set_faults(rate_limit={"calls": 1, "window": 60.0, "retry_after": 30})
    session = session_for(sandbox, max_retry_after=2.0)
    session.get(f"{sandbox.url}/items")
    started = time.monotonic()
    with pytest.raises(RateLimited) as caught:
        session.get(f"{sandbox.url}/items")
    assert caught.value.retry_after == 30
    assert time.monotonic() - started < 1.0


def test_vendor_specific_rate_limit_detector(sandbox):
    session = session_for(sandbox)
    session.rate_limit_detector = lambda r: 0.05 if r.status_code == 403 and "REQUEST_LIMIT" in r.text else None
    assert session.get(f"{sandbox.url}/quota").json() == {"ok": True}
    assert session.policy.metrics.stats("echo", "c1").rate_limited == 1


def test_budget_is_never_exceeded(sandbox):
    rate, burst = 10.0, 1
    budget_per_window = burst + rate * 1.0
    # The sandbox enforces exactly the budget the policy promises to respect.
    sandbox.set_faults(rate_limit={"calls": int(budget_per_window), "window": 1.0, "retry_after": 1})
    session = session_for(sandbox, rate_per_second=rate, burst=burst)
    for _ in range(25):
        session.get(f"{sandbox.url}/items")
    stats = sandbox.stats()
    assert stats["rate_limited"] == 0
    assert stats["max_calls_in_window"] <= budget_per_window
    assert stats["calls"] == 25


def test_sessions_of_one_connection_share_the_budget(sandbox):
    budget = InMemoryTokenBucket()
    first = session_for(sandbox, rate_per_second=20.0, burst=1, budget=budget)
    second = session_for(sandbox, rate_per_second=20.0, burst=1, budget=budget)
    started = time.monotonic()
    for _ in range(5):
        first.get(f"{sandbox.url}/items")
        second.get(f"{sandbox.url}/items")
    # Ten calls at 20/s with a burst of one need at least 9 / 20 s.
    assert time.monotonic() - started >= 0.44


def test_parse_retry_after_accepts_seconds_and_http_dates():
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == pytest.approx(10.0)
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


# -- secrets ------------------------------------------------------------------------------------------------------


def test_secrets_never_reach_logs_or_exception_text(sandbox, caplog):
    caplog.set_level(logging.DEBUG)
    sandbox.set_faults(error_every=1)
    session = session_for(sandbox, max_retries=1)
    with pytest.raises(VendorUnavailable) as caught:
        session.get(
            f"{sandbox.url}/items?access_token={SECRET}&api_key={SECRET}",
            headers={"Authorization": f"Bearer {SECRET}"},
        )
    assert SECRET not in str(caught.value)
    assert SECRET not in caplog.text
    assert "access_token=***" in caplog.text  # the line is still useful, only the value is gone


def test_redact_covers_known_secrets_auth_headers_and_token_params():
    text = f"Authorization: Basic dXNlcjpwYXNzd29yZA== url=https://x/y?token=abc123&q=1 body={SECRET}"
    cleaned = redact(text, [SECRET])
    assert "dXNlcjpwYXNzd29yZA==" not in cleaned
    assert "abc123" not in cleaned
    assert SECRET not in cleaned
    assert "q=1" in cleaned


# -- client certificates (mutual TLS) ---------------------------------------------------------------------------


class CertificateApp(EchoApp):
    """EchoApp over TLS, with a demo CA; /whoami names the client certificate the server verified."""

    vendor = "tls-echo"

    def __init__(self, pki: DemoPKI, **kwargs):
        self.pki = pki
        super().__init__(**kwargs)

    def routes(self):
        return [*super().routes(), Rule("/whoami", endpoint="whoami")]

    def whoami(self, request):
        pem = request.environ.get("SSL_CLIENT_CERT")
        if not pem:
            return json_response({"error": "no client certificate"}, status=401)
        subject = x509.load_pem_x509_certificate(pem.encode()).subject
        return json_response({"cn": subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value})

    def ssl_context(self):
        return self.pki.server_context(require_client_certificate=False)

    def control_session(self):
        session = requests.Session()
        session.mount("https://", TLSContextAdapter(self.pki.trusting_context()))
        return session


@pytest.fixture(scope="module")
def tls_sandbox():
    pki = DemoPKI("policy-test")
    running = serve_in_thread(CertificateApp(pki))
    yield running, pki
    running.stop()


def test_a_client_certificate_held_in_memory_is_presented_over_tls(tls_sandbox):
    running, pki = tls_sandbox
    assert running.url.startswith("https://")
    certificate, key = pki.client_certificate("AcmeMutualSSL")
    session = session_for(running)
    session.use_client_certificate(certificate_pem=certificate, private_key_pem=key, ca_pem=pki.ca_pem)
    assert session.get(f"{running.url}/whoami").json() == {"cn": "AcmeMutualSSL"}
    assert key.strip() in session.secrets  # the key is redacted like any other secret
    assert running.stats()["by_path"]["/whoami"] == {"200": 1}  # the controls answer over TLS too


def test_certificate_failures_are_not_retried(tls_sandbox):
    running, pki = tls_sandbox
    running.clear_stats()
    certificate, key = pki.client_certificate("AcmeMutualSSL")
    untrusting = session_for(running)
    untrusting.use_client_certificate(certificate_pem=certificate, private_key_pem=key)  # no demo CA: theirs fails
    with pytest.raises(CertificateRejected, match="CERTIFICATE_VERIFY_FAILED"):
        untrusting.get(f"{running.url}/whoami")

    stranger_certificate, stranger_key = DemoPKI("somebody-else").client_certificate("Stranger")
    stranger = session_for(running)
    stranger.use_client_certificate(
        certificate_pem=stranger_certificate, private_key_pem=stranger_key, ca_pem=pki.ca_pem
    )
    with pytest.raises(CertificateRejected, match="UNKNOWN_CA"):
        stranger.get(f"{running.url}/whoami")
    for session in (untrusting, stranger):
        stats = session.policy.metrics.stats("echo", "c1")
        assert stats.count == 1 and stats.retries == 0
    assert running.stats()["calls"] == 0


def test_unusable_pem_text_is_refused_with_a_sentence(tls_sandbox):
    _running, pki = tls_sandbox
    certificate, _key = pki.client_certificate("AcmeMutualSSL")
    _other_certificate, other_key = pki.client_certificate("Other")
    session = VendorSession()
    with pytest.raises(ValueError, match="cannot be used together"):
        session.use_client_certificate(certificate_pem=certificate, private_key_pem=other_key)
    with pytest.raises(ValueError, match="not a PEM certificate"):
        session.use_client_certificate(certificate_pem="MIIB...", private_key_pem=other_key)
    with pytest.raises(ValueError, match="trusted CA certificate cannot be read"):
        session.use_client_certificate(
            certificate_pem=certificate, private_key_pem=other_key, ca_pem="-----BEGIN CERTIFICATE-----\nnope"
        )
