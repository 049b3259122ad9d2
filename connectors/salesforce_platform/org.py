"""The Salesforce platform's REST API, emulated once for every vendor that lives on it (Salesforce, Certinia).

An org (`PlatformOrg`) holds a schema of sObjects and their records; `PlatformSandbox` serves the OAuth token
endpoint, SOQL with `nextRecordsUrl` paging, sObject describe/create/update/upsert and sObject Collections
(200 a call) over it. A vendor sandbox subclasses both: its schema, its seed and its package's rules. Objects
too large to hold (100,000 timecards) are `LazyTable`s whose seeded rows are computed from their index.
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import hmac
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from connectors.salesforce_platform.rest import parse_salesforce_datetime
from connectors.sandbox.app import SandboxApp, json_response

ORG_ID = "00DSB0000001SGPMAQ"
USER_ID = "005SB0000001SGPMAQ"
DAILY_API_LIMIT = 100_000
SUPPORTED_VERSIONS = ("55.0", "56.0", "57.0", "58.0", "59.0", "60.0", "61.0", "62.0")


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


def now_utc() -> datetime:
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
            "double": "xsd:double",
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


def system_fields() -> list[Field]:
    return [
        Field("Id", "id", "Record ID", 18, createable=False, updateable=False),
        Field("IsDeleted", "boolean", "Deleted", createable=False, updateable=False),
        Field("CreatedDate", "datetime", "Created Date", createable=False, updateable=False),
        Field("LastModifiedDate", "datetime", "Last Modified Date", createable=False, updateable=False),
        Field("SystemModstamp", "datetime", "System Modstamp", createable=False, updateable=False),
    ]


_STRING_TYPES = {"id", "string", "textarea", "url", "phone", "picklist", "reference"}
_NUMBER_TYPES = {"currency", "percent", "double"}


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
# Lazy tables: seeded rows computed from their index, so 100,000 of them cost no memory
# ---------------------------------------------------------------------------------------------------------------


class LazyTable:
    """Seeded rows of one object computed by `make(index)`, plus the rows written through the API.

    Seeded row i has id salesforce_id(prefix, i + 1) and its Id and SystemModstamp grow with i, so a query in
    SystemModstamp or Id order reads them in index order. Rows created through the API get numbers from
    CREATED_BASE on; a seeded row changed through the API is kept in `changed` and replaces the computed one.
    """

    CREATED_BASE = 1_000_000_000

    def __init__(self, prefix: str, make: Callable[[int], dict[str, Any]], count: int):
        self.prefix = prefix
        self.make = make
        self.count = count
        self.changed: dict[int, dict[str, Any]] = {}
        self.created: dict[str, dict[str, Any]] = {}
        self.next_number = self.CREATED_BASE + 1

    def index_of(self, record_id: str) -> int | None:
        number = salesforce_number(record_id)
        if number is None or not 0 < number <= self.count or record_id[:3] != self.prefix:
            return None
        return number - 1

    def get(self, record_id: str) -> dict[str, Any] | None:
        if record_id in self.created:
            return self.created[record_id]
        index = self.index_of(record_id)
        if index is None:
            return None
        return self.changed.get(index) or self.make(index)

    def row(self, key: int | str) -> dict[str, Any]:
        if isinstance(key, str):
            return self.created[key]
        return self.changed.get(key) or self.make(key)

    def put(self, record: dict[str, Any]) -> None:
        index = self.index_of(record["Id"])
        if index is None:
            self.created[record["Id"]] = record
        else:
            self.changed[index] = record

    def stored(self) -> list[dict[str, Any]]:
        return [*self.changed.values(), *self.created.values()]


def salesforce_number(record_id: str) -> int | None:
    """The counter inside an id made by salesforce_id (15 or 18 characters), or None."""
    digits = record_id[5:15]
    if len(record_id) not in (15, 18) or record_id[3:5] != "SB" or not digits.isalnum():
        return None
    number = 0
    for char in digits:
        number = number * 62 + _BASE62.index(char)
    return number


# The orders in which seeded lazy rows already come (their Id and SystemModstamp grow with the index).
_INDEX_ORDERS = ([], [("SystemModstamp", False)], [("Id", False)], [("SystemModstamp", False), ("Id", False)])


# ---------------------------------------------------------------------------------------------------------------
# The org: records, tokens, query cursors
# ---------------------------------------------------------------------------------------------------------------


class PlatformOrg:
    """All mutable state of one sandbox org, guarded by one lock (the WSGI server is threaded).

    Subclasses set `schema` and `key_prefixes`, seed in `_seed`, may serve large objects from `lazy_tables`,
    and add their package's rules in `_validate` and `_after_apply`.
    """

    schema: dict[str, dict[str, Field]] = {}
    key_prefixes: dict[str, str] = {}

    def __init__(self, firm: Any = None):
        self.firm = firm
        self.lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.records: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in self.schema}
            self.counters = {name: 0 for name in [*self.schema, "locator", "event"]}
            self.tokens: set[str] = set()
            # locator -> (object, keys of the matching rows, fields, batch size); pages are rendered as they are asked for
            self.cursors: dict[str, tuple[str, list[int | str], list[str], int]] = {}
            self.api_usage = 0
            self.lazy: dict[str, LazyTable] = self.lazy_tables()
            self._seed()

    # -- hooks -----------------------------------------------------------------------------------------------

    def lazy_tables(self) -> dict[str, LazyTable]:
        """Objects whose seeded rows are computed on demand (none by default)."""
        return {}

    def _seed(self) -> None:
        """Insert the seeded records."""

    def _derive(self, object_name: str, record: dict[str, Any], changes: dict[str, Any]) -> None:
        """Set the fields the platform computes (formulas, roll-ups) after a save."""

    def _validate(self, object_name: str, merged: dict[str, Any], existing: dict[str, Any] | None) -> list[dict]:
        """The org's validation rules and triggers for one record about to be saved: SaveResult errors."""
        return []

    def _after_apply(self, object_name: str, record: dict[str, Any], before: dict[str, Any] | None) -> None:
        """Side effects of a committed save (platform events, webhooks)."""

    # -- storage -----------------------------------------------------------------------------------------------

    def _next_id(self, object_name: str) -> str:
        table = self.lazy.get(object_name)
        if table is not None:
            table.next_number += 1
            return salesforce_id(table.prefix, table.next_number - 1)
        self.counters[object_name] += 1
        return salesforce_id(self.key_prefixes[object_name], self.counters[object_name])

    def _put(self, object_name: str, record: dict[str, Any]) -> None:
        table = self.lazy.get(object_name)
        if table is not None:
            table.put(record)
        else:
            self.records[object_name][record["Id"]] = record

    def _stored_rows(self, object_name: str) -> list[dict[str, Any]]:
        """Rows held in memory: all of them, or for a lazy object those written through the API."""
        table = self.lazy.get(object_name)
        return table.stored() if table is not None else list(self.records[object_name].values())

    def _row(self, object_name: str, key: int | str) -> dict[str, Any]:
        table = self.lazy.get(object_name)
        return table.row(key) if table is not None else self.records[object_name][key]  # type: ignore[index]

    def _insert(self, object_name: str, values: dict[str, Any], moment: datetime) -> dict[str, Any]:
        record = {name: None for name in self.schema[object_name]}
        record.update({k: v for k, v in values.items() if k in record})
        stamp = sf_datetime(moment)
        record.update(
            Id=self._next_id(object_name),
            IsDeleted=False,
            CreatedDate=stamp,
            LastModifiedDate=stamp,
            SystemModstamp=stamp,
        )
        self._derive(object_name, record, values)
        self._put(object_name, record)
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
        if query.object_name not in self.schema:
            raise ApiError(
                400,
                "INVALID_TYPE",
                f"sObject type '{query.object_name}' is not supported. If you are attempting to use a custom "
                "object, be sure to append the '__c' after the entity name.",
            )
        for name in [*query.fields, *(name for name, _ in query.order_by)]:
            self._field_type(query.object_name, name)
        with self.lock:
            keys = self._matching_keys(query, include_deleted)
            keys = keys[query.offset :]
            if query.limit is not None:
                keys = keys[: query.limit]
            if query.count_only:
                return {"totalSize": len(keys), "done": True, "records": []}
            page = [
                self._render(query.object_name, self._row(query.object_name, k), query.fields, version)
                for k in keys[:batch_size]
            ]
            result: dict[str, Any] = {"totalSize": len(keys), "done": len(keys) <= batch_size, "records": page}
            if not result["done"]:
                self.counters["locator"] += 1
                locator = salesforce_id("01g", self.counters["locator"])
                self.cursors[locator] = (query.object_name, keys, query.fields, batch_size)
                result["nextRecordsUrl"] = f"/services/data/v{version}/query/{locator}-{batch_size}"
        return result

    def _matching_keys(self, query: SoqlQuery, include_deleted: bool) -> list[int | str]:
        """Keys (ids, or seeded indexes of a lazy object) of the matching rows, in the query's order."""
        object_name = query.object_name

        def visible(row: dict[str, Any]) -> bool:
            return (include_deleted or not row["IsDeleted"]) and self._matches(object_name, row, query.where)

        def order_key(row: dict[str, Any]) -> tuple:
            return tuple(
                _sort_key(self._value(object_name, row, name), self._field_type(object_name, name))
                for name, _descending in query.order_by
            )

        table = self.lazy.get(object_name)
        if table is None:
            rows = [r for r in self.records[object_name].values() if visible(r)]
            for name, descending in reversed(query.order_by):
                field = self._field_type(object_name, name)
                rows.sort(
                    key=lambda r, n=name, f=field: _sort_key(self._value(object_name, r, n), f), reverse=descending
                )
            return [r["Id"] for r in rows]
        seeded = [i for i in range(table.count) if i not in table.changed and visible(table.make(i))]
        stored = [r for r in table.stored() if visible(r)]
        order = [(name.lower(), descending) for name, descending in query.order_by]
        if order in [[(n.lower(), d) for n, d in o] for o in _INDEX_ORDERS]:
            # Seeded rows already come in this order: merge the few stored ones in without sorting the rest.
            stored.sort(key=order_key)
            stored_keys = [table.index_of(r["Id"]) if table.index_of(r["Id"]) is not None else r["Id"] for r in stored]
            return list(heapq.merge(seeded, stored_keys, key=lambda k: order_key(table.row(k))))
        keys: list[int | str] = [
            *seeded,
            *(r["Id"] if table.index_of(r["Id"]) is None else table.index_of(r["Id"]) for r in stored),
        ]
        for name, descending in reversed(query.order_by):
            field = self._field_type(object_name, name)
            keys.sort(
                key=lambda k, n=name, f=field: _sort_key(self._value(object_name, table.row(k), n), f),
                reverse=descending,
            )
        return keys

    def query_more(self, locator_and_offset: str, version: str) -> dict[str, Any]:
        locator, _, offset_text = locator_and_offset.rpartition("-")
        with self.lock:
            cursor = self.cursors.get(locator)
            if cursor is None or not offset_text.isdigit():
                raise ApiError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
            object_name, keys, fields, batch = cursor
            offset = int(offset_text)
            page = [
                self._render(object_name, self._row(object_name, k), fields, version)
                for k in keys[offset : offset + batch]
            ]
            result: dict[str, Any] = {"totalSize": len(keys), "done": offset + batch >= len(keys), "records": page}
            if result["done"]:
                self.cursors.pop(locator, None)
            else:
                result["nextRecordsUrl"] = f"/services/data/v{version}/query/{locator}-{offset + batch}"
        return result

    def _field_type(self, object_name: str, path: str) -> Field:
        schema = self.schema[object_name]
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
            for field in self.schema[object_name].values():
                if field.relationship and field.relationship.lower() == relationship.lower():
                    parent = self._find_by_id(field.reference_to or "", record.get(field.name) or "")
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
                f for f in self.schema[object_name].values() if (f.relationship or "").lower() == relationship.lower()
            )
            parent = self._find_by_id(lookup.reference_to or "", record.get(lookup.name) or "")
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
        schema = self.schema[object_name]
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
        schema = self.schema[object_name]
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
                for r in self._stored_rows(object_name)
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
                        for r in self._stored_rows(object_name)
                        if r["Id"] != (existing or {}).get("Id")
                        and str(r.get(name) or "").lower() == str(value).lower()
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
        if not errors:
            errors.extend(self._validate(object_name, merged, existing))
        if errors:
            return {"success": False, "errors": errors}
        return (object_name, changes, existing, upsert)

    def _find_by_id(self, object_name: str, record_id: str) -> dict[str, Any] | None:
        table = self.lazy.get(object_name)
        if table is not None:
            if len(record_id) == 15:
                record_id = next((i for i in table.created if i[:15] == record_id), record_id)
            record = table.get(record_id)
        else:
            records = self.records.get(object_name, {})
            if len(record_id) == 15:
                record_id = next((i for i in records if i[:15] == record_id), record_id)
            record = records.get(record_id)
        return record if record and not record["IsDeleted"] else None

    def _apply(self, object_name: str, changes: dict[str, Any], existing: dict[str, Any] | None) -> dict[str, Any]:
        clean = {k: _stored(self.schema[object_name][k], v) for k, v in changes.items()}
        if existing is None:
            record = self._insert(object_name, clean, now_utc())
            before = None
        else:
            before = dict(existing)
            record = {**existing, **clean}
            stamp = sf_datetime(now_utc())
            record.update(LastModifiedDate=stamp, SystemModstamp=stamp)
            self._derive(object_name, record, changes)
            existing.update(record)  # the stored dict itself, for objects held in memory
            self._put(object_name, existing)
            record = existing
        self._after_apply(object_name, record, before)
        return record

    def delete(self, object_name: str, record_id: str) -> bool:
        with self.lock:
            record = self._find_by_id(object_name, record_id)
            if record is None:
                return False
            stamp = sf_datetime(now_utc())
            record.update(IsDeleted=True, SystemModstamp=stamp, LastModifiedDate=stamp)
            self._put(object_name, record)
            return True


