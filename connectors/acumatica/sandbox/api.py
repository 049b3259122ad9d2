"""Acumatica sandbox routes: cookie sign-in that holds an API seat until sign-out, the versioned contract-based
endpoint (GET lists with $filter, $top, $skip, $expand and $select; GET by key or id; PUT upserts) and how
Acumatica says "no"."""

from __future__ import annotations

import hmac
import re
import secrets
import time
from typing import Any

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from connectors.acumatica.sandbox.schema import (
    DEFAULT_SEATS,
    DEMO_CREDENTIALS,
    ENDPOINT,
    EXPANDABLE,
    KEYS,
    MAX_TOP,
    SESSION_TIMEOUT,
    VERSIONS,
    AcumaticaError,
    Unprocessable,
    unwrap,
    wrap,
)
from connectors.acumatica.sandbox.state import AcumaticaState
from connectors.sandbox.app import SandboxApp, json_response
from connectors.sandbox.firm import Firm
from connectors.sandbox.odata import ODataError, matches, parse_filter

AUTH_COOKIE = ".ASPXAUTH"
SESSION_COOKIE = "ASP.NET_SessionId"
_TYPED_LITERAL = re.compile(r"\b(?:datetimeoffset|datetime|guid)'([^']*)'")


def _error(error: AcumaticaError) -> Response:
    return json_response(error.body(), status=error.status)


