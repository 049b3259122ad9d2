"""NetSuite connector: customers, projects (job), employees and invoices over SuiteTalk REST web services.

Sign-in is OAuth 2.0 client credentials with a JWT assertion signed by the private key of the certificate
mapped to the integration. Reads are SuiteQL queries ordered by lastmodifieddate and followed through the
`next` link (1,000 rows a page at most). Writes are one record a request (NetSuite has no bulk create):
upserts by external id, a few in parallel, never more than the account's concurrency allows.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import quote, urlsplit

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
    json_object,
)
from connectors.netsuite.auth import client_assertion
from connectors.netsuite.records import (
    DATE_RE,
    DATETIME_RE,
    RECORD_KINDS,
    WATERMARK,
    RecordKind,
    describe_error,
    json_value,
    parse_iso_datetime,
    select_list,
    sql_string,
)

TOKEN_PATH = "/services/rest/auth/oauth2/v1/token"  # noqa: S105 -- a path, not a password
RECORD_PATH = "/services/rest/record/v1"
SUITEQL_PATH = "/services/rest/query/v1/suiteql"
SUITEQL_PAGE_MAX = 1000  # rows a SuiteQL page may hold
SUITEQL_MAX_RESULTS = 100_000  # rows one SuiteQL query can page through; past that, query again from the watermark
SUITEQL_IN_LIST_MAX = 1000  # Oracle's cap on the items of one IN (...) list
TOKEN_REFRESH_MARGIN = 60  # fetch a new access token this long before the old one expires
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
IDEMPOTENCY_HEADER = "X-NetSuite-idempotency-key"
IDEMPOTENCY_NAMESPACE = uuid.UUID("5b6a2f0e-4d8c-4f57-9a51-6f3d2c1b0a99")
DEFAULT_CONCURRENCY = 2  # the account's 5 slots are shared by every integration: take a few, not all
EXTERNAL_ID_RE = re.compile(r"^[A-Za-z0-9_\-]{1,255}$")  # the characters NetSuite allows in an external id (eid:)

# ---------------------------------------------------------------------------------------------------------------
# (unverified) assumptions, kept here and emulated the same way by connectors/netsuite/sandbox.py:
# - The integration role's time zone is UTC, so TO_CHAR(lastmodifieddate, ...) and TO_TIMESTAMP(...) in SuiteQL
#   are UTC. Raw SuiteQL dates come in the account's date format ("1/2/2024"), hence TO_CHAR for every date.
# - Requests past the account's concurrency limit are answered 429 with o:errorCode CONCURRENCY_LIMIT_EXCEEDED and
#   no Retry-After; VendorSession backs off and retries them.
# - A repeated X-NetSuite-idempotency-key is answered 400 IDEMPOTENCY_ERROR; the earlier request took effect.
# - The project of an invoice item line is the line's `job` reference; job.jobBillingType takes TM / FBM / FBI / CB.
# - The token endpoint answers {"error": "invalid_client" | "invalid_grant" | "invalid_request"} with 400/401.
# ---------------------------------------------------------------------------------------------------------------
CONCURRENCY_ERROR_CODE = "CONCURRENCY_LIMIT_EXCEEDED"
IDEMPOTENCY_ERROR_CODE = "IDEMPOTENCY_ERROR"


class NetSuiteConnector(Connector):
    vendor = "netsuite"
    label = "NetSuite"
    category = "erp"
    objects = {
        name: ObjectSpec(
            name=name,
            label=label,
            writable=True,
            # NetSuite's REST API takes one record a request; write() runs a batch through a pool bounded by the
            # account's concurrency after one SuiteQL lookup for the whole batch, so a larger batch costs fewer
            # lookups and nothing else (an invoice flush writes its chunks of 200 with 1 lookup, not 20).
            batch_size=200,
            page_size=SUITEQL_PAGE_MAX,
            fields=RECORD_KINDS[name].writable_fields,
        )
        for name, label in (
            ("customer", "Customers"),
            ("job", "Projects"),
            ("employee", "Employees"),
            ("invoice", "Invoices"),
        )
    }

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._token_lock = threading.Lock()
        self._access_token: str | None = None
        self._token_expires_at = 0.0
        try:
            self.concurrency = max(1, int(self.credentials.get("concurrency_limit") or DEFAULT_CONCURRENCY))
        except ValueError:
            self.concurrency = DEFAULT_CONCURRENCY

    @classmethod
    def form_fields(cls) -> list[FormField]:
        return [
            FormField(
                "account_id",
                "Account ID",
                help="Setup > Company > Company Information, e.g. 1234567 or 1234567_SB1 for a sandbox account.",
            ),
            FormField("client_id", "Client ID", help="From the integration record (Client Credentials grant)."),
            FormField(
                "certificate_id",
                "Certificate ID",
                help="Setup > Integration > OAuth 2.0 Client Credentials (M2M) Setup, for the uploaded certificate.",
            ),
            FormField(
                "private_key",
                "Certificate private key (PEM)",
                kind="secret",
                multiline=True,
                help="The private key of the certificate uploaded to NetSuite (RSA or EC).",
            ),
            FormField(
                "concurrency_limit",
                "Concurrent requests",
                required=False,
                initial=str(DEFAULT_CONCURRENCY),
                help="NetSuite allows 5 concurrent requests per account (+10 per SuiteCloud Plus licence), "
                "shared by every integration. Use at most this many.",
            ),
        ]

    @classmethod
    def default_base_url(cls, account_id: str) -> str:
        """https://<account>.suitetalk.api.netsuite.com, with the account id written as NetSuite hosts it."""
        return f"https://{account_id.strip().lower().replace('_', '-')}.suitetalk.api.netsuite.com"

    # -- authentication ------------------------------------------------------------------------------------------

    def _fetch_token(self) -> str:
        assertion = client_assertion(self.credentials, token_url=f"{self.base_url}{TOKEN_PATH}")
        self.session.add_secrets([assertion])  # a signed assertion is a credential for its few minutes
        response = self.session.post(
            f"{self.base_url}{TOKEN_PATH}",
            data={
                "grant_type": "client_credentials",
                "client_assertion_type": CLIENT_ASSERTION_TYPE,
                "client_assertion": assertion,
            },
            headers={"Accept": "application/json"},
        )
        if response.status_code != 200:
            error = json_object(response).get("error")
            raise AuthenticationFailed(
                f"NetSuite refused the sign-in ({error or f'HTTP {response.status_code}'}): check the account ID, "
                "the client ID, the certificate ID and that the private key matches the uploaded certificate."
            )
        body = response.json()
        token = body["access_token"]
        self.session.add_secrets([token])
        self._access_token = token
        self._token_expires_at = time.monotonic() + float(body.get("expires_in") or 3600) - TOKEN_REFRESH_MARGIN
        return token

    def _token(self, *, renew: bool = False, rejected: str | None = None) -> str:
        """The current access token; a new one when asked, when expired, or when `rejected` is still current."""
        with self._token_lock:
            # Several writer threads may see the same 401: only the first replaces the token.
            stale = rejected is not None and rejected == self._access_token
            if renew or stale or not self._access_token or time.monotonic() >= self._token_expires_at:
                return self._fetch_token()
            return self._access_token

    def _api(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """An authorised call; a 401 gets one fresh token, then raises AuthenticationFailed."""
        extra_headers = kwargs.pop("headers", {})
        url = url if url.startswith("http") else f"{self.base_url}{url}"
        rejected = None
        for _attempt in (1, 2):
            token = self._token(rejected=rejected)
            headers = {"Authorization": f"Bearer {token}", "Accept": "application/json", **extra_headers}
            response = self.session.request(method, url, headers=headers, **kwargs)
            if response.status_code != 401:
                return response
            rejected = token  # the token expired or was revoked: sign in again once
        code, message = describe_error(response)
        raise AuthenticationFailed(f"NetSuite rejected the access token ({code}): {message}")

    # -- SuiteQL -------------------------------------------------------------------------------------------------

    def suiteql(self, query: str, *, limit: int = SUITEQL_PAGE_MAX, offset: int = 0, url: str | None = None) -> dict:
        """Run one SuiteQL page. `url` is a `next` link from a previous page (it carries limit and offset)."""
        target = url or f"{SUITEQL_PATH}?limit={limit}&offset={offset}"
        response = self._api("POST", target, json={"q": query}, headers={"Prefer": "transient"})
        if response.status_code != 200:
            code, message = describe_error(response)
            raise VendorError(f"NetSuite SuiteQL failed: {message}", status=response.status_code, code=code)
        return response.json()

    def _read_query(self, kind: RecordKind, since: datetime | None) -> str:
        conditions = []
        if kind.type_filter:
            conditions.append(f"type = {sql_string(kind.type_filter)}")
        if since is not None:
            stamp = since.strftime("%Y-%m-%d %H:%M:%S")
            conditions.append(f"{WATERMARK} >= TO_TIMESTAMP('{stamp}', 'YYYY-MM-DD HH24:MI:SS')")
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        # id breaks ties so the order is total and offset paging neither repeats nor skips rows.
        # Table and columns are our constants; the only value is a formatted timestamp.
        return f"SELECT {select_list(kind)} FROM {kind.table}{where} ORDER BY {WATERMARK} ASC, id ASC"  # noqa: S608

    # -- contract ------------------------------------------------------------------------------------------------

    def test_connection(self) -> ConnectionTestResult:
        account = self.credentials.get("account_id") or urlsplit(self.base_url).hostname or "NetSuite"
        try:
            self._token(renew=True)
            body = self.suiteql("SELECT id FROM customer", limit=1)
        except (ConnectorError, requests.RequestException) as exc:
            return ConnectionTestResult.failed(exc, vendor="NetSuite")
        customers = body.get("totalResults", 0)
        return ConnectionTestResult(
            ok=True,
            message=f"Connected to NetSuite account {account} ({customers} customers visible).",
            detail={"account_id": account, "customers": customers},
        )

    def _kind(self, object_name: str) -> RecordKind:
        try:
            return RECORD_KINDS[object_name]
        except KeyError:
            raise ConnectorError(f"NetSuite has no object {object_name!r}; known: {', '.join(RECORD_KINDS)}") from None

    def read(self, object_name: str, *, since: str | None = None, page_size: int | None = None) -> Iterator[Page]:
        kind = self._kind(object_name)
        limit = max(1, min(page_size or SUITEQL_PAGE_MAX, SUITEQL_PAGE_MAX))
        watermark = parse_iso_datetime(since) if since else None
        cursor = since
        query = self._read_query(kind, watermark)
        body = self.suiteql(query, limit=limit, offset=0)
        restarted_from: str | None = None
        while True:
            records, rejects, page_cursor = self._parse_page(kind, body.get("items") or [])
            if page_cursor and (cursor is None or parse_iso_datetime(page_cursor) > parse_iso_datetime(cursor)):
                cursor = page_cursor
            has_more = bool(body.get("hasMore"))
            yield Page(records=records, rejects=rejects, cursor=cursor, has_more=has_more)
            if not has_more:
                return
            next_offset = int(body.get("offset") or 0) + int(body.get("count") or len(body.get("items") or []))
            if next_offset + limit > SUITEQL_MAX_RESULTS:
                # One query pages through 100,000 rows at most: start a new one from the watermark reached.
                if cursor == restarted_from:
                    raise VendorError(
                        f"More than {SUITEQL_MAX_RESULTS} NetSuite {object_name} records share the modification "
                        f"time {cursor}; they cannot be paged through SuiteQL.",
                        code="TOO_MANY_RESULTS",
                    )
                restarted_from = cursor
                query = self._read_query(kind, parse_iso_datetime(cursor) if cursor else None)
                body = self.suiteql(query, limit=limit, offset=0)
                continue
            next_link = next((link.get("href") for link in body.get("links") or [] if link.get("rel") == "next"), None)
            body = (
                self.suiteql(query, url=next_link)
                if next_link
                else self.suiteql(query, limit=limit, offset=next_offset)
            )

    def _parse_page(self, kind: RecordKind, items: list) -> tuple[list[SourceRecord], list[RejectedRecord], str | None]:
        records: list[SourceRecord] = []
        rejects: list[RejectedRecord] = []
        cursor: str | None = None
        for item in items:
            if not isinstance(item, Mapping):
                rejects.append(RejectedRecord(external_id=None, reason="The row is not a JSON object.", raw=item))
                continue
            record_id = item.get("id")
            if record_id in (None, ""):
                rejects.append(RejectedRecord(external_id=None, reason="The row has no internal id.", raw=item))
                continue
            data, problem = self._row_data(kind, item)
            if problem:
                rejects.append(RejectedRecord(external_id=str(record_id), reason=problem, raw=item))
                continue
            updated = data["lastModifiedDate"]
            records.append(SourceRecord(external_id=str(record_id), updated_at=updated, data=data))
            cursor = updated if cursor is None or updated > cursor else cursor
        return records, rejects, cursor

    @staticmethod
    def _row_data(kind: RecordKind, item: Mapping[str, Any]) -> tuple[dict[str, Any], str | None]:
        """The row as REST-named fields (refs as {"id"}, booleans, ISO dates), or a reason it is malformed."""
        data: dict[str, Any] = {}
        for column in kind.columns:
            value = item.get(column.sql)  # SuiteQL leaves null columns out of the row
            if value is None or value == "":
                data[column.field] = None
            elif column.kind == "ref":
                data[column.field] = {"id": str(value)}
            elif column.kind == "bool":
                data[column.field] = value in ("T", True, "true")
            elif column.kind == "number":
                try:
                    data[column.field] = str(Decimal(str(value)))
                except ArithmeticError:
                    return data, f"{column.field} is not a number: {value!r}"
            elif column.kind == "date":
                if not DATE_RE.match(str(value)):
                    return data, f"{column.field} is not a date: {value!r}"
                data[column.field] = str(value)
            elif column.kind == "datetime":
                if not DATETIME_RE.match(str(value)):
                    return data, f"{column.field} is not a date and time: {value!r}"
                data[column.field] = f"{value}Z"
            else:
                data[column.field] = value
        if not data.get("lastModifiedDate"):
            return data, "The row has no last-modified date."
        return data, None

    # -- writes --------------------------------------------------------------------------------------------------

    def write(
        self, object_name: str, records: list[OutboundRecord], *, mode: WriteMode = "upsert"
    ) -> list[WriteResult]:
        kind = self._kind(object_name)
        results: list[WriteResult | None] = [None] * len(records)
        pending: list[int] = []
        for index, record in enumerate(records):
            if not EXTERNAL_ID_RE.match(record.external_id or ""):
                results[index] = WriteResult(
                    external_id=record.external_id,
                    outcome="failed",
                    error_code="INVALID_EXTERNAL_ID",
                    error_message="NetSuite external ids may hold only letters, digits, '_' and '-' (255 at most).",
                )
            else:
                pending.append(index)
        # Upsert answers 204 either way; to tell created from updated, look up (in one query) the records whose
        # NetSuite id the engine does not already know.
        unknown = [records[i].external_id for i in pending if not records[i].target_id]
        existing = self._existing_ids(kind, unknown) if mode == "upsert" and unknown else {}
        if mode == "upsert":
            existing.update(
                {records[i].external_id.lower(): records[i].target_id for i in pending if records[i].target_id}
            )

        def write_one(index: int) -> WriteResult:
            return self._write_one(kind, records[index], mode, existing)

        if len(pending) <= 1 or self.concurrency <= 1:
            outcomes = [write_one(i) for i in pending]
        else:
            # Each worker holds one of the account's concurrency slots; errors (rate limit spent, auth) propagate.
            with ThreadPoolExecutor(max_workers=min(self.concurrency, len(pending))) as pool:
                outcomes = list(pool.map(write_one, pending))
        for index, outcome in zip(pending, outcomes, strict=True):
            results[index] = outcome
        return [r for r in results if r is not None]

    def _existing_ids(self, kind: RecordKind, external_ids: list[str]) -> dict[str, str]:
        """NetSuite internal id by lower-cased external id (external ids are case-insensitive in NetSuite)."""
        found: dict[str, str] = {}
        for chunk in chunks(external_ids, SUITEQL_IN_LIST_MAX):
            conditions = [f"externalid IN ({', '.join(sql_string(e) for e in chunk)})"]
            if kind.type_filter:
                conditions.append(f"type = {sql_string(kind.type_filter)}")
            # External ids go through sql_string (quotes doubled) and are checked against EXTERNAL_ID_RE first.
            query = f"SELECT id, externalid FROM {kind.table} WHERE {' AND '.join(conditions)} ORDER BY id"  # noqa: S608
            body = self.suiteql(query, limit=SUITEQL_PAGE_MAX)
            while True:
                for row in body.get("items") or []:
                    if row.get("externalid") and row.get("id"):
                        found[str(row["externalid"]).lower()] = str(row["id"])
                next_link = next((x.get("href") for x in body.get("links") or [] if x.get("rel") == "next"), None)
                if not body.get("hasMore") or not next_link:
                    break
                body = self.suiteql(query, url=next_link)
        return found

    def _write_one(self, kind: RecordKind, record: OutboundRecord, mode: WriteMode, existing: dict) -> WriteResult:
        body = {k: json_value(v) for k, v in record.fields.items() if k not in ("id", "externalId")}
        eid = f"eid:{quote(record.external_id, safe='')}"
        base = f"{RECORD_PATH}/{kind.record_type}"
        headers: dict[str, str] = {}
        if mode == "create":
            body["externalId"] = record.external_id
            # Same record, same content -> same key: a retry after a lost answer cannot create a duplicate.
            fingerprint = json.dumps(body, sort_keys=True, default=str)
            digest = hashlib.sha256(fingerprint.encode()).hexdigest()
            headers[IDEMPOTENCY_HEADER] = str(uuid.uuid5(IDEMPOTENCY_NAMESPACE, f"{kind.record_type}:{digest}"))
            response = self._api("POST", base, json=body, headers=headers)
        elif mode == "update":
            target = quote(record.target_id, safe="") if record.target_id else eid
            response = self._api("PATCH", f"{base}/{target}", json=body)
        else:
            response = self._api("PUT", f"{base}/{eid}", json=body)

        if response.status_code in (200, 201, 204):
            location = response.headers.get("Location", "")
            target_id = location.rstrip("/").rsplit("/", 1)[-1] if location else record.target_id
            if mode == "create":
                outcome = "created"
            elif mode == "update":
                outcome = "updated"
            else:
                outcome = "updated" if record.external_id.lower() in existing else "created"
            return WriteResult(external_id=record.external_id, outcome=outcome, target_id=target_id)

        code, message = describe_error(response)
        if code == IDEMPOTENCY_ERROR_CODE:
            # The same request was already carried out (an earlier attempt whose answer we never saw).
            return WriteResult(
                external_id=record.external_id,
                outcome="unchanged",
                target_id=self._internal_id(kind, record.external_id),
            )
        return WriteResult(
            external_id=record.external_id,
            outcome="failed",
            target_id=record.target_id,
            error_code=code,
            error_message=self.session.redact(message),
        )

    def _internal_id(self, kind: RecordKind, external_id: str) -> str | None:
        response = self._api("GET", f"{RECORD_PATH}/{kind.record_type}/eid:{quote(external_id, safe='')}")
        if response.status_code != 200:
            return None
        return str(response.json().get("id") or "") or None
