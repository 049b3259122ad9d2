"""NetSuite's record kinds as SuiteQL reads them and the REST record API writes them: their columns, the SuiteQL
that selects them, values as NetSuite takes them, and its error bodies."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import requests

INVOICE_TRANSACTION_TYPE = "CustInvc"


@dataclass(frozen=True)
class Column:
    """One SuiteQL column of an object and the REST record field it is read back as."""

    sql: str  # SuiteQL column, lower case
    field: str  # REST record field name (what writes use)
    kind: str = "text"  # text | ref | bool | number | date | datetime


@dataclass(frozen=True)
class RecordKind:
    """How one NetSuite record type is read (SuiteQL table) and written (REST record type)."""

    record_type: str
    table: str
    columns: tuple[Column, ...]
    writable_fields: tuple[str, ...]
    type_filter: str | None = None  # transaction.type for transactions


_ENTITY_TAIL = (
    Column("externalid", "externalId"),
    Column("isinactive", "isInactive", "bool"),
    Column("datecreated", "dateCreated", "datetime"),
    Column("lastmodifieddate", "lastModifiedDate", "datetime"),
)


RECORD_KINDS: dict[str, RecordKind] = {
    "customer": RecordKind(
        record_type="customer",
        table="customer",
        columns=(
            Column("id", "id"),
            Column("entityid", "entityId"),
            Column("companyname", "companyName"),
            Column("email", "email"),
            Column("phone", "phone"),
            Column("url", "url"),
            Column("terms", "terms", "ref"),
            Column("currency", "currency", "ref"),
            Column("subsidiary", "subsidiary", "ref"),
            *_ENTITY_TAIL,
        ),
        writable_fields=(
            "entityId",
            "companyName",
            "email",
            "phone",
            "url",
            "terms",
            "currency",
            "subsidiary",
            "isInactive",
            "addressBook",
        ),
    ),
    "job": RecordKind(
        record_type="job",
        table="job",
        columns=(
            Column("id", "id"),
            Column("entityid", "entityId"),
            Column("companyname", "companyName"),
            Column("parent", "parent", "ref"),
            Column("startdate", "startDate", "date"),
            Column("projectedenddate", "projectedEndDate", "date"),
            Column("jobbillingtype", "jobBillingType"),
            Column("projectmanager", "projectManager", "ref"),
            Column("currency", "currency", "ref"),
            Column("subsidiary", "subsidiary", "ref"),
            *_ENTITY_TAIL,
        ),
        writable_fields=(
            "entityId",
            "companyName",
            "parent",
            "startDate",
            "projectedEndDate",
            "jobBillingType",
            "projectManager",
            "currency",
            "subsidiary",
            "isInactive",
        ),
    ),
    "employee": RecordKind(
        record_type="employee",
        table="employee",
        columns=(
            Column("id", "id"),
            Column("entityid", "entityId"),
            Column("firstname", "firstName"),
            Column("lastname", "lastName"),
            Column("email", "email"),
            Column("title", "title"),
            Column("department", "department", "ref"),
            Column("subsidiary", "subsidiary", "ref"),
            Column("supervisor", "supervisor", "ref"),
            Column("laborcost", "laborCost", "number"),
            Column("hiredate", "hireDate", "date"),
            Column("releasedate", "releaseDate", "date"),
            *_ENTITY_TAIL,
        ),
        writable_fields=(
            "entityId",
            "firstName",
            "lastName",
            "email",
            "title",
            "department",
            "subsidiary",
            "supervisor",
            "laborCost",
            "hireDate",
            "releaseDate",
            "isInactive",
        ),
    ),
    "invoice": RecordKind(
        record_type="invoice",
        table="transaction",
        type_filter=INVOICE_TRANSACTION_TYPE,
        columns=(
            Column("id", "id"),
            Column("tranid", "tranId"),
            Column("entity", "entity", "ref"),
            Column("trandate", "tranDate", "date"),
            Column("duedate", "dueDate", "date"),
            Column("terms", "terms", "ref"),
            Column("currency", "currency", "ref"),
            Column("subsidiary", "subsidiary", "ref"),
            Column("foreigntotal", "total", "number"),
            Column("memo", "memo"),
            Column("status", "status"),
            Column("externalid", "externalId"),
            Column("createddate", "createdDate", "datetime"),
            Column("lastmodifieddate", "lastModifiedDate", "datetime"),
        ),
        # item.items: [{item: {id}, quantity, rate, amount, description, job: {id}}] -- the billable lines
        writable_fields=("entity", "tranDate", "dueDate", "terms", "currency", "subsidiary", "memo", "item"),
    ),
}


WATERMARK = "lastmodifieddate"


DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


DATETIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$")


def select_list(kind: RecordKind) -> str:
    """SuiteQL select items: dates through TO_CHAR, since raw dates come in the account's display format."""
    items = []
    for column in kind.columns:
        if column.kind == "date":
            items.append(f"TO_CHAR({column.sql}, 'YYYY-MM-DD') AS {column.sql}")
        elif column.kind == "datetime":
            items.append(f"TO_CHAR({column.sql}, 'YYYY-MM-DD\"T\"HH24:MI:SS') AS {column.sql}")
        else:
            items.append(column.sql)
    return ", ".join(items)


def sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def parse_iso_datetime(value: str) -> datetime:
    """An aware UTC datetime from an ISO 8601 string (a cursor); naive values are taken as UTC."""
    text = value.strip().replace("Z", "+00:00")
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def json_value(value: Any) -> Any:
    """Make a mapped value JSON-ready the way NetSuite expects (numbers as numbers, dates as ISO)."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {k: json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_value(v) for v in value]
    return value


def error_details(response: requests.Response) -> list[dict[str, str]]:
    """NetSuite's {type, title, status, o:errorDetails:[{detail, o:errorCode, o:errorPath}]} as a plain list."""
    try:
        body = response.json()
    except ValueError:
        return []
    if not isinstance(body, dict):
        return []
    details = body.get("o:errorDetails") or []
    return [
        {
            "code": str(d.get("o:errorCode") or ""),
            "detail": str(d.get("detail") or ""),
            "path": str(d.get("o:errorPath") or ""),
        }
        for d in details
        if isinstance(d, dict)
    ]


def describe_error(response: requests.Response) -> tuple[str, str]:
    """(code, message) of a NetSuite error response."""
    details = error_details(response)
    if not details:
        return f"HTTP_{response.status_code}", f"NetSuite answered HTTP {response.status_code}"
    first = details[0]
    message = "; ".join(d["detail"] + (f" (at {d['path']})" if d["path"] else "") for d in details)
    return first["code"] or f"HTTP_{response.status_code}", message
