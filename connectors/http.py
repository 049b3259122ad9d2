"""The one HTTP policy every outbound vendor call goes through.

VendorSession is a requests.Session that, on every call, refuses private destinations unless allow-listed,
waits for the connection's rate budget, applies timeouts, retries 5xx and network errors with backoff and
jitter, honours 429 + Retry-After (or a vendor's own way of saying "slow down"), records metrics and keeps
secrets out of log lines and exception text. A connection that authenticates with a client certificate (mutual TLS)
presents it through `VendorSession.use_client_certificate`, from PEM text held in memory, never from a file.
"""

from __future__ import annotations

import email.utils
import ipaddress
import logging
import os
import posixpath
import random
import re
import socket
import ssl
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

import certifi
import requests
import requests.adapters
import urllib3
import urllib3.connection

from connectors.errors import CertificateRejected, DestinationRefused, RateLimited, VendorUnavailable

logger = logging.getLogger("connectors.http")

REDACTED = "***"

# Query parameters whose values are credentials whatever the vendor calls them.
_TOKEN_PARAM = re.compile(
    r"(?i)([?&;](?:access_token|refresh_token|id_token|token|api_?key|apikey|key|password|passwd|secret|"
    r"client_secret|signature|sig|code|session_?id|auth)=)[^&;#\s\"']+"
)
# Authorization-style values that may turn up inside text (a header dump, a vendor echoing the request).
_AUTH_VALUE = re.compile(r"(?i)\b(Bearer|Basic|Token|OAuth)\s+[A-Za-z0-9._~+/=\-]{8,}")

# What OpenSSL says when a handshake fails on a certificate (ours refused, or theirs not trusted): never retried.
_CERTIFICATE_FAILURE = re.compile(
    r"(?i)CERTIFICATE_VERIFY_FAILED|certificate verify failed|CERTIFICATE_REQUIRED|certificate required|"
    r"BAD_CERTIFICATE|bad certificate|UNKNOWN_CA|unknown ca|CERTIFICATE_UNKNOWN|certificate unknown|"
    r"CERTIFICATE_EXPIRED|certificate expired|CERTIFICATE_REVOKED"
)

# 501/505 say "the server will never do this": retrying them only wastes the budget.
_NOT_RETRIED_5XX = frozenset({501, 505})


# --------------------------------------------------------------------------------------------------------------
# Rate budget
# --------------------------------------------------------------------------------------------------------------


class RateBudget(Protocol):
    """Shared pacing for one connection. The Django side may plug in a Redis-backed implementation."""

    def reserve(self, key: str, *, rate_per_second: float | None, burst: int) -> float:
        """Take one request slot for `key` and return how many seconds the caller must wait before sending."""

    def hold(self, key: str, seconds: float) -> None:
        """The vendor said "slow down": make every caller of `key` wait at least `seconds` from now."""


