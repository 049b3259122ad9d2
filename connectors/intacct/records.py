"""Sage Intacct's objects and fields as the XML gateway names them, and the conversions between its XML, its
dates and error lists and our records."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET  # noqa: S405 -- only to build requests; responses are parsed by defusedxml
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import requests

from connectors.http import parse_retry_after

DTD_VERSION = "3.0"
RATE_LIMITED_ERROR = "GW-0010"


THROTTLE_WAIT = 1.0  # seconds to wait after a 429 that names no Retry-After


WHEN_FORMAT = "%m/%d/%Y %H:%M:%S"


DATE_FORMAT = "%m/%d/%Y"


@dataclass(frozen=True)
class IntacctObject:
    """One Intacct object: its key field, the fields read and offered to mappings, and which hold dates."""

    name: str
    label: str
    key_field: str  # the company's own id for the record (CUSTOMERID...)
    fields: tuple[str, ...]
    date_fields: tuple[str, ...] = ()
    lines: str | None = None  # the owned line items element (ARINVOICEITEMS) and its line element name


OBJECTS: dict[str, IntacctObject] = {
    "CUSTOMER": IntacctObject(
        "CUSTOMER",
        "Customers",
        "CUSTOMERID",
        (
            "CUSTOMERID",
            "NAME",
            "STATUS",
            "TAXID",
            "TERMNAME",
            "CURRENCY",
            "DISPLAYCONTACT.EMAIL1",
            "DISPLAYCONTACT.PHONE1",
            "DISPLAYCONTACT.URL1",
            "DISPLAYCONTACT.MAILADDRESS.ADDRESS1",
            "DISPLAYCONTACT.MAILADDRESS.CITY",
            "DISPLAYCONTACT.MAILADDRESS.STATE",
            "DISPLAYCONTACT.MAILADDRESS.ZIP",
            "DISPLAYCONTACT.MAILADDRESS.COUNTRY",
        ),
    ),
    "PROJECT": IntacctObject(
        "PROJECT",
        "Projects",
        "PROJECTID",
        (
            "PROJECTID",
            "NAME",
            "CUSTOMERID",
            "CUSTOMERKEY",  # the customer's RECORDNO: how a read links the project to the customer it read
            "CUSTOMERNAME",
            "PARENTID",
            "PROJECTCATEGORY",
            "PROJECTSTATUS",
            "BILLINGTYPE",
            "BEGINDATE",
            "ENDDATE",
            "MANAGERID",
            "BUDGETAMOUNT",
            "CURRENCY",
            "STATUS",
        ),
        date_fields=("BEGINDATE", "ENDDATE"),
    ),
    "EMPLOYEE": IntacctObject(
        "EMPLOYEE",
        "Employees",
        "EMPLOYEEID",
        (
            "EMPLOYEEID",
            "PERSONALINFO.FIRSTNAME",
            "PERSONALINFO.LASTNAME",
            "PERSONALINFO.EMAIL1",
            "TITLE",
            "DEPARTMENTID",
            "LOCATIONID",
            "SUPERVISORID",
            "STARTDATE",
            "ENDDATE",
            "STATUS",
        ),
        date_fields=("STARTDATE", "ENDDATE"),
    ),
    "ARINVOICE": IntacctObject(
        "ARINVOICE",
        "AR invoices",
        "RECORDID",
        (
            "RECORDID",
            "CUSTOMERID",
            "CUSTOMERNAME",
            "WHENCREATED",  # on an AR invoice this is the invoice date, not an audit stamp
            "WHENDUE",
            "TERMNAME",
            "CURRENCY",
            "DESCRIPTION",
            "TOTALENTERED",
            "TOTALDUE",
            "STATE",
        ),
        date_fields=("WHENCREATED", "WHENDUE"),
        lines="ARINVOICEITEMS/arinvoiceitem",
    ),
}


# ARINVOICEITEMS: a list of {ACCOUNTNO, AMOUNT, MEMO, PROJECTID, EMPLOYEEID, DEPARTMENTID, LOCATIONID}.
LINE_FIELDS = ("ACCOUNTNO", "AMOUNT", "MEMO", "PROJECTID", "EMPLOYEEID", "DEPARTMENTID", "LOCATIONID")


SYSTEM_FIELDS = ("RECORDNO", "WHENMODIFIED")


# Fields that name another record by its id (CUSTOMERID...). A write may give such a field as {"RECORDNO": n}
# instead, since reads name records by RECORDNO: the connector looks up the record's id and sends that.
REFERENCES: dict[str, dict[str, str]] = {
    "PROJECT": {"CUSTOMERID": "CUSTOMER", "MANAGERID": "EMPLOYEE", "PARENTID": "PROJECT"},
    "EMPLOYEE": {"SUPERVISORID": "EMPLOYEE"},
    "ARINVOICE": {"CUSTOMERID": "CUSTOMER"},
}


UNKNOWN_REFERENCE = "INVALID_REFERENCE"


def when(value: str) -> datetime:
    """An aware UTC datetime from Intacct's "MM/DD/YYYY HH:MM:SS"."""
    return datetime.strptime(value.strip(), WHEN_FORMAT).replace(tzinfo=UTC)


def iso_to_when(value: str) -> str:
    parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).strftime(WHEN_FORMAT)


