"""Run a sandbox on a real loopback port in a background thread (tests, the benchmark, `python -m connectors.sandbox`)."""

from __future__ import annotations

import io
import ipaddress
import logging
import os
import socket
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from connectors.http import redact
from connectors.sandbox.app import SandboxApp

logger = logging.getLogger("connectors.sandbox")

# Where `python -m connectors.sandbox` serves each vendor's emulator on 127.0.0.1 (re-exported by the registry).
# SANDBOX_PORT_OFFSET moves the whole set, so a second copy of the demo runs beside the first.
_OFFSET = int(os.environ.get("SANDBOX_PORT_OFFSET", "0") or 0)
SANDBOX_PORTS = {
    "salesforce": 8101,
    "hubspot": 8102,
    "netsuite": 8103,
    "kantata": 8104,
    "bamboohr": 8105,
    "jira": 8106,
    "dynamics365": 8107,
    "businesscentral": 8108,
    "intacct": 8109,
    "certinia": 8110,
    "workday": 8111,
    "adp": 8112,
    "acumatica": 8113,
    "kimble": 8114,
    "float": 8115,
    "asana": 8116,
    "monday": 8117,
    "servicenow": 8118,
}
SANDBOX_PORTS = {vendor: port + _OFFSET for vendor, port in SANDBOX_PORTS.items()}
# Sandboxes that serve TLS only (their vendor requires mutual TLS): their URLs start with https.
TLS_SANDBOXES = frozenset({"adp"})


class SandboxRequestHandler(WSGIRequestHandler):
    """werkzeug's request handler, with keep-alive and quiet logs.

    Keep-alive: vendors' APIs keep a connection open between requests (HTTP/1.1), and werkzeug's development
    handler closes every one, because http.server cannot skip a body the application left unread before the
    next request line. So the body is read here first (clients send a Content-Length) and the application reads
    it from memory; a chunked request body still closes its connection. A client that keeps its connections, as
    every vendor client does, then pays one TCP connection per session, not per request, as with the vendor.

    Logs: request lines go to DEBUG (a benchmark makes hundreds of calls), without the query string: clients may
    put credentials there, and a log must not carry them even on the sandbox side."""

    timeout = 60  # an idle kept-alive connection frees its thread after this long

    def setup(self) -> None:
        super().setup()
        # A response goes out as headers then body: with Nagle's algorithm the body waits for the client's
        # delayed ACK of the headers (40 ms a request) once a connection is reused. Servers that keep connections
        # alive send at once, as here.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def run_wsgi(self) -> None:
        self._keep_alive = "chunked" not in self.headers.get("Transfer-Encoding", "").lower()
        if not self._keep_alive:
            return super().run_wsgi()
        length = int(self.headers.get("Content-Length") or 0)
        socket_file = self.rfile
        self.rfile = io.BufferedReader(io.BytesIO(socket_file.read(length) if length > 0 else b""))
        try:
            return super().run_wsgi()
        finally:
            self.rfile = socket_file  # the next request line comes from the socket

    def send_header(self, keyword: str, value: str) -> None:
        if keyword.lower() == "connection" and value.lower() == "close" and getattr(self, "_keep_alive", False):
            return  # werkzeug closes every connection; this one's body was read whole, so it can stay open
        super().send_header(keyword, value)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        logger.debug("%s %s -> %s", self.command, self.path.split("?", 1)[0], code)

    def log_error(self, format: str, *args: object) -> None:
        if format.startswith("Request timed out"):  # a kept-alive connection left idle: closed, as servers do
            logger.debug("Closed an idle connection")
            return
        super().log_error(format, *args)

    def log_message(self, format: str, *args: object) -> None:
        logger.info("%s", redact(format % args))


@dataclass
class RunningSandbox:
    """A sandbox serving on `url`. Also a small client for its /_sandbox/ control endpoints."""

    url: str
    port: int
    app: SandboxApp
    _server: BaseWSGIServer = field(repr=False)
    _thread: threading.Thread = field(repr=False)
    ca_bundle: str | None = None  # the certificate to trust when served over TLS

    @property
    def host(self) -> str:
        """The "127.0.0.1:<port>" entry an HttpPolicy's allowed_hosts needs."""
        return self.url.split("//", 1)[1]

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> RunningSandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- control endpoints, through plain requests (loopback is fine here: this is the test's side) ----------------

    def _control(self, method: str, path: str, body: dict | None = None) -> dict[str, Any]:
        with self.app.control_session() as session:
            if self.ca_bundle:
                session.verify = self.ca_bundle
            response = session.request(method, f"{self.url}/_sandbox/{path}", json=body, timeout=30)
        response.raise_for_status()
        return response.json()

    def set_faults(self, **faults: Any) -> dict[str, Any]:
        """Replace the active faults, e.g. set_faults(error_every=2); set_faults() clears them."""
        return self._control("POST", "faults", faults)

    def stats(self) -> dict[str, Any]:
        return self._control("GET", "stats")

    def clear_stats(self) -> dict[str, Any]:
        return self._control("DELETE", "stats")

    def reset(self) -> dict[str, Any]:
        return self._control("POST", "reset", {})

    def seed(self, **volumes: int) -> dict[str, Any]:
        return self._control("POST", "seed", volumes)


def serve_in_thread(
    app: SandboxApp, host: str = "127.0.0.1", port: int = 0, tls: tuple[str, str] | None = None
) -> RunningSandbox:
    """Start a threaded werkzeug server for `app`; port 0 picks a free one. It serves HTTPS when the app has a TLS
    context of its own (a vendor that asks for client certificates) or `tls` names certificate and key files (see
    self_signed_certificate), for vendor clients that only build https:// URLs."""
    context = app.ssl_context() or tls
    server = make_server(host, port, app, threaded=True, request_handler=SandboxRequestHandler, ssl_context=context)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.1}, name=f"sandbox-{app.vendor}", daemon=True
    )
    thread.start()
    shown_host = f"[{host}]" if ":" in host else host
    url = f"{'https' if context else 'http'}://{shown_host}:{server.port}"
    return RunningSandbox(
        url=url, port=server.port, app=app, _server=server, _thread=thread, ca_bundle=tls[0] if tls else None
    )


def self_signed_certificate(folder: Path, host: str = "127.0.0.1") -> tuple[str, str]:
    """A certificate for `host` (an IP address) and its key, written to `folder`: (certificate path, key path).
    Point REQUESTS_CA_BUNDLE at the certificate to make a vendor's client trust the sandbox."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return str(cert_path), str(key_path)