class InMemoryTokenBucket:
    """A token bucket per key, in this process. Burst `burst`, refilled at `rate_per_second`.

    A reservation may take the bucket into debt; the caller then waits until its token would have been
    refilled. That keeps concurrent callers in order without a busy loop and means the number of calls in any
    window of W seconds never exceeds burst + rate * W.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float, float, int]] = {}  # key -> (tokens, at, rate, burst)
        self._held_until: dict[str, float] = {}

    def reserve(self, key: str, *, rate_per_second: float | None, burst: int) -> float:
        with self._lock:
            now = self._clock()
            held = max(0.0, self._held_until.get(key, 0.0) - now)
            if not rate_per_second:
                return held
            burst = max(1, burst)
            tokens, at, rate, old_burst = self._buckets.get(key, (float(burst), now, rate_per_second, burst))
            if (rate, old_burst) != (rate_per_second, burst):
                # The policy changed (a plan upgrade, a test): start a fresh bucket rather than mix two rates.
                tokens, at = float(burst), now
            tokens = min(float(burst), tokens + (now - at) * rate_per_second) - 1.0
            self._buckets[key] = (tokens, now, rate_per_second, burst)
            wait = -tokens / rate_per_second if tokens < 0 else 0.0
            return max(wait, held)

    def hold(self, key: str, seconds: float) -> None:
        with self._lock:
            until = self._clock() + max(0.0, seconds)
            self._held_until[key] = max(self._held_until.get(key, 0.0), until)


# One bucket per process by default, so two connector instances for the same connection share their budget.
DEFAULT_BUDGET = InMemoryTokenBucket()


# --------------------------------------------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------------------------------------------


class RequestMetrics(Protocol):
    """Where each HTTP attempt is reported. The Django side may forward to Prometheus."""

    def record(
        self,
        *,
        vendor: str,
        connection_key: str,
        method: str,
        status: int | None,
        latency: float,
        retry: bool,
        rate_limited: bool,
    ) -> None: ...


@dataclass
class ConnectionStats:
    count: int = 0
    errors: int = 0  # attempts that got no HTTP answer (connection error, timeout)
    retries: int = 0
    rate_limited: int = 0
    latency_total: float = 0.0
    latency_max: float = 0.0
    statuses: Counter = field(default_factory=Counter)


class InMemoryMetrics:
    """Counts per (vendor, connection_key), kept in this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stats: dict[tuple[str, str], ConnectionStats] = defaultdict(ConnectionStats)

    def record(
        self,
        *,
        vendor: str,
        connection_key: str,
        method: str,
        status: int | None,
        latency: float,
        retry: bool,
        rate_limited: bool,
    ) -> None:
        with self._lock:
            stats = self._stats[(vendor, connection_key)]
            stats.count += 1
            stats.latency_total += latency
            stats.latency_max = max(stats.latency_max, latency)
            stats.retries += int(retry)
            stats.rate_limited += int(rate_limited)
            if status is None:
                stats.errors += 1
            else:
                stats.statuses[status] += 1

    def stats(self, vendor: str, connection_key: str = "default") -> ConnectionStats:
        with self._lock:
            return self._stats[(vendor, connection_key)]

    def reset(self) -> None:
        with self._lock:
            self._stats.clear()


DEFAULT_METRICS = InMemoryMetrics()


# --------------------------------------------------------------------------------------------------------------
# Policy
# --------------------------------------------------------------------------------------------------------------


@dataclass
class HttpPolicy:
    """How one connection may talk to its vendor. Every field has a production-safe default."""

    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    max_retries: int = 4  # retries after the first attempt
    backoff_base: float = 0.5
    backoff_max: float = 20.0
    max_retry_after: float = 60.0  # a longer Retry-After raises RateLimited at once so the engine reschedules
    rate_per_second: float | None = None
    burst: int = 10
    allowed_hosts: frozenset[str] = frozenset()  # "host" or "host:port" that may be private/loopback
    budget: RateBudget = field(default_factory=lambda: DEFAULT_BUDGET)
    metrics: RequestMetrics = field(default_factory=lambda: DEFAULT_METRICS)

    def __post_init__(self) -> None:
        self.allowed_hosts = frozenset(h.strip().lower() for h in self.allowed_hosts if h.strip())

    @classmethod
    def for_sandbox(cls, *urls: str, **overrides: Any) -> HttpPolicy:
        """A policy that allows the given sandbox URLs' host:port (the sandboxes live on loopback)."""
        hosts = set(overrides.pop("allowed_hosts", ()))
        for url in urls:
            parts = urlsplit(url)
            hosts.add(_host_port(parts.hostname or "", _port_of(parts)))
        return cls(allowed_hosts=frozenset(hosts), **overrides)


def _port_of(parts) -> int:
    return parts.port or (443 if parts.scheme == "https" else 80)


def _host_port(host: str, port: int) -> str:
    host = host.lower()
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


# --------------------------------------------------------------------------------------------------------------
# Redaction
# --------------------------------------------------------------------------------------------------------------

