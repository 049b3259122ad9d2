"""The Jira sandbox's worklogs: the firm's support tickets (project SUP) and the time logged on them.

Worklogs are read as Jira Cloud offers them for integrations: `worklog/updated?since=<ms>` lists the ids of
worklogs changed after a moment (1,000 a page, `nextPage` and `lastPage`), `worklog/list` returns up to 1,000 of
them by id; an issue's own worklogs are listed and added under `issue/<key>/worklog`.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from werkzeug.wrappers import Request, Response

from connectors.jira.records import adf_document, adf_text
from connectors.jira.sandbox.state import JiraError, _now
from connectors.sandbox.app import json_response
from connectors.sandbox.tickets import support_tickets, work_logs

WORKLOG_PAGE = 1000  # ids per worklog/updated page and per worklog/list call
WORKLOG_BASE = 100000


def issue_missing() -> Response:
    """Jira's answer for an issue it does not know, or that the user may not see: the same 404 either way."""
    body = {"errorMessages": ["Issue does not exist or you do not have permission to see it."], "errors": {}}
    return json_response(body, status=404)


def account_id_for(email: str) -> str:
    digest = hashlib.sha1(email.encode()).hexdigest()  # noqa: S324 -- an id, not security
    return f"712020:{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"


def _utc(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).astimezone(UTC)


