"""monday.com sandbox route: POST /v2 with the token in `Authorization` and an `API-Version`, queries parsed and checked
against the schema subset (graphql-core), each query's complexity counted against the account's minute budget,
cursor pagination (items_page, next_items_page), and monday's answers: application errors inside HTTP 200, the
complexity refusal in the shape the version names, 429 with Retry-After, 5xx."""

from __future__ import annotations

import base64
import binascii
import json
import math
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from graphql import GraphQLError, execute, get_operation_ast, parse, validate
from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from connectors.monday.sandbox.schema import (
    ITEMS_PAGE_MAX,
    QUERY_MAX,
    SCHEMA,
    MondayError,
    complexity_exhausted,
    parse_error,
    query_cost,
    reset_seconds,
    validation_error,
)
from connectors.monday.sandbox.state import (
    ACCOUNT,
    CODE_COLUMN,
    COLUMNS,
    DEMO_CREDENTIALS,
    ME_ID,
    TIME_COLUMN,
    VIEWER_ID,
    VIEWER_TOKEN,
    MondayState,
    parse_stamp,
)
from connectors.sandbox.app import SandboxApp, json_response
from connectors.sandbox.firm import Firm

CURRENT_VERSION = "2025-10"  # what a call without API-Version gets
CURSOR_LIFETIME = 3600  # seconds a cursor stays valid
GROUP = {"id": "topics", "title": "Open tickets"}
WORKSPACE = {"id": "8100001", "name": "Client support"}


