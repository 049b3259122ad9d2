"""Business Central sandbox routes: tokens, the request queue, the OData resources, etags and JSON $batch."""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from connectors.businesscentral.sandbox.schema import (
    COMPANY_ID,
    DEMO_CREDENTIALS,
    ENVIRONMENT,
    MAX_BATCH,
    MAX_PAGE_SIZE,
    QUEUE_LIMIT,
    RESOURCE,
    RUNNING_LIMIT,
    SCHEMA,
    TABLE_NAMES,
    TENANT_ID,
    ApiError,
    _etag,
    _filter,
    _segments,
)
from connectors.businesscentral.sandbox.state import BusinessCentralState
from connectors.businesscentral.sandbox.webhooks import BusinessCentralWebhooks
from connectors.sandbox.app import SandboxApp, json_response
from connectors.sandbox.entra import EntraTenant
from connectors.sandbox.firm import Firm
from connectors.sandbox.odata import ODataError, filter_fields, matches, parse_orderby, parse_select, prefer, sort_rows


class BusinessCentralSandbox(BusinessCentralState, BusinessCentralWebhooks, SandboxApp):
    vendor = "businesscentral"

    def __init__(self, firm: Firm | None = None):
        self.entra = EntraTenant(
            tenant_id=TENANT_ID,
            client_id=DEMO_CREDENTIALS["client_id"],
            client_secret=DEMO_CREDENTIALS["client_secret"],
        )
        self.running_limit, self.queue_limit = RUNNING_LIMIT, QUEUE_LIMIT
        self.processing_seconds = 0.0
        self._slots = threading.BoundedSemaphore(RUNNING_LIMIT)
        self._waiting = 0
        self.queue_rejections = 0
        self._queue_lock = threading.Lock()
        super().__init__(firm)

    def set_queue(self, running: int, queued: int) -> None:
        """Shrink (or restore) the environment's request queue, for tests of its overflow."""
        self.running_limit, self.queue_limit = running, queued
        self._slots = threading.BoundedSemaphore(running)

    def routes(self) -> list[Rule]:
        return [
            Rule("/<tenant>/oauth2/v2.0/token", endpoint="token", methods=["POST"]),
            Rule(
                "/v2.0/<tenant>/<environment>/api/v2.0/<path:resource>",
                endpoint="api",
                methods=["GET", "POST", "PATCH", "DELETE"],
            ),
        ]

    # -- the kit's hooks -----------------------------------------------------------------------------------------
    def authenticate(self, request: Request) -> Response | None:
        if not request.path.startswith("/v2.0/") or self.entra.bearer_valid(request):
            return None
        return json_response(
            {
                "error": {
                    "code": "Authentication_InvalidCredentials",
                    "message": "The server has rejected the client credentials.  CorrelationId:  "
                    + str(uuid.uuid4())
                    + ".",
                }
            },
            status=401,
            headers={
                "WWW-Authenticate": f'Bearer authorization_uri="https://login.microsoftonline.com/{TENANT_ID}/oauth2/authorize"'
            },
        )

    def rate_limited_response(self, request: Request, retry_after: float) -> Response:
        return self._too_many(retry_after)

    def _too_many(self, retry_after: float) -> Response:
        error = ApiError(429, "Application_TooManyRequests", "Too many requests reached. The request was throttled.")
        return json_response(error.body(), status=429, headers={"Retry-After": str(max(1, int(retry_after + 0.999)))})

    def server_error_response(self, request: Request) -> Response:
        return json_response(ApiError(500, "Internal_ServerError", "An unexpected error occurred.").body(), status=500)

    def not_found_response(self, request: Request) -> Response:
        return json_response(
            ApiError(
                404, "BadRequest_NotFound", f"No HTTP resource was found that matches the request URI '{request.url}'."
            ).body(),
            status=404,
        )

    def _dispatch(self, request: Request) -> Response:
        # The environment runs a few requests at once and queues the rest; a full queue answers 429.
        with self._queue_lock:
            if self._waiting >= self.running_limit + self.queue_limit:
                self.queue_rejections += 1
                return self._too_many(1)
            self._waiting += 1
        slots = self._slots
        try:
            with slots:
                if self.processing_seconds:
                    time.sleep(self.processing_seconds)
                return super()._dispatch(request)
        finally:
            with self._queue_lock:
                self._waiting -= 1

    # -- endpoints -----------------------------------------------------------------------------------------------
    def token(self, request: Request, tenant: str) -> Response:
        return self.entra.token_endpoint(request, tenant, scope_check=lambda resource: resource.rstrip("/") == RESOURCE)

    def api(self, request: Request, tenant: str, environment: str, resource: str) -> Response:
        if tenant != TENANT_ID or environment != ENVIRONMENT:
            error = ApiError(404, "NoEnvironment", f"Environment '{environment}' does not exist for tenant '{tenant}'.")
            return json_response(error.body(), status=404)
        root = f"{request.host_url.rstrip('/')}/v2.0/{tenant}/{environment}/api/v2.0"
        if resource == "$batch":
            return self._batch(request, root)
        body = request.get_data()
        status, headers, payload = self.handle(
            request.method, resource, request.args.to_dict(), dict(request.headers), body, root
        )
        if payload is None:
            return Response(b"", status=status, headers=headers)
        return json_response(payload, status=status, headers=headers)

    def handle(self, method, resource, args, headers, data: bytes, root) -> tuple[int, dict[str, str], Any]:
        headers = {k.lower(): v for k, v in headers.items()}
        try:
            payload = json.loads(data) if data else None
        except ValueError:
            return 400, {}, ApiError(400, "BadRequest", "Invalid Request Body").body()
        try:
            with self.lock:
                return self._operation(method, unquote(resource), args, headers, payload, root)
        except ApiError as error:
            return error.status, {}, error.body()
        except ODataError as error:
            return 400, {}, ApiError(400, "BadRequest", str(error)).body()

    def _operation(self, method, resource, args, headers, payload, root) -> tuple[int, dict[str, str], Any]:
        segments = _segments(resource)
        if segments[0][0] == "subscriptions":
            return self._subscriptions(method, segments, headers, payload, root)
        if segments[0][0] != "companies":
            raise ApiError(404, "BadRequest_NotFound", f"Resource not found for the segment '{segments[0][0]}'.")
        if len(segments) == 1:
            if segments[0][1]:
                raise ApiError(404, "BadRequest_NotFound", "Use the companies collection.")
            company = self._company()
            return (
                200,
                {},
                {
                    "@odata.context": f"{root}/$metadata#companies",
                    "value": [company] if matches(company, _filter(args)) else [],
                },
            )
        if segments[0][1] != COMPANY_ID:
            raise ApiError(404, "Internal_CompanyNotFound", f"Cannot find company with id '{segments[0][1]}'.")
        table, key = segments[1]
        if table not in SCHEMA or table == "salesInvoiceLines":
            raise ApiError(404, "BadRequest_NotFound", f"Resource not found for the segment '{table}'.")
        if len(segments) == 3:  # salesInvoices({id})/salesInvoiceLines[({line id})]
            if table != "salesInvoices" or segments[2][0] != "salesInvoiceLines":
                raise ApiError(404, "BadRequest_NotFound", f"Resource not found for the segment '{segments[2][0]}'.")
            return self._invoice_lines(method, self._get(table, key), segments[2][1], headers, payload, root)
        context = f"{root}/$metadata#companies({COMPANY_ID})/{table}"
        if table == "accounts" and method != "GET":  # the chart of accounts is read-only through the API
            raise ApiError(405, "BadRequest_MethodNotAllowed", f"'{method}' is not allowed on 'accounts'.")
        if key is None:
            if method == "GET":
                return self._list(table, args, headers, root, context)
            if method == "POST":
                row = self._create(table, payload)
                return (
                    201,
                    {"ETag": _etag(row)},
                    {
                        "@odata.context": f"{context}/$entity",
                        **self._render(table, row, [], expand=table == "salesInvoices"),
                    },
                )
            raise ApiError(405, "BadRequest_MethodNotAllowed", f"'{method}' is not allowed on '{table}'.")
        row = self._get(table, key)
        if method == "GET":
            return (
                200,
                {"ETag": _etag(row)},
                {"@odata.context": f"{context}/$entity", **self._render(table, row, parse_select(args.get("$select")))},
            )
        self._check_etag(headers, row)
        if method == "PATCH":
            self._update(table, row, payload)
            return 200, {"ETag": _etag(row)}, {"@odata.context": f"{context}/$entity", **self._render(table, row, [])}
        if method == "DELETE":
            del self.tables[table][key]
            self._notify(table, key, "deleted", root)
            return 204, {}, None
        raise ApiError(405, "BadRequest_MethodNotAllowed", f"'{method}' is not allowed here.")

    def _invoice_lines(self, method, invoice, line_key, headers, payload, root) -> tuple[int, dict[str, str], Any]:
        """A draft invoice's lines: listed, one added (POST) or one removed (DELETE with If-Match), as BC allows
        on a draft; the invoice's totals follow."""
        context = f"{root}/$metadata#companies({COMPANY_ID})/salesInvoices({invoice['id']})/salesInvoiceLines"
        if method == "GET" and line_key is None:
            lines = [self._render("salesInvoiceLines", r, []) for r in self._lines(invoice["id"])]
            return 200, {}, {"@odata.context": context, "value": lines}
        if method not in ("POST", "DELETE") or (method == "POST") != (line_key is None):
            raise ApiError(405, "BadRequest_MethodNotAllowed", f"'{method}' is not allowed here.")
        if invoice["status"] != "Draft":
            raise ApiError(
                400,
                "Application_DialogException",
                f"You cannot change the lines of invoice {invoice['number']}: its status is {invoice['status']}.",
            )
        if method == "POST":
            (line,) = self._add_lines(invoice, [self._line_values(payload)])
            self._retotal(invoice)
            return (
                201,
                {"ETag": _etag(line)},
                {"@odata.context": f"{context}/$entity", **self._render("salesInvoiceLines", line, [])},
            )
        line = self.tables["salesInvoiceLines"].get((line_key or "").lower())
        if line is None or line["documentId"] != invoice["id"]:
            raise ApiError(
                404,
                "Internal_RecordNotFound",
                f"The Sales Line does not exist. Identification fields and values: SystemId='{line_key}'",
            )
        self._check_etag(headers, line)
        del self.tables["salesInvoiceLines"][line["id"]]
        self._retotal(invoice)
        return 204, {}, None

    def _company(self) -> dict[str, Any]:
        return {
            "id": COMPANY_ID,
            "systemVersion": "24.0.16410.18056",
            "timestamp": 8812,
            "name": self.firm.name,
            "displayName": self.firm.name,
            "businessProfileId": "",
            "systemCreatedAt": "2022-03-01T08:00:00Z",
            "systemCreatedBy": "00000000-0000-0000-0000-000000000001",
            "systemModifiedAt": "2024-01-02T09:00:00Z",
            "systemModifiedBy": "00000000-0000-0000-0000-000000000001",
        }

    def _get(self, table: str, key: str) -> dict[str, Any]:
        row = self.tables[table].get((key or "").lower())
        if row is None:
            raise ApiError(
                404,
                "Internal_RecordNotFound",
                f"The {TABLE_NAMES.get(table, table)} does not exist. Identification fields and values: SystemId='{key}'",
            )
        return row

    def _lines(self, invoice_id: str) -> list[dict[str, Any]]:
        return sorted(
            (r for r in self.tables["salesInvoiceLines"].values() if r["documentId"] == invoice_id),
            key=lambda r: r["sequence"],
        )

    @staticmethod
    def _check_etag(headers: dict[str, str], row: dict[str, Any]) -> None:
        presented = headers.get("if-match")
        if not presented:
            raise ApiError(
                400,
                "BadRequest_InvalidToken",
                "Could not validate the client concurrency token required by the service. Please provide a valid token in the client request.",
            )
        if presented != "*" and presented != _etag(row):
            raise ApiError(412, "Request_EntityChanged", "Another user has already changed the record.")

    def _list(self, table, args, headers, root, context) -> tuple[int, dict[str, str], Any]:
        select = parse_select(args.get("$select"))
        node = _filter(args)
        order = parse_orderby(args.get("$orderby"))
        for name in [*select, *filter_fields(node), *(f for f, _ in order)]:
            if name not in SCHEMA[table]:
                raise ApiError(
                    400,
                    "BadRequest_PropertyNotFound",
                    f"Could not find a property named '{name}' on type 'Microsoft.NAV.{table[:-1]}'.",
                )
        rows = sort_rows(
            [r for r in self.tables[table].values() if matches(r, node)],
            order or [("number" if "number" in SCHEMA[table] else "code", False)],
        )
        total = len(rows)
        skip = int(args.get("$skip") or 0)
        rows = rows[skip:]
        if args.get("$top"):
            rows = rows[: int(args["$top"])]
        requested = prefer(headers.get("prefer", ""), "odata.maxpagesize")
        page_size = (
            min(int(requested), MAX_PAGE_SIZE)
            if requested and requested.isdigit() and int(requested) > 0
            else MAX_PAGE_SIZE
        )
        offset = int(args.get("$skiptoken") or 0) if str(args.get("$skiptoken") or "0").isdigit() else 0
        expand = args.get("$expand") == "salesInvoiceLines" and table == "salesInvoices"
        page = [self._render(table, r, select, expand=expand) for r in rows[offset : offset + page_size]]
        for position in sorted(self.malformed_positions(len(page))):
            broken = dict(page[position])
            broken["lastModifiedDateTime"] = "0001-01-01T00:00:00Z" if position % 2 else "soon"
            broken["id"] = None if position % 2 == 0 else broken["id"]
            page[position] = broken
        body: dict[str, Any] = {"@odata.context": context, "value": page}
        if args.get("$count") == "true":
            body["@odata.count"] = total
        if offset + page_size < len(rows):
            query = {k: v for k, v in args.items() if k != "$skiptoken"}
            query["$skiptoken"] = str(offset + page_size)
            body["@odata.nextLink"] = f"{root}/companies({COMPANY_ID})/{table}?{urlencode(query)}"
        return 200, {"Preference-Applied": f"odata.maxpagesize={page_size}"} if requested else {}, body

    def _render(self, table: str, row: dict[str, Any], select: list[str], *, expand: bool = False) -> dict[str, Any]:
        names = select or list(SCHEMA[table])
        out: dict[str, Any] = {"@odata.etag": _etag(row)} if table != "salesInvoiceLines" else {}
        out.update({name: row.get(name) for name in names})
        out["id"] = row["id"]
        if expand:
            out["salesInvoiceLines"] = [self._render("salesInvoiceLines", r, []) for r in self._lines(row["id"])]
        return out

    # -- $batch --------------------------------------------------------------------------------------------------
    def _batch(self, request: Request, root: str) -> Response:
        body = request.get_json(force=True, silent=True)
        if request.method != "POST" or not isinstance(body, dict) or not isinstance(body.get("requests"), list):
            return json_response(
                ApiError(400, "BadRequest", "A $batch request must be JSON with a requests list.").body(), status=400
            )
        if len(body["requests"]) > MAX_BATCH:
            return json_response(
                ApiError(
                    400, "BadRequest", f"The number of operations in a batch exceeds the maximum of {MAX_BATCH}."
                ).body(),
                status=400,
            )
        responses = []
        for item in body["requests"]:
            url = str(item.get("url", ""))
            split = urlsplit(url)
            path = split.path.split("/api/v2.0/", 1)[-1].lstrip("/")
            data = json.dumps(item["body"]).encode() if item.get("body") is not None else b""
            status, headers, payload = self.handle(
                str(item.get("method", "GET")).upper(),
                path,
                dict(parse_qsl(split.query)),
                item.get("headers") or {},
                data,
                root,
            )
            answer = {
                "id": item.get("id"),
                "status": status,
                "headers": {
                    "content-type": "application/json; odata.metadata=minimal",
                    **{k.lower(): v for k, v in headers.items()},
                },
            }
            if payload is not None:
                answer["body"] = payload
            responses.append(answer)
        return json_response({"responses": responses})


def create_app(firm: Firm | None = None) -> BusinessCentralSandbox:
    return BusinessCentralSandbox(firm)
