"""The Microsoft Entra token endpoint, as the Dataverse and Business Central sandboxes both serve it.

`POST /{tenant}/oauth2/v2.0/token` with the client-credentials grant answers `{token_type, expires_in,
ext_expires_in, access_token}`, or Entra's error body `{error, error_description: "AADSTS...: ...", error_codes,
timestamp, trace_id, correlation_id}`. Tokens are opaque here (real ones are JWTs nobody should parse).
"""

from __future__ import annotations

import secrets
import threading
import time
import uuid
from datetime import UTC, datetime

from werkzeug.wrappers import Request, Response

from connectors.sandbox.app import json_response

TOKEN_LIFETIME = 3599


class EntraTenant:
    """One tenant with one app registration; issues and checks bearer tokens for a resource."""

    def __init__(self, *, tenant_id: str, client_id: str, client_secret: str):
        self.tenant_id = tenant_id
        self.client_id = client_id
        self.client_secret = client_secret
        self._lock = threading.Lock()
        self.tokens: dict[str, tuple[str, float]] = {}  # token -> (scope, expires at)
        self.issued = 0

    def revoke_all(self) -> None:
        with self._lock:
            self.tokens.clear()

    def token_endpoint(self, request: Request, tenant: str, *, scope_check) -> Response:
        """Answer a token request; `scope_check(scope)` says whether the scope names this resource."""
        form = request.form
        if tenant not in (self.tenant_id, "organizations") and tenant.lower() != self.tenant_id.lower():
            return _error(400, "invalid_request", 90002, f"Tenant '{tenant}' not found.")
        if form.get("grant_type") != "client_credentials":
            return _error(
                400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type for this flow."
            )
        if form.get("client_id") != self.client_id:
            return _error(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{form.get('client_id', '')}' was not found in the directory.",
            )
        if not secrets.compare_digest(form.get("client_secret", ""), self.client_secret):
            return _error(
                401,
                "invalid_client",
                7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request is the client secret "
                "value, not the client secret ID, for a secret added to app '" + self.client_id + "'.",
            )
        scope = form.get("scope", "")
        if not scope.endswith("/.default") or not scope_check(scope.removesuffix("/.default")):
            return _error(
                400,
                "invalid_scope",
                70011,
                f"The provided request must include a 'scope' input parameter. The provided value for the input "
                f"parameter 'scope' is not valid. The scope {scope} is not valid.",
            )
        token = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9." + secrets.token_urlsafe(48)
        with self._lock:
            self.tokens[token] = (scope, time.time() + TOKEN_LIFETIME)
            self.issued += 1
        return json_response(
            {
                "token_type": "Bearer",
                "expires_in": TOKEN_LIFETIME,
                "ext_expires_in": TOKEN_LIFETIME,
                "access_token": token,
            }
        )

    def bearer_valid(self, request: Request) -> bool:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            return False
        with self._lock:
            entry = self.tokens.get(header[7:].strip())
        return entry is not None and entry[1] > time.time()


def _error(status: int, error: str, code: int, message: str) -> Response:
    trace, correlation = str(uuid.uuid4()), str(uuid.uuid4())
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    return json_response(
        {
            "error": error,
            "error_description": f"AADSTS{code}: {message} Trace ID: {trace} Correlation ID: {correlation} "
            f"Timestamp: {stamp}",
            "error_codes": [code],
            "timestamp": stamp,
            "trace_id": trace,
            "correlation_id": correlation,
        },
        status=status,
    )
