"""Float connector: people, projects, clients, allocations (tasks) and logged time over the REST API v3.

Float is resource scheduling: who is booked on which project when (allocations, which the API calls tasks), and
the time people log against them. Every call carries the account owner's Bearer token and a User-Agent naming
the application and a contact email, which Float requires (a call without one is refused). Lists are paged with
`page` and `per-page` (200 at most) and say where they are in `X-Pagination-*` headers; `modified_since` limits
a list to what changed. Float sends no webhooks, so changes are polled. A list comes in id order, not change
order: the cursor stays where the read started until the last page, which stores the instant the read began
(the answer's Date header), and whatever changed since is read again next time.

Float has no external-id field. Writes find the record that is already there by what identifies it in Float
(a person by email, a project by its project code, a client by name, an allocation by person, project and
dates), or by the id a read gave, then create (POST) or change (PATCH) one record per call, leaving alone
those already equal. Float has no batch endpoint, and counts every write against 100 non-GET calls a minute.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

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
    parse_utc_datetime,
    server_time,
)

DEFAULT_BASE_URL = "https://api.float.com"
PER_PAGE_MAX = 200
WRITE_BATCH = 50

# ---------------------------------------------------------------------------------------------------------------
# (unverified) assumptions, emulated the same way by connectors/float/sandbox/:
# - a call without a User-Agent naming an application and a contact email answers 400 with {"message"}; a
#   wrong token 401. Throttling (200 GET and 100 other calls a minute per company) answers 429 with Retry-After.
# - `modified_since` takes "YYYY-MM-DD HH:MM:SS" in UTC and keeps records whose `modified` is at or after it;
#   lists come in id order whatever the filter.
# - projects carry `project_code`; logged time has `locked` (1 once its period is locked, which is how a team
#   approves time in Float) and no rate: rates are the person's `default_hourly_rate` in the account's currency.
# - a refused write answers 422 with [{"field", "message"}].
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FloatObject:
    path: str
    label: str
    id_field: str
    fields: tuple[str, ...]
    match: tuple[str, ...] = ()  # what identifies a record in Float when we have no id for it
    writable: bool = True


OBJECTS: dict[str, FloatObject] = {
    "people": FloatObject(
        "people",
        "People",
        "people_id",
        (
            "people_id",
            "name",
            "email",
            "job_title",
            "department.name",
            "employee_type",
            "start_date",
            "end_date",
            "active",
            "default_hourly_rate",
            "tags",
            "modified",
        ),
        match=("email",),
    ),
    "clients": FloatObject("clients", "Clients", "client_id", ("client_id", "name", "modified"), match=("name",)),
    "projects": FloatObject(
        "projects",
        "Projects",
        "project_id",
        ("project_id", "name", "project_code", "client_id", "budget_total", "active", "notes", "modified"),
        match=("project_code",),
    ),
    "tasks": FloatObject(
        "tasks",
        "Allocations",
        "task_id",
        ("task_id", "project_id", "people_id", "start_date", "end_date", "hours", "name", "notes", "modified"),
        match=("people_id", "project_id", "start_date", "end_date"),
    ),
    "logged-time": FloatObject(
        "logged-time",
        "Logged time",
        "logged_time_id",
        ("logged_time_id", "people_id", "project_id", "date", "hours", "billable", "notes", "locked", "modified"),
        writable=False,
    ),
    "departments": FloatObject(
        "departments", "Departments", "department_id", ("department_id", "name"), writable=False
    ),
}


def _same(current: Any, wanted: Any) -> bool:
    if current in (None, "") and wanted in (None, ""):
        return True
    if isinstance(current, int | float | Decimal) and not isinstance(current, bool):
        try:
            return Decimal(str(current)) == Decimal(str(wanted))
        except InvalidOperation:
            return False
    return str(current).lower() == str(wanted).lower() if isinstance(current, str) else current == wanted


def _json_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bool):
        return int(value)  # Float's flags are 1 and 0
    return value


def error_text(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    if isinstance(body, list):
        return "; ".join(f"{e.get('field')}: {e.get('message')}" for e in body if isinstance(e, dict)) or "refused"
    if isinstance(body, dict):
        return str(body.get("message") or body.get("name") or f"HTTP {response.status_code}")
    return f"HTTP {response.status_code}"


class FloatConnector(Connector):
    vendor = "float"
    label = "Float"
    category = "psa"
    objects = {
        name: ObjectSpec(
            name=name,
            label=obj.label,
            writable=obj.writable,
            batch_size=WRITE_BATCH,
            page_size=PER_PAGE_MAX,
            fields=obj.fields,
        )
        for name, obj in OBJECTS.items()
    }

    def __init__(self, *, base_url: str = DEFAULT_BASE_URL, credentials: Mapping[str, str], **kwargs):
        super().__init__(base_url=base_url, credentials=credentials, **kwargs)
        self.root = self.base_url if self.base_url.endswith("/v3") else f"{self.base_url}/v3"
        app = (self.credentials.get("app_name") or "").strip() or "Integration"
        contact = (self.credentials.get("contact_email") or "").strip()
        self.user_agent = f"{app} ({contact})"

    @classmethod
    def form_fields(cls) -> list[FormField]:
        return [
            FormField(
                "token", "API token", kind="secret", help="Account Settings > Integrations (account owner only)."
            ),
            FormField(
                "app_name",
                "Application name",
                initial="{product_name}",
                help="Float asks every integration to name itself in its User-Agent.",
            ),
            FormField("contact_email", "Contact email", kind="email", help="Who Float may contact about these calls."),
        ]

    # -- HTTP --------------------------------------------------------------------------------------------------
    def _call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {
            "Authorization": f"Bearer {self.credentials.get('token', '')}",
            "User-Agent": self.user_agent,
            "Accept": "application/json",
        }
        response = self.session.request(method, f"{self.root}/{path.lstrip('/')}", headers=headers, **kwargs)
        if response.status_code == 401:
            raise AuthenticationFailed(f"Float refused the API token ({error_text(response)}): create a new one.")
        if response.status_code == 400 and "User-Agent" in error_text(response):
            raise AuthenticationFailed(f"Float refused the call: {error_text(response)}")
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._call(method, path, **kwargs)
        if response.status_code >= 400:
            raise VendorError(
                f"Float answered {method} {path} with HTTP {response.status_code}: {self.session.redact(error_text(response))}",
                status=response.status_code,
            )
        return response.json()

    def _object(self, object_name: str) -> FloatObject:
        try:
            return OBJECTS[object_name]
        except KeyError:
            raise ConnectorError(f"Float has no object {object_name!r}; known: {', '.join(OBJECTS)}") from None

    # -- contract ----------------------------------------------------------------------------------------------
    def test_connection(self) -> ConnectionTestResult:
        try:
            response = self._call("GET", "people", params={"per-page": 1})
            if response.status_code >= 400:
                raise VendorError(f"Float answered HTTP {response.status_code}: {error_text(response)}")
        except (ConnectorError, requests.RequestException) as exc:
            return ConnectionTestResult.failed(exc, vendor="Float")
        people = response.headers.get("X-Pagination-Total-Count")
        return ConnectionTestResult(
            ok=True,
            message=f"Connected to Float as {self.user_agent}; {people} people scheduled.",
            detail={"people": int(people) if people and people.isdigit() else None},
        )

    def read(self, object_name: str, *, since: str | None = None, page_size: int | None = None) -> Iterator[Page]:
        obj = self._object(object_name)
        size = max(1, min(page_size or PER_PAGE_MAX, PER_PAGE_MAX))
        params: dict[str, Any] = {"per-page": size}
        if since:
            watermark = parse_utc_datetime(since, needs_time=True)
            if watermark is None:
                raise ConnectorError(f"The sync cursor {since!r} is not a date and time.")
            params["modified_since"] = watermark.strftime("%Y-%m-%d %H:%M:%S")
        page, started, total = 1, None, None
        while True:
            response = self._call("GET", obj.path, params={**params, "page": page})
            if response.status_code >= 400:
                raise VendorError(
                    f"Float could not list {obj.label.lower()}: {error_text(response)}", response.status_code
                )
            started = started or server_time(response)
            if total is None and (response.headers.get("X-Pagination-Total-Count") or "").isdigit():
                total = int(response.headers["X-Pagination-Total-Count"])
            pages = int(response.headers.get("X-Pagination-Page-Count") or 1)
            records, rejects = self._parse(obj, response.json())
            has_more = page < pages
            yield Page(
                records=records, rejects=rejects, cursor=since if has_more else started, has_more=has_more, total=total
            )
            if not has_more:
                return
            page += 1

    @staticmethod
    def _parse(obj: FloatObject, rows: Any) -> tuple[list[SourceRecord], list[RejectedRecord]]:
        records, rejects = [], []
        for row in rows if isinstance(rows, list) else []:
            if not isinstance(row, Mapping) or row.get(obj.id_field) in (None, ""):
                rejects.append(RejectedRecord(None, f"Float returned a record without its {obj.id_field}.", row))
                continue
            record_id = str(row[obj.id_field])
            if obj.path == "departments":
                records.append(SourceRecord(record_id, "1970-01-01T00:00:00Z", dict(row)))
                continue
            modified = parse_utc_datetime(row.get("modified"), needs_time=True)
            if modified is None:
                rejects.append(
                    RejectedRecord(record_id, f"modified {row.get('modified')!r} is not a date and time.", row)
                )
                continue
            records.append(SourceRecord(record_id, modified.strftime("%Y-%m-%dT%H:%M:%SZ"), dict(row)))
        return records, rejects

    # -- writes ------------------------------------------------------------------------------------------------
    def write(
        self, object_name: str, records: list[OutboundRecord], *, mode: WriteMode = "upsert"
    ) -> list[WriteResult]:
        obj = self._object(object_name)
        if not obj.writable:
            raise ConnectorError(f"Float cannot write {obj.label.lower()} here.")
        existing = self._everything(obj)
        by_id = {str(row[obj.id_field]): row for row in existing}
        by_match = {self._match_key(obj, row): row for row in existing}
        return [self._write_one(obj, record, by_id, by_match, mode) for record in records]

    def _everything(self, obj: FloatObject) -> list[dict[str, Any]]:
        return [dict(r.data) for page in self.read(obj.path) for r in page.records]

    @staticmethod
    def _match_key(obj: FloatObject, row: Mapping[str, Any]) -> tuple:
        return tuple(str(row.get(name) or "").strip().lower() for name in obj.match)

    def _write_one(self, obj, record: OutboundRecord, by_id: dict, by_match: dict, mode: WriteMode) -> WriteResult:
        fields = {k: _json_value(v) for k, v in record.fields.items() if k != obj.id_field}
        current = by_id.get(str(record.target_id)) if record.target_id else None
        if current is None and any(fields.get(name) for name in obj.match):
            current = by_match.get(self._match_key(obj, fields))
        if current is None and mode == "update":
            return WriteResult(
                record.external_id, "failed", record.target_id, "NOT_FOUND", "Float holds no such record."
            )
        if current is not None:
            target = str(current[obj.id_field])
            changes = {k: v for k, v in fields.items() if not _same(current.get(k), v)}
            if mode == "create" or not changes:
                return WriteResult(record.external_id, "unchanged", target)
            response = self._call("PATCH", f"{obj.path}/{target}", json=changes)
            outcome = "updated"
        else:
            response = self._call("POST", obj.path, json=fields)
            outcome, target = "created", None
        if response.status_code in (200, 201):
            saved = response.json()
            written = str(saved.get(obj.id_field) or target)
            by_id[written] = saved
            by_match[self._match_key(obj, saved)] = saved
            return WriteResult(record.external_id, outcome, written)
        if 400 <= response.status_code < 500:
            code = "VALIDATION" if response.status_code == 422 else f"HTTP_{response.status_code}"
            return WriteResult(record.external_id, "failed", target, code, self.session.redact(error_text(response)))
        raise VendorError(f"Float answered {obj.path} with HTTP {response.status_code}.", response.status_code)
