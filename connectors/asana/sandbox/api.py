"""Asana sandbox routes: Bearer tokens, `opt_fields`, offset pages (`limit` up to 100, `next_page.offset`), users,
workspaces, projects, tasks and time tracking entries, and Asana's answers for errors and rate limits."""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import math
from typing import Any
from urllib.parse import urlencode

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from connectors.asana.sandbox.state import (
    DEMO_CREDENTIALS,
    ME_GID,
    WORKSPACE_GID,
    WORKSPACE_NAME,
    AsanaError,
    AsanaState,
)
from connectors.sandbox.app import SandboxApp, json_response
from connectors.sandbox.firm import Firm

API = "/api/1.0"
PAGE_MAX = 100
UNPAGED_MAX = 1000  # past this, a list asked for without `limit` is "too large" (unverified figure)

# What each kind of object shows when no opt_fields are asked for (its compact form).
COMPACT = {
    "user": ("name",),
    "workspace": ("name",),
    "project": ("name",),
    "task": ("name", "resource_subtype"),
    "time_tracking_entry": ("duration_minutes", "entered_on", "created_by"),
}


def _select(full: dict[str, Any], fields: list[str] | None, kind: str) -> dict[str, Any]:
    """The object as `opt_fields` asks for it: gid and resource_type always, dotted paths into related objects."""
    wanted = fields if fields else list(COMPACT[kind])
    out: dict[str, Any] = {"gid": full["gid"], "resource_type": kind}
    for path in wanted:
        head, _, rest = path.partition(".")
        if head not in full:
            continue
        value = full[head]
        if isinstance(value, dict):
            inner = out.setdefault(head, {"gid": value.get("gid"), "resource_type": value.get("resource_type")})
            if rest:
                if rest in value:
                    inner[rest] = value[rest]
            else:
                inner.setdefault("name", value.get("name"))
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            existing = out.setdefault(
                head, [{"gid": v.get("gid"), "resource_type": v.get("resource_type")} for v in value]
            )
            for inner, source in zip(existing, value, strict=True):
                if rest and rest in source:
                    inner[rest] = source[rest]
                elif not rest:
                    inner.setdefault("name", source.get("name"))
        else:
            out[head] = value
    return out


