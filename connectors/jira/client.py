"""Jira Cloud connector: issues over REST API v3 (e.g. resource requests for new projects, delivery tickets), and
the time logged on them (worklogs).

Reads are enhanced JQL searches (`search/jql`) ordered by `updated` and followed by nextPageToken; the cursor is
turned into JQL's minute-precision date in the API user's own time zone. Writes create issues in bulk (50 a call)
and keep our external id in a label, so an upsert finds what it wrote before and edits it instead of duplicating.

Worklogs are read as Jira offers them to integrations: the ids changed since a moment (`worklog/updated`, in
milliseconds), then the worklogs themselves (`worklog/list`, 1,000 a call). A worklog names only its issue's id, so
the connector adds `issue` (key, summary, labels, project: the issue's labels carry the firm's project code),
`started_date` (the day worked, as the worker's own clock had it) and `time_spent_minutes`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import requests

from connectors.base import (
    AuthenticationFailed,
    ConnectionTestResult,
    Connector,
    ConnectorError,
    FormField,
    ObjectSpec,
    OutboundRecord,
    Page,
    RejectedRecord,
    SourceRecord,
    VendorError,
    WriteMode,
    WriteResult,
    chunks,
    objects_by_name,
    parse_utc_datetime,
)
from connectors.jira.records import (
    EXTERNAL_ID_LABEL_PREFIX,
    SEARCH_FIELDS,
    WRITABLE_FIELDS,
    adf_document,
    adf_text,
    error_code,
    errors_text,
    external_id_label,
    iso_millis,
    jql_string,
    parse_cursor,
)

API = "/rest/api/3"
BULK_CREATE_MAX = 50  # issues per POST /issue/bulk
SEARCH_PAGE_MAX = 100  # issues per search page when fields are asked for
WORKLOG_LIST_MAX = 1000  # worklog ids per worklog/list call

# ---------------------------------------------------------------------------------------------------------------
# (unverified) assumptions, kept here and emulated the same way by connectors/jira/sandbox.py:
# - search/jql returns at most 100 issues a page when fields are requested (5,000 for ids only).
# - POST /issue/bulk answers 201 with {issues, errors:[{status, elementErrors, failedElementNumber}]} when some
#   issues fail and 400 with the same body when all do.
# - Jira keeps no external id; a label "sgp-<external id>" (no spaces, 255 characters at most) is ours. Entity
#   properties would be tidier, but JQL can only search properties an app has indexed.
# - JQL dates without a zone are read in the API user's time zone (GET /myself -> timeZone).
# - worklog/updated returns worklogs updated strictly after `since`, 1,000 a page, in update order; its nextPage
#   carries the `since` to go on from. Jira leaves out worklogs updated in the last minute: the sandbox does not.
# - A worklog's author shows emailAddress to an API user of the same organisation (managed accounts).
# ---------------------------------------------------------------------------------------------------------------


class JiraConnector(Connector):
    vendor = "jira"
    label = "Jira"
    category = "ticketing"
    objects = objects_by_name(
        ObjectSpec(
            "issues",
            "Issues",
            writable=True,
            batch_size=BULK_CREATE_MAX,
            page_size=SEARCH_PAGE_MAX,
            fields=WRITABLE_FIELDS,
        ),
        ObjectSpec(
            "worklogs",
            "Worklogs (time logged on issues)",
            page_size=WORKLOG_LIST_MAX,
            fields=("author.emailAddress", "started_date", "time_spent_minutes", "issue.key", "issue.labels"),
        ),
    )

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._myself: dict[str, Any] | None = None

    @classmethod
    def form_fields(cls) -> list[FormField]:
        return [
            FormField("email", "Atlassian account e-mail", kind="email", help="The account the API token belongs to."),
            FormField(
                "api_token",
                "API token",
                kind="secret",
                help="Created at id.atlassian.com > Security > API tokens.",
            ),
            FormField(
                "jql",
                "Only issues matching (JQL)",
                required=False,
                help="Limits what is read, e.g. project in (DEL, RES). Leave empty for every issue the account sees.",
            ),
        ]

    # -- HTTP ----------------------------------------------------------------------------------------------------

    def _api(self, method: str, path: str, *, expected: tuple[int, ...] = (200,), **kwargs: Any) -> requests.Response:
        response = self.session.request(
            method,
            f"{self.base_url}{API}/{path.lstrip('/')}",
            auth=(self.credentials.get("email", ""), self.credentials.get("api_token", "")),
            headers={"Accept": "application/json"},
            **kwargs,
        )
        if response.status_code in expected:
            return response
        shown = self.session.refusal_shown(response, errors_text=errors_text)
        if response.status_code == 401:
            raise AuthenticationFailed(
                f"Jira refused the e-mail address and API token ({shown}). Check both, and that the token is active."
            )
        if response.status_code == 403 and method == "GET" and path == "myself":
            raise AuthenticationFailed(f"Jira denied the sign-in ({shown}); log in once in a browser to clear it.")
        raise VendorError(f"Jira answered {method} {path.split('?')[0]} with {shown}", status=response.status_code)

    def myself(self) -> dict[str, Any]:
        if self._myself is None:
            self._myself = self._api("GET", "myself").json()
        return self._myself

    def _user_zone(self) -> ZoneInfo:
        try:
            return ZoneInfo(self.myself().get("timeZone") or "UTC")
        except (ZoneInfoNotFoundError, ValueError):
            return ZoneInfo("UTC")

    def search(self, jql: str, fields: list[str], *, max_results: int, next_page_token: str | None = None) -> dict:
        body: dict[str, Any] = {"jql": jql, "maxResults": max_results, "fields": fields}
        if next_page_token:
            body["nextPageToken"] = next_page_token
        return self._api("POST", "search/jql", json=body).json()

    # -- contract ------------------------------------------------------------------------------------------------

    def test_connection(self) -> ConnectionTestResult:
        try:
            me = self.myself()
        except (ConnectorError, requests.RequestException, ValueError) as exc:
            return ConnectionTestResult.failed(exc, vendor="Jira")
        site = urlsplit(self.base_url).netloc
        who = me.get("displayName") or me.get("emailAddress") or "the API user"
        return ConnectionTestResult(
            ok=True,
            message=f"Connected to Jira {site} as {who}.",
            detail={"account_id": me.get("accountId"), "time_zone": me.get("timeZone")},
        )

    def read(self, object_name: str, *, since: str | None = None, page_size: int | None = None) -> Iterator[Page]:
        if object_name == "worklogs":
            yield from self._read_worklogs(since)
            return
        if object_name != "issues":
            raise ConnectorError(f"Jira has no object {object_name!r}; known: issues, worklogs")
        size = max(1, min(page_size or SEARCH_PAGE_MAX, SEARCH_PAGE_MAX))
        conditions = []
        scope = (self.credentials.get("jql") or "").strip()
        if scope:
            conditions.append(f"({scope})")
        if since:
            moment = parse_cursor(since)
            if moment is None:
                raise ConnectorError(f"Not an ISO 8601 cursor: {since!r}")
            # JQL compares to the minute, in the user's zone: floor, so nothing at or after the cursor is missed.
            local = moment.astimezone(self._user_zone()).strftime("%Y-%m-%d %H:%M")
            conditions.append(f'updated >= "{local}"')
        jql = " AND ".join(conditions) + " ORDER BY updated ASC, key ASC"
        cursor = since
        token = None
        while True:
            body = self.search(jql.strip(), list(SEARCH_FIELDS), max_results=size, next_page_token=token)
            records, rejects = self._parse(body.get("issues") or [])
            for record in records:
                if cursor is None or record.updated_at > cursor:
                    cursor = record.updated_at
            token = body.get("nextPageToken")
            has_more = bool(token) and not body.get("isLast", False)
            yield Page(records=records, rejects=rejects, cursor=cursor, has_more=has_more)
            if not has_more:
                return

    def _read_worklogs(self, since: str | None) -> Iterator[Page]:
        since_ms = 0
        if since:
            moment = parse_cursor(since)
            if moment is None:
                raise ConnectorError(f"Not an ISO 8601 cursor: {since!r}")
            since_ms = int(moment.timestamp() * 1000) - 1  # "after" is strict: read the watermark's own again
        cursor = since
        while True:
            body = self._api("GET", "worklog/updated", params={"since": since_ms}).json()
            ids = [str(value["worklogId"]) for value in body.get("values") or [] if value.get("worklogId")]
            worklogs: list[Any] = []
            for some_ids in chunks(ids, WORKLOG_LIST_MAX):
                worklogs += self._api("POST", "worklog/list", json={"ids": some_ids}).json()
            issues = self._issues_by_id({str(w.get("issueId")) for w in worklogs if isinstance(w, Mapping)})
            records, rejects = self._parse_worklogs(worklogs, issues)
            until = body.get("until")
            if isinstance(until, int) and ids:
                cursor = iso_millis(datetime.fromtimestamp(until / 1000, tz=UTC))
            last = bool(body.get("lastPage", True)) or not ids
            yield Page(records=records, rejects=rejects, cursor=cursor, has_more=not last)
            if last:
                return
            next_since = parse_qs(urlsplit(str(body.get("nextPage") or "")).query).get("since", [until])[0]
            since_ms = int(next_since)

    def _issues_by_id(self, ids: set[str]) -> dict[str, dict[str, Any]]:
        """The issues worklogs were logged on, with the fields a time entry needs, by id (100 a search)."""
        wanted = sorted(i for i in ids if i.isdigit())
        found: dict[str, dict[str, Any]] = {}
        for chunk in chunks(wanted, SEARCH_PAGE_MAX):
            jql = f"id in ({', '.join(chunk)}) ORDER BY key ASC"
            token = None
            while True:
                body = self.search(
                    jql, ["summary", "labels", "project"], max_results=SEARCH_PAGE_MAX, next_page_token=token
                )
                for issue in body.get("issues") or []:
                    if isinstance(issue, Mapping) and issue.get("id"):
                        fields = issue.get("fields") or {}
                        found[str(issue["id"])] = {
                            "id": str(issue["id"]),
                            "key": issue.get("key"),
                            "summary": fields.get("summary"),
                            "labels": [str(label) for label in fields.get("labels") or []],
                            "project": (fields.get("project") or {}).get("key"),
                        }
                token = body.get("nextPageToken")
                if not token or body.get("isLast", True):
                    break
        return found

    @staticmethod
    def _parse_worklogs(
        worklogs: list[Any], issues: Mapping[str, Mapping[str, Any]]
    ) -> tuple[list[SourceRecord], list[RejectedRecord]]:
        records: list[SourceRecord] = []
        rejects: list[RejectedRecord] = []
        for worklog in worklogs:
            worklog_id = str(worklog.get("id") or "") if isinstance(worklog, Mapping) else ""
            if not worklog_id:
                rejects.append(RejectedRecord(external_id=None, reason="The worklog has no id.", raw=worklog))
                continue
            seconds = worklog.get("timeSpentSeconds")
            if not isinstance(seconds, int) or isinstance(seconds, bool) or seconds < 0:
                rejects.append(RejectedRecord(worklog_id, f"timeSpentSeconds is not a duration: {seconds!r}", worklog))
                continue
            started = str(worklog.get("started") or "")
            if parse_utc_datetime(started, naive_as_utc=False) is None:
                rejects.append(RejectedRecord(worklog_id, f"started is not a timestamp: {started!r}", worklog))
                continue
            updated = parse_utc_datetime(worklog.get("updated"), naive_as_utc=False)
            if updated is None:
                rejects.append(
                    RejectedRecord(worklog_id, f"updated is not a timestamp: {worklog.get('updated')!r}", worklog)
                )
                continue
            issue = issues.get(str(worklog.get("issueId")))
            if issue is None:
                rejects.append(
                    RejectedRecord(worklog_id, "The worklog's issue cannot be seen by the API user.", worklog)
                )
                continue
            data = dict(worklog)
            data["comment"] = adf_text(worklog.get("comment")) or None
            data["issue"] = dict(issue)
            data["started_date"] = started[:10]  # the day worked, on the worker's own clock (the offset kept)
            data["time_spent_minutes"] = round(seconds / 60)
            data["updated"] = iso_millis(updated)
            records.append(SourceRecord(external_id=worklog_id, updated_at=iso_millis(updated), data=data))
        return records, rejects

    @staticmethod
    def _parse(issues: list[Any]) -> tuple[list[SourceRecord], list[RejectedRecord]]:
        records: list[SourceRecord] = []
        rejects: list[RejectedRecord] = []
        for issue in issues:
            if not isinstance(issue, Mapping) or not issue.get("id") or not issue.get("key"):
                key = issue.get("key") if isinstance(issue, Mapping) else None
                rejects.append(RejectedRecord(external_id=key, reason="The issue has no id or key.", raw=issue))
                continue
            fields = issue.get("fields") or {}
            updated = parse_utc_datetime(fields.get("updated"), naive_as_utc=False)
            if updated is None:
                reason = f"updated is not a timestamp: {fields.get('updated')!r}"
                rejects.append(RejectedRecord(external_id=str(issue["id"]), reason=reason, raw=issue))
                continue
            labels = [str(label) for label in fields.get("labels") or []]
            ours = [
                label[len(EXTERNAL_ID_LABEL_PREFIX) :] for label in labels if label.startswith(EXTERNAL_ID_LABEL_PREFIX)
            ]
            status = fields.get("status") or {}
            created = parse_utc_datetime(fields.get("created"), naive_as_utc=False)
            data = {
                "id": str(issue["id"]),
                "key": issue["key"],
                "summary": fields.get("summary"),
                "description": adf_text(fields.get("description")) or None,
                "status": status.get("name"),
                "status_category": (status.get("statusCategory") or {}).get("key"),
                "project": (fields.get("project") or {}).get("key"),
                "project_name": (fields.get("project") or {}).get("name"),
                "issuetype": (fields.get("issuetype") or {}).get("name"),
                "labels": labels,
                "priority": (fields.get("priority") or {}).get("name"),
                "assignee": (fields.get("assignee") or {}).get("displayName"),
                "duedate": fields.get("duedate"),
                "created": iso_millis(created) if created else None,
                "updated": iso_millis(updated),
                "external_id": ours[0] if ours else None,
            }
            records.append(SourceRecord(external_id=str(issue["id"]), updated_at=iso_millis(updated), data=data))
        return records, rejects

    # -- writes --------------------------------------------------------------------------------------------------

    def write(
        self, object_name: str, records: list[OutboundRecord], *, mode: WriteMode = "upsert"
    ) -> list[WriteResult]:
        if object_name != "issues":
            raise ConnectorError(f"Jira cannot write {object_name!r}; known: issues")
        if len(records) > BULK_CREATE_MAX:
            raise ConnectorError(f"Jira takes at most {BULK_CREATE_MAX} issues a batch, got {len(records)}.")
        results: list[WriteResult | None] = [None] * len(records)
        existing = self._find_ours([r.external_id for r in records]) if mode != "create" else {}
        to_create: list[int] = []
        for index, record in enumerate(records):
            found = existing.get(external_id_label(record.external_id))
            target = record.target_id or (found or {}).get("id")
            if mode == "create" or (mode == "upsert" and target is None):
                to_create.append(index)
            elif target is None:
                results[index] = WriteResult(
                    external_id=record.external_id,
                    outcome="failed",
                    error_code="NOT_FOUND",
                    error_message="No Jira issue carries this record's external id label, so there is nothing to update.",
                )
            else:
                results[index] = self._update(record, target, found)
        if to_create:
            for index, result in zip(to_create, self._bulk_create([records[i] for i in to_create]), strict=True):
                results[index] = result
        return [r for r in results if r is not None]

    def _issue_fields(self, record: OutboundRecord, *, creating: bool) -> dict[str, Any]:
        """Mapped fields in Jira's shape: names become {"key"/"name"}, text becomes ADF, our label is added."""
        fields: dict[str, Any] = {}
        for name, value in record.fields.items():
            if name == "project" and isinstance(value, str):
                value = {"key": value}
            elif name == "issuetype" and isinstance(value, str):
                value = {"name": value}
            elif name == "priority" and isinstance(value, str):
                value = {"name": value}
            elif name == "description" and isinstance(value, str):
                value = adf_document(value)
            fields[name] = value
        labels = [str(label) for label in fields.get("labels") or []]
        ours = external_id_label(record.external_id)
        if ours not in labels:
            labels.append(ours)
        fields["labels"] = labels
        if creating:
            fields.setdefault("issuetype", {"name": "Task"})
        else:
            fields.pop("project", None)  # an edit cannot move an issue between projects
        return fields

    def _find_ours(self, external_ids: list[str]) -> dict[str, dict[str, Any]]:
        """Issues already carrying our labels, by label, with the fields an edit might change."""
        labels = sorted({external_id_label(e) for e in external_ids})
        if not labels:
            return {}
        jql = f"labels in ({', '.join(jql_string(label) for label in labels)}) ORDER BY key ASC"
        found: dict[str, dict[str, Any]] = {}
        token = None
        while True:
            body = self.search(jql, list(WRITABLE_FIELDS), max_results=SEARCH_PAGE_MAX, next_page_token=token)
            for issue in body.get("issues") or []:
                for label in (issue.get("fields") or {}).get("labels") or []:
                    if label in labels:
                        found.setdefault(label, {"id": str(issue["id"]), "key": issue.get("key"), **issue["fields"]})
            token = body.get("nextPageToken")
            if not token or body.get("isLast", True):
                return found

    @staticmethod
    def _unchanged(wanted: Mapping[str, Any], current: Mapping[str, Any]) -> bool:
        for name, value in wanted.items():
            now = current.get(name)
            if name == "labels":
                if sorted(value) != sorted(now or []):
                    return False
            elif name == "description":
                if adf_text(value) != adf_text(now):
                    return False
            elif isinstance(value, Mapping):
                key = "key" if "key" in value else "name" if "name" in value else "id"
                if not isinstance(now, Mapping) or str(now.get(key)) != str(value.get(key)):
                    return False
            elif value != now:
                return False
        return True

    def _update(self, record: OutboundRecord, target: str, current: Mapping[str, Any] | None) -> WriteResult:
        fields = self._issue_fields(record, creating=False)
        if current is not None and self._unchanged(fields, current):
            return WriteResult(external_id=record.external_id, outcome="unchanged", target_id=str(current["id"]))
        response = self._api(
            "PUT", f"issue/{quote(str(target), safe='')}", json={"fields": fields}, expected=(204, 400, 404)
        )
        if response.status_code == 204:
            return WriteResult(external_id=record.external_id, outcome="updated", target_id=str(target))
        body = response.json() if response.content else {}
        return WriteResult(
            external_id=record.external_id,
            outcome="failed",
            target_id=str(target),
            error_code="NOT_FOUND" if response.status_code == 404 else error_code(body.get("errors")),
            error_message=self.session.redact(errors_text(body)) or f"HTTP {response.status_code}",
        )

    def _bulk_create(self, records: list[OutboundRecord]) -> list[WriteResult]:
        payload = {"issueUpdates": [{"fields": self._issue_fields(r, creating=True)} for r in records]}
        response = self._api("POST", "issue/bulk", json=payload, expected=(201, 400))
        body = response.json()
        failures = {
            int(error.get("failedElementNumber", -1)): (error.get("elementErrors") or {})
            for error in body.get("errors") or []
        }
        if response.status_code == 400 and not failures:
            raise VendorError(f"Jira refused the whole batch: {errors_text(body)}", status=400)
        created = iter(body.get("issues") or [])
        results = []
        for index, record in enumerate(records):
            if index in failures:
                errors = failures[index]
                results.append(
                    WriteResult(
                        external_id=record.external_id,
                        outcome="failed",
                        error_code=error_code(errors.get("errors")),
                        error_message=self.session.redact(errors_text(errors)),
                    )
                )
            else:
                issue = next(created)
                results.append(
                    WriteResult(external_id=record.external_id, outcome="created", target_id=str(issue["id"]))
                )
        return results
