"""The Certinia PSA connector against its sandbox (the Salesforce platform with the pse__ package), over HTTP."""

from __future__ import annotations

import logging
import time
from datetime import date
from decimal import Decimal

import pytest

from connectors.base import AuthenticationFailed, OutboundRecord
from connectors.certinia.client import CertiniaConnector
from connectors.certinia.sandbox import DEMO_CREDENTIALS, create_app
from connectors.registry import get_connector_class
from connectors.sandbox.firm import Firm
from tests.connectors.kit import connector_maker, records_read, sandbox_fixture, simple_salesforce_on

pytestmark = pytest.mark.timeout(120)
FIRM = Firm()


sandbox = sandbox_fixture(lambda: create_app(FIRM))


@pytest.fixture(autouse=True)
def fresh_org(sandbox):
    sandbox.reset()


connect = connector_maker(CertiniaConnector, DEMO_CREDENTIALS)


def first_id(connector, object_name) -> str:
    return next(connector.read(object_name)).records[0].external_id


def test_the_registry_offers_certinia_as_a_psa():
    assert get_connector_class("certinia") is CertiniaConnector
    assert CertiniaConnector.category == "psa"
    assert CertiniaConnector.objects["pse__Timecard_Header__c"].batch_size == 200
    assert "approved_only" in {f.name for f in CertiniaConnector.form_fields()}


def test_connection_names_the_user_and_finds_the_external_id_field(sandbox):
    result = connect(sandbox).test_connection()

    assert result.ok, result.message
    assert f"Connected to Certinia PSA at {sandbox.host} as {DEMO_CREDENTIALS['username']}" in result.message
    assert result.detail["objects_missing_external_id"] == []


def test_a_wrong_password_is_understood(sandbox):
    connector = connect(sandbox, {**DEMO_CREDENTIALS, "password": "wrong"})

    assert "Certinia PSA refused the sign-in: authentication failure" in connector.test_connection().message
    with pytest.raises(AuthenticationFailed):
        records_read(connector, "pse__Proj__c")


def test_projects_carry_their_code_account_and_the_psa_only_phases(sandbox):
    projects = {r.data["pse__Project_ID__c"]: r.data for r in records_read(connect(sandbox), "pse__Proj__c")}

    assert len(projects) == len(FIRM.psa_projects())
    first = FIRM.projects()[0]
    assert projects[first["code"]]["Name"] == first["name"][:80]
    assert projects[first["code"]]["pse__Account__r"]["Name"] == first["customer_name"]
    phase = FIRM.psa_only_projects()[0]
    parent = FIRM.project(phase["parent_id"])
    assert projects[phase["code"]]["pse__Parent_Project__c"] == next(
        r.external_id
        for r in records_read(connect(sandbox), "pse__Proj__c")
        if r.data["pse__Project_ID__c"] == parent["code"]
    )


def test_resources_are_contacts_with_the_cost_rate_on_the_contact(sandbox):
    connector = connect(sandbox)
    resources = {r.data["Email"]: r.data for r in records_read(connector, "Contact")}

    people = FIRM.people()
    assert len(resources) == len(people)
    without_rate = [p for p in people if p["cost_rate"] is None]
    assert without_rate, "the firm has people without a cost rate, on purpose"
    assert all(resources[p["work_email"]]["pse__Default_Cost_Rate__c"] is None for p in without_rate)
    someone = next(p for p in people if p["cost_rate"])
    assert Decimal(str(resources[someone["work_email"]]["pse__Default_Cost_Rate__c"])) == Decimal(someone["cost_rate"])
    assert resources[someone["work_email"]]["Employee_Number__c"] == someone["employee_number"]
    # A customer's contact is not a resource: reads leave it out.
    connector.write("Contact", [OutboundRecord("contoso-contact-1", {"LastName": "Buyer", "Email": "b@x.example"})])
    assert "b@x.example" not in {r.data["Email"] for r in records_read(connector, "Contact")}


def test_approved_timecards_are_weekly_with_each_days_hours(sandbox):
    approved = records_read(connect(sandbox), "pse__Timecard_Header__c")
    everything = records_read(connect(sandbox, {**DEMO_CREDENTIALS, "approved_only": "no"}), "pse__Timecard_Header__c")

    assert 0 < len(approved) < len(everything)
    assert {r.data["pse__Status__c"] for r in approved} == {"Approved"}
    card = approved[0].data
    days = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
    assert card["pse__Total_Hours__c"] == sum(card[f"pse__{d}_Hours__c"] for d in days)
    assert card["pse__Resource__r"]["Email"].endswith(FIRM.domain)
    assert card["pse__Project__r"]["pse__Project_ID__c"].startswith("PRJ-")
    # The hours of every time entry the firm logged are on exactly one timecard.
    total_minutes = sum(e["minutes"] for e in FIRM.time_entries())
    assert sum(Decimal(str(r.data["pse__Total_Hours__c"])) for r in everything) * 60 == total_minutes


