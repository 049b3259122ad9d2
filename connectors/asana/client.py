"""Asana connector: time tracking entries on tasks (ticket time), over REST API 1.0 with a personal access token.

Asana lists tasks per project with `modified_since`, and time tracking entries per task; there is no listing of
entries by change. So a read walks the workspace's projects, the tasks modified since the cursor and each task's
entries, a page of entries at a time (offset pages, `limit` up to 100). An entry gives the task and the project
its time is attributed to as compact objects; the connector asks for their names and for the author's email with
`opt_fields` (the project's name carries the firm's project code first, "PRJ-113 Globex Data Platform") and adds
`project` (the attributed project, else the project the task was listed in) to each entry. The cursor is the
latest `modified_at` of the tasks read, handed over with the read's last page.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import date
from typing import Any
from urllib.parse import quote

import requests

from connectors.base import (
    AuthenticationFailed,
    ConnectionTestResult,
    Connector,
    ConnectorError,
    FormField,
    ObjectSpec,
    Page,
    RejectedRecord,
    SourceRecord,
    VendorError,
    iso_utc_millis,
    objects_by_name,
    parse_utc_datetime,
)

API = "/api/1.0"
PAGE_MAX = 100  # Asana's cap for `limit`
ENTRY_FIELDS = ("duration_minutes", "entered_on", "created_at", "created_by.name", "created_by.email",
                "task.name", "attributable_to.name")  # fmt: skip
TASK_FIELDS = ("name", "modified_at", "projects.name")

# ---------------------------------------------------------------------------------------------------------------
# (unverified) assumptions, kept here and emulated the same way by connectors/asana/sandbox/:
# - Creating or editing a time tracking entry changes its task's `modified_at`, so `modified_since` on tasks finds
#   the tasks whose time changed. (Asana documents `modified_at` as "the time at which this task was last
#   modified"; whether time tracking counts is not said.) A deleted entry is not seen by an incremental read.
# - `created_by.email` is readable with `opt_fields` for members of the token owner's organisation.
# - `limit` is 1..100; a list asked for without `limit` answers "The result is too large" past about 1,000 rows.
# - Offsets are opaque and tied to the query they came from; a stale or foreign one answers 400.
# - Webhooks are not used: Asana's handshake wants X-Hook-Secret echoed in a response header and kept for the
#   deliveries' X-Hook-Signature, which the portal's webhook endpoint cannot do yet. Reads poll.
# ---------------------------------------------------------------------------------------------------------------


def _errors_text(body: Any) -> str:
    if not isinstance(body, Mapping):
        return ""
    return "; ".join(str(e.get("message", "")) for e in body.get("errors") or [] if isinstance(e, Mapping))


class AsanaConnector(Connector):
    vendor = "asana"
    label = "Asana"
    category = "ticketing"
    objects = objects_by_name(
        ObjectSpec(
            "time_tracking_entries",
            "Time tracking entries",
            page_size=PAGE_MAX,
            fields=("duration_minutes", "entered_on", "created_by.email", "task.name", "project.name"),
        ),
    )

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._me: dict[str, Any] | None = None

    @classmethod
    def form_fields(cls) -> list[FormField]:
        return [
            FormField(
                "access_token",
                "Personal access token",
                kind="secret",
                help="Created in Asana under My settings > Apps > Developer apps, by an account that sees the "
                "projects whose time is billed.",
            ),
            FormField(
                "workspace",
                "Workspace gid",
                required=False,
                help="Which workspace or organisation to read. Leave empty for the token owner's first one.",
            ),
        ]

    # -- HTTP ----------------------------------------------------------------------------------------------------
    def _get(self, path: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        response = self.session.request(
            "GET",
            f"{self.base_url}{API}/{path.lstrip('/')}",
            params=params,
            headers={
                "Authorization": f"Bearer {self.credentials.get('access_token', '')}",
                "Accept": "application/json",
            },
        )
        if response.status_code == 200:
            try:
                return response.json()
            except ValueError:
                raise VendorError(f"Asana answered GET {path} with a body that is not JSON", status=200) from None
        shown = self.session.refusal_shown(response, errors_text=_errors_text)
        if response.status_code == 401:
            raise AuthenticationFailed(
                f"Asana refused the personal access token ({shown}). Check that it was copied whole and not revoked."
            )
        if response.status_code == 402:
            raise VendorError(
                f"Asana says time tracking is not on this workspace's plan ({shown}); it needs Business or Enterprise.",
                status=402,
            )
        raise VendorError(f"Asana answered GET {path.split('?')[0]} with {shown}", status=response.status_code)

    def _pages(self, path: str, params: dict[str, Any]) -> Iterator[list[Any]]:
        """Each page of a list, following `next_page.offset`."""
        query = dict(params, limit=params.get("limit", PAGE_MAX))
        while True:
            body = self._get(path, query)
            yield body.get("data") or []
            next_page = body.get("next_page")
            if not next_page or not next_page.get("offset"):
                return
            query = dict(query, offset=next_page["offset"])

    def me(self) -> dict[str, Any]:
        if self._me is None:
            self._me = self._get("users/me", {"opt_fields": "name,email,workspaces.name"})["data"]
        return self._me

    def workspace_gid(self) -> str:
        chosen = (self.credentials.get("workspace") or "").strip()
        if chosen:
            return chosen
        workspaces = self.me().get("workspaces") or []
        if not workspaces:
            raise ConnectorError("The Asana token's owner belongs to no workspace.")
        return str(workspaces[0]["gid"])

    # -- contract ------------------------------------------------------------------------------------------------
    def test_connection(self) -> ConnectionTestResult:
        try:
            me = self.me()
            workspace = self.workspace_gid()
            names = {str(w.get("gid")): w.get("name") for w in me.get("workspaces") or []}
            projects = sum(
                len(page) for page in self._pages("projects", {"workspace": workspace, "opt_fields": "name"})
            )
        except (ConnectorError, requests.RequestException, ValueError, KeyError) as exc:
            return ConnectionTestResult.failed(exc, vendor="Asana")
        who = me.get("email") or me.get("name") or "the token owner"
        where = names.get(workspace) or workspace
        return ConnectionTestResult(
            ok=True,
            message=f"Connected to Asana workspace {where} as {who}; {projects:,} projects visible.",
            detail={"user_gid": me.get("gid"), "workspace_gid": workspace},
        )

    def read(self, object_name: str, *, since: str | None = None, page_size: int | None = None) -> Iterator[Page]:
        self.object_spec(object_name)
        size = max(1, min(page_size or PAGE_MAX, PAGE_MAX))
        modified_since = None
        if since:
            moment = parse_utc_datetime(since)
            if moment is None:
                raise ConnectorError(f"Not an ISO 8601 cursor: {since!r}")
            modified_since = iso_utc_millis(moment)
        workspace = self.workspace_gid()
        # Tasks first, all of them, so the cursor can be the newest task seen and the last page can say so.
        tasks: list[tuple[dict[str, Any], dict[str, Any]]] = []
        seen_tasks: set[str] = set()
        for projects in self._pages("projects", {"workspace": workspace, "opt_fields": "name,archived"}):
            for project in projects:
                if not project.get("gid"):
                    continue
                params = {"project": project["gid"], "opt_fields": ",".join(TASK_FIELDS)}
                if modified_since:
                    params["modified_since"] = modified_since
                for page in self._pages("tasks", params):
                    for task in page:
                        if task.get("gid") and task["gid"] not in seen_tasks:
                            seen_tasks.add(task["gid"])
                            tasks.append((task, project))
        cursor = since
        for task, _project in tasks:
            stamp = parse_utc_datetime(task.get("modified_at"))
            if stamp is not None and (cursor is None or iso_utc_millis(stamp) > cursor):
                cursor = iso_utc_millis(stamp)
        pending: list[tuple[list[SourceRecord], list[RejectedRecord]]] = []
        seen_entries: set[str] = set()
        for task, project in tasks:
            path = f"tasks/{quote(str(task['gid']), safe='')}/time_tracking_entries"
            for page in self._pages(path, {"limit": size, "opt_fields": ",".join(ENTRY_FIELDS)}):
                records, rejects = self._parse(page, task, project, seen_entries)
                if not records and not rejects:
                    continue
                # A page is handed over once the next is known, so the last one can carry the cursor.
                pending.append((records, rejects))
                if len(pending) > 1:
                    records_, rejects_ = pending.pop(0)
                    yield Page(records=records_, rejects=rejects_, cursor=None, has_more=True)
        records, rejects = pending.pop(0) if pending else ([], [])
        yield Page(records=records, rejects=rejects, cursor=cursor, has_more=False)

    @staticmethod
    def _parse(
        entries: list[Any], task: Mapping[str, Any], project: Mapping[str, Any], seen: set[str]
    ) -> tuple[list[SourceRecord], list[RejectedRecord]]:
        records: list[SourceRecord] = []
        rejects: list[RejectedRecord] = []
        modified = parse_utc_datetime(task.get("modified_at"))
        for entry in entries:
            gid = entry.get("gid") if isinstance(entry, Mapping) else None
            if not gid:
                rejects.append(
                    RejectedRecord(external_id=None, reason="The time tracking entry has no gid.", raw=entry)
                )
                continue
            if gid in seen:  # a task in two projects is listed twice
                continue
            seen.add(gid)
            minutes = entry.get("duration_minutes")
            if not isinstance(minutes, int) or isinstance(minutes, bool) or minutes < 0:
                rejects.append(RejectedRecord(gid, f"duration_minutes is not a number of minutes: {minutes!r}", entry))
                continue
            try:
                date.fromisoformat(str(entry.get("entered_on")))
            except ValueError:
                rejects.append(RejectedRecord(gid, f"entered_on is not a date: {entry.get('entered_on')!r}", entry))
                continue
            attributed = entry.get("attributable_to") or {}
            data = dict(entry)
            data["project"] = {
                "gid": attributed.get("gid") or project.get("gid"),
                "name": attributed.get("name") or project.get("name"),
            }
            data["task"] = {"gid": task.get("gid"), "name": (entry.get("task") or {}).get("name") or task.get("name")}
            data["created_by"] = dict(entry.get("created_by") or {})
            updated = iso_utc_millis(modified) if modified else str(entry.get("created_at") or "")
            data["task_modified_at"] = updated
            records.append(SourceRecord(external_id=str(gid), updated_at=updated, data=data))
        return records, rejects