# Secrets of every live session, so the filter on urllib3's logger (which prints URLs at DEBUG) can hide them.
_live_secrets: Counter[str] = Counter()
_live_secrets_lock = threading.Lock()


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Remove known secrets, Authorization values and token-looking query parameters from `text`."""
    if not text:
        return text
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    text = _AUTH_VALUE.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    return _TOKEN_PARAM.sub(lambda m: m.group(1) + REDACTED, text)


class _RedactingFilter(logging.Filter):
    """Rewrites records of third-party loggers that print request lines (urllib3 logs full URLs at DEBUG)."""

    def filter(self, record: logging.LogRecord) -> bool:
        with _live_secrets_lock:
            secrets = list(_live_secrets)
        message = record.getMessage()
        cleaned = redact(message, secrets)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True


_redacting_filter = _RedactingFilter()
for _name in ("urllib3.connectionpool", "urllib3.util.retry", "requests_oauthlib.oauth2_session"):
    logging.getLogger(_name).addFilter(_redacting_filter)


# --------------------------------------------------------------------------------------------------------------
# Destination guard
# --------------------------------------------------------------------------------------------------------------


def _address_problem(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why an address must not be reached from a multi-tenant server, or None when it is public."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    if address.is_unspecified:
        return "unspecified addresses are not allowed"
    if address.is_loopback:
        return "loopback addresses are not allowed"
    if address.is_link_local:
        return "link-local addresses (such as cloud metadata services) are not allowed"
    if address.is_private:
        return "private network addresses are not allowed"
    if address.is_multicast or address.is_reserved or not address.is_global:
        return "reserved addresses are not allowed"
    return None


# The vendor sandboxes' control endpoints (faults, stats, reset, seed): tests and the demo drive them
# directly; a connection that is allowed to reach a sandbox must never reach these.
SANDBOX_CONTROL_PATH = "/_sandbox"


def _is_sandbox_control(path: str) -> bool:
    # As the sandbox's router will read it: percent-decoded, dot segments and doubled slashes resolved.
    normalised = posixpath.normpath("/" + unquote(path or "/")).lower()
    normalised = re.sub(r"/{2,}", "/", normalised)
    return normalised == SANDBOX_CONTROL_PATH or normalised.startswith(SANDBOX_CONTROL_PATH + "/")


def check_destination(url: str, allowed_hosts: frozenset[str] = frozenset()) -> None:
    """Raise DestinationRefused unless `url` resolves only to public addresses or its host is allow-listed."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise DestinationRefused(f"Refused to connect to {parts.scheme or 'a'} URL: only http and https are allowed")
    host = (parts.hostname or "").lower()
    if not host:
        raise DestinationRefused("Refused to connect: the URL has no host name")
    if _is_sandbox_control(parts.path):
        raise DestinationRefused("Refused to connect: /_sandbox/ paths control a vendor sandbox, not a vendor API")
    destination_addresses(host, _port_of(parts), allowed_hosts, show_port=parts.port is not None)


def destination_addresses(
    host: str, port: int, allowed_hosts: frozenset[str] = frozenset(), *, show_port: bool = True
) -> list[str] | None:
    """The addresses `host:port` resolves to, each one checked: DestinationRefused when any is private,
    loopback or otherwise internal and not allow-listed. None when the name itself is allow-listed."""
    host = host.lower().strip("[]")
    if host in allowed_hosts or _host_port(host, port) in allowed_hosts:
        return None
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [literal]
    else:
        try:
            infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
        except (socket.gaierror, UnicodeError) as exc:
            raise DestinationRefused(f"Refused to connect to {host}: the name does not resolve ({exc})") from None
        addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
    for address in addresses:
        problem = _address_problem(address)
        if problem is None:
            continue
        # A name that resolves to an allow-listed address (localhost -> 127.0.0.1) is as good as the address.
        if str(address) in allowed_hosts or _host_port(str(address), port) in allowed_hosts:
            continue
        shown = _host_port(host, port) if show_port else host
        if literal is None:
            shown += f" ({address})"
        raise DestinationRefused(f"Refused to connect to {shown}: {problem}")
    return [str(address) for address in addresses]


