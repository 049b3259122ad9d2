"""Jira Cloud sandbox: a local WSGI emulator of the REST subset the connector and the `jira` library use.

Basic auth (e-mail + API token), serverInfo / myself / field / project, enhanced JQL search (`search/jql`, GET
and POST, nextPageToken pages) over a JQL subset, issue create (single and bulk), get and edit, under both
/rest/api/3 (descriptions in Atlassian Document Format) and /rest/api/2 (plain text), which the `jira` library
uses by default. Rate limits answer 429 with Retry-After and X-RateLimit-* headers. Seeded from the shared Firm:
a Delivery (DEL) kick-off and a Resource Planning (RES) staffing issue per project, and Operations (OPS) issues.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from connectors.jira.client import BULK_CREATE_MAX, SEARCH_PAGE_MAX, adf_document, adf_text
from connectors.sandbox.app import SandboxApp, json_response
from connectors.sandbox.firm import Firm

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


# ---------------------------------------------------------------------------------------------------------------
# JQL: clauses joined by AND / OR / NOT and parentheses, then ORDER BY.
# ---------------------------------------------------------------------------------------------------------------

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


class JiraSandbox(SandboxApp):
    vendor = "jira"

    def __init__(self, firm: Firm | None = None):
        self.zone = ZoneInfo(USER_TIME_ZONE)
        super().__init__(firm)

    def routes(self) -> list[Rule]:
        rules = []
        for version in ("2", "3", "latest"):
            base = f"/rest/api/{version}"
            defaults = {"version": "2" if version == "2" else "3"}
            rules += [
                Rule(f"{base}/serverInfo", endpoint="server_info", methods=["GET"], defaults=defaults),
                Rule(f"{base}/myself", endpoint="myself", methods=["GET"], defaults=defaults),
                Rule(f"{base}/field", endpoint="fields", methods=["GET"], defaults=defaults),
                Rule(f"{base}/project", endpoint="projects", methods=["GET"], defaults=defaults),
                Rule(f"{base}/project/<key>", endpoint="project", methods=["GET"], defaults=defaults),
                Rule(f"{base}/search/jql", endpoint="search", methods=["GET", "POST"], defaults=defaults),
                Rule(f"{base}/issue", endpoint="create_issue", methods=["POST"], defaults=defaults),
                Rule(f"{base}/issue/bulk", endpoint="bulk_create", methods=["POST"], defaults=defaults),
                Rule(f"{base}/issue/<key>", endpoint="issue", methods=["GET", "PUT"], defaults=defaults),
            ]
        return rules

    # -- state ---------------------------------------------------------------------------------------------------

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

    # -- vendor hooks ----------------------------------------------------------------------------------------------

    def rate_limited_response(self, request: Request, retry_after: float) -> Response:
        limit = (self.faults.faults.get("rate_limit") or {}).get("calls", 0)
        reset = (datetime.now(UTC) + timedelta(seconds=retry_after)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        headers = {
            "Retry-After": str(math.ceil(retry_after)),
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": reset,
            "RateLimit-Reason": "jira-burst-based",
        }
        return json_response({"errorMessages": ["Rate limit exceeded."], "errors": {}}, status=429, headers=headers)

    def server_error_response(self, request: Request) -> Response:
        body = {"errorMessages": ["Internal server error (injected by the sandbox)."], "errors": {}}
        return json_response(body, status=500)

    def not_found_response(self, request: Request) -> Response:
        return json_response({"errorMessages": [f"{request.path} does not exist."], "errors": {}}, status=404)

    def method_not_allowed_response(self, request: Request) -> Response:
        body = {"errorMessages": [f"{request.method} is not supported on {request.path}."], "errors": {}}
        return json_response(body, status=405)

    def _error(self, error: JiraError) -> Response:
        return json_response(error.body(), status=error.status)

    def _authenticated(self, request: Request) -> bool | None:
        """True for the demo account, False for wrong credentials, None when none were sent."""
        header = request.headers.get("Authorization", "")
        if not header:
            return None
        if not header.startswith("Basic "):
            return False
        try:
            email, _, token = base64.b64decode(header[6:]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        return hmac.compare_digest(email, DEMO_CREDENTIALS["email"]) and hmac.compare_digest(
            token, DEMO_CREDENTIALS["api_token"]
        )

    def _refused(self, request: Request, *, anonymous_ok: bool = False) -> Response | None:
        state = self._authenticated(request)
        if state is True or (state is None and anonymous_ok):
            return None
        body = {"errorMessages": ["Client must be authenticated to access this resource."], "errors": {}}
        return json_response(body, status=401, headers={"WWW-Authenticate": 'Basic realm="protected-area"'})

    # -- rendering -----------------------------------------------------------------------------------------------

    def _stamp(self, moment: datetime) -> str:
        """Jira's timestamp, in the user's zone: 2024-01-02T09:00:00.000-0500."""
        local = moment.astimezone(self.zone)
        return local.strftime("%Y-%m-%dT%H:%M:%S.") + f"{local.microsecond // 1000:03d}" + local.strftime("%z")

    def _user(self, base: str, account_id: str | None) -> dict[str, Any] | None:
        if not account_id:
            return None
        if account_id == ACCOUNT_ID:
            name = "SysGenPro Integration"
        else:
            name = next((u["displayName"] for u in self.users.values() if u["accountId"] == account_id), "Former user")
        return {
            "self": f"{base}/user?accountId={account_id}",
            "accountId": account_id,
            "displayName": name,
            "active": True,
            "timeZone": USER_TIME_ZONE,
            "accountType": "atlassian",
        }

    def _project(self, base: str, key: str) -> dict[str, Any]:
        project_id, name = PROJECTS[key]
        return {
            "self": f"{base}/project/{project_id}",
            "id": project_id,
            "key": key,
            "name": name,
            "projectTypeKey": "software",
            "simplified": False,
            "avatarUrls": {},
        }

    def _render_field(self, base: str, name: str, issue: dict[str, Any], version: str) -> Any:
        value = issue.get(name)
        if name in ("created", "updated"):
            return self._stamp(value)
        if name == "project":
            return self._project(base, value)
        if name == "issuetype":
            return {
                "self": f"{base}/issuetype/{ISSUE_TYPES[value]}",
                "id": ISSUE_TYPES[value],
                "name": value,
                "subtask": False,
                "hierarchyLevel": 1 if value == "Epic" else 0,
            }
        if name == "status":
            status_id, category, label, colour = STATUSES[value]
            return {
                "self": f"{base}/status/{status_id}",
                "id": status_id,
                "name": label,
                "statusCategory": {
                    "self": f"{base}/statuscategory/{STATUS_CATEGORY_IDS[category]}",
                    "id": STATUS_CATEGORY_IDS[category],
                    "key": category,
                    "colorName": colour,
                    "name": {"new": "To Do", "indeterminate": "In Progress", "done": "Done"}[category],
                },
            }
        if name == "priority":
            return (
                {"self": f"{base}/priority/{PRIORITIES[value]}", "id": PRIORITIES[value], "name": value}
                if value
                else None
            )
        if name in ("assignee", "reporter"):
            return self._user(base, value)
        if name == "description":
            if value is None:
                return None
            return adf_text(value) if version == "2" else value
        if name == "labels":
            return list(value or [])
        return value

    def _render(
        self, request: Request, issue: dict[str, Any], version: str, fields: list[str] | None
    ) -> dict[str, Any]:
        base = f"{request.host_url.rstrip('/')}/rest/api/{version}"
        out: dict[str, Any] = {
            "expand": "renderedFields,names,schema,operations,editmeta,changelog,versionedRepresentations",
            "id": str(issue["id"]),
            "self": f"{base}/issue/{issue['id']}",
            "key": issue["key"],
        }
        if fields:
            out["fields"] = {name: self._render_field(base, name, issue, version) for name in fields}
        return out

    @staticmethod
    def _wanted_fields(raw: list[str] | str | None, *, default_all: bool) -> list[str]:
        """The `fields` parameter: names, *all / *navigable, -name exclusions; ids only when absent."""
        if raw is None:
            return list(FIELD_DEFS) if default_all else []
        items = raw if isinstance(raw, list) else [raw]
        names = [part.strip() for item in items for part in str(item).split(",") if part.strip()]
        wanted: list[str] = []
        for name in names:
            if name in ("*all", "*navigable"):
                wanted += [f for f in FIELD_DEFS if f not in wanted]
            elif not name.startswith("-") and name in FIELD_DEFS and name not in wanted:
                wanted.append(name)
        excluded = {name[1:] for name in names if name.startswith("-")}
        return [f for f in wanted if f not in excluded]

    # -- endpoints: instance ---------------------------------------------------------------------------------------

    def server_info(self, request: Request, version: str) -> Response:
        if (refused := self._refused(request, anonymous_ok=True)) is not None:
            return refused
        return json_response(
            {
                "baseUrl": request.host_url.rstrip("/"),
                "displayUrl": request.host_url.rstrip("/"),
                "version": "1001.0.0-SNAPSHOT",
                "versionNumbers": [1001, 0, 0],
                "deploymentType": "Cloud",
                "buildNumber": 100285,
                "buildDate": "2025-01-06T00:00:00.000+0000",
                "serverTime": self._stamp(_now()),
                "scmInfo": "sysgenpro-sandbox",
                "serverTitle": "Jira",
                "defaultLocale": {"locale": "en_US"},
                "serverTimeZone": "Etc/UTC",
            }
        )

    def myself(self, request: Request, version: str) -> Response:
        if (refused := self._refused(request)) is not None:
            return refused
        base = f"{request.host_url.rstrip('/')}/rest/api/{version}"
        return json_response(
            {
                **self._user(base, ACCOUNT_ID),
                "emailAddress": DEMO_CREDENTIALS["email"],
                "locale": "en_US",
                "groups": {"size": 1, "items": []},
                "applicationRoles": {"size": 1, "items": []},
            }
        )

    def fields(self, request: Request, version: str) -> Response:
        if (refused := self._refused(request)) is not None:
            return refused
        return json_response(
            [
                {
                    "id": field_id,
                    "key": field_id,
                    "name": name,
                    "custom": False,
                    "orderable": field_id not in ("created", "updated", "status"),
                    "navigable": True,
                    "searchable": True,
                    "clauseNames": [field_id],
                    "schema": {"type": kind, "system": field_id},
                }
                for field_id, (name, kind) in FIELD_DEFS.items()
            ]
        )

    def projects(self, request: Request, version: str) -> Response:
        if (refused := self._refused(request)) is not None:
            return refused
        base = f"{request.host_url.rstrip('/')}/rest/api/{version}"
        return json_response([self._project(base, key) for key in PROJECTS])

    def project(self, request: Request, version: str, key: str) -> Response:
        if (refused := self._refused(request)) is not None:
            return refused
        found = next((k for k, (pid, _name) in PROJECTS.items() if key.upper() == k or key == pid), None)
        if found is None:
            return json_response({"errorMessages": [f"No project could be found with key '{key}'."], "errors": {}}, 404)
        return json_response(self._project(f"{request.host_url.rstrip('/')}/rest/api/{version}", found))

    # -- endpoints: search ---------------------------------------------------------------------------------------

    def search(self, request: Request, version: str) -> Response:
        if (refused := self._refused(request)) is not None:
            return refused
        if request.method == "POST":
            body = request.get_json(force=True, silent=True)
            if not isinstance(body, dict):
                return self._error(JiraError(400, ["The request body must be a JSON object."]))
            params = body
        else:
            params = {key: request.args.get(key) for key in request.args if key != "fields"}
            if "fields" in request.args:
                params["fields"] = request.args.getlist("fields")
        try:
            return self._search(request, version, params)
        except JiraError as error:
            return self._error(error)

    def _search(self, request: Request, version: str, params: dict[str, Any]) -> Response:
        jql = str(params.get("jql") or "")
        fields = self._wanted_fields(params.get("fields"), default_all=False)
        cap = SEARCH_PAGE_MAX if fields else IDS_ONLY_PAGE_MAX
        try:
            max_results = min(int(params.get("maxResults") or 50), cap)
        except (TypeError, ValueError):
            raise JiraError(400, ["maxResults must be a number."]) from None
        if max_results < 1:
            raise JiraError(400, ["maxResults must be at least 1."])
        fingerprint = hashlib.sha256(f"{jql}|{','.join(fields)}".encode()).hexdigest()[:16]
        offset = 0
        token = params.get("nextPageToken")
        if token:
            try:
                seen, _, position = base64.urlsafe_b64decode(str(token).encode()).decode().partition(":")
                offset = int(position)
            except (ValueError, UnicodeDecodeError):
                seen = ""
            if seen != fingerprint:
                raise JiraError(400, ["The provided next page token is invalid or does not match the query."])
        where, order = JqlParser(jql).parse()
        with self.lock:
            matched = [issue for issue in self.issues.values() if self._matches(where, issue)]
            if not order:
                order = [("key", True)]  # Jira's default: newest key first
            for field, descending in reversed(order):
                matched.sort(key=lambda issue, f=field: self._sort_key(f, issue), reverse=descending)
            page = matched[offset : offset + max_results]
            rendered = [self._render(request, issue, version, fields) for issue in page]
        for position in self.malformed_positions(len(rendered)):
            if position % 2 == 0 or "updated" not in (rendered[position].get("fields") or {}):
                rendered[position].pop("id", None)
            else:
                rendered[position]["fields"]["updated"] = "last Tuesday"
        is_last = offset + len(page) >= len(matched)
        body: dict[str, Any] = {"issues": rendered, "isLast": is_last}
        if not is_last:
            next_token = f"{fingerprint}:{offset + len(page)}"
            body["nextPageToken"] = base64.urlsafe_b64encode(next_token.encode()).decode()
        return json_response(body)

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

    # -- endpoints: issues ---------------------------------------------------------------------------------------

    def create_issue(self, request: Request, version: str) -> Response:
        if (refused := self._refused(request)) is not None:
            return refused
        body = request.get_json(force=True, silent=True)
        try:
            with self.lock:
                issue = self._create(body, version)
        except JiraError as error:
            return self._error(error)
        base = f"{request.host_url.rstrip('/')}/rest/api/{version}"
        return json_response({"id": str(issue["id"]), "key": issue["key"], "self": f"{base}/issue/{issue['id']}"}, 201)

    def bulk_create(self, request: Request, version: str) -> Response:
        if (refused := self._refused(request)) is not None:
            return refused
        body = request.get_json(force=True, silent=True)
        updates = body.get("issueUpdates") if isinstance(body, dict) else None
        if not isinstance(updates, list) or not updates:
            return self._error(JiraError(400, ["issueUpdates must be a non-empty list."]))
        if len(updates) > BULK_CREATE_MAX:
            return self._error(JiraError(400, [f"You can create at most {BULK_CREATE_MAX} issues in one request."]))
        base = f"{request.host_url.rstrip('/')}/rest/api/{version}"
        created, errors = [], []
        with self.lock:
            for number, update in enumerate(updates):
                try:
                    issue = self._create(update, version)
                except JiraError as error:
                    errors.append(
                        {"status": error.status, "elementErrors": error.body(), "failedElementNumber": number}
                    )
                    continue
                created.append({"id": str(issue["id"]), "key": issue["key"], "self": f"{base}/issue/{issue['id']}"})
        return json_response({"issues": created, "errors": errors}, status=201 if created else 400)

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

    def issue(self, request: Request, version: str, key: str) -> Response:
        if (refused := self._refused(request)) is not None:
            return refused
        with self.lock:
            issue = self._find(key)
            if issue is None:
                body = {
                    "errorMessages": ["Issue does not exist or you do not have permission to see it."],
                    "errors": {},
                }
                return json_response(body, status=404)
            if request.method == "GET":
                fields = self._wanted_fields(request.args.getlist("fields") or None, default_all=True)
                return json_response(self._render(request, issue, version, fields))
            body = request.get_json(force=True, silent=True)
            if not isinstance(body, dict):
                return self._error(JiraError(400, ["The request body must be a JSON object."]))
            try:
                values = self._validated(body.get("fields") or {}, version, creating=False)
                labels = list(values.get("labels", issue.get("labels") or []))
                for operation in (body.get("update") or {}).get("labels") or []:
                    if "add" in operation and operation["add"] not in labels:
                        labels.append(operation["add"])
                    if "remove" in operation and operation["remove"] in labels:
                        labels.remove(operation["remove"])
                    if "set" in operation:
                        labels = list(operation["set"])
            except JiraError as error:
                return self._error(error)
            issue.update(values)
            issue["labels"] = labels
            issue["updated"] = _now()
        return Response(status=204)

    # -- test helpers --------------------------------------------------------------------------------------------

    def issue_count(self) -> int:
        with self.lock:
            return len(self.issues)


def create_app(firm: Firm | None = None) -> JiraSandbox:
    return JiraSandbox(firm)
