"""VendorSession: a requests.Session that applies a connection's HttpPolicy to every call."""

from __future__ import annotations

import email.utils
import logging
import random
import time
from collections.abc import Callable, Iterable
from datetime import UTC
from typing import Any

import requests

from connectors.errors import CertificateRejected, DestinationRefused, RateLimited, VendorUnavailable
from connectors.http.guard import PinnedAdapter, check_destination
from connectors.http.policy import HttpPolicy
from connectors.http.redaction import redact, secrets_register, secrets_release
from connectors.http.tls import TLSContextAdapter, client_tls_context, is_certificate_failure

logger = logging.getLogger("connectors.http")

# 501/505 say "the server will never do this": retrying them only wastes the budget.
_NOT_RETRIED_5XX = frozenset({501, 505})


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
        pinned = PinnedAdapter(lambda: self.policy.allowed_hosts)
        self.mount("http://", pinned)
        self.mount("https://", pinned)

    # -- secrets ---------------------------------------------------------------------------------------------

    def add_secrets(self, secrets: Iterable[str]) -> None:
        """Register more secrets to hide (e.g. an access token obtained at run time)."""
        new = [s for s in secrets if s and s not in self._registered]
        self.secrets.extend(s for s in new if s not in self.secrets)
        secrets_register(new)
        self._registered.extend(new)

    def redact(self, text: str) -> str:
        """`text` with this session's secrets, Authorization values and token query parameters removed."""
        return redact(str(text), self.secrets)

    def refusal_shown(
        self, response: requests.Response, detail: str = "", *, errors_text: Callable[[Any], str] | None = None
    ) -> str:
        """A refused call as an error message names it: "HTTP 403", then what the vendor said, secrets removed.
        `errors_text` reads the vendor's JSON error body; a body that is not JSON adds nothing."""
        if errors_text is not None:
            try:
                detail = errors_text(response.json())
            except ValueError:
                detail = ""
        detail = self.redact(detail) if detail else ""
        return f"HTTP {response.status_code}" + (f": {detail}" if detail else "")

    # -- mutual TLS ------------------------------------------------------------------------------------------------

    def use_client_certificate(self, *, certificate_pem: str, private_key_pem: str, ca_pem: str = "") -> None:
        """Present this certificate on every https call (mutual TLS); ValueError when the PEM text is unusable."""
        self.add_secrets([private_key_pem.strip()] if private_key_pem and private_key_pem.strip() else [])
        context = client_tls_context(certificate_pem=certificate_pem, private_key_pem=private_key_pem, ca_pem=ca_pem)
        self.mount("https://", TLSContextAdapter(context, lambda: self.policy.allowed_hosts))

    def close(self) -> None:
        secrets_release(self._registered)
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
                if is_certificate_failure(exc):
                    raise CertificateRejected(
                        f"The TLS handshake with {self.vendor} failed on a certificate ({reason})"
                    ) from None
                if attempt >= policy.max_retries:
                    raise VendorUnavailable(
                        f"{self.vendor} could not be reached after {attempt + 1} attempts ({reason})"
                    ) from None
                self._wait_to_retry(f"{method} {shown_url} failed ({reason})", attempt, self._backoff(attempt))
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
                response.close()
                self._wait_to_retry(
                    f"{method} {shown_url} rate limited (HTTP {response.status_code})",
                    attempt,
                    rate_wait or self._backoff(attempt),
                )
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
                response.close()
                self._wait_to_retry(
                    f"{method} {shown_url} -> HTTP {response.status_code}", attempt, self._backoff(attempt)
                )
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

    def _wait_to_retry(self, what: str, attempt: int, delay: float) -> None:
        logger.warning("%s %s; retry %d in %.2fs", self.vendor, what, attempt + 1, delay)
        self.sleep(delay)

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