class AsanaSandbox(AsanaState, SandboxApp):
    vendor = "asana"

    def routes(self) -> list[Rule]:
        return [
            Rule(f"{API}/users/me", endpoint="me", methods=["GET"]),
            Rule(f"{API}/users/<gid>", endpoint="user", methods=["GET"]),
            Rule(f"{API}/workspaces", endpoint="workspaces", methods=["GET"]),
            Rule(f"{API}/projects", endpoint="list_projects", methods=["GET"]),
            Rule(f"{API}/workspaces/<workspace>/projects", endpoint="list_projects", methods=["GET"]),
            Rule(f"{API}/projects/<gid>", endpoint="project", methods=["GET"]),
            Rule(f"{API}/tasks", endpoint="list_tasks", methods=["GET"]),
            Rule(f"{API}/projects/<project>/tasks", endpoint="list_tasks", methods=["GET"]),
            Rule(f"{API}/tasks/<gid>", endpoint="task", methods=["GET"]),
            Rule(f"{API}/tasks/<gid>/time_tracking_entries", endpoint="task_entries", methods=["GET", "POST"]),
            Rule(f"{API}/time_tracking_entries", endpoint="list_entries", methods=["GET"]),
            Rule(f"{API}/time_tracking_entries/<gid>", endpoint="entry", methods=["GET", "PUT"]),
        ]

    # -- vendor hooks ----------------------------------------------------------------------------------------------
    def authenticate(self, request: Request) -> Response | None:
        header = request.headers.get("Authorization", "")
        token = header[7:] if header.startswith("Bearer ") else ""
        if token and hmac.compare_digest(token, DEMO_CREDENTIALS["access_token"]):
            return None
        return json_response(
            {
                "errors": [
                    {
                        "message": "Not Authorized",
                        "help": "For more information on API status codes and how to handle them, read the docs on errors: https://developers.asana.com/docs/errors",
                    }
                ]
            },
            status=401,
        )

    def rate_limited_response(self, request: Request, retry_after: float) -> Response:
        body = {"errors": [{"message": "You have made too many requests recently. Please, be chill."}]}
        return json_response(body, status=429, headers={"Retry-After": str(math.ceil(retry_after))})

    def server_error_response(self, request: Request) -> Response:
        body = {"errors": [{"message": "Server Error", "phrase": "6 sad squid snuggle softly"}]}
        return json_response(body, status=500)

    def not_found_response(self, request: Request) -> Response:
        return json_response({"errors": [{"message": "Not Found"}]}, status=404)

    def method_not_allowed_response(self, request: Request) -> Response:
        return json_response({"errors": [{"message": f"No matching route for request: {request.method}"}]}, 404)

    # -- helpers ---------------------------------------------------------------------------------------------------
    @staticmethod
    def _fields(request: Request) -> list[str] | None:
        raw = ",".join(request.args.getlist("opt_fields"))
        return [f.strip() for f in raw.split(",") if f.strip()] or None

    def _page(self, request: Request, rows: list[dict[str, Any]], kind: str, render) -> Response:
        """One page of `rows` as Asana pages: `limit` 1..100, an opaque `offset`, `next_page` or null."""
        fields = self._fields(request)
        limit_text = request.args.get("limit")
        if limit_text is None:
            if len(rows) > UNPAGED_MAX:
                raise AsanaError(
                    400, "The result is too large. You should use pagination (may require specifying a workspace)!"
                )
            return json_response({"data": [_select(render(r), fields, kind) for r in rows]})
        try:
            limit = int(limit_text)
        except ValueError:
            raise AsanaError(400, f"limit: Not a valid integer: {limit_text}") from None
        if not 1 <= limit <= PAGE_MAX:
            raise AsanaError(400, f"limit: Must be between 1 and {PAGE_MAX}")
        query = sorted((k, v) for k, v in request.args.items(multi=True) if k not in ("offset", "limit"))
        start = 0
        if request.args.get("offset"):
            start = self._offset_position(request.args["offset"], query)
        chunk = rows[start : start + limit]
        data = [_select(render(r), fields, kind) for r in chunk]
        # Malformed rows are time tracking entries, the records a read hands over (not the lists walked to them).
        bad = self.malformed_positions(len(data)) if kind == "time_tracking_entry" else set()
        for position in bad:
            data[position] = self._malformed(data[position], kind)
        next_page = None
        if start + limit < len(rows):
            token = self._offset_token(start + limit, query)
            params = urlencode([*query, ("limit", limit), ("offset", token)])
            path = f"{request.path[len(API) :]}?{params}"
            next_page = {"offset": token, "path": path, "uri": f"{request.host_url.rstrip('/')}{API}{path}"}
        return json_response({"data": data, "next_page": next_page})

    @staticmethod
    def _offset_token(position: int, query: list) -> str:
        raw = json.dumps({"p": position, "q": hash(tuple(query)) & 0xFFFFFFFF}).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @staticmethod
    def _offset_position(token: str, query: list) -> int:
        try:
            raw = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
            position = int(raw["p"])
        except (ValueError, KeyError, TypeError, binascii.Error):
            raise AsanaError(400, "offset: Your pagination token is invalid.") from None
        if raw.get("q") != hash(tuple(query)) & 0xFFFFFFFF:
            raise AsanaError(400, "offset: Your pagination token does not match the request.")
        return position

    @staticmethod
    def _malformed(row: dict[str, Any], kind: str) -> dict[str, Any]:
        broken = dict(row)
        if int(row["gid"]) % 2:
            broken["duration_minutes"] = "about an hour"
        else:
            broken["entered_on"] = "last Friday"
        return broken

    def _user(self, gid: str | None) -> dict[str, Any] | None:
        if gid is None:
            return None
        user = self.users[gid]
        return {**user, "resource_type": "user"}

    def _project(self, gid: str) -> dict[str, Any]:
        project = self.projects[gid]
        return {
            **project,
            "resource_type": "project",
            "owner": self._user(project["owner"]),
            "workspace": {"gid": WORKSPACE_GID, "resource_type": "workspace", "name": WORKSPACE_NAME},
        }

    def _task(self, gid: str) -> dict[str, Any]:
        task = self.tasks[gid]
        return {
            **task,
            "resource_type": "task",
            "resource_subtype": "default_task",
            "assignee": self._user(task["assignee"]),
            "projects": [
                {"gid": p, "resource_type": "project", "name": self.projects[p]["name"]} for p in task["projects"]
            ],
            "workspace": {"gid": WORKSPACE_GID, "resource_type": "workspace", "name": WORKSPACE_NAME},
        }

    def _entry(self, entry: dict[str, Any]) -> dict[str, Any]:
        task = self.tasks[entry["task"]]
        project = self.projects.get(entry["attributable_to"])
        return {
            **entry,
            "resource_type": "time_tracking_entry",
            "task": {"gid": task["gid"], "resource_type": "task", "name": task["name"]},
            "created_by": self._user(entry["created_by"]),
            "attributable_to": {"gid": project["gid"], "resource_type": "project", "name": project["name"]}
            if project
            else None,
        }

    def _answer(self, handler, *args) -> Response:
        try:
            with self.lock:
                return handler(*args)
        except AsanaError as error:
            return json_response(error.body(), status=error.status)

    # -- endpoints ------------------------------------------------------------------------------------------------
    def me(self, request: Request) -> Response:
        workspace = {"gid": WORKSPACE_GID, "resource_type": "workspace", "name": WORKSPACE_NAME}
        full = {**self._user(ME_GID), "workspaces": [workspace], "photo": None}
        return json_response({"data": _select(full, self._fields(request) or ["name", "email", "workspaces"], "user")})

    def user(self, request: Request, gid: str) -> Response:
        if gid not in self.users:
            return json_response({"errors": [{"message": f"user: Unknown object: {gid}"}]}, status=404)
        return json_response({"data": _select(self._user(gid), self._fields(request) or ["name", "email"], "user")})

    def workspaces(self, request: Request) -> Response:
        rows = [{"gid": WORKSPACE_GID, "name": WORKSPACE_NAME}]
        return self._answer(self._page, request, rows, "workspace", lambda r: {**r, "is_organization": True})

    def list_projects(self, request: Request, workspace: str | None = None) -> Response:
        workspace = workspace or request.args.get("workspace")
        if workspace is None:
            return json_response({"errors": [{"message": "workspace: Missing input"}]}, status=400)
        rows = [] if workspace != WORKSPACE_GID else [self.projects[g] for g in sorted(self.projects)]
        if request.args.get("archived") in ("true", "false"):
            rows = [r for r in rows if r["archived"] == (request.args["archived"] == "true")]
        return self._answer(self._page, request, rows, "project", lambda r: self._project(r["gid"]))

    def project(self, request: Request, gid: str) -> Response:
        if gid not in self.projects:
            return json_response({"errors": [{"message": f"project: Unknown object: {gid}"}]}, status=404)
        return json_response({"data": _select(self._project(gid), self._fields(request) or ["name"], "project")})

    def list_tasks(self, request: Request, project: str | None = None) -> Response:
        project = project or request.args.get("project")
        if project is None:
            body = {
                "errors": [
                    {
                        "message": "Must specify exactly one of project, tag, section, user task list, or assignee + workspace"
                    }
                ]
            }
            return json_response(body, status=400)
        if project not in self.projects:
            return json_response({"errors": [{"message": f"project: Unknown object: {project}"}]}, status=404)

        def listing() -> Response:
            since = request.args.get("modified_since")
            try:
                rows = self.tasks_of(project, since)
            except ValueError:
                raise AsanaError(400, f"modified_since: Invalid date value: {since}") from None
            return self._page(request, rows, "task", lambda r: self._task(r["gid"]))

        return self._answer(listing)

    def task(self, request: Request, gid: str) -> Response:
        if gid not in self.tasks:
            return json_response({"errors": [{"message": f"task: Unknown object: {gid}"}]}, status=404)
        fields = self._fields(request) or ["name", "projects", "assignee", "modified_at", "created_at", "completed"]
        return json_response({"data": _select(self._task(gid), fields, "task")})

    def task_entries(self, request: Request, gid: str) -> Response:
        if request.method == "POST":
            return self._answer(self._create_entry, request, gid)
        if gid not in self.tasks:
            return json_response({"errors": [{"message": f"task: Unknown object: {gid}"}]}, status=404)
        return self._answer(lambda: self._page(request, self.entries_of(gid), "time_tracking_entry", self._entry))

    def _create_entry(self, request: Request, gid: str) -> Response:
        entry = self.entry_create(gid, request.get_json(force=True, silent=True))
        fields = self._fields(request) or ["duration_minutes", "entered_on", "created_by", "task", "created_at"]
        return json_response({"data": _select(self._entry(entry), fields, "time_tracking_entry")}, status=201)

    def list_entries(self, request: Request) -> Response:
        task = request.args.get("task")
        if task is None:
            return json_response({"errors": [{"message": "task: Missing input"}]}, status=400)
        return self._answer(lambda: self._page(request, self.entries_of(task), "time_tracking_entry", self._entry))

    def entry(self, request: Request, gid: str) -> Response:
        def answer() -> Response:
            if request.method == "PUT":
                found = self.entry_update(gid, request.get_json(force=True, silent=True))
            else:
                found = self.entries.get(gid)
                if found is None:
                    raise AsanaError(404, f"time_tracking_entry: Unknown object: {gid}")
            fields = self._fields(request) or ["duration_minutes", "entered_on", "created_by", "task", "created_at"]
            return json_response({"data": _select(self._entry(found), fields, "time_tracking_entry")})

        return self._answer(answer)


def create_app(firm: Firm | None = None) -> AsanaSandbox:
    return AsanaSandbox(firm)