def _duration(seconds: int) -> str:
    """Jira's timeSpent: "3h 20m"."""
    hours, minutes = divmod(seconds // 60, 60)
    return " ".join(part for part in (f"{hours}h" if hours else "", f"{minutes}m" if minutes else "") if part) or "0m"


def _seconds(text: str) -> int | None:
    """Jira's duration text ("1d 2h 30m"; a day is 8 hours, a week 5 days) in seconds, or None."""
    units = {"w": 5 * 8 * 3600, "d": 8 * 3600, "h": 3600, "m": 60}
    total = 0
    for part in text.split():
        number, unit = part[:-1], part[-1:].lower()
        if unit not in units or not number.replace(".", "", 1).isdigit():
            return None
        total += int(float(number) * units[unit])
    return total or None


class JiraWorklogs:
    """Support issues and their worklogs, seeded after the other issues so their ids stay as they were."""

    def seed_worklogs(self) -> None:
        self.worklogs: dict[int, dict[str, Any]] = {}
        self._next_worklog = WORKLOG_BASE
        issue_of: dict[int, int] = {}
        for ticket in support_tickets(self.firm):
            opened = _utc(ticket["opened_at"])
            assignee = self._person_account(ticket["assignee_email"])
            issue = self._insert(
                {
                    "project": "SUP",
                    "issuetype": "Task",
                    "summary": f"{ticket['code']}: {ticket['title']}",
                    "description": None,
                    "labels": [ticket["code"], "support"],
                    "priority": "Medium",
                    "duedate": None,
                    "assignee": assignee,
                    "status": "In Progress",
                },
                created=opened,
                updated=opened,
            )
            issue_of[ticket["id"]] = issue["id"]
        for log in work_logs(self.firm):
            issue = self.issues[issue_of[log["ticket_id"]]]
            author = self._person_account(log["person_email"])
            started = datetime.fromisoformat(f"{log['date']}T09:00:00").replace(tzinfo=self.zone)
            self._add_worklog(
                issue,
                author=author,
                started=started,
                seconds=log["minutes"] * 60,
                comment=log["notes"],
                created=_utc(log["created_at"]),
                updated=_utc(log["updated_at"]),
                worklog_id=WORKLOG_BASE + log["id"],
            )
            issue["updated"] = max(issue["updated"], _utc(log["updated_at"]))

    def _person_account(self, email: str) -> str:
        if email not in self.users:
            name = next((p["display_name"] for p in self.firm.people() if p["work_email"] == email), email)
            self.users[email] = {"accountId": account_id_for(email), "displayName": name}
        return self.users[email]["accountId"]

    def _add_worklog(
        self,
        issue: dict[str, Any],
        *,
        author: str,
        started: datetime,
        seconds: int,
        comment: str,
        created: datetime,
        updated: datetime,
        worklog_id: int | None = None,
    ) -> dict[str, Any]:
        if worklog_id is None:
            self._next_worklog = max(self._next_worklog, WORKLOG_BASE + 10000) + 1
            worklog_id = self._next_worklog
        worklog = {
            "id": worklog_id,
            "issueId": issue["id"],
            "author": author,
            "started": started,
            "timeSpentSeconds": seconds,
            "comment": adf_document(comment) if comment else None,
            "created": created,
            "updated": updated,
        }
        self.worklogs[worklog_id] = worklog
        return worklog

    def _email_of(self, account_id: str) -> str | None:
        return next((email for email, u in self.users.items() if u["accountId"] == account_id), None)

    def _render_worklog(self, request: Request, worklog: dict[str, Any], version: str) -> dict[str, Any]:
        base = f"{request.host_url.rstrip('/')}/rest/api/{version}"
        author = dict(self._user(base, worklog["author"]) or {})
        email = self._email_of(worklog["author"])
        if email:
            author["emailAddress"] = email
        comment = worklog["comment"]
        return {
            "self": f"{base}/issue/{worklog['issueId']}/worklog/{worklog['id']}",
            "author": author,
            "updateAuthor": author,
            "comment": (adf_text(comment) if version == "2" else comment) if comment else None,
            "created": self._stamp(worklog["created"]),
            "updated": self._stamp(worklog["updated"]),
            "started": self._stamp(worklog["started"]),
            "timeSpent": _duration(worklog["timeSpentSeconds"]),
            "timeSpentSeconds": worklog["timeSpentSeconds"],
            "id": str(worklog["id"]),
            "issueId": str(worklog["issueId"]),
        }

    # -- endpoints ----------------------------------------------------------------------------------------------
    def worklogs_updated(self, request: Request, version: str) -> Response:
        if (refused := self._refused(request)) is not None:
            return refused
        try:
            since = int(request.args.get("since") or 0)
        except ValueError:
            return self._error(JiraError(400, ["since must be a number of milliseconds."]))
        with self.lock:
            changed = sorted(
                (w for w in self.worklogs.values() if int(w["updated"].timestamp() * 1000) > since),
                key=lambda w: (w["updated"], w["id"]),
            )
        page = changed[:WORKLOG_PAGE]
        values = [{"worklogId": w["id"], "updatedTime": int(w["updated"].timestamp() * 1000), "properties": []}
                  for w in page]  # fmt: skip
        until = values[-1]["updatedTime"] if values else since
        last = len(changed) <= WORKLOG_PAGE
        base = f"{request.host_url.rstrip('/')}/rest/api/{version}/worklog/updated"
        body: dict[str, Any] = {"values": values, "since": since, "until": until, "self": f"{base}?since={since}",
                                "lastPage": last}  # fmt: skip
        if not last:
            body["nextPage"] = f"{base}?since={until}"
        return json_response(body)

    def worklogs_list(self, request: Request, version: str) -> Response:
        if (refused := self._refused(request)) is not None:
            return refused
        body = request.get_json(force=True, silent=True)
        ids = body.get("ids") if isinstance(body, dict) else None
        if not isinstance(ids, list):
            return self._error(JiraError(400, ["ids must be a list of worklog ids."]))
        if len(ids) > WORKLOG_PAGE:
            return self._error(JiraError(400, [f"A request can contain at most {WORKLOG_PAGE} worklog ids."]))
        with self.lock:
            found = [self.worklogs[int(i)] for i in ids if str(i).isdigit() and int(i) in self.worklogs]
            rendered = [self._render_worklog(request, w, version) for w in found]
        for position in self.malformed_positions(len(rendered)):
            if position % 2:
                rendered[position].pop("timeSpentSeconds")
            else:
                rendered[position]["started"] = "yesterday"
        return json_response(rendered)

    def issue_worklogs(self, request: Request, version: str, key: str) -> Response:
        if (refused := self._refused(request)) is not None:
            return refused
        with self.lock:
            issue = self._find(key)
            if issue is None:
                return issue_missing()
            if request.method == "GET":
                mine = sorted((w for w in self.worklogs.values() if w["issueId"] == issue["id"]), key=lambda w: w["id"])
                rendered = [self._render_worklog(request, w, version) for w in mine]
                return json_response({"startAt": 0, "maxResults": 5000, "total": len(rendered), "worklogs": rendered})
            body = request.get_json(force=True, silent=True) or {}
            try:
                worklog = self._worklog_from(body, issue, version)
            except JiraError as error:
                return self._error(error)
            return json_response(self._render_worklog(request, worklog, version), status=201)

    def _worklog_from(self, body: dict[str, Any], issue: dict[str, Any], version: str) -> dict[str, Any]:
        seconds = body.get("timeSpentSeconds")
        if seconds is None and isinstance(body.get("timeSpent"), str):
            seconds = _seconds(body["timeSpent"])
        if not isinstance(seconds, int) or seconds < 60:
            raise JiraError(400, [], {"timeLogged": "You must indicate the time spent working."})
        text = body.get("started") or ""
        try:
            started = datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f%z") if text else _now()
        except ValueError:
            raise JiraError(400, [], {"started": "Invalid date format. Please enter the date in the format"}) from None
        comment = body.get("comment")
        now = _now()
        worklog = self._add_worklog(
            issue,
            author=self.users_me_account(),
            started=started,
            seconds=seconds,
            comment=adf_text(comment) if isinstance(comment, dict) else str(comment or ""),
            created=now,
            updated=now,
        )
        issue["updated"] = now
        return worklog

    def users_me_account(self) -> str:
        from connectors.jira.sandbox.state import ACCOUNT_ID

        return ACCOUNT_ID

    def worklog_count(self) -> int:
        with self.lock:
            return len(self.worklogs)


__all__ = ["JiraWorklogs", "account_id_for"]
