"""The Salesforce platform's REST API, spoken once for every vendor that lives on it (Salesforce, Certinia).

Sign-in is the connected app's OAuth password or client-credentials flow. Reads are SOQL queries ordered by
SystemModstamp and followed through `nextRecordsUrl`; writes use sObject Collections (200 records a call, one
result per record) and upsert by an external id field the org has on every object we write. A vendor's
connector subclasses `SalesforcePlatformConnector` with its objects and, where its package needs them, the
conditions its reads add.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
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
    OutboundRecord,
    Page,
    RejectedRecord,
    SourceRecord,
    VendorError,
    WriteMode,
    WriteResult,
    chunks,
    parse_utc_datetime,
)

API_VERSION = "59.0"
QUERY_BATCH_MIN = 200  # Sforce-Query-Options batchSize is honoured between 200 and 2,000
QUERY_BATCH_MAX = 2000
COLLECTION_LIMIT = 200  # sObject Collections take at most 200 records a call
DEFAULT_EXTERNAL_ID_FIELD = "Integration_Record_Id__c"
WATERMARK_FIELD = "SystemModstamp"  # indexed, and moves on every change (LastModifiedDate misses system updates)
REQUEST_LIMIT_WAIT = 1.0  # Salesforce sends no Retry-After with REQUEST_LIMIT_EXCEEDED; wait this long, then retry

# (unverified) assumptions, kept in this one place (the sandbox behaves exactly so):
# - upsert by external id answers created:false (200) for an update (documented from v46 on, not re-checked);
# - an unknown field or a value of the wrong type refuses the whole collection call (400 INVALID_FIELD /
#   JSON_PARSER_ERROR) rather than one record; more than 200 records is 400 EXCEEDED_ID_LIMIT;
# - REQUEST_LIMIT_EXCEEDED comes without Retry-After: we wait REQUEST_LIMIT_WAIT and retry within the policy.

_ID_RE = re.compile(r"^[a-zA-Z0-9]{15}(?:[a-zA-Z0-9]{3})?$")


def request_limit_wait(response: requests.Response) -> float | None:
    """Rate-limit hook for VendorSession: Salesforce answers 403 REQUEST_LIMIT_EXCEEDED instead of 429."""
    if response.status_code != 403:
        return None
    if _error_code(response) != "REQUEST_LIMIT_EXCEEDED":
        return None
    retry_after = response.headers.get("Retry-After")
    try:
        return float(retry_after) if retry_after else REQUEST_LIMIT_WAIT
    except ValueError:
        return REQUEST_LIMIT_WAIT


def _error_list(response: requests.Response) -> list[dict]:
    """Salesforce REST errors are a JSON array of {message, errorCode, fields}."""
    try:
        body = response.json()
    except ValueError:
        return []
    if isinstance(body, dict):
        body = [body]
    return [e for e in body if isinstance(e, dict)] if isinstance(body, list) else []


def _error_code(response: requests.Response) -> str | None:
    errors = _error_list(response)
    return errors[0].get("errorCode") if errors else None


def _error_message(response: requests.Response) -> str:
    errors = _error_list(response)
    if not errors:
        return f"HTTP {response.status_code}"
    return "; ".join(f"{e.get('errorCode', 'ERROR')}: {e.get('message', '')}".strip() for e in errors)


def parse_salesforce_datetime(value: Any) -> datetime | None:
    """Salesforce's `2024-05-01T12:34:56.000+0000` (and plain ISO 8601) as an aware UTC datetime."""
    return parse_utc_datetime(value, needs_time=True)


def soql_datetime(moment: datetime) -> str:
    """A SOQL datetime literal (unquoted, UTC, whole seconds)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _strip_attributes(record: Mapping[str, Any]) -> dict[str, Any]:
    """Drop SOQL's `attributes` blocks, keeping relationship fields as nested dicts."""
    clean: dict[str, Any] = {}
    for key, value in record.items():
        if key == "attributes":
            continue
        clean[key] = _strip_attributes(value) if isinstance(value, Mapping) else value
    return clean


def _json_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")
    if isinstance(value, date):
        return value.isoformat()
    return value


def object_spec(name: str, label: str, fields: tuple[str, ...], *, writable: bool = True) -> ObjectSpec:
    """An sObject read by SOQL pages of up to 2,000 rows and written 200 records a call."""
    return ObjectSpec(
        name=name,
        label=label,
        writable=writable,
        batch_size=COLLECTION_LIMIT,
        page_size=QUERY_BATCH_MAX,
        fields=fields,
    )


