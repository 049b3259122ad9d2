"""The Sage Intacct sandbox's company: objects seeded from the firm's ERP history, and create and update on them."""

from __future__ import annotations

import xml.etree.ElementTree as ET  # noqa: S405 -- only to build answers; requests are parsed by defusedxml
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from connectors.intacct.client import DEFAULT_EXTERNAL_ID_FIELD, GATEWAY_PATH
from connectors.intacct.records import DATE_FORMAT, LINE_FIELDS, OBJECTS, WHEN_FORMAT
from connectors.sandbox.firm import minute_stamps

DEMO_CREDENTIALS = {
    "sender_id": "sysgenpro_sandbox",
    "sender_password": "sgp-intacct-sender-Qm4v",
    "company_id": "haldenrowe-demo",
    "user_id": "xml_gateway",
    "user_password": "sgp-intacct-user-7Tz2",
    "entity_id": "",
    "external_id_field": DEFAULT_EXTERNAL_ID_FIELD,
}
POD_PATH = "/pod2" + GATEWAY_PATH  # where getAPISession sends the company's calls
SESSION_TIMEOUT = timedelta(hours=1)
SEED_EPOCH = datetime(2024, 1, 2, 9, 0, 0, tzinfo=UTC)  # seeded records were last modified a minute apart from here


# The sandbox's own error numbers where Intacct's are not published (see the client's assumptions block).
SENDER_REFUSED = "XL03000006"


PARSE_ERROR = "XL03000003"
REQUIRED_MISSING = "BL34000061"
INVALID_REFERENCE = "BL01001973"
DUPLICATE_KEY = "BL01001974"
INVALID_VALUE = "BL01001975"
INVALID_FIELD = "PL04000055"
INVALID_REQUEST = "GW-0011"
TERMS = {"Net 15": 15, "Net 30": 30, "Net 45": 45, "Net 60": 60, "Due on receipt": 0}
BILLING_TYPES = {"Time and materials": "Time & Material", "Fixed fee": "Fixed Fee", "Retainer": "Fixed Fee"}
AUDIT_FIELDS = ("RECORDNO", "WHENMODIFIED")
REQUIRED = {
    "CUSTOMER": ("CUSTOMERID", "NAME"),
    "PROJECT": ("PROJECTID", "NAME", "PROJECTCATEGORY"),
    "EMPLOYEE": ("EMPLOYEEID", "PERSONALINFO.LASTNAME"),
    "ARINVOICE": ("CUSTOMERID", "WHENCREATED"),
}
NUMBER_FIELDS = {"BUDGETAMOUNT", "TOTALENTERED", "TOTALDUE", "RECORDNO"}
ENUMS = {
    "STATUS": ("active", "inactive"),
    "PROJECTCATEGORY": ("Contract", "Capitalized", "Internal Billable", "Internal Non-billable"),
    "BILLINGTYPE": ("Time & Material", "Fixed Fee", "Fixed Fee & Expenses"),
}
READ_ONLY = {"CUSTOMERNAME", "CUSTOMERKEY", "TOTALENTERED", "TOTALDUE", "STATE", "RECORDNO", "WHENMODIFIED"}


class FunctionFailed(Exception):
    """One function's failure, answered inside its <result>."""

    def __init__(self, errorno: str, description2: str, description: str = ""):
        super().__init__(description2)
        self.errorno, self.description, self.description2 = errorno, description, description2


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(WHEN_FORMAT)


def _us_date(iso: str | None) -> str | None:
    return date.fromisoformat(iso).strftime(DATE_FORMAT) if iso else None


def _flatten(element: ET.Element, prefix: str = "") -> dict[str, Any]:
    values: dict[str, Any] = {}
    for child in element:
        if child.tag == "ARINVOICEITEMS" and not prefix:
            continue
        name = f"{prefix}{child.tag}"
        if len(child):
            values.update(_flatten(child, f"{name}."))
        else:
            values[name] = (child.text or "").strip() or None
    return values


def _parse_date(value: str) -> date | None:
    try:
        return datetime.strptime(value, DATE_FORMAT).date()
    except (TypeError, ValueError):
        return None