# ---------------------------------------------------------------------------------------------------------------
# Value helpers
# ---------------------------------------------------------------------------------------------------------------


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
        "double": "number",
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


class PlatformSandbox(SandboxApp):
    """The REST API of one org. Subclasses set `vendor`, `org_class`, `credentials` and implement `seed`."""

    vendor = "salesforce-platform"
    org_class: type[PlatformOrg] = PlatformOrg
    credentials: dict[str, str] = {}
    org: PlatformOrg

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
        self.org = self.org_class(self.firm)

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
        if not hmac.compare_digest(client_id, self.credentials["client_id"]):
            return refuse("invalid_client_id", "client identifier invalid")
        if not hmac.compare_digest(client_secret, self.credentials["client_secret"]):
            return refuse("invalid_client", "invalid client credentials")
        if grant == "password" and not (
            hmac.compare_digest(form.get("username", ""), self.credentials["username"])
            and hmac.compare_digest(form.get("password", ""), self.credentials["password"])
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
                "sobjects": [self._sobject_summary(name, version) for name in self.org.schema],
            }
        )

    def describe(self, request: Request, version: str, object_name: str) -> Response:
        if denied := self._authorize(request, version):
            return denied
        if object_name not in self.org.schema:
            return self._error(ApiError(404, "NOT_FOUND", "The requested resource does not exist"))
        summary = self._sobject_summary(object_name, version)
        summary["fields"] = [field.describe() for field in self.org.schema[object_name].values()]
        return self._json(summary)

    # -- records ------------------------------------------------------------------------------------------------

    def sobject(self, request: Request, version: str, object_name: str) -> Response:
        if denied := self._authorize(request, version):
            return denied
        if object_name not in self.org.schema:
            return self._error(ApiError(404, "NOT_FOUND", "The requested resource does not exist"))
        if request.method == "GET":
            return self._json({"objectDescribe": self._sobject_summary(object_name, version), "recentItems": []})
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
        if object_name not in self.org.schema:
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
            row = self.org._render(object_name, found, list(self.org.schema[object_name]), version)
        return self._json(row)

    def upsert_one(self, request: Request, version: str, object_name: str, field_name: str, value: str) -> Response:
        if denied := self._authorize(request, version):
            return denied
        field = self.org.schema.get(object_name, {}).get(field_name)
        if field is None or not (field.external_id or field.type == "id"):
            return self.not_found_response(request)
        with self.org.lock:
            matches = [
                r
                for r in self.org._stored_rows(object_name)
                if not r["IsDeleted"] and str(r.get(field_name) or "").lower() == value.lower()
            ]
            if len(matches) > 1:
                urls = [f"/services/data/v{version}/sobjects/{object_name}/{r['Id']}" for r in matches]
                return self._json(urls, status=300)
            if request.method == "GET":
                if not matches:
                    return self.not_found_response(request)
                return self._json(
                    self.org._render(object_name, matches[0], list(self.org.schema[object_name]), version)
                )
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
                if object_name not in self.org.schema:
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
        field = self.org.schema.get(object_name, {}).get(field_name)
        if object_name not in self.org.schema:
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

    def _sobject_summary(self, object_name: str, version: str) -> dict[str, Any]:
        base = f"/services/data/v{version}/sobjects/{object_name}"
        return {
            "name": object_name,
            "label": object_name,
            "keyPrefix": self.org.key_prefixes[object_name],
            "createable": True,
            "updateable": True,
            "queryable": True,
            "custom": object_name.endswith("__c"),
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
