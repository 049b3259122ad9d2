"""The one HTTP policy every connector uses for outbound calls.

VendorSession is a requests.Session that, on every call, refuses private destinations unless allow-listed
(`guard`), waits for the connection's rate budget, applies timeouts, retries 5xx and network errors with backoff
and jitter, honours 429 + Retry-After (or a vendor's own way of saying "slow down"), records metrics (`policy`)
and keeps secrets out of log lines and exception text (`redaction`). A connection that authenticates with a
client certificate (mutual TLS) presents it through `VendorSession.use_client_certificate`, from PEM text held in
memory, never from a file (`tls`).
"""

from connectors.http.guard import SANDBOX_CONTROL_PATH, check_destination, destination_addresses
from connectors.http.policy import (
    DEFAULT_BUDGET,
    DEFAULT_METRICS,
    ConnectionStats,
    HttpPolicy,
    InMemoryMetrics,
    InMemoryTokenBucket,
    RateBudget,
    RequestMetrics,
)
from connectors.http.redaction import REDACTED, redact
from connectors.http.session import VendorSession, parse_retry_after
from connectors.http.tls import TLSContextAdapter, client_tls_context, load_cert_chain_pem

__all__ = [
    "DEFAULT_BUDGET",
    "DEFAULT_METRICS",
    "REDACTED",
    "SANDBOX_CONTROL_PATH",
    "ConnectionStats",
    "HttpPolicy",
    "InMemoryMetrics",
    "InMemoryTokenBucket",
    "RateBudget",
    "RequestMetrics",
    "TLSContextAdapter",
    "VendorSession",
    "check_destination",
    "client_tls_context",
    "destination_addresses",
    "load_cert_chain_pem",
    "parse_retry_after",
    "redact",
]
