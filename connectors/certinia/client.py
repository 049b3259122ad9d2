"""Certinia PSA (formerly FinancialForce): the `pse__` managed package on the Salesforce platform.

Everything on the wire is the platform's REST API (connectors.salesforce_platform.rest): the same sign-in,
SOQL pages and sObject Collections upserts by an external id field. What is Certinia's: the objects and their
`pse__` fields. A resource is a Contact marked `pse__Is_Resource__c`, with a default cost rate on the Contact
(`pse__Default_Cost_Rate__c`); the rates a project bills and costs its time at are on the resource's assignment
to it, in the project's currency. Time is kept on weekly timecard headers (one per resource, project and week,
with the hours of each day); approved time is `pse__Status__c = 'Approved'`. `timecard_days` reads those headers
as one record per day worked, with the assignment's rates: the shape of a time entry, which is per day.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta

from connectors.base import ObjectSpec, Page, SourceRecord, objects_by_name
from connectors.salesforce_platform.rest import (
    DEFAULT_EXTERNAL_ID_FIELD,
    ApprovedReadsConnector,
    object_spec,
)

__all__ = ["DEFAULT_EXTERNAL_ID_FIELD", "CertiniaConnector"]

_STAMPS = ("CreatedDate", "LastModifiedDate", "SystemModstamp")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

ACCOUNT_FIELDS = ("Id", "Name", "Website", "CurrencyIsoCode", *_STAMPS)
PROJECT_FIELDS = (
    "Id",
    "Name",
    "pse__Project_ID__c",
    "pse__Account__c",
    "pse__Account__r.Name",
    "pse__Project_Manager__c",
    "pse__Parent_Project__c",
    "pse__Start_Date__c",
    "pse__End_Date__c",
    "pse__Stage__c",
    "pse__Billing_Type__c",
    "pse__Project_Type__c",
    "pse__Is_Active__c",
    "pse__Is_Billable__c",
    "pse__Bookings__c",
    "CurrencyIsoCode",
    *_STAMPS,
)
RESOURCE_FIELDS = (
    "Id",
    "FirstName",
    "LastName",
    "Email",
    "Title",
    "Department",
    "MailingCountry",
    "Employee_Number__c",
    "pse__Is_Resource__c",
    "pse__Is_Resource_Active__c",
    "pse__Resource_Role__c",
    "pse__Default_Cost_Rate__c",
    "pse__Start_Date__c",
    "pse__Last_Date__c",
    "CurrencyIsoCode",
    *_STAMPS,
)
SCHEDULE_FIELDS = ("Id", "pse__Start_Date__c", "pse__End_Date__c", "pse__Scheduled_Hours__c", *_STAMPS)
ASSIGNMENT_FIELDS = (
    "Id",
    "Name",
    "pse__Project__c",
    "pse__Resource__c",
    "pse__Resource__r.Email",
    "pse__Schedule__c",
    "pse__Role__c",
    "pse__Status__c",
    "pse__Bill_Rate__c",
    "pse__Cost_Rate_Amount__c",
    "pse__Is_Billable__c",
    "CurrencyIsoCode",
    *_STAMPS,
)
RESOURCE_REQUEST_FIELDS = (
    "Id",
    "Name",
    "pse__Project__c",
    "pse__Resource_Role__c",
    "pse__SOW_Hours__c",
    "pse__Start_Date__c",
    "pse__End_Date__c",
    "pse__Status__c",
    "pse__Notes__c",
    "CurrencyIsoCode",
    *_STAMPS,
)
TIMECARD_FIELDS = (
    "Id",
    "Name",
    "pse__Resource__c",
    "pse__Resource__r.Email",
    "pse__Project__c",
    "pse__Project__r.pse__Project_ID__c",
    "pse__Assignment__c",
    "pse__Assignment__r.pse__Bill_Rate__c",
    "pse__Assignment__r.pse__Cost_Rate_Amount__c",
    "pse__Assignment__r.CurrencyIsoCode",
    "pse__Start_Date__c",
    "pse__End_Date__c",
    *(f"pse__{day}_Hours__c" for day in WEEKDAYS),
    *(f"pse__{day}_Notes__c" for day in WEEKDAYS),
    "pse__Total_Hours__c",
    "pse__Billable__c",
    "pse__Status__c",
    "pse__Submitted__c",
    "pse__Approved__c",
    *_STAMPS,
)
EXPENSE_FIELDS = (
    "Id",
    "Name",
    "pse__Resource__c",
    "pse__Resource__r.Email",
    "pse__Project__c",
    "pse__Project__r.pse__Project_ID__c",
    "pse__Expense_Date__c",
    "pse__Type__c",
    "pse__Amount__c",
    "CurrencyIsoCode",
    "pse__Billable__c",
    "pse__Non_Reimbursible__c",
    "pse__Description__c",
    "pse__Status__c",
    "pse__Approved__c",
    *_STAMPS,
)
_PER_DAY = tuple(f"pse__{day}_" for day in WEEKDAYS)
APPROVED_ONLY = ("pse__Timecard_Header__c", "pse__Expense__c")
TIMECARD_DAYS = "timecard_days"  # not an sObject: the timecard headers, one record per day worked
# What a timecard day holds besides its header's fields (the per-day hours and notes are left out).
DAY_FIELDS = ("Date", "Hours", "Notes", "Timecard")


class CertiniaConnector(ApprovedReadsConnector):
    vendor = "certinia"
    label = "Certinia PSA"
    category = "psa"
    approved_only_label = "Read approved timecards and expenses only"
    approved_only_help = "yes: only timecards and expenses whose status is Approved are read."
    objects = objects_by_name(
        object_spec("Account", "Accounts", ACCOUNT_FIELDS),  # the customers projects belong to
        object_spec("pse__Proj__c", "Projects", PROJECT_FIELDS),
        object_spec("Contact", "Resources", RESOURCE_FIELDS),
        object_spec("pse__Assignment__c", "Assignments", ASSIGNMENT_FIELDS),
        object_spec("pse__Schedule__c", "Schedules", SCHEDULE_FIELDS),
        object_spec("pse__Resource_Request__c", "Resource requests", RESOURCE_REQUEST_FIELDS),
        object_spec("pse__Timecard_Header__c", "Timecards", TIMECARD_FIELDS),
        object_spec("pse__Expense__c", "Expenses", EXPENSE_FIELDS),
        ObjectSpec(
            TIMECARD_DAYS,
            "Timecard days",
            writable=False,
            page_size=object_spec("pse__Timecard_Header__c", "", ()).page_size,
            fields=(*DAY_FIELDS, *(f for f in TIMECARD_FIELDS if not f.startswith(_PER_DAY))),
        ),
    )

    def _fields_of(self, object_name: str) -> set[str]:
        return super()._fields_of("pse__Timecard_Header__c" if object_name == TIMECARD_DAYS else object_name)

    def read(self, object_name: str, *, since: str | None = None, page_size: int | None = None) -> Iterator[Page]:
        if object_name != TIMECARD_DAYS:
            yield from super().read(object_name, since=since, page_size=page_size)
            return
        for page in super().read("pse__Timecard_Header__c", since=since, page_size=page_size):
            days = [day for card in page.records for day in timecard_days(card)]
            yield Page(records=days, rejects=page.rejects, cursor=page.cursor, has_more=page.has_more)

    def read_conditions(self, object_name: str) -> list[str]:
        if object_name == "Contact":
            return ["pse__Is_Resource__c = true"]  # every other Contact is a customer's, not a resource
        if object_name in APPROVED_ONLY and self.approved_only:
            return ["pse__Status__c = 'Approved'"]
        return []


def timecard_days(card: SourceRecord) -> list[SourceRecord]:
    """A weekly timecard as one record per day with hours, each with the header's fields (resource, project,
    billable, status, the assignment's rates). A day's id is the card's and the weekday, so a card read again
    updates its days; a day whose hours went back to zero is no longer read."""
    header = {k: v for k, v in card.data.items() if not k.startswith(_PER_DAY)}
    try:
        monday = date.fromisoformat(str(card.data.get("pse__Start_Date__c"))[:10])
    except ValueError:
        return []
    days = []
    for offset, weekday in enumerate(WEEKDAYS):
        hours = card.data.get(f"pse__{weekday}_Hours__c")
        if not hours:
            continue
        data = {
            **header,
            "Date": (monday + timedelta(days=offset)).isoformat(),
            "Hours": hours,
            "Notes": card.data.get(f"pse__{weekday}_Notes__c"),
            "Timecard": card.external_id,
        }
        days.append(
            SourceRecord(external_id=f"{card.external_id}-{weekday[:3]}", updated_at=card.updated_at, data=data)
        )
    return days
