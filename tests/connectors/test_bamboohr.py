"""BambooHR connector against its sandbox over real HTTP: API key auth, reports, changed-since reads, throttling."""

from __future__ import annotations

import logging

import pytest
import requests

from connectors.bamboohr.client import BambooHRConnector
from connectors.bamboohr.sandbox import COMPANY, DEMO_CREDENTIALS, create_app
from connectors.base import AuthenticationFailed, ConnectorError, OutboundRecord
from connectors.sandbox.firm import Firm
from tests.connectors.kit import connector_maker, read_whole, sandbox_fixture

PEOPLE = 200
REPORT_PATH = f"/api/gateway.php/{COMPANY}/v1/reports/custom"
CHANGED_PATH = f"/api/gateway.php/{COMPANY}/v1/employees/changed"


sandbox = sandbox_fixture(lambda: create_app(Firm()))


@pytest.fixture(autouse=True)
def fresh_sandbox(sandbox):
    sandbox.reset()
    yield
    sandbox.app.throttle_status = 503


make_connector = connector_maker(BambooHRConnector, DEMO_CREDENTIALS, backoff=(0.02, 0.1), own_connection=True)


def hr_update(sandbox, employee_id: int, **fields) -> None:
    """What an HR administrator's change looks like: BambooHR's own update-employee call."""
    response = requests.post(
        f"{sandbox.url}/api/gateway.php/{COMPANY}/v1/employees/{employee_id}",
        json=fields,
        auth=(DEMO_CREDENTIALS["api_key"], "x"),
        headers={"Accept": "application/json"},
        timeout=10,
    )
    assert response.status_code == 200, response.headers


def everything(connector, **kwargs):
    return read_whole(connector, "employees", **kwargs)


def test_connection_names_the_api_key_owner(sandbox):
    result = make_connector(sandbox).test_connection()
    assert result.ok, result.message
    assert result.message.startswith(f"Connected to BambooHR company {COMPANY} as ")


def test_a_wrong_api_key_or_company_fails_clearly(sandbox):
    connector = make_connector(sandbox, {**DEMO_CREDENTIALS, "api_key": "not-the-key"})
    result = connector.test_connection()
    assert not result.ok
    assert "BambooHR refused the API key (HTTP 401)" in result.message
    with pytest.raises(AuthenticationFailed):
        everything(connector)

    result = make_connector(sandbox, {**DEMO_CREDENTIALS, "company_domain": "initech"}).test_connection()
    assert not result.ok
    assert "no company 'initech'" in result.message


def test_a_full_read_is_one_report_cut_into_pages(sandbox):
    sandbox.clear_stats()
    pages, records, rejects = everything(make_connector(sandbox), page_size=60)
    assert [len(p.records) for p in pages] == [60, 60, 60, 20]
    assert [p.has_more for p in pages] == [True, True, True, False]
    assert not rejects
    assert len({r.external_id for r in records}) == PEOPLE
    assert [p.cursor for p in pages] == sorted(p.cursor for p in pages)
    assert sandbox.stats()["by_path"] == {REPORT_PATH: {"200": 1}}  # BambooHR does not paginate

    # The data-quality cases the engine's exceptions are there for.
    terminated = [r for r in records if r.data["status"] == "Inactive"]
    assert terminated and all(r.data["terminationDate"] for r in terminated)
    assert all(r.data["terminationDate"] is None for r in records if r.data["status"] == "Active")
    assert any(r.data["department"] is None for r in records)
    assert any(r.data["workEmail"] is None for r in records)
    sample = records[0].data
    assert sample["payRate"].endswith(("USD", "GBP", "EUR")) and sample["hireDate"]


