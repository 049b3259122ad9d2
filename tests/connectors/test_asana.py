"""Asana connector (and the official `asana` library) against the Asana sandbox over real HTTP."""

from __future__ import annotations

import logging

import asana
import pytest
import requests
from asana.rest import ApiException

from connectors.asana.client import AsanaConnector
from connectors.asana.sandbox import DEMO_CREDENTIALS, create_app
from connectors.base import AuthenticationFailed
from connectors.sandbox.firm import Firm
from connectors.sandbox.tickets import support_queues, work_logs
from tests.connectors.kit import connector_maker, read_whole, sandbox_fixture

ENTRY_BASE = 1205000000000000
TOKEN = DEMO_CREDENTIALS["access_token"]


sandbox = sandbox_fixture(lambda: create_app(Firm()))


@pytest.fixture(autouse=True)
def fresh_sandbox(sandbox):
    sandbox.reset()


make_connector = connector_maker(AsanaConnector, DEMO_CREDENTIALS, backoff=(0.02, 0.1), own_connection=True)


def everything(connector, **kwargs):
    return read_whole(connector, "time_tracking_entries", **kwargs)


def firm_logs() -> dict[str, dict]:
    """The firm's work logs as Asana must serve them, by entry gid."""
    return {str(ENTRY_BASE + log["id"]): log for log in work_logs(Firm())}


def api(method: str, sandbox, path: str, **kwargs) -> requests.Response:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    return requests.request(method, f"{sandbox.url}/api/1.0/{path}", headers=headers, timeout=10, **kwargs)


def test_connection_names_the_workspace_the_user_and_what_it_sees(sandbox):
    result = make_connector(sandbox).test_connection()
    assert result.ok, result.message
    assert result.message == (
        "Connected to Asana workspace Halden & Rowe as integration@haldenrowe.example; "
        f"{len(support_queues(Firm()))} projects visible."
    )


def test_a_revoked_token_fails_clearly(sandbox):
    connector = make_connector(sandbox, {"access_token": "2/1201/999:revoked"})
    result = connector.test_connection()
    assert not result.ok
    assert result.message.startswith("Asana refused the personal access token (HTTP 401: Not Authorized)")
    with pytest.raises(AuthenticationFailed):
        everything(connector)


def test_every_work_log_arrives_once_with_its_person_project_and_minutes(sandbox):
    sandbox.clear_stats()
    pages, records, rejects = everything(make_connector(sandbox), page_size=2)
    expected = firm_logs()
    assert not rejects
    assert sorted(r.external_id for r in records) == sorted(expected)
    for record in records:
        log = expected[record.external_id]
        assert record.data["created_by"]["email"] == log["person_email"]
        assert record.data["duration_minutes"] == log["minutes"]
        assert record.data["entered_on"] == log["date"]
        assert record.data["project"]["name"].split()[0] == log["code"]
    # Offset pages of two: every task's three entries take two calls; only the last page carries the cursor.
    assert [p.cursor is None for p in pages[:-1]] == [True] * (len(pages) - 1)
    assert pages[-1].cursor == max(r.updated_at for r in records)
    tasks = len({r.data["task"]["gid"] for r in records})
    calls = sandbox.stats()["by_path"]
    entry_calls = sum(counts.get("200", 0) for path, counts in calls.items() if path.endswith("/time_tracking_entries"))
    assert entry_calls == 2 * tasks


def test_reading_since_the_cursor_brings_only_tasks_whose_time_changed(sandbox):
    connector = make_connector(sandbox)
    _, records, _ = everything(connector)
    cursor = max(r.updated_at for r in records)
    _, again, _ = everything(connector, since=cursor)
    newest = {r.data["task"]["gid"] for r in records if r.updated_at == cursor}
    assert {r.data["task"]["gid"] for r in again} == newest  # the watermark's own task comes back, nothing older

    task = records[0].data["task"]["gid"]
    created = api("POST", sandbox, f"tasks/{task}/time_tracking_entries",
                  json={"data": {"duration_minutes": 45, "entered_on": "2023-01-04"}})  # fmt: skip
    assert created.status_code == 201, created.text
    _, newer, _ = everything(connector, since=cursor)
    assert created.json()["data"]["gid"] in {r.external_id for r in newer}
    assert {r.data["task"]["gid"] for r in newer} == newest | {task}


