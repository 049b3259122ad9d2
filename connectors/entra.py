"""Microsoft Entra ID (Azure AD) client-credentials tokens, shared by the Dataverse and Business Central connectors.

One `EntraTokens` per connector: it asks `{authority}/{tenant}/oauth2/v2.0/token` for an app-only token with
the resource's `/.default` scope, through the connector's own VendorSession (so the destination guard, the rate
budget and redaction apply), keeps it until shortly before it expires, and turns Entra's AADSTS errors into a
sentence. `EntraCredential` hands the same tokens to Microsoft's own Python clients, which want an
azure-identity TokenCredential.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from connectors.base import AuthenticationFailed, ConnectorError, FormField, json_object

DEFAULT_AUTHORITY = "https://login.microsoftonline.com"
REFRESH_MARGIN = 300  # seconds: a token is replaced this long before Entra says it expires

# Entra's error codes that mean "these credentials are wrong", with what to tell the person who typed them.
AADSTS_HINTS = {
    "AADSTS7000215": "the client secret is wrong; paste the secret's value, not its id",
    "AADSTS7000222": "the client secret has expired; create a new one in the app registration",
    "AADSTS700016": "no app with this client id exists in the tenant",
    "AADSTS90002": "the tenant id or domain is unknown",
    "AADSTS500011": "the resource is not known to the tenant; check the environment URL",
    "AADSTS70011": "the scope is not valid for this resource",
}


def entra_form_fields(*, client_help: str, more: list[FormField]) -> list[FormField]:
    """A connection form signing in with an Entra app registration: its tenant, client id and secret, the vendor's
    own fields (`more`), and the sign-in authority last (changed only for a national cloud)."""
    return [
        FormField("tenant_id", "Directory (tenant) ID", help="From the app registration's overview in Entra."),
        FormField("client_id", "Application (client) ID", help=client_help),
        FormField("client_secret", "Client secret", kind="secret", help="The secret's value, not its id."),
        *more,
        FormField(
            "authority",
            "Sign-in authority",
            kind="url",
            required=False,
            initial=DEFAULT_AUTHORITY,
            help="Leave as is unless your tenant lives in a national cloud.",
        ),
    ]


class EntraTokens:
    """App-only tokens for one (tenant, client, scope), fetched through `session` and cached until near expiry."""

    def __init__(
        self,
        *,
        session,
        tenant_id: str,
        client_id: str,
        client_secret: str,
        scope: str,
        authority: str = "",
    ):
        self.session = session
        self.tenant_id = (tenant_id or "").strip()
        self.client_id = (client_id or "").strip()
        self.client_secret = client_secret or ""
        self.scope = scope
        self.authority = (authority or DEFAULT_AUTHORITY).rstrip("/")
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires_at = 0.0  # time.time() seconds

    @classmethod
    def for_connection(cls, session, credentials, *, scope: str) -> EntraTokens:
        """Tokens for a connection whose form is `entra_form_fields`: its tenant, app registration and authority."""
        return cls(
            session=session,
            tenant_id=credentials.get("tenant_id", ""),
            client_id=credentials.get("client_id", ""),
            client_secret=credentials.get("client_secret", ""),
            scope=scope,
            authority=credentials.get("authority") or DEFAULT_AUTHORITY,
        )

    @property
    def token_url(self) -> str:
        return f"{self.authority}/{self.tenant_id}/oauth2/v2.0/token"

    def token(self, *, rejected: str | None = None) -> str:
        """A valid access token; a fresh one when the cached one is near expiry or is the `rejected` one."""
        with self._lock:
            # Several threads may see the same 401: only the first replaces the token.
            stale = rejected is not None and rejected == self._token
            if stale or not self._token or time.time() >= self._expires_at - REFRESH_MARGIN:
                self._fetch()
            return self._token  # type: ignore[return-value]

    @property
    def expires_at(self) -> float:
        return self._expires_at

    def _fetch(self) -> None:
        if not (self.tenant_id and self.client_id and self.client_secret):
            raise AuthenticationFailed("Sign-in to Microsoft needs the tenant id, the client id and a client secret.")
        response = self.session.post(
            self.token_url,
            data={
                "grant_type": "client_credentials",
                "client_id": self.client_id,
                "client_secret": self.client_secret,
                "scope": self.scope,
            },
            headers={"Accept": "application/json"},
        )
        body = json_object(response)
        if response.status_code != 200 or not body.get("access_token"):
            raise AuthenticationFailed(self._refusal(response.status_code, body))
        token = str(body["access_token"])
        self.session.add_secrets([token])
        try:
            lifetime = float(body.get("expires_in") or 3599)
        except (TypeError, ValueError):
            lifetime = 3599.0
        self._token, self._expires_at = token, time.time() + lifetime

    def _refusal(self, status: int, body: dict) -> str:
        error = str(body.get("error") or f"HTTP {status}")
        description = str(body.get("error_description") or "")
        code = description.split(":", 1)[0].strip() if description.startswith("AADSTS") else ""
        hint = AADSTS_HINTS.get(code)
        if hint:
            return f"Microsoft Entra refused the sign-in ({code}): {hint}."
        first_line = description.splitlines()[0] if description else error
        return f"Microsoft Entra refused the sign-in ({error}): {self.session.redact(first_line)}"


class EntraCredential:
    """An azure-identity TokenCredential over EntraTokens, for Microsoft's own clients (e.g. the Dataverse SDK).

    The SDK asks for `{environment}/.default`; we answer with our tokens only for the scope they were issued for.
    """

    def __init__(self, tokens: EntraTokens):
        self.tokens = tokens

    def get_token(self, *scopes: str, **_kwargs: Any):
        from azure.core.credentials import AccessToken

        wanted = {s.rstrip("/") for s in scopes}
        if wanted and self.tokens.scope.rstrip("/") not in wanted:
            raise ConnectorError(f"This credential holds tokens for {self.tokens.scope}, not {', '.join(scopes)}.")
        token = self.tokens.token()
        return AccessToken(token, int(self.tokens.expires_at))