def _duration_text(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def _moment(text: str) -> datetime:
    """A compare value for the last-updated column: a date, or a date and time (UTC)."""
    value = text.strip().replace(" ", "T")
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class MondaySandbox(MondayState, SandboxApp):
    vendor = "monday"

    def routes(self) -> list[Rule]:
        return [Rule("/v2", endpoint="graphql", methods=["POST"])]

    # -- how monday says "no" -------------------------------------------------------------------------------------
    def authenticate(self, request: Request) -> Response | None:
        token = request.headers.get("Authorization", "")
        if token in (DEMO_CREDENTIALS["api_token"], VIEWER_TOKEN):
            return None
        body = {"errors": [{"message": "Not Authenticated", "extensions": {"code": "UNAUTHENTICATED",
                                                                          "status_code": 401}}]}  # fmt: skip
        return json_response(body, status=401)

    def rate_limited_response(self, request: Request, retry_after: float) -> Response:
        seconds = max(1, math.ceil(retry_after))
        body = {"errors": [{"message": "Rate limit exceeded for the requested operation",
                            "extensions": {"code": "RATE_LIMIT_EXCEEDED", "retry_in_seconds": seconds}}]}  # fmt: skip
        return json_response(body, status=429, headers={"Retry-After": str(seconds)})

    def server_error_response(self, request: Request) -> Response:
        body = {"errors": [{"message": "Internal server error", "extensions": {"code": "INTERNAL_SERVER_ERROR"}}]}
        return json_response(body, status=500)

    def not_found_response(self, request: Request) -> Response:
        return json_response({"errors": [{"message": "Not Found", "extensions": {"code": "NOT_FOUND"}}]}, 404)

    def method_not_allowed_response(self, request: Request) -> Response:
        return json_response({"errors": [{"message": f"{request.method} is not supported on /v2"}]}, status=405)

    # -- the endpoint ---------------------------------------------------------------------------------------------
    def graphql(self, request: Request) -> Response:
        version = (request.headers.get("API-Version") or CURRENT_VERSION).strip()
        request_id = str(uuid.uuid4())
        payload = request.get_json(force=True, silent=True)
        if not isinstance(payload, dict) or not isinstance(payload.get("query"), str) or not payload["query"].strip():
            return self._answer({"errors": [{"message": "No query string was present"}]}, request_id)
        source, variables = payload["query"], payload.get("variables") or {}
        try:
            document = parse(source)
        except GraphQLError as error:
            return self._answer({"errors": [parse_error(source, error)]}, request_id)
        problems = validate(SCHEMA, document)
        if problems:
            return self._answer({"errors": [validation_error(p) for p in problems]}, request_id)
        operation = get_operation_ast(document, payload.get("operationName"))
        if operation is None:
            return self._answer({"errors": [{"message": "An operation name is required"}]}, request_id)
        cost = query_cost(document, operation, variables if isinstance(variables, dict) else {})
        if cost > QUERY_MAX:
            message = f"Query has complexity of {cost}, which exceeds max complexity of {QUERY_MAX}"
            body = {"errors": [{"message": message, "extensions": {"code": "maxComplexityExceeded",
                                                                   "complexity": cost, "maxComplexity": QUERY_MAX}}]}  # fmt: skip
            return self._answer(body, request_id)
        token = request.headers.get("Authorization", "")
        with self.lock:
            now = time.monotonic()
            left = self.budget_left(now)
            reset_in = reset_seconds(self.budget_started, self.budget_window, now)
            if cost > left:
                self.complexity_refused += 1
                body = complexity_exhausted(version, cost=cost, left=left, limit=self.budget_limit, reset_in=reset_in)
                return self._answer(body, request_id, headers={"Retry-After": str(reset_in)})
            self.budget_spent += cost
            self.query_costs.append(cost)
            context = {
                "viewer": token == VIEWER_TOKEN,
                "complexity": {"before": left, "after": left - cost, "query": cost, "reset_in_x_seconds": reset_in},
            }
            result = execute(SCHEMA, document, root_value=self._root(), context_value=context,
                             variable_values=variables, operation_name=payload.get("operationName"))  # fmt: skip
        body: dict[str, Any] = {"data": result.data}
        if result.errors:
            body["errors"] = [error.formatted for error in result.errors]
        return self._answer(body, request_id)

    @staticmethod
    def _answer(body: dict[str, Any], request_id: str, headers: dict[str, str] | None = None) -> Response:
        body = {**body, "account_id": int(ACCOUNT["id"]), "extensions": {"request_id": request_id}}
        return json_response(body, status=200, headers=headers)

    # -- resolvers: plain dicts, with callables for the fields that take arguments --------------------------------
    def _root(self) -> dict[str, Any]:
        return {
            "me": lambda info: self._user(ME_ID if not info.context["viewer"] else VIEWER_ID),
            "account": dict(ACCOUNT),
            "complexity": lambda info: info.context["complexity"],
            "boards": self._boards,
            "items": self._items_by_id,
            "next_items_page": self._next_items_page,
            "users": self._users,
        }

    @staticmethod
    def _guard(info) -> None:
        if info.context["viewer"]:
            raise MondayError("User unauthorized to perform action", "UserUnauthorizedException", 403)

    def _user(self, user_id: str | None) -> dict[str, Any] | None:
        user = self.users.get(str(user_id)) if user_id else None
        if user is None:
            return None
        return {**user, "enabled": True, "is_view_only": user["is_guest"], "account": dict(ACCOUNT)}

    def _users(self, info, ids=None, emails=None, kind=None, limit=None, page=None) -> list[dict[str, Any]]:
        self._guard(info)
        found = [u for u in self.users.values() if u["id"] not in (ME_ID, VIEWER_ID) or ids]
        if ids:
            found = [u for u in found if u["id"] in {str(i) for i in ids}]
        if emails:
            wanted = {str(e).lower() for e in emails}
            found = [u for u in found if u["email"].lower() in wanted]
        if kind == "guests":
            found = [u for u in found if u["is_guest"]]
        elif kind == "non_guests":
            found = [u for u in found if not u["is_guest"]]
        found.sort(key=lambda u: int(u["id"]))
        if limit:
            start = (max(1, page or 1) - 1) * limit
            found = found[start : start + limit]
        return [self._user(u["id"]) for u in found]

    def _boards(self, info, ids=None, limit=None, page=None, state="active", **_ignored) -> list[dict[str, Any]]:
        self._guard(info)
        boards = sorted(self.boards.values(), key=lambda b: int(b["id"]))
        if ids is not None:
            boards = [b for b in boards if b["id"] in {str(i) for i in ids}]
        if state not in ("active", "all"):
            boards = []
        size = limit or 25
        start = (max(1, page or 1) - 1) * size
        return [self._board(b["id"]) for b in boards[start : start + size]]

    def _board(self, board_id: str) -> dict[str, Any]:
        board = self.boards[board_id]
        items = [i for i in self.items.values() if i["board"] == board_id]
        return {
            "id": board_id,
            "name": board["name"],
            "state": "active",
            "board_kind": "public",
            "description": None,
            "permissions": "everyone",
            "updated_at": max([board["updated_at"], *(i["updated_at"] for i in items)]),
            "items_count": len(items),
            "workspace": dict(WORKSPACE),
            "tags": [],
            "groups": lambda info, ids=None: [dict(GROUP)],
            "columns": lambda info, ids=None, types=None: [
                dict(c) for c in COLUMNS if (not ids or c["id"] in ids) and (not types or c["type"] in types)
            ],
            "items_page": lambda info, limit=25, cursor=None, query_params=None: self._items_page(
                board_id, limit, query_params, cursor
            ),
        }

    # -- items and their pages --------------------------------------------------------------------------------
    def _matching(self, board_id: str, query_params: dict[str, Any] | None) -> list[dict[str, Any]]:
        items = [i for i in self.items.values() if i["board"] == board_id]
        params = query_params or {}
        if params.get("ids"):
            items = [i for i in items if i["id"] in {str(x) for x in params["ids"]}]
        tests = [self._rule(rule) for rule in params.get("rules") or []]
        if tests:
            combine = any if params.get("operator") == "or" else all
            items = [i for i in items if combine(test(i) for test in tests)]
        items.sort(key=lambda i: int(i["id"]))
        for order in reversed(params.get("order_by") or []):
            if order.get("column_id") != "__last_updated__":
                raise MondayError(f"Ordering by column {order.get('column_id')} is not supported here",
                                  "InvalidArgumentException")  # fmt: skip
            items.sort(key=lambda i: i["updated_at"], reverse=order.get("direction") == "desc")
        return items

    def _rule(self, rule: dict[str, Any]):
        column, operator = str(rule.get("column_id")), rule.get("operator") or "any_of"
        values = rule.get("compare_value")
        values = values if isinstance(values, list) else [values]
        if column == "__last_updated__":
            given = [str(v) for v in values if str(v).upper() != "EXACT"]
            try:
                moment = _moment(given[0])
            except (IndexError, ValueError):
                raise MondayError(f"Invalid compare value {values!r} for the last updated column",
                                  "InvalidColumnValueException", error_data={"column_id": column}) from None  # fmt: skip
            compare = {
                "greater_than_or_equals": lambda stamp: stamp >= moment,
                "greater_than": lambda stamp: stamp > moment,
                "lower_than_or_equal": lambda stamp: stamp <= moment,
                "lower_than": lambda stamp: stamp < moment,
            }.get(operator)
            if compare is None:
                raise MondayError(f"Operator {operator} is not supported on the last updated column",
                                  "InvalidArgumentException")  # fmt: skip
            return lambda item: compare(parse_stamp(item["updated_at"]))
        if column == CODE_COLUMN and operator == "any_of":
            wanted = {str(v) for v in values}
            return lambda item: self.boards[item["board"]]["code"] in wanted
        raise MondayError(f"Column {column} can not be filtered here", "InvalidColumnIdException",
                          error_data={"column_id": column})  # fmt: skip

    @staticmethod
    def _cursor(board_id: str, position: int, query_params: dict[str, Any] | None) -> str:
        raw = json.dumps({"b": board_id, "p": position, "q": query_params or {}, "t": int(time.time())})
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    def _items_page(self, board_id: str, limit: int, query_params, cursor) -> dict[str, Any]:
        if cursor:
            return self._next_items_page(None, limit=limit, cursor=cursor)
        return self._page(board_id, 0, limit, query_params)

    def _next_items_page(self, info, limit: int = 25, cursor: str = "") -> dict[str, Any]:
        if info is not None:
            self._guard(info)
        try:
            raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
            board_id, position, query_params, issued = raw["b"], int(raw["p"]), raw["q"], int(raw["t"])
        except (ValueError, KeyError, TypeError, binascii.Error):
            raise MondayError("The cursor provided for pagination is invalid", "InvalidCursorException") from None
        if time.time() - issued > CURSOR_LIFETIME or board_id not in self.boards:
            raise MondayError(
                "CursorExpiredError: The cursor provided for pagination has expired. Please refresh your query "
                "and obtain a new cursor to continue fetching items",
                "CursorExpiredError",
            )
        return self._page(board_id, position, limit, query_params)

    def _page(self, board_id: str, position: int, limit: int, query_params) -> dict[str, Any]:
        if not 1 <= limit <= ITEMS_PAGE_MAX:
            raise MondayError(f"limit must be between 1 and {ITEMS_PAGE_MAX}", "InvalidArgumentException",
                              error_data={"argument": "limit"})  # fmt: skip
        matching = self._matching(board_id, query_params)
        chunk = matching[position : position + limit]
        broken = self.malformed_positions(len(chunk))
        items = [self._item(item["id"], malformed=n in broken) for n, item in enumerate(chunk)]
        more = position + limit < len(matching)
        return {"cursor": self._cursor(board_id, position + limit, query_params) if more else None, "items": items}

    def _items_by_id(self, info, ids=None, limit=25, page=1) -> list[dict[str, Any]]:
        self._guard(info)
        if not ids:
            raise MondayError("The ids argument is required", "InvalidArgumentException")
        if len(ids) > 100:
            raise MondayError("You can only query up to 100 items by ids", "InvalidArgumentException")
        found = [str(i) for i in ids if str(i) in self.items]
        return [self._item(item_id) for item_id in found[(page - 1) * limit : page * limit]]

    def _item(self, item_id: str, malformed: bool = False) -> dict[str, Any]:
        item = self.items[item_id]
        return {
            "id": item_id,
            "name": item["name"],
            "state": "active",
            "created_at": item["created_at"],
            "updated_at": item["updated_at"],
            "board": lambda info: self._board(item["board"]),
            "group": dict(GROUP),
            "creator": lambda info: self._user(item["creator"]),
            "creator_id": item["creator"],
            "column_values": lambda info, ids=None, types=None: [
                value
                for value in self._column_values(item, malformed)
                if (not ids or value["id"] in ids) and (not types or value["type"] in types)
            ],
            "subitems": [],
            "parent_item": None,
        }

    def _column_values(self, item: dict[str, Any], malformed: bool) -> list[dict[str, Any]]:
        columns = {c["id"]: c for c in COLUMNS}
        assignee = self.users.get(item["assignee"] or "")
        code = self.boards[item["board"]]["code"]
        history = [dict(session) for session in item["sessions"]]
        if malformed and history:
            # A session the server could not finish writing: no end, or nobody who started it.
            if int(history[0]["id"]) % 2:
                history[0]["ended_at"] = "soon"
            else:
                history[0]["started_user_id"] = None
        seconds = sum(
            int((parse_stamp(s["ended_at"]) - parse_stamp(s["started_at"])).total_seconds())
            for s in item["sessions"]
            if s["ended_at"]
        )
        last = item["sessions"][-1] if item["sessions"] else None
        tracking_value = None
        if last:
            tracking_value = json.dumps({"running": False, "startDate": int(parse_stamp(last["started_at"]).timestamp()),
                                         "duration": seconds, "changed_at": item["updated_at"]})  # fmt: skip
        return [
            {
                "__typename": "PeopleValue", "id": "person", "type": "people", "column": columns["person"],
                "text": assignee["name"] if assignee else "",
                "value": json.dumps({"personsAndTeams": [{"id": int(assignee["id"]), "kind": "person"}]})
                if assignee else None,
                "persons_and_teams": [{"id": assignee["id"], "kind": "person"}] if assignee else [],
            },
            {
                "__typename": "StatusValue", "id": "status", "type": "status", "column": columns["status"],
                "text": "Working on it", "label": "Working on it", "index": 0, "is_done": False,
                "value": json.dumps({"index": 0}),
            },
            {
                "__typename": "TextValue", "id": CODE_COLUMN, "type": "text", "column": columns[CODE_COLUMN],
                "text": code, "value": json.dumps(code) if code else None,
            },
            {
                "__typename": "TimeTrackingValue", "id": TIME_COLUMN, "type": "time_tracking",
                "column": columns[TIME_COLUMN], "text": _duration_text(seconds) if last else "",
                "value": tracking_value, "duration": seconds, "running": False,
                "started_at": last["started_at"] if last else None, "updated_at": item["updated_at"],
                "history": history,
            },
        ]  # fmt: skip


def create_app(firm: Firm | None = None) -> MondaySandbox:
    return MondaySandbox(firm)
