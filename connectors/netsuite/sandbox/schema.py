"""NetSuite sandbox vocabulary: demo credentials, the account's lists, record schemas and NetSuite's error body."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from connectors.sandbox.firm import PRACTICES, SUPPORT_DEPARTMENTS

# A demo certificate and its key, generated for this sandbox only: the key is public knowledge by design.
DEMO_PRIVATE_KEY = """-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgvo5+tLu4iMeq8Lc7
lhj/XD1fGreEvCFrVbyCXUodUl6hRANCAARhHp+dyguvCQkxM/kZAG/wb21WiuTD
GqDruI3j4c4obr9Ru0gQNzEfMNLpnKz8GMYWutQgxfGfB6roePnhxio7
-----END PRIVATE KEY-----
"""


DEMO_CERTIFICATE = """-----BEGIN CERTIFICATE-----
MIIBnDCCAUKgAwIBAgIUPHaaQ3EwvqwZrJtj5wUZM4V9bDcwCgYIKoZIzj0EAwIw
TjEwMC4GA1UEAwwnU3lzR2VuUHJvIENvbm5lY3QgTmV0U3VpdGUgc2FuZGJveCBk
ZW1vMRowGAYDVQQKDBFTeXNHZW5Qcm8gQ29ubmVjdDAeFw0yNDAxMDEwMDAwMDBa
Fw00OTEyMzEwMDAwMDBaME4xMDAuBgNVBAMMJ1N5c0dlblBybyBDb25uZWN0IE5l
dFN1aXRlIHNhbmRib3ggZGVtbzEaMBgGA1UECgwRU3lzR2VuUHJvIENvbm5lY3Qw
WTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAARhHp+dyguvCQkxM/kZAG/wb21WiuTD
GqDruI3j4c4obr9Ru0gQNzEfMNLpnKz8GMYWutQgxfGfB6roePnhxio7MAoGCCqG
SM49BAMCA0gAMEUCIAUkhqDDzmP9xR1lNibT04jFQzi7rgKiXLgG8fMRfXmpAiEA
3Q8nRhxvDiw6c0tbsEZTNeLLxsLdWP9tbnQEGCDXnw4=
-----END CERTIFICATE-----
"""
DEMO_CREDENTIALS = {
    "account_id": "1234567",
    "client_id": "8c1f4e2a9b7d4c3e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6",
    "certificate_id": "sgp_demo_cert_Xq4mT9vLr2",
    "private_key": DEMO_PRIVATE_KEY,
    "concurrency_limit": "2",
}
ACCOUNT_CONCURRENCY = 5  # a NetSuite account without SuiteCloud Plus licences
TOKEN_LIFETIME = 3600
SEED_EPOCH = datetime(2024, 1, 2, 9, 0, 0, tzinfo=UTC)  # seeded records were last modified a minute apart from here
SIGNING_ALGORITHMS = ("PS256", "PS384", "PS512", "ES256", "ES384", "ES512")
TYPE_400 = "https://www.w3.org/Protocols/rfc2616/rfc2616-sec10.html#sec10.4.1"
TYPE_401 = "https://www.w3.org/Protocols/rfc2616/rfc2616-sec10.html#sec10.4.2"
TYPE_404 = "https://www.w3.org/Protocols/rfc2616/rfc2616-sec10.html#sec10.4.5"
TYPE_429 = "https://tools.ietf.org/html/rfc6585#section-4"
TYPE_500 = "https://www.w3.org/Protocols/rfc2616/rfc2616-sec10.html#sec10.5.1"
EXTERNAL_ID_RE = re.compile(r"^[A-Za-z0-9_\-]{1,255}$")
SUBSIDIARIES = {
    1: ("Halden & Rowe Consulting Inc.", 1, "US"),
    2: ("Halden & Rowe Consulting Ltd", 2, "GB"),
    3: ("Halden & Rowe Consulting GmbH", 3, "DE"),
}
CURRENCIES = {1: ("USD", "US Dollar"), 2: ("GBP", "British Pound"), 3: ("EUR", "Euro"), 4: ("CAD", "Canadian Dollar")}
TERMS = {1: ("Net 15", 15), 2: ("Net 30", 30), 3: ("Net 45", 45), 4: ("Net 60", 60), 5: ("Due on receipt", 0)}
ITEMS = {
    1: ("Professional Services", "Service"),
    2: ("Billable Expenses", "OthCharge"),
    3: ("Fixed Fee Milestone", "Service"),
}
DEPARTMENTS = {index + 1: name for index, name in enumerate(PRACTICES + SUPPORT_DEPARTMENTS)}
JOB_BILLING_TYPES = ("TM", "FBM", "FBI", "CB")  # (unverified) time & materials, fixed bid milestone/interval, charge
BILLING_TERMS_TO_JOB_TYPE = {"Time and materials": "TM", "Fixed fee": "FBM", "Retainer": "FBI"}


# Field kinds: text, bool, number, date, enum, raw, lines, or ref:<type>[|<type>].
SCHEMA: dict[str, dict[str, str]] = {
    "customer": {
        "entityId": "text",
        "companyName": "text",
        "email": "text",
        "phone": "text",
        "url": "text",
        "terms": "ref:term",
        "currency": "ref:currency",
        "subsidiary": "ref:subsidiary",
        "isInactive": "bool",
        "addressBook": "raw",
        "externalId": "text",
    },
    "job": {
        "entityId": "text",
        "companyName": "text",
        "parent": "ref:customer",
        "startDate": "date",
        "projectedEndDate": "date",
        "jobBillingType": "enum",
        "projectManager": "ref:employee",
        "currency": "ref:currency",
        "subsidiary": "ref:subsidiary",
        "isInactive": "bool",
        "externalId": "text",
    },
    "employee": {
        "entityId": "text",
        "firstName": "text",
        "lastName": "text",
        "email": "text",
        "title": "text",
        "department": "ref:department",
        "subsidiary": "ref:subsidiary",
        "supervisor": "ref:employee",
        "laborCost": "number",
        "hireDate": "date",
        "releaseDate": "date",
        "isInactive": "bool",
        "externalId": "text",
    },
    "invoice": {
        "tranId": "text",
        "entity": "ref:customer|job",
        "tranDate": "date",
        "dueDate": "date",
        "terms": "ref:term",
        "currency": "ref:currency",
        "subsidiary": "ref:subsidiary",
        "memo": "text",
        "item": "lines",
        "externalId": "text",
    },
}


LINE_SCHEMA = {
    "item": "ref:item",
    "quantity": "number",
    "rate": "number",
    "amount": "number",
    "description": "text",
    "job": "ref:job",
}
REQUIRED = {
    "customer": (("companyName", "Company Name"),),
    "job": (("companyName", "Project Name"), ("parent", "Customer")),
    "employee": (("firstName", "First Name"), ("lastName", "Last Name")),
    "invoice": (("entity", "Customer"), ("item", "Items")),
}
READ_ONLY = frozenset({"id", "links", "dateCreated", "createdDate", "lastModifiedDate", "total", "status", "refName"})
ENTITY_TYPES = ("customer", "job", "employee")


# SuiteQL tables: column -> (record field, kind) for the record-backed ones.
SUITEQL_COLUMNS = {
    "customer": ("entityId", "companyName", "email", "phone", "url", "terms", "currency", "subsidiary"),
    "job": (
        "entityId",
        "companyName",
        "parent",
        "startDate",
        "projectedEndDate",
        "jobBillingType",
        "projectManager",
        "currency",
        "subsidiary",
    ),
    "employee": (
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
    ),
}


class ApiError(Exception):
    """An error NetSuite reports as {type, title, status, o:errorDetails:[...]}."""

    def __init__(self, status: int, code: str, detail: str, path: str | None = None):
        super().__init__(detail)
        self.status, self.code, self.detail, self.path = status, code, detail, path


def error_body(status: int, code: str, detail: str, path: str | None = None) -> dict[str, Any]:
    titles = {400: "Bad Request", 401: "Unauthorized", 404: "Record Not Found", 405: "Method Not Allowed"}
    types = {400: TYPE_400, 401: TYPE_401, 404: TYPE_404, 429: TYPE_429, 500: TYPE_500}
    entry = {"detail": detail, "o:errorCode": code}
    if path:
        entry["o:errorPath"] = path
    return {
        "type": types.get(status, TYPE_400),
        "title": titles.get(status, "Too Many Requests" if status == 429 else "Error"),
        "status": status,
        "o:errorDetails": [entry],
    }


def _invalid_value(value: Any, field: str, path: str) -> ApiError:
    shown = value.get("id", value.get("externalId")) if isinstance(value, dict) else value
    return ApiError(
        400,
        "INVALID_CONTENT",
        f"Error while accessing resource: You have entered an Invalid Field Value {shown} for the following field: "
        f"{field}",
        path,
    )


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