def test_reading_since_a_cursor_returns_only_the_changed_employees(sandbox):
    connector = make_connector(sandbox)
    cursor = list(connector.read("employees"))[-1].cursor

    hr_update(sandbox, 17, jobTitle="Technology Manager")
    hr_update(sandbox, 42, department="Technology")  # the missing department gets fixed
    hr_update(sandbox, 120, status="Inactive", terminationDate="2024-06-30")
    new = requests.post(
        f"{sandbox.url}/api/gateway.php/{COMPANY}/v1/employees",
        json={"firstName": "Ada", "lastName": "Byrne", "workEmail": "ada.byrne@haldenrowe.example"},
        auth=(DEMO_CREDENTIALS["api_key"], "x"),
        headers={"Accept": "application/json"},
        timeout=10,
    )
    new_id = new.headers["Location"].rsplit("/", 1)[-1]
    sandbox.app.remove_employee(33)

    sandbox.clear_stats()
    pages, records, _ = everything(connector, since=cursor, page_size=3)
    assert len(pages) >= 2 and pages[-1].has_more is False
    by_id = {r.external_id: r for r in records}
    assert {"17", "42", "120", new_id, "33"} <= set(by_id)
    assert len(by_id) <= 7  # the changes, plus the employees exactly at the watermark
    assert all(r.updated_at >= cursor for r in records)
    assert by_id["17"].data["jobTitle"] == "Technology Manager"
    assert by_id["17"].data["action"] == "Updated"
    assert by_id["42"].data["department"] == "Technology"
    assert by_id["120"].data["terminationDate"] == "2024-06-30"
    assert by_id[new_id].data["action"] == "Inserted"
    assert by_id["33"].data["action"] == "Deleted"
    calls = sandbox.stats()["by_path"]
    assert calls[CHANGED_PATH] == {"200": 1} and calls[REPORT_PATH] == {"200": 1}

    latest = pages[-1].cursor
    quiet = list(connector.read("employees", since=latest))
    assert all(r.updated_at >= latest for p in quiet for r in p.records)


def test_malformed_employees_are_rejected_and_the_rest_arrive(sandbox):
    sandbox.set_faults(malformed_every=9)
    _, records, rejects = everything(make_connector(sandbox))
    assert len(rejects) == PEOPLE // 9
    assert len(records) == PEOPLE - PEOPLE // 9
    assert {r.reason for r in rejects} == {"The employee has no id.", "hireDate is not a date: '31/02/2019'"}


def test_server_errors_are_retried(sandbox):
    sandbox.set_faults(error_every=2)
    connector = make_connector(sandbox)
    assert connector.test_connection().ok
    _, records, _ = everything(connector)
    assert len(records) == PEOPLE
    assert sandbox.stats()["errors_injected"] >= 1


@pytest.mark.parametrize("throttle_status", [503, 429])
def test_throttling_is_honoured_and_a_budget_stays_under_it(sandbox, throttle_status):
    sandbox.app.throttle_status = throttle_status
    sandbox.set_faults(rate_limit={"calls": 2, "window": 0.5, "retry_after": 1})
    connector = make_connector(sandbox)
    assert connector.test_connection().ok
    for _ in range(2):
        assert len(everything(connector)[1]) == PEOPLE
    stats = sandbox.stats()
    assert stats["rate_limited"] >= 1
    assert stats["by_path"][REPORT_PATH].get(str(throttle_status), 0) >= 1

    sandbox.set_faults(rate_limit={"calls": 2, "window": 0.5, "retry_after": 1})
    sandbox.clear_stats()
    budgeted = make_connector(sandbox, rate_per_second=2, burst=1)  # at most 1 + 2 * 0.5 = 2 calls a half second
    assert budgeted.test_connection().ok
    for _ in range(2):
        assert len(everything(budgeted)[1]) == PEOPLE
    stats = sandbox.stats()
    assert stats["rate_limited"] == 0
    assert stats["max_calls_in_window"] <= 2


def test_the_connector_is_read_only(sandbox):
    with pytest.raises(ConnectorError):
        make_connector(sandbox).write("employees", [OutboundRecord(external_id="1", fields={})])


def test_the_api_key_never_reaches_the_logs(sandbox, caplog):
    caplog.set_level(logging.DEBUG)
    sandbox.set_faults(error_every=3)
    connector = make_connector(sandbox)
    assert connector.test_connection().ok
    everything(connector)
    wrong = "bhr-wrong-key-0123456789abcdef"
    with pytest.raises(AuthenticationFailed) as refused:
        everything(make_connector(sandbox, {**DEMO_CREDENTIALS, "api_key": wrong}))
    assert caplog.records
    text = caplog.text + str(refused.value)
    assert DEMO_CREDENTIALS["api_key"] not in text
    assert wrong not in text
