"""Business Central's entities as API v2.0 names them: their fields and keys, values as it takes them and the way
it compares them, and its error bodies."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from connectors.base import (
    iso_utc,
)

NUMBER_MAX = 20  # Code[20]: the "No." of customers, projects and employees


EXTERNAL_DOCUMENT_MAX = 35  # Code[35]


FIELDS = {
    "customers": (
        "number",
        "displayName",
        "type",
        "addressLine1",
        "addressLine2",
        "city",
        "state",
        "country",
        "postalCode",
        "phoneNumber",
        "email",
        "website",
        "taxRegistrationNumber",
        "currencyCode",
        "paymentTermsId",
        "blocked",
    ),
    "projects": ("number", "displayName"),
    "employees": (
        "number",
        "givenName",
        "middleName",
        "surname",
        "jobTitle",
        "addressLine1",
        "city",
        "country",
        "postalCode",
        "phoneNumber",
        "mobilePhone",
        "email",
        "personalEmail",
        "employmentDate",
        "terminationDate",
        "status",
    ),
    # salesInvoiceLines: [{lineType, lineObjectNumber, description, quantity, unitPrice}]; a draft's lines that
    # differ are replaced (removed and added) on update
    "salesInvoices": (
        "externalDocumentNumber",
        "invoiceDate",
        "postingDate",
        "dueDate",
        "customerNumber",
        "currencyCode",
        "paymentTermsId",
        "salesInvoiceLines",
    ),
}


DECIMAL_FIELDS = {"quantity", "unitPrice", "discountAmount", "discountPercent"}


KEYS = {"customers": "number", "projects": "number", "employees": "number", "salesInvoices": "externalDocumentNumber"}


CODE_FIELDS = {"number", "externalDocumentNumber", "currencyCode", "country", "postalCode", "customerNumber"}


def json_value(value: Any, name: str = "") -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if name in DECIMAL_FIELDS and isinstance(value, str) and value.strip():
        # Edm.Decimal must be a JSON number: "12.50" is refused, so an amount a mapping gave as text is sent as one.
        try:
            return float(Decimal(value))
        except ArithmeticError:
            return value  # Business Central explains what it cannot convert
    if isinstance(value, datetime):
        return iso_utc(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [json_value(v, name) for v in value]
    if isinstance(value, Mapping):
        return {k: json_value(v, k) for k, v in value.items()}
    return value


def literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def error_of(body: Any, status: int) -> tuple[str, str]:
    """(code, message) of a Business Central error body, without its CorrelationId tail."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return f"HTTP_{status}", f"Business Central answered HTTP {status}"
    message = str(error.get("message") or f"HTTP {status}").split("  CorrelationId:", 1)[0].strip()
    return str(error.get("code") or f"HTTP_{status}"), message


def same(current: Any, wanted: Any, name: str) -> bool:
    if name in CODE_FIELDS and isinstance(wanted, str):
        wanted = wanted.upper()
    if isinstance(current, int | float) and isinstance(wanted, int | float) and not isinstance(wanted, bool):
        return float(current) == float(wanted)
    return current == wanted or (current in (None, "") and wanted in (None, ""))
