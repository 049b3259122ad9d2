"""Encoded queries (`sysparm_query`) over the sandbox's rows: conditions joined by ^ (and), ^OR (or, within a
block) and ^NQ (or, between blocks), the operators =, !=, >, >=, <, <=, IN, STARTSWITH, ISEMPTY and ISNOTEMPTY,
ORDERBY and ORDERBYDESC, and dot-walked field names ("task.assignment_group.name") through references."""

from __future__ import annotations

import re
from typing import Any

# (table, reference field) -> the table it points at
REFERENCES = {
    ("task_time_worked", "task"): "incident",
    ("task_time_worked", "user"): "sys_user",
    ("incident", "assignment_group"): "sys_user_group",
    ("incident", "assigned_to"): "sys_user",
}
_CONDITION = re.compile(r"^([A-Za-z0-9_.]+?)(ISNOTEMPTY|ISEMPTY|STARTSWITH|>=|<=|!=|IN|=|>|<)(.*)$")


class QueryError(ValueError):
    pass


def parse(text: str) -> tuple[list[list[list[tuple[str, str, str]]]], list[tuple[str, bool]]]:
    """(blocks, order): a row matches when any block does; a block when each of its groups does; a group (a
    condition and its ^OR alternatives) when any of its conditions does."""
    order: list[tuple[str, bool]] = []
    blocks = []
    for block_text in (text or "").split("^NQ"):
        groups: list[list[tuple[str, str, str]]] = []
        for term in block_text.split("^"):
            term = term.strip()
            if not term:
                continue
            if term.startswith("ORDERBYDESC"):
                order.append((term[len("ORDERBYDESC") :], True))
                continue
            if term.startswith("ORDERBY"):
                order.append((term[len("ORDERBY") :], False))
                continue
            alternative = term.startswith("OR") and groups and _CONDITION.match(term[2:])
            match = _CONDITION.match(term[2:] if alternative else term)
            if match is None:
                raise QueryError(f"Invalid encoded query term: {term}")
            condition = (match.group(1), match.group(2), match.group(3))
            if alternative:
                groups[-1].append(condition)
            else:
                groups.append([condition])
        blocks.append(groups)
    return blocks, order


class TableQuery:
    """Evaluates parsed queries against `self.tables` (a mixin for the sandbox)."""

    def value_of(self, table: str, row: dict[str, Any], path: str) -> str:
        head, _, rest = path.partition(".")
        value = row.get(head, "")
        if not rest:
            return "" if value is None else str(value)
        target = REFERENCES.get((table, head))
        related = self.tables.get(target, {}).get(value) if target else None
        return self.value_of(target, related, rest) if related is not None else ""

    def matches(self, table: str, row: dict[str, Any], blocks) -> bool:
        if not blocks or blocks == [[]]:
            return True
        return any(all(any(self._holds(table, row, c) for c in group) for group in block) for block in blocks)

    def _holds(self, table: str, row: dict[str, Any], condition: tuple[str, str, str]) -> bool:
        field, operator, wanted = condition
        value = self.value_of(table, row, field)
        if operator == "=":
            return value == wanted
        if operator == "!=":
            return value != wanted
        if operator == "IN":
            return value in wanted.split(",")
        if operator == "STARTSWITH":
            return value.startswith(wanted)
        if operator == "ISEMPTY":
            return value == ""
        if operator == "ISNOTEMPTY":
            return value != ""
        if value == "":
            return False
        return {">": value > wanted, ">=": value >= wanted, "<": value < wanted, "<=": value <= wanted}[operator]

    def select(self, table: str, query: str) -> list[dict[str, Any]]:
        blocks, order = parse(query)
        rows = [row for row in self.tables[table].values() if self.matches(table, row, blocks)]
        for field, descending in reversed(order or [("sys_id", False)]):
            rows.sort(key=lambda row, f=field: self.value_of(table, row, f), reverse=descending)
        return rows
