"""monday.com connector (and monday's own `monday-api-python-sdk`) against the monday.com sandbox over real HTTP."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

import pytest
import requests
from monday_sdk import MondayClient

from connectors.base import AuthenticationFailed, VendorError
from connectors.monday.client import MondayConnector
from connectors.monday.sandbox import DEMO_CREDENTIALS, create_app
from connectors.monday.sandbox.state import VIEWER_TOKEN
from connectors.sandbox.firm import Firm
from connectors.sandbox.tickets import support_queues, support_tickets, work_logs
from tests.connectors.kit import connector_maker, read_whole, sandbox_fixture

SESSION_BASE, ITEM_BASE, BOARD_BASE = 7100000000, 6100000000, 4100000000
TOKEN = DEMO_CREDENTIALS["api_token"]


sandbox = sandbox_fixture(lambda: create_app(Firm()))


@pytest.fixture(autouse=True)
def fresh_sandbox(sandbox):
    sandbox.reset()


make_connector = connector_maker(MondayConnector, DEMO_CREDENTIALS, backoff=(0.02, 0.1), own_connection=True)


def everything(connector, **kwargs):
    return read_whole(connector, "time_tracking", **kwargs)


def firm_logs() -> dict[str, dict]:
    """The firm's work logs as monday must serve them, by session id."""
    return {str(SESSION_BASE + log["id"]): log for log in work_logs(Firm())}


def graphql(sandbox, query: str, token: str = TOKEN, version: str = "2025-10", **variables) -> requests.Response:
    return requests.post(f"{sandbox.url}/v2", json={"query": query, "variables": variables},
                         headers={"Authorization": token, "API-Version": version}, timeout=10)  # fmt: skip


def budget(sandbox, *, limit: int, window: float, spent: int = 0) -> None:
    app = sandbox.app
    with app.lock:
        app.budget_limit, app.budget_window, app.budget_spent = limit, window, spent
        app.budget_started = time.monotonic()


def test_connection_names_the_account_the_user_and_the_boards(sandbox):
    result = make_connector(sandbox).test_connection()
    assert result.ok, result.message
    assert result.message == (
        "Connected to monday.com account Halden & Rowe as integration@haldenrowe.example; "
        f"{len(support_queues(Firm()))} boards visible."
    )


def test_an_unknown_token_is_refused_with_http_401(sandbox):
    refused = graphql(sandbox, "{ me { id } }", token="not-a-token")
    assert refused.status_code == 401 and refused.json()["errors"][0]["message"] == "Not Authenticated"
    connector = make_connector(sandbox, {"api_token": "not-a-token"})
    result = connector.test_connection()
    assert not result.ok and result.message.startswith("monday.com refused the API token (HTTP 401: Not Authenticated)")
    with pytest.raises(AuthenticationFailed):
        everything(connector)


def test_a_user_who_may_not_read_boards_is_an_authentication_failure_though_http_says_200(sandbox):
    answer = graphql(sandbox, "{ boards { id } }", token=VIEWER_TOKEN)
    assert answer.status_code == 200
    error = answer.json()["errors"][0]
    assert error["message"] == "User unauthorized to perform action"
    assert error["extensions"]["code"] == "UserUnauthorizedException" and error["path"] == ["boards"]
    connector = make_connector(sandbox, {"api_token": VIEWER_TOKEN})
    result = connector.test_connection()
    assert not result.ok and "UserUnauthorizedException" in result.message
    with pytest.raises(AuthenticationFailed):
        everything(connector)


def test_a_query_monday_cannot_parse_is_an_error_not_empty_data(sandbox):
    answer = graphql(sandbox, "{ boards { id ")
    assert answer.status_code == 200
    assert answer.json()["errors"][0]["message"] == "Parse error on end of query at [1, 15]"
    unknown = graphql(sandbox, "{ boards { id nme } }").json()["errors"][0]
    assert unknown["message"] == "Field 'nme' doesn't exist on type 'Board'"
    connector = make_connector(sandbox)
    with pytest.raises(VendorError, match="Parse error on") as refused:
        connector._query("{ me { id }")
    assert refused.value.status == 200