def to_intacct_date(value: Any) -> Any:
    """ISO dates (and date objects) in the MM/DD/YYYY form the gateway takes; anything else unchanged."""
    if isinstance(value, datetime):
        value = value.date()
    if isinstance(value, date):
        return value.strftime(DATE_FORMAT)
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        return date.fromisoformat(value).strftime(DATE_FORMAT)
    return value


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal | float):
        return format(Decimal(str(value)), "f")
    return "" if value is None else str(value)


def nest(parent: ET.Element, fields: Mapping[str, Any], order: tuple[str, ...] = ()) -> None:
    """Add `fields` under `parent`, dotted names as nested elements (DISPLAYCONTACT.EMAIL1)."""
    names = [*[f for f in order if f in fields], *[f for f in fields if f not in order]]
    for name in names:
        node = parent
        *path, leaf = name.split(".")
        for part in path:
            child = node.find(part)
            node = child if child is not None else ET.SubElement(node, part)
        ET.SubElement(node, leaf).text = _text(fields[name])


def flatten(element: ET.Element, prefix: str = "") -> dict[str, str | None]:
    """A record element as {dotted name: text}; nested elements (readByQuery's form) flatten to dotted names."""
    values: dict[str, str | None] = {}
    for child in element:
        name = f"{prefix}{child.tag}"
        if len(child):
            values.update(flatten(child, f"{name}."))
        else:
            values[name] = child.text
    return values


def with_nested(data: dict[str, Any]) -> dict[str, Any]:
    """The flat fields ("PERSONALINFO.EMAIL1") and the same values nested ({"PERSONALINFO": {"EMAIL1": ...}}), so
    a mapping's path, which walks dots, finds an owned field by the name Intacct gives it."""
    nested: dict[str, Any] = dict(data)
    for name, value in data.items():
        if "." not in name:
            continue
        *parents, leaf = name.split(".")
        node = nested
        for part in parents:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[leaf] = value
    return nested


def errors_of(element: ET.Element | None) -> list[dict[str, str]]:
    """The <errormessage><error> entries under `element`: errorno, description, description2, correction."""
    if element is None:
        return []
    found = []
    for error in element.findall("./errormessage/error"):
        found.append({k: (error.findtext(k) or "").strip() for k in ("errorno", "description", "description2")})
    return found


def describe(errors: list[dict[str, str]]) -> str:
    return "; ".join(" ".join(p for p in (e["description"], e["description2"]) if p) or e["errorno"] for e in errors)


def rate_limit_wait(response: requests.Response) -> float | None:
    """Rate-limit hook: Intacct's 429 carries GW-0010 in XML and no Retry-After; wait THROTTLE_WAIT then."""
    if response.status_code != 429:
        return None
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    return THROTTLE_WAIT if retry_after is None else retry_after


def after_filter(watermark: str | None, after: tuple[str, int] | None) -> ET.Element | None:
    """The filter of the next page: modified at or after the cursor, and past the last record already read."""
    if after is None:
        if watermark is None:
            return None
        condition = ET.Element("greaterthanorequalto")
        ET.SubElement(condition, "field").text = "WHENMODIFIED"
        ET.SubElement(condition, "value").text = watermark
        return condition
    stamp, record_no = after
    either = ET.Element("or")
    later = ET.SubElement(either, "greaterthan")
    ET.SubElement(later, "field").text = "WHENMODIFIED"
    ET.SubElement(later, "value").text = stamp
    same = ET.SubElement(either, "and")
    equal = ET.SubElement(same, "equalto")
    ET.SubElement(equal, "field").text = "WHENMODIFIED"
    ET.SubElement(equal, "value").text = stamp
    higher = ET.SubElement(same, "greaterthan")
    ET.SubElement(higher, "field").text = "RECORDNO"
    ET.SubElement(higher, "value").text = str(record_no)
    return either


def first_code(errors: list[dict[str, str]]) -> str | None:
    return errors[0]["errorno"] if errors else None


def request_xml(
    functions: list[ET.Element],
    *,
    credentials: Mapping[str, str],
    session_id: str | None,
    control_id: str,
    unique: bool,
) -> bytes:
    """One gateway `<request>` carrying `functions`: signed in with the user's credentials when `session_id` is
    None (getAPISession), inside that session otherwise."""
    request = ET.Element("request")
    control = ET.SubElement(request, "control")
    for name, value in (
        ("senderid", credentials.get("sender_id", "")),
        ("password", credentials.get("sender_password", "")),
        ("controlid", control_id),
        ("uniqueid", "true" if unique else "false"),
        ("dtdversion", DTD_VERSION),
        ("includewhitespace", "false"),
    ):
        ET.SubElement(control, name).text = value
    operation = ET.SubElement(request, "operation")
    authentication = ET.SubElement(operation, "authentication")
    if session_id is None:
        login = ET.SubElement(authentication, "login")
        for name, key in (("userid", "user_id"), ("companyid", "company_id"), ("password", "user_password")):
            ET.SubElement(login, name).text = credentials.get(key, "")
        if credentials.get("entity_id"):
            ET.SubElement(login, "locationid").text = credentials["entity_id"]
    else:
        ET.SubElement(authentication, "sessionid").text = session_id
    content = ET.SubElement(operation, "content")
    content.extend(functions)
    return ET.tostring(request, encoding="utf-8", xml_declaration=True)
