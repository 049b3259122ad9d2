"""NetSuite sandbox routes: OAuth 2.0 client credentials, SuiteQL pages and record/v1 handlers, each call holding
one of the account's concurrency slots."""

from __future__ import annotations

import hmac
import math
import secrets
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import jwt
from cryptography import x509
from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from connectors.netsuite.auth import SCOPE
from connectors.netsuite.client import (
    CLIENT_ASSERTION_TYPE,
    CONCURRENCY_ERROR_CODE,
    IDEMPOTENCY_ERROR_CODE,
    IDEMPOTENCY_HEADER,
    SUITEQL_MAX_RESULTS,
    SUITEQL_PAGE_MAX,
    TOKEN_PATH,
)
from connectors.netsuite.sandbox.query import SuiteQLParser, SuiteQLRun, render_suiteql_value
from connectors.netsuite.sandbox.render import NetSuiteRendering
from connectors.netsuite.sandbox.schema import (
    ACCOUNT_CONCURRENCY,
    DEMO_CERTIFICATE,
    DEMO_CREDENTIALS,
    EXTERNAL_ID_RE,
    SCHEMA,
    SIGNING_ALGORITHMS,
    TOKEN_LIFETIME,
    ApiError,
    _now,
    error_body,
)
from connectors.netsuite.sandbox.state import NetSuiteRecords
from connectors.sandbox.app import SandboxApp, json_response
from connectors.sandbox.firm import Firm


def _rule(path: str, endpoint: str, methods: list[str]) -> Rule:
    return Rule(path, endpoint=endpoint, methods=methods, strict_slashes=False)