class SalesforcePlatformConnector(Connector):
    """An org's REST API. Subclasses set vendor, label, category and objects."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.session.rate_limit_detector = request_limit_wait
        self.external_id_field = self.credentials.get("external_id_field") or DEFAULT_EXTERNAL_ID_FIELD
        self._access_token: str | None = None
        self._described: dict[str, set[str]] = {}
        self.api_usage: tuple[int, int] | None = None  # (used, max) from the last Sforce-Limit-Info header

    @classmethod
    def form_fields(cls) -> list[FormField]:
        return [
            FormField("client_id", "Consumer key", help="From the connected app in Setup."),
            FormField("client_secret", "Consumer secret", kind="secret"),
            FormField(
                "username",
                "Integration user name",
                required=False,
                help="Leave empty to use the client-credentials flow of the connected app.",
            ),
            FormField(
                "password",
                "Password and security token",
                kind="secret",
                required=False,
                help="The user's password followed by their security token (password flow only).",
            ),
            FormField(
                "external_id_field",
                "External ID field",
                required=False,
                initial=DEFAULT_EXTERNAL_ID_FIELD,
                help="A text field marked External ID and Unique on every object we write.",
            ),
        ]

    # -- authentication --------------------------------------------------------------------------------------

    def _authenticate(self) -> str:
        form = {
            "client_id": self.credentials.get("client_id", ""),
            "client_secret": self.credentials.get("client_secret", ""),
        }
        if self.credentials.get("username"):
            form.update(
                grant_type="password",
                username=self.credentials["username"],
                password=self.credentials.get("password", ""),
            )
        else:
            form["grant_type"] = "client_credentials"
        response = self.session.post(
            f"{self.base_url}/services/oauth2/token", data=form, headers={"Accept": "application/json"}
        )
        if response.status_code != 200:
            try:
                body = response.json()
            except ValueError:
                body = {}
            error = body.get("error", f"HTTP {response.status_code}") if isinstance(body, dict) else "error"
            description = body.get("error_description", "") if isinstance(body, dict) else ""
            raise AuthenticationFailed(f"{self.label} refused the sign-in: {description or error} ({error}).")
        token = response.json()["access_token"]
        self._remember_secret(token)
        self._access_token = token
        return token

    def _remember_secret(self, value: str) -> None:
        # The access token is as sensitive as the password: make sure the session redacts it too.
        self.session.add_secrets([value])

    def _api(self, method: str, path: str, *, expected: tuple[int, ...] = (200,), **kwargs) -> requests.Response:
        """Call the REST API; re-authenticate once on INVALID_SESSION_ID; raise on unexpected statuses."""
        url = path if path.startswith("http") else self._url(path)
        extra_headers = kwargs.pop("headers", {})
        for attempt in (1, 2):
            token = self._access_token or self._authenticate()
            headers = {"Authorization": f"Bearer {token}", "Accept": "application/json", **extra_headers}
            response = self.session.request(method, url, headers=headers, **kwargs)
            self._note_limits(response)
            if response.status_code == 401 and attempt == 1:
                self._access_token = None  # expired or revoked session: sign in again once
                continue
            break
        if response.status_code == 401:
            raise AuthenticationFailed(f"{self.label} rejected the session: {_error_message(response)}")
        if response.status_code not in expected:
            raise VendorError(
                f"{self.label} answered {method} {urlsplit(url).path} with {_error_message(response)}",
                status=response.status_code,
                code=_error_code(response),
            )
        return response

    def _url(self, path: str) -> str:
        if path.startswith("/services/"):
            return f"{self.base_url}{path}"
        return f"{self.base_url}/services/data/v{API_VERSION}/{path.lstrip('/')}"

    def _note_limits(self, response: requests.Response) -> None:
        match = re.search(r"api-usage=(\d+)/(\d+)", response.headers.get("Sforce-Limit-Info", ""))
        if match:
            self.api_usage = (int(match.group(1)), int(match.group(2)))

    # -- contract ----------------------------------------------------------------------------------------------

    def test_connection(self) -> ConnectionTestResult:
        try:
            self._authenticate()
            self._api("GET", "limits")
            missing = [o for o in self.objects if self.external_id_field not in self._fields_of(o)]
        except (ConnectorError, requests.RequestException) as exc:
            return ConnectionTestResult.failed(exc, vendor=self.label)
        who = self.credentials.get("username") or "the connected app's integration user"
        host = urlsplit(self.base_url).netloc
        message = f"Connected to {self.label} at {host} as {who}."
        if self.api_usage:
            message += f" API usage today: {self.api_usage[0]:,} of {self.api_usage[1]:,} requests."
        if missing:
            message += f" The external ID field {self.external_id_field} is missing on {', '.join(missing)}."
        detail = {"api_usage": self.api_usage, "objects_missing_external_id": missing}
        return ConnectionTestResult(ok=True, message=message, detail=detail)

    def _fields_of(self, object_name: str) -> set[str]:
        """Field names the org really has (describe, once per connector), so absent fields are never queried."""
        if object_name not in self._described:
            body = self._api("GET", f"sobjects/{object_name}/describe").json()
            self._described[object_name] = {f["name"] for f in body.get("fields", [])}
        return self._described[object_name]

    def _select_list(self, object_name: str) -> list[str]:
        present = self._fields_of(object_name)
        # The org's own custom fields come along (a deal's project code, an account's payment terms): a mapping
        # can then use any of them, as a person sees them in Salesforce.
        custom = sorted(name for name in present if name.endswith("__c") and "__" not in name[:-3])
        wanted = [*self.objects[object_name].fields, self.external_id_field, *custom]
        # Relationship paths exist when their lookup field does: Account.Name -> AccountId, pse__Project__r.Name ->
        # pse__Project__c.
        return [f for f in dict.fromkeys(wanted) if _lookup_field(f) in present]

    def read(self, object_name: str, *, since: str | None = None, page_size: int | None = None) -> Iterator[Page]:
        if object_name not in self.objects:
            raise ConnectorError(f"{self.label} has no readable object {object_name!r} here.")
        # Field and object names come from our own lists, checked against describe; only the cursor is a value,
        # and it is re-formatted from a parsed datetime. No user text reaches the query.
        soql = f"SELECT {', '.join(self._select_list(object_name))} FROM {object_name}"  # noqa: S608
        conditions = self.read_conditions(object_name)
        watermark: datetime | None = None
        if since:
            watermark = parse_salesforce_datetime(since)
            if watermark is None:
                raise ConnectorError(f"The sync cursor {since!r} is not a date and time.")
            conditions = [*conditions, f"{WATERMARK_FIELD} >= {soql_datetime(watermark)}"]
        if conditions:
            soql += " WHERE " + " AND ".join(conditions)
        soql += f" ORDER BY {WATERMARK_FIELD} ASC, Id ASC"
        batch = max(QUERY_BATCH_MIN, min(QUERY_BATCH_MAX, page_size or QUERY_BATCH_MAX))
        headers = {"Sforce-Query-Options": f"batchSize={batch}"}

        response = self._api("GET", "query", params={"q": soql}, headers=headers)
        while True:
            body = response.json()
            records: list[SourceRecord] = []
            rejects: list[RejectedRecord] = []
            for raw in body.get("records", []):
                record, reject = self._source_record(raw)
                if reject:
                    rejects.append(reject)
                    continue
                records.append(record)
                modstamp = parse_salesforce_datetime(record.updated_at)
                watermark = modstamp if watermark is None or modstamp > watermark else watermark
            done = bool(body.get("done", True)) or not body.get("nextRecordsUrl")
            cursor = soql_datetime(watermark) if watermark else since
            yield Page(records=records, rejects=rejects, cursor=cursor, has_more=not done)
            if done:
                return
            response = self._api("GET", body["nextRecordsUrl"], headers=headers)

    def read_conditions(self, object_name: str) -> list[str]:
        """SOQL conditions every read of `object_name` adds (constants of ours, never user text)."""
        return []

    @staticmethod
    def _source_record(raw: Any) -> tuple[SourceRecord | None, RejectedRecord | None]:
        if not isinstance(raw, Mapping):
            return None, RejectedRecord(
                external_id=None, reason="Salesforce returned a record that is not an object.", raw=raw
            )
        record_id = raw.get("Id")
        if not isinstance(record_id, str) or not _ID_RE.match(record_id):
            return None, RejectedRecord(external_id=None, reason="The record has no valid Salesforce Id.", raw=raw)
        modstamp = parse_salesforce_datetime(raw.get(WATERMARK_FIELD))
        if modstamp is None:
            reason = f"The record's {WATERMARK_FIELD} {raw.get(WATERMARK_FIELD)!r} is not a date and time."
            return None, RejectedRecord(external_id=record_id, reason=reason, raw=raw)
        updated_at = modstamp.strftime("%Y-%m-%dT%H:%M:%SZ")
        return SourceRecord(external_id=record_id, updated_at=updated_at, data=_strip_attributes(raw)), None

    def write(
        self, object_name: str, records: list[OutboundRecord], *, mode: WriteMode = "upsert"
    ) -> list[WriteResult]:
        if object_name not in self.objects or not self.objects[object_name].writable:
            raise ConnectorError(f"{self.label} cannot write {object_name} here.")
        results: list[WriteResult] = []
        for chunk in chunks(records, COLLECTION_LIMIT):
            results.extend(self._write_chunk(object_name, chunk, mode))
        return results

    def _write_chunk(self, object_name: str, chunk: list[OutboundRecord], mode: WriteMode) -> list[WriteResult]:
        sendable: list[OutboundRecord] = []
        payload: list[dict[str, Any]] = []
        local_failures: dict[int, WriteResult] = {}
        for index, record in enumerate(chunk):
            body: dict[str, Any] = {"attributes": {"type": object_name}}
            body.update({k: _json_value(v) for k, v in record.fields.items() if k not in ("Id", "attributes")})
            if mode == "update":
                if not record.target_id:
                    local_failures[index] = WriteResult(
                        external_id=record.external_id,
                        outcome="failed",
                        error_code="MISSING_ID",
                        error_message="This record has no Salesforce Id yet, so it cannot be updated.",
                    )
                    continue
                body["id"] = record.target_id
            else:
                body[self.external_id_field] = record.external_id
            sendable.append(record)
            payload.append(body)

        outcomes: list[WriteResult] = []
        if payload:
            request = {"allOrNone": False, "records": payload}
            if mode == "create":
                method, path = "POST", "composite/sobjects"
            elif mode == "update":
                method, path = "PATCH", "composite/sobjects"
            else:
                method, path = "PATCH", f"composite/sobjects/{object_name}/{self.external_id_field}"
            response = self._api(method, path, json=request, expected=(200, 400))
            if response.status_code == 400:
                # The whole call was refused (e.g. a value Salesforce could not parse): every record failed alike.
                code, message = _error_code(response) or "INVALID_REQUEST", _error_message(response)
                outcomes = [
                    WriteResult(record.external_id, "failed", record.target_id, code, message) for record in sendable
                ]
            else:
                outcomes = [
                    self._write_result(record, result, mode)
                    for record, result in zip(sendable, response.json(), strict=True)
                ]

        merged, sent = [], iter(outcomes)
        for index in range(len(chunk)):
            merged.append(local_failures[index] if index in local_failures else next(sent))
        return merged

    @staticmethod
    def _write_result(record: OutboundRecord, result: Mapping[str, Any], mode: WriteMode) -> WriteResult:
        if result.get("success"):
            if mode == "create":
                outcome = "created"
            elif mode == "update":
                outcome = "updated"
            else:
                outcome = "created" if result.get("created") else "updated"
            return WriteResult(external_id=record.external_id, outcome=outcome, target_id=result.get("id"))
        errors = result.get("errors") or [{}]
        first = errors[0]
        message = "; ".join(
            e.get("message", "") + (f" (fields: {', '.join(e['fields'])})" if e.get("fields") else "") for e in errors
        )
        return WriteResult(
            external_id=record.external_id,
            outcome="failed",
            target_id=result.get("id") or record.target_id,
            error_code=first.get("statusCode") or first.get("errorCode") or "UNKNOWN",
            error_message=message or "The record was not saved.",
        )


def _lookup_field(path: str) -> str:
    """The field a select item needs: itself, or for a relationship path the lookup it goes through."""
    if "." not in path:
        return path
    relationship = path.split(".")[0]
    return relationship[:-3] + "__c" if relationship.endswith("__r") else relationship + "Id"


class ApprovedReadsConnector(SalesforcePlatformConnector):
    """A PSA on the platform whose time and expenses carry an approval status: a connection reads only the approved
    ones unless its form says otherwise (`approved_only`), and the vendor names them in its own words."""

    approved_only_label = "Read approved time and expenses only"
    approved_only_help = ""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        approved = (self.credentials.get("approved_only") or "yes").strip().lower()
        self.approved_only = approved in ("yes", "true", "1")

    @classmethod
    def form_fields(cls) -> list[FormField]:
        return [
            *super().form_fields(),
            FormField(
                "approved_only", cls.approved_only_label, required=False, initial="yes", help=cls.approved_only_help
            ),
        ]
