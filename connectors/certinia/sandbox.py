"""Certinia sandbox: the Salesforce platform's REST emulator with the `pse__` package's objects and rules.

Seeded from the shared Firm as a PSA holds it: every project (the PSA-only follow-on phases too, under their
parent), every person as a resource Contact with the cost rate on the Contact (a few have none, on purpose),
assignments with their schedules for the people who booked time on a project (with the person's bill and cost
rates in the project's currency, which the firm's time entries carry), and the firm's time entries and
expenses. Time entries become weekly timecard headers (one per resource, project, week and billable flag, with
each day's hours and notes); timecards and expenses are computed from their index, so 100,000 time entries cost
no memory (`/_sandbox/seed {"time_entries": 100000}`).
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import OrderedDict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any

from connectors.certinia.client import DEFAULT_EXTERNAL_ID_FIELD, WEEKDAYS
from connectors.salesforce_platform.org import (
    Field,
    LazyTable,
    PlatformOrg,
    PlatformSandbox,
    lookup_field,
    package_object,
    salesforce_id,
    salesforce_number,
    sf_datetime,
)
from connectors.sandbox.firm import Firm, business_day, convert, minute_stamps

DEMO_CREDENTIALS = {
    "client_id": "3MVG9sgpDemoCertiniaKey.SysGenProConnectSandbox",
    "client_secret": "sgp-demo-certinia-secret-8d2e4a",
    "username": "psa-integration@sysgenpro-demo.example",
    "password": "demo-certinia-password-and-token",
    "external_id_field": DEFAULT_EXTERNAL_ID_FIELD,
    "approved_only": "yes",
}

# ---------------------------------------------------------------------------------------------------------------
# (unverified) assumptions, kept in this one place:
# - the org's timecard week starts on Monday (a Certinia setting; the firm's time starts on a Monday);
# - the wording of the package's validation errors below, reported as FIELD_CUSTOM_VALIDATION_EXCEPTION;
# - pse__Billing_Type__c offers Time and Materials, Fixed Price and Retainer; pse__Type__c on expenses holds
#   the org's own categories (the firm's);
# - the org keeps the HR employee number on the Contact in a custom field, Employee_Number__c.
# ---------------------------------------------------------------------------------------------------------------
VALIDATION_ERROR = "FIELD_CUSTOM_VALIDATION_EXCEPTION"
SEED_EPOCH = datetime(2024, 1, 2, 9, 0, 0, tzinfo=UTC)  # seeded accounts, resources, projects: a minute apart
CURRENCIES = ("USD", "EUR", "GBP", "CAD")
BILLING_TYPES = {"Time and materials": "Time and Materials", "Fixed fee": "Fixed Price", "Retainer": "Retainer"}
EXPENSE_TYPES = ("Travel", "Lodging", "Meals", "Mileage", "Software")
TIMECARD_STATUSES = ("Saved", "Submitted", "Approved", "Rejected")
WEEK_CACHE = 64  # weeks of grouped time entries kept computed (a page of 2,000 timecards spans about a dozen)

KEY_PREFIXES = {
    "Account": "001",
    "Contact": "003",
    "pse__Proj__c": "a1A",
    "pse__Schedule__c": "a1B",
    "pse__Assignment__c": "a1C",
    "pse__Resource_Request__c": "a1D",
    "pse__Timecard_Header__c": "a1E",
    "pse__Expense__c": "a1F",
}


_object = partial(package_object, currencies=CURRENCIES)


def _read_only(name: str, kind: str, label: str) -> Field:
    return Field(name, kind, label, createable=False, updateable=False)


SCHEMA: dict[str, dict[str, Field]] = {
    "Account": _object(Field("Website", "url", "Website", 255)),
    "Contact": {
        **_object(
            Field("FirstName", "string", "First Name", 40),
            Field("LastName", "string", "Last Name", 80, required=True),
            Field("Email", "string", "Email", 80),
            Field("Title", "string", "Title", 128),
            Field("Department", "string", "Department", 80),
            Field("MailingCountry", "string", "Mailing Country", 80),
            Field("Employee_Number__c", "string", "Employee Number", 20),
            Field("pse__Is_Resource__c", "boolean", "Is Resource"),
            Field("pse__Is_Resource_Active__c", "boolean", "Is Resource Active"),
            Field("pse__Resource_Role__c", "picklist", "Resource Role", 255),
            Field("pse__Default_Cost_Rate__c", "currency", "Default Cost Rate"),
            Field("pse__Start_Date__c", "date", "Start Date"),
            Field("pse__Last_Date__c", "date", "Last Date"),
        ),
        # A Contact's Name is compound (First and Last): read-only.
        "Name": _read_only("Name", "string", "Full Name"),
    },
    "pse__Proj__c": _object(
        Field("pse__Project_ID__c", "string", "Project ID", 20, external_id=True),
        lookup_field("pse__Account__c", "Account", "Account"),
        lookup_field("pse__Project_Manager__c", "Project Manager", "Contact"),
        lookup_field("pse__Parent_Project__c", "Parent Project", "pse__Proj__c"),
        Field("pse__Start_Date__c", "date", "Start Date"),
        Field("pse__End_Date__c", "date", "End Date"),
        Field("pse__Stage__c", "picklist", "Stage", 255, picklist=("Planned", "In Progress", "Completed", "Canceled")),
        Field("pse__Billing_Type__c", "picklist", "Billing Type", 255, picklist=tuple(BILLING_TYPES.values())),
        Field("pse__Project_Type__c", "picklist", "Project Type", 255, picklist=("Customer Project", "Internal")),
        Field("pse__Is_Active__c", "boolean", "Active"),
        Field("pse__Is_Billable__c", "boolean", "Billable"),
        Field("pse__Bookings__c", "currency", "Bookings"),
    ),
    "pse__Schedule__c": _object(
        Field("pse__Start_Date__c", "date", "Start Date", required=True),
        Field("pse__End_Date__c", "date", "End Date", required=True),
        Field("pse__Scheduled_Hours__c", "double", "Scheduled Hours"),
    ),
    "pse__Assignment__c": _object(
        lookup_field("pse__Project__c", "Project", "pse__Proj__c", required=True),
        lookup_field("pse__Resource__c", "Resource", "Contact", required=True),
        lookup_field("pse__Schedule__c", "Schedule", "pse__Schedule__c", required=True),
        Field("pse__Role__c", "string", "Role", 255),
        Field("pse__Status__c", "picklist", "Status", 255, picklist=("Tentative", "Scheduled", "Closed")),
        Field("pse__Bill_Rate__c", "currency", "Bill Rate"),
        Field("pse__Cost_Rate_Amount__c", "currency", "Cost Rate Amount"),
        Field("pse__Is_Billable__c", "boolean", "Billable"),
    ),
    "pse__Resource_Request__c": _object(
        lookup_field("pse__Project__c", "Project", "pse__Proj__c", required=True),
        Field("pse__Resource_Role__c", "string", "Resource Role", 255, required=True),
        Field("pse__SOW_Hours__c", "double", "SOW Hours"),
        Field("pse__Start_Date__c", "date", "Start Date", required=True),
        Field("pse__End_Date__c", "date", "End Date", required=True),
        Field("pse__Status__c", "picklist", "Status", 255, picklist=("Draft", "Ready to Staff", "Assigned")),
        Field("pse__Notes__c", "textarea", "Notes", 32000),
    ),
    "pse__Timecard_Header__c": {
        **_object(
            lookup_field("pse__Resource__c", "Resource", "Contact", required=True),
            lookup_field("pse__Project__c", "Project", "pse__Proj__c", required=True),
            lookup_field("pse__Assignment__c", "Assignment", "pse__Assignment__c"),
            Field("pse__Start_Date__c", "date", "Start Date", required=True),
            Field("pse__End_Date__c", "date", "End Date", required=True),
            *(Field(f"pse__{day}_Hours__c", "double", f"{day} Hours") for day in WEEKDAYS),
            *(Field(f"pse__{day}_Notes__c", "textarea", f"{day} Notes", 255) for day in WEEKDAYS),
            _read_only("pse__Total_Hours__c", "double", "Total Hours"),
            Field("pse__Billable__c", "boolean", "Billable"),
            Field("pse__Status__c", "picklist", "Status", 255, picklist=TIMECARD_STATUSES, restricted=True),
            _read_only("pse__Submitted__c", "boolean", "Submitted"),
            _read_only("pse__Approved__c", "boolean", "Approved"),
        ),
        "Name": _read_only("Name", "string", "Timecard ID"),  # an auto-number, TC-0000001
    },
    "pse__Expense__c": {
        **_object(
            lookup_field("pse__Resource__c", "Resource", "Contact", required=True),
            lookup_field("pse__Project__c", "Project", "pse__Proj__c", required=True),
            Field("pse__Expense_Date__c", "date", "Expense Date", required=True),
            Field("pse__Type__c", "picklist", "Type", 255, required=True, picklist=EXPENSE_TYPES, restricted=True),
            Field("pse__Amount__c", "currency", "Amount", required=True),
            Field("pse__Billable__c", "boolean", "Billable"),
            Field("pse__Non_Reimbursible__c", "boolean", "Non-Reimbursable"),
            Field("pse__Description__c", "textarea", "Description", 255),
            Field("pse__Status__c", "picklist", "Status", 255, picklist=("Draft", "Submitted", "Approved")),
            _read_only("pse__Approved__c", "boolean", "Approved"),
        ),
        "Name": _read_only("Name", "string", "Expense ID"),  # an auto-number, EX-0000001
    },
}


def _money(value: str | None) -> float | None:
    return float(Decimal(value)) if value is not None else None


class CertiniaOrg(PlatformOrg):
    """A PSA org: resources, projects, assignments, and timecards and expenses computed from the firm."""

    schema = SCHEMA
    key_prefixes = KEY_PREFIXES

    def lazy_tables(self) -> dict[str, LazyTable]:
        self._weeks: OrderedDict[int, list[dict[str, Any]]] = OrderedDict()
        self._count_timecards(self.firm.time_entry_count)
        return {
            "pse__Timecard_Header__c": LazyTable(
                KEY_PREFIXES["pse__Timecard_Header__c"], self._timecard, self._timecard_prefix[-1]
            ),
            "pse__Expense__c": LazyTable(KEY_PREFIXES["pse__Expense__c"], self._expense, self.firm.expense_count),
        }

    # -- seeding ---------------------------------------------------------------------------------------------

    def _seed(self) -> None:
        firm = self.firm
        stamp = minute_stamps(SEED_EPOCH)

        # Ids follow the firm's numbering (customer n is the n-th Account...), so lazy rows can name them.
        for customer in firm.customers():
            values = {"Name": customer["name"], "Website": f"https://www.{customer['domain']}"}
            self._insert("Account", {**values, "CurrencyIsoCode": customer["currency"]}, stamp())
        self.contact_of = {}
        for person in firm.people():
            record = self._insert(
                "Contact",
                {
                    "FirstName": person["first_name"],
                    "LastName": person["last_name"],
                    "Email": person["work_email"],
                    "Title": person["job_title"],
                    "Department": person["department"],
                    "MailingCountry": person["country"],
                    "Employee_Number__c": person["employee_number"],
                    "pse__Is_Resource__c": True,
                    "pse__Is_Resource_Active__c": person["status"] == "Active",
                    "pse__Resource_Role__c": person["level"],
                    "pse__Default_Cost_Rate__c": _money(person["cost_rate"]),  # None for a few, on purpose
                    "pse__Start_Date__c": person["hire_date"],
                    "pse__Last_Date__c": person["termination_date"],
                    "CurrencyIsoCode": person["currency"],
                },
                stamp(),
            )
            self.contact_of[person["work_email"]] = record["Id"]
        for project in firm.psa_projects():
            parent = project.get("parent_id")
            self._insert(
                "pse__Proj__c",
                {
                    "Name": project["name"][:80],
                    "pse__Project_ID__c": project["code"],
                    "pse__Account__c": self._id("Account", project["customer_id"]),
                    "pse__Project_Manager__c": self.contact_of.get(project["manager_email"]),
                    "pse__Parent_Project__c": self._id("pse__Proj__c", parent) if parent else None,
                    "pse__Start_Date__c": project["start_date"],
                    "pse__End_Date__c": project["end_date"],
                    "pse__Stage__c": "In Progress",
                    "pse__Billing_Type__c": BILLING_TYPES.get(project["billing_terms"], "Time and Materials"),
                    "pse__Project_Type__c": "Customer Project",
                    "pse__Is_Active__c": True,
                    "pse__Is_Billable__c": True,
                    "pse__Bookings__c": _money(project["budget"]),
                    "CurrencyIsoCode": project["currency"],
                },
                stamp(),
            )
        # Assignments (each with its schedule) for the people who booked time on a project, in booking order.
        self.assignment_of: dict[tuple[int, int], str] = {}
        for person, project in firm.bookings():
            moment = stamp()
            schedule = self._insert(
                "pse__Schedule__c",
                {"pse__Start_Date__c": project["start_date"], "pse__End_Date__c": project["end_date"]},
                moment,
            )
            assignment = self._insert(
                "pse__Assignment__c",
                {
                    "Name": f"{person['display_name']} - {project['code']}"[:80],
                    "pse__Project__c": self._id("pse__Proj__c", project["id"]),
                    "pse__Resource__c": self.contact_of[person["work_email"]],
                    "pse__Schedule__c": schedule["Id"],
                    "pse__Role__c": person["level"],
                    "pse__Status__c": "Scheduled",
                    # The project bills and costs the resource's time in its own currency, as the firm's PSA does.
                    "pse__Bill_Rate__c": _money(convert(person["bill_rate"], person["currency"], project["currency"])),
                    "pse__Cost_Rate_Amount__c": _money(
                        convert(person["cost_rate"], person["currency"], project["currency"])
                    ),
                    "pse__Is_Billable__c": person["billable"],
                    "CurrencyIsoCode": project["currency"],
                },
                moment,
            )
            self.assignment_of[person["id"], project["id"]] = assignment["Id"]

    def _id(self, object_name: str, firm_id: int) -> str:
        return salesforce_id(KEY_PREFIXES[object_name], firm_id)

    # -- timecards: the firm's time entries grouped by resource, project, week and billable flag ---------------

    def _count_timecards(self, entries: int) -> None:
        """How many timecards each week holds (prefix sums), computed once per volume."""
        self._entry_count = entries
        self._weeks.clear()
        per_week = 5 * self.firm.entries_per_day
        prefix = [0]
        for week in range(math.ceil(entries / per_week)):
            prefix.append(prefix[-1] + len(self._week(week)))
        self._timecard_prefix = prefix

    def _week(self, week: int) -> list[dict[str, Any]]:
        cards = self._weeks.get(week)
        if cards is not None:
            self._weeks.move_to_end(week)
            return cards
        per_week = 5 * self.firm.entries_per_day
        groups: dict[tuple[int, int, bool], dict[str, Any]] = {}
        start = week * per_week
        for entry in self.firm.time_entries(start, max(0, min(per_week, self._entry_count - start))):
            key = (entry["person_id"], entry["project_id"], entry["billable"])
            card = groups.setdefault(key, {"key": key, "days": {}, "approved": True, "email": entry["person_email"]})
            weekday = date.fromisoformat(entry["date"]).weekday()
            card["days"][weekday] = (Decimal(entry["minutes"]) / 60, entry["notes"])
            card["approved"] = card["approved"] and entry["approved"]
        cards = list(groups.values())
        self._weeks[week] = cards
        if len(self._weeks) > WEEK_CACHE:
            self._weeks.popitem(last=False)
        return cards

    def _timecard(self, index: int) -> dict[str, Any]:
        week = bisect_right(self._timecard_prefix, index) - 1
        position = index - self._timecard_prefix[week]
        card = self._week(week)[position]
        person_id, project_id, billable = card["key"]
        monday = business_day(week * 5)
        created = datetime(monday.year, monday.month, monday.day, 17, tzinfo=UTC) + timedelta(days=4)
        # Approved (or last submitted) the Monday after the week, one card a second: later cards change later.
        modified = created + timedelta(days=3, hours=-8, seconds=position)
        status = "Approved" if card["approved"] else "Submitted"
        row: dict[str, Any] = {name: None for name in SCHEMA["pse__Timecard_Header__c"]}
        row.update(
            Id=salesforce_id(KEY_PREFIXES["pse__Timecard_Header__c"], index + 1),
            IsDeleted=False,
            CreatedDate=sf_datetime(created),
            LastModifiedDate=sf_datetime(modified),
            SystemModstamp=sf_datetime(modified),
            Name=f"TC-{index + 1:07d}",
            CurrencyIsoCode=self.firm.person(person_id)["currency"],
            pse__Resource__c=self.contact_of[card["email"]],
            pse__Project__c=self._id("pse__Proj__c", project_id),
            pse__Assignment__c=self.assignment_of.get((person_id, project_id)),
            pse__Start_Date__c=monday.isoformat(),
            pse__End_Date__c=(monday + timedelta(days=6)).isoformat(),
            pse__Billable__c=billable,
            pse__Status__c=status,
        )
        for weekday, day in enumerate(WEEKDAYS):
            hours, notes = card["days"].get(weekday, (Decimal(0), None))
            row[f"pse__{day}_Hours__c"] = float(hours)
            row[f"pse__{day}_Notes__c"] = notes
        _derive_timecard(row)
        return row

    def _expense(self, index: int) -> dict[str, Any]:
        expense = self.firm.expense(index)
        stamp = sf_datetime(datetime.fromisoformat(expense["updated_at"].replace("Z", "+00:00")))
        row: dict[str, Any] = {name: None for name in SCHEMA["pse__Expense__c"]}
        row.update(
            Id=salesforce_id(KEY_PREFIXES["pse__Expense__c"], index + 1),
            IsDeleted=False,
            CreatedDate=stamp,
            LastModifiedDate=stamp,
            SystemModstamp=stamp,
            Name=f"EX-{index + 1:07d}",
            CurrencyIsoCode=expense["currency"],
            pse__Resource__c=self.contact_of[expense["person_email"]],
            pse__Project__c=self._id("pse__Proj__c", expense["project_id"]),
            pse__Expense_Date__c=expense["date"],
            pse__Type__c=expense["category"],
            pse__Amount__c=float(Decimal(expense["amount"])),
            pse__Billable__c=expense["billable"],
            pse__Non_Reimbursible__c=not expense["reimbursable"],
            pse__Description__c=expense["notes"],
            pse__Status__c="Approved" if expense["approved"] else "Submitted",
            pse__Approved__c=expense["approved"],
        )
        return row

    def grow(self, *, time_entries: int | None = None, expenses: int | None = None) -> dict[str, int]:
        with self.lock:
            if time_entries is not None:
                self._count_timecards(time_entries)
                self.lazy["pse__Timecard_Header__c"].count = self._timecard_prefix[-1]
            if expenses is not None:
                self.lazy["pse__Expense__c"].count = expenses
            return {
                "time_entries": self._entry_count,
                "timecards": self.lazy["pse__Timecard_Header__c"].count,
                "expenses": self.lazy["pse__Expense__c"].count,
            }

    # -- the package's rules ---------------------------------------------------------------------------------

    def _derive(self, object_name: str, record: dict[str, Any], changes: dict[str, Any]) -> None:
        if object_name in ("pse__Timecard_Header__c", "pse__Expense__c") and not record.get("Name"):
            prefix = "TC" if object_name == "pse__Timecard_Header__c" else "EX"
            record["Name"] = f"{prefix}-{salesforce_number(record['Id']):07d}"  # the auto-number
        if object_name == "pse__Timecard_Header__c":
            _derive_timecard(record)
        elif object_name == "pse__Expense__c":
            record["pse__Approved__c"] = record.get("pse__Status__c") == "Approved"
        elif object_name == "Contact":
            record["Name"] = " ".join(p for p in (record.get("FirstName"), record.get("LastName")) if p)

    def _validate(self, object_name: str, merged: dict[str, Any], existing: dict[str, Any] | None) -> list[dict]:
        errors = []
        resource_id = merged.get("pse__Resource__c")
        if resource_id and object_name in ("pse__Assignment__c", "pse__Timecard_Header__c", "pse__Expense__c"):
            resource = self._find_by_id("Contact", str(resource_id))
            if resource is not None and not resource.get("pse__Is_Resource__c"):
                errors.append(_error(f"The contact {resource.get('Name')} is not a resource.", "pse__Resource__c"))
        if object_name == "pse__Timecard_Header__c":
            for day in WEEKDAYS:
                hours = merged.get(f"pse__{day}_Hours__c")
                if hours is not None and not 0 <= float(hours) <= 24:
                    field = f"pse__{day}_Hours__c"
                    errors.append(_error(f"{day} hours must be between 0 and 24.", field))
            if existing is not None and existing.get("pse__Status__c") == "Approved":
                errors.append(_error("An approved timecard cannot be changed.", "pse__Status__c"))
        return errors


def _derive_timecard(record: dict[str, Any]) -> None:
    record["pse__Total_Hours__c"] = float(sum(Decimal(str(record.get(f"pse__{d}_Hours__c") or 0)) for d in WEEKDAYS))
    record["pse__Submitted__c"] = record.get("pse__Status__c") in ("Submitted", "Approved")
    record["pse__Approved__c"] = record.get("pse__Status__c") == "Approved"


def _error(message: str, field: str) -> dict[str, Any]:
    return {"statusCode": VALIDATION_ERROR, "message": message, "fields": [field]}


class CertiniaSandbox(PlatformSandbox):
    vendor = "certinia"
    org_class = CertiniaOrg
    credentials = DEMO_CREDENTIALS
    org: CertiniaOrg

    def seed(self, volumes: dict[str, int]) -> dict[str, int]:
        unknown = set(volumes) - {"time_entries", "expenses"}
        if unknown:
            raise ValueError(f"the certinia sandbox seeds time_entries and expenses, not {sorted(unknown)}")
        if any(count < 0 for count in volumes.values()):
            raise ValueError("volumes must be zero or more")
        return self.org.grow(time_entries=volumes.get("time_entries"), expenses=volumes.get("expenses"))


def create_app(firm: Firm | None = None) -> CertiniaSandbox:
    return CertiniaSandbox(firm)
