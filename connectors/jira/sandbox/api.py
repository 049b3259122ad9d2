"""Jira sandbox routes: basic auth, rate-limit answers, server info, fields, projects, search and issues (v2 and v3)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from connectors.jira.client import BULK_CREATE_MAX, SEARCH_PAGE_MAX
from connectors.jira.records import adf_text
from connectors.jira.sandbox.query import JqlEvaluation, JqlParser
from connectors.jira.sandbox.state import (
    ACCOUNT_ID,
    DEMO_CREDENTIALS,
    FIELD_DEFS,
    IDS_ONLY_PAGE_MAX,
    ISSUE_TYPES,
    PRIORITIES,
    PROJECTS,
    STATUS_CATEGORY_IDS,
    STATUSES,
    USER_TIME_ZONE,
    JiraError,
    JiraState,
    _now,
)
from connectors.jira.sandbox.worklogs import JiraWorklogs, issue_missing
from connectors.sandbox.app import SandboxApp, json_response
from connectors.sandbox.firm import Firm


class JiraSandbox(JiraState, JiraWorklogs, JqlEvaluation, SandboxApp):
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
                Rule(
                    f"{base}/issue/<key>/worklog", endpoint="issue_worklogs", methods=["GET", "POST"], defaults=defaults
                ),  # fmt: skip
                Rule(f"{base}/worklog/updated", endpoint="worklogs_updated", methods=["GET"], defaults=defaults),
                Rule(f"{base}/worklog/list", endpoint="worklogs_list", methods=["POST"], defaults=defaults),
            ]
        return rules

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

    def issue(self, request: Request, version: str, key: str) -> Response:
        if (refused := self._refused(request)) is not None:
            return refused
        with self.lock:
            issue = self._find(key)
            if issue is None:
                return issue_missing()
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


def create_app(firm: Firm | None = None) -> JiraSandbox:
    return JiraSandbox(firm)
