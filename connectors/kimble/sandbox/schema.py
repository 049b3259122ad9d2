"""The Kimble sandbox's vocabulary: the `KimbleOne__` objects and fields, their key prefixes and the demo org's
credentials."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial

from connectors.kimble.client import DEFAULT_EXTERNAL_ID_FIELD
from connectors.salesforce_platform.org import Field, lookup_field, package_object

DEMO_CREDENTIALS = {
    "client_id": "3MVG9sgpDemoKimbleKey.SysGenProConnectSandbox",
    "client_secret": "sgp-demo-kimble-secret-5c1f9b",
    "username": "kimble-integration@sysgenpro-demo.example",
    "password": "demo-kimble-password-and-token",
    "external_id_field": DEFAULT_EXTERNAL_ID_FIELD,
    "approved_only": "yes",
}
SEED_EPOCH = datetime(2024, 1, 2, 9, 0, 0, tzinfo=UTC)
CURRENCIES = ("USD", "EUR", "GBP")
STATUSES = ("Draft", "Submitted", "Approved", "Rejected")
STATUS_DOMAINS = ("TimeEntryStatus", "ExpenseItemStatus", "DeliveryGroupStatus")
IMPORT_ROWS_MAX = 200

KEY_PREFIXES = {
    "Account": "001",
    "KimbleOne__ReferenceData__c": "a3R",
    "KimbleOne__Resource__c": "a3S",
    "KimbleOne__DeliveryGroup__c": "a3G",
    "KimbleOne__DeliveryElement__c": "a3E",
    "KimbleOne__ActivityAssignment__c": "a3A",
    "KimbleOne__TimePeriod__c": "a3P",
    "KimbleOne__TimeEntry__c": "a3T",
    "KimbleOne__ExpenseItem__c": "a3X",
}


_object = partial(package_object, currencies=CURRENCIES)


def _status() -> Field:
    return lookup_field("KimbleOne__Status__c", "Status", "KimbleOne__ReferenceData__c")


SCHEMA: dict[str, dict[str, Field]] = {
    "Account": _object(Field("Website", "url", "Website", 255)),
    "KimbleOne__ReferenceData__c": _object(
        Field("KimbleOne__Domain__c", "string", "Domain", 80),
        Field("KimbleOne__Enum__c", "string", "Enum", 80),
    ),
    "KimbleOne__Resource__c": _object(
        Field("KimbleOne__FirstName__c", "string", "First Name", 40),
        Field("KimbleOne__LastName__c", "string", "Last Name", 80, required=True),
        Field("KimbleOne__Email__c", "string", "Email", 80),
        Field("KimbleOne__Grade__c", "string", "Grade", 128),
        Field("KimbleOne__BusinessUnit__c", "string", "Business Unit", 80),
        Field("KimbleOne__StartDate__c", "date", "Start Date", required=True),
        Field("KimbleOne__EndDate__c", "date", "End Date"),
        Field("KimbleOne__CostRate__c", "currency", "Cost Rate"),
        Field("Employee_Number__c", "string", "Employee Number", 20),
    ),
    "KimbleOne__DeliveryGroup__c": _object(
        Field("KimbleOne__Reference__c", "string", "Reference", 30, required=True),
        lookup_field("KimbleOne__Account__c", "Account", "Account"),
        Field("KimbleOne__ExpectedStartDate__c", "date", "Expected Start Date"),
        Field("KimbleOne__ExpectedEndDate__c", "date", "Expected End Date"),
        Field("KimbleOne__InvoicingCurrencyIsoCode__c", "string", "Invoicing Currency", 3),
        _status(),
    ),
    "KimbleOne__DeliveryElement__c": _object(
        lookup_field("KimbleOne__DeliveryGroup__c", "Delivery Group", "KimbleOne__DeliveryGroup__c", required=True),
        Field("KimbleOne__Reference__c", "string", "Reference", 30),
    ),
    "KimbleOne__ActivityAssignment__c": _object(
        lookup_field("KimbleOne__Resource__c", "Resource", "KimbleOne__Resource__c", required=True),
        lookup_field(
            "KimbleOne__DeliveryElement__c", "Delivery Element", "KimbleOne__DeliveryElement__c", required=True
        ),
        lookup_field("KimbleOne__DeliveryGroup__c", "Delivery Group", "KimbleOne__DeliveryGroup__c"),
        Field("KimbleOne__StartDate__c", "date", "Start Date"),
        Field("KimbleOne__ForecastRevenueRate__c", "currency", "Forecast Revenue Rate"),
        Field("KimbleOne__ForecastCostRate__c", "currency", "Forecast Cost Rate"),
    ),
    "KimbleOne__TimePeriod__c": _object(
        Field("KimbleOne__StartDate__c", "date", "Start Date", required=True),
        Field("KimbleOne__EndDate__c", "date", "End Date", required=True),
    ),
    "KimbleOne__TimeEntry__c": _object(
        lookup_field("KimbleOne__Resource__c", "Resource", "KimbleOne__Resource__c", required=True),
        lookup_field(
            "KimbleOne__DeliveryElement__c", "Delivery Element", "KimbleOne__DeliveryElement__c", required=True
        ),
        lookup_field("KimbleOne__ActivityAssignment__c", "Activity Assignment", "KimbleOne__ActivityAssignment__c"),
        lookup_field("KimbleOne__TimePeriod__c", "Time Period", "KimbleOne__TimePeriod__c", required=True),
        Field("KimbleOne__EntryUnits__c", "double", "Entry Units", required=True),
        Field("KimbleOne__Notes__c", "textarea", "Notes", 255),
        Field("KimbleOne__IsChargeable__c", "boolean", "Chargeable"),
        _status(),
    ),
    "KimbleOne__ExpenseItem__c": _object(
        lookup_field("KimbleOne__Resource__c", "Resource", "KimbleOne__Resource__c", required=True),
        lookup_field(
            "KimbleOne__DeliveryElement__c", "Delivery Element", "KimbleOne__DeliveryElement__c", required=True
        ),
        Field("KimbleOne__ExpenseDate__c", "date", "Expense Date", required=True),
        Field("KimbleOne__Category__c", "string", "Category", 80),
        Field("KimbleOne__IncurredAmount__c", "currency", "Incurred Amount", required=True),
        Field("KimbleOne__IsChargeable__c", "boolean", "Chargeable"),
        Field("KimbleOne__Notes__c", "textarea", "Notes", 255),
        _status(),
    ),
}
