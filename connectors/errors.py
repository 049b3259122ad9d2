"""What a connector raises: one family under ConnectorError, shared by connectors.base and connectors.http."""

from __future__ import annotations


class ConnectorError(Exception):
    """Base of everything a connector raises. Messages never carry secrets."""


class AuthenticationFailed(ConnectorError):
    """The vendor refused the credentials (401/403 on auth). The connection is failing."""


class CertificateRejected(AuthenticationFailed):
    """A TLS handshake failed on a certificate: the vendor refused ours, or we cannot trust its own.

    Retrying cannot help; the connection's certificate settings must change.
    """


class DestinationRefused(ConnectorError):
    """The URL points at a private, loopback or link-local address that is not allow-listed."""


class RateLimited(ConnectorError):
    """The vendor kept answering 429 (or its equivalent) past the policy's retries."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class VendorUnavailable(ConnectorError):
    """5xx or network errors past the policy's retries."""


class VendorError(ConnectorError):
    """A 4xx the vendor explained (bad query, validation error on a whole call)."""

    def __init__(self, message: str, status: int | None = None, code: str | None = None):
        super().__init__(message)
        self.status = status
        self.code = code


class WebhookRejected(ConnectorError):
    """An inbound webhook whose signature or timestamp does not verify."""