class AcumaticaSandbox(AcumaticaState, SandboxApp):
    vendor = "acumatica"

    def __init__(
        self, firm: Firm | None = None, *, seats: int = DEFAULT_SEATS, session_timeout: float = SESSION_TIMEOUT
    ):
        self.seats, self.session_timeout = seats, session_timeout
        super().__init__(firm)

    def routes(self) -> list[Rule]:
        base = "/entity/<endpoint>/<version>/<entity>"
        return [
            Rule("/entity/auth/login", endpoint="login", methods=["POST"]),
            Rule("/entity/auth/logout", endpoint="logout", methods=["POST"]),
            Rule("/entity", endpoint="endpoints", methods=["GET"]),
            Rule(base, endpoint="collection", methods=["GET", "PUT"]),
            Rule(f"{base}/<path:key>", endpoint="one", methods=["GET"]),
        ]

    # -- how Acumatica says "no" ---------------------------------------------------------------------------------
    def rate_limited_response(self, request: Request, retry_after: float) -> Response:
        body = {"message": "The number of API requests per minute has exceeded the limit of the license."}
        return json_response(body, status=429, headers={"Retry-After": str(max(1, round(retry_after)))})

    def server_error_response(self, request: Request) -> Response:
        return Response("<h1>Service Unavailable</h1>", status=503, content_type="text/html")

    def not_found_response(self, request: Request) -> Response:
        return json_response(
            {"message": f"No HTTP resource was found that matches the request URI '{request.url}'."}, 404
        )

    # -- sessions: each one holds an API seat until sign-out or time-out --------------------------------------------
    def active_sessions(self) -> int:
        with self.lock:
            self._expire()
            return len(self.sessions)

    def _expire(self) -> None:
        now = time.monotonic()
        for token in [t for t, s in self.sessions.items() if now - s["last"] > self.session_timeout]:
            del self.sessions[token]

    def authenticate(self, request: Request) -> Response | None:
        if request.path.startswith("/entity/auth/"):
            return None
        token = request.cookies.get(AUTH_COOKIE, "")
        with self.lock:
            self._expire()
            session = self.sessions.get(token)
            if session is None:
                return json_response({"message": "You are not logged in."}, status=401)
            session["last"] = time.monotonic()
        return None

    def login(self, request: Request) -> Response:
        body = request.get_json(force=True, silent=True) or {}
        expected = (DEMO_CREDENTIALS["username"], DEMO_CREDENTIALS["password"], DEMO_CREDENTIALS["tenant"])
        given = (str(body.get("name") or ""), str(body.get("password") or ""), str(body.get("tenant") or ""))
        if not all(hmac.compare_digest(a.encode(), b.encode()) for a, b in zip(given, expected, strict=True)):
            with self.lock:
                self.refused_logins += 1
            return _error(AcumaticaError(500, "Invalid credentials. Please try again."))
        if body.get("branch") and str(body["branch"]).upper() != DEMO_CREDENTIALS["branch"]:
            return _error(AcumaticaError(500, f"The branch {body['branch']} cannot be found in the system."))
        with self.lock:
            self._expire()
            if len(self.sessions) >= self.seats:
                self.refused_logins += 1
                return _error(AcumaticaError(500, "API Login Limit"))
            token = secrets.token_hex(32)
            self.sessions[token] = {"user": given[0], "last": time.monotonic()}
            self.logins += 1
        response = Response(status=204)
        response.set_cookie(AUTH_COOKIE, token, httponly=True)
        response.set_cookie(SESSION_COOKIE, secrets.token_hex(12), httponly=True)
        return response

    def logout(self, request: Request) -> Response:
        with self.lock:
            if self.sessions.pop(request.cookies.get(AUTH_COOKIE, ""), None) is not None:
                self.logouts += 1
        response = Response(status=204)
        response.delete_cookie(AUTH_COOKIE)
        return response

    def endpoints(self, request: Request) -> Response:
        return json_response(
            {
                "version": {"acumaticaBuildVersion": "24.211.0018", "databaseVersion": "24.211.0018"},
                "endpoints": [{"name": ENDPOINT, "version": v, "href": f"/entity/{ENDPOINT}/{v}/"} for v in VERSIONS],
            }
        )

    # -- the contract-based endpoint ----------------------------------------------------------------------------
    def _entity(self, endpoint: str, version: str, entity: str) -> None:
        if endpoint != ENDPOINT or version not in VERSIONS:
            raise AcumaticaError(
                404, f"The endpoint {endpoint}/{version} is not found.", "PX.Api.ContractBased.EndpointNotFound"
            )
        if entity not in KEYS:
            raise AcumaticaError(404, f"The entity {entity} is not found in the {endpoint}/{version} endpoint.")

    def _shown(self, row: dict[str, Any], entity: str, expand: set[str], select: list[str], number: int) -> dict:
        shown = {k: v for k, v in row.items() if k not in EXPANDABLE[entity] or k in expand}
        if select:
            shown = {k: v for k, v in shown.items() if k in select or k in KEYS[entity] or k in expand}
        out = wrap({k: v for k, v in shown.items() if k != "id"})
        return {"id": row["id"], "rowNumber": number, "note": {"value": ""}, **out, "custom": {}}

    def collection(self, request: Request, endpoint: str, version: str, entity: str) -> Response:
        try:
            self._entity(endpoint, version, entity)
            if request.method == "PUT":
                return self._put(request, entity)
            args = request.args
            expand = {e.strip() for e in (args.get("$expand") or "").split(",") if e.strip()}
            unknown = expand - set(EXPANDABLE[entity])
            if unknown:
                raise AcumaticaError(400, f"The {sorted(unknown)[0]} entity cannot be expanded from {entity}.")
            select = [s.strip() for s in (args.get("$select") or "").split(",") if s.strip()]
            top = int(args.get("$top") or MAX_TOP)
            skip = int(args.get("$skip") or 0)
            condition = None
            if args.get("$filter"):
                condition = parse_filter(_TYPED_LITERAL.sub(r"\1", args["$filter"]))
            with self.lock:
                rows = [r for r in self.sorted_rows(entity) if matches(r, condition)]
                page = rows[skip : skip + top]
                shown = [self._shown(r, entity, expand, select, skip + n + 1) for n, r in enumerate(page)]
            for n, position in enumerate(sorted(self.malformed_positions(len(shown)))):
                if n % 2 == 0:
                    shown[position].pop("id", None)
                else:
                    shown[position]["LastModifiedDateTime"] = {"value": "0000-00-00"}
            return json_response(shown)
        except (ODataError, ValueError) as exc:
            return _error(AcumaticaError(400, f"Invalid query: {exc}"))
        except AcumaticaError as exc:
            return _error(exc)

    def one(self, request: Request, endpoint: str, version: str, entity: str, key: str) -> Response:
        try:
            self._entity(endpoint, version, entity)
            expand = {e.strip() for e in (request.args.get("$expand") or "").split(",") if e.strip()}
            parts = key.split("/")
            with self.lock:
                row = self.tables[entity].get(key.lower())
                if row is None and len(parts) == len(KEYS[entity]):
                    row = self.by_key(entity, dict(zip(KEYS[entity], parts, strict=True)))
                if row is None:
                    raise AcumaticaError(500, "No entity satisfies the condition.")
                return json_response(self._shown(row, entity, expand, [], 1))
        except AcumaticaError as exc:
            return _error(exc)

    def _put(self, request: Request, entity: str) -> Response:
        body = request.get_json(force=True, silent=True)
        if not isinstance(body, dict):
            raise AcumaticaError(400, "The request body is not a JSON object.")
        values = unwrap({k: v for k, v in body.items() if k not in ("custom", "_links", "note", "files")})
        expand = {"Details"} if entity == "Invoice" else set(EXPANDABLE[entity])
        with self.lock:
            try:
                row, _created = self.upsert(entity, values)
            except Unprocessable as refusal:
                echoed = wrap({k: v for k, v in values.items() if k not in ("id", "Details")})
                for name, message in refusal.errors.items():
                    top = name.split(".")[0]
                    echoed.setdefault(top, {"value": None})
                    echoed[top]["error"] = message
                echoed["error"] = "; ".join(refusal.errors.values())
                return json_response(echoed, status=422)
            return json_response(self._shown(row, entity, expand, [], 1))


def create_app(firm: Firm | None = None, **options: Any) -> AcumaticaSandbox:
    return AcumaticaSandbox(firm, **options)