def test_every_work_log_arrives_once_with_its_person_day_minutes_and_board(sandbox):
    pages, records, rejects = everything(make_connector(sandbox), page_size=1)
    expected = firm_logs()
    assert not rejects
    assert sorted(r.external_id for r in records) == sorted(expected)
    queues = {q["code"]: q for q in support_queues(Firm())}
    for record in records:
        log = expected[record.external_id]
        assert record.data["user"]["email"] == log["person_email"]
        assert (record.data["minutes"], record.data["date"]) == (log["minutes"], log["date"])
        assert record.data["board"]["name"] == queues[log["code"]]["name"]
        assert record.data["board"]["name"].split()[0] == record.data["columns"]["project_code"] == log["code"]
        assert record.data["item"]["id"] == str(ITEM_BASE + log["ticket_id"])
    assert len(pages) == len(support_tickets(Firm()))  # one item a page: the cursor was followed
    assert [p.has_more for p in pages] == [True] * (len(pages) - 1) + [False]
    assert all(p.cursor is None for p in pages[:-1])
    assert pages[-1].cursor == max(r.updated_at for r in records)


def test_reading_since_the_cursor_brings_only_items_whose_time_changed(sandbox):
    connector = make_connector(sandbox)
    pages, records, _ = everything(connector)
    cursor = pages[-1].cursor
    _, again, _ = everything(connector, since=cursor)
    newest = {r.data["item"]["id"] for r in records if r.updated_at == cursor}
    assert {r.data["item"]["id"] for r in again} == newest  # the watermark's own item comes back, nothing older

    item = str(ITEM_BASE + support_tickets(Firm())[3]["id"])
    session = sandbox.app.log_session(item, user_email=records[0].data["user"]["email"],
                                      started=datetime(2023, 1, 4, 10, tzinfo=UTC), minutes=45)  # fmt: skip
    _, newer, _ = everything(connector, since=cursor)
    found = next(r for r in newer if r.external_id == session["id"])
    assert (found.data["minutes"], found.data["date"]) == (45, "2023-01-04")
    assert {r.data["item"]["id"] for r in newer} == newest | {item}


def test_a_spent_complexity_budget_is_refused_in_the_shape_the_api_version_names(sandbox):
    budget(sandbox, limit=1000, window=30.0, spent=996)
    query = "{ complexity { after } boards(limit: 2) { id name } }"
    legacy = graphql(sandbox, query, version="2024-10")
    assert legacy.status_code == 200 and legacy.headers["Retry-After"]
    body = legacy.json()
    assert body["error_code"] == "ComplexityException" and body["status_code"] == 429
    assert body["error_message"].startswith("Complexity budget exhausted, query cost 5 budget remaining 4 out of 1000 ")
    assert body["error_message"].endswith(f"reset in {legacy.headers['Retry-After']} seconds")
    current = graphql(sandbox, query).json()["errors"][0]
    assert current["message"] == "Complexity budget exhausted"
    assert current["extensions"]["code"] == "COMPLEXITY_BUDGET_EXHAUSTED"
    assert 0 < current["extensions"]["retry_in_seconds"] <= 30
    assert sandbox.app.complexity_refused == 2


def test_the_read_paces_itself_to_the_complexity_budget_and_is_never_refused(sandbox):
    _, first, _ = everything(make_connector(sandbox), page_size=2)
    largest = max(sandbox.app.query_costs)
    budget(sandbox, limit=3 * largest, window=1.0)
    started = time.monotonic()
    _, records, rejects = everything(make_connector(sandbox), page_size=2)
    assert len(records) == len(first) == len(firm_logs()) and not rejects
    assert sandbox.app.complexity_refused == 0
    assert time.monotonic() - started >= 1.0  # it waited for the budget to come back at least once


def test_a_budget_spent_by_someone_else_is_waited_out_and_the_read_goes_on(sandbox):
    budget(sandbox, limit=2_000_000, window=1.0, spent=2_000_000)
    _, records, _ = everything(make_connector(sandbox))
    assert len(records) == len(firm_logs())
    assert sandbox.app.complexity_refused >= 1


def test_ten_thousand_sessions_are_read_under_the_rate_limit_without_a_429_of_our_own(sandbox):
    sandbox.seed(time_tracking_sessions=10_000 + len(firm_logs()))
    sandbox.set_faults(rate_limit={"calls": 8, "window": 1.0, "retry_after": 1})
    sandbox.clear_stats()
    _, records, rejects = everything(make_connector(sandbox, rate_per_second=6, burst=1), page_size=100)
    assert len({r.external_id for r in records}) == len(records) == 10_000 + len(firm_logs()) and not rejects
    stats = sandbox.stats()
    assert stats["rate_limited"] == 0 and stats["max_calls_in_window"] <= 8


