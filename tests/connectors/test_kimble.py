"""The Kimble connector against its Salesforce platform sandbox with the KimbleOne package, over real HTTP."""

from __future__ import annotations

import logging
import time
from decimal import Decimal

import pytest
import requests

from connectors.base import AuthenticationFailed, OutboundRecord
from connectors.kimble.client import KimbleConnector, import_value
from connectors.kimble.sandbox import DEMO_CREDENTIALS, create_app
from connectors.registry import get_connector_class
from connectors.sandbox.firm import Firm, convert
from tests.connectors.kit import connector_maker, records_read, sandbox_fixture, simple_salesforce_on

pytestmark = pytest.mark.timeout(120)
FIRM = Firm()
RESOURCE = "KimbleOne__Resource__c"
GROUP = "KimbleOne__DeliveryGroup__c"
TIME = "KimbleOne__TimeEntry__c"
EXPENSE = "KimbleOne__ExpenseItem__c"


sandbox = sandbox_fixture(lambda: create_app(FIRM))


@pytest.fixture(autouse=True)
def fresh_org(sandbox):
    sandbox.reset()


connect = connector_maker(KimbleConnector, DEMO_CREDENTIALS)


def new_resource(i: int, **fields) -> OutboundRecord:
    values = {
        "KimbleOne__FirstName__c": "New",
        "KimbleOne__LastName__c": f"Hire {i}",
        "KimbleOne__Email__c": f"new.hire{i}@haldenrowe.example",
        "KimbleOne__StartDate__c": "2026-03-02",
        "KimbleOne__CostRate__c": Decimal("80.00"),
        **fields,
    }
    return OutboundRecord(f"contoso-resource-{i}", values)


def test_the_registry_offers_kimble_as_a_psa():
    assert get_connector_class("kimble") is KimbleConnector
    assert KimbleConnector.category == "psa"
    assert KimbleConnector.objects[RESOURCE].writable and KimbleConnector.objects[GROUP].writable
    assert not KimbleConnector.objects[TIME].writable


def test_connection_names_the_user_and_finds_the_external_id_field(sandbox):
    result = connect(sandbox).test_connection()

    assert result.ok, result.message
    assert f"Connected to Kimble PSA at {sandbox.host} as {DEMO_CREDENTIALS['username']}" in result.message
    assert result.detail["objects_missing_external_id"] == []


def test_a_wrong_password_is_understood(sandbox):
    connector = connect(sandbox, {**DEMO_CREDENTIALS, "password": "wrong"})

    assert "Kimble PSA refused the sign-in: authentication failure" in connector.test_connection().message
    with pytest.raises(AuthenticationFailed):
        records_read(connector, GROUP)


def test_engagements_carry_their_reference_account_and_the_psa_only_phases(sandbox):
    connector = connect(sandbox)
    groups = {r.data["KimbleOne__Reference__c"]: r.data for r in records_read(connector, GROUP)}
    accounts = {r.external_id: r.data["Name"] for r in records_read(connector, "Account")}

    assert set(groups) == {p["code"] for p in FIRM.psa_projects()}
    project = FIRM.projects()[0]
    assert accounts[groups[project["code"]]["KimbleOne__Account__c"]] == project["customer_name"]
    # A status is a lookup to reference data, read through the relationship.
    assert groups[project["code"]]["KimbleOne__Status__r"]["KimbleOne__Enum__c"] == "Approved"


def test_resources_are_the_firms_people_with_their_cost_rates(sandbox):
    resources = {r.data["KimbleOne__Email__c"]: r.data for r in records_read(connect(sandbox), RESOURCE)}

    assert set(resources) == {p["work_email"] for p in FIRM.people()}
    without = [p for p in FIRM.people() if p["cost_rate"] is None]
    assert without and all(resources[p["work_email"]]["KimbleOne__CostRate__c"] is None for p in without)
    person = FIRM.people()[1]
    assert resources[person["work_email"]]["Name"] == person["display_name"]


