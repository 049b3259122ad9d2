"""monday.com connector: the time tracked on items (ticket time), over the GraphQL API (POST /v2) with an API token.

monday keeps time in a board's time tracking column: each item's value holds the `history` of sessions tracked,
each with who started it, when it started and when it ended. A read walks the account's boards (or the ones the
connection names) and pages each board's items with `items_page` then `next_items_page` (cursor pagination, 500
items a page at most), ordered and filtered by the last-updated column, so an incremental read asks only for the
items changed since the cursor. Each finished session is one record: the connector adds `minutes` (its length),
`date` (the day it started, UTC), `user` (the person, with the email the API gives for `started_user_id`), `item`,
`board` (whose name carries the firm's project code first, "PRJ-113 Globex Data Platform") and `columns` (the
item's other columns as text by column id). The cursor is the newest item `updated_at` read, handed over with the
read's last page.

Every query asks for its `complexity`; when what is left of the minute's budget would not pay for the next page,
the read waits for the budget to reset instead of being refused. A refusal for a spent budget (answered inside
HTTP 200, `ComplexityException` or `COMPLEXITY_BUDGET_EXHAUSTED` as the API version names it) is waited out like a
429, and so is the minute rate limit's 429 with Retry-After. Other errors inside HTTP 200 (a refused token user, a
query monday cannot parse) are raised as errors, never read as empty data.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from datetime import UTC
from typing import Any

import requests

from connectors.base import (
    AuthenticationFailed,
    ConnectionTestResult,
    Connector,
    ConnectorError,
    FormField,
    ObjectSpec,
    Page,
    RateLimited,
    RejectedRecord,
    SourceRecord,
    VendorError,
    chunks,
    objects_by_name,
    parse_utc_datetime,
)

DEFAULT_BASE_URL = "https://api.monday.com"
API_VERSION = "2025-10"
PAGE_MAX = 500  # items_page / next_items_page limit
PAGE_DEFAULT = 100
BOARDS_PAGE = 100
COMPLEXITY = "complexity { before after query reset_in_x_seconds }"
ITEM_FIELDS = """
fragment ItemFields on Item {
  id name updated_at
  group { id title }
  column_values {
    id type text column { id title }
    ... on TimeTrackingValue {
      running
      history { id status started_at ended_at started_user_id ended_user_id created_at updated_at }
    }
  }
}"""
FIRST_PAGE = (
    "query ($board: [ID!], $limit: Int!, $params: ItemsQuery) { "
    + COMPLEXITY
    + " boards(ids: $board) { id name items_page(limit: $limit, query_params: $params) { cursor items { ...ItemFields } } } }"
    + ITEM_FIELDS
)
NEXT_PAGE = (
    "query ($limit: Int!, $cursor: String!) { "
    + COMPLEXITY
    + " next_items_page(limit: $limit, cursor: $cursor) { cursor items { ...ItemFields } } }"
    + ITEM_FIELDS
)
AUTH_CODES = frozenset({"UNAUTHENTICATED", "UserUnauthorizedException", "USER_UNAUTHORIZED", "Unauthorized",
                        "UserAccessDeniedException"})  # fmt: skip
SPENT_CODES = frozenset({"COMPLEXITY_BUDGET_EXHAUSTED", "ComplexityException"})
_RESET_IN = re.compile(r"reset in (\d+) second")

# ---------------------------------------------------------------------------------------------------------------
# (unverified) assumptions, kept here and emulated the same way by connectors/monday/sandbox/:
# - Tracking or correcting time on an item changes the item's `updated_at`, so items filtered by the last-updated
#   column (`__last_updated__`, compare_attribute UPDATED_AT, greater_than_or_equals, ["EXACT", "<ISO time>"])
#   are the items whose time changed, and the comparison keeps the time of day, not only the date. A deleted
#   session is not seen by an incremental read.
# - TimeTrackingHistoryItem has id, status, started_at, ended_at, started_user_id, ended_user_id, created_at,
#   updated_at and the manually_entered_* flags (the reference lists `history` on TimeTrackingValue; these
#   subfields are as monday's schema shows them, not checked against a live account). A running session has no
#   ended_at and is left for a later read. The day of a session is the UTC day it started.
# - An unknown or revoked token answers HTTP 401 with {"errors": [{"message": "Not Authenticated"}]}; a token
#   whose user may not read boards answers UserUnauthorizedException inside HTTP 200, as the error reference
#   shows for `me`.
# - The complexity count: monday publishes no formula, only that nested lists multiply; the sandbox counts one
#   point per field times the limits of the lists around it. The refusal's shape by version is as monday's
#   changelog shows it (ComplexityException before 2025-01, COMPLEXITY_BUDGET_EXHAUSTED with its budget fields
#   until 2025-07, with retry_in_seconds only since); all are answered with HTTP 200 and Retry-After.
# - A parse error reads "Parse error on <token> at [line, column]"; the minute rate limit answers 429 with
#   Retry-After and RATE_LIMIT_EXCEEDED; a cursor expires after 60 minutes (CursorExpiredError), and the read
#   then starts the board again from the last item's updated_at.
# - Webhooks are not used: monday's board webhooks send no event for time tracking changes. Reads poll.
# ---------------------------------------------------------------------------------------------------------------


class _CursorExpired(Exception):
    pass


def _iso_z(text: Any) -> str | None:
    moment = parse_utc_datetime(text, needs_time=True)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


def complexity_wait(response: requests.Response) -> float | None:
    """Seconds until the complexity budget resets when `response` refuses a query for a spent budget, else None."""
    if response.status_code != 200 or (
        b"ComplexityException" not in response.content and b"COMPLEXITY_BUDGET_EXHAUSTED" not in response.content
    ):
        return None
    try:
        body = response.json()
    except ValueError:
        return None
    if not isinstance(body, Mapping):
        return None
    if body.get("error_code") == "ComplexityException":
        found = _RESET_IN.search(str(body.get("error_message") or ""))
        return float(found.group(1)) if found else 0.0
    for error in body.get("errors") or []:
        extensions = error.get("extensions") if isinstance(error, Mapping) else None
        if isinstance(extensions, Mapping) and extensions.get("code") in SPENT_CODES:
            return float(extensions.get("retry_in_seconds") or 0)
    return None


class MondayConnector(Connector):
    vendor = "monday"
    label = "monday.com"
    category = "ticketing"
    objects = objects_by_name(
        ObjectSpec(
            "time_tracking",
            "Time tracked on items",
            page_size=PAGE_MAX,
            fields=("user.email", "date", "minutes", "board.name", "item.name", "columns.project_code", "started_at"),
        ),
    )

    def __init__(self, *, base_url: str = DEFAULT_BASE_URL, credentials: Mapping[str, str], **kwargs):
        super().__init__(base_url=base_url, credentials=credentials, **kwargs)
        self.endpoint = self.base_url if self.base_url.endswith("/v2") else f"{self.base_url}/v2"
        self.session.rate_limit_detector = complexity_wait

    @classmethod
    def form_fields(cls) -> list[FormField]:
        return [
            FormField(
                "api_token",
                "API token",
                kind="secret",
                help="From monday.com's Developer Center (profile picture > Developers > API token), by a member "
                "who sees the boards whose time is billed.",
            ),
            FormField(
                "board_ids",
                "Board ids",
                required=False,
                help="Only these boards, comma-separated. Leave empty to read every active board the token sees.",
            ),
        ]

    # -- GraphQL ---------------------------------------------------------------------------------------------------
    def _query(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        response = self.session.request(
            "POST",
            self.endpoint,
            json={"query": query, "variables": variables or {}},
            headers={
                "Authorization": self.credentials.get("api_token", ""),
                "API-Version": API_VERSION,
                "Content-Type": "application/json",
                "Accept": "application/json",
            },
        )
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code == 401:
            raise AuthenticationFailed(
                f"monday.com refused the API token (HTTP 401: {self._errors_text(body) or 'Not Authenticated'}). "
                "Check that it was copied whole and that its user is still active."
            )
        if response.status_code != 200 or not isinstance(body, Mapping):
            shown = self._errors_text(body)
            raise VendorError(
                f"monday.com answered HTTP {response.status_code}" + (f": {shown}" if shown else ""),
                status=response.status_code,
            )
        # Older API versions answer some errors outside the GraphQL shape: {"error_code", "error_message"}.
        if body.get("error_code") or body.get("error_message"):
            raise VendorError(
                f"monday.com refused the query: {self.session.redact(str(body.get('error_message')))}",
                status=200,
                code=str(body.get("error_code") or ""),
            )
        errors = [e for e in body.get("errors") or [] if e]
        if errors:
            first = errors[0] if isinstance(errors[0], Mapping) else {"message": str(errors[0])}
            code = str((first.get("extensions") or {}).get("code") or "")
            message = self.session.redact(str(first.get("message") or "an error"))
            if code in AUTH_CODES:
                raise AuthenticationFailed(
                    f"monday.com says the token's user may not read this ({message}, {code}): give that user access "
                    "to the boards, or use a member's token."
                )
            if code in SPENT_CODES:
                raise RateLimited(f"monday.com's complexity budget is spent ({message})")
            if code == "CursorExpiredError":
                raise _CursorExpired(message)
            raise VendorError(f"monday.com refused the query: {message}" + (f" ({code})" if code else ""),
                              status=200, code=code or None)  # fmt: skip
        data = body.get("data")
        if not isinstance(data, Mapping):
            raise VendorError("monday.com answered without data", status=200)
        self._pace(data.get("complexity"))
        return dict(data)

    def _errors_text(self, body: Any) -> str:
        if not isinstance(body, Mapping):
            return ""
        parts = [str(e.get("message")) for e in body.get("errors") or [] if isinstance(e, Mapping)]
        return self.session.redact("; ".join(parts) or str(body.get("error_message") or ""))

    def _pace(self, complexity: Any) -> None:
        """Wait for the budget to reset when what is left would not pay for another query like this one."""
        if not isinstance(complexity, Mapping):
            return
        after, cost = complexity.get("after"), complexity.get("query")
        if not isinstance(after, int) or not isinstance(cost, int) or after >= cost:
            return
        wait = float(complexity.get("reset_in_x_seconds") or 1)
        if wait > self.policy.max_retry_after:
            raise RateLimited(
                f"monday.com's complexity budget is nearly spent; it resets in {wait:.0f} s", retry_after=wait
            )
        self.session.sleep(wait)

    def _board_ids(self) -> list[tuple[str, str]]:
        chosen = [b.strip() for b in (self.credentials.get("board_ids") or "").split(",") if b.strip()]
        boards: list[tuple[str, str]] = []
        page = 1
        while True:
            data = self._query(
                "query ($ids: [ID!], $limit: Int, $page: Int) { boards(ids: $ids, limit: $limit, page: $page, "
                "state: active) { id name } }",
                {"ids": chosen or None, "limit": BOARDS_PAGE, "page": page},
            )
            found = data.get("boards") or []
            boards += [(str(b["id"]), str(b.get("name") or "")) for b in found if isinstance(b, Mapping)]
            if len(found) < BOARDS_PAGE:
                return boards
            page += 1

    # -- contract ------------------------------------------------------------------------------------------------
    def test_connection(self) -> ConnectionTestResult:
        try:
            me = self._query("{ me { id name email account { name slug } } }").get("me") or {}
            boards = self._board_ids()
        except (ConnectorError, requests.RequestException) as exc:
            return ConnectionTestResult.failed(exc, vendor="monday.com")
        account = (me.get("account") or {}).get("name") or "?"
        who = me.get("email") or me.get("name") or "the token's user"
        return ConnectionTestResult(
            ok=True,
            message=f"Connected to monday.com account {account} as {who}; {len(boards):,} boards visible.",
            detail={"user_id": me.get("id"), "boards": len(boards)},
        )

    def read(self, object_name: str, *, since: str | None = None, page_size: int | None = None) -> Iterator[Page]:
        self.object_spec(object_name)
        size = max(1, min(page_size or PAGE_DEFAULT, PAGE_MAX))
        if since and parse_utc_datetime(since) is None:
            raise ConnectorError(f"Not an ISO 8601 cursor: {since!r}")
        cursor, users, seen = since, {}, set()
        pending: Page | None = None
        for board_id, name in self._board_ids():
            board = {"id": board_id, "name": name}
            for items in self._items(board_id, size, since):
                records, rejects = self._parse(items, board, users, seen)
                for item in items:
                    stamp = _iso_z(item.get("updated_at")) if isinstance(item, Mapping) else None
                    if stamp and (cursor is None or stamp > cursor):
                        cursor = stamp
                if not records and not rejects:
                    continue
                # A page is handed over once the next is known, so the last one can carry the cursor.
                if pending is not None:
                    yield pending
                pending = Page(records=records, rejects=rejects, cursor=None, has_more=True)
        yield Page(
            records=pending.records if pending else [],
            rejects=pending.rejects if pending else [],
            cursor=cursor,
            has_more=False,
        )

    def _items(self, board_id: str, size: int, since: str | None) -> Iterator[list[Any]]:
        """Each page of a board's items changed since `since`, oldest change first; an expired cursor restarts the
        board from the last item seen."""
        start, last = since, None
        while True:
            rules = []
            if start:
                rules.append({"column_id": "__last_updated__", "compare_value": ["EXACT", start],
                              "operator": "greater_than_or_equals", "compare_attribute": "UPDATED_AT"})  # fmt: skip
            params = {"rules": rules, "order_by": [{"column_id": "__last_updated__", "direction": "asc"}]}
            try:
                data = self._query(FIRST_PAGE, {"board": [board_id], "limit": size, "params": params})
                boards = data.get("boards") or []
                page = (boards[0] or {}).get("items_page") or {} if boards else {}
                while True:
                    items = page.get("items") or []
                    yield items
                    for item in items:
                        if isinstance(item, Mapping) and item.get("updated_at"):
                            last = _iso_z(item["updated_at"]) or last
                    if not page.get("cursor"):
                        return
                    data = self._query(NEXT_PAGE, {"limit": size, "cursor": page["cursor"]})
                    page = data.get("next_items_page") or {}
            except _CursorExpired:
                if last is None or last == start:
                    raise VendorError(
                        "monday.com let the read's cursor expire twice at the same item", status=200
                    ) from None
                start = last

    def _users(self, ids: set[str], users: dict[str, dict[str, Any]]) -> None:
        missing = sorted(i for i in ids if i not in users)
        for chunk in chunks(missing, 100):
            data = self._query(
                "query ($ids: [ID!], $limit: Int) { users(ids: $ids, limit: $limit) { id name email } }",
                {"ids": chunk, "limit": len(chunk)},
            )
            for user in data.get("users") or []:
                if isinstance(user, Mapping) and user.get("id"):
                    users[str(user["id"])] = {"id": str(user["id"]), "name": user.get("name"),
                                              "email": user.get("email")}  # fmt: skip
            for user_id in chunk:
                users.setdefault(user_id, {"id": user_id, "name": None, "email": None})

    def _parse(
        self, items: list[Any], board: dict[str, str], users: dict[str, dict[str, Any]], seen: set[str]
    ) -> tuple[list[SourceRecord], list[RejectedRecord]]:
        sessions: list[tuple[Mapping, Mapping, Mapping]] = []
        for item in items:
            if not isinstance(item, Mapping):
                continue
            values = [v for v in item.get("column_values") or [] if isinstance(v, Mapping)]
            for value in values:
                if value.get("type") != "time_tracking":
                    continue
                for session in value.get("history") or []:
                    sessions.append((item, value, session))
        self._users({str(s["started_user_id"]) for _i, _v, s in sessions if s.get("started_user_id")}, users)
        records: list[SourceRecord] = []
        rejects: list[RejectedRecord] = []
        for item, value, session in sessions:
            session_id = str(session.get("id") or "")
            if not session_id:
                rejects.append(RejectedRecord(None, "The time tracking session has no id.", dict(session)))
                continue
            if session_id in seen:
                continue
            seen.add(session_id)
            started = parse_utc_datetime(session.get("started_at"), needs_time=True)
            ended_text = session.get("ended_at")
            ended = parse_utc_datetime(ended_text, needs_time=True)
            if ended_text is None and session.get("started_at"):
                continue  # still running: its time is read once the timer stops
            if started is None or ended is None or ended < started:
                reason = f"the session's start and end are not times: {session.get('started_at')!r}, {ended_text!r}"
                rejects.append(RejectedRecord(session_id, reason[0].upper() + reason[1:], dict(session)))
                continue
            if not session.get("started_user_id"):
                rejects.append(RejectedRecord(session_id, "Nobody is named as having tracked the session.",
                                              dict(session)))  # fmt: skip
                continue
            data = dict(session)
            data["minutes"] = round((ended - started).total_seconds() / 60)
            data["date"] = started.astimezone(UTC).date().isoformat()
            data["user"] = dict(users.get(str(session["started_user_id"])) or {})
            data["item"] = {"id": item.get("id"), "name": item.get("name"), "updated_at": item.get("updated_at"),
                            "group": dict(item.get("group") or {})}  # fmt: skip
            data["board"] = dict(board)
            data["column"] = dict(value.get("column") or {"id": value.get("id")})
            data["columns"] = {
                str(v.get("id")): v.get("text")
                for v in item.get("column_values") or []
                if isinstance(v, Mapping) and v.get("type") != "time_tracking"
            }
            updated = _iso_z(item.get("updated_at")) or _iso_z(session.get("updated_at")) or ""
            records.append(SourceRecord(external_id=session_id, updated_at=updated, data=data))
        return records, rejects
