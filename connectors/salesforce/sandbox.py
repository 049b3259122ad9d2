"""Salesforce sandbox: a local WSGI emulator of the REST API subset the connector and simple-salesforce use.

OAuth token endpoint (password and client-credentials grants), SOQL with `nextRecordsUrl` paging, sObject
describe/create/update/upsert, sObject Collections (200 a call) and a signed Closed Won webhook. Accounts and
Opportunities are seeded from the shared Firm so every sandbox tells the same story.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from connectors.salesforce.client import (
    CLOSED_WON_STAGE,
    DEFAULT_EXTERNAL_ID_FIELD,
    WEBHOOK_EVENT_SCHEMA,
    WEBHOOK_SIGNATURE_HEADER,
    parse_salesforce_datetime,
)
from connectors.sandbox.app import SandboxApp, json_response
from connectors.sandbox.firm import Firm

DEMO_CREDENTIALS = {
    "client_id": "3MVG9sgpDemoConsumerKey.SysGenProConnectSandbox",
    "client_secret": "sgp-demo-consumer-secret-5b1f0c",
    "username": "integration@sysgenpro-demo.example",
    "password": "demo-password-and-security-token",
    "external_id_field": DEFAULT_EXTERNAL_ID_FIELD,
    "webhook_secret": "sgp-salesforce-webhook-secret",
}
WEBHOOK_SECRET = DEMO_CREDENTIALS["webhook_secret"]

ORG_ID = "00DSB0000001SGPMAQ"
USER_ID = "005SB0000001SGPMAQ"
DAILY_API_LIMIT = 100_000
SUPPORTED_VERSIONS = ("55.0", "56.0", "57.0", "58.0", "59.0", "60.0", "61.0", "62.0")
SEED_EPOCH = datetime(2024, 1, 2, 9, 0, 0, tzinfo=UTC)  # seeded records were last modified an hour apart from here

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_CHECKSUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


def salesforce_id(prefix: str, number: int) -> str:
    """An 18-character Salesforce id: key prefix, "SB" pod, a base-62 counter, then the case-safe checksum."""
    digits = ""
    while True:
        number, rest = divmod(number, 62)
        digits = _BASE62[rest] + digits
        if number == 0:
            break
    body = f"{prefix}SB{digits.rjust(10, '0')}"
    suffix = ""
    for start in (0, 5, 10):
        flags = sum(1 << i for i, char in enumerate(body[start : start + 5]) if "A" <= char <= "Z")
        suffix += _CHECKSUM[flags]
    return body + suffix


def sf_datetime(moment: datetime) -> str:
    """Salesforce's JSON datetime: UTC, whole seconds, `.000+0000`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


# ---------------------------------------------------------------------------------------------------------------
# Schema
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Field:
    name: str
    type: str  # id, string, textarea, url, phone, picklist, currency, percent, date, datetime, boolean, reference
    label: str
    length: int = 0
    required: bool = False
    createable: bool = True
    updateable: bool = True
    picklist: tuple[str, ...] = ()
    restricted: bool = False
    reference_to: str | None = None
    relationship: str | None = None
    external_id: bool = False

    def describe(self) -> dict[str, Any]:
        soap_types = {
            "id": "tns:ID",
            "reference": "tns:ID",
            "currency": "xsd:double",
            "percent": "xsd:double",
            "date": "xsd:date",
            "datetime": "xsd:dateTime",
            "boolean": "xsd:boolean",
        }
        return {
            "name": self.name,
            "label": self.label,
            "type": self.type,
            "soapType": soap_types.get(self.type, "xsd:string"),
            "length": self.length,
            "nillable": not self.required and self.type != "boolean",
            "createable": self.createable,
            "updateable": self.updateable,
            "custom": self.name.endswith("__c"),
            "externalId": self.external_id,
            "unique": self.external_id,
            "idLookup": self.external_id or self.type == "id",
            "restrictedPicklist": self.restricted,
            "picklistValues": [
                {"active": True, "defaultValue": False, "label": v, "validFor": None, "value": v} for v in self.picklist
            ],
            "referenceTo": [self.reference_to] if self.reference_to else [],
            "relationshipName": self.relationship,
        }


CURRENCIES = ("USD", "EUR", "GBP", "CAD", "AUD")
STAGES = {  # stage -> default probability, as in a new org's Opportunity stage picklist
    "Prospecting": 10,
    "Qualification": 10,
    "Needs Analysis": 20,
    "Value Proposition": 50,
    "Id. Decision Makers": 60,
    "Perception Analysis": 70,
    "Proposal/Price Quote": 75,
    "Negotiation/Review": 90,
    "Closed Won": 100,
    "Closed Lost": 0,
}


def _system_fields() -> list[Field]:
    return [
        Field("Id", "id", "Record ID", 18, createable=False, updateable=False),
        Field("IsDeleted", "boolean", "Deleted", createable=False, updateable=False),
        Field("CreatedDate", "datetime", "Created Date", createable=False, updateable=False),
        Field("LastModifiedDate", "datetime", "Last Modified Date", createable=False, updateable=False),
        Field("SystemModstamp", "datetime", "System Modstamp", createable=False, updateable=False),
    ]


SCHEMA: dict[str, dict[str, Field]] = {
    "Account": {
        f.name: f
        for f in [
            *_system_fields(),
            Field("Name", "string", "Account Name", 255, required=True),
            Field(
                "Type",
                "picklist",
                "Account Type",
                255,
                picklist=("Prospect", "Customer - Direct", "Customer - Channel", "Partner", "Other"),
            ),
            Field("Website", "url", "Website", 255),
            Field("Phone", "phone", "Account Phone", 40),
            Field(
                "Industry",
                "picklist",
                "Industry",
                255,
                picklist=("Consulting", "Engineering", "Finance", "Healthcare", "Manufacturing", "Technology"),
            ),
            Field("BillingStreet", "textarea", "Billing Street", 255),
            Field("BillingCity", "string", "Billing City", 40),
            Field("BillingState", "string", "Billing State/Province", 80),
            Field("BillingPostalCode", "string", "Billing Zip/Postal Code", 20),
            Field("BillingCountry", "string", "Billing Country", 80),
            Field("CurrencyIsoCode", "picklist", "Account Currency", 3, picklist=CURRENCIES, restricted=True),
            Field("Description", "textarea", "Account Description", 32000),
            Field(DEFAULT_EXTERNAL_ID_FIELD, "string", "Integration Record ID", 80, external_id=True),
            Field(
                "Payment_Terms__c",
                "picklist",
                "Payment Terms",
                255,
                picklist=("Due on receipt", "Net 15", "Net 30", "Net 45", "Net 60"),
            ),
        ]
    },
    "Opportunity": {
        f.name: f
        for f in [
            *_system_fields(),
            Field("Name", "string", "Name", 120, required=True),
            Field("AccountId", "reference", "Account ID", 18, reference_to="Account", relationship="Account"),
            Field("Amount", "currency", "Amount"),
            Field("CurrencyIsoCode", "picklist", "Opportunity Currency", 3, picklist=CURRENCIES, restricted=True),
            Field("StageName", "picklist", "Stage", 255, required=True, picklist=tuple(STAGES), restricted=True),
            Field("CloseDate", "date", "Close Date", required=True),
            Field("Probability", "percent", "Probability (%)"),
            Field("Type", "picklist", "Opportunity Type", 255, picklist=("New Business", "Existing Business")),
            Field("IsClosed", "boolean", "Closed", createable=False, updateable=False),
            Field("IsWon", "boolean", "Won", createable=False, updateable=False),
            Field("Description", "textarea", "Description", 32000),
            Field("Billing_Terms__c", "string", "Billing Terms", 255),
            Field("Project_Code__c", "string", "Project Code", 40),
            Field(DEFAULT_EXTERNAL_ID_FIELD, "string", "Integration Record ID", 80, external_id=True),
        ]
    },
}
KEY_PREFIXES = {"Account": "001", "Opportunity": "006"}
FIRM_STAGES = {  # the Firm's neutral deal stages -> this org's StageName picklist
    "qualification": "Qualification",
    "needs_analysis": "Needs Analysis",
    "proposal": "Proposal/Price Quote",
    "negotiation": "Negotiation/Review",
    "closed_won": "Closed Won",
    "closed_lost": "Closed Lost",
}
_STRING_TYPES = {"id", "string", "textarea", "url", "phone", "picklist", "reference"}
_NUMBER_TYPES = {"currency", "percent"}


