"""The Sage Intacct `query` function: filters, ordering and pages with `offset`, `totalcount`, `numremaining`."""

from __future__ import annotations

import xml.etree.ElementTree as ET  # noqa: S405 -- only to build answers; requests are parsed by defusedxml
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from connectors.intacct.client import DEFAULT_EXTERNAL_ID_FIELD, QUERY_PAGE_MAX
from connectors.intacct.records import OBJECTS, WHEN_FORMAT
from connectors.intacct.sandbox.state import (
    AUDIT_FIELDS,
    INVALID_FIELD,
    INVALID_REQUEST,
    INVALID_VALUE,
    NUMBER_FIELDS,
    FunctionFailed,
    _parse_date,
)

COMPARISONS = {
    "equalto": lambda a, b: a == b,
    "notequalto": lambda a, b: a != b,
    "greaterthan": lambda a, b: a is not None and a > b,
    "greaterthanorequalto": lambda a, b: a is not None and a >= b,
    "lessthan": lambda a, b: a is not None and a < b,
    "lessthanorequalto": lambda a, b: a is not None and a <= b,
}


def _comparable(object_name: str, field: str, value: Any, insensitive: bool) -> Any:
    if value is None or value == "":
        return None
    if field == "WHENMODIFIED":
        try:
            return datetime.strptime(str(value), WHEN_FORMAT)
        except ValueError:
            raise FunctionFailed(INVALID_VALUE, f"Invalid date and time {value} for WHENMODIFIED.") from None
    if field in OBJECTS[object_name].date_fields:
        parsed = _parse_date(str(value))
        if parsed is None:
            raise FunctionFailed(INVALID_VALUE, f"Invalid date {value} for {field}.")
        return parsed
    if field in NUMBER_FIELDS:
        try:
            return Decimal(str(value))
        except InvalidOperation:
            raise FunctionFailed(INVALID_VALUE, f"Invalid number {value} for {field}.") from None
    return str(value).lower() if insensitive else str(value)


def _sort_key(object_name: str, field: str, value: Any) -> tuple[bool, Any]:
    comparable = _comparable(object_name, field, value, False)
    return (comparable is not None, comparable if comparable is not None else 0)


class IntacctQuery:
    """The `query` function over the company's objects."""

    def _fields_of(self, object_name: str) -> set[str]:
        return {*OBJECTS[object_name].fields, *AUDIT_FIELDS, DEFAULT_EXTERNAL_ID_FIELD}

    def _query(self, query: ET.Element) -> ET.Element:
        object_name = (query.findtext("object") or "").strip()
        if object_name not in OBJECTS:
            raise FunctionFailed(INVALID_FIELD, f"Object definition {object_name} not found.")
        known = self._fields_of(object_name)
        select = [(f.text or "").strip() for f in query.findall("./select/field")]
        if not select:
            raise FunctionFailed(
                INVALID_REQUEST, "The select element is required: returning all fields is not supported."
            )
        for name in select:
            if name not in known:
                raise FunctionFailed(INVALID_FIELD, f"Invalid field {name} for object {object_name}.")
        insensitive = (query.findtext("./options/caseinsensitive") or "").strip().lower() == "true"
        condition = query.find("./filter/*")
        rows = [r for r in self.records[object_name].values() if self._matches(object_name, r, condition, insensitive)]
        for order in reversed(query.findall("./orderby/order")):
            name = (order.findtext("field") or "").strip()
            if name not in known:
                raise FunctionFailed(INVALID_FIELD, f"Invalid field {name} in orderby.")
            rows.sort(
                key=lambda r, n=name: _sort_key(object_name, n, r.get(n)), reverse=order.find("descending") is not None
            )
        try:
            size = int(query.findtext("pagesize") or 100)
            offset = int(query.findtext("offset") or 0)
        except ValueError:
            raise FunctionFailed(INVALID_REQUEST, "pagesize and offset must be whole numbers.") from None
        if not 1 <= size <= QUERY_PAGE_MAX:
            raise FunctionFailed(INVALID_REQUEST, f"pagesize must be between 1 and {QUERY_PAGE_MAX}.")
        page = rows[offset : offset + size]
        data = ET.Element("data", listtype=object_name, totalcount=str(len(rows)), offset=str(offset))
        data.set("count", str(len(page)))
        data.set("numremaining", str(max(0, len(rows) - offset - len(page))))
        # Fault injection: every other malformed row loses its RECORDNO, the others get a WHENMODIFIED that is no date.
        broken = {position: n % 2 for n, position in enumerate(sorted(self.malformed_positions(len(page))))}
        for position, record in enumerate(page):
            element = ET.SubElement(data, object_name)
            for name in select:
                value = record.get(name)
                if broken.get(position) == 0 and name == "RECORDNO":
                    continue
                if broken.get(position) == 1 and name == "WHENMODIFIED":
                    value = "sometime last week"
                ET.SubElement(element, name).text = "" if value is None else str(value)
        return data

    def _matches(self, object_name: str, record: dict[str, Any], node: ET.Element | None, insensitive: bool) -> bool:
        if node is None:
            return True
        if node.tag in ("and", "or"):
            parts = [self._matches(object_name, record, child, insensitive) for child in node]
            return all(parts) if node.tag == "and" else any(parts)
        field = (node.findtext("field") or "").strip()
        if field not in self._fields_of(object_name):
            raise FunctionFailed(INVALID_FIELD, f"Invalid field {field} in filter.")
        actual = _comparable(object_name, field, record.get(field), insensitive)
        values = [_comparable(object_name, field, v.text, insensitive) for v in node.findall("value")]
        if node.tag in COMPARISONS:
            return bool(values) and COMPARISONS[node.tag](actual, values[0])
        if node.tag in ("in", "notin"):
            return (actual in values) == (node.tag == "in")
        if node.tag in ("isnull", "isnotnull"):
            return (actual is None) == (node.tag == "isnull")
        if node.tag == "like" and values:
            pattern = str(values[0]).replace("%", "")
            return actual is not None and pattern in str(actual)
        raise FunctionFailed(INVALID_REQUEST, f"Unsupported filter operator {node.tag}.")
