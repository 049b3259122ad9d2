"""Acumatica's entities as the contract-based API names them, and the conversions between its wrapped values
(`{"value": ...}`), its error bodies and our records."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import requests


@dataclass(frozen=True)
class AcumaticaEntity:
    name: str
    label: str
    key: str  # the field our write matches on (the entity's key, CustomerOrder for invoices)
    fields: tuple[str, ...]
    expand: tuple[str, ...] = ()
    own_key: bool = True  # the key is the record's own id in Acumatica (and the external id a read gives)


ENTITIES: dict[str, AcumaticaEntity] = {
    "Customer": AcumaticaEntity(
        "Customer",
        "Customers",
        "CustomerID",
        (
            "CustomerID",
            "CustomerName",
            "CustomerClass",
            "Status",
            "CurrencyID",
            "Terms",
            "MainContact.Email",
            "MainContact.Phone1",
            "MainContact.WebSite",
            "MainContact.Address.City",
            "MainContact.Address.Country",
        ),
        expand=("MainContact",),
    ),
    "Project": AcumaticaEntity(
        "Project",
        "Projects",
        "ProjectID",
        ("ProjectID", "Description", "Customer", "Status", "Hold", "ProjectTemplateID", "ExternalRefNbr"),
    ),
    "Employee": AcumaticaEntity(
        "Employee",
        "Employees",
        "EmployeeID",
        (
            "EmployeeID",
            "EmployeeName",
            "Status",
            "ContactInfo.FirstName",
            "ContactInfo.LastName",
            "ContactInfo.Email",
            "ContactInfo.JobTitle",
            "EmployeeSettings.Branch",
            "EmployeeSettings.Department",
            "EmployeeSettings.EmployeeClass",
        ),
        expand=("ContactInfo", "EmployeeSettings"),
    ),
    # Details: [{TransactionDescription, Qty, UnitPrice, Account, Branch}]; Amount is Acumatica's to compute.
    "Invoice": AcumaticaEntity(
        "Invoice",
        "AR invoices",
        "CustomerOrder",
        (
            "Type",
            "ReferenceNbr",
            "Customer",
            "Date",
            "DueDate",
            "Description",
            "CustomerOrder",
            "Hold",
            "Status",
            "Amount",
            "Details",
        ),
        expand=("Details",),
        own_key=False,
    ),
}


DECIMAL_FIELDS = {"Qty", "UnitPrice", "Amount", "Balance"}


DATE_FIELDS = {"Date", "DueDate"}


LINE_SHAPE = ("TransactionDescription", "Qty", "UnitPrice")


SYSTEM_FIELDS = {"rowNumber", "note", "custom", "_links", "files"}


def unwrap(value: Any) -> Any:
    """Acumatica's `{"value": x}` as x; linked entities and detail lists unwrapped all the way down."""
    if isinstance(value, list):
        return [unwrap(v) for v in value]
    if isinstance(value, dict):
        if "value" in value and set(value) <= {"value", "error"}:
            return value["value"]
        return {k: (v if k == "id" else unwrap(v)) for k, v in value.items() if k not in SYSTEM_FIELDS}
    return value


def json_value(name: str, value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if name in DECIMAL_FIELDS and isinstance(value, str) and value.strip():
        try:
            return float(Decimal(value))
        except InvalidOperation:
            return value  # Acumatica explains what it cannot read
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def wrap(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Fields as Acumatica takes them: every value `{"value": x}`, dotted names as linked entities, lists of
    dicts (detail lines) wrapped line by line; `id` and `delete` stay bare."""
    body: dict[str, Any] = {}
    for name, value in fields.items():
        node = body
        *parents, leaf = name.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        if leaf in ("id", "delete"):
            node[leaf] = value
        elif isinstance(value, list):
            node[leaf] = [wrap(line) if isinstance(line, Mapping) else {"value": line} for line in value]
        elif isinstance(value, Mapping) and not (set(value) == {"value"}):
            node[leaf] = wrap(value)
        elif isinstance(value, Mapping):
            node[leaf] = dict(value)
        else:
            node[leaf] = {"value": json_value(leaf, value)}
    return body


def leaves(fields: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Dotted name -> value for every plain value under `fields` (lists are kept whole)."""
    flat: dict[str, Any] = {}
    for name, value in fields.items():
        if isinstance(value, Mapping):
            flat.update(leaves(value, f"{prefix}{name}."))
        else:
            flat[f"{prefix}{name}"] = value
    return flat


def same(current: Any, wanted: Any, name: str) -> bool:
    leaf = name.rsplit(".", 1)[-1]
    if current in (None, "") and wanted in (None, ""):
        return True
    if leaf in DATE_FIELDS and current and wanted:
        return str(current)[:10] == str(wanted)[:10]
    if isinstance(wanted, bool) or isinstance(current, bool):
        return str(current).lower() == str(wanted).lower()
    try:
        if isinstance(current, int | float | Decimal) or leaf in DECIMAL_FIELDS:
            return Decimal(str(current)) == Decimal(str(wanted))
    except InvalidOperation:
        return False
    return str(current) == str(wanted)


def line_shape(line: Mapping[str, Any]) -> tuple:
    def number(value: Any, default: str) -> Decimal:
        try:
            return Decimal(str(value if value not in (None, "") else default)).quantize(Decimal("0.0001"))
        except InvalidOperation:
            return Decimal(0)

    return (
        str(line.get("TransactionDescription") or ""),
        number(line.get("Qty"), "1"),
        number(line.get("UnitPrice"), "0"),
    )


def literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def error_text(response: requests.Response) -> str:
    """What Acumatica said: exceptionMessage, message, or the errors a 422 put on the record and its fields."""
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    if isinstance(body, dict):
        if body.get("exceptionMessage") or body.get("message"):
            return str(body.get("exceptionMessage") or body.get("message"))
        errors = [f"{name}: {value['error']}" for name, value in leaves_with_errors(body)]
        if errors:
            return "; ".join(errors)
    return f"HTTP {response.status_code}"


def leaves_with_errors(body: Mapping[str, Any], prefix: str = "") -> list[tuple[str, dict]]:
    found = []
    for name, value in body.items():
        if isinstance(value, Mapping):
            if isinstance(value.get("error"), str):
                found.append((f"{prefix}{name}", value))
            else:
                found.extend(leaves_with_errors(value, f"{prefix}{name}."))
    return found
