"""The Kimble sandbox's org: reference data, accounts, resources, engagements with their elements and
assignments, day time periods, and time entries and expense items computed from the firm; and the import
endpoints' rows applied to it."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from connectors.kimble.client import DEFAULT_EXTERNAL_ID_FIELD
from connectors.kimble.sandbox.schema import KEY_PREFIXES, SCHEMA, SEED_EPOCH, STATUS_DOMAINS, STATUSES
from connectors.salesforce_platform.org import ApiError, LazyTable, PlatformOrg, salesforce_id, sf_datetime
from connectors.sandbox.firm import business_day, convert, minute_stamps

IMPORTED = {"ResourceImport": "KimbleOne__Resource__c", "DeliveryGroupImport": "KimbleOne__DeliveryGroup__c"}
_IMPORT_DATE = re.compile(r"^(\d{2})/(\d{2})/(\d{4})$")


def _money(value: str | None) -> float | None:
    return float(Decimal(value)) if value is not None else None


def _stamp_of(text: str) -> str:
    return sf_datetime(datetime.fromisoformat(text.replace("Z", "+00:00")))


class KimbleOrg(PlatformOrg):
    schema = SCHEMA
    key_prefixes = KEY_PREFIXES

    def lazy_tables(self) -> dict[str, LazyTable]:
        return {
            "KimbleOne__TimeEntry__c": LazyTable(
                KEY_PREFIXES["KimbleOne__TimeEntry__c"], self._time_entry, self.firm.time_entry_count
            ),
            "KimbleOne__ExpenseItem__c": LazyTable(
                KEY_PREFIXES["KimbleOne__ExpenseItem__c"], self._expense, self.firm.expense_count
            ),
        }

    def _id(self, object_name: str, number: int) -> str:
        return salesforce_id(KEY_PREFIXES[object_name], number)

    # -- seeding ---------------------------------------------------------------------------------------------
    def _seed(self) -> None:
        firm = self.firm
        stamp = minute_stamps(SEED_EPOCH)
        self.status_of: dict[tuple[str, str], str] = {}
        for domain in STATUS_DOMAINS:
            for status in STATUSES:
                values = {"Name": status, "KimbleOne__Domain__c": domain, "KimbleOne__Enum__c": status}
                record = self._insert("KimbleOne__ReferenceData__c", values, stamp())
                self.status_of[(domain, status)] = record["Id"]
        for customer in firm.customers():
            values = {"Name": customer["name"], "Website": f"https://www.{customer['domain']}"}
            self._insert("Account", {**values, "CurrencyIsoCode": customer["currency"]}, stamp())
        for person in firm.people():
            self._insert(
                "KimbleOne__Resource__c",
                {
                    "KimbleOne__FirstName__c": person["first_name"],
                    "KimbleOne__LastName__c": person["last_name"],
                    "KimbleOne__Email__c": person["work_email"],
                    "KimbleOne__Grade__c": person["level"],
                    "KimbleOne__BusinessUnit__c": person["department"],
                    "KimbleOne__StartDate__c": person["hire_date"],
                    "KimbleOne__EndDate__c": person["termination_date"],
                    "KimbleOne__CostRate__c": _money(person["cost_rate"]),
                    "Employee_Number__c": person["employee_number"],
                    "CurrencyIsoCode": person["currency"],
                },
                stamp(),
            )
        active = self.status_of[("DeliveryGroupStatus", "Approved")]
        for project in firm.psa_projects():
            moment = stamp()
            group = self._insert(
                "KimbleOne__DeliveryGroup__c",
                {
                    "Name": project["name"][:80],
                    "KimbleOne__Reference__c": project["code"],
                    "KimbleOne__Account__c": self._id("Account", project["customer_id"]),
                    "KimbleOne__ExpectedStartDate__c": project["start_date"],
                    "KimbleOne__ExpectedEndDate__c": project["end_date"],
                    "KimbleOne__InvoicingCurrencyIsoCode__c": project["currency"],
                    "KimbleOne__Status__c": active,
                    "CurrencyIsoCode": project["currency"],
                },
                moment,
            )
            self._element_for(group, moment)
        self.periods = 0
        self._add_periods(math.ceil(firm.time_entry_count / firm.entries_per_day))
        # An assignment for each person on each project they booked time on, with the rates the project bills
        # and costs their time at, in its currency (as the firm's time entries carry them).
        self.assignment_of: dict[tuple[int, int], str] = {}
        for person, project in firm.bookings():
            record = self._insert(
                "KimbleOne__ActivityAssignment__c",
                {
                    "Name": f"{person['display_name']} - {project['code']}"[:80],
                    "KimbleOne__Resource__c": self._id("KimbleOne__Resource__c", person["id"]),
                    "KimbleOne__DeliveryElement__c": self._id("KimbleOne__DeliveryElement__c", project["id"]),
                    "KimbleOne__DeliveryGroup__c": self._id("KimbleOne__DeliveryGroup__c", project["id"]),
                    "KimbleOne__StartDate__c": project["start_date"],
                    "KimbleOne__ForecastRevenueRate__c": _money(
                        convert(person["bill_rate"], person["currency"], project["currency"])
                    ),
                    "KimbleOne__ForecastCostRate__c": _money(
                        convert(person["cost_rate"], person["currency"], project["currency"])
                    ),
                    "CurrencyIsoCode": project["currency"],
                },
                stamp(),
            )
            self.assignment_of[person["id"], project["id"]] = record["Id"]

    def _element_for(self, group: dict[str, Any], moment: datetime) -> None:
        values = {
            "Name": "Consulting",
            "KimbleOne__DeliveryGroup__c": group["Id"],
            "KimbleOne__Reference__c": f"{group['KimbleOne__Reference__c']}-01",
            "CurrencyIsoCode": group.get("CurrencyIsoCode") or "USD",
        }
        self._insert("KimbleOne__DeliveryElement__c", values, moment)

    def _add_periods(self, days: int) -> None:
        """Day time periods up to `days` business days from the firm's first (period n is business day n-1)."""
        for index in range(self.periods, days):
            day = business_day(index).isoformat()
            moment = SEED_EPOCH + timedelta(days=1, seconds=index)
            values = {"Name": day, "KimbleOne__StartDate__c": day, "KimbleOne__EndDate__c": day}
            self._insert("KimbleOne__TimePeriod__c", values, moment)
        self.periods = max(self.periods, days)

    # -- time entries and expense items, computed from their index ----------------------------------------------
    def _time_entry(self, index: int) -> dict[str, Any]:
        entry = self.firm.time_entry(index)
        stamp = _stamp_of(entry["updated_at"])
        day_index = index // self.firm.entries_per_day
        status = "Approved" if entry["approved"] else "Submitted"
        row: dict[str, Any] = {name: None for name in SCHEMA["KimbleOne__TimeEntry__c"]}
        row.update(
            Id=self._id("KimbleOne__TimeEntry__c", index + 1),
            IsDeleted=False,
            CreatedDate=stamp,
            LastModifiedDate=stamp,
            SystemModstamp=stamp,
            Name=f"TE-{index + 1:07d}",
            CurrencyIsoCode=entry["currency"],
            KimbleOne__Resource__c=self._id("KimbleOne__Resource__c", entry["person_id"]),
            KimbleOne__DeliveryElement__c=self._id("KimbleOne__DeliveryElement__c", entry["project_id"]),
            KimbleOne__ActivityAssignment__c=self.assignment_of.get((entry["person_id"], entry["project_id"])),
            KimbleOne__TimePeriod__c=self._id("KimbleOne__TimePeriod__c", day_index + 1),
            KimbleOne__EntryUnits__c=float(Decimal(entry["minutes"]) / 60),
            KimbleOne__Notes__c=entry["notes"],
            KimbleOne__IsChargeable__c=entry["billable"],
            KimbleOne__Status__c=self.status_of[("TimeEntryStatus", status)],
        )
        return row

    def _expense(self, index: int) -> dict[str, Any]:
        expense = self.firm.expense(index)
        stamp = _stamp_of(expense["updated_at"])
        status = "Approved" if expense["approved"] else "Submitted"
        row: dict[str, Any] = {name: None for name in SCHEMA["KimbleOne__ExpenseItem__c"]}
        row.update(
            Id=self._id("KimbleOne__ExpenseItem__c", index + 1),
            IsDeleted=False,
            CreatedDate=stamp,
            LastModifiedDate=stamp,
            SystemModstamp=stamp,
            Name=f"EX-{index + 1:07d}",
            CurrencyIsoCode=expense["currency"],
            KimbleOne__Resource__c=self._id("KimbleOne__Resource__c", expense["person_id"]),
            KimbleOne__DeliveryElement__c=self._id("KimbleOne__DeliveryElement__c", expense["project_id"]),
            KimbleOne__ExpenseDate__c=expense["date"],
            KimbleOne__Category__c=expense["category"],
            KimbleOne__IncurredAmount__c=float(Decimal(expense["amount"])),
            KimbleOne__IsChargeable__c=expense["billable"],
            KimbleOne__Notes__c=expense["notes"],
            KimbleOne__Status__c=self.status_of[("ExpenseItemStatus", status)],
        )
        return row

    def grow(self, *, time_entries: int | None = None, expenses: int | None = None) -> dict[str, int]:
        with self.lock:
            if time_entries is not None:
                self._add_periods(math.ceil(time_entries / self.firm.entries_per_day))
                self.lazy["KimbleOne__TimeEntry__c"].count = time_entries
            if expenses is not None:
                self.lazy["KimbleOne__ExpenseItem__c"].count = expenses
            return {
                "time_entries": self.lazy["KimbleOne__TimeEntry__c"].count,
                "expenses": self.lazy["KimbleOne__ExpenseItem__c"].count,
            }

    # -- the package's rules ---------------------------------------------------------------------------------
    def _derive(self, object_name: str, record: dict[str, Any], changes: dict[str, Any]) -> None:
        if object_name == "KimbleOne__Resource__c":
            names = (record.get("KimbleOne__FirstName__c"), record.get("KimbleOne__LastName__c"))
            record["Name"] = " ".join(p for p in names if p)
        elif object_name == "KimbleOne__DeliveryGroup__c" and not record.get("KimbleOne__Status__c"):
            record["KimbleOne__Status__c"] = self.status_of[("DeliveryGroupStatus", "Draft")]

    def _validate(self, object_name: str, merged: dict[str, Any], existing: dict[str, Any] | None) -> list[dict]:
        if object_name != "KimbleOne__DeliveryGroup__c":
            return []
        reference = str(merged.get("KimbleOne__Reference__c") or "").upper()
        for other in self.records[object_name].values():
            if other["Id"] != merged.get("Id") and str(other.get("KimbleOne__Reference__c") or "").upper() == reference:
                if existing is None or other["Id"] != existing["Id"]:
                    message = f"An engagement with the reference {reference} already exists."
                    return [
                        {"statusCode": "DUPLICATE_VALUE", "message": message, "fields": ["KimbleOne__Reference__c"]}
                    ]
        return []

    def _after_apply(self, object_name: str, record: dict[str, Any], before: dict[str, Any] | None) -> None:
        if object_name == "KimbleOne__DeliveryGroup__c" and before is None:
            self._element_for(record, datetime.now(UTC))  # Kimble builds an engagement's first element

    # -- the import endpoints ---------------------------------------------------------------------------------
    def import_rows(self, name: str, rows: list[Any], version: str) -> list[dict[str, Any]]:
        object_name = IMPORTED[name]
        schema = self.schema[object_name]
        results: list[dict[str, Any] | None] = []
        items: list[tuple[str, dict[str, Any], str]] = []
        positions: list[int] = []
        with self.lock:
            for position, row in enumerate(rows):
                if not isinstance(row, dict):
                    results.append(_refused(None, None, "INVALID_ROW", "A row must be an object."))
                    continue
                values = dict(row)
                external, record_id = values.pop("ExternalId", None), values.pop("Id", None)
                if not external and not record_id:
                    results.append(_refused(None, None, "REQUIRED_FIELD_MISSING", "A row needs its ExternalId or Id."))
                    continue
                problem = None
                for field_name, value in list(values.items()):
                    field = schema.get(field_name)
                    if field is None:
                        problem = (field_name, f"{field_name} is not a column of {name}.")
                        break
                    if field.type == "date" and value not in (None, ""):
                        match = _IMPORT_DATE.match(str(value))
                        if not match:
                            problem = (field_name, f"{value} is not a date in the dd/MM/yyyy format.")
                            break
                        values[field_name] = f"{match.group(3)}-{match.group(2)}-{match.group(1)}"
                try:
                    if problem is None:
                        self._check_parseable(object_name, values)
                except ApiError as error:
                    problem = ((error.fields or [""])[0], str(error))
                if problem is not None:
                    results.append(_refused(external, record_id, "INVALID_FIELD", problem[1], problem[0]))
                    continue
                if external:
                    values[DEFAULT_EXTERNAL_ID_FIELD] = external
                action = f"update:{record_id}" if record_id else f"upsert:{DEFAULT_EXTERNAL_ID_FIELD}"
                items.append((object_name, values, action))
                positions.append(position)
                results.append(None)
            saved = self.save_many(items, all_or_none=False, version=version) if items else []
        for position, item, result in zip(positions, items, saved, strict=True):
            external = item[1].get(DEFAULT_EXTERNAL_ID_FIELD)
            if result.get("success"):
                results[position] = {
                    "ExternalId": external,
                    "Id": result["id"],
                    "Success": True,
                    "Created": bool(result.get("created")),
                    "Errors": [],
                }
            else:
                errors = [
                    {"Code": e.get("statusCode"), "Field": (e.get("fields") or [None])[0], "Message": e.get("message")}
                    for e in result.get("errors") or []
                ]
                results[position] = {
                    "ExternalId": external,
                    "Id": None,
                    "Success": False,
                    "Created": False,
                    "Errors": errors,
                }
        return [r for r in results if r is not None]


def _refused(external: Any, record_id: Any, code: str, message: str, field: str | None = None) -> dict[str, Any]:
    error = {"Code": code, "Field": field, "Message": message}
    return {"ExternalId": external, "Id": record_id, "Success": False, "Created": False, "Errors": [error]}