class _PinnedConnectionMixin:
    """Resolves the host when the socket opens, checks every address and connects to one of those.

    The check in VendorSession.send resolves the name once; the connection would resolve it again.
    A DNS server that answers with a public address first and 127.0.0.1 the second time (DNS
    rebinding) would slip past a check that is not the connection's own, so the connection checks
    the very addresses it connects to.
    """

    allowed_hosts: Callable[[], frozenset[str]]

    def _new_conn(self):
        if getattr(self, "_tunnel_host", None):  # through an egress proxy: the proxy resolves the name
            return super()._new_conn()
        addresses = destination_addresses(self._dns_host.rstrip("."), self.port, self.allowed_hosts())
        if addresses is None:
            return super()._new_conn()
        name = self._dns_host
        self._dns_host = addresses[0]  # the address checked above; `host` (TLS name, Host header) is restored
        try:
            return super()._new_conn()
        finally:
            self._dns_host = name


class _PinnedAdapter(requests.adapters.HTTPAdapter):
    """requests' adapter with connections that check and pin the addresses they connect to."""

    def __init__(self, allowed_hosts: Callable[[], frozenset[str]] | None):
        self._allowed_hosts = allowed_hosts
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        if self._allowed_hosts is None:  # a sandbox's own control session: nothing to guard
            return
        mixin = {"allowed_hosts": staticmethod(self._allowed_hosts)}
        http = type("PinnedHTTPConnection", (_PinnedConnectionMixin, urllib3.connection.HTTPConnection), mixin)
        https = type("PinnedHTTPSConnection", (_PinnedConnectionMixin, urllib3.connection.HTTPSConnection), mixin)
        self.poolmanager.pool_classes_by_scheme = {
            "http": type("PinnedHTTPPool", (urllib3.HTTPConnectionPool,), {"ConnectionCls": http}),
            "https": type("PinnedHTTPSPool", (urllib3.HTTPSConnectionPool,), {"ConnectionCls": https}),
        }


# --------------------------------------------------------------------------------------------------------------
# Client certificates (mutual TLS)
# --------------------------------------------------------------------------------------------------------------


def load_cert_chain_pem(context: ssl.SSLContext, certificate_pem: str, private_key_pem: str) -> None:
    """ssl loads a certificate and key only from a file: give it an anonymous in-memory file where the system has
    one (Linux memfd), so a decrypted private key never touches the disk; elsewhere a private temporary file."""
    material = (private_key_pem.strip() + "\n" + certificate_pem.strip() + "\n").encode()
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("client-certificate", 0)
        try:
            os.write(fd, material)
            context.load_cert_chain(f"/proc/self/fd/{fd}")
        finally:
            os.close(fd)
        return
    with tempfile.TemporaryDirectory() as folder:  # created 0700
        path = os.path.join(folder, "client.pem")
        with open(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600), "wb") as handle:
            handle.write(material)
        context.load_cert_chain(path)


def client_tls_context(*, certificate_pem: str, private_key_pem: str, ca_pem: str = "") -> ssl.SSLContext:
    """A TLS context that presents `certificate_pem` (with its chain) and trusts the public CAs, plus `ca_pem` when
    given (a private gateway, or a sandbox's demo CA). ValueError with a sentence when the PEM text is unusable."""
    if "BEGIN CERTIFICATE" not in (certificate_pem or ""):
        raise ValueError("The client certificate is not a PEM certificate (-----BEGIN CERTIFICATE-----).")
    if "PRIVATE KEY" not in (private_key_pem or ""):
        raise ValueError("The client private key is not a PEM private key (-----BEGIN PRIVATE KEY-----).")
    context = ssl.create_default_context(cafile=certifi.where())
    if ca_pem and ca_pem.strip():
        try:
            context.load_verify_locations(cadata=ca_pem.strip() + "\n")
        except ssl.SSLError as exc:
            raise ValueError(f"The trusted CA certificate cannot be read ({exc.reason or exc}).") from None
    try:
        load_cert_chain_pem(context, certificate_pem, private_key_pem)
    except ssl.SSLError as exc:
        # KEY_VALUES_MISMATCH, a PEM that does not parse: the reason says which, and never carries the key.
        raise ValueError(
            f"The client certificate and private key cannot be used together ({exc.reason or exc})."
        ) from None
    return context