def test_timecard_days_are_the_firms_approved_time_entries_with_their_assignments_rates(sandbox):
    days = records_read(connect(sandbox), "timecard_days")
    people = {p["work_email"]: p for p in FIRM.people()}

    # A week's timecard is approved as a whole: a day is read when every entry on its card was approved.
    cards: dict[tuple, bool] = {}
    for entry in FIRM.time_entries():
        week = (date.fromisoformat(entry["date"]) - date(2023, 1, 2)).days // 7
        key = (entry["person_email"], entry["project_code"], week, entry["billable"])
        cards[key] = cards.get(key, True) and entry["approved"]
    expected = {
        (e["person_email"], e["project_code"], e["date"]): e
        for e in FIRM.time_entries()
        if cards[
            (
                e["person_email"],
                e["project_code"],
                (date.fromisoformat(e["date"]) - date(2023, 1, 2)).days // 7,
                e["billable"],
            )
        ]
    }
    got = {
        (d.data["pse__Resource__r"]["Email"], d.data["pse__Project__r"]["pse__Project_ID__c"], d.data["Date"]): d
        for d in days
    }
    assert got.keys() == expected.keys() and len(days) == len(got)
    for key, entry in expected.items():
        day = got[key].data
        assert Decimal(str(day["Hours"])) * 60 == entry["minutes"]
        assert day["pse__Billable__c"] == entry["billable"] and day["Notes"] == entry["notes"]
        assignment = day["pse__Assignment__r"]
        assert assignment["CurrencyIsoCode"] == entry["currency"]
        assert Decimal(str(assignment["pse__Bill_Rate__c"])) == Decimal(entry["bill_rate"] or 0) or (
            entry["bill_rate"] is None and assignment["pse__Bill_Rate__c"] is None
        )
        cost = assignment["pse__Cost_Rate_Amount__c"]
        assert (cost is None) == (entry["cost_rate"] is None) == (people[key[0]]["cost_rate"] is None)
    assert all("pse__Monday_Hours__c" not in d.data for d in days)
    # A day's id is its card's and its weekday: reading again names the same records.
    assert {d.external_id for d in records_read(connect(sandbox), "timecard_days")} == {d.external_id for d in days}


def test_expenses_page_through_next_records_url(sandbox):
    sandbox.seed(expenses=4500)
    sandbox.clear_stats()
    connector = connect(sandbox, {**DEMO_CREDENTIALS, "approved_only": "no"})

    pages = list(connector.read("pse__Expense__c", page_size=2000))

    assert [len(p.records) for p in pages] == [2000, 2000, 500]
    stamps = [r.updated_at for p in pages for r in p.records]
    assert stamps == sorted(stamps) and pages[-1].cursor == stamps[-1]
    assert len({r.external_id for p in pages for r in p.records}) == 4500
    locator_calls = sum(sum(s.values()) for path, s in sandbox.stats()["by_path"].items() if "/query/" in path)
    assert locator_calls == 2


def test_incremental_read_returns_what_changed_since_the_cursor(sandbox):
    connector = connect(sandbox)
    cursor = list(connector.read("pse__Proj__c"))[-1].cursor
    project_id = first_id(connector, "pse__Proj__c")

    time.sleep(1.1)  # whole-second timestamps: land after the watermark
    result = connector.write(
        "pse__Proj__c", [OutboundRecord("x", {"pse__Stage__c": "Completed"}, target_id=project_id)], mode="update"
    )
    changed = records_read(connector, "pse__Proj__c", since=cursor)

    assert result[0].outcome == "updated"
    assert project_id in {r.external_id for r in changed if r.updated_at > cursor}
    assert len(changed) <= 2


def test_upserting_resources_twice_creates_nothing_new(sandbox):
    batch = [
        OutboundRecord(
            f"contoso-person-{i}",
            {
                "FirstName": "New",
                "LastName": f"Hire {i}",
                "Email": f"new.hire{i}@haldenrowe.example",
                "pse__Is_Resource__c": True,
                "pse__Default_Cost_Rate__c": 80.0,
            },
        )
        for i in range(200)
    ]
    connector = connect(sandbox)

    first = connector.write("Contact", batch)
    second = connector.write("Contact", batch)

    assert {r.outcome for r in first} == {"created"} and {r.outcome for r in second} == {"updated"}
    assert [r.target_id for r in first] == [r.target_id for r in second]
    assert len(records_read(connector, "Contact")) == len(FIRM.people()) + 200