def test_approved_time_entries_are_read_with_their_period_and_assignments_rates(sandbox):
    entries = records_read(connect(sandbox), TIME)
    approved = [e for e in FIRM.time_entries() if e["approved"]]

    assert len(entries) == len(approved) < FIRM.time_entry_count
    first, entry = entries[0].data, approved[0]
    assert first["KimbleOne__Status__r"]["KimbleOne__Enum__c"] == "Approved"
    assert first["KimbleOne__TimePeriod__r"]["KimbleOne__StartDate__c"] == entry["date"]
    assert Decimal(str(first["KimbleOne__EntryUnits__c"])) == Decimal(entry["minutes"]) / 60
    assert first["KimbleOne__Resource__r"]["KimbleOne__Email__c"] == entry["person_email"]
    rate = first["KimbleOne__ActivityAssignment__r"]["KimbleOne__ForecastRevenueRate__c"]
    assert Decimal(str(rate)) == Decimal(entry["bill_rate"])
    person = FIRM.person(entry["person_id"])
    assert entry["bill_rate"] == convert(person["bill_rate"], person["currency"], entry["currency"])


def test_every_entry_is_read_when_the_connection_reads_drafts_too(sandbox):
    everything = records_read(connect(sandbox, {**DEMO_CREDENTIALS, "approved_only": "no"}), TIME)

    assert len(everything) == FIRM.time_entry_count
    assert {r.data["KimbleOne__Status__r"]["KimbleOne__Enum__c"] for r in everything} == {"Approved", "Submitted"}


def test_expense_items_page_through_next_records_url(sandbox):
    sandbox.seed(expenses=4500)
    pages = list(connect(sandbox, {**DEMO_CREDENTIALS, "approved_only": "no"}).read(EXPENSE))

    assert [len(p.records) for p in pages] == [2000, 2000, 500]
    assert pages[0].records[0].data["KimbleOne__IncurredAmount__c"] == float(FIRM.expense(0)["amount"])


def test_incremental_read_returns_what_changed_since_the_cursor(sandbox):
    connector = connect(sandbox)
    cursor = list(connector.read(RESOURCE))[-1].cursor
    resource = records_read(connector, RESOURCE)[3]

    time.sleep(1.1)  # whole-second timestamps: land after the watermark
    result = connector.write(
        RESOURCE, [OutboundRecord("x", {"KimbleOne__Grade__c": "Manager"}, target_id=resource.external_id)]
    )
    changed = records_read(connector, RESOURCE, since=cursor)

    assert result[0].outcome == "updated"
    assert resource.external_id in {r.external_id for r in changed if r.updated_at > cursor}


def test_a_resource_import_sent_twice_creates_nothing_new(sandbox):
    batch = [new_resource(i) for i in range(200)]
    connector = connect(sandbox)

    first = connector.write(RESOURCE, batch)
    second = connector.write(RESOURCE, batch)

    assert {r.outcome for r in first} == {"created"} and {r.outcome for r in second} == {"updated"}
    assert [r.target_id for r in first] == [r.target_id for r in second]
    assert len(records_read(connector, RESOURCE)) == len(FIRM.people()) + 200
    assert sandbox.stats()["by_path"]["/services/apexrest/KimbleOne/v1.0/Import/ResourceImport"] == {"200": 2}
    stored = sandbox.app.org._find_by_id(RESOURCE, first[0].target_id)
    assert stored["KimbleOne__StartDate__c"] == "2026-03-02"  # sent as 02/03/2026


def test_an_engagement_import_builds_its_element_and_refuses_a_reference_twice(sandbox):
    connector = connect(sandbox)
    results = connector.write(
        GROUP,
        [
            OutboundRecord("p-1", {"Name": "Brightwater Data Platform", "KimbleOne__Reference__c": "PRJ-900"}),
            OutboundRecord("p-2", {"Name": "A second PRJ-101", "KimbleOne__Reference__c": "PRJ-101"}),
            OutboundRecord("p-3", {"Name": "Late start", "KimbleOne__Reference__c": "PRJ-901", "Nope__c": 1}),
        ],
    )

    assert [r.outcome for r in results] == ["created", "failed", "failed"]
    assert results[1].error_code == "DUPLICATE_VALUE" and "PRJ-101 already exists" in results[1].error_message
    assert "Nope__c" in results[2].error_message
    elements = records_read(connector, "KimbleOne__DeliveryElement__c")
    assert any(e.data["KimbleOne__DeliveryGroup__c"] == results[0].target_id for e in elements)


