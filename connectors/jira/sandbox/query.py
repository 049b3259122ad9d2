"""JQL for the Jira sandbox: a parser of the subset the connector sends, and its evaluation over issues."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

from connectors.jira.records import adf_text
from connectors.jira.sandbox.state import PROJECTS, STATUSES, JiraError, _now

# JQL: clauses joined by AND / OR / NOT and parentheses, then ORDER BY.
_JQL_TOKEN = re.compile(
    r'\s*(?:(?P<string>"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\')|(?P<op>!=|>=|<=|!~|=|>|<|~)'
    r"|(?P<punct>[(),])|(?P<word>[A-Za-z0-9_\-./:+]+))"
)


JQL_FIELDS = {
    "project": "project",
    "key": "key",
    "issuekey": "key",
    "id": "key",
    "labels": "labels",
    "status": "status",
    "statuscategory": "statuscategory",
    "issuetype": "issuetype",
    "type": "issuetype",
    "summary": "summary",
    "description": "description",
    "text": "text",
    "priority": "priority",
    "assignee": "assignee",
    "updated": "updated",
    "updateddate": "updated",
    "created": "created",
    "createddate": "created",
    "duedate": "duedate",
    "due": "duedate",
}
DATE_FIELDS = ("updated", "created", "duedate")
_RELATIVE = re.compile(r"^([-+]?)(\d+)([wdhm])$")


def _jql_error(message: str) -> JiraError:
    return JiraError(400, [message])


class JqlParser:
    def __init__(self, text: str):
        self.tokens: list[tuple[str, str]] = []
        position, text = 0, text.strip()
        while position < len(text):
            match = _JQL_TOKEN.match(text, position)
            if not match or match.end() == position:
                raise _jql_error(
                    f"Error in the JQL Query: The character '{text[position]}' is a reserved JQL character."
                )
            kind = match.lastgroup or ""
            value = match.group(kind)
            if kind == "string":
                value = re.sub(r"\\(.)", r"\1", value[1:-1])
            self.tokens.append((kind, value))
            position = match.end()
        self.position = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def word(self, *words: str) -> bool:
        for offset, word in enumerate(words):
            index = self.position + offset
            if index >= len(self.tokens) or self.tokens[index][0] != "word" or self.tokens[index][1].upper() != word:
                return False
        self.position += len(words)
        return True

    def expect(self, kind: str, value: str | None = None) -> str:
        token = self.peek()
        if token is None or token[0] != kind or (value is not None and token[1] != value):
            shown = token[1] if token else "the end of the query"
            raise _jql_error(f"Error in the JQL Query: Expecting {value or kind} but got '{shown}'.")
        self.position += 1
        return token[1]

    def parse(self) -> tuple[tuple | None, list[tuple[str, bool]]]:
        where = None
        if self.peek() is not None and not (self.peek()[0] == "word" and self.peek()[1].upper() == "ORDER"):
            where = self.parse_or()
        order: list[tuple[str, bool]] = []
        if self.word("ORDER", "BY"):
            while True:
                name = self.expect("word").lower()
                if name not in JQL_FIELDS:
                    raise _jql_error(f"Not able to sort using field '{name}'.")
                descending = self.word("DESC")
                if not descending:
                    self.word("ASC")
                order.append((JQL_FIELDS[name], descending))
                if self.peek() != ("punct", ","):
                    break
                self.position += 1
        if self.peek() is not None:
            raise _jql_error(f"Error in the JQL Query: Unexpected '{self.peek()[1]}'.")
        return where, order

    def parse_or(self) -> tuple:
        node = self.parse_and()
        while self.word("OR"):
            node = ("or", node, self.parse_and())
        return node

    def parse_and(self) -> tuple:
        node = self.parse_not()
        while self.word("AND"):
            node = ("and", node, self.parse_not())
        return node

    def parse_not(self) -> tuple:
        if self.word("NOT"):
            return ("not", self.parse_not())
        if self.peek() == ("punct", "("):
            self.position += 1
            node = self.parse_or()
            self.expect("punct", ")")
            return node
        token = self.peek()
        if token is None or token[0] not in ("word", "string"):
            raise _jql_error("Error in the JQL Query: Expecting a field name.")
        self.position += 1
        name = token[1].lower()
        if name not in JQL_FIELDS:
            raise _jql_error(f"Field '{token[1]}' does not exist or you do not have permission to view it.")
        field = JQL_FIELDS[name]
        if self.word("IS", "NOT", "EMPTY") or self.word("IS", "NOT", "NULL"):
            return ("empty", field, True)
        if self.word("IS", "EMPTY") or self.word("IS", "NULL"):
            return ("empty", field, False)
        if self.word("NOT", "IN"):
            return ("in", field, self.values(), True)
        if self.word("IN"):
            return ("in", field, self.values(), False)
        op = self.expect("op")
        return ("cmp", field, op, self.value())

    def value(self) -> str:
        token = self.peek()
        if token is None or token[0] not in ("word", "string"):
            raise _jql_error("Error in the JQL Query: Expecting a value.")
        self.position += 1
        return token[1]

    def values(self) -> list[str]:
        self.expect("punct", "(")
        values = [self.value()]
        while self.peek() == ("punct", ","):
            self.position += 1
            values.append(self.value())
        self.expect("punct", ")")
        return values


class JqlEvaluation:
    """Matching and ordering issues by a parsed JQL query."""

    def _sort_key(self, field: str, issue: dict[str, Any]) -> tuple:
        if field == "key":
            project, _, number = issue["key"].partition("-")
            return (project, int(number))
        value = issue.get(field)
        if field == "status":
            value = STATUSES[value][2]
        if value is None:
            return (1, "")
        if isinstance(value, datetime):
            return (0, value.timestamp())
        return (0, str(value))

    def _date_value(self, field: str, text: str) -> datetime:
        """A JQL date, read in the user's zone: absolute formats or a relative period such as -5d."""
        relative = _RELATIVE.match(text.replace(" ", ""))
        if relative:
            sign = -1 if relative.group(1) == "-" else 1
            unit = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes"}[relative.group(3)]
            return _now() + sign * timedelta(**{unit: int(relative.group(2))})
        for fmt in ("%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M", "%Y-%m-%d", "%Y/%m/%d"):
            try:
                return datetime.strptime(text, fmt).replace(tzinfo=self.zone).astimezone(UTC)
            except ValueError:
                continue
        raise JiraError(
            400,
            [
                f"Date value '{text}' for field '{field}' is invalid. Valid formats include: 'yyyy/MM/dd HH:mm', "
                "'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', 'yyyy-MM-dd', or a period format e.g. '-5d', '4w 2d'."
            ],
        )

    def _matches(self, node: tuple | None, issue: dict[str, Any]) -> bool:
        if node is None:
            return True
        kind = node[0]
        if kind == "and":
            return self._matches(node[1], issue) and self._matches(node[2], issue)
        if kind == "or":
            return self._matches(node[1], issue) or self._matches(node[2], issue)
        if kind == "not":
            return not self._matches(node[1], issue)
        field = node[1]
        if kind == "empty":
            value = issue.get(field)
            empty = value in (None, "", []) if field != "text" else False
            return not empty if node[2] else empty
        if kind == "in":
            hits = any(self._equals(field, issue, value) for value in node[2])
            return not hits if node[3] else hits
        op, value = node[2], node[3]
        if op in ("~", "!~"):
            if field not in ("summary", "description", "text"):
                raise _jql_error(f"The operator '{op}' is not supported by the '{field}' field.")
            haystack = " ".join(
                [issue.get("summary") or "", adf_text(issue.get("description"))]
                if field == "text"
                else [adf_text(issue.get(field)) if field == "description" else issue.get(field) or ""]
            ).lower()
            found = value.lower().strip("*") in haystack
            return found if op == "~" else not found
        if op in ("=", "!="):
            hit = self._equals(field, issue, value)
            return hit if op == "=" else not hit
        if field not in DATE_FIELDS:
            raise _jql_error(f"The operator '{op}' is not supported by the '{field}' field.")
        current = issue.get(field)
        if current is None:
            return False
        if field == "duedate":
            moment = datetime.combine(date.fromisoformat(current), datetime.min.time(), self.zone).astimezone(UTC)
        else:
            moment = current
        boundary = self._date_value(field, value)
        return {">": moment > boundary, ">=": moment >= boundary, "<": moment < boundary, "<=": moment <= boundary}[op]

    def _equals(self, field: str, issue: dict[str, Any], value: str) -> bool:
        wanted = value.lower()
        if field == "project":
            matches = [k for k, (pid, name) in PROJECTS.items() if wanted in (k.lower(), pid, name.lower())]
            if not matches:
                raise _jql_error(f"The value '{value}' does not exist for the field 'project'.")
            return issue["project"] in matches
        if field == "key":
            return wanted in (issue["key"].lower(), str(issue["id"]))
        if field == "labels":
            return value in (issue.get("labels") or [])
        if field == "status":
            return issue["status"].lower() == wanted
        if field == "statuscategory":
            _sid, category, _label, _colour = STATUSES[issue["status"]]
            return wanted in (category, {"new": "to do", "indeterminate": "in progress", "done": "done"}[category])
        if field in ("issuetype", "priority"):
            return (issue.get(field) or "").lower() == wanted
        if field == "assignee":
            return (issue.get("assignee") or "").lower() == wanted
        if field in DATE_FIELDS:
            current = issue.get(field)
            if current is None:
                return False
            if field == "duedate":
                return current == self._date_value(field, value).astimezone(self.zone).date().isoformat()
            return current == self._date_value(field, value)
        if field in ("summary", "description", "text"):
            raise _jql_error(f"The operator '=' is not supported by the '{field}' field.")
        return False
