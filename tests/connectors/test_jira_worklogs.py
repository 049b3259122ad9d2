"""Jira worklogs (the time logged on the firm's support tickets) read by the connector and the `jira` library
from the Jira sandbox over real HTTP."""

from __future__ import annotations

from datetime import datetime

import jira
import pytest
import requests

from connectors.jira.sandbox import DEMO_CREDENTIALS, create_app
from connectors.sandbox.firm import Firm
from connectors.sandbox.tickets import work_logs
from tests.connectors.kit import read_whole, sandbox_fixture
from tests.connectors.test_jira import make_connector

WORKLOG_BASE = 100000
AUTH = (DEMO_CREDENTIALS["email"], DEMO_CREDENTIALS["api_token"])


sandbox = sandbox_fixture(lambda: create_app(Firm()))


@pytest.fixture(autouse=True)
def fresh_sandbox(sandbox):
    sandbox.reset()


def everything(connector, **kwargs):
    return read_whole(connector, "worklogs", **kwargs)


def firm_logs() -> dict[str, dict]:
    return {str(WORKLOG_BASE + log["id"]): log for log in work_logs(Firm())}


def test_every_work_log_arrives_once_with_its_author_day_minutes_and_project_code(sandbox):
    sandbox.clear_stats()
    pages, records, rejects = everything(make_connector(sandbox))
    expected = firm_logs()
    assert not rejects
    assert sorted(r.external_id for r in records) == sorted(expected)
    for record in records:
        log = expected[record.external_id]
        assert record.data["author"]["emailAddress"] == log["person_email"]
        assert record.data["time_spent_minutes"] == log["minutes"]
        assert record.data["started_date"] == log["date"]
        assert record.data["issue"]["labels"][0] == log["code"]
        assert record.data["issue"]["key"].startswith("SUP-")
        assert record.data["comment"] == log["notes"]
    assert pages[-1].cursor == max(r.updated_at for r in records)
    calls = sandbox.stats()["by_path"]
    assert calls["/rest/api/3/worklog/updated"] == {"200": 1}
    assert calls["/rest/api/3/worklog/list"] == {"200": 1}


def test_reading_since_the_cursor_brings_the_watermark_and_what_changed_after_it(sandbox):
    connector = make_connector(sandbox)
    _, records, _ = everything(connector)
    cursor = max(r.updated_at for r in records)
    _, again, _ = everything(connector, since=cursor)
    assert {r.external_id for r in again} == {r.external_id for r in records if r.updated_at == cursor}

    added = requests.post(
        f"{sandbox.url}/rest/api/3/issue/SUP-2/worklog",
        json={"timeSpentSeconds": 5400, "started": "2023-01-04T10:00:00.000-0500"},
        auth=AUTH,
        timeout=10,
    )
    assert added.status_code == 201, added.text
    _, newer, _ = everything(connector, since=cursor)
    found = next(r for r in newer if r.external_id == added.json()["id"])
    assert (found.data["time_spent_minutes"], found.data["started_date"]) == (90, "2023-01-04")


def test_malformed_worklogs_are_rejected_one_by_one(sandbox):
    sandbox.set_faults(malformed_every=7)
    _, records, rejects = everything(make_connector(sandbox))
    # Every seventh worklog is served broken, and every seventh issue too (a worklog whose issue cannot be read
    # is refused as well): each refused alone, with its reason, and the rest arrive.
    assert len(rejects) >= len(firm_logs()) // 7
    assert len(records) + len(rejects) == len(firm_logs())
    assert {r.reason.split(":")[0] for r in rejects} == {
        "timeSpentSeconds is not a duration",
        "started is not a timestamp",
        "The worklog's issue cannot be seen by the API user.",
    }


def test_the_jira_library_reads_and_adds_worklogs(sandbox):
    client = jira.JIRA(server=sandbox.url, basic_auth=AUTH)
    try:
        worklogs = client.worklogs("SUP-1")
        assert len(worklogs) == 3
        assert {w.timeSpentSeconds // 60 for w in worklogs} <= {log["minutes"] for log in work_logs(Firm())}
        added = client.add_worklog("SUP-1", timeSpent="2h", started=datetime(2023, 1, 3, 9, 30).astimezone())
        assert added.timeSpentSeconds == 7200
    finally:
        client.close()
    _, records, _ = everything(make_connector(sandbox))
    assert str(added.id) in {r.external_id for r in records}
