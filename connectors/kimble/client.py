"""Kimble PSA: the `KimbleOne__` managed package on the Salesforce platform.

Reads are the platform's SOQL pages (connectors.salesforce_platform.rest). What is Kimble's: its objects and
their `KimbleOne__` fields. An engagement is a delivery group (`KimbleOne__DeliveryGroup__c`, its code in
`KimbleOne__Reference__c`) delivered through delivery elements; a person is a `KimbleOne__Resource__c`, staffed
on an element by an activity assignment that carries the rates the time is billed and costed at. A status is not
a picklist but a lookup to Kimble's reference data: approved time is `KimbleOne__Status__r.KimbleOne__Enum__c =
'Approved'`, which is how the connector reads time entries and expense items (approved only, by default). A time
entry's date is its time period's start (`KimbleOne__TimePeriod__r.KimbleOne__StartDate__c`) and its hours are
`KimbleOne__EntryUnits__c`.

Writes go through Kimble's Apex REST import endpoints, not sObject Collections: Kimble's triggers build a
resource's periods and an engagement's structure that a bare insert would miss. Each import takes a batch of rows
and answers a result per row; rows are matched on our external id field (or the record's Id, once linked), so
importing the same batch twice creates nothing new. Dates go to the imports as dd/MM/yyyy text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from connectors.base import ConnectorError, OutboundRecord, WriteMode, WriteResult, chunks, objects_by_name
from connectors.salesforce_platform.rest import (
    DEFAULT_EXTERNAL_ID_FIELD,
    ApprovedReadsConnector,
    object_spec,
)

__all__ = ["DEFAULT_EXTERNAL_ID_FIELD", "IMPORTS", "KimbleConnector"]

# ---------------------------------------------------------------------------------------------------------------
# (unverified) assumptions, emulated the same way by connectors/kimble/sandbox/:
# - the import endpoints are /services/apexrest/KimbleOne/v1.0/Import/<Name> (ResourceImport is public knowledge;
#   DeliveryGroupImport is our name for the engagement import), POSTed {"Rows": [...]} with at most 200 rows, and
#   answer {"Results": [{"ExternalId", "Id", "Success", "Created", "Errors": [{"Field", "Message"}]}]} in order;
#   a row that names an Id updates that record, else the row's ExternalId is matched on the external id field.
# - field names: KimbleOne__FirstName__c, KimbleOne__LastName__c, KimbleOne__Email__c, KimbleOne__Grade__c,
#   KimbleOne__BusinessUnit__c (text here), KimbleOne__StartDate__c, KimbleOne__EndDate__c and
#   KimbleOne__CostRate__c on a resource; KimbleOne__ForecastCostRate__c and KimbleOne__DeliveryGroup__c on an
#   activity assignment; KimbleOne__IsChargeable__c on time entries and expense items; KimbleOne__ExpenseDate__c,
#   KimbleOne__Category__c and KimbleOne__IncurredAmount__c on expense items.
# - reference data statuses are enumerated Draft, Submitted, Approved and Rejected.
# ---------------------------------------------------------------------------------------------------------------
IMPORT_PATH = "/services/apexrest/KimbleOne/v1.0/Import/"
IMPORT_LIMIT = 200
IMPORTS = {"KimbleOne__Resource__c": "ResourceImport", "KimbleOne__DeliveryGroup__c": "DeliveryGroupImport"}
APPROVED_ONLY = ("KimbleOne__TimeEntry__c", "KimbleOne__ExpenseItem__c")
_STAMPS = ("CreatedDate", "LastModifiedDate", "SystemModstamp")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

ACCOUNT_FIELDS = ("Id", "Name", "Website", "CurrencyIsoCode", *_STAMPS)
RESOURCE_FIELDS = (
    "Id",
    "Name",
    "KimbleOne__FirstName__c",
    "KimbleOne__LastName__c",
    "KimbleOne__Email__c",
    "KimbleOne__Grade__c",
    "KimbleOne__BusinessUnit__c",
    "KimbleOne__StartDate__c",
    "KimbleOne__EndDate__c",
    "KimbleOne__CostRate__c",
    "Employee_Number__c",
    "CurrencyIsoCode",
    *_STAMPS,
)
DELIVERY_GROUP_FIELDS = (
    "Id",
    "Name",
    "KimbleOne__Reference__c",
    "KimbleOne__Account__c",
    "KimbleOne__Account__r.Name",
    "KimbleOne__ExpectedStartDate__c",
    "KimbleOne__ExpectedEndDate__c",
    "KimbleOne__InvoicingCurrencyIsoCode__c",
    "KimbleOne__Status__r.KimbleOne__Enum__c",
    *_STAMPS,
)
DELIVERY_ELEMENT_FIELDS = ("Id", "Name", "KimbleOne__DeliveryGroup__c", "KimbleOne__Reference__c", *_STAMPS)
ASSIGNMENT_FIELDS = (
    "Id",
    "Name",
    "KimbleOne__Resource__c",
    "KimbleOne__Resource__r.KimbleOne__Email__c",
    "KimbleOne__DeliveryElement__c",
    "KimbleOne__DeliveryGroup__c",
    "KimbleOne__StartDate__c",
    "KimbleOne__ForecastRevenueRate__c",
    "KimbleOne__ForecastCostRate__c",
    "CurrencyIsoCode",
    *_STAMPS,
)
TIME_ENTRY_FIELDS = (
    "Id",
    "Name",
    "KimbleOne__Resource__c",
    "KimbleOne__Resource__r.KimbleOne__Email__c",
    "KimbleOne__DeliveryElement__c",
    "KimbleOne__DeliveryElement__r.KimbleOne__DeliveryGroup__c",
    "KimbleOne__ActivityAssignment__c",
    "KimbleOne__ActivityAssignment__r.KimbleOne__ForecastRevenueRate__c",
    "KimbleOne__ActivityAssignment__r.KimbleOne__ForecastCostRate__c",
    "KimbleOne__ActivityAssignment__r.CurrencyIsoCode",
    "KimbleOne__TimePeriod__c",
    "KimbleOne__TimePeriod__r.KimbleOne__StartDate__c",
    "KimbleOne__EntryUnits__c",
    "KimbleOne__Notes__c",
    "KimbleOne__IsChargeable__c",
    "KimbleOne__Status__c",
    "KimbleOne__Status__r.KimbleOne__Enum__c",
    "CurrencyIsoCode",
    *_STAMPS,
)
EXPENSE_FIELDS = (
    "Id",
    "Name",
    "KimbleOne__Resource__c",
    "KimbleOne__DeliveryElement__c",
    "KimbleOne__DeliveryElement__r.KimbleOne__DeliveryGroup__c",
    "KimbleOne__ExpenseDate__c",
    "KimbleOne__Category__c",
    "KimbleOne__IncurredAmount__c",
    "KimbleOne__IsChargeable__c",
    "KimbleOne__Notes__c",
    "KimbleOne__Status__r.KimbleOne__Enum__c",
    "CurrencyIsoCode",
    *_STAMPS,
)
REFERENCE_DATA_FIELDS = ("Id", "Name", "KimbleOne__Domain__c", "KimbleOne__Enum__c", *_STAMPS)


def import_value(value: Any) -> Any:
    """A value as Kimble's imports take it: dates as dd/MM/yyyy text."""
    if isinstance(value, datetime):
        value = value.date()
    if isinstance(value, date):
        return value.strftime("%d/%m/%Y")
    if isinstance(value, str) and _ISO_DATE.match(value):
        return f"{value[8:10]}/{value[5:7]}/{value[:4]}"
    if hasattr(value, "as_tuple"):  # Decimal
        return float(value)
    return value


