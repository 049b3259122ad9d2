"""Business Central sandbox vocabulary: demo credentials, limits, entity schemas, the company's lists and errors."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from connectors.sandbox.odata import parse_filter

TENANT_ID = "7e2d3c4b-5a69-4b70-9c8d-0e1f2a3b4c5d"
ENVIRONMENT = "production"
RESOURCE = "https://api.businesscentral.dynamics.com"
DEMO_CREDENTIALS = {
    "tenant_id": TENANT_ID,
    "client_id": "9b0e6f52-3c1d-4a8e-b7f2-bc0bc0bc0bc0",
    "client_secret": "sgp~businesscentral~demo~secret~V4n",
    "environment": ENVIRONMENT,
    "company": "Halden & Rowe Consulting",
    "authority": "http://127.0.0.1:8108",  # the sandbox serves Entra's token endpoint too
    "webhook_secret": "sgp-bc-client-state-8e2f",
}
COMPANY_ID = "b4c0ffee-0000-4000-8000-0000000000bc"
SEED_EPOCH = datetime(2024, 1, 2, 9, 0, 0, tzinfo=UTC)
MAX_PAGE_SIZE = 20_000
MAX_BATCH = 100
RUNNING_LIMIT = 5  # requests the environment processes at once
QUEUE_LIMIT = 95  # requests it lets wait; one more is refused with 429
SUBSCRIPTION_DAYS = 3
_NAMESPACE = uuid.UUID("8d1f0c3e-2b4a-4f5e-9a6b-bcbcbcbcbcbc")


# (unverified) assumptions, kept here and mirrored by connectors/businesscentral/client.py:
# - A PATCH or DELETE without If-Match is 400 BadRequest_InvalidToken; a stale one is 412 Request_EntityChanged;
#   `If-Match: *` is accepted.
# - A full queue answers 429 Application_TooManyRequests with a Retry-After header (so do request-count limits).
# - A failed handshake refuses the subscription with 400 Application_ValidationError.
# - Too long a text is 400 Application_StringExceededLength; a duplicate key 400 Internal_EntityWithSameKeyExists;
#   an unknown code or number 400 Internal_RecordNotFound. Messages end with "  CorrelationId:  <guid>."
class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": f"{self.message}  CorrelationId:  {uuid.uuid4()}."}}


# Schema: (kind, size) per property; kinds: guid code text date datetime number enum bool
READ_ONLY = {"id", "lastModifiedDateTime"}


SCHEMA: dict[str, dict[str, tuple[str, int]]] = {
    "customers": {
        "id": ("guid", 0),
        "number": ("code", 20),
        "displayName": ("text", 100),
        "type": ("enum", 0),
        "addressLine1": ("text", 100),
        "addressLine2": ("text", 50),
        "city": ("text", 30),
        "state": ("text", 30),
        "country": ("code", 10),
        "postalCode": ("code", 20),
        "phoneNumber": ("text", 30),
        "email": ("text", 80),
        "website": ("text", 80),
        "taxRegistrationNumber": ("text", 20),
        "currencyId": ("guid", 0),
        "currencyCode": ("code", 10),
        "paymentTermsId": ("guid", 0),
        "blocked": ("enum", 0),
        "lastModifiedDateTime": ("datetime", 0),
    },
    "projects": {
        "id": ("guid", 0),
        "number": ("code", 20),
        "displayName": ("text", 100),
        "lastModifiedDateTime": ("datetime", 0),
    },
    "employees": {
        "id": ("guid", 0),
        "number": ("code", 20),
        "displayName": ("text", 250),
        "givenName": ("text", 30),
        "middleName": ("text", 30),
        "surname": ("text", 30),
        "jobTitle": ("text", 30),
        "addressLine1": ("text", 100),
        "city": ("text", 30),
        "country": ("code", 10),
        "postalCode": ("code", 20),
        "phoneNumber": ("text", 30),
        "mobilePhone": ("text", 30),
        "email": ("text", 80),
        "personalEmail": ("text", 80),
        "employmentDate": ("date", 0),
        "terminationDate": ("date", 0),
        "status": ("enum", 0),
        "birthDate": ("date", 0),
        "lastModifiedDateTime": ("datetime", 0),
    },
    "salesInvoices": {
        "id": ("guid", 0),
        "number": ("code", 20),
        "externalDocumentNumber": ("code", 35),
        "invoiceDate": ("date", 0),
        "postingDate": ("date", 0),
        "dueDate": ("date", 0),
        "customerId": ("guid", 0),
        "customerNumber": ("code", 20),
        "customerName": ("text", 100),
        "currencyCode": ("code", 10),
        "paymentTermsId": ("guid", 0),
        "status": ("enum", 0),
        "totalAmountExcludingTax": ("number", 0),
        "totalAmountIncludingTax": ("number", 0),
        "lastModifiedDateTime": ("datetime", 0),
    },
    "salesInvoiceLines": {
        "id": ("guid", 0),
        "documentId": ("guid", 0),
        "sequence": ("number", 0),
        "lineType": ("enum", 0),
        "lineObjectNumber": ("code", 20),
        "description": ("text", 100),
        "quantity": ("number", 0),
        "unitPrice": ("number", 0),
        "amountExcludingTax": ("number", 0),
        "netAmount": ("number", 0),
    },
    "accounts": {
        "id": ("guid", 0),
        "number": ("code", 20),
        "displayName": ("text", 100),
        "category": ("text", 30),
        "blocked": ("bool", 0),
        "lastModifiedDateTime": ("datetime", 0),
    },
    "currencies": {
        "id": ("guid", 0),
        "code": ("code", 10),
        "displayName": ("text", 30),
        "lastModifiedDateTime": ("datetime", 0),
    },
    "paymentTerms": {
        "id": ("guid", 0),
        "code": ("code", 10),
        "displayName": ("text", 50),
        "dueDateCalculation": ("text", 32),
        "lastModifiedDateTime": ("datetime", 0),
    },
}
COMPUTED = {
    "employees": {"displayName"},
    "salesInvoices": {
        "number",
        "customerName",
        "status",
        "totalAmountExcludingTax",
        "totalAmountIncludingTax",
        "customerId",
    },
    "salesInvoiceLines": {"documentId", "sequence", "amountExcludingTax", "netAmount"},
}
ENUMS = {
    "type": ("Company", "Person"),
    "blocked": (" ", "Ship", "Invoice", "All"),
    "status": ("Active", "Inactive"),
    "lineType": ("Comment", "Account", "Item", "Resource", "Value", "Charge", "Fixed Asset"),
}
TABLE_NAMES = {"customers": "Customer", "projects": "Job", "employees": "Employee", "salesInvoices": "Sales Header"}
PAYMENT_TERMS = (
    ("NET30", "Net 30", "30D"),
    ("NET45", "Net 45", "45D"),
    ("NET15", "Net 15", "15D"),
    ("NET60", "Net 60", "60D"),
    ("COD", "Due on receipt", "0D"),
)


# The revenue accounts of the chart of accounts that a services firm posts invoice lines to.
GL_ACCOUNTS = (
    ("40100", "Consulting Services Revenue"),
    ("40200", "Reimbursable Expenses Revenue"),
    ("40300", "Fixed Fee Revenue"),
)


LOCAL_CURRENCY = "USD"  # the company's LCY: customers in it carry an empty currencyCode, as in BC


def line_amount(quantity: Any, unit_price: Any) -> float:
    """Quantity times unit price, rounded to the cent half away from zero, as Business Central's amount rounding
    precision does (not float rounding, which turns 2.675 into 2.67)."""
    amount = Decimal(str(quantity or 0)) * Decimal(str(unit_price or 0))
    return float(amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def guid(kind: str, number: Any) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"{kind}:{number}"))


def _etag(row: dict[str, Any]) -> str:
    return 'W/"' + base64.b64encode(f"'{row['_version']};'".encode()).decode() + '"'


def _segments(resource: str) -> list[tuple[str, str | None]]:
    """`companies(x)/salesInvoices(y)/salesInvoiceLines` -> [(companies, x), (salesInvoices, y), (salesInvoiceLines, None)]."""
    out: list[tuple[str, str | None]] = []
    for part in [p for p in resource.strip("/").split("/") if p]:
        name, _, key = part.partition("(")
        out.append((name, key[:-1].strip("'").lower() if key.endswith(")") else None))
    return out or [("", None)]


def _filter(args: dict[str, str]) -> Any:
    return parse_filter(args["$filter"]) if args.get("$filter") else None


def _typed(name: str, kind: str, size: int, value: Any) -> Any:
    def invalid(expected: str) -> ApiError:
        return ApiError(400, "BadRequest", f"Cannot convert the literal '{value}' to the expected type '{expected}'.")

    if value is None:
        return None
    if kind in ("text", "code"):
        if not isinstance(value, str):
            raise invalid("Edm.String")
        if len(value) > size:
            raise ApiError(
                400,
                "Application_StringExceededLength",
                f"The length of the string is {len(value)}, but it must be less than or equal to {size} characters. Value: {value}",
            )
        return value.upper() if kind == "code" else value
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise invalid("Edm.Decimal")
        return float(value)
    if kind == "date":
        try:
            return date.fromisoformat(str(value)).isoformat()
        except ValueError:
            raise invalid("Edm.Date") from None
    if kind == "guid":
        try:
            return str(uuid.UUID(str(value)))
        except ValueError:
            raise invalid("Edm.Guid") from None
    if kind == "enum":
        if value not in ENUMS.get(name, ()):
            raise ApiError(400, "BadRequest", f"The value '{value}' is not valid for the enum '{name}'.")
        return value
    return value
