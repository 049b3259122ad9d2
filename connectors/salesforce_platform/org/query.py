"""SOQL for the Salesforce platform sandbox: the parser of the subset the connectors send, and its execution."""

from __future__ import annotations

import heapq
import re
from dataclasses import dataclass
from typing import Any

from connectors.salesforce_platform.org.schema import _NUMBER_TYPES, _STRING_TYPES, ApiError, Field, salesforce_id
from connectors.salesforce_platform.rest import parse_salesforce_datetime

# SOQL (the subset integrations use: field lists, parent fields, WHERE with AND/OR/NOT/IN/LIKE, ORDER BY, LIMIT)
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


# The orders in which seeded lazy rows already come (their Id and SystemModstamp grow with the index).
_INDEX_ORDERS = ([], [("SystemModstamp", False)], [("Id", False)], [("SystemModstamp", False), ("Id", False)])


def _attributes(object_name: str, record_id: str, version: str) -> dict[str, str]:
    return {"type": object_name, "url": f"/services/data/v{version}/sobjects/{object_name}/{record_id}"}


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


class SoqlExecution:
    """Runs parsed SOQL over an org's records, with `nextRecordsUrl` cursors."""

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