class TLSContextAdapter(_PinnedAdapter):
    """A pinned adapter whose connections use one TLS context (its trusted CAs, and its client certificate if any):
    a vendor that asks for client certificates keeps the check on the addresses it connects to."""

    def __init__(
        self, context: ssl.SSLContext, allowed_hosts: Callable[[], frozenset[str]] | None = None, **kwargs: Any
    ):
        self.tls_context = context
        super().__init__(allowed_hosts)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["ssl_context"] = self.tls_context
        super().init_poolmanager(*args, **kwargs)

    def proxy_manager_for(self, *args: Any, **kwargs: Any):
        kwargs["ssl_context"] = self.tls_context
        return super().proxy_manager_for(*args, **kwargs)


# --------------------------------------------------------------------------------------------------------------
# Session
# --------------------------------------------------------------------------------------------------------------


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date. None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    now = time.time() if now is None else now
    return max(0.0, when.timestamp() - now)


class VendorSession(requests.Session):
    """A requests.Session that applies an HttpPolicy to every call (see the module docstring)."""

    def __init__(
        self,
        *,
        policy: HttpPolicy | None = None,
        vendor: str = "vendor",
        connection_key: str = "default",
        secrets: Iterable[str] = (),
    ):
        super().__init__()
        self.policy = policy or HttpPolicy()
        self.vendor = vendor
        self.connection_key = connection_key
        self.secrets = [s for s in secrets if s]
        # Returns seconds to wait when a response that is not a 429 still means "rate limited"
        # (Salesforce 403 REQUEST_LIMIT_EXCEEDED, BambooHR 503), or None.
        self.rate_limit_detector: Callable[[requests.Response], float | None] | None = None
        # True when a 5xx is the vendor's final answer rather than a server fault (SOAP 1.1 sends every fault, a
        # validation or authentication error too, as HTTP 500): returned at once, not retried.
        self.final_answer_detector: Callable[[requests.Response], bool] | None = None
        self.sleep: Callable[[float], None] = time.sleep  # tests may swap it to observe waits
        self._registered: list[str] = []
        self.add_secrets(self.secrets)
        pinned = _PinnedAdapter(lambda: self.policy.allowed_hosts)
        self.mount("http://", pinned)
        self.mount("https://", pinned)

    # -- secrets ---------------------------------------------------------------------------------------------

    def add_secrets(self, secrets: Iterable[str]) -> None:
        """Register more secrets to hide (e.g. an access token obtained at run time)."""
        new = [s for s in secrets if s and s not in self._registered]
        self.secrets.extend(s for s in new if s not in self.secrets)
        with _live_secrets_lock:
            _live_secrets.update(new)
        self._registered.extend(new)

    def redact(self, text: str) -> str:
        """`text` with this session's secrets, Authorization values and token query parameters removed."""
        return redact(str(text), self.secrets)

    # -- mutual TLS ------------------------------------------------------------------------------------------------

    def use_client_certificate(self, *, certificate_pem: str, private_key_pem: str, ca_pem: str = "") -> None:
        """Present this certificate on every https call (mutual TLS); ValueError when the PEM text is unusable."""
        self.add_secrets([private_key_pem.strip()] if private_key_pem and private_key_pem.strip() else [])
        context = client_tls_context(certificate_pem=certificate_pem, private_key_pem=private_key_pem, ca_pem=ca_pem)
        self.mount("https://", TLSContextAdapter(context, lambda: self.policy.allowed_hosts))

    def close(self) -> None:
        with _live_secrets_lock:
            _live_secrets.subtract(self._registered)
            for secret in self._registered:
                if _live_secrets[secret] <= 0:
                    del _live_secrets[secret]
        self._registered = []
        super().close()

    # -- requests hooks -----------------------------------------------------------------------------------------

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        # Guarding here rather than in request() also covers every redirect requests follows.
        check_destination(request.url or "", self.policy.allowed_hosts)
        return super().send(request, **kwargs)

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        policy = self.policy
        if kwargs.get("timeout") is None:  # vendor clients pass timeout=None by default: never wait forever
            kwargs["timeout"] = (policy.connect_timeout, policy.read_timeout)
        key = f"{self.vendor}:{self.connection_key}"
        shown_url = self.redact(url)
        attempt = 0
        while True:
            wait = policy.budget.reserve(key, rate_per_second=policy.rate_per_second, burst=policy.burst)
            if wait > 0:
                self.sleep(wait)
            started = time.monotonic()
            try:
                response = super().request(method, url, *args, **kwargs)
            except DestinationRefused:
                raise
            except (requests.ConnectionError, requests.Timeout) as exc:
                latency = time.monotonic() - started
                self._record(method, None, latency, attempt, rate_limited=False)
                reason = self.redact(f"{type(exc).__name__}: {exc}")
                if _CERTIFICATE_FAILURE.search(str(exc)):
                    raise CertificateRejected(
                        f"The TLS handshake with {self.vendor} failed on a certificate ({reason})"
                    ) from None
                if attempt >= policy.max_retries:
                    raise VendorUnavailable(
                        f"{self.vendor} could not be reached after {attempt + 1} attempts ({reason})"
                    ) from None
                delay = self._backoff(attempt)
                logger.warning(
                    "%s %s %s failed (%s); retry %d in %.2fs",
                    self.vendor,
                    method,
                    shown_url,
                    reason,
                    attempt + 1,
                    delay,
                )
                self.sleep(delay)
                attempt += 1
                continue

            latency = time.monotonic() - started
            rate_wait = self._rate_limit_wait(response)
            self._record(method, response.status_code, latency, attempt, rate_limited=rate_wait is not None)
            logger.debug(
                "%s %s %s -> %s in %.0f ms (attempt %d)",
                self.vendor,
                method,
                shown_url,
                response.status_code,
                latency * 1000,
                attempt + 1,
            )

            if rate_wait is not None:
                if rate_wait > 0:
                    policy.budget.hold(key, min(rate_wait, policy.max_retry_after))
                if rate_wait > policy.max_retry_after or attempt >= policy.max_retries:
                    response.close()
                    raise RateLimited(
                        f"{self.vendor} is rate limiting this connection (HTTP {response.status_code}); "
                        f"gave up after {attempt + 1} attempts, retry after {rate_wait:.0f} s",
                        retry_after=rate_wait,
                    )
                delay = rate_wait or self._backoff(attempt)
                logger.warning(
                    "%s %s %s rate limited (HTTP %s); retry %d in %.2fs",
                    self.vendor,
                    method,
                    shown_url,
                    response.status_code,
                    attempt + 1,
                    delay,
                )
                response.close()
                self.sleep(delay)
                attempt += 1
                continue

            if (
                response.status_code >= 500
                and response.status_code not in _NOT_RETRIED_5XX
                and not (self.final_answer_detector and self.final_answer_detector(response))
            ):
                if attempt >= policy.max_retries:
                    response.close()
                    raise VendorUnavailable(
                        f"{self.vendor} answered HTTP {response.status_code} to {method} {shown_url} "
                        f"{attempt + 1} times in a row"
                    )
                delay = self._backoff(attempt)
                logger.warning(
                    "%s %s %s -> HTTP %s; retry %d in %.2fs",
                    self.vendor,
                    method,
                    shown_url,
                    response.status_code,
                    attempt + 1,
                    delay,
                )
                response.close()
                self.sleep(delay)
                attempt += 1
                continue

            return response

    # -- helpers ----------------------------------------------------------------------------------------------

    def _rate_limit_wait(self, response: requests.Response) -> float | None:
        """Seconds the vendor wants us to wait (0.0 when it did not say), or None when not rate limited."""
        if self.rate_limit_detector is not None:
            wait = self.rate_limit_detector(response)
            if wait is not None:
                return max(0.0, wait)
        if response.status_code == 429:
            wait = parse_retry_after(response.headers.get("Retry-After"))
            return 0.0 if wait is None else wait
        return None

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with "equal jitter": half fixed, half random, so retries do not align."""
        ceiling = min(self.policy.backoff_max, self.policy.backoff_base * (2**attempt))
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    def _record(self, method: str, status: int | None, latency: float, attempt: int, *, rate_limited: bool) -> None:
        self.policy.metrics.record(
            vendor=self.vendor,
            connection_key=self.connection_key,
            method=method,
            status=status,
            latency=latency,
            retry=attempt > 0,
            rate_limited=rate_limited,
        )