def test_a_limit_over_one_hundred_and_a_foreign_offset_are_refused_as_asana_does(sandbox):
    too_many = api("GET", sandbox, "projects", params={"workspace": "1201000000000001", "limit": 101})
    assert too_many.status_code == 400
    assert too_many.json() == {"errors": [{"message": "limit: Must be between 1 and 100"}]}
    first = api("GET", sandbox, "projects", params={"workspace": "1201000000000001", "limit": 3}).json()
    assert len(first["data"]) == 3 and first["next_page"]["offset"]
    foreign = api("GET", sandbox, "tasks", params={"project": first["data"][0]["gid"], "limit": 3,
                                                   "offset": first["next_page"]["offset"]})  # fmt: skip
    assert foreign.status_code == 400


def test_ten_thousand_entries_are_read_under_the_rate_limit_without_a_429_of_our_own(sandbox):
    sandbox.seed(time_tracking_entries=10_000 + len(firm_logs()))
    sandbox.set_faults(rate_limit={"calls": 30, "window": 1.0, "retry_after": 1})
    sandbox.clear_stats()
    _, records, rejects = everything(make_connector(sandbox, rate_per_second=25, burst=1))
    assert len(records) == 10_000 + len(firm_logs()) and not rejects
    stats = sandbox.stats()
    assert stats["rate_limited"] == 0
    assert stats["max_calls_in_window"] <= 30


def test_rate_limits_and_server_errors_are_retried(sandbox):
    sandbox.set_faults(rate_limit={"calls": 3, "window": 0.5, "retry_after": 1})
    limited = [api("GET", sandbox, "users/me") for _ in range(4)][-1]
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "1"
    assert limited.json()["errors"][0]["message"].startswith("You have made too many requests recently")
    _, records, _ = everything(make_connector(sandbox))
    assert len(records) == len(firm_logs())
    assert sandbox.stats()["rate_limited"] >= 1

    sandbox.set_faults(error_every=3)
    _, records, _ = everything(make_connector(sandbox))
    assert len(records) == len(firm_logs())
    assert sandbox.stats()["errors_injected"] >= 2


def test_malformed_entries_are_rejected_one_by_one_and_the_rest_arrive(sandbox):
    sandbox.set_faults(malformed_every=3)
    _, records, rejects = everything(make_connector(sandbox))
    assert len(rejects) == len(firm_logs()) // 3  # the third entry of every task's page
    assert len(records) + len(rejects) == len(firm_logs())
    assert {r.reason.split(":")[0] for r in rejects} <= {"duration_minutes is not a number of minutes",
                                                         "entered_on is not a date"}  # fmt: skip


def test_the_token_never_reaches_the_logs(sandbox, caplog):
    caplog.set_level(logging.DEBUG)
    sandbox.set_faults(error_every=4)
    connector = make_connector(sandbox)
    assert connector.test_connection().ok
    everything(connector)
    wrong = "2/1201000000000009/55555:0123456789abcdef"
    with pytest.raises(AuthenticationFailed) as refused:
        everything(make_connector(sandbox, {"access_token": wrong}))
    assert caplog.records
    text = caplog.text + str(refused.value)
    assert TOKEN not in text and wrong not in text


def test_the_asana_library_reads_and_logs_time_against_the_sandbox(sandbox):
    configuration = asana.Configuration()
    configuration.access_token = TOKEN
    configuration.host = f"{sandbox.url}/api/1.0"
    client = asana.ApiClient(configuration)
    me = asana.UsersApi(client).get_user("me", {"opt_fields": "email,workspaces"})
    assert me["email"] == "integration@haldenrowe.example"
    workspace = me["workspaces"][0]["gid"]
    projects = list(asana.ProjectsApi(client).get_projects_for_workspace(workspace, {"limit": 4, "opt_fields": "name"}))
    assert len(projects) == len(support_queues(Firm()))  # the library followed next_page.offset
    assert projects[0]["name"].startswith("PRJ-1O5 ")  # the queue set up with its code mistyped
    tasks = list(asana.TasksApi(client).get_tasks({"project": projects[1]["gid"], "opt_fields": "name,modified_at"}))
    entries_api = asana.TimeTrackingEntriesApi(client)
    entries = list(entries_api.get_time_tracking_entries_for_task(tasks[0]["gid"], {"limit": 2}))
    assert len(entries) == 3 and all(e["duration_minutes"] > 0 for e in entries)

    created = entries_api.create_time_tracking_entry(
        {"data": {"duration_minutes": 30, "entered_on": "2023-01-03"}}, tasks[0]["gid"], {}
    )
    assert created["duration_minutes"] == 30 and created["created_by"]["gid"] == me["gid"]
    _, records, _ = everything(make_connector(sandbox))
    assert created["gid"] in {r.external_id for r in records}

    configuration.access_token = "2/1201/999:revoked"
    with pytest.raises(ApiException) as refused:
        asana.UsersApi(asana.ApiClient(configuration)).get_user("me", {})
    assert refused.value.status == 401
