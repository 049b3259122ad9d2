"""The Jira sandbox's site: projects and issues seeded from the firm, and issue creation with Jira's checks."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

from connectors.jira.records import adf_document

DEMO_CREDENTIALS = {
    "email": "integration@haldenrowe.example",
    "api_token": "ATATT3xFfGF0sgpDemoToken7f2c9e41b8d6a3057c1e",
    "jql": "",
}
ACCOUNT_ID = "712020:5b1f0c2e-8a4d-4c7e-9f3a-6d2b1e0c9a71"
USER_TIME_ZONE = "America/New_York"  # not UTC on purpose: JQL dates are read in the user's zone
SEED_EPOCH = datetime(2024, 1, 2, 14, 0, 0, tzinfo=UTC)
IDS_ONLY_PAGE_MAX = 5000
PROJECTS = {
    "DEL": ("10000", "Delivery"),
    "RES": ("10001", "Resource Planning"),
    "OPS": ("10002", "Internal Operations"),
    "SUP": ("10003", "Client Support"),
}
ISSUE_TYPES = {"Task": "10001", "Story": "10002", "Bug": "10003", "Epic": "10004"}
STATUSES = {
    "To Do": ("10000", "new", "To Do", "blue-gray"),
    "In Progress": ("3", "indeterminate", "In Progress", "yellow"),
    "Done": ("10001", "done", "Done", "green"),
}
STATUS_CATEGORY_IDS = {"new": 2, "indeterminate": 4, "done": 3}
PRIORITIES = {"Highest": "1", "High": "2", "Medium": "3", "Low": "4", "Lowest": "5"}
FIELD_DEFS = {
    "summary": ("Summary", "string"),
    "description": ("Description", "string"),
    "status": ("Status", "status"),
    "project": ("Project", "project"),
    "issuetype": ("Issue Type", "issuetype"),
    "labels": ("Labels", "array"),
    "priority": ("Priority", "priority"),
    "assignee": ("Assignee", "user"),
    "reporter": ("Reporter", "user"),
    "duedate": ("Due date", "date"),
    "created": ("Created", "datetime"),
    "updated": ("Updated", "datetime"),
}
SETTABLE = frozenset({"project", "issuetype", "summary", "description", "labels", "priority", "duedate", "assignee"})


class JiraError(Exception):
    def __init__(self, status: int, messages: list[str] | None = None, errors: dict[str, str] | None = None):
        super().__init__("; ".join(messages or []) or str(errors))
        self.status, self.messages, self.errors = status, messages or [], errors or {}

    def body(self) -> dict[str, Any]:
        return {"errorMessages": self.messages, "errors": self.errors}


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


class JiraState:
    """The site's issues and their writes; `self.lock` guards them."""

    def reset_state(self) -> None:
        self.issues: dict[int, dict[str, Any]] = {}
        self.counters = {key: 0 for key in PROJECTS}
        self._next_id = 10000
        self.users: dict[str, dict[str, Any]] = {}
        for person in self.firm.people():
            if person["level"] in ("Manager", "Senior Manager", "Director", "Partner") and person["status"] == "Active":
                digest = hashlib.sha1(person["work_email"].encode()).hexdigest()  # noqa: S324 -- an id, not security
                account_id = f"712020:{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"
                self.users[person["work_email"]] = {"accountId": account_id, "displayName": person["display_name"]}
        minute = 0
        for project in self.firm.projects():
            code = project["code"]
            done = project["id"] <= 30
            for project_key, summary, labels in (
                ("DEL", f"Kick off {code}: {project['name']}", [code, "kickoff"]),
                ("RES", f"Staff {code}: {project['name']}", [code, "staffing"]),
            ):
                minute += 7
                created = SEED_EPOCH + timedelta(minutes=minute)
                status = "Done" if done else ("In Progress" if project["id"] % 3 else "To Do")
                self._insert(
                    {
                        "project": project_key,
                        "issuetype": "Task",
                        "summary": summary,
                        "description": adf_document(
                            f"{project['billing_terms']} engagement for {project['customer_name']}."
                        ),
                        "labels": labels,
                        "priority": "Medium",
                        "duedate": project["start_date"],
                        "assignee": self.users.get(project["manager_email"], {}).get("accountId"),
                        "status": status,
                    },
                    created=created,
                    # Updates land out of creation order (and several in one minute) so ordering by `updated` counts.
                    updated=created + timedelta(minutes=(project["id"] * 13) % 40, seconds=project["id"] % 50),
                )
        for index, person in enumerate(self.firm.people()[:20]):
            minute += 5
            created = SEED_EPOCH + timedelta(minutes=minute)
            self._insert(
                {
                    "project": "OPS",
                    "issuetype": "Task",
                    "summary": f"Laptop and access for {person['display_name']}",
                    "description": None,
                    "labels": ["onboarding"],
                    "priority": "Low",
                    "duedate": None,
                    "assignee": None,
                    "status": "Done" if index % 2 else "To Do",
                },
                created=created,
                updated=created,
            )
        self.seed_worklogs()

    def seed(self, volumes: dict[str, int]) -> dict[str, int]:
        unknown = set(volumes) - {"issues"}
        if unknown:
            raise ValueError(f"the jira sandbox seeds only issues, not {sorted(unknown)}")
        wanted = volumes.get("issues", 0)
        moment = SEED_EPOCH + timedelta(days=30)
        while len(self.issues) < wanted:
            moment += timedelta(seconds=17)
            self._insert(
                {
                    "project": "OPS",
                    "issuetype": "Task",
                    "summary": f"Seeded operations task {len(self.issues) + 1}",
                    "description": None,
                    "labels": ["seeded"],
                    "priority": "Medium",
                    "duedate": None,
                    "assignee": None,
                    "status": "To Do",
                },
                created=moment,
                updated=moment,
            )
        return {"issues": len(self.issues)}

    def _insert(self, values: dict[str, Any], *, created: datetime, updated: datetime) -> dict[str, Any]:
        self._next_id += 1
        self.counters[values["project"]] += 1
        issue = {
            "id": self._next_id,
            "key": f"{values['project']}-{self.counters[values['project']]}",
            "reporter": ACCOUNT_ID,
            "created": created,
            "updated": updated,
            **values,
        }
        self.issues[issue["id"]] = issue
        return issue

    def _find(self, id_or_key: str) -> dict[str, Any] | None:
        if id_or_key.isdigit():
            return self.issues.get(int(id_or_key))
        wanted = id_or_key.upper()
        return next((i for i in self.issues.values() if i["key"] == wanted), None)

    def _create(self, body: Any, version: str) -> dict[str, Any]:
        if not isinstance(body, dict) or not isinstance(body.get("fields"), dict):
            raise JiraError(400, ["The request must hold a fields object."])
        values = self._validated(body["fields"], version, creating=True)
        now = _now()
        return self._insert({"status": "To Do", **values}, created=now, updated=now)

    def _validated(self, fields: dict[str, Any], version: str, *, creating: bool) -> dict[str, Any]:
        errors: dict[str, str] = {}
        values: dict[str, Any] = {}
        for name, value in fields.items():
            if name not in SETTABLE or (name == "project" and not creating):
                errors[name] = f"Field '{name}' cannot be set. It is not on the appropriate screen, or unknown."
            elif name == "project":
                wanted = value if isinstance(value, dict) else {}
                key = next(
                    (
                        k
                        for k, (pid, _n) in PROJECTS.items()
                        if str(wanted.get("key", "")).upper() == k or str(wanted.get("id")) == pid
                    ),
                    None,
                )
                if key is None:
                    errors["project"] = "Specify a valid project ID or key"
                else:
                    values["project"] = key
            elif name == "issuetype":
                wanted = value if isinstance(value, dict) else {}
                issue_type = next(
                    (t for t, tid in ISSUE_TYPES.items() if wanted.get("name") == t or str(wanted.get("id")) == tid),
                    None,
                )
                if issue_type is None:
                    errors["issuetype"] = "Specify a valid issue type"
                else:
                    values["issuetype"] = issue_type
            elif name == "summary":
                text = value if isinstance(value, str) else ""
                if not text.strip():
                    errors["summary"] = "You must specify a summary of the issue."
                elif len(text) > 255:
                    errors["summary"] = "Summary must be less than 255 characters."
                elif "\n" in text or "\r" in text:
                    errors["summary"] = "The summary is invalid because it contains newline characters."
                else:
                    values["summary"] = text
            elif name == "description":
                if value is None:
                    values["description"] = None
                elif version == "2" and isinstance(value, str):
                    values["description"] = adf_document(value)
                elif version != "2" and isinstance(value, dict) and value.get("type") == "doc":
                    values["description"] = value
                else:
                    errors["description"] = (
                        "Operation value must be an Atlassian Document (see the Atlassian Document Format)"
                        if version != "2"
                        else "Operation value must be a string"
                    )
            elif name == "labels":
                labels = value if isinstance(value, list) else None
                bad = next(
                    (
                        label
                        for label in labels or []
                        if not isinstance(label, str) or re.search(r"\s", label) or not label
                    ),
                    None,
                )
                if labels is None:
                    errors["labels"] = "Labels must be a list of strings."
                elif bad is not None:
                    errors["labels"] = f"The label '{bad}' contains spaces which is invalid."
                elif any(len(label) > 255 for label in labels):
                    errors["labels"] = "The label must not exceed 255 characters."
                else:
                    values["labels"] = list(dict.fromkeys(labels))
            elif name == "priority":
                wanted = value if isinstance(value, dict) else {}
                priority = next(
                    (p for p, pid in PRIORITIES.items() if wanted.get("name") == p or str(wanted.get("id")) == pid),
                    None,
                )
                if priority is None:
                    errors["priority"] = "Specify a valid priority"
                else:
                    values["priority"] = priority
            elif name == "duedate":
                try:
                    values["duedate"] = date.fromisoformat(value).isoformat() if value else None
                except (TypeError, ValueError):
                    errors["duedate"] = f"Error parsing date string: {value}"
            elif name == "assignee":
                account = (value or {}).get("accountId") if isinstance(value, dict) or value is None else None
                known = {u["accountId"] for u in self.users.values()} | {ACCOUNT_ID}
                if value is not None and account not in known:
                    errors["assignee"] = f"User '{account}' cannot be assigned issues."
                else:
                    values["assignee"] = account
        if creating:
            for name, message in (
                ("project", "Specify a valid project ID or key"),
                ("issuetype", "Specify a valid issue type"),
                ("summary", "You must specify a summary of the issue."),
            ):
                if name not in fields and name not in errors:
                    errors[name] = message
            values.setdefault("priority", "Medium")
            values.setdefault("labels", [])
        if errors:
            raise JiraError(400, [], errors)
        return values

    # -- test helpers --------------------------------------------------------------------------------------------
    def issue_count(self) -> int:
        with self.lock:
            return len(self.issues)
