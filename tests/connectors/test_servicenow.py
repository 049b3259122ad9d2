"""ServiceNow connector (and ServiceNow's own `pysnc`) against the ServiceNow sandbox over real HTTP."""

from __future__ import annotations

import logging

import pytest
import requests
from pysnc import ServiceNowClient
from pysnc.exceptions import AuthenticationException

from connectors.base import AuthenticationFailed
from connectors.sandbox import serve_in_thread
from connectors.sandbox.firm import Firm
from connectors.sandbox.server import self_signed_certificate
from connectors.sandbox.tickets import support_tickets, work_logs
from connectors.servicenow.client import ServiceNowConnector
from connectors.servicenow.sandbox import DEMO_CREDENTIALS, create_app
from connectors.servicenow.sandbox.state import sys_id
from tests.connectors.kit import connector_maker, read_whole, sandbox_fixture

AUTH = (DEMO_CREDENTIALS["username"], DEMO_CREDENTIALS["password"])
TABLE = "/api/now/table/task_time_worked"


sandbox = sandbox_fixture(lambda: create_app(Firm()))


@pytest.fixture(autouse=True)
def fresh_sandbox(sandbox):
    sandbox.reset()


make_connector = connector_maker(ServiceNowConnector, DEMO_CREDENTIALS, backoff=(0.02, 0.1), own_connection=True)


def everything(connector, **kwargs):
    return read_whole(connector, "task_time_worked", **kwargs)


def firm_logs() -> dict[str, dict]:
    return {sys_id("task_time_worked", log["id"]): log for log in work_logs(Firm())}


def test_connection_names_the_user_and_the_time_it_sees(sandbox):
    result = make_connector(sandbox).test_connection()
    assert result.ok, result.message
    assert result.message.endswith(f"as Integration Sync; {len(firm_logs())} time worked records visible.")


def test_a_wrong_password_fails_clearly(sandbox):
    connector = make_connector(sandbox, {**DEMO_CREDENTIALS, "password": "wrong"})
    result = connector.test_connection()
    assert not result.ok
    assert result.message == (
        "ServiceNow refused the user name and password (HTTP 401: User Not Authenticated: "
        "Required to provide Auth information)."
    )
    with pytest.raises(AuthenticationFailed):
        everything(connector)


def test_every_work_log_arrives_once_with_its_user_day_minutes_and_group(sandbox):
    pages, records, rejects = everything(make_connector(sandbox), page_size=7)
    expected = firm_logs()
    assert not rejects
    assert sorted(r.external_id for r in records) == sorted(expected)
    for record in records:
        log = expected[record.external_id]
        assert record.data["user"]["email"] == log["person_email"]
        assert (record.data["minutes"], record.data["work_date"]) == (log["minutes"], log["date"])
        assert record.data["task"]["assignment_group"]["name"].split()[0] == log["code"]
        assert record.data["task"]["number"].startswith("INC")
    assert [r.updated_at for r in records] == sorted(r.updated_at for r in records)
    assert [p.total for p in pages] == [len(expected)] * len(pages)
    assert pages[-1].cursor == records[-1].updated_at


def test_a_read_past_ten_thousand_rows_pages_by_keyset_where_offsets_stop(sandbox):
    sandbox.seed(task_time_worked=12_000)
    # Offsets stop at the 10,000th row, though X-Total-Count says how many match.
    deep = requests.get(f"{sandbox.url}{TABLE}", params={"sysparm_offset": 10_000, "sysparm_limit": 100},
                        auth=AUTH, timeout=30)  # fmt: skip
    assert deep.json()["result"] == [] and deep.headers["X-Total-Count"] == "12000"
    first = requests.get(f"{sandbox.url}{TABLE}", params={"sysparm_limit": 5000, "sysparm_fields": "sys_id"},
                         auth=AUTH, timeout=30)  # fmt: skip
    assert 'rel="next"' in first.headers["Link"] and "sysparm_offset=5000" in first.headers["Link"]

    sandbox.set_faults(rate_limit={"calls": 4, "window": 1.0, "retry_after": 1})
    sandbox.clear_stats()
    _, records, rejects = everything(make_connector(sandbox, rate_per_second=3, burst=1), page_size=1000)
    assert len({r.external_id for r in records}) == len(records) == 12_000 and not rejects
    stats = sandbox.stats()
    assert stats["rate_limited"] == 0 and stats["max_calls_in_window"] <= 4


