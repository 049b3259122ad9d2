"""NetSuite sandbox: a local WSGI emulator of the SuiteTalk REST subset the connector uses.

OAuth 2.0 client credentials (a JWT assertion verified against the uploaded certificate), record/v1 create,
get, update, delete and upsert by `eid:` for customer, job, employee and invoice with NetSuite's referential
checks and error bodies, the X-NetSuite-idempotency-key, SuiteQL (a small SELECT engine) with limit/offset
pages, and the per-account concurrency limit. Seeded from the shared Firm; its seeded external ids are the
firm's own keys: customers "C5001".., projects "PRJ-101".., employees "E1001"...
"""

from __future__ import annotations

import hmac
import math
import re
import secrets
import threading
import time
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import jwt
from cryptography import x509
from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from connectors.netsuite.client import (
    CLIENT_ASSERTION_TYPE,
    CONCURRENCY_ERROR_CODE,
    IDEMPOTENCY_ERROR_CODE,
    IDEMPOTENCY_HEADER,
    INVOICE_TRANSACTION_TYPE,
    SCOPE,
    SUITEQL_MAX_RESULTS,
    SUITEQL_PAGE_MAX,
    TOKEN_PATH,
)
from connectors.sandbox.app import SandboxApp, json_response
from connectors.sandbox.firm import PRACTICES, SUPPORT_DEPARTMENTS, Firm

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


# ---------------------------------------------------------------------------------------------------------------
# SuiteQL: SELECT items FROM table [WHERE condition] [ORDER BY items], with AND/OR/NOT, comparisons, IN, LIKE,
# IS [NOT] NULL, TO_CHAR / TO_DATE / TO_TIMESTAMP / UPPER / LOWER / BUILTIN.DF and COUNT(*).
# ---------------------------------------------------------------------------------------------------------------

_TOKEN_RE = re.compile(
    r"\s*(?:(?P<string>'(?:[^']|'')*')|(?P<number>\d+(?:\.\d+)?)|(?P<op><>|!=|>=|<=|=|<|>)"
    r"|(?P<punct>[(),*])|(?P<ident>[A-Za-z_][A-Za-z0-9_.$]*)|(?P<quoted>\"[^\"]*\"))"
)
_FORMAT_RE = re.compile(r'YYYY|MM|DD|HH24|HH|MI|SS|"[^"]*"|.', re.S)
_FORMATS = {"YYYY": "%Y", "MM": "%m", "DD": "%d", "HH24": "%H", "HH": "%I", "MI": "%M", "SS": "%S"}


def oracle_format(fmt: str) -> str:
    """An Oracle datetime format ('YYYY-MM-DD"T"HH24:MI:SS') as a strftime format."""
    parts = []
    for token in _FORMAT_RE.findall(fmt):
        if token in _FORMATS:
            parts.append(_FORMATS[token])
        elif token.startswith('"'):
            parts.append(token[1:-1].replace("%", "%%"))
        else:
            parts.append(token.replace("%", "%%"))
    return "".join(parts)


def _query_error(detail: str) -> ApiError:
    return ApiError(
        400,
        "INVALID_PARAMETER",
        f"Invalid search query. Detailed unprocessed description follows. {detail}",
    )


def tokenize(text: str) -> list[tuple[str, str]]:
    tokens, position = [], 0
    text = text.strip()
    while position < len(text):
        match = _TOKEN_RE.match(text, position)
        if not match or match.end() == position:
            raise _query_error(f"Search error occurred: Unexpected character near '{text[position : position + 20]}'.")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


class SuiteQLParser:
    def __init__(self, text: str):
        self.tokens = tokenize(text)
        self.position = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def keyword(self, *words: str) -> bool:
        """Consume the keywords if they come next."""
        for offset, word in enumerate(words):
            index = self.position + offset
            if index >= len(self.tokens):
                return False
            kind, value = self.tokens[index]
            if kind != "ident" or value.upper() != word:
                return False
        self.position += len(words)
        return True

    def take(self, kind: str, value: str | None = None) -> str:
        token = self.peek()
        if token is None or token[0] != kind or (value is not None and token[1].upper() != value):
            shown = token[1] if token else "end of query"
            raise _query_error(f"Search error occurred: Unexpected '{shown}'; expected {value or kind}.")
        self.position += 1
        return token[1]

    def parse(self) -> dict[str, Any]:
        if not self.keyword("SELECT"):
            raise _query_error("Search error occurred: Only SELECT statements are supported.")
        items = [self.select_item()]
        while self.peek() == ("punct", ","):
            self.position += 1
            items.append(self.select_item())
        if not self.keyword("FROM"):
            raise _query_error("Search error occurred: FROM expected.")
        table = self.take("ident").lower()
        where = None
        if self.keyword("WHERE"):
            where = self.parse_or()
        order = []
        if self.keyword("ORDER", "BY"):
            while True:
                operand = self.operand()
                descending = False
                if self.keyword("DESC"):
                    descending = True
                else:
                    self.keyword("ASC")
                order.append((operand, descending))
                if self.peek() != ("punct", ","):
                    break
                self.position += 1
        if self.peek() is not None:
            raise _query_error(f"Search error occurred: Unexpected '{self.peek()[1]}'.")
        return {"items": items, "table": table, "where": where, "order": order}

    def select_item(self) -> tuple:
        if self.peek() == ("punct", "*"):
            self.position += 1
            return ("star",)
        if self.keyword("COUNT"):
            self.take("punct", "(")
            self.take("punct", "*")
            self.take("punct", ")")
            return ("count", self.alias() or "count")
        operand = self.operand()
        default = operand[1].lower().split(".")[-1] if operand[0] == "col" else "expr"
        return ("expr", operand, self.alias() or default)

    def alias(self) -> str | None:
        self.keyword("AS")
        token = self.peek()
        if token and token[0] == "quoted":
            self.position += 1
            return token[1][1:-1].lower()
        if token and token[0] == "ident" and token[1].upper() not in ("FROM", "WHERE", "ORDER", "AND", "OR"):
            self.position += 1
            return token[1].lower()
        return None

    def parse_or(self) -> tuple:
        node = self.parse_and()
        while self.keyword("OR"):
            node = ("or", node, self.parse_and())
        return node

    def parse_and(self) -> tuple:
        node = self.parse_not()
        while self.keyword("AND"):
            node = ("and", node, self.parse_not())
        return node

    def parse_not(self) -> tuple:
        if self.keyword("NOT"):
            return ("not", self.parse_not())
        if self.peek() == ("punct", "("):
            self.position += 1
            node = self.parse_or()
            self.take("punct", ")")
            return node
        left = self.operand()
        if self.keyword("IS", "NOT", "NULL"):
            return ("null", left, True)
        if self.keyword("IS", "NULL"):
            return ("null", left, False)
        negated = self.keyword("NOT")
        if self.keyword("IN"):
            self.take("punct", "(")
            values = [self.operand()]
            while self.peek() == ("punct", ","):
                self.position += 1
                values.append(self.operand())
            self.take("punct", ")")
            return ("in", left, values, negated)
        if self.keyword("LIKE"):
            return ("like", left, self.operand(), negated)
        if negated:
            raise _query_error("Search error occurred: IN or LIKE expected after NOT.")
        op = self.take("op")
        return ("cmp", op, left, self.operand())

    def operand(self) -> tuple:
        token = self.peek()
        if token is None:
            raise _query_error("Search error occurred: Unexpected end of query.")
        kind, value = token
        self.position += 1
        if kind == "string":
            return ("lit", value[1:-1].replace("''", "'"))
        if kind == "number":
            return ("lit", Decimal(value))
        if kind == "ident":
            if value.upper() == "NULL":
                return ("lit", None)
            if self.peek() == ("punct", "("):
                self.position += 1
                args = [self.operand()]
                while self.peek() == ("punct", ","):
                    self.position += 1
                    args.append(self.operand())
                self.take("punct", ")")
                return ("func", value.upper(), args)
            return ("col", value.lower().split(".")[-1])
        raise _query_error(f"Search error occurred: Unexpected '{value}'.")