class NetSuiteSandbox(NetSuiteRecords, NetSuiteRendering, SandboxApp):
    vendor = "netsuite"

    def __init__(self, firm: Firm | None = None):
        self.concurrency_limit = ACCOUNT_CONCURRENCY
        self.processing_seconds = 0.0  # how long each call holds its concurrency slot (tests raise it)
        self.suiteql_max_results = SUITEQL_MAX_RESULTS
        self._inflight = 0
        self._inflight_lock = threading.Lock()
        self.max_inflight = 0
        self.concurrency_rejections = 0
        self.certificate = x509.load_pem_x509_certificate(DEMO_CERTIFICATE.encode())
        super().__init__(firm)

    def routes(self) -> list[Rule]:
        return [
            _rule(TOKEN_PATH, "token", ["POST"]),
            _rule("/services/rest/query/v1/suiteql", "suiteql", ["POST"]),
            _rule("/services/rest/record/v1/<record_type>", "create", ["POST"]),
            _rule("/services/rest/record/v1/<record_type>/<key>", "record", ["GET", "PUT", "PATCH", "DELETE"]),
        ]

    # -- vendor hooks ----------------------------------------------------------------------------------------------
    def rate_limited_response(self, request: Request, retry_after: float) -> Response:
        body = error_body(429, "REQUEST_LIMIT_EXCEEDED", "Request blocked by the request rate limit of the account.")
        return json_response(body, status=429, headers={"Retry-After": str(math.ceil(retry_after))})

    def server_error_response(self, request: Request) -> Response:
        body = error_body(500, "UNEXPECTED_ERROR", "An unexpected error occurred (injected by the sandbox).")
        return json_response(body, status=500)

    def not_found_response(self, request: Request) -> Response:
        return json_response(error_body(404, "NONEXISTENT_ID", f"The resource {request.path} does not exist."), 404)

    def method_not_allowed_response(self, request: Request) -> Response:
        detail = f"The {request.method} method is not allowed on {request.path}."
        return json_response(error_body(405, "METHOD_NOT_ALLOWED", detail), 405)

    def _error(self, error: ApiError) -> Response:
        return json_response(error_body(error.status, error.code, error.detail, error.path), status=error.status)

    @contextmanager
    def _slot(self):
        """Hold one of the account's concurrent-request slots; yields False when none is free."""
        with self._inflight_lock:
            free = self._inflight < self.concurrency_limit
            if free:
                self._inflight += 1
                self.max_inflight = max(self.max_inflight, self._inflight)
            else:
                self.concurrency_rejections += 1
        try:
            if free and self.processing_seconds:
                time.sleep(self.processing_seconds)
            yield free
        finally:
            if free:
                with self._inflight_lock:
                    self._inflight -= 1

    def _guarded(self, request: Request, handle: Callable[[], Response]) -> Response:
        """One vendor call as NetSuite runs it: a valid token, a free concurrency slot, errors in NetSuite's body."""
        if not self._authorized(request):
            return self._unauthorized()
        with self._slot() as free:
            if not free:
                return self._concurrency_refused()
            try:
                return handle()
            except ApiError as error:
                return self._error(error)

    def _concurrency_refused(self) -> Response:
        detail = "Concurrent request limit exceeded. Request blocked."
        return json_response(error_body(429, CONCURRENCY_ERROR_CODE, detail), status=429)

    def _authorized(self, request: Request) -> bool:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            return False
        token = header[len("Bearer ") :].strip()
        with self.lock:
            expires = self.tokens.get(token)
        return expires is not None and expires > time.time()

    def _unauthorized(self) -> Response:
        detail = (
            "Invalid login attempt. For more details, see the Login Audit Trail in the NetSuite UI at Setup > "
            "Users/Roles > User Management > View Login Audit Trail."
        )
        return json_response(error_body(401, "INVALID_LOGIN", detail), status=401)

    # -- OAuth 2.0 client credentials -----------------------------------------------------------------------------
    def token(self, request: Request) -> Response:
        form = request.form

        def refuse(error: str, status: int = 400) -> Response:
            return json_response({"error": error}, status=status)

        if form.get("grant_type") != "client_credentials" or form.get("client_assertion_type") != CLIENT_ASSERTION_TYPE:
            return refuse("invalid_request")
        assertion = form.get("client_assertion", "")
        try:
            header = jwt.get_unverified_header(assertion)
        except jwt.PyJWTError:
            return refuse("invalid_request")
        if header.get("alg") not in SIGNING_ALGORITHMS:
            return refuse("invalid_request")  # RS256 (PKCS#1 v1.5) is no longer accepted
        if not hmac.compare_digest(str(header.get("kid", "")), DEMO_CREDENTIALS["certificate_id"]):
            return refuse("invalid_client", 401)
        audience = f"{request.host_url.rstrip('/')}{TOKEN_PATH}"
        try:
            claims = jwt.decode(
                assertion,
                self.certificate.public_key(),
                algorithms=[header["alg"]],
                audience=audience,
                options={"require": ["iss", "aud", "exp", "iat", "scope"]},
            )
        except jwt.InvalidSignatureError:
            return refuse("invalid_client", 401)
        except jwt.PyJWTError:
            return refuse("invalid_grant")
        if not hmac.compare_digest(str(claims.get("iss", "")), DEMO_CREDENTIALS["client_id"]):
            return refuse("invalid_client", 401)
        if int(claims["exp"]) - int(claims["iat"]) > 3600:
            return refuse("invalid_grant")
        scope = claims.get("scope")
        scopes = scope if isinstance(scope, list) else str(scope).split(",")
        if SCOPE not in [s.strip() for s in scopes]:
            return refuse("invalid_scope")
        token = secrets.token_urlsafe(48)
        with self.lock:
            self.tokens[token] = time.time() + TOKEN_LIFETIME
        return json_response({"access_token": token, "expires_in": str(TOKEN_LIFETIME), "token_type": "bearer"})

    # -- SuiteQL -------------------------------------------------------------------------------------------------
    def suiteql(self, request: Request) -> Response:
        return self._guarded(request, lambda: self._suiteql(request))

    def _suiteql(self, request: Request) -> Response:
        if "transient" not in request.headers.get("Prefer", "").lower():
            raise ApiError(400, "INVALID_HEADER", "The SuiteQL resource requires the header 'Prefer: transient'.")
        try:
            limit = int(request.args.get("limit", SUITEQL_PAGE_MAX))
            offset = int(request.args.get("offset", 0))
        except ValueError:
            raise ApiError(400, "INVALID_PARAMETER", "The limit and offset parameters must be integers.") from None
        if not 1 <= limit <= SUITEQL_PAGE_MAX:
            raise ApiError(400, "INVALID_PARAMETER", f"The limit must be between 1 and {SUITEQL_PAGE_MAX}.")
        if offset < 0 or offset >= self.suiteql_max_results:
            raise ApiError(
                400, "INVALID_PARAMETER", f"The offset must be between 0 and {self.suiteql_max_results - 1}."
            )
        body = request.get_json(force=True, silent=True)
        if not isinstance(body, dict) or not isinstance(body.get("q"), str):
            raise ApiError(400, "INVALID_CONTENT", 'The request body must be {"q": "<SuiteQL query>"}.')
        query = SuiteQLParser(body["q"]).parse()
        with self.lock:
            rows, columns = self._table(query["table"])
            result = SuiteQLRun(query, columns, self._display).run(rows)
        total = len(result)
        served_total = min(total, self.suiteql_max_results)
        page = result[offset : min(offset + limit, served_total)]
        has_more = offset + len(page) < served_total
        items = []
        for row in page:
            item = {"links": []}
            item.update({k: render_suiteql_value(v) for k, v in row.items() if v is not None})
            items.append(item)
        for position in self.malformed_positions(len(items)):
            item = items[position]
            watermark = [k for k in item if "lastmodified" in k]
            if position % 2 == 0 or not watermark:
                item.pop("id", None)
            else:
                for key in watermark:
                    item[key] = "31/31/2024 99:99"
        base = f"{request.host_url.rstrip('/')}/services/rest/query/v1/suiteql"
        links = []
        if offset > 0:
            links.append({"rel": "previous", "href": f"{base}?limit={limit}&offset={max(0, offset - limit)}"})
            links.append({"rel": "first", "href": f"{base}?limit={limit}&offset=0"})
        if has_more:
            last = ((served_total - 1) // limit) * limit
            links.append({"rel": "next", "href": f"{base}?limit={limit}&offset={offset + limit}"})
            links.append({"rel": "last", "href": f"{base}?limit={limit}&offset={last}"})
        links.append({"rel": "self", "href": f"{base}?limit={limit}&offset={offset}"})
        return json_response(
            {
                "links": links,
                "count": len(items),
                "hasMore": has_more,
                "items": items,
                "offset": offset,
                "totalResults": total,
            }
        )

    # -- records -------------------------------------------------------------------------------------------------
    def create(self, request: Request, record_type: str) -> Response:
        return self._guarded(request, lambda: self._create(request, record_type))

    def _create(self, request: Request, record_type: str) -> Response:
        self._check_type(record_type)
        body = self._body(request)
        key = request.headers.get(IDEMPOTENCY_HEADER)
        with self.lock:
            if key and key in self.idempotency_keys:
                raise ApiError(
                    400,
                    IDEMPOTENCY_ERROR_CODE,
                    f"A request with the idempotency key {key} has already been processed.",
                )
            values = self._validate(record_type, body, existing=None)
            external_id = values.get("externalId")
            if external_id and str(external_id).lower() in self.external_index[record_type]:
                raise ApiError(
                    400,
                    "USER_ERROR",
                    f"A {record_type} record with the external ID {external_id} already exists.",
                    "externalId",
                )
            record = self._insert(record_type, values, _now())
            if key:
                self.idempotency_keys[key] = (record_type, record["id"])
        return self._no_content(request, record_type, record["id"])

    def record(self, request: Request, record_type: str, key: str) -> Response:
        return self._guarded(request, lambda: self._record(request, record_type, key))

    def _record(self, request: Request, record_type: str, key: str) -> Response:
        self._check_type(record_type)
        if request.method == "GET":
            return self._get(request, record_type, key)
        if request.method == "DELETE":
            return self._delete(record_type, key)
        return self._save(request, record_type, key)

    def _get(self, request: Request, record_type: str, key: str) -> Response:
        with self.lock:
            record = self._find(record_type, key)
            if record is None:
                raise self._missing(record_type, key)
            expand = request.args.get("expandSubResources", "").lower() == "true"
            return json_response(self._render(request, record_type, record, expand=expand))

    def _delete(self, record_type: str, key: str) -> Response:
        with self.lock:
            record = self._find(record_type, key)
            if record is None:
                raise self._missing(record_type, key)
            del self.records[record_type][record["id"]]
            if record.get("externalId"):
                self.external_index[record_type].pop(str(record["externalId"]).lower(), None)
        return Response(status=204)

    def _save(self, request: Request, record_type: str, key: str) -> Response:
        body = self._body(request)
        upsert = request.method == "PUT"
        if upsert and not key.startswith("eid:"):
            raise ApiError(400, "INVALID_REQUEST", "The upsert operation (PUT) needs an external ID: use eid:<id>.")
        with self.lock:
            record = self._find(record_type, key)
            idempotency_key = request.headers.get(IDEMPOTENCY_HEADER)
            if idempotency_key and idempotency_key in self.idempotency_keys:
                raise ApiError(
                    400,
                    IDEMPOTENCY_ERROR_CODE,
                    f"A request with the idempotency key {idempotency_key} has already been processed.",
                )
            if record is None and not upsert:
                raise self._missing(record_type, key)
            if record is None:
                external_id = key[len("eid:") :]
                if not EXTERNAL_ID_RE.match(external_id):
                    raise ApiError(400, "INVALID_ID", f"The external ID {external_id} contains invalid characters.")
                values = self._validate(record_type, {**body, "externalId": external_id}, existing=None)
                record = self._insert(record_type, values, _now())
            else:
                values = self._validate(record_type, body, existing=record)
                record.update(values)
                if record_type == "invoice":
                    record["total"] = sum(
                        (line.get("amount") or Decimal(0) for line in record.get("item") or []), Decimal(0)
                    )
                record["lastModifiedDate"] = _now()
                if values.get("externalId"):
                    self.external_index[record_type][str(values["externalId"]).lower()] = record["id"]
            if idempotency_key:
                self.idempotency_keys[idempotency_key] = (record_type, record["id"])
        return self._no_content(request, record_type, record["id"])

    def _no_content(self, request: Request, record_type: str, record_id: int) -> Response:
        location = f"{request.host_url.rstrip('/')}/services/rest/record/v1/{record_type}/{record_id}"
        return Response(status=204, headers={"Location": location})

    def _check_type(self, record_type: str) -> None:
        if record_type not in SCHEMA:
            raise ApiError(
                404,
                "NONEXISTENT_ID",
                f"Record type '{record_type}' does not exist in this sandbox (it serves {', '.join(SCHEMA)}).",
            )

    @staticmethod
    def _body(request: Request) -> dict[str, Any]:
        body = request.get_json(force=True, silent=True)
        if not isinstance(body, dict):
            raise ApiError(400, "INVALID_CONTENT", "The request body must be a JSON object.")
        return body

    def _missing(self, record_type: str, key: str) -> ApiError:
        return ApiError(
            404,
            "NONEXISTENT_ID",
            f"The record instance does not exist. Provide a valid record instance ID ({record_type} {key}).",
        )


def create_app(firm: Firm | None = None) -> NetSuiteSandbox:
    return NetSuiteSandbox(firm)