def test_a_timecard_for_a_contact_that_is_not_a_resource_fails_alone(sandbox):
    connector = connect(sandbox)
    [buyer] = connector.write("Contact", [OutboundRecord("contoso-contact-2", {"LastName": "Buyer"})])
    resource, project = first_id(connector, "Contact"), first_id(connector, "pse__Proj__c")
    week = {"pse__Project__c": project, "pse__Start_Date__c": "2026-03-02", "pse__End_Date__c": "2026-03-08"}
    cards = [
        OutboundRecord("tc-1", {**week, "pse__Resource__c": resource, "pse__Monday_Hours__c": 8}),
        OutboundRecord("tc-2", {**week, "pse__Resource__c": buyer.target_id, "pse__Monday_Hours__c": 8}),
        OutboundRecord("tc-3", {**week, "pse__Resource__c": resource, "pse__Tuesday_Hours__c": 30}),
        OutboundRecord("tc-4", {**week, "pse__Resource__c": resource, "pse__Status__c": "Approved"}),
    ]

    results = connector.write("pse__Timecard_Header__c", cards)

    assert [r.outcome for r in results] == ["created", "failed", "failed", "created"]
    assert results[1].error_code == "FIELD_CUSTOM_VALIDATION_EXCEPTION" and "not a resource" in results[1].error_message
    assert "between 0 and 24" in results[2].error_message
    again = connector.write("pse__Timecard_Header__c", [cards[3]])
    assert again[0].outcome == "failed" and "approved timecard cannot be changed" in again[0].error_message


def test_an_assignment_needs_its_schedule(sandbox):
    connector = connect(sandbox)
    resource, project = first_id(connector, "Contact"), first_id(connector, "pse__Proj__c")
    [schedule] = connector.write(
        "pse__Schedule__c",
        [OutboundRecord("sched-1", {"pse__Start_Date__c": "2026-04-01", "pse__End_Date__c": "2026-06-30"})],
    )
    assignment = {"pse__Project__c": project, "pse__Resource__c": resource, "pse__Bill_Rate__c": 200.0}

    results = connector.write(
        "pse__Assignment__c",
        [
            OutboundRecord("asg-1", assignment),
            OutboundRecord("asg-2", {**assignment, "pse__Schedule__c": schedule.target_id}),
        ],
    )

    assert [r.outcome for r in results] == ["failed", "created"]
    assert "pse__Schedule__c" in results[0].error_message


def test_a_10000_record_read_stays_inside_the_rate_budget(sandbox):
    sandbox.seed(expenses=10000)
    sandbox.set_faults(rate_limit={"calls": 3, "window": 1.0})
    sandbox.clear_stats()
    connector = connect(sandbox, {**DEMO_CREDENTIALS, "approved_only": "no"}, rate_per_second=2.0, burst=1)

    read = records_read(connector, "pse__Expense__c")

    stats = sandbox.stats()
    assert len(read) == 10000
    assert stats["rate_limited"] == 0 and stats["max_calls_in_window"] <= 3
    assert stats["calls"] == 7  # token, describe, the query and four nextRecordsUrl pages


def test_request_limit_exceeded_is_waited_out(sandbox):
    sandbox.seed(expenses=4000)
    sandbox.set_faults(rate_limit={"calls": 2, "window": 1.0})
    connector = connect(sandbox, {**DEMO_CREDENTIALS, "approved_only": "no"})

    read = records_read(connector, "pse__Expense__c")

    assert len(read) == 4000 and sandbox.stats()["rate_limited"] >= 1


def test_malformed_records_are_rejected_one_by_one(sandbox):
    sandbox.set_faults(malformed_every=25)
    pages = list(connect(sandbox).read("pse__Proj__c"))

    rejects = [r for p in pages for r in p.rejects]
    assert len(rejects) == len(FIRM.psa_projects()) // 25
    assert sum(len(p.records) for p in pages) == len(FIRM.psa_projects()) - len(rejects)


def test_secrets_stay_out_of_the_logs(sandbox, caplog):
    caplog.set_level(logging.DEBUG)
    connector = connect(sandbox)
    records_read(connector, "pse__Proj__c")

    for secret in (DEMO_CREDENTIALS["password"], DEMO_CREDENTIALS["client_secret"], *sandbox.app.org.tokens):
        assert secret not in caplog.text


def test_simple_salesforce_reads_and_writes_the_package_objects(tmp_path, monkeypatch):
    with simple_salesforce_on(create_app(FIRM), DEMO_CREDENTIALS, tmp_path, monkeypatch) as sf:
        approved = sf.query(
            "SELECT Id, pse__Total_Hours__c, pse__Resource__r.Email FROM pse__Timecard_Header__c "
            "WHERE pse__Status__c = 'Approved' ORDER BY SystemModstamp"
        )
        project = sf.query("SELECT Id, pse__Project_ID__c FROM pse__Proj__c WHERE pse__Project_ID__c = 'PRJ-101'")
        request = sf.pse__Resource_Request__c.create(
            {
                "pse__Project__c": project["records"][0]["Id"],
                "pse__Resource_Role__c": "Consultant",
                "pse__Start_Date__c": "2026-05-04",
                "pse__End_Date__c": "2026-07-31",
                "pse__SOW_Hours__c": 320,
            }
        )
        described = sf.pse__Timecard_Header__c.describe()

    assert approved["totalSize"] > 0 and approved["records"][0]["pse__Resource__r"]["Email"]
    assert request["success"] is True and request["id"].startswith("a1D")
    assert "pse__Monday_Hours__c" in {f["name"] for f in described["fields"]}
