"""Float sandbox routes: Bearer token and required User-Agent, paged lists with X-Pagination-* headers and
`modified_since`, create (POST) and change (PATCH) of people, clients, projects and allocations."""

from __future__ import annotations

import hmac
import math
import re
from typing import Any

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from connectors.float.sandbox.state import DEMO_CREDENTIALS, FloatState, Refused
from connectors.sandbox.app import SandboxApp, json_response
from connectors.sandbox.firm import Firm

PER_PAGE_MAX = 200
PER_PAGE_DEFAULT = 50
ID_FIELDS = {"clients": "client_id", "people": "people_id", "projects": "project_id", "tasks": "task_id"}
_USER_AGENT = re.compile(r"\S+.*[\w.+-]+@[\w-]+\.[\w.-]+")  # an application name and a contact email


class FloatSandbox(FloatState, SandboxApp):
    vendor = "float"

    def routes(self) -> list[Rule]:
        return [
            Rule("/v3/<any(people, clients, projects, tasks):table>", endpoint="collection", methods=["GET", "POST"]),
            Rule(
                "/v3/<any(people, clients, projects, tasks):table>/<int:row_id>",
                endpoint="one",
                methods=["GET", "PATCH"],
            ),
            Rule("/v3/logged-time", endpoint="logged", methods=["GET"]),
            Rule("/v3/departments", endpoint="department_list", methods=["GET"]),
        ]

    # -- how Float says "no" -------------------------------------------------------------------------------------
    def rate_limited_response(self, request: Request, retry_after: float) -> Response:
        return json_response(
            {"name": "Too Many Requests", "message": "Rate limit exceeded.", "status": 429},
            status=429,
            headers={"Retry-After": str(max(1, math.ceil(retry_after)))},
        )

    def server_error_response(self, request: Request) -> Response:
        return json_response(
            {"name": "Internal Server Error", "message": "An internal server error occurred.", "status": 500}, 500
        )

    def not_found_response(self, request: Request) -> Response:
        return json_response({"name": "Not Found", "message": "Page not found.", "status": 404}, 404)

    def authenticate(self, request: Request) -> Response | None:
        if not _USER_AGENT.search(request.headers.get("User-Agent", "")):
            message = "Please include a User-Agent header with your application name and a contact email."
            return json_response({"name": "Bad Request", "message": message, "status": 400}, 400)
        header = request.headers.get("Authorization", "")
        token = header[7:] if header.lower().startswith("bearer ") else ""
        if not hmac.compare_digest(token.encode(), DEMO_CREDENTIALS["token"].encode()):
            return json_response(
                {"name": "Unauthorized", "message": "Your request was made with invalid credentials.", "status": 401},
                401,
            )
        return None

    # -- lists ---------------------------------------------------------------------------------------------------
    def _paged(self, request: Request, total: int, rows_of) -> Response:
        try:
            per_page = min(PER_PAGE_MAX, max(1, int(request.args.get("per-page") or PER_PAGE_DEFAULT)))
            page = max(1, int(request.args.get("page") or 1))
        except ValueError:
            return json_response(
                {"name": "Bad Request", "message": "page and per-page are numbers.", "status": 400}, 400
            )
        pages = max(1, math.ceil(total / per_page))
        rows = rows_of((page - 1) * per_page, min(total, page * per_page))
        for n, position in enumerate(sorted(self.malformed_positions(len(rows)))):
            rows[position] = dict(rows[position])
            if n % 2 == 0:
                rows[position].pop(next(iter(rows[position])))  # the id, which comes first
            else:
                rows[position]["modified"] = "0000-00-00 00:00:00"
        headers = {
            "X-Pagination-Total-Count": str(total),
            "X-Pagination-Page-Count": str(pages),
            "X-Pagination-Current-Page": str(page),
            "X-Pagination-Per-Page": str(per_page),
        }
        return json_response(rows, headers=headers)

    @staticmethod
    def _since(request: Request) -> str | None:
        text = (request.args.get("modified_since") or "").strip()
        return text.replace(" ", "T") + "Z" if len(text) == 19 else None

    def collection(self, request: Request, table: str) -> Response:
        if request.method == "POST":
            return self._write(request, table, None)
        since = self._since(request)
        with self.lock:
            rows = [dict(r) for _, r in sorted(self.tables[table].items()) if not since or r["modified"] >= since]
        return self._paged(request, len(rows), lambda start, stop: rows[start:stop])

    def one(self, request: Request, table: str, row_id: int) -> Response:
        with self.lock:
            if row_id not in self.tables[table]:
                return self.not_found_response(request)
            if request.method == "GET":
                return json_response(dict(self.tables[table][row_id]))
        return self._write(request, table, row_id)

    def logged(self, request: Request) -> Response:
        first = self.logged_since(self._since(request))
        total = self.logged_count - first
        return self._paged(
            request, total, lambda start, stop: [self.logged_time(first + i) for i in range(start, stop)]
        )

    def department_list(self, request: Request) -> Response:
        with self.lock:
            rows = [dict(d) for _, d in sorted(self.departments.items())]
        return self._paged(request, len(rows), lambda start, stop: rows[start:stop])

    # -- writes ----------------------------------------------------------------------------------------------------
    def _write(self, request: Request, table: str, row_id: int | None) -> Response:
        body = request.get_json(force=True, silent=True)
        if not isinstance(body, dict):
            return json_response([{"field": "", "message": "The body must be a JSON object."}], 422)
        values: dict[str, Any] = {k: v for k, v in body.items() if k != ID_FIELDS[table]}
        with self.lock:
            try:
                row = self.write(table, values, row_id)
            except Refused as refusal:
                return json_response(refusal.errors, 422)
            return json_response(dict(row), 201 if row_id is None else 200)


def create_app(firm: Firm | None = None) -> FloatSandbox:
    return FloatSandbox(firm)