# ---------------------------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------------------------


class ApiError(Exception):
    """A whole-request failure, answered as Salesforce's `[{message, errorCode, fields}]` array."""

    def __init__(self, status: int, code: str, message: str, fields: list[str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.fields = status, code, message, fields or []

    def body(self) -> list[dict[str, Any]]:
        error: dict[str, Any] = {"message": self.message, "errorCode": self.code}
        if self.fields:
            error["fields"] = self.fields
        return [error]


def _record_error(code: str, message: str, fields: list[str] | None = None) -> dict[str, Any]:
    # sObject Collections report per-record errors as {statusCode, message, fields}, not errorCode.
    return {"statusCode": code, "message": message, "fields": fields or []}


# ---------------------------------------------------------------------------------------------------------------
# SOQL (the subset integrations use: field lists, parent fields, WHERE with AND/OR/NOT/IN/LIKE, ORDER BY, LIMIT)
# ---------------------------------------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""\s*(?:
     (?P<string>'(?:[^'\\]|\\.)*')
    |(?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?(?:Z|[+-]\d{2}:?\d{2}))
    |(?P<date>\d{4}-\d{2}-\d{2})
    |(?P<number>-?\d+(?:\.\d+)?)
    |(?P<op><=|>=|!=|<>|=|<|>)
    |(?P<punct>[(),])
    |(?P<ident>[A-Za-z_][A-Za-z0-9_.]*)
    )""",
    re.VERBOSE,
)


@dataclass
class SoqlQuery:
    object_name: str
    fields: list[str]  # empty for SELECT COUNT()
    count_only: bool
    where: Any
    order_by: list[tuple[str, bool]]  # (field, descending)
    limit: int | None
    offset: int


def _tokenize(soql: str) -> list[tuple[str, str]]:
    tokens, position = [], 0
    soql = soql.strip()
    while position < len(soql):
        match = _TOKEN.match(soql, position)
        if not match or match.end() == position:
            raise ApiError(400, "MALFORMED_QUERY", f"unexpected token: '{soql[position:].split()[0]}'")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        position = match.end()
        while position < len(soql) and soql[position].isspace():
            position += 1
    return tokens


class _Parser:
    def __init__(self, soql: str):
        self.tokens = _tokenize(soql)
        self.position = 0

    def peek(self, offset: int = 0) -> tuple[str, str] | None:
        index = self.position + offset
        return self.tokens[index] if index < len(self.tokens) else None

    def keyword(self, *words: str) -> bool:
        token = self.peek()
        if token and token[0] == "ident" and token[1].upper() in words:
            self.position += 1
            return True
        return False

    def expect_keyword(self, word: str) -> None:
        if not self.keyword(word):
            found = self.peek()
            raise ApiError(400, "MALFORMED_QUERY", f"unexpected token: '{found[1] if found else '<EOF>'}'")

    def take(self, kind: str, value: str | None = None) -> str:
        token = self.peek()
        if not token or token[0] != kind or (value is not None and token[1] != value):
            raise ApiError(400, "MALFORMED_QUERY", f"unexpected token: '{token[1] if token else '<EOF>'}'")
        self.position += 1
        return token[1]

    def parse(self) -> SoqlQuery:
        self.expect_keyword("SELECT")
        fields: list[str] = []
        count_only = False
        if self.peek() and self.peek()[1].upper() == "COUNT" and self.peek(1) == ("punct", "("):
            self.position += 1
            self.take("punct", "(")
            self.take("punct", ")")
            count_only = True
        else:
            fields.append(self.take("ident"))
            while self.peek() == ("punct", ","):
                self.position += 1
                fields.append(self.take("ident"))
        self.expect_keyword("FROM")
        object_name = self.take("ident")
        where = self.parse_or() if self.keyword("WHERE") else None
        order_by: list[tuple[str, bool]] = []
        if self.keyword("ORDER"):
            self.expect_keyword("BY")
            while True:
                name = self.take("ident")
                descending = False
                if self.keyword("DESC"):
                    descending = True
                else:
                    self.keyword("ASC")
                if self.keyword("NULLS"):
                    self.keyword("FIRST", "LAST")
                order_by.append((name, descending))
                if self.peek() != ("punct", ","):
                    break
                self.position += 1
        limit = int(self.take("number")) if self.keyword("LIMIT") else None
        offset = int(self.take("number")) if self.keyword("OFFSET") else 0
        if self.peek() is not None:
            raise ApiError(400, "MALFORMED_QUERY", f"unexpected token: '{self.peek()[1]}'")
        return SoqlQuery(object_name, fields, count_only, where, order_by, limit, offset)

    def parse_or(self) -> Any:
        terms = [self.parse_and()]
        while self.keyword("OR"):
            terms.append(self.parse_and())
        return terms[0] if len(terms) == 1 else ("or", terms)

    def parse_and(self) -> Any:
        terms = [self.parse_not()]
        while self.keyword("AND"):
            terms.append(self.parse_not())
        return terms[0] if len(terms) == 1 else ("and", terms)

    def parse_not(self) -> Any:
        if self.keyword("NOT"):
            return ("not", self.parse_not())
        if self.peek() == ("punct", "("):
            self.position += 1
            inner = self.parse_or()
            self.take("punct", ")")
            return inner
        name = self.take("ident")
        if self.keyword("LIKE"):
            return ("like", name, self.value())
        negate = self.keyword("NOT")
        if self.keyword("IN"):
            self.take("punct", "(")
            values = [self.value()]
            while self.peek() == ("punct", ","):
                self.position += 1
                values.append(self.value())
            self.take("punct", ")")
            return ("in", name, values, negate)
        if negate:
            raise ApiError(400, "MALFORMED_QUERY", "unexpected token: 'NOT'")
        operator = self.take("op")
        return ("cmp", name, "!=" if operator == "<>" else operator, self.value())

    def value(self) -> tuple[str, Any]:
        token = self.peek()
        if token is None:
            raise ApiError(400, "MALFORMED_QUERY", "unexpected token: '<EOF>'")
        kind, text = token
        self.position += 1
        if kind == "string":
            return ("string", re.sub(r"\\(.)", r"\1", text[1:-1]))
        if kind in ("datetime", "date", "number"):
            return (kind, text)
        if kind == "ident" and text.lower() in ("true", "false"):
            return ("boolean", text.lower() == "true")
        if kind == "ident" and text.lower() == "null":
            return ("null", None)
        raise ApiError(400, "MALFORMED_QUERY", f"unexpected token: '{text}'")


def parse_soql(soql: str) -> SoqlQuery:
    return _Parser(soql).parse()


# ---------------------------------------------------------------------------------------------------------------
# The org: records, tokens, query cursors, webhooks
# ---------------------------------------------------------------------------------------------------------------


class SalesforceOrg:
    """All mutable state of one sandbox org, guarded by one lock (the WSGI server is threaded)."""

    def __init__(self, firm: Any = None):
        self.firm = firm
        self.lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.records: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in SCHEMA}
            self.counters = {name: 0 for name in [*SCHEMA, "locator", "event"]}
            self.tokens: set[str] = set()
            self.cursors: dict[str, tuple[str, list[dict[str, Any]], int]] = {}  # locator -> (object, rows, batch)
            self.api_usage = 0
            self.webhook_urls: list[str] = []
            self.deliveries: list[dict[str, Any]] = []
            self._seed()

    # -- seeding ---------------------------------------------------------------------------------------------

    def _seed(self) -> None:
        firm = self.firm
        if firm is None:
            return
        account_ids: dict[int, str] = {}
        for index, customer in enumerate(firm.crm_companies()):
            address = customer.get("billing_address") or {}
            values = {
                "Name": customer["name"],
                "Type": "Customer - Direct",
                "Website": f"https://www.{customer['domain']}" if customer.get("domain") else None,
                "Phone": customer.get("phone"),
                "Industry": "Consulting",
                "BillingStreet": address.get("street"),
                "BillingCity": address.get("city"),
                "BillingState": address.get("region") or None,
                "BillingPostalCode": address.get("postal_code"),
                "BillingCountry": address.get("country"),
                "CurrencyIsoCode": customer.get("currency") if customer.get("currency") in CURRENCIES else "USD",
                "Payment_Terms__c": customer.get("payment_terms"),
            }
            account_ids[customer["id"]] = self._insert("Account", values, SEED_EPOCH + timedelta(hours=index))["Id"]
        offset = len(account_ids)
        for index, deal in enumerate(firm.deals()):
            values = {
                "Name": deal["name"][:120],
                "AccountId": account_ids.get(firm.crm_company_of(deal)),
                "Amount": float(deal["amount"]) if deal.get("amount") is not None else None,
                "CurrencyIsoCode": deal.get("currency") if deal.get("currency") in CURRENCIES else "USD",
                "StageName": FIRM_STAGES.get(deal.get("stage"), "Prospecting"),
                "CloseDate": deal.get("close_date"),
                "Type": "New Business",
                "Description": f"Billing terms: {deal['billing_terms']}" if deal.get("billing_terms") else None,
                "Billing_Terms__c": deal.get("billing_terms"),
                "Project_Code__c": deal.get("project_code"),
            }
            self._insert("Opportunity", values, SEED_EPOCH + timedelta(hours=offset + index))

    def seed_more(self, object_name: str, count: int) -> int:
        """Add `count` synthetic records (for volume and paging tests); returns the new total."""
        with self.lock:
            existing = len(self.records[object_name])
            accounts = list(self.records["Account"])
            for i in range(count):
                moment = SEED_EPOCH + timedelta(days=400, minutes=existing + i)
                if object_name == "Account":
                    values = {"Name": f"Volume Account {existing + i:06d}", "CurrencyIsoCode": "USD"}
                else:
                    values = {
                        "Name": f"Volume Opportunity {existing + i:06d}",
                        "AccountId": accounts[i % len(accounts)] if accounts else None,
                        "Amount": float(1000 + (i % 50) * 250),
                        "CurrencyIsoCode": "USD",
                        "StageName": "Prospecting",
                        "CloseDate": (SEED_EPOCH.date() + timedelta(days=30 + i % 300)).isoformat(),
                    }
                self._insert(object_name, values, moment)
            return len(self.records[object_name])

    def _next_id(self, object_name: str) -> str:
        self.counters[object_name] += 1
        return salesforce_id(KEY_PREFIXES[object_name], self.counters[object_name])

    def _insert(self, object_name: str, values: dict[str, Any], moment: datetime) -> dict[str, Any]:
        record = {name: None for name in SCHEMA[object_name]}
        record.update({k: v for k, v in values.items() if k in record})
        stamp = sf_datetime(moment)
        record.update(
            Id=self._next_id(object_name),
            IsDeleted=False,
            CreatedDate=stamp,
            LastModifiedDate=stamp,
            SystemModstamp=stamp,
        )
        if object_name == "Opportunity":
            _derive_stage_fields(record, probability_given="Probability" in values)
        self.records[object_name][record["Id"]] = record
        return record

    # -- auth ------------------------------------------------------------------------------------------------

    def issue_token(self) -> str:
        token = f"{ORG_ID[:15]}!AQ{secrets.token_urlsafe(48)}"
        with self.lock:
            self.tokens.add(token)
        return token

    def token_valid(self, token: str) -> bool:
        with self.lock:
            return token in self.tokens

    # -- queries ---------------------------------------------------------------------------------------------

    def run_query(self, soql: str, *, include_deleted: bool, batch_size: int, version: str) -> dict[str, Any]:
        query = parse_soql(soql)
        if query.object_name not in SCHEMA:
            raise ApiError(
                400,
                "INVALID_TYPE",
                f"sObject type '{query.object_name}' is not supported. If you are attempting to use a custom "
                "object, be sure to append the '__c' after the entity name.",
            )
        for name in [*query.fields, *(name for name, _ in query.order_by)]:
            self._field_type(query.object_name, name)
        with self.lock:
            rows = [
                r
                for r in self.records[query.object_name].values()
                if (include_deleted or not r["IsDeleted"]) and self._matches(query.object_name, r, query.where)
            ]
            for name, descending in reversed(query.order_by):
                field = self._field_type(query.object_name, name)
                rows.sort(
                    key=lambda r, n=name, f=field: _sort_key(self._value(query.object_name, r, n), f),
                    reverse=descending,
                )
            rows = rows[query.offset :]
            if query.limit is not None:
                rows = rows[: query.limit]
            if query.count_only:
                return {"totalSize": len(rows), "done": True, "records": []}
            rendered = [self._render(query.object_name, r, query.fields, version) for r in rows]
            page = rendered[:batch_size]
            result: dict[str, Any] = {"totalSize": len(rendered), "done": len(rendered) <= batch_size, "records": page}
            if not result["done"]:
                self.counters["locator"] += 1
                locator = salesforce_id("01g", self.counters["locator"])
                self.cursors[locator] = (query.object_name, rendered, batch_size)
                result["nextRecordsUrl"] = f"/services/data/v{version}/query/{locator}-{batch_size}"
        return result

    def query_more(self, locator_and_offset: str, version: str) -> dict[str, Any]:
        locator, _, offset_text = locator_and_offset.rpartition("-")
        with self.lock:
            cursor = self.cursors.get(locator)
        if cursor is None or not offset_text.isdigit():
            raise ApiError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        _object_name, rendered, batch = cursor
        offset = int(offset_text)
        page = rendered[offset : offset + batch]
        result: dict[str, Any] = {"totalSize": len(rendered), "done": offset + batch >= len(rendered), "records": page}
        if result["done"]:
            with self.lock:
                self.cursors.pop(locator, None)
        else:
            result["nextRecordsUrl"] = f"/services/data/v{version}/query/{locator}-{offset + batch}"
        return result

    def _field_type(self, object_name: str, path: str) -> Field:
        schema = SCHEMA[object_name]
        if "." in path:
            relationship, _, rest = path.partition(".")
            for field in schema.values():
                if field.relationship and field.relationship.lower() == relationship.lower():
                    return self._field_type(field.reference_to or "", rest)
            raise ApiError(
                400,
                "INVALID_FIELD",
                f"Didn't understand relationship '{relationship}' in field path. If you are attempting to use a "
                "custom relationship, be sure to append the '__r' after the custom relationship name.",
            )
        for name, field in schema.items():
            if name.lower() == path.lower():
                return field
        raise ApiError(
            400,
            "INVALID_FIELD",
            f"No such column '{path}' on entity '{object_name}'. If you are attempting to use a custom field, be "
            "sure to append the '__c' after the custom field name.",
        )

    def _value(self, object_name: str, record: dict[str, Any], path: str) -> Any:
        if "." in path:
            relationship, _, rest = path.partition(".")
            for field in SCHEMA[object_name].values():
                if field.relationship and field.relationship.lower() == relationship.lower():
                    parent = self.records[field.reference_to or ""].get(record.get(field.name) or "")
                    return self._value(field.reference_to or "", parent, rest) if parent else None
            return None
        field = self._field_type(object_name, path)
        return record.get(field.name)

    def _matches(self, object_name: str, record: dict[str, Any], node: Any) -> bool:
        if node is None:
            return True
        kind = node[0]
        if kind == "and":
            return all(self._matches(object_name, record, n) for n in node[1])
        if kind == "or":
            return any(self._matches(object_name, record, n) for n in node[1])
        if kind == "not":
            return not self._matches(object_name, record, node[1])
        field = self._field_type(object_name, node[1])
        actual = _comparable(field, self._value(object_name, record, node[1]))
        if kind == "like":
            pattern = "^" + re.escape(str(node[2][1])).replace("%", ".*").replace("_", ".") + "$"
            return actual is not None and re.match(pattern, str(actual), re.IGNORECASE | re.DOTALL) is not None
        if kind == "in":
            values = [_literal(field, v) for v in node[2]]
            return (actual in values) != node[3]
        operator, expected = node[2], _literal(field, node[3])
        if operator == "=":
            return actual == expected
        if operator == "!=":
            return actual != expected
        if actual is None or expected is None:
            return False
        return {
            "<": actual < expected,
            "<=": actual <= expected,
            ">": actual > expected,
            ">=": actual >= expected,
        }[operator]

    def _render(self, object_name: str, record: dict[str, Any], fields: list[str], version: str) -> dict[str, Any]:
        row: dict[str, Any] = {"attributes": _attributes(object_name, record["Id"], version)}
        for path in fields:
            if "." not in path:
                row[self._field_type(object_name, path).name] = record.get(self._field_type(object_name, path).name)
                continue
            relationship, _, rest = path.partition(".")
            lookup = next(
                f for f in SCHEMA[object_name].values() if (f.relationship or "").lower() == relationship.lower()
            )
            parent = self.records[lookup.reference_to or ""].get(record.get(lookup.name) or "")
            if parent is None:
                row[lookup.relationship or relationship] = None
                continue
            nested = row.get(lookup.relationship) or {
                "attributes": _attributes(lookup.reference_to or "", parent["Id"], version)
            }
            nested.update(self._render(lookup.reference_to or "", parent, [rest], version))
            nested["attributes"] = _attributes(lookup.reference_to or "", parent["Id"], version)
            row[lookup.relationship or relationship] = nested
        return row

    # -- writes ----------------------------------------------------------------------------------------------

    def save_many(
        self,
        items: list[tuple[str, dict[str, Any], str]],
        *,
        all_or_none: bool,
        version: str,
    ) -> list[dict[str, Any]]:
        """Apply (object, values, action) items in order; action is create, update:<id> or upsert:<field>.

        Returns one SaveResult per item. Whole-request problems (unknown field, unparseable value) raise ApiError.
        """
        del version
        with self.lock:
            for object_name, values, _action in items:
                self._check_parseable(object_name, values)
            plans: list[tuple[str, dict[str, Any], dict[str, Any] | None, bool] | dict[str, Any]] = []
            seen_external: dict[tuple[str, str], int] = {}
            for index, (object_name, values, action) in enumerate(items):
                plan = self._plan(object_name, values, action)
                if isinstance(plan, tuple) and action.startswith("upsert:"):
                    key = (object_name, str(values.get(action.split(":", 1)[1])))
                    if key in seen_external:
                        duplicate = _record_error("DUPLICATE_VALUE", f"Duplicate external id specified: {key[1]}")
                        plan = {"success": False, "errors": [duplicate]}
                        first = seen_external[key]
                        if isinstance(plans[first], tuple):
                            plans[first] = {"success": False, "errors": [duplicate]}
                    seen_external[key] = index
                plans.append(plan)
            failed = any(isinstance(p, dict) for p in plans)
            if all_or_none and failed:
                rolled_back = _record_error(
                    "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                    "Record rolled back because not all records were valid and the request was using AllOrNone header",
                )
                return [p if isinstance(p, dict) else {"success": False, "errors": [rolled_back]} for p in plans]
            results = []
            for plan in plans:
                if isinstance(plan, dict):
                    results.append(plan)
                    continue
                object_name, changes, existing, upsert = plan
                record = self._apply(object_name, changes, existing)
                result: dict[str, Any] = {"id": record["Id"], "success": True, "errors": []}
                if upsert:
                    result["created"] = existing is None
                results.append(result)
            return results

    def _check_parseable(self, object_name: str, values: dict[str, Any]) -> None:
        """What Salesforce refuses while deserialising the request: unknown fields and values of the wrong type."""
        schema = SCHEMA[object_name]
        for name, value in values.items():
            if name in ("attributes", "id"):
                continue
            field = schema.get(name)
            if field is None:
                raise ApiError(400, "INVALID_FIELD", f"No such column '{name}' on sobject of type {object_name}")
            if value is None:
                continue
            problem = None
            if field.type in _NUMBER_TYPES and (isinstance(value, bool) or not _is_number(value)):
                problem = "double"
            elif field.type == "boolean" and not isinstance(value, bool):
                problem = "boolean"
            elif field.type == "date" and not _is_date(value):
                problem = "date"
            elif field.type == "datetime" and parse_salesforce_datetime(value) is None:
                problem = "datetime"
            elif field.type in _STRING_TYPES and not isinstance(value, str | int | float):
                problem = "string"
            if problem:
                raise ApiError(
                    400,
                    "JSON_PARSER_ERROR",
                    f"Cannot deserialize instance of {problem} from VALUE_STRING value {value} or request may be "
                    f"missing a required field at [line:1, column:1]",
                    [name],
                )

    def _plan(self, object_name: str, values: dict[str, Any], action: str):
        """Validate one record; return (object, changes, existing, is_upsert) or a failed SaveResult dict."""
        schema = SCHEMA[object_name]
        changes = {k: v for k, v in values.items() if k not in ("attributes", "id", "Id")}
        existing = None
        upsert = action.startswith("upsert:")
        if action.startswith("update:"):
            record_id = action.split(":", 1)[1]
            existing = self._find_by_id(object_name, record_id)
            if existing is None:
                code = (
                    "MALFORMED_ID"
                    if not re.match(r"^[a-zA-Z0-9]{15}([a-zA-Z0-9]{3})?$", record_id)
                    else "ENTITY_IS_DELETED"
                )
                return {"success": False, "errors": [_record_error(code, f"invalid record id: {record_id}", ["Id"])]}
        elif upsert:
            external_field = action.split(":", 1)[1]
            value = changes.get(external_field)
            if value in (None, ""):
                error = _record_error("REQUIRED_FIELD_MISSING", f"Required fields are missing: [{external_field}]")
                return {"success": False, "errors": [error]}
            matches = [
                r
                for r in self.records[object_name].values()
                if not r["IsDeleted"] and str(r.get(external_field) or "").lower() == str(value).lower()
            ]
            if len(matches) > 1:
                error = _record_error("DUPLICATE_EXTERNAL_ID", f"{external_field}: more than one record found")
                return {"success": False, "errors": [error]}
            existing = matches[0] if matches else None

        errors = []
        inserting = existing is None
        for name, value in changes.items():
            field = schema[name]
            if (inserting and not field.createable) or (not inserting and not field.updateable):
                errors.append(
                    _record_error(
                        "INVALID_FIELD_FOR_INSERT_UPDATE",
                        f"Unable to create/update fields: {name}. Please check the security settings of this "
                        "field and verify that it is read/write for your profile or permission set.",
                        [name],
                    )
                )
                continue
            if value is None:
                continue
            if field.type in _STRING_TYPES and field.length and len(str(value)) > field.length:
                errors.append(
                    _record_error(
                        "STRING_TOO_LONG",
                        f"{field.label}: data value too large: {str(value)[:40]} (max length={field.length})",
                        [name],
                    )
                )
            if field.type == "picklist" and field.restricted and value not in field.picklist:
                errors.append(
                    _record_error(
                        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                        f"{field.label}: bad value for restricted picklist field: {value}",
                        [name],
                    )
                )
            if field.type == "reference":
                if not re.match(r"^[a-zA-Z0-9]{15}([a-zA-Z0-9]{3})?$", str(value)):
                    errors.append(
                        _record_error("MALFORMED_ID", f"{field.label}: id value of incorrect type: {value}", [name])
                    )
                elif self._find_by_id(field.reference_to or "", str(value)) is None:
                    errors.append(
                        _record_error("INVALID_CROSS_REFERENCE_KEY", f"invalid cross reference id: {value}", [name])
                    )
            if field.external_id:
                clash = next(
                    (
                        r
                        for r in self.records[object_name].values()
                        if r is not existing and str(r.get(name) or "").lower() == str(value).lower()
                    ),
                    None,
                )
                if clash is not None:
                    errors.append(
                        _record_error(
                            "DUPLICATE_VALUE",
                            f"duplicate value found: {name} duplicates value on record with id: {clash['Id']}",
                            [name],
                        )
                    )
        merged = {**(existing or {}), **changes}
        missing = [
            f.name
            for f in schema.values()
            if f.required and (merged.get(f.name) in (None, "")) and (inserting or f.name in changes)
        ]
        if missing:
            errors.append(
                _record_error("REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(missing)}]", missing)
            )
        if errors:
            return {"success": False, "errors": errors}
        return (object_name, changes, existing, upsert)

    def _find_by_id(self, object_name: str, record_id: str) -> dict[str, Any] | None:
        records = self.records.get(object_name, {})
        if len(record_id) == 15:
            record_id = next((i for i in records if i[:15] == record_id), record_id)
        record = records.get(record_id)
        return record if record and not record["IsDeleted"] else None

    def _apply(self, object_name: str, changes: dict[str, Any], existing: dict[str, Any] | None) -> dict[str, Any]:
        clean = {k: _stored(SCHEMA[object_name][k], v) for k, v in changes.items()}
        if existing is None:
            record = self._insert(object_name, clean, _now())
            was_won = False
        else:
            was_won = bool(existing.get("IsWon"))
            existing.update(clean)
            stamp = sf_datetime(_now())
            existing.update(LastModifiedDate=stamp, SystemModstamp=stamp)
            if object_name == "Opportunity":
                _derive_stage_fields(existing, probability_given="Probability" in changes)
            record = existing
        if object_name == "Opportunity" and record.get("StageName") == CLOSED_WON_STAGE and not was_won:
            self._emit_closed_won(record)
        return record

    def delete(self, object_name: str, record_id: str) -> bool:
        with self.lock:
            record = self._find_by_id(object_name, record_id)
            if record is None:
                return False
            stamp = sf_datetime(_now())
            record.update(IsDeleted=True, SystemModstamp=stamp, LastModifiedDate=stamp)
            return True

    # -- webhooks --------------------------------------------------------------------------------------------

    def _emit_closed_won(self, opportunity: dict[str, Any]) -> None:
        self.counters["event"] += 1
        event = {
            "schema": WEBHOOK_EVENT_SCHEMA,
            "event": {"replayId": self.counters["event"], "EventUuid": secrets.token_hex(16)},
            "payload": {
                "CreatedDate": sf_datetime(_now()),
                "CreatedById": USER_ID,
                "OpportunityId__c": opportunity["Id"],
                "AccountId__c": opportunity.get("AccountId"),
                "Name__c": opportunity.get("Name"),
                "Amount__c": opportunity.get("Amount"),
                "CurrencyIsoCode__c": opportunity.get("CurrencyIsoCode"),
                "CloseDate__c": opportunity.get("CloseDate"),
                "StageName__c": opportunity.get("StageName"),
                "External_Id__c": opportunity.get(DEFAULT_EXTERNAL_ID_FIELD),
            },
        }
        body = json.dumps(event, separators=(",", ":")).encode()
        signature = base64.b64encode(hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha256).digest()).decode()
        headers = {"Content-Type": "application/json", WEBHOOK_SIGNATURE_HEADER: signature}
        for url in list(self.webhook_urls):
            delivery = {"url": url, "method": "POST", "headers": headers, "body": body.decode(), "status": None}
            self.deliveries.append(delivery)
            threading.Thread(target=_deliver, args=(delivery, body), daemon=True).start()


def _deliver(delivery: dict[str, Any], body: bytes) -> None:
    """POST one webhook (from a thread, so the API call that caused it is not held up)."""
    import requests

    for attempt in range(3):
        try:
            response = requests.post(delivery["url"], data=body, headers=delivery["headers"], timeout=5)
            delivery["status"] = response.status_code
            if response.status_code < 500:
                return
        except requests.RequestException as exc:
            delivery["status"] = f"error: {type(exc).__name__}"
        time.sleep(0.2 * (attempt + 1))


# ---------------------------------------------------------------------------------------------------------------
# Value helpers
# ---------------------------------------------------------------------------------------------------------------


def _derive_stage_fields(record: dict[str, Any], *, probability_given: bool) -> None:
    stage = record.get("StageName")
    record["IsClosed"] = stage in ("Closed Won", "Closed Lost")
    record["IsWon"] = stage == "Closed Won"
    if not probability_given and stage in STAGES:
        record["Probability"] = float(STAGES[stage])


def _attributes(object_name: str, record_id: str, version: str) -> dict[str, str]:
    return {"type": object_name, "url": f"/services/data/v{version}/sobjects/{object_name}/{record_id}"}


def _is_number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def _is_date(value: Any) -> bool:
    try:
        date.fromisoformat(str(value))
    except ValueError:
        return False
    return len(str(value)) == 10


def _stored(field: Field, value: Any) -> Any:
    if value is None:
        return None
    if field.type in _NUMBER_TYPES:
        return float(value)
    if field.type == "datetime":
        return sf_datetime(parse_salesforce_datetime(value))
    if field.type in _STRING_TYPES:
        return str(value)
    return value


def _comparable(field: Field, value: Any) -> Any:
    if value is None:
        return None
    if field.type == "datetime":
        return parse_salesforce_datetime(value)
    if field.type in _NUMBER_TYPES:
        return float(value)
    if field.type in _STRING_TYPES:
        return str(value).lower()
    return value


def _literal(field: Field, literal: tuple[str, Any]) -> Any:
    kind, text = literal
    if kind == "null":
        return None
    expected = {
        "datetime": "datetime",
        "date": "date",
        "currency": "number",
        "percent": "number",
        "boolean": "boolean",
    }.get(field.type, "string")
    if kind != expected:
        raise ApiError(
            400,
            "INVALID_QUERY_FILTER_OPERATOR",
            f"value of filter criterion for field '{field.name}' must be of type {field.type} and should "
            + ("not be enclosed in quotes" if kind == "string" else "be enclosed in quotes"),
        )
    if kind == "datetime":
        return parse_salesforce_datetime(text)
    if kind == "number":
        return float(text)
    if kind == "string":
        return text.lower()
    return text


def _sort_key(value: Any, field: Field) -> tuple[bool, Any]:
    if isinstance(value, str) and field.type not in ("id", "reference"):
        value = value.lower()
    return (value is not None, value if value is not None else 0)


# ---------------------------------------------------------------------------------------------------------------
# The WSGI app
# ---------------------------------------------------------------------------------------------------------------


def _rule(path: str, endpoint: str, methods: list[str]) -> Rule:
    # simple-salesforce calls `query/` and `sobjects/Opportunity/` with a trailing slash; Salesforce accepts both.
    return Rule(path, endpoint=endpoint, methods=methods, strict_slashes=False)


class SalesforceSandbox(SandboxApp):
    vendor = "salesforce"

    def routes(self) -> list[Rule]:
        api = "/services/data/v<version>"
        return [
            _rule("/services/oauth2/token", "token", ["POST"]),
            _rule("/services/data", "versions", ["GET"]),
            _rule(f"{api}", "resources", ["GET"]),
            _rule(f"{api}/limits", "limits", ["GET"]),
            _rule(f"{api}/sobjects", "global_describe", ["GET"]),
            _rule(f"{api}/sobjects/<object_name>", "sobject", ["GET", "POST"]),
            _rule(f"{api}/sobjects/<object_name>/describe", "describe", ["GET"]),
            _rule(f"{api}/sobjects/<object_name>/<record_id>", "record", ["GET", "PATCH", "DELETE"]),
            _rule(f"{api}/sobjects/<object_name>/<field_name>/<path:value>", "upsert_one", ["GET", "PATCH"]),
            _rule(f"{api}/query", "query", ["GET"]),
            _rule(f"{api}/queryAll", "query_all", ["GET"]),
            _rule(f"{api}/query/<locator>", "query_more", ["GET"]),
            _rule(f"{api}/queryAll/<locator>", "query_more", ["GET"]),
            _rule(f"{api}/composite/sobjects", "collections", ["POST", "PATCH"]),
            _rule(f"{api}/composite/sobjects/<object_name>/<field_name>", "collections_upsert", ["PATCH"]),
        ]

    def reset_state(self) -> None:
        self.org = SalesforceOrg(self.firm)

    def seed(self, volumes: dict[str, int]) -> dict[str, int]:
        names = {
            "accounts": "Account",
            "account": "Account",
            "opportunities": "Opportunity",
            "opportunity": "Opportunity",
        }
        counts = {}
        for key, count in volumes.items():
            object_name = names.get(key.lower()) or (key if key in SCHEMA else None)
            if object_name is None:
                raise ValueError(f"the salesforce sandbox seeds accounts and opportunities, not {key!r}")
            counts[key] = self.org.seed_more(object_name, count)
        return counts

    # -- how Salesforce says "no" --------------------------------------------------------------------------------

    def rate_limited_response(self, request: Request, retry_after: float) -> Response:
        # Salesforce never answers 429: an exhausted API allowance is 403 REQUEST_LIMIT_EXCEEDED, no Retry-After.
        return self._error(ApiError(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."))

    def server_error_response(self, request: Request) -> Response:
        error = ApiError(
            500,
            "UNKNOWN_EXCEPTION",
            "An unexpected error occurred. Please include this ErrorId if you contact support: 1730522944-4211 "
            "(-1283416584)",
        )
        return self._error(error)

    def not_found_response(self, request: Request) -> Response:
        return self._error(ApiError(404, "NOT_FOUND", "The requested resource does not exist"))

    def method_not_allowed_response(self, request: Request) -> Response:
        return self._error(
            ApiError(405, "METHOD_NOT_ALLOWED", f"HTTP Method '{request.method}' not allowed. Allowed are GET,PATCH")
        )

    def _error(self, error: ApiError) -> Response:
        return json_response(error.body(), status=error.status, headers=self._limit_headers())

    def _limit_headers(self) -> dict[str, str]:
        return {"Sforce-Limit-Info": f"api-usage={self.org.api_usage}/{DAILY_API_LIMIT}"}

    def _json(self, data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        return json_response(data, status=status, headers={**self._limit_headers(), **(headers or {})})

    def _authorize(self, request: Request, version: str | None = None) -> Response | None:
        """Check the version and the Bearer session, and count the call against the daily allowance."""
        if version is not None and version not in SUPPORTED_VERSIONS:
            return self.not_found_response(request)
        header = request.headers.get("Authorization", "")
        token = header[7:].strip() if header[:7].lower() == "bearer " else ""
        if not token or not self.org.token_valid(token):
            return self._error(ApiError(401, "INVALID_SESSION_ID", "Session expired or invalid"))
        with self.org.lock:
            self.org.api_usage += 1
            if self.org.api_usage > DAILY_API_LIMIT:
                return self._error(ApiError(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."))
        return None

    # -- OAuth ----------------------------------------------------------------------------------------------------

    def token(self, request: Request) -> Response:
        form = request.form
        client_id, client_secret = form.get("client_id", ""), form.get("client_secret", "")
        if request.authorization and request.authorization.type == "basic":  # client credentials in the header
            client_id = request.authorization.username or client_id
            client_secret = request.authorization.password or client_secret
        grant = form.get("grant_type", "")

        def refuse(error: str, description: str) -> Response:
            return json_response({"error": error, "error_description": description}, status=400)

        if grant not in ("password", "client_credentials"):
            return refuse("unsupported_grant_type", "grant type not supported")
        if not hmac.compare_digest(client_id, DEMO_CREDENTIALS["client_id"]):
            return refuse("invalid_client_id", "client identifier invalid")
        if not hmac.compare_digest(client_secret, DEMO_CREDENTIALS["client_secret"]):
            return refuse("invalid_client", "invalid client credentials")
        if grant == "password" and not (
            hmac.compare_digest(form.get("username", ""), DEMO_CREDENTIALS["username"])
            and hmac.compare_digest(form.get("password", ""), DEMO_CREDENTIALS["password"])
        ):
            return refuse("invalid_grant", "authentication failure")
        issued_at = str(int(time.time() * 1000))
        identity = f"https://login.salesforce.com/id/{ORG_ID}/{USER_ID}"
        signature = base64.b64encode(
            hmac.new(client_secret.encode(), (identity + issued_at).encode(), hashlib.sha256).digest()
        ).decode()
        body = {
            "access_token": self.org.issue_token(),
            "instance_url": request.host_url.rstrip("/"),
            "id": identity,
            "token_type": "Bearer",
            "issued_at": issued_at,
            "signature": signature,
        }
        if grant == "client_credentials":
            body["scope"] = "api"
        return json_response(body)

    # -- discovery ---------------------------------------------------------------------------------------------

    def versions(self, request: Request) -> Response:
        return json_response(
            [{"label": f"Release {v}", "url": f"/services/data/v{v}", "version": v} for v in SUPPORTED_VERSIONS]
        )

    def resources(self, request: Request, version: str) -> Response:
        if denied := self._authorize(request, version):
            return denied
        names = ("limits", "query", "queryAll", "sobjects", "composite")
        return self._json({name: f"/services/data/v{version}/{name}" for name in names})

    def limits(self, request: Request, version: str) -> Response:
        if denied := self._authorize(request, version):
            return denied
        return self._json(
            {"DailyApiRequests": {"Max": DAILY_API_LIMIT, "Remaining": max(0, DAILY_API_LIMIT - self.org.api_usage)}}
        )

    def global_describe(self, request: Request, version: str) -> Response:
        if denied := self._authorize(request, version):
            return denied
        return self._json(
            {
                "encoding": "UTF-8",
                "maxBatchSize": 200,
                "sobjects": [_sobject_summary(name, version) for name in SCHEMA],
            }
        )

    def describe(self, request: Request, version: str, object_name: str) -> Response:
        if denied := self._authorize(request, version):
            return denied
        if object_name not in SCHEMA:
            return self._error(ApiError(404, "NOT_FOUND", "The requested resource does not exist"))
        summary = _sobject_summary(object_name, version)
        summary["fields"] = [field.describe() for field in SCHEMA[object_name].values()]
        return self._json(summary)

    # -- records ------------------------------------------------------------------------------------------------

    def sobject(self, request: Request, version: str, object_name: str) -> Response:
        if denied := self._authorize(request, version):
            return denied
        if object_name not in SCHEMA:
            return self._error(ApiError(404, "NOT_FOUND", "The requested resource does not exist"))
        if request.method == "GET":
            return self._json({"objectDescribe": _sobject_summary(object_name, version), "recentItems": []})
        values = request.get_json(force=True, silent=True)
        if not isinstance(values, dict):
            return self._error(ApiError(400, "JSON_PARSER_ERROR", "The request body is not a JSON object."))
        try:
            result = self.org.save_many([(object_name, values, "create")], all_or_none=True, version=version)[0]
        except ApiError as error:
            return self._error(error)
        if not result["success"]:
            return self._json(_as_api_errors(result), status=400)
        return self._json(result, status=201)

    def record(self, request: Request, version: str, object_name: str, record_id: str) -> Response:
        if denied := self._authorize(request, version):
            return denied
        if object_name not in SCHEMA:
            return self.not_found_response(request)
        if request.method == "DELETE":
            return Response(status=204) if self.org.delete(object_name, record_id) else self.not_found_response(request)
        if request.method == "PATCH":
            values = request.get_json(force=True, silent=True)
            if not isinstance(values, dict):
                return self._error(ApiError(400, "JSON_PARSER_ERROR", "The request body is not a JSON object."))
            try:
                action = f"update:{record_id}"
                result = self.org.save_many([(object_name, values, action)], all_or_none=True, version=version)[0]
            except ApiError as error:
                return self._error(error)
            if not result["success"]:
                status = 404 if result["errors"][0]["statusCode"] in ("MALFORMED_ID", "ENTITY_IS_DELETED") else 400
                return self._json(_as_api_errors(result), status=status)
            return Response(status=204, headers=self._limit_headers())
        with self.org.lock:
            found = self.org._find_by_id(object_name, record_id)
            if found is None:
                return self.not_found_response(request)
            row = self.org._render(object_name, found, list(SCHEMA[object_name]), version)
        return self._json(row)

    def upsert_one(self, request: Request, version: str, object_name: str, field_name: str, value: str) -> Response:
        if denied := self._authorize(request, version):
            return denied
        field = SCHEMA.get(object_name, {}).get(field_name)
        if field is None or not (field.external_id or field.type == "id"):
            return self.not_found_response(request)
        with self.org.lock:
            matches = [
                r
                for r in self.org.records[object_name].values()
                if not r["IsDeleted"] and str(r.get(field_name) or "").lower() == value.lower()
            ]
            if len(matches) > 1:
                urls = [f"/services/data/v{version}/sobjects/{object_name}/{r['Id']}" for r in matches]
                return self._json(urls, status=300)
            if request.method == "GET":
                if not matches:
                    return self.not_found_response(request)
                return self._json(self.org._render(object_name, matches[0], list(SCHEMA[object_name]), version))
        values = request.get_json(force=True, silent=True)
        if not isinstance(values, dict):
            return self._error(ApiError(400, "JSON_PARSER_ERROR", "The request body is not a JSON object."))
        values = {**values, field_name: value}
        try:
            action = f"upsert:{field_name}"
            result = self.org.save_many([(object_name, values, action)], all_or_none=True, version=version)[0]
        except ApiError as error:
            return self._error(error)
        if not result["success"]:
            return self._json(_as_api_errors(result), status=400)
        return self._json(result, status=201 if result["created"] else 200)

    # -- SOQL -------------------------------------------------------------------------------------------------------

    def query(self, request: Request, version: str) -> Response:
        return self._query(request, version, include_deleted=False)

    def query_all(self, request: Request, version: str) -> Response:
        return self._query(request, version, include_deleted=True)

    def _query(self, request: Request, version: str, *, include_deleted: bool) -> Response:
        if denied := self._authorize(request, version):
            return denied
        soql = request.args.get("q", "")
        if not soql.strip():
            return self._error(ApiError(400, "MALFORMED_QUERY", "A query string has to be specified"))
        try:
            result = self.org.run_query(
                soql, include_deleted=include_deleted, batch_size=_batch_size(request), version=version
            )
        except ApiError as error:
            return self._error(error)
        return self._json(self._maybe_malformed(result))

    def query_more(self, request: Request, version: str, locator: str) -> Response:
        if denied := self._authorize(request, version):
            return denied
        try:
            result = self.org.query_more(locator, version)
        except ApiError as error:
            return self._error(error)
        return self._json(self._maybe_malformed(result))

    def _maybe_malformed(self, result: dict[str, Any]) -> dict[str, Any]:
        """Fault injection: serve some records of the page without an Id or with a non-date modstamp."""
        positions = self.malformed_positions(len(result["records"]))
        if not positions:
            return result
        records = list(result["records"])
        for n, position in enumerate(sorted(positions)):
            broken = dict(records[position])
            if n % 2 == 0 or "SystemModstamp" not in broken:
                broken.pop("Id", None)
                broken["attributes"] = {"type": broken.get("attributes", {}).get("type")}
            else:
                broken["SystemModstamp"] = "last Tuesday"
            records[position] = broken
        return {**result, "records": records}

    # -- sObject Collections ---------------------------------------------------------------------------------------

    def collections(self, request: Request, version: str) -> Response:
        if denied := self._authorize(request, version):
            return denied
        body = request.get_json(force=True, silent=True)
        try:
            records, all_or_none = _collection_body(body)
            items = []
            for record in records:
                object_name = (record.get("attributes") or {}).get("type")
                if object_name not in SCHEMA:
                    raise ApiError(400, "INVALID_TYPE", f"sObject type '{object_name}' is not supported.")
                if request.method == "POST":
                    if record.get("id") or record.get("Id"):
                        raise ApiError(400, "INVALID_FIELD", "Can't specify id in an insert call")
                    items.append((object_name, record, "create"))
                else:
                    record_id = record.get("id") or record.get("Id")
                    if not record_id:
                        raise ApiError(400, "MISSING_ARGUMENT", "Id not specified in an update call")
                    items.append((object_name, record, f"update:{record_id}"))
            return self._json(self.org.save_many(items, all_or_none=all_or_none, version=version))
        except ApiError as error:
            return self._error(error)

    def collections_upsert(self, request: Request, version: str, object_name: str, field_name: str) -> Response:
        if denied := self._authorize(request, version):
            return denied
        field = SCHEMA.get(object_name, {}).get(field_name)
        if object_name not in SCHEMA:
            return self._error(ApiError(400, "INVALID_TYPE", f"sObject type '{object_name}' is not supported."))
        if field is None or not field.external_id:
            return self._error(
                ApiError(
                    400,
                    "INVALID_FIELD",
                    f"Field name provided, {field_name} is not an External ID or indexed field for {object_name}",
                )
            )
        body = request.get_json(force=True, silent=True)
        try:
            records, all_or_none = _collection_body(body)
            for record in records:
                if (record.get("attributes") or {}).get("type") != object_name:
                    raise ApiError(400, "INVALID_TYPE", f"All records must be of type {object_name}")
            items = [(object_name, record, f"upsert:{field_name}") for record in records]
            return self._json(self.org.save_many(items, all_or_none=all_or_none, version=version))
        except ApiError as error:
            return self._error(error)

    # -- webhook subscriptions (a control endpoint: not counted as vendor calls, never faulted) --------------------

    def _control(self, request: Request) -> Response:
        if request.path.rstrip("/") != "/_sandbox/webhooks":
            return super()._control(request)
        if request.method == "POST":
            url = (request.get_json(force=True, silent=True) or {}).get("url", "")
            if not _is_loopback_url(url):
                return json_response({"error": "webhooks are delivered to loopback URLs only"}, status=400)
            with self.org.lock:
                self.org.webhook_urls.append(url)
        elif request.method == "DELETE":
            with self.org.lock:
                self.org.webhook_urls.clear()
                self.org.deliveries.clear()
        with self.org.lock:
            return json_response(
                {"subscriptions": list(self.org.webhook_urls), "deliveries": list(self.org.deliveries)}
            )


def _sobject_summary(object_name: str, version: str) -> dict[str, Any]:
    base = f"/services/data/v{version}/sobjects/{object_name}"
    return {
        "name": object_name,
        "label": object_name,
        "keyPrefix": KEY_PREFIXES[object_name],
        "createable": True,
        "updateable": True,
        "queryable": True,
        "custom": False,
        "urls": {"sobject": base, "describe": f"{base}/describe", "rowTemplate": f"{base}/{{ID}}"},
    }


def _as_api_errors(result: dict[str, Any]) -> list[dict[str, Any]]:
    """A failed SaveResult as the REST error array single-record calls answer with."""
    return [{"message": e["message"], "errorCode": e["statusCode"], "fields": e["fields"]} for e in result["errors"]]


def _collection_body(body: Any) -> tuple[list[dict[str, Any]], bool]:
    if not isinstance(body, dict) or not isinstance(body.get("records"), list):
        raise ApiError(400, "JSON_PARSER_ERROR", "The request body must be {allOrNone, records: [...]}")
    records = body["records"]
    if len(records) > 200:
        # The 200-record cap is documented; the code and wording are assumed (see client.py's (unverified) block).
        raise ApiError(
            400, "EXCEEDED_ID_LIMIT", "record limit reached. cannot submit more than 200 records into this call"
        )
    if not all(isinstance(r, dict) for r in records):
        raise ApiError(400, "JSON_PARSER_ERROR", "Each record must be a JSON object")
    return records, bool(body.get("allOrNone", False))


def _batch_size(request: Request) -> int:
    """Sforce-Query-Options: batchSize=N, honoured between 200 and 2,000 (default 2,000)."""
    match = re.search(r"batchSize\s*=\s*(\d+)", request.headers.get("Sforce-Query-Options", ""))
    if not match:
        return 2000
    return max(200, min(2000, int(match.group(1))))


def _is_loopback_url(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def create_app(firm: Firm | None = None) -> SalesforceSandbox:
    return SalesforceSandbox(firm)
