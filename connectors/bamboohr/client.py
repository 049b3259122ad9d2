"""BambooHR connector: the firm's employees, read-only, from the HR system that owns the person.

A full read is one custom report (BambooHR does not paginate) cut into pages here. An incremental read asks
`employees/changed?since=` which employees changed, then fetches their fields with one custom report filtered
on lastChanged. Throttling arrives as 503 (older accounts) or 429, both with Retry-After.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from datetime import datetime
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
    chunks,
    iso_utc,
    objects_by_name,
    parse_utc_datetime,
)
from connectors.http import parse_retry_after

ERROR_HEADER = "X-BambooHR-Error-Message"
DEFAULT_PAGE_SIZE = 500  # BambooHR answers in one response; pages are cut here so the engine commits as it goes
EMPLOYEE_FIELDS = (
    "employeeNumber",
    "firstName",
    "lastName",
    "displayName",
    "workEmail",
    "department",
    "division",
    "jobTitle",
    "location",
    "status",
    "employmentHistoryStatus",
    "hireDate",
    "terminationDate",
    "payRate",
    "payType",
    "payPer",
    "supervisorEmail",
    "supervisorEId",
    "customCostRate",
    "lastChanged",
)
DATE_FIELDS = ("hireDate", "terminationDate")
EMPTY_DATE = "0000-00-00"  # BambooHR's empty date

# ---------------------------------------------------------------------------------------------------------------
# (unverified) assumptions, kept here and emulated the same way by connectors/bamboohr/sandbox.py:
# - POST reports/custom?format=JSON answers {title, fields:[{id, type, name}], employees:[{id, <field>: "..."}]} and
#   accepts {"filters": {"lastChanged": {"includeNull": "no", "value": "<ISO 8601>"}}}.
# - Empty dates come as "0000-00-00"; money as "72000.00 USD".
# - The cost rate lives in a custom field whose alias is customCostRate (each account names its own).
# - GET employees/0 is the employee the API key belongs to.
# ---------------------------------------------------------------------------------------------------------------
COST_RATE_FIELD = "customCostRate"


def throttle_wait(response: requests.Response) -> float | None:
    """Rate-limit hook for VendorSession: BambooHR throttles with 503 + Retry-After (older accounts) as well as 429."""
    if response.status_code == 503 and response.headers.get("Retry-After"):
        return parse_retry_after(response.headers.get("Retry-After"))
    return None


class BambooHRConnector(Connector):
    vendor = "bamboohr"
    label = "BambooHR"
    category = "hr"
    objects = objects_by_name(
        ObjectSpec(
            "employees",
            "Employees",
            readable=True,
            writable=False,
            page_size=DEFAULT_PAGE_SIZE,
            fields=("id", *EMPLOYEE_FIELDS, "action"),
        ),
    )

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.session.rate_limit_detector = throttle_wait
        self.company = (self.credentials.get("company_domain") or "").strip()

    @classmethod
    def form_fields(cls) -> list[FormField]:
        return [
            FormField(
                "company_domain",
                "Company domain",
                help="The part before .bamboohr.com in your BambooHR address, e.g. acme for acme.bamboohr.com.",
            ),
            FormField(
                "api_key",
                "API key",
                kind="secret",
                help="Created under your BambooHR profile > API Keys; it has the access of the user who created it.",
            ),
        ]

    # -- HTTP ----------------------------------------------------------------------------------------------------

    def _url(self, path: str) -> str:
        return f"{self.base_url}/api/gateway.php/{quote(self.company, safe='')}/v1/{path.lstrip('/')}"

    def _api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        # BambooHR takes the API key as the Basic user name; the password is ignored.
        response = self.session.request(
            method,
            self._url(path),
            auth=(self.credentials.get("api_key", ""), "x"),
            headers={"Accept": "application/json"},
            **kwargs,
        )
        if response.status_code == 200:
            return response
        reason = self.session.redact(response.headers.get(ERROR_HEADER) or "")
        shown = self.session.refusal_shown(response, reason)
        if response.status_code == 401:
            raise AuthenticationFailed(f"BambooHR refused the API key ({shown}). Check the key and that it is active.")
        if response.status_code == 403:
            raise AuthenticationFailed(
                f"BambooHR denied access ({shown}): the API key's user lacks permission for {path.split('?')[0]}."
            )
        if response.status_code == 404 and "company" in reason.lower():
            raise AuthenticationFailed(f"BambooHR has no company {self.company!r} ({shown}).")
        raise VendorError(f"BambooHR answered {method} {path.split('?')[0]} with {shown}", status=response.status_code)

    # -- contract ------------------------------------------------------------------------------------------------

    def test_connection(self) -> ConnectionTestResult:
        try:
            me = self._api("GET", "employees/0?fields=firstName,lastName,workEmail").json()
        except (ConnectorError, requests.RequestException, ValueError) as exc:
            return ConnectionTestResult.failed(exc, vendor="BambooHR")
        who = " ".join(filter(None, (me.get("firstName"), me.get("lastName")))) or me.get("workEmail") or "API user"
        return ConnectionTestResult(
            ok=True,
            message=f"Connected to BambooHR company {self.company} as {who}.",
            detail={"company": self.company, "employee_id": me.get("id")},
        )

    def read(self, object_name: str, *, since: str | None = None, page_size: int | None = None) -> Iterator[Page]:
        self.object_spec(object_name)
        size = max(1, page_size or DEFAULT_PAGE_SIZE)
        since_moment = parse_utc_datetime(since) if since else None
        if since and since_moment is None:
            raise ConnectorError(f"Not an ISO 8601 cursor: {since!r}")

        actions: dict[str, dict[str, Any]] = {}
        if since_moment is not None:
            changed = self._api("GET", f"employees/changed?since={quote(iso_utc(since_moment))}").json()
            actions = {str(k): v for k, v in (changed.get("employees") or {}).items() if isinstance(v, Mapping)}
            if not actions:
                yield Page(records=[], rejects=[], cursor=since, has_more=False)
                return

        rows = self._report(since_moment)
        records, rejects = self._parse(rows, actions)
        seen = {r.external_id for r in records} | {r.external_id for r in rejects if r.external_id}
        for employee_id, change in actions.items():
            if employee_id in seen:
                continue
            moment = parse_utc_datetime(change.get("lastChanged"))
            if change.get("action") == "Deleted" and moment:
                # A deleted employee is not in any report: pass the deletion on so the engine can deactivate.
                data = {"id": employee_id, "action": "Deleted", "lastChanged": change.get("lastChanged")}
                records.append(SourceRecord(external_id=employee_id, updated_at=iso_utc(moment), data=data))
            else:
                fetched, fetch_rejects = self._parse([self._employee(employee_id)], actions)
                records += fetched
                rejects += fetch_rejects

        records.sort(key=lambda r: (r.updated_at, int(r.external_id) if r.external_id.isdigit() else 0))
        if not records:
            yield Page(records=[], rejects=rejects, cursor=since, has_more=False)
            return
        pieces = list(chunks(records, size))
        for number, chunk in enumerate(pieces):
            last = number == len(pieces) - 1
            # Rejected rows ride with the first page so they are reported as soon as anything is.
            yield Page(
                records=chunk,
                rejects=rejects if number == 0 else [],
                cursor=chunk[-1].updated_at,
                has_more=not last,
            )

    def _report(self, since: datetime | None) -> list[Any]:
        body: dict[str, Any] = {"title": "Employees for integration", "fields": list(EMPLOYEE_FIELDS)}
        if since is not None:
            body["filters"] = {"lastChanged": {"includeNull": "no", "value": iso_utc(since)}}
        report = self._api("POST", "reports/custom?format=JSON", json=body).json()
        return list(report.get("employees") or [])

    def _employee(self, employee_id: str) -> Any:
        return self._api("GET", f"employees/{quote(employee_id)}?fields={','.join(EMPLOYEE_FIELDS)}").json()

    @staticmethod
    def _parse(
        rows: list[Any], actions: Mapping[str, Mapping[str, Any]]
    ) -> tuple[list[SourceRecord], list[RejectedRecord]]:
        records: list[SourceRecord] = []
        rejects: list[RejectedRecord] = []
        for row in rows:
            if not isinstance(row, Mapping):
                rejects.append(RejectedRecord(external_id=None, reason="The employee is not a JSON object.", raw=row))
                continue
            employee_id = str(row.get("id") or "").strip()
            if not employee_id:
                rejects.append(RejectedRecord(external_id=None, reason="The employee has no id.", raw=row))
                continue
            changed = parse_utc_datetime(row.get("lastChanged"))
            if changed is None:
                reason = f"lastChanged is not a timestamp: {row.get('lastChanged')!r}"
                rejects.append(RejectedRecord(external_id=employee_id, reason=reason, raw=row))
                continue
            data = dict(row)
            data["id"] = employee_id
            problem = None
            for field in DATE_FIELDS:
                value = data.get(field)
                if value in (None, "", EMPTY_DATE):
                    data[field] = None
                elif not re.fullmatch(r"\d{4}-\d{2}-\d{2}", str(value)):
                    problem = f"{field} is not a date: {value!r}"
            if problem:
                rejects.append(RejectedRecord(external_id=employee_id, reason=problem, raw=row))
                continue
            data["action"] = (actions.get(employee_id) or {}).get("action")
            records.append(SourceRecord(external_id=employee_id, updated_at=iso_utc(changed), data=data))
        return records, rejects
