"""Jira connector (and the `jira` library) against the Jira sandbox over real HTTP."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import jira
import pytest
import requests

from connectors.base import AuthenticationFailed, OutboundRecord
from connectors.jira.client import BULK_CREATE_MAX, JiraConnector
from connectors.jira.sandbox import DEMO_CREDENTIALS, create_app
from connectors.sandbox.firm import Firm
from tests.connectors.kit import connector_maker, read_whole, sandbox_fixture

DELIVERY_ISSUES = 80  # one kick-off per firm project
SEARCH_PATH = "/rest/api/3/search/jql"


sandbox = sandbox_fixture(lambda: create_app(Firm()))


@pytest.fixture(autouse=True)
def fresh_sandbox(sandbox):
    sandbox.reset()


make_connector = connector_maker(
    JiraConnector, {**DEMO_CREDENTIALS, "jql": "project = DEL"}, backoff=(0.02, 0.1), own_connection=True
)


def everything(connector, **kwargs):
    return read_whole(connector, "issues", **kwargs)


def staffing_requests(count: int, prefix: str = "REQ") -> list[OutboundRecord]:
    return [
        OutboundRecord(
            external_id=f"{prefix}-{n:03d}",
            fields={
                "project": "RES",
                "issuetype": "Task",
                "summary": f"Staff deal {n}: two consultants from May",
                "description": "Closed-won deal needs a team.\nStart in two weeks.",
                "labels": ["staffing", f"deal-{n}"],
                "duedate": "2024-05-01",
            },
        )
        for n in range(count)
    ]


def test_connection_names_the_account_and_its_time_zone(sandbox):
    result = make_connector(sandbox).test_connection()
    assert result.ok, result.message
    assert "as SysGenPro Integration" in result.message
    assert result.detail["time_zone"] == "America/New_York"


def test_a_wrong_api_token_fails_clearly(sandbox):
    connector = make_connector(sandbox, {**DEMO_CREDENTIALS, "api_token": "wrong-token"})
    result = connector.test_connection()
    assert not result.ok
    assert "Jira refused the e-mail address and API token (HTTP 401" in result.message
    with pytest.raises(AuthenticationFailed):
        everything(connector)


def test_reads_follow_next_page_tokens_in_update_order(sandbox):
    sandbox.clear_stats()
    pages, records, rejects = everything(make_connector(sandbox), page_size=30)
    assert [len(p.records) for p in pages] == [30, 30, 20]
    assert [p.has_more for p in pages] == [True, True, False]
    assert not rejects
    assert len({r.external_id for r in records}) == DELIVERY_ISSUES
    assert [r.updated_at for r in records] == sorted(r.updated_at for r in records)
    assert pages[-1].cursor == records[-1].updated_at
    assert sandbox.stats()["by_path"] == {SEARCH_PATH: {"200": 3}}
    first = records[0].data
    assert first["project"] == "DEL" and first["key"].startswith("DEL-") and first["status"]
    assert first["description"].endswith(".")  # ADF turned back into text


def test_reading_since_a_cursor_uses_the_user_time_zone_and_returns_only_newer_issues(sandbox):
    connector = make_connector(sandbox)
    _, records, _ = everything(connector)
    cursor = records[-1].updated_at
    last_key = records[-1].data["key"]

    # Edit one old issue the way a person would, in Jira.
    edited = requests.put(
        f"{sandbox.url}/rest/api/3/issue/DEL-5",
        json={"fields": {"summary": "Kick off PRJ-105 (rescheduled)"}},
        auth=(DEMO_CREDENTIALS["email"], DEMO_CREDENTIALS["api_token"]),
        timeout=10,
    )
    assert edited.status_code == 204

    _, newer, _ = everything(connector, since=cursor)
    keys = [r.data["key"] for r in newer]
    # JQL compares to the minute: the issue at the watermark comes back (proof the minute was written in the user's
    # zone -- written in UTC it would have read five hours later), plus the edited one, and nothing old.
    assert last_key in keys and "DEL-5" in keys
    floor = cursor[:16]
    assert all(r.updated_at[:16] >= floor for r in newer)
    assert len(newer) < 5
    assert next(r for r in newer if r.data["key"] == "DEL-5").data["summary"] == "Kick off PRJ-105 (rescheduled)"


def test_a_full_bulk_batch_reports_each_invalid_issue(sandbox):
    connector = make_connector(sandbox)
    before = sandbox.app.issue_count()
    records = staffing_requests(BULK_CREATE_MAX)
    records[4] = OutboundRecord(external_id="REQ-004", fields={**records[4].fields, "summary": ""})
    records[20] = OutboundRecord(external_id="REQ-020", fields={**records[20].fields, "labels": ["needs review"]})
    records[41] = OutboundRecord(external_id="REQ-041", fields={**records[41].fields, "project": "NOPE"})
    sandbox.clear_stats()
    results = connector.write("issues", records)

    assert [r.external_id for r in results] == [r.external_id for r in records]
    failed = {r.external_id: r for r in results if r.outcome == "failed"}
    assert set(failed) == {"REQ-004", "REQ-020", "REQ-041"}
    assert failed["REQ-004"].error_code == "INVALID_SUMMARY"
    assert "You must specify a summary of the issue." in failed["REQ-004"].error_message
    assert failed["REQ-020"].error_code == "INVALID_LABELS"
    assert failed["REQ-041"].error_code == "INVALID_PROJECT"
    assert sum(r.outcome == "created" for r in results) == BULK_CREATE_MAX - 3
    assert sandbox.app.issue_count() == before + BULK_CREATE_MAX - 3
    assert sandbox.stats()["by_path"]["/rest/api/3/issue/bulk"] == {"201": 1}  # one call for the whole batch


def test_upserting_the_same_issues_twice_creates_nothing_new(sandbox):
    connector = make_connector(sandbox)
    records = staffing_requests(12)
    first = connector.write("issues", records)
    count = sandbox.app.issue_count()
    second = connector.write("issues", records)
    assert {r.outcome for r in first} == {"created"}
    assert {r.outcome for r in second} == {"unchanged"}
    assert [r.target_id for r in second] == [r.target_id for r in first]
    assert sandbox.app.issue_count() == count

    changed = OutboundRecord(
        external_id="REQ-003", fields={**records[3].fields, "summary": "Staff deal 3: one architect"}
    )
    third = connector.write("issues", [changed, records[4]])
    assert [r.outcome for r in third] == ["updated", "unchanged"]
    assert sandbox.app.issue_count() == count

    issues = [r for r in everything(make_connector(sandbox, {**DEMO_CREDENTIALS, "jql": "project = RES"}))[1]]
    ours = next(r for r in issues if r.data["external_id"] == "REQ-003")
    assert ours.data["summary"] == "Staff deal 3: one architect"


def test_rate_limits_are_honoured_and_a_budget_stays_under_them(sandbox):
    sandbox.set_faults(rate_limit={"calls": 3, "window": 0.5, "retry_after": 1})
    limited = requests.get(f"{sandbox.url}/rest/api/3/serverInfo", timeout=10)
    for _ in range(3):
        limited = requests.get(f"{sandbox.url}/rest/api/3/serverInfo", timeout=10)
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "1"
    assert limited.headers["X-RateLimit-Remaining"] == "0" and "X-RateLimit-Reset" in limited.headers

    sandbox.set_faults(rate_limit={"calls": 3, "window": 0.5, "retry_after": 1})
    _, records, _ = everything(make_connector(sandbox), page_size=20)
    assert len(records) == DELIVERY_ISSUES
    assert sandbox.stats()["rate_limited"] >= 1

    sandbox.set_faults(rate_limit={"calls": 3, "window": 0.5, "retry_after": 1})
    sandbox.clear_stats()
    _, records, _ = everything(make_connector(sandbox, rate_per_second=4, burst=1), page_size=20)
    assert len(records) == DELIVERY_ISSUES
    stats = sandbox.stats()
    assert stats["rate_limited"] == 0
    assert stats["max_calls_in_window"] <= 3


def test_server_errors_are_retried(sandbox):
    sandbox.set_faults(error_every=2)
    _, records, _ = everything(make_connector(sandbox), page_size=20)
    assert len({r.external_id for r in records}) == DELIVERY_ISSUES
    assert sandbox.stats()["errors_injected"] >= 2


def test_malformed_issues_are_rejected_and_the_rest_arrive(sandbox):
    sandbox.set_faults(malformed_every=5)
    _, records, rejects = everything(make_connector(sandbox), page_size=40)
    assert len(rejects) == 16
    assert len(records) == DELIVERY_ISSUES - 16
    assert {r.reason for r in rejects} == {"The issue has no id or key.", "updated is not a timestamp: 'last Tuesday'"}


def test_the_api_token_never_reaches_the_logs(sandbox, caplog):
    caplog.set_level(logging.DEBUG)
    sandbox.set_faults(error_every=3)
    connector = make_connector(sandbox)
    assert connector.test_connection().ok
    everything(connector, since=datetime(2024, 1, 2, tzinfo=UTC).isoformat())
    connector.write("issues", staffing_requests(3))
    wrong = "ATATT3xWrongToken0123456789"
    with pytest.raises(AuthenticationFailed) as refused:
        everything(make_connector(sandbox, {**DEMO_CREDENTIALS, "api_token": wrong}))
    assert caplog.records
    text = caplog.text + str(refused.value)
    assert DEMO_CREDENTIALS["api_token"] not in text
    assert wrong not in text


def test_the_jira_library_searches_and_creates_against_the_sandbox(sandbox):
    client = jira.JIRA(server=sandbox.url, basic_auth=(DEMO_CREDENTIALS["email"], DEMO_CREDENTIALS["api_token"]))
    try:
        assert client.server_info()["deploymentType"] == "Cloud"
        assert client.myself()["emailAddress"] == DEMO_CREDENTIALS["email"]

        page = client.search_issues("project = RES AND labels = staffing ORDER BY key ASC", maxResults=25)
        assert len(page) == 25
        assert page[0].key == "RES-1" and page[0].fields.summary.startswith("Staff PRJ-101")
        everything_ = client.search_issues('project = RES AND updated >= "2024-01-01 00:00"', maxResults=False)
        assert len(everything_) == DELIVERY_ISSUES

        created = client.create_issue(
            project={"key": "RES"},
            summary="Staff PRJ-999: data architect",
            description="Raised through the jira library.",
            issuetype={"name": "Task"},
            labels=["staffing"],
        )
        assert created.key.startswith("RES-")
        assert created.fields.description == "Raised through the jira library."  # v2 speaks plain text
    finally:
        client.close()

    _, records, _ = everything(make_connector(sandbox, {**DEMO_CREDENTIALS, "jql": "project = RES"}))
    ours = next(r for r in records if r.data["key"] == created.key)
    assert ours.data["description"] == "Raised through the jira library."

    with pytest.raises(jira.JIRAError) as refused:
        jira.JIRA(server=sandbox.url, basic_auth=(DEMO_CREDENTIALS["email"], "wrong"), max_retries=0)
    assert refused.value.status_code == 401
