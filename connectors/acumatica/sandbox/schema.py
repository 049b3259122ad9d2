"""The Acumatica sandbox's vocabulary: endpoint versions, entities and their fields, the `{"value": ...}` wrapping
and how Acumatica words its refusals."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

ENDPOINT = "Default"
# Versions of the Default endpoint the sandbox serves; the client's default is the newest.
VERSIONS = ("20.200.001", "22.200.001", "23.200.001", "24.200.001")
DEMO_CREDENTIALS = {
    "username": "integration",
    "password": "acu-sandbox-password",
    "tenant": "HaldenRowe",
    "branch": "HQ",
    "endpoint_version": "24.200.001",
}
# A trial licence allows two API users at once; a production licence more (SM201510's "Maximum Number of Web
# Services API Users").
DEFAULT_SEATS = 2
# An idle API session times out (and frees its seat) after this many seconds.
SESSION_TIMEOUT = 600.0
MAX_TOP = 10_000  # rows a sandbox GET returns at most when $top is absent
SEED_EPOCH = datetime(2024, 1, 2, 9, 0, 0, tzinfo=UTC)
CENT = Decimal("0.01")

# Entity -> its key fields (the ones PUT upserts by), and the linked or detail entities $expand may name.
KEYS = {
    "Customer": ("CustomerID",),
    "Project": ("ProjectID",),
    "Employee": ("EmployeeID",),
    "Invoice": ("Type", "ReferenceNbr"),
}
EXPANDABLE = {
    "Customer": ("MainContact",),
    "Project": (),
    "Employee": ("ContactInfo", "EmployeeSettings"),
    "Invoice": ("Details",),
}
# Top-level fields each entity takes in a PUT (linked entities listed with their fields).
FIELDS: dict[str, set[str]] = {
    "Customer": {"CustomerID", "CustomerName", "CustomerClass", "Status", "CurrencyID", "Terms", "MainContact"},
    "Project": {"ProjectID", "Description", "Customer", "Status", "Hold", "ProjectTemplateID", "ExternalRefNbr"},
    "Employee": {"EmployeeID", "EmployeeName", "Status", "ContactInfo", "EmployeeSettings"},
    "Invoice": {
        "Type",
        "ReferenceNbr",
        "Customer",
        "Date",
        "DueDate",
        "Description",
        "CustomerOrder",
        "Hold",
        "Details",
    },
}
LINKED_FIELDS = {
    "MainContact": {"Email", "Phone1", "WebSite", "Address"},
    "ContactInfo": {"FirstName", "LastName", "Email", "JobTitle"},
    "EmployeeSettings": {"Branch", "Department", "EmployeeClass", "Calendar"},
}
DETAIL_FIELDS = {"id", "delete", "TransactionDescription", "Qty", "UnitPrice", "Amount", "Account", "Branch", "UOM"}
READ_ONLY = {
    "Invoice": {"Status", "Amount", "Balance"},
    "Project": set(),
    "Customer": set(),
    "Employee": {"EmployeeName"},
}
EMPLOYEE_CLASSES = ("EMPSTAND", "EMPHOURLY", "CONTRACT")
CUSTOMER_CLASSES = ("DEFAULT", "INTL")
PROJECT_STATUSES = ("Active", "In Planning", "On Hold", "Completed", "Canceled")


class AcumaticaError(Exception):
    """A refusal the sandbox answers the way Acumatica words it."""

    def __init__(self, status: int, message: str, exception_type: str = "PX.Data.PXException"):
        super().__init__(message)
        self.status, self.message, self.exception_type = status, message, exception_type

    def body(self) -> dict[str, Any]:
        return {
            "message": "An error has occurred.",
            "exceptionMessage": self.message,
            "exceptionType": self.exception_type,
        }


class Unprocessable(Exception):
    """A PUT Acumatica refused on its fields: answered 422 with the record echoed and an `error` on each field."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def stamp(moment: datetime) -> str:
    """LastModifiedDateTime as Acumatica writes it: milliseconds and an offset."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+00:00"


def date_value(day: str | None) -> str | None:
    """A date as Acumatica's DateTimeValue: midnight, with the instance's offset (UTC here)."""
    return f"{day[:10]}T00:00:00+00:00" if day else None


def money(value: Any) -> Decimal:
    return Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_UP)


def wrap(value: Any) -> Any:
    """A stored record (plain values, linked entities as dicts, details as lists) as the API shows it."""
    if isinstance(value, dict):
        return {k: (v if k in ("id", "rowNumber", "delete") else wrap(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [wrap(v) for v in value]
    if isinstance(value, Decimal):
        return {"value": float(value)}
    return {"value": value}


def unwrap(value: Any, *, where: str = "") -> Any:
    """A PUT body's values without their `{"value": ...}` wrapping; a bare value is refused as Acumatica does."""
    if isinstance(value, list):
        return [unwrap(v, where=where) for v in value]
    if not isinstance(value, dict):
        raise AcumaticaError(400, f"The value of the {where} field must be an object with a 'value' property.")
    if "value" in value and len(value) <= 2 and set(value) <= {"value", "error"}:
        return value["value"]
    return {k: (v if k in ("id", "rowNumber", "delete") else unwrap(v, where=k)) for k, v in value.items()}