class KimbleConnector(ApprovedReadsConnector):
    vendor = "kimble"
    label = "Kimble PSA"
    category = "psa"
    approved_only_label = "Read approved time and expenses only"
    approved_only_help = "yes: only time entries and expense items whose status is Approved are read."
    objects = objects_by_name(
        object_spec("Account", "Accounts", ACCOUNT_FIELDS, writable=False),
        object_spec("KimbleOne__Resource__c", "Resources", RESOURCE_FIELDS),
        object_spec("KimbleOne__DeliveryGroup__c", "Engagements (delivery groups)", DELIVERY_GROUP_FIELDS),
        object_spec("KimbleOne__DeliveryElement__c", "Delivery elements", DELIVERY_ELEMENT_FIELDS, writable=False),
        object_spec("KimbleOne__ActivityAssignment__c", "Activity assignments", ASSIGNMENT_FIELDS, writable=False),
        object_spec("KimbleOne__TimeEntry__c", "Time entries", TIME_ENTRY_FIELDS, writable=False),
        object_spec("KimbleOne__ExpenseItem__c", "Expense items", EXPENSE_FIELDS, writable=False),
        object_spec("KimbleOne__ReferenceData__c", "Reference data", REFERENCE_DATA_FIELDS, writable=False),
    )

    def read_conditions(self, object_name: str) -> list[str]:
        if object_name in APPROVED_ONLY and self.approved_only:
            return ["KimbleOne__Status__r.KimbleOne__Enum__c = 'Approved'"]
        return []

    def write(
        self, object_name: str, records: list[OutboundRecord], *, mode: WriteMode = "upsert"
    ) -> list[WriteResult]:
        name = IMPORTS.get(object_name)
        if name is None:
            raise ConnectorError(f"{self.label} takes {object_name} through no import here.")
        results: list[WriteResult] = []
        for batch in chunks(records, IMPORT_LIMIT):
            results.extend(self._import(name, batch, mode))
        return results

    def _import(self, name: str, batch: list[OutboundRecord], mode: WriteMode) -> list[WriteResult]:
        rows, failures = [], {}
        for index, record in enumerate(batch):
            if mode == "update" and not record.target_id:
                failures[index] = WriteResult(
                    record.external_id, "failed", None, "MISSING_ID", "This record has no Kimble Id yet."
                )
                continue
            row = {k: import_value(v) for k, v in record.fields.items() if k not in ("Id", "attributes")}
            row["ExternalId"] = record.external_id
            if record.target_id and mode != "create":
                row["Id"] = record.target_id
            rows.append((index, row))
        answers = []
        if rows:
            body = self._api("POST", f"{IMPORT_PATH}{name}", json={"Rows": [row for _, row in rows]}).json()
            answers = body.get("Results") if isinstance(body, Mapping) else None
            if not isinstance(answers, list) or len(answers) != len(rows):
                raise ConnectorError(f"{self.label}'s {name} answered without a result for each row.")
        results: dict[int, WriteResult] = dict(failures)
        for (index, _row), answer in zip(rows, answers, strict=True):
            record = batch[index]
            if answer.get("Success"):
                outcome = "created" if answer.get("Created") else "updated"
                results[index] = WriteResult(record.external_id, outcome, answer.get("Id"))
                continue
            errors = answer.get("Errors") or [{}]
            message = "; ".join(
                f"{e.get('Field')}: {e.get('Message')}" if e.get("Field") else str(e.get("Message")) for e in errors
            )
            results[index] = WriteResult(
                record.external_id,
                "failed",
                answer.get("Id") or record.target_id,
                str(errors[0].get("Code") or "IMPORT_ERROR"),
                self.session.redact(message) or "Kimble did not import this row.",
            )
        return [results[i] for i in range(len(batch))]