class IntacctState:
    """The company's objects and their writes; `self.lock` guards them."""

    def reset_state(self) -> None:
        self.records: dict[str, dict[int, dict[str, Any]]] = {name: {} for name in OBJECTS}
        self.next_record_no = 1
        self.sessions: dict[str, tuple[str, datetime]] = {}  # session id -> (endpoint path, expiry)
        self.processed_control_ids: set[str] = set()
        self.answers_to_lose = 0
        self.volume_customers = 0
        self._seed()

    # -- seeding ---------------------------------------------------------------------------------------------
    def _seed(self) -> None:
        firm = self.firm
        stamp = minute_stamps(SEED_EPOCH)

        customers = {c["id"]: c for c in firm.customers()}
        for customer in firm.customers():
            address = customer["billing_address"]
            self._store(
                "CUSTOMER",
                {
                    "CUSTOMERID": customer["number"],
                    "NAME": customer["name"],
                    "STATUS": "active",
                    "TERMNAME": customer["payment_terms"],
                    "CURRENCY": customer["currency"],
                    "DISPLAYCONTACT.EMAIL1": f"accounts@{customer['domain']}",
                    "DISPLAYCONTACT.PHONE1": customer["phone"],
                    "DISPLAYCONTACT.URL1": f"https://{customer['domain']}",
                    "DISPLAYCONTACT.MAILADDRESS.ADDRESS1": address["street"],
                    "DISPLAYCONTACT.MAILADDRESS.CITY": address["city"],
                    "DISPLAYCONTACT.MAILADDRESS.STATE": address["region"] or None,
                    "DISPLAYCONTACT.MAILADDRESS.ZIP": address["postal_code"],
                    "DISPLAYCONTACT.MAILADDRESS.COUNTRY": address["country"],
                },
                stamp(),
            )
        people = firm.erp_people()  # the latest hires are not in the ERP yet
        in_erp = {p["work_email"]: p["employee_number"] for p in people}
        for person in people:
            self._store(
                "EMPLOYEE",
                {
                    "EMPLOYEEID": person["employee_number"],
                    "PERSONALINFO.FIRSTNAME": person["first_name"],
                    "PERSONALINFO.LASTNAME": person["last_name"],
                    "PERSONALINFO.EMAIL1": person["work_email"],
                    "TITLE": person["job_title"],
                    "DEPARTMENTID": person["department"],
                    "LOCATIONID": person["location"],
                    "SUPERVISORID": in_erp.get(person["supervisor_email"] or ""),
                    "STARTDATE": _us_date(person["hire_date"]),
                    "ENDDATE": _us_date(person["termination_date"]),
                    "STATUS": "active" if person["status"] == "Active" else "inactive",
                },
                stamp(),
            )
        for project in firm.erp_projects():  # the last won deals are not set up in the ERP yet
            self._store(
                "PROJECT",
                {
                    "PROJECTID": project["code"],
                    "NAME": project["name"],
                    "CUSTOMERID": customers[project["customer_id"]]["number"],
                    "PROJECTCATEGORY": "Contract",
                    "PROJECTSTATUS": "In Progress",
                    "BILLINGTYPE": BILLING_TYPES.get(project["billing_terms"], "Time & Material"),
                    "BEGINDATE": _us_date(project["start_date"]),
                    "ENDDATE": _us_date(project["end_date"]),
                    "MANAGERID": in_erp.get(project["manager_email"]),
                    "BUDGETAMOUNT": project["budget"],
                    "CURRENCY": project["currency"],
                    "STATUS": "active",
                },
                stamp(),
            )
        project_codes = {p["id"]: p["code"] for p in firm.erp_projects()}
        for invoice in firm.erp_invoices():
            customer = customers[invoice["customer_id"]]
            day = date.fromisoformat(invoice["date"])
            self._store(
                "ARINVOICE",
                {
                    "RECORDID": invoice["number"],
                    "CUSTOMERID": customer["number"],
                    "WHENCREATED": day.strftime(DATE_FORMAT),
                    "WHENDUE": (day + timedelta(days=TERMS.get(customer["payment_terms"], 30))).strftime(DATE_FORMAT),
                    "TERMNAME": customer["payment_terms"],
                    "CURRENCY": invoice["currency"],
                    "DESCRIPTION": invoice["description"],
                    "STATE": "Paid",  # issued before the firm moved its time to the PSA: long since paid
                    "ARINVOICEITEMS": [
                        {
                            "ACCOUNTNO": "4000",
                            "AMOUNT": invoice["amount"],
                            "MEMO": invoice["description"],
                            "PROJECTID": project_codes[invoice["project_id"]],
                        }
                    ],
                },
                stamp(),
            )

    def seed(self, volumes: dict[str, int]) -> dict[str, int]:
        """Volume for paging tests only: synthetic customers after the firm's (the firm has 40)."""
        unknown = set(volumes) - {"customers"}
        if unknown:
            raise ValueError(f"the intacct sandbox seeds customers, not {sorted(unknown)}")
        with self.lock:
            moment = SEED_EPOCH + timedelta(days=400)
            for _ in range(max(0, volumes["customers"] - len(self.records["CUSTOMER"]))):
                self.volume_customers += 1
                number = self.volume_customers
                values = {"CUSTOMERID": f"V{number:06d}", "NAME": f"Volume Customer {number:06d}", "STATUS": "active"}
                self._store("CUSTOMER", values, moment + timedelta(seconds=number))
            return {"customers": len(self.records["CUSTOMER"])}

    def _store(self, object_name: str, values: dict[str, Any], moment: datetime) -> dict[str, Any]:
        record = {k: v for k, v in values.items() if v is not None}
        record["RECORDNO"] = self.next_record_no
        record["WHENMODIFIED"] = _when(moment)
        self.next_record_no += 1
        self._derive(object_name, record)
        self.records[object_name][record["RECORDNO"]] = record
        return record

    def _derive(self, object_name: str, record: dict[str, Any]) -> None:
        if object_name in ("PROJECT", "ARINVOICE") and record.get("CUSTOMERID"):
            customer = self._find("CUSTOMER", "CUSTOMERID", record["CUSTOMERID"])
            record["CUSTOMERNAME"] = customer["NAME"] if customer else None
            if object_name == "PROJECT":
                record["CUSTOMERKEY"] = customer["RECORDNO"] if customer else None
        if object_name == "ARINVOICE":
            total = sum(
                (Decimal(str(line.get("AMOUNT") or 0)) for line in record.get("ARINVOICEITEMS", [])), Decimal(0)
            )
            record["TOTALENTERED"] = str(total)
            record.setdefault("TOTALDUE", str(total))
            record.setdefault("STATE", "Posted")

    def _find(self, object_name: str, field: str, value: Any) -> dict[str, Any] | None:
        return next((r for r in self.records[object_name].values() if str(r.get(field)) == str(value)), None)

    # -- create and update -------------------------------------------------------------------------------------
    def _write(self, action: str, element: ET.Element) -> ET.Element:
        if len(element) != 1 or element[0].tag not in OBJECTS:
            raise FunctionFailed(INVALID_FIELD, f"{action} takes one of {', '.join(OBJECTS)}.")
        body = element[0]
        object_name = body.tag
        values = _flatten(body)
        lines = None
        items = body.find("ARINVOICEITEMS")
        if items is not None:
            lines = [_flatten(line) for line in items]
        known = self._fields_of(object_name)
        for name in values:
            if name not in known or (name in READ_ONLY and name != "RECORDNO"):
                raise FunctionFailed(INVALID_FIELD, f"Field {name} is not valid for {action} of {object_name}.")
        existing = None
        if action == "update":
            record_no = values.pop("RECORDNO", None)
            key = OBJECTS[object_name].key_field
            if record_no:
                existing = self.records[object_name].get(int(record_no)) if str(record_no).isdigit() else None
            elif values.get(key):
                existing = self._find(object_name, key, values[key])
            if existing is None:
                raise FunctionFailed(INVALID_REFERENCE, f"No {object_name} with RECORDNO {record_no} exists.")
        values.pop("RECORDNO", None)
        merged = {**(existing or {}), **values}
        if lines is not None:
            merged["ARINVOICEITEMS"] = lines
        self._validate(object_name, merged, existing)
        if existing is None:
            record = self._store(object_name, merged, datetime.now(UTC))
        else:
            existing.update(merged)
            existing["WHENMODIFIED"] = _when(datetime.now(UTC))
            self._derive(object_name, existing)
            record = existing
        data = ET.Element("data", listtype="objects", count="1")
        written = ET.SubElement(data, object_name.lower())
        ET.SubElement(written, "RECORDNO").text = str(record["RECORDNO"])
        key = OBJECTS[object_name].key_field
        ET.SubElement(written, key).text = str(record.get(key) or "")
        return data

    def _validate(self, object_name: str, record: dict[str, Any], existing: dict[str, Any] | None) -> None:
        for name in REQUIRED[object_name]:
            if not record.get(name):
                raise FunctionFailed(REQUIRED_MISSING, f"Required field {name} is missing.")
        key = OBJECTS[object_name].key_field
        clash = self._find(object_name, key, record.get(key)) if object_name != "ARINVOICE" else None
        if clash is not None and clash is not existing:
            raise FunctionFailed(
                DUPLICATE_KEY, f"Another {object_name} with the given value(s) {record[key]} already exists."
            )
        for name, allowed in ENUMS.items():
            if record.get(name) is not None and name in self._fields_of(object_name) and record[name] not in allowed:
                raise FunctionFailed(
                    INVALID_VALUE, f"Invalid value {record[name]} for {name}; use {', '.join(allowed)}."
                )
        for name in OBJECTS[object_name].date_fields:
            if record.get(name) and _parse_date(record[name]) is None:
                raise FunctionFailed(INVALID_VALUE, f"Invalid date {record[name]} for {name}: use MM/DD/YYYY.")
        references = {
            ("PROJECT", "CUSTOMERID"): ("CUSTOMER", "Customer"),
            ("PROJECT", "MANAGERID"): ("EMPLOYEE", "Project manager"),
            ("PROJECT", "PARENTID"): ("PROJECT", "Parent project"),
            ("EMPLOYEE", "SUPERVISORID"): ("EMPLOYEE", "Supervisor"),
            ("ARINVOICE", "CUSTOMERID"): ("CUSTOMER", "Customer"),
        }
        for (owner, field), (target, label) in references.items():
            if owner == object_name and record.get(field):
                if self._find(target, OBJECTS[target].key_field, record[field]) is None:
                    raise FunctionFailed(INVALID_REFERENCE, f"Invalid {label} {record[field]} specified.")
        if object_name == "PROJECT" and record.get("PROJECTCATEGORY") == "Contract" and not record.get("CUSTOMERID"):
            raise FunctionFailed(REQUIRED_MISSING, "A Contract project requires a customer (CUSTOMERID).")
        if object_name == "ARINVOICE":
            self._validate_invoice(record)

    def _validate_invoice(self, record: dict[str, Any]) -> None:
        if not record.get("WHENDUE") and not record.get("TERMNAME"):
            raise FunctionFailed(REQUIRED_MISSING, "Provide a due date (WHENDUE) or payment terms (TERMNAME).")
        lines = record.get("ARINVOICEITEMS") or []
        if not lines:
            raise FunctionFailed(REQUIRED_MISSING, "An invoice needs at least one line (ARINVOICEITEMS).")
        for number, line in enumerate(lines, 1):
            unknown = set(line) - set(LINE_FIELDS)
            if unknown:
                raise FunctionFailed(INVALID_FIELD, f"Line {number}: unknown field {sorted(unknown)[0]}.")
            if not line.get("ACCOUNTNO") or line.get("AMOUNT") in (None, ""):
                raise FunctionFailed(REQUIRED_MISSING, f"Line {number}: ACCOUNTNO and AMOUNT are required.")
            try:
                Decimal(str(line["AMOUNT"]))
            except InvalidOperation:
                raise FunctionFailed(INVALID_VALUE, f"Line {number}: invalid amount {line['AMOUNT']}.") from None
            if line.get("PROJECTID") and self._find("PROJECT", "PROJECTID", line["PROJECTID"]) is None:
                raise FunctionFailed(
                    INVALID_REFERENCE, f"Line {number}: invalid Project {line['PROJECTID']} specified."
                )

    # -- for tests ---------------------------------------------------------------------------------------------
    def count(self, object_name: str) -> int:
        with self.lock:
            return len(self.records[object_name])

    def find(self, object_name: str, field: str, value: str) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(r) for r in self.records[object_name].values() if str(r.get(field)) == value]
