"""Workday connector against its sandbox over real HTTP: WS-Security and OAuth, effective-dated reads, 999-row
pages, SOAP faults, throttling, and zeep (the SOAP client most Python integrations use) against the served WSDL."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime

import pytest
import zeep
from zeep.transports import Transport
from zeep.wsse.username import UsernameToken

from connectors.base import AuthenticationFailed, ConnectorError, OutboundRecord, VendorError
from connectors.http import HttpPolicy, VendorSession
from connectors.sandbox.firm import Firm
from connectors.workday.client import WorkdayConnector
from connectors.workday.records import is_client_fault
from connectors.workday.sandbox import DEMO_CREDENTIALS, DEMO_OAUTH_CREDENTIALS, TENANT, create_app
from tests.connectors.kit import connector_maker, read_whole, sandbox_fixture

PEOPLE = 200
ENDPOINT = f"/ccx/service/{TENANT}/Human_Resources/v42.0"
TOKEN_PATH = f"/ccx/oauth2/{TENANT}/token"


sandbox = sandbox_fixture(lambda: create_app(Firm()))


@pytest.fixture(autouse=True)
def fresh_sandbox(sandbox):
    sandbox.reset()


make_connector = connector_maker(WorkdayConnector, DEMO_CREDENTIALS, backoff=(0.02, 0.1), own_connection=True)


def everything(connector, **kwargs):
    return read_whole(connector, "workers", **kwargs)


def at(moment: str) -> datetime:
    return datetime.fromisoformat(moment).replace(tzinfo=UTC)


def test_connection_with_an_integration_system_user_or_an_api_client(sandbox):
    result = make_connector(sandbox).test_connection()
    assert result.ok, result.message
    assert result.message == (
        f"Connected to Workday tenant {TENANT} (v42.0) as integration system user ISU_Integrations; 200 workers visible."
    )
    oauth = make_connector(sandbox, DEMO_OAUTH_CREDENTIALS).test_connection()
    assert oauth.ok and "as an API client" in oauth.message


@pytest.mark.parametrize(
    ("credentials", "message"),
    [
        (
            {**DEMO_CREDENTIALS, "password": "not-the-password"},
            "Workday refused the integration system user's name or password "
            "(SOAP-ENV:Client.authenticationError: invalid username or password).",
        ),
        (
            {**DEMO_OAUTH_CREDENTIALS, "refresh_token": "revoked-token"},
            "Workday refused the API client or its refresh token (HTTP 400: Invalid refresh token).",
        ),
        (
            {**DEMO_OAUTH_CREDENTIALS, "client_secret": "wrong"},
            "Workday refused the API client or its refresh token (HTTP 401: Invalid client credentials).",
        ),
    ],
)
def test_refused_credentials_are_understood_and_not_retried(sandbox, credentials, message):
    sandbox.clear_stats()
    connector = make_connector(sandbox, credentials)
    result = connector.test_connection()
    assert not result.ok and result.message == message
    with pytest.raises(AuthenticationFailed):
        everything(connector)
    assert sandbox.stats()["calls"] == 2  # one refusal per attempt: a SOAP Client fault is final


def test_a_full_read_pages_with_response_results_and_can_resume(sandbox):
    connector = make_connector(sandbox)
    connector.clock = lambda: at("2025-03-01T00:00:00")
    pages, records, rejects = everything(connector, page_size=60)
    assert [len(p.records) for p in pages] == [60, 60, 60, 20]
    assert [p.total for p in pages] == [PEOPLE] * 4
    assert [p.has_more for p in pages] == [True, True, True, False]
    assert pages[-1].cursor == "2025-03-01T00:00:00Z"  # a complete read stores the moment it was as of
    assert not rejects and len({r.external_id for r in records}) == PEOPLE

    # A read that stopped after page 2 resumes with page 3 of the same query, as of the same moment.
    resumed = list(connector.read("workers", since=pages[1].cursor, page_size=60))
    assert [r.external_id for p in resumed for r in p.records] == [r.external_id for p in pages[2:] for r in p.records]

    by_number = {r.data["Worker_ID"]: r.data for r in records}
    first = by_number["E1001"]
    assert first["Email_Address"] == Firm().person(1)["work_email"]
    assert (first["Base_Pay_Amount"], first["Base_Pay_Frequency"], first["Cost_Rate_Amount"]) == (
        "260000.00",
        "Annual",
        "190.00",
    )
    terminated = [r for r in records if r.data["Terminated"]]
    assert terminated and all(r.data["Termination_Date"] and not r.data["Active"] for r in terminated)
    assert any(r.data["Cost_Rate_Amount"] is None for r in records)  # the firm's people without a cost rate
    assert any(r.data["Manager_Worker_ID"] for r in records)
    # The firm's HR records without a work email have none in Workday; every worker has a department (its
    # supervisory organization), and none of them is rejected for the missing email.
    people = {p["employee_number"]: p for p in Firm().people()}
    no_email = {people_id for people_id, missing in Firm().hr_gaps().items() if missing == "work_email"}
    assert no_email and {number for number, data in by_number.items() if data["Email_Address"] is None} == {
        p["employee_number"] for p in people.values() if p["id"] in no_email
    }
    assert all(data["Supervisory_Organization"] for data in by_number.values())


def test_pages_never_ask_for_more_than_999_workers(sandbox):
    sandbox.seed(workers=1500)
    pages, records, _ = everything(make_connector(sandbox), page_size=5000)
    assert [len(p.records) for p in pages] == [999, 501]
    assert len(records) == 1500

    refused = make_connector(sandbox)
    with pytest.raises(VendorError, match="Count must be between 1 and 999"):
        refused.call("Get_Workers", refused._request(position=None, page=1, count=1000))


def test_an_incremental_read_finds_entries_and_changes_that_take_effect(sandbox):
    connector = make_connector(sandbox)
    connector.clock = lambda: at("2025-03-01T00:00:00")
    cursor = list(connector.read("workers"))[-1].cursor
    app = sandbox.app

    # Entered before the first read, effective after it: a future-dated promotion the first read must not show...
    app.enter(
        17,
        "Change Job",
        entered=at("2025-02-20T10:00:00"),
        effective=date(2025, 3, 5),
        business_title="Technology Manager",
        position_title="Technology Manager",
    )
    # ...an ordinary change entered after it...
    app.enter(42, "Change Location", entered=at("2025-03-03T12:00:00"), effective=date(2025, 3, 3), location="Berlin")
    # ...and a termination entered now, effective at the end of the month (still future at the next read).
    app.enter(
        120,
        "Terminate Employee",
        entered=at("2025-03-04T08:00:00"),
        effective=date(2025, 3, 31),
        active=False,
        terminated=True,
        termination_date="2025-03-31",
    )
    before = {r.data["Worker_ID"]: r.data for p in connector.read("workers") for r in p.records}
    assert before["E1017"]["Business_Title"] != "Technology Manager"

    connector.clock = lambda: at("2025-03-10T00:00:00")
    pages, records, _ = everything(connector, since=cursor)
    by_number = {r.data["Worker_ID"]: r for r in records}
    assert set(by_number) == {"E1017", "E1042", "E1120"}
    assert by_number["E1017"].data["Business_Title"] == "Technology Manager"  # found through its effective date
    assert by_number["E1042"].data["Location"] == "Berlin"  # found through its entry
    assert by_number["E1120"].data["Active"] and by_number["E1120"].data["Termination_Date"] is None  # not yet
    assert by_number["E1042"].updated_at == "2025-03-03T12:00:00Z"
    assert pages[-1].cursor == "2025-03-10T00:00:00Z"

    connector.clock = lambda: at("2025-04-01T00:00:00")
    _, later, _ = everything(connector, since=pages[-1].cursor)
    assert [r.data["Worker_ID"] for r in later] == ["E1120"]
    assert later[0].data["Terminated"] and later[0].data["Termination_Date"] == "2025-03-31"


def test_an_expired_oauth_token_is_refreshed_once(sandbox):
    connector = make_connector(sandbox, DEMO_OAUTH_CREDENTIALS)
    pages = connector.read("workers", page_size=100)
    assert len(next(pages).records) == 100
    sandbox.app.expire_tokens()
    assert len(next(pages).records) == 100
    assert sandbox.stats()["by_path"][TOKEN_PATH] == {"200": 2}


def test_malformed_workers_are_rejected_one_by_one(sandbox):
    sandbox.set_faults(malformed_every=9)
    _, records, rejects = everything(make_connector(sandbox))
    assert len(rejects) == PEOPLE // 9
    assert len(records) == PEOPLE - PEOPLE // 9
    assert {r.reason for r in rejects} == {"The worker has no WID.", "Hire_Date is not a date: '31/02/2019'"}
    assert all("<wd:Worker" in r.raw for r in rejects)


def test_server_faults_are_retried_and_client_faults_are_not(sandbox):
    sandbox.set_faults(error_every=2)
    connector = make_connector(sandbox)
    assert len(everything(connector, page_size=50)[1]) == PEOPLE
    assert sandbox.stats()["errors_injected"] >= 2

    sandbox.set_faults()
    sandbox.clear_stats()
    newer = make_connector(sandbox, {**DEMO_CREDENTIALS, "api_version": "v45.1"})
    result = newer.test_connection()
    assert not result.ok and "The web service version 'v45.1' is invalid for this tenant." in result.message
    assert sandbox.stats()["calls"] == 1


def test_throttling_is_honoured_and_a_budget_reads_10000_workers_without_one_429(sandbox):
    sandbox.set_faults(rate_limit={"calls": 2, "window": 1.0, "retry_after": 1})
    throttled = make_connector(sandbox)
    assert len(everything(throttled, page_size=50)[1]) == PEOPLE
    assert sandbox.stats()["rate_limited"] >= 1

    sandbox.seed(workers=10_000)
    sandbox.set_faults(rate_limit={"calls": 3, "window": 1.0})
    sandbox.clear_stats()
    budgeted = make_connector(sandbox, rate_per_second=2, burst=1)  # at most 1 + 2 * 1 = 3 calls a second
    pages, records, _ = everything(budgeted)
    assert len({r.external_id for r in records}) == 10_000
    assert len(pages) == 11 and pages[0].total == 10_000
    stats = sandbox.stats()
    assert stats["rate_limited"] == 0
    assert stats["max_calls_in_window"] <= 3


def test_the_connector_is_read_only(sandbox):
    with pytest.raises(ConnectorError):
        make_connector(sandbox).write("workers", [OutboundRecord(external_id="contoso-person-1", fields={})])


def test_zeep_calls_the_sandbox_through_the_http_policy(sandbox):
    session = VendorSession(policy=HttpPolicy.for_sandbox(sandbox.url, backoff_base=0.01), vendor="workday")
    session.final_answer_detector = is_client_fault  # a SOAP Client fault is an answer, not an outage
    wsdl = f"{sandbox.url}{ENDPOINT}?wsdl"
    user = f"{DEMO_CREDENTIALS['username']}@{TENANT}"
    client = zeep.Client(
        wsdl, transport=Transport(session=session), wsse=UsernameToken(user, DEMO_CREDENTIALS["password"])
    )
    answer = client.service.Get_Workers(
        Response_Filter={"Page": 2, "Count": 50},
        Response_Group={"Include_Reference": True, "Include_Personal_Information": True},
        version="v42.0",
    )
    assert (answer.Response_Results.Total_Results, answer.Response_Results.Total_Pages) == (PEOPLE, 4)
    worker = answer.Response_Data.Worker[0]
    assert worker.Worker_Data.Worker_ID == "E1051"
    assert worker.Worker_Reference.ID[0].type == "WID"
    assert worker.Worker_Data.Employment_Data.Worker_Status_Data.Hire_Date == date.fromisoformat(
        Firm().person(51)["hire_date"]
    )

    with pytest.raises(zeep.exceptions.Fault) as fault:
        client.service.Get_Workers(Response_Filter={"Page": 1, "Count": 5000})
    assert fault.value.code == "SOAP-ENV:Client.validationError"
    wrong = zeep.Client(wsdl, transport=Transport(session=session), wsse=UsernameToken(user, "wrong"))
    with pytest.raises(zeep.exceptions.Fault, match="invalid username or password"):
        wrong.service.Get_Workers(Response_Filter={"Page": 1, "Count": 1})


def test_credentials_never_reach_the_logs(sandbox, caplog):
    caplog.set_level(logging.DEBUG)
    sandbox.set_faults(error_every=3)
    everything(make_connector(sandbox))
    oauth = make_connector(sandbox, DEMO_OAUTH_CREDENTIALS)
    everything(oauth)
    wrong = "wd-wrong-password-0123456789"
    with pytest.raises(AuthenticationFailed) as refused:
        everything(make_connector(sandbox, {**DEMO_CREDENTIALS, "password": wrong}))
    assert caplog.records
    text = caplog.text + str(refused.value)
    for secret in (DEMO_CREDENTIALS["password"], DEMO_OAUTH_CREDENTIALS["refresh_token"], wrong, oauth._access_token):
        assert secret not in text
