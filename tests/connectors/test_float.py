"""The Float connector against its API v3 sandbox, over real HTTP on loopback."""

from __future__ import annotations

import logging
import time

import pytest
import requests

from connectors.base import AuthenticationFailed, OutboundRecord, WebhookRejected
from connectors.float.client import FloatConnector
from connectors.float.sandbox import DEMO_CREDENTIALS, create_app
from connectors.registry import get_connector_class
from connectors.sandbox.firm import Firm
from tests.connectors.kit import connector_maker, records_read, sandbox_fixture

pytestmark = pytest.mark.timeout(120)
FIRM = Firm()


sandbox = sandbox_fixture(lambda: create_app(FIRM))


@pytest.fixture(autouse=True)
def fresh(sandbox):
    sandbox.reset()


connect = connector_maker(FloatConnector, DEMO_CREDENTIALS)


def test_the_registry_offers_float_as_a_psa_without_webhooks():
    assert get_connector_class("float") is FloatConnector
    assert FloatConnector.category == "psa"
    assert FloatConnector.objects["people"].page_size == 200 and not FloatConnector.objects["logged-time"].writable
    with pytest.raises(WebhookRejected):
        FloatConnector.verify_webhook(secret="x", method="POST", url="/", headers={}, body=b"{}")


def test_connection_names_the_application_and_counts_people(sandbox):
    result = connect(sandbox).test_connection()

    assert result.ok, result.message
    assert "SysGenPro Connect (integrations@sysgenpro-demo.example)" in result.message
    assert result.detail["people"] == len(FIRM.people())


def test_a_call_without_an_application_user_agent_is_refused(sandbox):
    headers = {"Authorization": f"Bearer {DEMO_CREDENTIALS['token']}"}
    bare = requests.get(f"{sandbox.url}/v3/people", headers=headers, timeout=5)  # python-requests/x.y only
    nameless = connect(sandbox, {**DEMO_CREDENTIALS, "contact_email": ""}).test_connection()

    assert bare.status_code == 400 and "User-Agent" in bare.json()["message"]
    assert not nameless.ok and "User-Agent" in nameless.message


def test_a_wrong_token_is_understood(sandbox):
    connector = connect(sandbox, {**DEMO_CREDENTIALS, "token": "nope"})

    assert "Float refused the API token" in connector.test_connection().message
    with pytest.raises(AuthenticationFailed):
        records_read(connector, "people")


def test_the_schedule_holds_the_firm(sandbox):
    connector = connect(sandbox)

    people = {r.data["email"]: r for r in records_read(connector, "people")}
    projects = {r.data["project_code"]: r.data for r in records_read(connector, "projects")}
    clients = {r.external_id: r.data["name"] for r in records_read(connector, "clients")}

    assert set(people) == {p["work_email"] for p in FIRM.people()}
    assert set(projects) == {p["code"] for p in FIRM.psa_projects()}
    project = FIRM.projects()[0]
    assert clients[str(projects[project["code"]]["client_id"])] == project["customer_name"]
    assert people[FIRM.people()[0]["work_email"]].data["department"]["name"] == FIRM.people()[0]["department"]


def test_pages_follow_the_pagination_headers(sandbox):
    sandbox.clear_stats()
    pages = list(connect(sandbox).read("logged-time"))

    assert [len(p.records) for p in pages] == [200] * 15
    assert pages[0].total == FIRM.time_entry_count and not pages[-1].has_more
    assert [p.cursor for p in pages[:-1]] == [None] * 14 and pages[-1].cursor  # only once the read is whole
    entry = FIRM.time_entry(0)
    first = pages[0].records[0].data
    assert (first["date"], first["people_id"], first["locked"]) == (
        entry["date"],
        entry["person_id"],
        int(entry["approved"]),
    )
    assert sandbox.stats()["by_path"]["/v3/logged-time"] == {"200": 15}