def test_rate_limits_and_server_errors_are_retried(sandbox):
    sandbox.set_faults(rate_limit={"calls": 2, "window": 0.5, "retry_after": 1})
    limited = [graphql(sandbox, "{ me { id } }") for _ in range(3)][-1]
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "1"
    assert limited.json()["errors"][0]["extensions"]["code"] == "RATE_LIMIT_EXCEEDED"
    _, records, _ = everything(make_connector(sandbox), page_size=5)
    assert len(records) == len(firm_logs()) and sandbox.stats()["rate_limited"] >= 1

    sandbox.set_faults(error_every=3)
    _, records, _ = everything(make_connector(sandbox), page_size=5)
    assert len(records) == len(firm_logs()) and sandbox.stats()["errors_injected"] >= 2


def test_malformed_sessions_are_rejected_one_by_one_and_the_rest_arrive(sandbox):
    sandbox.set_faults(malformed_every=2)
    _, records, rejects = everything(make_connector(sandbox), page_size=4)
    assert len(rejects) == sandbox.stats()["malformed_sent"] > 0
    assert len(records) + len(rejects) == len(firm_logs())
    assert {r.reason.split(":")[0] for r in rejects} == {"The session's start and end are not times",
                                                         "Nobody is named as having tracked the session."}  # fmt: skip


def test_the_token_never_reaches_the_logs(sandbox, caplog):
    caplog.set_level(logging.DEBUG)
    sandbox.set_faults(error_every=4)
    connector = make_connector(sandbox)
    assert connector.test_connection().ok
    everything(connector, page_size=5)
    wrong = "eyJhbGciOiJIUzI1NiJ9.wrong-token-0192837465"
    with pytest.raises(AuthenticationFailed) as refused:
        everything(make_connector(sandbox, {"api_token": wrong}))
    text = caplog.text + str(refused.value)
    assert caplog.records and TOKEN not in text and wrong not in text


def test_the_monday_sdk_pages_boards_and_items_against_the_sandbox(sandbox, monkeypatch):
    monkeypatch.setattr("builtins.print", lambda *args, **kwargs: None)  # the SDK prints its retries
    client = MondayClient(TOKEN)
    client._graphql_client.endpoint = f"{sandbox.url}/v2"  # the SDK has no setting for its address
    boards = client.boards.fetch_boards(limit=50).data.boards
    assert [b.name for b in boards] == [q["name"] for q in support_queues(Firm())]
    assert {c.id for c in boards[0].columns} >= {"time_tracking", "project_code"}

    board = str(BOARD_BASE + 2)
    tickets = [t for t in support_tickets(Firm()) if t["queue_id"] == 2]
    items = client.boards.fetch_all_items_by_board_id(board, limit=1)  # one a page: next_items_page followed
    assert sorted(i.id for i in items) == sorted(str(ITEM_BASE + t["id"]) for t in tickets)
    tracked = next(v for v in items[0].column_values if v.type == "time_tracking")
    assert tracked.column.title == "Time tracking" and tracked.text.count(":") == 2

    newest = max(i.updated_at for i in items)
    changed = client.boards.fetch_item_by_board_id_by_update_date(board, updated_after=newest, updated_before=None)
    assert [i.updated_at for i in changed] == [newest]

    # The SDK waits out a ComplexityException in the shape API versions before 2025-01 answer.
    old = MondayClient(TOKEN, headers={"API-Version": "2024-10"})
    old._graphql_client.endpoint = f"{sandbox.url}/v2"
    budget(sandbox, limit=1_000_000, window=1.0, spent=1_000_000)
    assert old.boards.fetch_boards_by_id(board).data.boards[0].id == board
    assert sandbox.app.complexity_refused == 1

    refused = MondayClient("not-a-token", max_retry_attempts=1)
    refused._graphql_client.endpoint = f"{sandbox.url}/v2"
    with pytest.raises(Exception, match="HTTP 401"):
        refused.boards.fetch_boards()
