"""Custom fields on CRM accounts (Salesforce, HubSpot, Dynamics 365): each connector creates the fields the
account-health push writes, updates accounts in its vendor's batch form and reads the values back, against its
sandbox over real HTTP on loopback; the sandboxes keep the fields and refuse unknown ones as the vendors do."""

from __future__ import annotations

import importlib
from decimal import Decimal

import pytest
import requests

from connectors.account_fields import AccountField, AccountUpdate, number_value
from connectors.base import ConnectorError, VendorError
from connectors.dynamics365.client import DataverseConnector
from connectors.hubspot.client import HubSpotConnector
from connectors.salesforce.client import SalesforceConnector
from connectors.sandbox.firm import Firm
from connectors.sandbox.server import serve_in_thread
from tests.connectors.kit import pages_read, sandbox_connector

pytestmark = pytest.mark.timeout(60)

CONNECTORS = {
    "salesforce": (SalesforceConnector, "Account"),
    "hubspot": (HubSpotConnector, "companies"),
    "dynamics365": (DataverseConnector, "accounts"),
}


@pytest.fixture(scope="module", params=list(CONNECTORS))
def crm(request):
    module = importlib.import_module(f"connectors.{request.param}.sandbox")
    running = serve_in_thread(module.create_app(Firm(time_entries=50, expenses=10)))
    yield request.param, running, module.DEMO_CREDENTIALS
    running.stop()


@pytest.fixture
def connector(crm):
    vendor, sandbox, credentials = crm
    sandbox.reset()
    if vendor == "dynamics365":
        credentials = {**credentials, "authority": sandbox.url}
    return sandbox_connector(CONNECTORS[vendor][0], sandbox, credentials)


def wanted(connector) -> list[AccountField]:
    return [
        AccountField(
            connector.account_field_name("delivery_hours_last_month"), "Delivered hours, last month", "number"
        ),
        AccountField(connector.account_field_name("delivery_month"), "Delivery month", "text"),
    ]


def account_ids(connector, crm, count: int = 3) -> list[str]:
    vendor = crm[0]
    records = [record for page in pages_read(connector, CONNECTORS[vendor][1]) for record in page.records]
    return [record.external_id for record in records[:count]]


def test_field_names_follow_each_vendors_conventions(connector, crm):
    name = connector.account_field_name("delivery_margin_month_to_date")
    assert (
        name
        == {
            "salesforce": "Delivery_Margin_Month_To_Date__c",
            "hubspot": "delivery_margin_month_to_date",
            "dynamics365": "new_deliverymarginmonthtodate",
        }[crm[0]]
    )


def test_missing_fields_are_created_once_and_described_after(connector):
    fields = wanted(connector)
    assert not {f.name for f in fields} & set(connector.account_fields())

    assert connector.account_fields_create(fields) == [f.name for f in fields]
    described = connector.account_fields()
    number, text = (described[f.name] for f in fields)
    assert (number.kind, number.custom, number.label) == ("number", True, "Delivered hours, last month")
    assert (text.kind, text.custom) == ("text", True)

    assert connector.account_fields_create(fields) == []  # a second run finds them


@pytest.fixture
def hubspot():
    """HubSpot's sandbox alone, for what only HubSpot has (property groups)."""
    module = importlib.import_module("connectors.hubspot.sandbox")
    running = serve_in_thread(module.create_app(Firm(time_entries=50, expenses=10)))
    yield running, module.DEMO_CREDENTIALS
    running.stop()


def test_hubspot_properties_are_created_in_a_group_of_their_own(hubspot):
    sandbox, credentials = hubspot
    connector = sandbox_connector(HubSpotConnector, sandbox, credentials)
    connector.account_fields_create(wanted(connector))
    headers = {"Authorization": f"Bearer {credentials['access_token']}"}
    groups = requests.get(f"{sandbox.url}/crm/v3/properties/companies/groups", headers=headers, timeout=5).json()
    properties = requests.get(f"{sandbox.url}/crm/v3/properties/companies", headers=headers, timeout=5).json()
    assert "delivery_health" in {g["name"] for g in groups["results"]}
    ours = {p["name"]: p for p in properties["results"]}["delivery_hours_last_month"]
    assert (ours["groupName"], ours["type"], ours["hubspotDefined"]) == ("delivery_health", "number", False)
    again = requests.post(
        f"{sandbox.url}/crm/v3/properties/companies",
        json={**{k: ours[k] for k in ("name", "label", "type", "fieldType", "groupName")}},
        headers=headers,
        timeout=5,
    )
    assert (again.status_code, again.json()["category"]) == (409, "OBJECT_ALREADY_EXISTS")


def test_accounts_are_updated_in_one_batch_and_read_back(connector, crm):
    fields = wanted(connector)
    connector.account_fields_create(fields)
    number, text = (f.name for f in fields)
    ids = account_ids(connector, crm)
    updates = [
        AccountUpdate(account_id, {number: Decimal("12.34") * (n + 1), text: "2026-11"})
        for n, account_id in enumerate(ids)
    ]

    results = connector.accounts_update(updates)

    assert [(r.external_id, r.outcome) for r in results] == [(i, "updated") for i in ids]
    values = connector.accounts_read(ids, [number, text])
    assert {i: (number_value(v[number]), v[text]) for i, v in values.items()} == {
        i: (Decimal("12.34") * (n + 1), "2026-11") for n, i in enumerate(ids)
    }