def _comparable(left: Any, right: Any) -> tuple[Any, Any]:
    """Coerce the two sides of a comparison the way Oracle would for our column types."""
    if isinstance(left, datetime) and isinstance(right, date) and not isinstance(right, datetime):
        right = datetime(right.year, right.month, right.day, tzinfo=UTC)
    elif isinstance(right, datetime) and isinstance(left, date) and not isinstance(left, datetime):
        left = datetime(left.year, left.month, left.day, tzinfo=UTC)
    if isinstance(left, int | Decimal) and isinstance(right, str):
        right = Decimal(right)
    elif isinstance(right, int | Decimal) and isinstance(left, str):
        left = Decimal(left)
    return left, right


class SuiteQLRun:
    """Evaluates one parsed query over rows (dicts of typed values)."""

    def __init__(self, query: dict[str, Any], columns: set[str], display):
        self.query = query
        self.columns = columns
        self.display = display  # (column, value) -> display name, for BUILTIN.DF

    def value(self, node: tuple, row: dict[str, Any]) -> Any:
        kind = node[0]
        if kind == "lit":
            return node[1]
        if kind == "col":
            if node[1] not in self.columns:
                raise _query_error(
                    f"Search error occurred: Field '{node[1]}' for record '{self.query['table']}' was not found."
                )
            return row.get(node[1])
        name, args = node[1], node[2]
        try:
            if name == "TO_CHAR":
                moment = self.value(args[0], row)
                if moment is None:
                    return None
                return moment.strftime(oracle_format(self.value(args[1], row))) if len(args) > 1 else str(moment)
            if name == "TO_TIMESTAMP":
                text, fmt = self.value(args[0], row), self.value(args[1], row)
                return datetime.strptime(text, oracle_format(fmt)).replace(tzinfo=UTC)
            if name == "TO_DATE":
                text, fmt = self.value(args[0], row), self.value(args[1], row)
                return datetime.strptime(text, oracle_format(fmt)).date()
            if name in ("UPPER", "LOWER"):
                text = self.value(args[0], row)
                return None if text is None else (str(text).upper() if name == "UPPER" else str(text).lower())
            if name == "BUILTIN.DF":
                column = args[0][1] if args[0][0] == "col" else ""
                return self.display(column, self.value(args[0], row))
        except (ValueError, TypeError, IndexError, AttributeError) as exc:
            raise _query_error(f"Search error occurred: {name} could not be evaluated ({exc}).") from None
        raise _query_error(f"Search error occurred: Unknown function {name}.")

    def matches(self, node: tuple | None, row: dict[str, Any]) -> bool:
        if node is None:
            return True
        kind = node[0]
        if kind == "and":
            return self.matches(node[1], row) and self.matches(node[2], row)
        if kind == "or":
            return self.matches(node[1], row) or self.matches(node[2], row)
        if kind == "not":
            return not self.matches(node[1], row)
        if kind == "null":
            is_null = self.value(node[1], row) is None
            return not is_null if node[2] else is_null
        if kind == "in":
            left = self.value(node[1], row)
            if left is None:
                return False
            found = any(self._equal(left, self.value(v, row)) for v in node[2])
            return found != node[3]
        if kind == "like":
            left, pattern = self.value(node[1], row), self.value(node[2], row)
            if left is None or pattern is None:
                return False
            regex = "^" + re.escape(str(pattern)).replace("%", ".*").replace("_", ".") + "$"
            return bool(re.match(regex, str(left), re.S)) != node[3]
        op, left, right = node[1], self.value(node[2], row), self.value(node[3], row)
        if left is None or right is None:
            return False
        try:
            left, right = _comparable(left, right)
            return {
                "=": left == right,
                "!=": left != right,
                "<>": left != right,
                "<": left < right,
                "<=": left <= right,
                ">": left > right,
                ">=": left >= right,
            }[op]
        except (TypeError, InvalidOperation):
            raise _query_error(f"Search error occurred: Cannot compare {left!r} with {right!r}.") from None

    def _equal(self, left: Any, right: Any) -> bool:
        try:
            left, right = _comparable(left, right)
        except InvalidOperation:
            return False
        return left == right

    def run(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        selected = [row for row in rows if self.matches(self.query["where"], row)]
        for operand, descending in reversed(self.query["order"]):
            selected.sort(key=lambda r, o=operand: self._sort_key(self.value(o, r)), reverse=descending)
        items = self.query["items"]
        if any(item[0] == "count" for item in items):
            return [{item[1]: len(selected) for item in items if item[0] == "count"}]
        out = []
        for row in selected:
            rendered: dict[str, Any] = {}
            for item in items:
                if item[0] == "star":
                    rendered.update(row)
                else:
                    rendered[item[2]] = self.value(item[1], row)
            out.append(rendered)
        return out

    @staticmethod
    def _sort_key(value: Any) -> tuple:
        if value is None:
            return (1, 0)
        if isinstance(value, datetime):
            return (0, value.timestamp())
        if isinstance(value, date):
            return (0, datetime(value.year, value.month, value.day, tzinfo=UTC).timestamp())
        if isinstance(value, int | Decimal):
            return (0, value)
        return (0, str(value))


def render_suiteql_value(value: Any) -> Any:
    """SuiteQL REST output: strings throughout, booleans "T"/"F", raw dates in the account's format (M/D/YYYY)."""
    if isinstance(value, datetime | date):
        return f"{value.month}/{value.day}/{value.year}"
    if isinstance(value, bool):
        return "T" if value else "F"
    if isinstance(value, int | Decimal):
        return str(value)
    return value


# ---------------------------------------------------------------------------------------------------------------
# The account
# ---------------------------------------------------------------------------------------------------------------


def _rule(path: str, endpoint: str, methods: list[str]) -> Rule:
    return Rule(path, endpoint=endpoint, methods=methods, strict_slashes=False)


class NetSuiteSandbox(SandboxApp):
    vendor = "netsuite"

    def __init__(self, firm: Firm | None = None):
        self.concurrency_limit = ACCOUNT_CONCURRENCY
        self.processing_seconds = 0.0  # how long each call holds its concurrency slot (tests raise it)
        self.suiteql_max_results = SUITEQL_MAX_RESULTS
        self._inflight = 0
        self._inflight_lock = threading.Lock()
        self.max_inflight = 0
        self.concurrency_rejections = 0
        self.certificate = x509.load_pem_x509_certificate(DEMO_CERTIFICATE.encode())
        super().__init__(firm)

    def routes(self) -> list[Rule]:
        return [
            _rule(TOKEN_PATH, "token", ["POST"]),
            _rule("/services/rest/query/v1/suiteql", "suiteql", ["POST"]),
            _rule("/services/rest/record/v1/<record_type>", "create", ["POST"]),
            _rule("/services/rest/record/v1/<record_type>/<key>", "record", ["GET", "PUT", "PATCH", "DELETE"]),
        ]

    # -- state ---------------------------------------------------------------------------------------------------

    def reset_state(self) -> None:
        self.tokens: dict[str, float] = {}
        self.idempotency_keys: dict[str, tuple[str, int]] = {}
        self.records: dict[str, dict[int, dict[str, Any]]] = {t: {} for t in SCHEMA}
        self.external_index: dict[str, dict[str, int]] = {t: {} for t in SCHEMA}
        self._next_entity_id = 100
        self._next_transaction_id = 5000
        self._seed()
        with self._inflight_lock:
            self.max_inflight = 0
            self.concurrency_rejections = 0

    def _seed(self) -> None:
        firm = self.firm
        subsidiary_by_country = {country: sid for sid, (_n, _c, country) in SUBSIDIARIES.items()}
        term_by_name = {name: tid for tid, (name, _days) in TERMS.items()}
        department_by_name = {name: did for did, name in DEPARTMENTS.items()}
        minute = 0

        def stamp() -> datetime:
            nonlocal minute
            minute += 1
            return SEED_EPOCH + timedelta(minutes=minute)

        customer_ids: dict[int, int] = {}
        for customer in firm.customers():
            subsidiary = subsidiary_by_country.get(customer["billing_address"]["country"], 1)
            address = customer["billing_address"]
            record = self._insert(
                "customer",
                {
                    "entityId": customer["number"],
                    "companyName": customer["name"],
                    "phone": customer["phone"],
                    "url": f"https://{customer['domain']}",
                    "email": f"accounts@{customer['domain']}",
                    "terms": str(term_by_name.get(customer["payment_terms"], 2)),
                    "subsidiary": str(subsidiary),
                    "currency": str(SUBSIDIARIES[subsidiary][1]),
                    "isInactive": False,
                    "addressBook": {
                        "items": [
                            {
                                "defaultBilling": True,
                                "addressBookAddress": {
                                    "addr1": address["street"],
                                    "city": address["city"],
                                    "state": address["region"],
                                    "zip": address["postal_code"],
                                    "country": address["country"],
                                },
                            }
                        ]
                    },
                    "externalId": customer["number"],
                },
                stamp(),
            )
            customer_ids[customer["id"]] = record["id"]

        people = firm.erp_people()  # the latest hires are not in the ERP yet
        employee_ids: dict[str, int] = {}
        for person in people:
            subsidiary = subsidiary_by_country.get(person["country"], 1)
            record = self._insert(
                "employee",
                {
                    "entityId": person["employee_number"],
                    "firstName": person["first_name"],
                    "lastName": person["last_name"],
                    "email": person["work_email"],
                    "title": person["job_title"],
                    "department": str(department_by_name[person["department"]]),
                    "subsidiary": str(subsidiary),
                    "laborCost": Decimal(person["cost_rate"]) if person["cost_rate"] else None,
                    "hireDate": date.fromisoformat(person["hire_date"]),
                    "releaseDate": date.fromisoformat(person["termination_date"])
                    if person["termination_date"]
                    else None,
                    "isInactive": person["status"] != "Active",
                    "externalId": person["employee_number"],
                },
                stamp(),
            )
            employee_ids[person["work_email"]] = record["id"]
        for person in people:
            supervisor = employee_ids.get(person["supervisor_email"] or "")
            if supervisor:
                self.records["employee"][employee_ids[person["work_email"]]]["supervisor"] = str(supervisor)

        job_ids: dict[int, int] = {}
        for project in firm.erp_projects():  # the last won deals are not set up in the ERP yet
            parent = self.records["customer"][customer_ids[project["customer_id"]]]
            manager = employee_ids.get(project["manager_email"])
            job = self._insert(
                "job",
                {
                    "entityId": project["code"],
                    "companyName": project["name"],
                    "parent": str(parent["id"]),
                    "startDate": date.fromisoformat(project["start_date"]),
                    "projectedEndDate": date.fromisoformat(project["end_date"]),
                    "jobBillingType": BILLING_TERMS_TO_JOB_TYPE.get(project["billing_terms"], "TM"),
                    "projectManager": str(manager) if manager else None,
                    "currency": parent["currency"],
                    "subsidiary": parent["subsidiary"],
                    "isInactive": False,
                    "externalId": project["code"],
                },
                stamp(),
            )
            job_ids[project["id"]] = job["id"]

        # Invoices from before the firm kept its time in the PSA: they bill months no time entry falls in.
        for invoice in firm.erp_invoices():
            customer = self.records["customer"][customer_ids[invoice["customer_id"]]]
            day = date.fromisoformat(invoice["date"])
            self._insert(
                "invoice",
                {
                    "tranId": invoice["number"],
                    "entity": str(customer["id"]),
                    "tranDate": day,
                    "dueDate": day + timedelta(days=TERMS[int(customer["terms"])][1]),
                    "terms": customer["terms"],
                    "currency": customer["currency"],
                    "subsidiary": customer["subsidiary"],
                    "memo": invoice["description"],
                    "item": [
                        {
                            "item": "1",
                            "quantity": Decimal(invoice["quantity"]),
                            "rate": Decimal(invoice["rate"]),
                            "amount": Decimal(invoice["amount"]),
                            "description": invoice["description"],
                            "job": str(job_ids[invoice["project_id"]]),
                        }
                    ],
                    "externalId": invoice["number"],
                },
                stamp(),
            )

    def _insert(self, record_type: str, values: dict[str, Any], moment: datetime) -> dict[str, Any]:
        if record_type in ENTITY_TYPES:
            self._next_entity_id += 1
            record_id = self._next_entity_id
        else:
            self._next_transaction_id += 1
            record_id = self._next_transaction_id
        record = {"id": record_id, **values}
        if record_type == "invoice":
            record["createdDate"] = moment
            record["status"] = "Open"
            record.setdefault("tranId", f"INV{record_id}")
            record["total"] = sum((line.get("amount") or Decimal(0) for line in record.get("item") or []), Decimal(0))
        else:
            record["dateCreated"] = moment
            record.setdefault("entityId", f"{record_type[:3].upper()}{record_id}")
        record["lastModifiedDate"] = moment
        self.records[record_type][record_id] = record
        if record.get("externalId"):
            self.external_index[record_type][str(record["externalId"]).lower()] = record_id
        return record

    # -- vendor hooks ----------------------------------------------------------------------------------------------

    def rate_limited_response(self, request: Request, retry_after: float) -> Response:
        body = error_body(429, "REQUEST_LIMIT_EXCEEDED", "Request blocked by the request rate limit of the account.")
        return json_response(body, status=429, headers={"Retry-After": str(math.ceil(retry_after))})

    def server_error_response(self, request: Request) -> Response:
        body = error_body(500, "UNEXPECTED_ERROR", "An unexpected error occurred (injected by the sandbox).")
        return json_response(body, status=500)

    def not_found_response(self, request: Request) -> Response:
        return json_response(error_body(404, "NONEXISTENT_ID", f"The resource {request.path} does not exist."), 404)

    def method_not_allowed_response(self, request: Request) -> Response:
        detail = f"The {request.method} method is not allowed on {request.path}."
        return json_response(error_body(405, "METHOD_NOT_ALLOWED", detail), 405)

    def _error(self, error: ApiError) -> Response:
        return json_response(error_body(error.status, error.code, error.detail, error.path), status=error.status)

    @contextmanager
    def _slot(self):
        """Hold one of the account's concurrent-request slots; yields False when none is free."""
        with self._inflight_lock:
            free = self._inflight < self.concurrency_limit
            if free:
                self._inflight += 1
                self.max_inflight = max(self.max_inflight, self._inflight)
            else:
                self.concurrency_rejections += 1
        try:
            if free and self.processing_seconds:
                time.sleep(self.processing_seconds)
            yield free
        finally:
            if free:
                with self._inflight_lock:
                    self._inflight -= 1

    def _concurrency_refused(self) -> Response:
        detail = "Concurrent request limit exceeded. Request blocked."
        return json_response(error_body(429, CONCURRENCY_ERROR_CODE, detail), status=429)

    def _authorized(self, request: Request) -> bool:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            return False
        token = header[len("Bearer ") :].strip()
        with self.lock:
            expires = self.tokens.get(token)
        return expires is not None and expires > time.time()

    def _unauthorized(self) -> Response:
        detail = (
            "Invalid login attempt. For more details, see the Login Audit Trail in the NetSuite UI at Setup > "
            "Users/Roles > User Management > View Login Audit Trail."
        )
        return json_response(error_body(401, "INVALID_LOGIN", detail), status=401)

    # -- OAuth 2.0 client credentials -----------------------------------------------------------------------------

    def token(self, request: Request) -> Response:
        form = request.form

        def refuse(error: str, status: int = 400) -> Response:
            return json_response({"error": error}, status=status)

        if form.get("grant_type") != "client_credentials" or form.get("client_assertion_type") != CLIENT_ASSERTION_TYPE:
            return refuse("invalid_request")
        assertion = form.get("client_assertion", "")
        try:
            header = jwt.get_unverified_header(assertion)
        except jwt.PyJWTError:
            return refuse("invalid_request")
        if header.get("alg") not in SIGNING_ALGORITHMS:
            return refuse("invalid_request")  # RS256 (PKCS#1 v1.5) is no longer accepted
        if not hmac.compare_digest(str(header.get("kid", "")), DEMO_CREDENTIALS["certificate_id"]):
            return refuse("invalid_client", 401)
        audience = f"{request.host_url.rstrip('/')}{TOKEN_PATH}"
        try:
            claims = jwt.decode(
                assertion,
                self.certificate.public_key(),
                algorithms=[header["alg"]],
                audience=audience,
                options={"require": ["iss", "aud", "exp", "iat", "scope"]},
            )
        except jwt.InvalidSignatureError:
            return refuse("invalid_client", 401)
        except jwt.PyJWTError:
            return refuse("invalid_grant")
        if not hmac.compare_digest(str(claims.get("iss", "")), DEMO_CREDENTIALS["client_id"]):
            return refuse("invalid_client", 401)
        if int(claims["exp"]) - int(claims["iat"]) > 3600:
            return refuse("invalid_grant")
        scope = claims.get("scope")
        scopes = scope if isinstance(scope, list) else str(scope).split(",")
        if SCOPE not in [s.strip() for s in scopes]:
            return refuse("invalid_scope")
        token = secrets.token_urlsafe(48)
        with self.lock:
            self.tokens[token] = time.time() + TOKEN_LIFETIME
        return json_response({"access_token": token, "expires_in": str(TOKEN_LIFETIME), "token_type": "bearer"})

    # -- SuiteQL -------------------------------------------------------------------------------------------------

    def suiteql(self, request: Request) -> Response:
        if not self._authorized(request):
            return self._unauthorized()
        with self._slot() as free:
            if not free:
                return self._concurrency_refused()
            try:
                return self._suiteql(request)
            except ApiError as error:
                return self._error(error)

    def _suiteql(self, request: Request) -> Response:
        if "transient" not in request.headers.get("Prefer", "").lower():
            raise ApiError(400, "INVALID_HEADER", "The SuiteQL resource requires the header 'Prefer: transient'.")
        try:
            limit = int(request.args.get("limit", SUITEQL_PAGE_MAX))
            offset = int(request.args.get("offset", 0))
        except ValueError:
            raise ApiError(400, "INVALID_PARAMETER", "The limit and offset parameters must be integers.") from None
        if not 1 <= limit <= SUITEQL_PAGE_MAX:
            raise ApiError(400, "INVALID_PARAMETER", f"The limit must be between 1 and {SUITEQL_PAGE_MAX}.")
        if offset < 0 or offset >= self.suiteql_max_results:
            raise ApiError(
                400, "INVALID_PARAMETER", f"The offset must be between 0 and {self.suiteql_max_results - 1}."
            )
        body = request.get_json(force=True, silent=True)
        if not isinstance(body, dict) or not isinstance(body.get("q"), str):
            raise ApiError(400, "INVALID_CONTENT", 'The request body must be {"q": "<SuiteQL query>"}.')
        query = SuiteQLParser(body["q"]).parse()
        with self.lock:
            rows, columns = self._table(query["table"])
            result = SuiteQLRun(query, columns, self._display).run(rows)
        total = len(result)
        served_total = min(total, self.suiteql_max_results)
        page = result[offset : min(offset + limit, served_total)]
        has_more = offset + len(page) < served_total
        items = []
        for row in page:
            item = {"links": []}
            item.update({k: render_suiteql_value(v) for k, v in row.items() if v is not None})
            items.append(item)
        for position in self.malformed_positions(len(items)):
            item = items[position]
            watermark = [k for k in item if "lastmodified" in k]
            if position % 2 == 0 or not watermark:
                item.pop("id", None)
            else:
                for key in watermark:
                    item[key] = "31/31/2024 99:99"
        base = f"{request.host_url.rstrip('/')}/services/rest/query/v1/suiteql"
        links = []
        if offset > 0:
            links.append({"rel": "previous", "href": f"{base}?limit={limit}&offset={max(0, offset - limit)}"})
            links.append({"rel": "first", "href": f"{base}?limit={limit}&offset=0"})
        if has_more:
            last = ((served_total - 1) // limit) * limit
            links.append({"rel": "next", "href": f"{base}?limit={limit}&offset={offset + limit}"})
            links.append({"rel": "last", "href": f"{base}?limit={limit}&offset={last}"})
        links.append({"rel": "self", "href": f"{base}?limit={limit}&offset={offset}"})
        return json_response(
            {
                "links": links,
                "count": len(items),
                "hasMore": has_more,
                "items": items,
                "offset": offset,
                "totalResults": total,
            }
        )

    def _table(self, table: str) -> tuple[list[dict[str, Any]], set[str]]:
        """The rows of a SuiteQL table (typed values) and its column names."""
        if table in SUITEQL_COLUMNS:
            fields = SUITEQL_COLUMNS[table]
            columns = {
                "id",
                "externalid",
                "isinactive",
                "datecreated",
                "lastmodifieddate",
                *(f.lower() for f in fields),
            }
            rows = []
            for record in self.records[table].values():
                row = {f.lower(): record.get(f) for f in fields}
                row.update(
                    id=record["id"],
                    externalid=record.get("externalId"),
                    isinactive="T" if record.get("isInactive") else "F",
                    datecreated=record["dateCreated"],
                    lastmodifieddate=record["lastModifiedDate"],
                )
                rows.append(row)
            return rows, columns
        if table == "transaction":
            columns = {
                "id",
                "tranid",
                "type",
                "entity",
                "trandate",
                "duedate",
                "terms",
                "currency",
                "subsidiary",
                "foreigntotal",
                "memo",
                "status",
                "externalid",
                "createddate",
                "lastmodifieddate",
            }
            rows = [
                {
                    "id": invoice["id"],
                    "tranid": invoice.get("tranId"),
                    "type": INVOICE_TRANSACTION_TYPE,
                    "entity": invoice.get("entity"),
                    "trandate": invoice.get("tranDate"),
                    "duedate": invoice.get("dueDate"),
                    "terms": invoice.get("terms"),
                    "currency": invoice.get("currency"),
                    "subsidiary": invoice.get("subsidiary"),
                    "foreigntotal": invoice.get("total"),
                    "memo": invoice.get("memo"),
                    "status": "A",  # Open
                    "externalid": invoice.get("externalId"),
                    "createddate": invoice["createdDate"],
                    "lastmodifieddate": invoice["lastModifiedDate"],
                }
                for invoice in self.records["invoice"].values()
            ]
            return rows, columns
        lists = {
            "term": [{"id": k, "name": n, "daysuntilnetdue": d} for k, (n, d) in TERMS.items()],
            "currency": [{"id": k, "symbol": s, "name": n} for k, (s, n) in CURRENCIES.items()],
            "subsidiary": [
                {"id": k, "name": n, "currency": str(c), "country": cc} for k, (n, c, cc) in SUBSIDIARIES.items()
            ],
            "department": [{"id": k, "name": n} for k, n in DEPARTMENTS.items()],
            "item": [{"id": k, "itemid": n, "displayname": n, "itemtype": t} for k, (n, t) in ITEMS.items()],
        }
        if table in lists:
            rows = lists[table]
            return rows, set(rows[0])
        raise _query_error(f"Search error occurred: Record '{table}' was not found.")

    def _display(self, column: str, value: Any) -> str | None:
        """BUILTIN.DF: the display name of a reference column's value."""
        if value is None:
            return None
        targets = {
            "terms": "term",
            "currency": "currency",
            "subsidiary": "subsidiary",
            "department": "department",
            "parent": "customer",
            "entity": "customer|job",
            "supervisor": "employee",
            "projectmanager": "employee",
            "item": "item",
        }
        target = targets.get(column)
        if target is None:
            return str(value)
        return self._ref_name(target, str(value)) or str(value)

    # -- records -------------------------------------------------------------------------------------------------

    def create(self, request: Request, record_type: str) -> Response:
        if not self._authorized(request):
            return self._unauthorized()
        with self._slot() as free:
            if not free:
                return self._concurrency_refused()
            try:
                return self._create(request, record_type)
            except ApiError as error:
                return self._error(error)

    def _create(self, request: Request, record_type: str) -> Response:
        self._check_type(record_type)
        body = self._body(request)
        key = request.headers.get(IDEMPOTENCY_HEADER)
        with self.lock:
            if key and key in self.idempotency_keys:
                raise ApiError(
                    400,
                    IDEMPOTENCY_ERROR_CODE,
                    f"A request with the idempotency key {key} has already been processed.",
                )
            values = self._validate(record_type, body, existing=None)
            external_id = values.get("externalId")
            if external_id and str(external_id).lower() in self.external_index[record_type]:
                raise ApiError(
                    400,
                    "USER_ERROR",
                    f"A {record_type} record with the external ID {external_id} already exists.",
                    "externalId",
                )
            record = self._insert(record_type, values, _now())
            if key:
                self.idempotency_keys[key] = (record_type, record["id"])
        return self._no_content(request, record_type, record["id"])

    def record(self, request: Request, record_type: str, key: str) -> Response:
        if not self._authorized(request):
            return self._unauthorized()
        with self._slot() as free:
            if not free:
                return self._concurrency_refused()
            try:
                self._check_type(record_type)
                if request.method == "GET":
                    return self._get(request, record_type, key)
                if request.method == "DELETE":
                    return self._delete(record_type, key)
                return self._save(request, record_type, key)
            except ApiError as error:
                return self._error(error)

    def _get(self, request: Request, record_type: str, key: str) -> Response:
        with self.lock:
            record = self._find(record_type, key)
            if record is None:
                raise self._missing(record_type, key)
            expand = request.args.get("expandSubResources", "").lower() == "true"
            return json_response(self._render(request, record_type, record, expand=expand))

    def _delete(self, record_type: str, key: str) -> Response:
        with self.lock:
            record = self._find(record_type, key)
            if record is None:
                raise self._missing(record_type, key)
            del self.records[record_type][record["id"]]
            if record.get("externalId"):
                self.external_index[record_type].pop(str(record["externalId"]).lower(), None)
        return Response(status=204)

    def _save(self, request: Request, record_type: str, key: str) -> Response:
        body = self._body(request)
        upsert = request.method == "PUT"
        if upsert and not key.startswith("eid:"):
            raise ApiError(400, "INVALID_REQUEST", "The upsert operation (PUT) needs an external ID: use eid:<id>.")
        with self.lock:
            record = self._find(record_type, key)
            idempotency_key = request.headers.get(IDEMPOTENCY_HEADER)
            if idempotency_key and idempotency_key in self.idempotency_keys:
                raise ApiError(
                    400,
                    IDEMPOTENCY_ERROR_CODE,
                    f"A request with the idempotency key {idempotency_key} has already been processed.",
                )
            if record is None and not upsert:
                raise self._missing(record_type, key)
            if record is None:
                external_id = key[len("eid:") :]
                if not EXTERNAL_ID_RE.match(external_id):
                    raise ApiError(400, "INVALID_ID", f"The external ID {external_id} contains invalid characters.")
                values = self._validate(record_type, {**body, "externalId": external_id}, existing=None)
                record = self._insert(record_type, values, _now())
            else:
                values = self._validate(record_type, body, existing=record)
                record.update(values)
                if record_type == "invoice":
                    record["total"] = sum(
                        (line.get("amount") or Decimal(0) for line in record.get("item") or []), Decimal(0)
                    )
                record["lastModifiedDate"] = _now()
                if values.get("externalId"):
                    self.external_index[record_type][str(values["externalId"]).lower()] = record["id"]
            if idempotency_key:
                self.idempotency_keys[idempotency_key] = (record_type, record["id"])
        return self._no_content(request, record_type, record["id"])

    def _no_content(self, request: Request, record_type: str, record_id: int) -> Response:
        location = f"{request.host_url.rstrip('/')}/services/rest/record/v1/{record_type}/{record_id}"
        return Response(status=204, headers={"Location": location})

    def _check_type(self, record_type: str) -> None:
        if record_type not in SCHEMA:
            raise ApiError(
                404,
                "NONEXISTENT_ID",
                f"Record type '{record_type}' does not exist in this sandbox (it serves {', '.join(SCHEMA)}).",
            )

    @staticmethod
    def _body(request: Request) -> dict[str, Any]:
        body = request.get_json(force=True, silent=True)
        if not isinstance(body, dict):
            raise ApiError(400, "INVALID_CONTENT", "The request body must be a JSON object.")
        return body

    def _missing(self, record_type: str, key: str) -> ApiError:
        return ApiError(
            404,
            "NONEXISTENT_ID",
            f"The record instance does not exist. Provide a valid record instance ID ({record_type} {key}).",
        )

    def _find(self, record_type: str, key: str) -> dict[str, Any] | None:
        if key.startswith("eid:"):
            record_id = self.external_index[record_type].get(key[len("eid:") :].lower())
        else:
            record_id = int(key) if key.isdigit() else None
        return self.records[record_type].get(record_id) if record_id is not None else None

    # -- validation ----------------------------------------------------------------------------------------------

    def _validate(self, record_type: str, body: dict[str, Any], existing: dict[str, Any] | None) -> dict[str, Any]:
        """Body fields as stored values; raises ApiError the way NetSuite reports the first problem."""
        schema = SCHEMA[record_type]
        values: dict[str, Any] = {}
        for field, value in body.items():
            if field in READ_ONLY:
                continue
            if field.startswith("cust"):
                values[field] = value  # custom fields (custentity_..., custbody_...) are stored as given
                continue
            kind = schema.get(field)
            if kind is None:
                raise ApiError(
                    400,
                    "INVALID_CONTENT",
                    f"Error while accessing resource: Invalid field name '{field}' for record type {record_type}.",
                    field,
                )
            values[field] = self._convert(kind, value, field, field, record_type)

        merged = {**(existing or {}), **values}
        # Defaults NetSuite fills in from related records.
        if record_type == "job" and merged.get("parent"):
            parent = self.records["customer"][int(merged["parent"])]
            merged.setdefault("currency", parent.get("currency"))
            merged.setdefault("subsidiary", parent.get("subsidiary"))
            values.setdefault("currency", merged["currency"])
            values.setdefault("subsidiary", merged["subsidiary"])
        if record_type in ("customer", "employee") and not merged.get("subsidiary"):
            values["subsidiary"] = merged["subsidiary"] = "1"
        if record_type == "customer" and not merged.get("currency"):
            values["currency"] = merged["currency"] = str(SUBSIDIARIES[int(merged["subsidiary"])][1])
        if record_type == "invoice" and merged.get("entity"):
            entity = self._entity(merged["entity"])
            customer = entity if "parent" not in entity else self.records["customer"].get(int(entity["parent"]), entity)
            for field in ("currency", "subsidiary", "terms"):
                if not merged.get(field) and customer.get(field):
                    values[field] = merged[field] = customer[field]
            if not merged.get("tranDate"):
                values["tranDate"] = merged["tranDate"] = _now().date()
            if not merged.get("dueDate"):
                days = TERMS[int(merged["terms"])][1] if merged.get("terms") else 0
                values["dueDate"] = merged["dueDate"] = merged["tranDate"] + timedelta(days=days)
        for field, label in REQUIRED[record_type]:
            if merged.get(field) in (None, "", []):
                raise ApiError(400, "USER_ERROR", f"Please enter value(s) for: {label}.", field)
        return values

    def _convert(self, kind: str, value: Any, field: str, path: str, record_type: str) -> Any:
        if value is None:
            return None
        if kind == "text":
            if not isinstance(value, str | int | float):
                raise _invalid_value(value, field, path)
            return str(value)
        if kind == "raw":
            return value
        if kind == "bool":
            if not isinstance(value, bool):
                raise _invalid_value(value, field, path)
            return value
        if kind == "number":
            try:
                if isinstance(value, bool):
                    raise InvalidOperation
                return Decimal(str(value))
            except InvalidOperation:
                raise _invalid_value(value, field, path) from None
        if kind == "date":
            try:
                return date.fromisoformat(str(value)[:10])
            except ValueError:
                raise _invalid_value(value, field, path) from None
        if kind == "enum":
            if value not in JOB_BILLING_TYPES:
                raise _invalid_value(value, field, path)
            return value
        if kind == "lines":
            return self._lines(value, record_type)
        if kind.startswith("ref:"):
            return self._reference(kind[len("ref:") :], value, field, path)
        raise ValueError(kind)

    def _reference(self, targets: str, value: Any, field: str, path: str) -> str:
        """A reference {"id": ...} (or {"externalId": ...}, unverified) to an existing record, as its id."""
        if not isinstance(value, dict) or not (value.get("id") or value.get("externalId")):
            raise _invalid_value(value, field, path)
        for target in targets.split("|"):
            found = self._lookup(target, value)
            if found is not None:
                return str(found)
        raise _invalid_value(value, field, path)

    def _lookup(self, target: str, value: dict[str, Any]) -> int | None:
        lists = {
            "term": TERMS,
            "currency": CURRENCIES,
            "subsidiary": SUBSIDIARIES,
            "department": DEPARTMENTS,
            "item": ITEMS,
        }
        if value.get("id") not in (None, ""):
            raw = str(value["id"])
            if not raw.isdigit():
                return None
            number = int(raw)
            if target in lists:
                return number if number in lists[target] else None
            return number if number in self.records[target] else None
        if target in lists:
            return None
        return self.external_index[target].get(str(value["externalId"]).lower())

    def _lines(self, value: Any, record_type: str) -> list[dict[str, Any]]:
        items = value.get("items") if isinstance(value, dict) else None
        if not isinstance(items, list):
            raise _invalid_value(value, "item", "item")
        lines = []
        for index, line in enumerate(items):
            path = f"item.items[{index}]"
            if not isinstance(line, dict):
                raise _invalid_value(line, "item", path)
            converted: dict[str, Any] = {}
            for field, item_value in line.items():
                kind = LINE_SCHEMA.get(field)
                if kind is None:
                    if field.startswith("cust"):
                        converted[field] = item_value
                        continue
                    raise ApiError(
                        400,
                        "INVALID_CONTENT",
                        f"Error while accessing resource: Invalid field name '{field}' for sublist item.",
                        f"{path}.{field}",
                    )
                converted[field] = self._convert(kind, item_value, field, f"{path}.{field}", record_type)
            if not converted.get("item"):
                raise ApiError(400, "USER_ERROR", "Please enter value(s) for: Item.", f"{path}.item")
            if converted.get("amount") is None:
                if converted.get("quantity") is None or converted.get("rate") is None:
                    raise ApiError(400, "USER_ERROR", "Please enter value(s) for: Amount.", f"{path}.amount")
                converted["amount"] = (converted["quantity"] * converted["rate"]).quantize(Decimal("0.01"))
            lines.append(converted)
        return lines

    def _entity(self, entity_id: str) -> dict[str, Any]:
        number = int(entity_id)
        return self.records["customer"].get(number) or self.records["job"][number]

    # -- rendering -----------------------------------------------------------------------------------------------

    def _ref_name(self, target: str, record_id: str) -> str | None:
        number = int(record_id) if str(record_id).isdigit() else -1
        for one in target.split("|"):
            if one == "term" and number in TERMS:
                return TERMS[number][0]
            if one == "currency" and number in CURRENCIES:
                return CURRENCIES[number][1]
            if one == "subsidiary" and number in SUBSIDIARIES:
                return SUBSIDIARIES[number][0]
            if one == "department" and number in DEPARTMENTS:
                return DEPARTMENTS[number]
            if one == "item" and number in ITEMS:
                return ITEMS[number][0]
            record = self.records.get(one, {}).get(number)
            if record is not None:
                if one == "customer":
                    return record.get("companyName")
                if one == "job":
                    return f"{record.get('entityId')} {record.get('companyName')}"
                if one == "employee":
                    return f"{record.get('firstName')} {record.get('lastName')}"
        return None

    def _ref(self, request: Request, target: str, record_id: str) -> dict[str, Any]:
        kind = target.split("|")[0]
        if "|" in target and int(record_id) in self.records["job"]:
            kind = "job"
        href = f"{request.host_url.rstrip('/')}/services/rest/record/v1/{kind}/{record_id}"
        return {
            "links": [{"rel": "self", "href": href}],
            "id": str(record_id),
            "refName": self._ref_name(target, record_id),
        }

    def _render(self, request: Request, record_type: str, record: dict[str, Any], *, expand: bool) -> dict[str, Any]:
        self_href = f"{request.host_url.rstrip('/')}/services/rest/record/v1/{record_type}/{record['id']}"
        out: dict[str, Any] = {"links": [{"rel": "self", "href": self_href}], "id": str(record["id"])}
        for field, kind in SCHEMA[record_type].items():
            value = record.get(field)
            if value is None:
                continue
            if kind.startswith("ref:"):
                out[field] = self._ref(request, kind[len("ref:") :], value)
            elif kind == "lines":
                href = f"{self_href}/item"
                if not expand:
                    out[field] = {"links": [{"rel": "self", "href": href}]}
                    continue
                lines = []
                for line in value:
                    rendered = {}
                    for line_field, line_kind in LINE_SCHEMA.items():
                        line_value = line.get(line_field)
                        if line_value is None:
                            continue
                        if line_kind.startswith("ref:"):
                            rendered[line_field] = self._ref(request, line_kind[len("ref:") :], line_value)
                        else:
                            rendered[line_field] = float(line_value) if isinstance(line_value, Decimal) else line_value
                    lines.append(rendered)
                out[field] = {
                    "links": [{"rel": "self", "href": href}],
                    "items": lines,
                    "count": len(lines),
                    "hasMore": False,
                    "offset": 0,
                    "totalResults": len(lines),
                }
            elif isinstance(value, Decimal):
                out[field] = float(value)
            elif isinstance(value, date):
                out[field] = value.isoformat()
            else:
                out[field] = value
        for field, value in record.items():
            if field.startswith("cust"):
                out[field] = value
        for field in ("dateCreated", "createdDate", "lastModifiedDate"):
            if field in record:
                out[field] = _iso(record[field])
        if record_type == "invoice":
            out["total"] = float(record.get("total") or 0)
            out["status"] = {"id": "A", "refName": record.get("status", "Open")}
        return out

    # -- introspection for tests and the demo ---------------------------------------------------------------------

    def count(self, record_type: str) -> int:
        with self.lock:
            return len(self.records[record_type])

    def get_by_external_id(self, record_type: str, external_id: str) -> dict[str, Any] | None:
        with self.lock:
            record = self._find(record_type, f"eid:{external_id}")
            return dict(record) if record else None


def create_app(firm: Firm | None = None) -> NetSuiteSandbox:
    return NetSuiteSandbox(firm)