def test_reading_since_the_cursor_brings_its_second_again_and_what_changed_after(sandbox):
    connector = make_connector(sandbox)
    _, records, _ = everything(connector)
    cursor = records[-1].updated_at
    _, again, _ = everything(connector, since=cursor)
    assert {r.external_id for r in again} == {r.external_id for r in records if r.updated_at == cursor}

    incident = sys_id("incident", support_tickets(Firm())[3]["id"])
    added = requests.post(f"{sandbox.url}{TABLE}", json={"task": incident, "user": records[0].data["user"]["sys_id"],
                                                         "time_in_seconds": 2700, "work_date": "2023-01-05"},
                          auth=AUTH, timeout=10)  # fmt: skip
    assert added.status_code == 201, added.text
    _, newer, _ = everything(connector, since=cursor)
    found = next(r for r in newer if r.external_id == added.json()["result"]["sys_id"])
    assert (found.data["minutes"], found.data["work_date"]) == (45, "2023-01-05")


def test_a_rate_limit_answers_as_servicenow_does_and_is_obeyed(sandbox):
    sandbox.set_faults(rate_limit={"calls": 2, "window": 0.5, "retry_after": 1})
    limited = [requests.get(f"{sandbox.url}{TABLE}", auth=AUTH, timeout=10) for _ in range(3)][-1]
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "1"
    assert {"X-RateLimit-Limit", "X-RateLimit-Reset", "X-RateLimit-Rule"} <= set(limited.headers)
    assert limited.json()["status"] == "failure"
    _, records, _ = everything(make_connector(sandbox), page_size=20)
    assert len(records) == len(firm_logs())
    assert sandbox.stats()["rate_limited"] >= 1

    sandbox.set_faults(error_every=2)
    _, records, _ = everything(make_connector(sandbox), page_size=20)
    assert len(records) == len(firm_logs())


def test_malformed_rows_are_rejected_one_by_one(sandbox):
    sandbox.set_faults(malformed_every=4)
    _, records, rejects = everything(make_connector(sandbox), page_size=20)
    assert len(rejects) == len(firm_logs()) // 4
    assert len(records) + len(rejects) == len(firm_logs())
    assert {r.reason.split(":")[0] for r in rejects} == {"sys_updated_on is not a timestamp",
                                                         "time_in_seconds is not a duration"}  # fmt: skip


def test_the_password_never_reaches_the_logs(sandbox, caplog):
    caplog.set_level(logging.DEBUG)
    sandbox.set_faults(error_every=3)
    connector = make_connector(sandbox)
    assert connector.test_connection().ok
    everything(connector, page_size=25)
    wrong = "Wrong-Password-0192837465"
    with pytest.raises(AuthenticationFailed) as refused:
        everything(make_connector(sandbox, {**DEMO_CREDENTIALS, "password": wrong}))
    text = caplog.text + str(refused.value)
    assert caplog.records and DEMO_CREDENTIALS["password"] not in text and wrong not in text


def test_pysnc_queries_and_inserts_against_the_sandbox_over_tls(tmp_path, monkeypatch):
    certificate, key = self_signed_certificate(tmp_path)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certificate)  # pysnc's session takes the environment's over `verify`
    running = serve_in_thread(create_app(Firm()), tls=(certificate, key))  # pysnc speaks https only
    try:
        client = ServiceNowClient(running.url, AUTH, verify=certificate)
        incidents = client.GlideRecord("incident", batch_size=7)
        incidents.add_query("number", "STARTSWITH", "INC")
        incidents.query()
        numbers = [incidents.get_value("number") for _ in incidents]
        assert len(numbers) == len(support_tickets(Firm())) == incidents.get_row_count()
        assert incidents.get_display_value("assignment_group").startswith("PRJ-")

        worked = client.GlideRecord("task_time_worked")
        worked.initialize()
        worked.task = sys_id("incident", 1)
        worked.time_in_seconds = "1800"
        worked.work_date = "2023-01-03"
        created = worked.insert()
        again = client.GlideRecord("task_time_worked")
        assert again.get(created) and again.get_value("time_in_seconds") == "1800"

        with pytest.raises(AuthenticationException):
            refused = ServiceNowClient(running.url, (AUTH[0], "wrong"), verify=certificate).GlideRecord("incident")
            refused.query()
    finally:
        running.stop()