def test_a_value_for_a_field_the_account_lacks_is_refused(connector, crm):
    ids = account_ids(connector, crm, 1)
    unknown = connector.account_field_name("no_such_figure")

    results = connector.accounts_update([AccountUpdate(ids[0], {unknown: Decimal("1.00")})])

    assert results[0].outcome == "failed"
    assert results[0].error_code


def test_an_account_that_is_gone_fails_alone(connector, crm):
    fields = wanted(connector)
    connector.account_fields_create(fields)
    ids = account_ids(connector, crm, 2)
    gone = {
        "salesforce": "001SB000009999ZZZZ",
        "hubspot": "18099999999",
        "dynamics365": "00000000-0000-4000-8000-000000000999",
    }[crm[0]]

    results = connector.accounts_update([AccountUpdate(i, {fields[0].name: Decimal("5.00")}) for i in [ids[0], gone]])

    assert [r.outcome for r in results] == ["updated", "failed"]
    assert results[1].external_id == gone
    assert gone not in connector.accounts_read([ids[0], gone], [fields[0].name])


def test_batches_follow_the_vendors_limits(connector, crm):
    vendor, sandbox, _ = crm
    fields = wanted(connector)
    connector.account_fields_create(fields)
    seeded = {"salesforce": {"accounts": 230}, "hubspot": {"companies": 230}, "dynamics365": {"accounts": 300}}[vendor]
    requests.post(f"{sandbox.url}/_sandbox/seed", json=seeded, timeout=10).raise_for_status()
    ids = account_ids(connector, crm, 260)
    assert len(ids) == 260

    results = connector.accounts_update([AccountUpdate(i, {fields[0].name: Decimal("7.50")}) for i in ids])

    assert {r.outcome for r in results} == {"updated"}
    assert {number_value(v[fields[0].name]) for v in connector.accounts_read(ids, [fields[0].name]).values()} == {
        Decimal("7.50")
    }


def test_a_field_name_outside_the_vendors_conventions_is_refused_before_any_call(connector, crm):
    bad = {"salesforce": "Delivery Hours", "hubspot": "Delivery-Hours", "dynamics365": "deliveryhours"}[crm[0]]
    with pytest.raises((ConnectorError, VendorError)):
        connector.account_fields_create([AccountField(bad, "Delivery hours", "number")])


def test_simple_salesforce_creates_a_field_through_the_tooling_api_and_writes_it(tmp_path, monkeypatch):
    from connectors.salesforce.sandbox import DEMO_CREDENTIALS, create_app
    from tests.connectors.kit import simple_salesforce_on

    with simple_salesforce_on(
        create_app(Firm(time_entries=50, expenses=10)), DEMO_CREDENTIALS, tmp_path, monkeypatch
    ) as sf:
        metadata = {"label": "Delivered hours", "type": "Number", "precision": 18, "scale": 2}
        created = sf.toolingexecute(
            "sobjects/CustomField", method="POST", data={"FullName": "Account.Delivered_Hours__c", "Metadata": metadata}
        )
        account = sf.query("SELECT Id FROM Account LIMIT 1")["records"][0]["Id"]
        sf.Account.update(account, {"Delivered_Hours__c": 12.345})
        again = sf.query(f"SELECT Delivered_Hours__c FROM Account WHERE Id = '{account}'")  # noqa: S608
        fields = {f["name"]: f for f in sf.Account.describe()["fields"]}

    assert created["success"] and created["id"].startswith("00N")
    assert again["records"][0]["Delivered_Hours__c"] == 12.35  # Number(18, 2) keeps two places
    assert (fields["Delivered_Hours__c"]["type"], fields["Delivered_Hours__c"]["custom"]) == ("double", True)


def test_hubspot_api_client_creates_a_property_and_batch_updates_companies():
    from hubspot import HubSpot
    from hubspot.crm.companies import BatchInputSimplePublicObjectBatchInput, SimplePublicObjectBatchInput
    from hubspot.crm.properties import PropertyCreate

    from connectors.hubspot.sandbox import DEMO_CREDENTIALS, create_app

    running = serve_in_thread(create_app(Firm(time_entries=50, expenses=10)))
    try:
        client = HubSpot(access_token=DEMO_CREDENTIALS["access_token"], host=running.url)
        prop = client.crm.properties.core_api.create(
            object_type="companies",
            property_create=PropertyCreate(
                name="delivered_hours",
                label="Delivered hours",
                type="number",
                field_type="number",
                group_name="companyinformation",
            ),
        )
        first = client.crm.companies.basic_api.get_page(limit=2).results
        inputs = [SimplePublicObjectBatchInput(id=c.id, properties={"delivered_hours": "7.5"}) for c in first]
        client.crm.companies.batch_api.update(BatchInputSimplePublicObjectBatchInput(inputs=inputs))
        back = client.crm.companies.basic_api.get_by_id(first[0].id, properties=["delivered_hours"])
    finally:
        running.stop()

    assert (prop.name, prop.type, prop.hubspot_defined) == ("delivered_hours", "number", False)
    assert back.properties["delivered_hours"] == "7.5"