def test_a_date_not_in_the_imports_format_fails_its_row_alone(sandbox):
    raw = requests.post(
        f"{sandbox.url}/services/oauth2/token",
        data={
            "grant_type": "password",
            **{k: DEMO_CREDENTIALS[k] for k in ("client_id", "client_secret", "username", "password")},
        },
        timeout=5,
    ).json()["access_token"]
    rows = [
        {"ExternalId": "r-1", "KimbleOne__LastName__c": "Iso", "KimbleOne__StartDate__c": "2026-03-02"},
        {"ExternalId": "r-2", "KimbleOne__LastName__c": "Kimble", "KimbleOne__StartDate__c": "02/03/2026"},
    ]
    answer = requests.post(
        f"{sandbox.url}/services/apexrest/KimbleOne/v1.0/Import/ResourceImport",
        json={"Rows": rows},
        headers={"Authorization": f"Bearer {raw}"},
        timeout=5,
    ).json()["Results"]

    assert [r["Success"] for r in answer] == [False, True]
    assert "dd/MM/yyyy" in answer[0]["Errors"][0]["Message"]
    assert import_value("2026-03-02") == "02/03/2026"


def test_a_10000_record_read_stays_inside_the_rate_budget(sandbox):
    sandbox.seed(time_entries=10000)
    sandbox.set_faults(rate_limit={"calls": 3, "window": 1.0})
    sandbox.clear_stats()
    connector = connect(sandbox, {**DEMO_CREDENTIALS, "approved_only": "no"}, rate_per_second=2.0, burst=1)

    read = records_read(connector, TIME)

    stats = sandbox.stats()
    assert len(read) == 10000
    assert stats["rate_limited"] == 0 and stats["max_calls_in_window"] <= 3
    assert stats["calls"] == 7  # token, describe, the query and four nextRecordsUrl pages


def test_request_limit_exceeded_is_waited_out(sandbox):
    sandbox.seed(expenses=4000)
    sandbox.set_faults(rate_limit={"calls": 2, "window": 1.0})

    read = records_read(connect(sandbox, {**DEMO_CREDENTIALS, "approved_only": "no"}), EXPENSE)

    assert len(read) == 4000 and sandbox.stats()["rate_limited"] >= 1


def test_malformed_records_are_rejected_one_by_one(sandbox):
    sandbox.set_faults(malformed_every=25)
    pages = list(connect(sandbox).read(GROUP))

    rejects = [r for p in pages for r in p.rejects]
    assert len(rejects) == len(FIRM.psa_projects()) // 25
    assert sum(len(p.records) for p in pages) == len(FIRM.psa_projects()) - len(rejects)


def test_secrets_stay_out_of_the_logs(sandbox, caplog):
    caplog.set_level(logging.DEBUG)
    sandbox.set_faults(error_every=3)
    connector = connect(sandbox)
    records_read(connector, GROUP)
    connector.write(RESOURCE, [new_resource(1)])

    assert sandbox.stats()["errors_injected"] >= 1
    for secret in (DEMO_CREDENTIALS["password"], DEMO_CREDENTIALS["client_secret"], *sandbox.app.org.tokens):
        assert secret not in caplog.text


def test_simple_salesforce_reads_time_by_its_status_lookup_and_calls_the_import(tmp_path, monkeypatch):
    with simple_salesforce_on(create_app(FIRM), DEMO_CREDENTIALS, tmp_path, monkeypatch) as sf:
        approved = sf.query(
            "SELECT Id, KimbleOne__EntryUnits__c, KimbleOne__TimePeriod__r.KimbleOne__StartDate__c "
            "FROM KimbleOne__TimeEntry__c WHERE KimbleOne__Status__r.KimbleOne__Enum__c = 'Approved' "
            "ORDER BY SystemModstamp"
        )
        imported = sf.apexecute(
            "KimbleOne/v1.0/Import/ResourceImport",
            method="POST",
            data={
                "Rows": [
                    {"ExternalId": "sf-1", "KimbleOne__LastName__c": "Client", "KimbleOne__StartDate__c": "04/05/2026"}
                ]
            },
        )
        described = sf.KimbleOne__TimeEntry__c.describe()

    assert approved["totalSize"] == sum(1 for e in FIRM.time_entries() if e["approved"])
    assert approved["records"][0]["KimbleOne__TimePeriod__r"]["KimbleOne__StartDate__c"] == FIRM.time_entry(0)["date"]
    assert imported["Results"][0]["Success"] is True and imported["Results"][0]["Id"].startswith("a3S")
    assert "KimbleOne__Status__c" in {f["name"] for f in described["fields"]}
