"""ServiceNow sandbox routes: the Table API (`/api/now/table/<table>` and `/api/now/v2/table/<table>`) with basic
auth, `sysparm_query`, `sysparm_fields` (dot-walked too), `sysparm_limit`/`sysparm_offset` with Link and
X-Total-Count headers and the 10,000-row window, `sysparm_display_value`, and ServiceNow's error bodies and 429."""

from __future__ import annotations

import base64
import hmac
import math
import time
from typing import Any
from urllib.parse import urlencode

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from connectors.sandbox.app import SandboxApp, json_response
from connectors.sandbox.firm import Firm
from connectors.servicenow.sandbox.query import REFERENCES, QueryError, TableQuery
from connectors.servicenow.sandbox.state import DEMO_CREDENTIALS, ServiceNowState

WINDOW = 10_000  # rows an offset can reach, and the default sysparm_limit (see the client's assumptions)
RATE_LIMIT_RULE = "6a1c8e7f2b3d4c5e9f0a1b2c3d4e5f60"


def failure(status: int, message: str, detail: str | None = None) -> Response:
    return json_response({"error": {"message": message, "detail": detail}, "status": "failure"}, status=status)


class ServiceNowSandbox(ServiceNowState, TableQuery, SandboxApp):
    vendor = "servicenow"

    def routes(self) -> list[Rule]:
        rules = []
        for base in ("/api/now/table", "/api/now/v2/table"):
            rules += [
                Rule(f"{base}/<table>", endpoint="collection", methods=["GET", "POST"]),
                Rule(f"{base}/<table>/<row_id>", endpoint="row", methods=["GET", "PATCH", "PUT"]),
            ]
        return rules

    # -- vendor hooks ----------------------------------------------------------------------------------------------
    def authenticate(self, request: Request) -> Response | None:
        header = request.headers.get("Authorization", "")
        try:
            user, _, password = (
                base64.b64decode(header[6:]).decode().partition(":") if header.startswith("Basic ") else ("", "", "")
            )
        except (ValueError, UnicodeDecodeError):
            user, password = "", ""
        if hmac.compare_digest(user, DEMO_CREDENTIALS["username"]) and hmac.compare_digest(
            password, DEMO_CREDENTIALS["password"]
        ):
            return None
        response = failure(401, "User Not Authenticated", "Required to provide Auth information")
        response.headers["WWW-Authenticate"] = 'Basic realm="Service-now"'
        return response

    def rate_limited_response(self, request: Request, retry_after: float) -> Response:
        limit = (self.faults.faults.get("rate_limit") or {}).get("calls", 0)
        response = failure(429, "Too Many Requests", "Rate limit of requests per hour exceeded for this user.")
        response.headers.update(
            {
                "Retry-After": str(math.ceil(retry_after)),
                "X-RateLimit-Limit": str(limit),
                "X-RateLimit-Reset": str(int(time.time() + retry_after)),
                "X-RateLimit-Rule": RATE_LIMIT_RULE,
            }
        )
        return response

    def server_error_response(self, request: Request) -> Response:
        return failure(500, "Server error (injected by the sandbox)")

    def not_found_response(self, request: Request) -> Response:
        return failure(400, "Requested URI does not represent any resource", None)

    def method_not_allowed_response(self, request: Request) -> Response:
        return failure(405, f"Method not Supported: {request.method}")

    # -- rendering -------------------------------------------------------------------------------------------------
    def _display(self, table: str, field: str, value: str) -> str:
        target = REFERENCES.get((table, field.split(".")[-1])) if "." not in field else None
        related = self.tables.get(target, {}).get(value) if target else None
        if related is not None:
            return related.get("name") or related.get("number") or value
        return value

    def _render(self, request: Request, table: str, row: dict[str, Any], fields: list[str] | None) -> dict[str, Any]:
        shown = request.args.get("sysparm_display_value", "false").lower()
        no_links = request.args.get("sysparm_exclude_reference_link", "false").lower() == "true"
        out: dict[str, Any] = {}
        for field in fields or list(row):
            value = self.value_of(table, row, field)
            target = REFERENCES.get((table, field)) if "." not in field else None
            link = None
            if target and value and not no_links:
                link = f"{request.host_url.rstrip('/')}/api/now/table/{target}/{value}"
            if shown == "all":
                out[field] = {"display_value": self._display(table, field, value), "value": value}
                if link:
                    out[field]["link"] = link
            elif shown == "true":
                out[field] = self._display(table, field, value)
            elif link:
                out[field] = {"link": link, "value": value}
            else:
                out[field] = value
        return out

    @staticmethod
    def _fields(request: Request) -> list[str] | None:
        raw = request.args.get("sysparm_fields")
        return [f.strip() for f in raw.split(",") if f.strip()] if raw else None

    # -- endpoints -------------------------------------------------------------------------------------------------
    def collection(self, request: Request, table: str) -> Response:
        if table not in self.tables:
            return failure(400, f"Invalid table {table}")
        if request.method == "POST":
            body = request.get_json(force=True, silent=True)
            if not isinstance(body, dict):
                return failure(400, "Exception while reading request", "The payload is not valid JSON.")
            with self.lock:
                row = self.insert(table, body)
                return json_response({"result": self._render(request, table, row, self._fields(request))}, 201)
        try:
            limit = int(request.args.get("sysparm_limit") or WINDOW)
            offset = int(request.args.get("sysparm_offset") or 0)
        except ValueError:
            return failure(400, "Invalid sysparm_limit or sysparm_offset")
        limit = max(1, min(limit, WINDOW))
        with self.lock:
            try:
                rows = self.select(table, request.args.get("sysparm_query", ""))
            except QueryError as error:
                return failure(400, str(error))
            total = len(rows)
            reachable = min(total, WINDOW)  # an offset never reaches past the window: page further by keyset
            page = rows[offset : min(offset + limit, reachable)] if offset < reachable else []
            fields = self._fields(request)
            result = [self._render(request, table, row, fields) for row in page]
        if table == "task_time_worked":
            for number, position in enumerate(sorted(self.malformed_positions(len(result)))):
                if number % 2 == 0:
                    result[position].update(time_in_seconds="an hour or so", time_worked="soon")
                else:
                    result[position]["sys_updated_on"] = ""
        headers = {"X-Total-Count": str(total)}
        if request.args.get("sysparm_suppress_pagination_header", "false").lower() != "true":
            headers["Link"] = self._links(request, offset, limit, reachable)
        return json_response({"result": result}, headers=headers)

    @staticmethod
    def _links(request: Request, offset: int, limit: int, reachable: int) -> str:
        base = f"{request.host_url.rstrip('/')}{request.path}"
        params = [(k, v) for k, v in request.args.items(multi=True) if k not in ("sysparm_offset", "sysparm_limit")]

        def url(at: int) -> str:
            return f"{base}?{urlencode([*params, ('sysparm_limit', limit), ('sysparm_offset', at)])}"

        last = max(0, (max(reachable, 1) - 1) // limit * limit)
        links = [f'<{url(0)}>;rel="first"']
        if offset > 0:
            links.append(f'<{url(max(0, offset - limit))}>;rel="prev"')
        if offset + limit < reachable:
            links.append(f'<{url(offset + limit)}>;rel="next"')
        links.append(f'<{url(last)}>;rel="last"')
        return ",".join(links)

    def row(self, request: Request, table: str, row_id: str) -> Response:
        if table not in self.tables:
            return failure(400, f"Invalid table {table}")
        with self.lock:
            if request.method == "GET":
                found = self.tables[table].get(row_id)
            else:
                body = request.get_json(force=True, silent=True)
                if not isinstance(body, dict):
                    return failure(400, "Exception while reading request", "The payload is not valid JSON.")
                found = self.update(table, row_id, body)
            if found is None:
                return failure(404, "No Record found", "Record doesn't exist or ACL restricts the record retrieval")
            return json_response({"result": self._render(request, table, found, self._fields(request))})


def create_app(firm: Firm | None = None) -> ServiceNowSandbox:
    return ServiceNowSandbox(firm)
