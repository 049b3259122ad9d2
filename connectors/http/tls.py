"""Client certificates (mutual TLS), loaded from PEM text held in memory, never from a file."""

from __future__ import annotations

import os
import re
import ssl
import tempfile
from collections.abc import Callable
from typing import Any

import certifi

from connectors.http.guard import PinnedAdapter

# What OpenSSL says when a handshake fails on a certificate (ours refused, or theirs not trusted): never retried.
_CERTIFICATE_FAILURE = re.compile(
    r"(?i)CERTIFICATE_VERIFY_FAILED|certificate verify failed|CERTIFICATE_REQUIRED|certificate required|"
    r"BAD_CERTIFICATE|bad certificate|UNKNOWN_CA|unknown ca|CERTIFICATE_UNKNOWN|certificate unknown|"
    r"CERTIFICATE_EXPIRED|certificate expired|CERTIFICATE_REVOKED"
)


def is_certificate_failure(error: BaseException) -> bool:
    """Whether a connection error is a TLS handshake that failed on a certificate: never worth a retry."""
    return bool(_CERTIFICATE_FAILURE.search(str(error)))


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


class TLSContextAdapter(PinnedAdapter):
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
