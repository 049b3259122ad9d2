"""Jira's issues as its REST API v3 sends them: the fields we read and write, Atlassian Document Format text,
the label that carries our id, JQL literals and its error bodies."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

SEARCH_FIELDS = ("summary", "status", "project", "issuetype", "labels", "description", "duedate", "priority",
                 "assignee", "created", "updated")  # fmt: skip


WRITABLE_FIELDS = ("project", "issuetype", "summary", "description", "labels", "duedate", "priority")


EXTERNAL_ID_LABEL_PREFIX = "ref-"  # marks the label that carries our id for a record ("ref-contoso-project-12")


def parse_cursor(value: str) -> datetime | None:
    """A stored cursor (ISO 8601; a naive one is UTC) as an aware UTC datetime."""
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


def iso_millis(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def external_id_label(external_id: str) -> str:
    """The label that carries our external id on an issue (labels cannot hold spaces)."""
    return EXTERNAL_ID_LABEL_PREFIX + re.sub(r"\s+", "_", external_id.strip())


def adf_document(text: str) -> dict[str, Any]:
    """Plain text as an Atlassian Document (v3 takes descriptions only in ADF): one paragraph per line."""
    paragraphs = [
        {"type": "paragraph", "content": [{"type": "text", "text": line}]} if line else {"type": "paragraph"}
        for line in text.split("\n")
    ]
    return {"type": "doc", "version": 1, "content": paragraphs}


def adf_text(node: Any) -> str:
    """The plain text of an Atlassian Document (paragraphs joined by newlines)."""
    if node is None:
        return ""
    if isinstance(node, str):
        return node
    if not isinstance(node, Mapping):
        return ""
    if node.get("type") == "text":
        return str(node.get("text", ""))
    parts = [adf_text(child) for child in node.get("content") or []]
    joiner = "\n" if node.get("type") == "doc" else ""
    return joiner.join(parts)


def jql_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def errors_text(body: Any) -> str:
    """Jira's {errorMessages:[...], errors:{field: message}} as one sentence."""
    if not isinstance(body, Mapping):
        return ""
    messages = [str(m) for m in body.get("errorMessages") or []]
    messages += [f"{field}: {message}" for field, message in (body.get("errors") or {}).items()]
    return "; ".join(messages)


def error_code(errors: Mapping[str, Any] | None) -> str:
    """A stable code for an issue-level failure: the first field Jira complained about."""
    if errors:
        return f"INVALID_{str(next(iter(errors))).upper()}"
    return "JIRA_ERROR"
