"""OData v4 query options as the Microsoft sandboxes (Dataverse, Business Central) understand them.

The subset integrations send: `$filter` with eq/ne/gt/ge/lt/le, and/or/not, parentheses, `contains`,
`startswith` and `endswith`; `$orderby` with asc/desc; `$select`; `$top`; the `Prefer` header's
`odata.maxpagesize`, `odata.track-changes`, `odata.continue-on-error` and `return=representation`.
Rows are plain dicts whose dates are ISO strings (`2024-01-02T09:00:00Z`) so they compare as text.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any


class ODataError(ValueError):
    """A query option the service refuses; the sandbox answers it in its vendor's error body."""


_TOKEN = re.compile(
    r"""\s*(?:
     (?P<string>'(?:[^']|'')*')
    |(?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})?)
    |(?P<guid>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})
    |(?P<date>\d{4}-\d{2}-\d{2})
    |(?P<number>-?\d+(?:\.\d+)?)
    |(?P<punct>[(),])
    |(?P<ident>[A-Za-z_][A-Za-z0-9_./@]*)
    )""",
    re.VERBOSE,
)
_OPERATORS = {"eq", "ne", "gt", "ge", "lt", "le"}
_FUNCTIONS = {"contains", "startswith", "endswith"}


def iso_z(moment: datetime) -> str:
    """The sandboxes' stored form of a datetime: UTC, whole seconds, Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _normal_datetime(text: str) -> str:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return iso_z(value)


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens, position = [], 0
    text = text.strip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if not match or match.end() == position:
            raise ODataError(f"Syntax error at position {position} in '{text}'.")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.tokens = _tokenize(text)
        self.position = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def word(self, *words: str) -> bool:
        token = self.peek()
        if token and token[0] == "ident" and token[1].lower() in words:
            self.position += 1
            return True
        return False

    def take(self, kind: str, value: str | None = None) -> str:
        token = self.peek()
        if not token or token[0] != kind or (value is not None and token[1] != value):
            found = token[1] if token else "end of expression"
            raise ODataError(f"Syntax error: unexpected '{found}' in '{self.text}'.")
        self.position += 1
        return token[1]

    def parse(self) -> Any:
        node = self.parse_or()
        if self.peek() is not None:
            raise ODataError(f"Syntax error: unexpected '{self.peek()[1]}' in '{self.text}'.")
        return node

    def parse_or(self) -> Any:
        terms = [self.parse_and()]
        while self.word("or"):
            terms.append(self.parse_and())
        return terms[0] if len(terms) == 1 else ("or", terms)

    def parse_and(self) -> Any:
        terms = [self.parse_unary()]
        while self.word("and"):
            terms.append(self.parse_unary())
        return terms[0] if len(terms) == 1 else ("and", terms)

    def parse_unary(self) -> Any:
        if self.word("not"):
            return ("not", self.parse_unary())
        if self.peek() == ("punct", "("):
            self.position += 1
            node = self.parse_or()
            self.take("punct", ")")
            return node
        name = self.take("ident")
        if name.lower() in _FUNCTIONS and self.peek() == ("punct", "("):
            self.position += 1
            field = self.take("ident")
            self.take("punct", ",")
            value = self.literal()
            self.take("punct", ")")
            return ("func", name.lower(), field, value)
        token = self.peek()
        if not token or token[0] != "ident" or token[1].lower() not in _OPERATORS:
            raise ODataError(f"Syntax error: expected an operator after '{name}' in '{self.text}'.")
        self.position += 1
        return ("cmp", name, token[1].lower(), self.literal())

    def literal(self) -> Any:
        token = self.peek()
        if token is None:
            raise ODataError(f"Syntax error: a value is missing in '{self.text}'.")
        kind, text = token
        self.position += 1
        if kind == "string":
            return text[1:-1].replace("''", "'")
        if kind == "datetime":
            return _normal_datetime(text)
        if kind in ("guid", "date"):
            return text.lower() if kind == "guid" else text
        if kind == "number":
            return float(text) if "." in text else int(text)
        if kind == "ident" and text.lower() in ("true", "false"):
            return text.lower() == "true"
        if kind == "ident" and text.lower() == "null":
            return None
        raise ODataError(f"Syntax error: '{text}' is not a value in '{self.text}'.")


def parse_filter(text: str) -> Any:
    return _Parser(text).parse()


def filter_fields(node: Any) -> set[str]:
    """The property names a parsed filter uses (so the sandbox can refuse unknown ones)."""
    if node is None:
        return set()
    if node[0] in ("and", "or"):
        return set().union(*(filter_fields(n) for n in node[1]))
    if node[0] == "not":
        return filter_fields(node[1])
    return {node[2] if node[0] == "func" else node[1]}


def _comparable(value: Any) -> Any:
    if isinstance(value, str) and len(value) >= 10 and value[4:5] == "-" and "T" in value:
        try:
            return _normal_datetime(value)
        except ValueError:
            return value
    if isinstance(value, str) and re.fullmatch(r"[0-9a-fA-F-]{36}", value):
        return value.lower()
    return value


def matches(row: dict[str, Any], node: Any) -> bool:
    if node is None:
        return True
    kind = node[0]
    if kind == "and":
        return all(matches(row, n) for n in node[1])
    if kind == "or":
        return any(matches(row, n) for n in node[1])
    if kind == "not":
        return not matches(row, node[1])
    if kind == "func":
        _, name, field, expected = node
        actual = str(row.get(field) or "").lower()
        expected = str(expected).lower()
        return {"contains": expected in actual, "startswith": actual.startswith(expected)}.get(
            name, actual.endswith(expected)
        )
    _, field, operator, expected = node
    actual = _comparable(row.get(field))
    if operator == "eq":
        return actual == expected or (isinstance(actual, str) and isinstance(expected, str) and actual == expected)
    if operator == "ne":
        return actual != expected
    if actual is None or expected is None:
        return False
    try:
        return {"gt": actual > expected, "ge": actual >= expected, "lt": actual < expected, "le": actual <= expected}[
            operator
        ]
    except TypeError:
        raise ODataError(f"'{field}' cannot be compared with {expected!r}.") from None


def parse_orderby(text: str | None) -> list[tuple[str, bool]]:
    """`name asc, modifiedon desc` -> [(name, False), (modifiedon, True)]."""
    order: list[tuple[str, bool]] = []
    for item in (text or "").split(","):
        parts = item.split()
        if not parts:
            continue
        if len(parts) > 2 or (len(parts) == 2 and parts[1].lower() not in ("asc", "desc")):
            raise ODataError(f"The $orderby item '{item.strip()}' is not valid.")
        order.append((parts[0], len(parts) == 2 and parts[1].lower() == "desc"))
    return order


def sort_rows(rows: list[dict[str, Any]], order: list[tuple[str, bool]]) -> list[dict[str, Any]]:
    for field, descending in reversed(order):
        rows.sort(key=lambda r, f=field: (r.get(f) is not None, _comparable(r.get(f))), reverse=descending)
    return rows


def parse_select(text: str | None) -> list[str]:
    return [name.strip() for name in (text or "").split(",") if name.strip()]


def prefer(request_headers, name: str) -> str | None:
    """The value of one `Prefer` preference (`odata.maxpagesize=500` -> "500"; a flag -> "")."""
    for header in request_headers.getlist("Prefer") if hasattr(request_headers, "getlist") else [request_headers]:
        for part in header.split(","):
            key, _, value = part.strip().partition("=")
            if key.strip().lower() == name.lower():
                return value.strip().strip('"')
    return None


def key_values(segment: str, coerce: Callable[[str], Any] = str) -> dict[str, Any]:
    """`accountnumber='A1',name='x'` -> {accountnumber: A1, name: x}; a bare guid -> {"": guid}."""
    segment = segment.strip()
    if re.fullmatch(r"[0-9a-fA-F-]{36}", segment):
        return {"": segment.lower()}
    values: dict[str, Any] = {}
    for match in re.finditer(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*('(?:[^']|'')*'|[^,]+)\s*(?:,|$)", segment):
        raw = match.group(2).strip()
        values[match.group(1)] = raw[1:-1].replace("''", "'") if raw.startswith("'") else coerce(raw)
    if not values:
        raise ODataError(f"The key '{segment}' is not valid.")
    return values