def test_modified_since_returns_only_what_changed(sandbox):
    connector = connect(sandbox)
    cursor = list(connector.read("people"))[-1].cursor
    person = records_read(connector, "people")[5]
    time.sleep(1.1)

    changed = connector.write("people", [OutboundRecord("x", {"job_title": "Principal"}, target_id=person.external_id)])
    again = records_read(connector, "people", since=cursor)

    assert changed[0].outcome == "updated"
    assert [r.external_id for r in again] == [person.external_id]


def test_logged_time_since_a_cursor_starts_at_that_moment(sandbox):
    middle = FIRM.time_entry(1500)["updated_at"]

    read = records_read(connect(sandbox), "logged-time", since=middle)

    assert len(read) == FIRM.time_entry_count - 1500 and read[0].data["date"] == FIRM.time_entry(1500)["date"]


def test_people_written_twice_create_nothing_new_and_are_found_by_email(sandbox):
    batch = [
        OutboundRecord(f"contoso-resource-{i}", {"name": f"New Hire {i}", "email": f"new.hire{i}@haldenrowe.example"})
        for i in range(20)
    ]
    existing = FIRM.people()[3]
    linked = OutboundRecord("contoso-resource-x", {"name": existing["display_name"], "email": existing["work_email"]})
    connector = connect(sandbox)

    first = connector.write("people", [*batch, linked])
    second = connector.write("people", [*batch, linked])

    assert {r.outcome for r in first[:-1]} == {"created"} and {r.outcome for r in second} == {"unchanged"}
    assert first[-1].outcome == "unchanged" and first[-1].target_id == str(existing["id"])
    assert [r.target_id for r in first] == [r.target_id for r in second]
    assert len(sandbox.app.tables["people"]) == len(FIRM.people()) + 20


def test_a_refused_allocation_fails_alone(sandbox):
    results = connect(sandbox).write(
        "tasks",
        [
            OutboundRecord(
                "a-1",
                {"project_id": 1, "people_id": 2, "start_date": "2026-03-02", "end_date": "2026-03-27", "hours": 6},
            ),
            OutboundRecord(
                "a-2",
                {"project_id": 9999, "people_id": 2, "start_date": "2026-03-02", "end_date": "2026-03-27", "hours": 6},
            ),
        ],
    )

    assert [r.outcome for r in results] == ["created", "failed"]
    assert results[1].error_code == "VALIDATION" and "project_id: Project is invalid." in results[1].error_message


def test_a_10000_record_read_stays_inside_the_rate_budget(sandbox):
    sandbox.seed(logged_time=10000)
    sandbox.set_faults(rate_limit={"calls": 3, "window": 1.0})
    sandbox.clear_stats()

    read = records_read(connect(sandbox, rate_per_second=2.5, burst=1), "logged-time")

    stats = sandbox.stats()
    assert len(read) == 10000
    assert stats["rate_limited"] == 0 and stats["max_calls_in_window"] <= 3
    assert stats["calls"] == 50


def test_throttling_answers_are_waited_out(sandbox):
    sandbox.set_faults(rate_limit={"calls": 3, "window": 1.0, "retry_after": 1})

    read = records_read(connect(sandbox), "logged-time")

    assert len(read) == FIRM.time_entry_count and sandbox.stats()["rate_limited"] >= 1


def test_server_errors_are_retried(sandbox):
    sandbox.set_faults(error_every=3)

    read = records_read(connect(sandbox), "logged-time")

    assert len(read) == FIRM.time_entry_count and sandbox.stats()["errors_injected"] >= 1


def test_malformed_rows_are_rejected_one_by_one(sandbox):
    sandbox.set_faults(malformed_every=10)

    pages = list(connect(sandbox).read("projects"))

    rejects = [r for p in pages for r in p.rejects]
    assert len(rejects) == len(FIRM.psa_projects()) // 10
    reasons = {r.reason for r in rejects}
    assert "Float returned a record without its project_id." in reasons and any("modified" in r for r in reasons)


def test_secrets_stay_out_of_the_logs(sandbox, caplog):
    caplog.set_level(logging.DEBUG)
    sandbox.set_faults(error_every=2)
    records_read(connect(sandbox), "logged-time")

    assert sandbox.stats()["errors_injected"] >= 1
    assert DEMO_CREDENTIALS["token"] not in caplog.text
