"""SuiteQL for the NetSuite sandbox: a tokenizer, a parser of the SELECT subset and an evaluator over rows."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from connectors.netsuite.sandbox.schema import ApiError

# SuiteQL: SELECT items FROM table [WHERE condition] [ORDER BY items], with AND/OR/NOT, comparisons, IN, LIKE,
# IS [NOT] NULL, TO_CHAR / TO_DATE / TO_TIMESTAMP / UPPER / LOWER / BUILTIN.DF and COUNT(*).
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
