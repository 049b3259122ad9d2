"""ServiceNow connector: time worked on incidents and tasks (`task_time_worked`), over the Table API.

Reads are keyset pages ordered by `sys_updated_on` then `sys_id`: each page asks for the rows after the last one
of the page before (`sys_updated_on>T^NQsys_updated_on=T^sys_id>ID`), so a read of any size neither depends on
deep offsets, which stop at the 10,000th row, nor loses or repeats rows that share a second. The cursor is the
last row's `sys_updated_on`; a read from it starts at that second again. Dot-walked fields bring the task's
number, its assignment group's name (which carries the firm's project code first, "PRJ-113 Globex Data
Platform") and the user's email; the connector nests them (`task.assignment_group.name`, `user.email`) and adds
`minutes`, the time worked in whole minutes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

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
    iso_utc,
    objects_by_name,
    parse_utc_datetime,
)

TABLE_API = "/api/now/table"
PAGE_MAX = 10_000  # sysparm_limit's default and the furthest an offset reaches
PAGE_DEFAULT = 1_000
STAMP = "%Y-%m-%d %H:%M:%S"
TIME_FIELDS = ("sys_id", "sys_updated_on", "sys_created_on", "time_worked", "time_in_seconds", "work_date",
               "comments", "task", "task.number", "task.short_description", "task.assignment_group",
               "task.assignment_group.name", "user", "user.email", "user.name")  # fmt: skip

# ---------------------------------------------------------------------------------------------------------------
# (unverified) assumptions, kept here and emulated the same way by connectors/servicenow/sandbox/:
# - task_time_worked has `work_date` (the day worked) beside `time_worked` and `time_in_seconds`; where an
#   instance has no `work_date`, the day of `sys_created_on` is taken.
# - sysparm_offset does not reach past the 10,000th row of a query (X-Total-Count still says how many match), so
#   a larger read must be paged by keyset. Instances configure this limit; 10,000 is the default window.
# - Dot-walked fields in sysparm_fields come back as flat keys ("task.number"); with
#   sysparm_exclude_reference_link=true a reference is its sys_id as text.
# - Rate-limit rules answer 429 with Retry-After and X-RateLimit-Limit/-Reset/-Rule; the body is
#   {"error": {"message", "detail"}, "status": "failure"}.
# - Time worked is not signed by a webhook: ServiceNow sends none (a business rule and an outbound REST message
#   would be set up per instance), so reads poll.
# ---------------------------------------------------------------------------------------------------------------


def _glide(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(STAMP)


def _error_text(body: Any) -> str:
    if not isinstance(body, Mapping):
        return ""
    error = body.get("error") or {}
    parts = [str(error.get("message") or ""), str(error.get("detail") or "")]
    return ": ".join(part for part in parts if part)


def _minutes(row: Mapping[str, Any]) -> int | None:
    seconds = str(row.get("time_in_seconds") or "").strip()
    if seconds.isdigit():
        return round(int(seconds) / 60)
    worked = str(row.get("time_worked") or "")  # "1970-01-01 01:30:00"
    try:
        duration = datetime.strptime(worked, STAMP) - datetime(1970, 1, 1)
    except ValueError:
        return None
    return round(duration.total_seconds() / 60)


class ServiceNowConnector(Connector):
    vendor = "servicenow"
    label = "ServiceNow"
    category = "ticketing"
    objects = objects_by_name(
        ObjectSpec(
            "task_time_worked",
            "Time worked",
            page_size=PAGE_MAX,
            fields=("user.email", "work_date", "minutes", "task.number", "task.assignment_group.name", "comments"),
        ),
    )

    @classmethod
    def form_fields(cls) -> list[FormField]:
        return [
            FormField("username", "User name", help="A web-service-only user with read access to task_time_worked."),
            FormField("password", "Password", kind="secret"),
            FormField(
                "query",
                "Only time matching (encoded query)",
                required=False,
                help="Limits what is read, e.g. task.sys_class_name=incident. Leave empty for all time worked.",
            ),
        ]

    # -- HTTP ----------------------------------------------------------------------------------------------------
    def _get(self, table: str, params: dict[str, Any]) -> requests.Response:
        response = self.session.request(
            "GET",
            f"{self.base_url}{TABLE_API}/{table}",
            params=params,
            auth=(self.credentials.get("username", ""), self.credentials.get("password", "")),
            headers={"Accept": "application/json"},
        )
        if response.status_code == 200:
            return response
        shown = self.session.refusal_shown(response, errors_text=_error_text)
        if response.status_code == 401:
            raise AuthenticationFailed(f"ServiceNow refused the user name and password ({shown}).")
        if response.status_code == 403:
            raise AuthenticationFailed(f"ServiceNow denied the user access to {table} ({shown}); grant it a read role.")
        raise VendorError(f"ServiceNow answered GET {table} with {shown}", status=response.status_code)

    # -- contract ------------------------------------------------------------------------------------------------
    def test_connection(self) -> ConnectionTestResult:
        username = self.credentials.get("username", "")
        try:
            me = self._get("sys_user", {"sysparm_query": f"user_name={username}", "sysparm_fields": "name,email",
                                        "sysparm_limit": 1}).json()["result"]  # fmt: skip
            counted = self._get("task_time_worked", {"sysparm_fields": "sys_id", "sysparm_limit": 1})
            total = int(counted.headers.get("X-Total-Count") or 0)
        except (ConnectorError, requests.RequestException, ValueError, KeyError) as exc:
            return ConnectionTestResult.failed(exc, vendor="ServiceNow")
        who = (me[0].get("name") if me else None) or username
        instance = urlsplit(self.base_url).netloc
        return ConnectionTestResult(
            ok=True,
            message=f"Connected to ServiceNow {instance} as {who}; {total:,} time worked records visible.",
            detail={"time_worked": total},
        )

    def read(self, object_name: str, *, since: str | None = None, page_size: int | None = None) -> Iterator[Page]:
        self.object_spec(object_name)
        size = max(1, min(page_size or PAGE_DEFAULT, PAGE_MAX))
        scope = (self.credentials.get("query") or "").strip()
        start = None
        if since:
            moment = parse_utc_datetime(since)
            if moment is None:
                raise ConnectorError(f"Not an ISO 8601 cursor: {since!r}")
            start = _glide(moment)
        edge: tuple[str, str] | None = None  # (sys_updated_on, sys_id) of the last row read
        cursor, total, seen = since, None, set()
        while True:
            if edge is not None:
                blocks = [f"sys_updated_on>{edge[0]}", f"sys_updated_on={edge[0]}^sys_id>{edge[1]}"]
            elif start is not None:
                blocks = [f"sys_updated_on>={start}"]
            else:
                blocks = [""]
            query = "^NQ".join("^".join(p for p in (scope, block) if p) for block in blocks)
            response = self._get(
                "task_time_worked",
                {
                    "sysparm_query": (query + "^" if query else "") + "ORDERBYsys_updated_on^ORDERBYsys_id",
                    "sysparm_fields": ",".join(TIME_FIELDS),
                    "sysparm_limit": size,
                    "sysparm_exclude_reference_link": "true",
                    "sysparm_display_value": "false",
                    "sysparm_suppress_pagination_header": "true",
                },
            )
            rows = response.json().get("result") or []
            if total is None:
                total = int(response.headers.get("X-Total-Count") or 0)
            records, rejects = self._parse(rows, seen)
            for row in rows:
                stamp = str(row.get("sys_updated_on") or "")
                if isinstance(row, Mapping) and row.get("sys_id") and parse_utc_datetime(stamp, needs_time=True):
                    edge = (stamp, str(row["sys_id"]))
            if edge is not None:
                cursor = iso_utc(parse_utc_datetime(edge[0]))
            has_more = len(rows) == size
            yield Page(records=records, rejects=rejects, cursor=cursor, has_more=has_more, total=total)
            if not has_more:
                return

    @staticmethod
    def _parse(rows: list[Any], seen: set[str]) -> tuple[list[SourceRecord], list[RejectedRecord]]:
        records: list[SourceRecord] = []
        rejects: list[RejectedRecord] = []
        for row in rows:
            row_id = str(row.get("sys_id") or "") if isinstance(row, Mapping) else ""
            if not row_id:
                rejects.append(RejectedRecord(None, "The time worked record has no sys_id.", row))
                continue
            if row_id in seen:
                continue
            seen.add(row_id)
            updated = parse_utc_datetime(row.get("sys_updated_on"), needs_time=True)
            if updated is None:
                rejects.append(
                    RejectedRecord(row_id, f"sys_updated_on is not a timestamp: {row.get('sys_updated_on')!r}", row)
                )
                continue
            minutes = _minutes(row)
            if minutes is None:
                reason = f"time_in_seconds is not a duration: {row.get('time_in_seconds')!r}"
                rejects.append(RejectedRecord(row_id, reason, row))
                continue
            data = {name: value for name, value in row.items() if "." not in name}
            data["task"] = {
                "sys_id": row.get("task"),
                "number": row.get("task.number"),
                "short_description": row.get("task.short_description"),
                "assignment_group": {
                    "sys_id": row.get("task.assignment_group"),
                    "name": row.get("task.assignment_group.name"),
                },
            }
            data["user"] = {"sys_id": row.get("user"), "email": row.get("user.email"), "name": row.get("user.name")}
            data["work_date"] = str(row.get("work_date") or "")[:10] or str(row.get("sys_created_on") or "")[:10]
            data["minutes"] = minutes
            records.append(SourceRecord(external_id=row_id, updated_at=iso_utc(updated), data=data))
        return records, rejects
