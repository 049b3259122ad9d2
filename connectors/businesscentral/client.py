"""Dynamics 365 Business Central connector: customers, projects, employees and sales invoices over API v2.0.

Sign-in is an Entra client-credentials token for `https://api.businesscentral.dynamics.com/.default` (shared code
in connectors/entra.py); web-service access keys stopped working online in 2022. Reads filter on
`lastModifiedDateTime` and follow `@odata.nextLink`, with `@odata.count` as the total. Business Central has no
external-id field, so writes upsert by the record's own key: `number` (BC's "No.", upper-cased, at most 20
characters) for customers, projects and employees, `externalDocumentNumber` for invoices. One query finds the
batch's existing records with their ETags; then creates (POST) and changes (PATCH with `If-Match`, which Business
Central requires) go in JSON `$batch` calls of at most 100 requests, and records whose values already match are left
alone. A draft invoice whose lines changed gets them replaced: each line removed, the new ones added. Webhook subscriptions need a handshake (echo `validationToken`) on create and on renewal; notifications
are not signed, and carry the clientState we chose, which `verify_webhook` checks.
"""

from __future__ import annotations

import hmac
import json
from collections import Counter
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

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
    WebhookRejected,
    WriteMode,
    WriteResult,
    chunks,
    iso_utc,
    parse_utc_datetime,
)
from connectors.businesscentral.records import (
    EXTERNAL_DOCUMENT_MAX,
    FIELDS,
    KEYS,
    NUMBER_MAX,
    error_of,
    json_value,
    literal,
    same,
)
from connectors.entra import EntraTokens, entra_form_fields

DEFAULT_BASE_URL = "https://api.businesscentral.dynamics.com"
SCOPE = "https://api.businesscentral.dynamics.com/.default"
MAX_PAGE_SIZE = 20_000  # entities a page may hold
DEFAULT_PAGE_SIZE = 5000  # large enough to be few calls, small enough that an invoice page with lines stays light
BATCH_LIMIT = 100  # operations in one $batch
WATERMARK = "lastModifiedDateTime"

# ---------------------------------------------------------------------------------------------------------------
# (unverified) assumptions, shared with connectors/businesscentral/sandbox.py:
# - `$orderby=lastModifiedDateTime asc,id asc` is accepted on the standard API pages.
# - Code fields (number, externalDocumentNumber, currencyCode) are stored upper-cased, so keys are compared so.
# - The handshake is a POST to notificationUrl?validationToken=..., answered 200 with the token as plain text.
# ---------------------------------------------------------------------------------------------------------------


class BusinessCentralConnector(Connector):
    vendor = "businesscentral"
    label = "Dynamics 365 Business Central"
    category = "erp"
    objects = {
        name: ObjectSpec(
            name=name,
            label=label,
            writable=True,
            batch_size=BATCH_LIMIT,
            page_size=MAX_PAGE_SIZE,
            fields=FIELDS[name],
        )
        for name, label in (
            ("customers", "Customers"),
            ("projects", "Projects"),
            ("employees", "Employees"),
            ("salesInvoices", "Sales invoices"),
        )
    }

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        tenant = (self.credentials.get("tenant_id") or "").strip()
        environment = (self.credentials.get("environment") or "production").strip()
        self.root = f"{self.base_url}/v2.0/{quote(tenant, safe='')}/{quote(environment, safe='')}/api/v2.0"
        self.tokens = EntraTokens.for_connection(self.session, self.credentials, scope=SCOPE)
        self._company_id: str | None = None

    @classmethod
    def form_fields(cls) -> list[FormField]:
        return entra_form_fields(
            client_help="Registered in Business Central's Microsoft Entra Applications page, with permission sets.",
            more=[
                FormField(
                    "environment",
                    "Environment",
                    initial="production",
                    help="The environment's name, e.g. production or sandbox.",
                ),
                FormField("company", "Company name", help="As shown in Business Central's Companies list."),
                FormField(
                    "webhook_secret",
                    "Webhook client state",
                    kind="secret",
                    required=False,
                    help="A random value we give Business Central with each subscription; its notifications carry it back.",
                ),
            ],
        )

    @classmethod
    def default_base_url(cls, *_args: str) -> str:
        return DEFAULT_BASE_URL

    # -- HTTP --------------------------------------------------------------------------------------------------------

    def _api(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        url = url if url.startswith("http") else f"{self.root}/{url.lstrip('/')}"
        extra = kwargs.pop("headers", {})
        rejected = None
        for _attempt in (1, 2):
            token = self.tokens.token(rejected=rejected)
            headers = {"Authorization": f"Bearer {token}", "Accept": "application/json", **extra}
            response = self.session.request(method, url, headers=headers, **kwargs)
            if response.status_code != 401:
                return response
            rejected = token
        raise AuthenticationFailed(
            "Business Central refused the access token: register the app in Microsoft Entra Applications in "
            "Business Central and grant it permission sets."
        )

    def _json(self, method: str, url: str, **kwargs: Any) -> dict[str, Any]:
        response = self._api(method, url, **kwargs)
        try:
            body = response.json() if response.content else {}
        except ValueError:
            body = {}
        if response.status_code >= 400:
            code, message = error_of(body, response.status_code)
            raise VendorError(
                f"Business Central answered {method} {urlsplit(url).path.rsplit('/', 1)[-1]} with {code}: {message}",
                status=response.status_code,
                code=code,
            )
        return body

    def company_id(self) -> str:
        """The id of the connection's company, looked up by name once."""
        if self._company_id is None:
            name = (self.credentials.get("company") or "").strip()
            companies = self._json("GET", "companies").get("value") or []
            found = [
                c
                for c in companies
                if name and name.lower() in (str(c.get("name")).lower(), str(c.get("displayName")).lower())
            ]
            if not found and len(companies) == 1 and not name:
                found = companies
            if not found:
                known = ", ".join(str(c.get("name")) for c in companies) or "none"
                raise ConnectorError(
                    f"Business Central has no company named {name!r} in this environment (there: {known})."
                )
            self._company_id = str(found[0]["id"])
        return self._company_id

    def _collection(self, object_name: str) -> str:
        self.object_spec(object_name)
        return f"companies({self.company_id()})/{object_name}"

    # -- contract ------------------------------------------------------------------------------------------------------

    def test_connection(self) -> ConnectionTestResult:
        environment = self.credentials.get("environment") or "production"
        try:
            company = self.company_id()
            body = self._json(
                "GET", f"companies({company})/customers", params={"$top": "1", "$count": "true", "$select": "number"}
            )
        except (ConnectorError, requests.RequestException) as exc:
            return ConnectionTestResult.failed(exc, vendor="Business Central")
        customers = body.get("@odata.count")
        name = self.credentials.get("company")
        return ConnectionTestResult(
            ok=True,
            message=f"Connected to Business Central environment {environment}, company {name} ({customers} customers).",
            detail={"company_id": company, "customers": customers},
        )

    def read(self, object_name: str, *, since: str | None = None, page_size: int | None = None) -> Iterator[Page]:
        url = self._collection(object_name)
        size = max(1, min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE))
        params: dict[str, str] | None = {"$orderby": f"{WATERMARK} asc,id asc", "$count": "true"}
        if since:
            watermark = parse_utc_datetime(since, needs_time=True)
            if watermark is None:
                raise ConnectorError(f"The sync cursor {since!r} is not a date and time.")
            params["$filter"] = f"{WATERMARK} ge {iso_utc(watermark)}"
        if object_name == "salesInvoices":
            params["$expand"] = "salesInvoiceLines"
        headers = {"Prefer": f"odata.maxpagesize={size}"}
        cursor, total = since, None
        while True:
            body = self._json("GET", url, params=params, headers=headers)
            if total is None and isinstance(body.get("@odata.count"), int):
                total = body["@odata.count"]
            records, rejects = self._parse(body.get("value") or [])
            for record in records:
                if cursor is None or record.updated_at > cursor:
                    cursor = record.updated_at
            next_link = body.get("@odata.nextLink")
            yield Page(records=records, rejects=rejects, cursor=cursor, has_more=bool(next_link), total=total)
            if not next_link:
                return
            url, params = next_link, None

    @staticmethod
    def _parse(rows: list) -> tuple[list[SourceRecord], list[RejectedRecord]]:
        records, rejects = [], []
        for row in rows:
            if not isinstance(row, Mapping):
                rejects.append(RejectedRecord(None, "Business Central returned a row that is not an object.", row))
                continue
            record_id = row.get("id")
            if not isinstance(record_id, str) or len(record_id) != 36:
                rejects.append(RejectedRecord(None, "The row has no id.", row))
                continue
            modified = parse_utc_datetime(row.get(WATERMARK), needs_time=True)
            if modified is None or modified.year < 1900:
                reason = f"The row's {WATERMARK} {row.get(WATERMARK)!r} is not a real date and time."
                rejects.append(RejectedRecord(record_id, reason, row))
                continue
            data = {k: v for k, v in row.items() if not k.startswith("@")}
            records.append(SourceRecord(external_id=record_id, updated_at=iso_utc(modified), data=data))
        return records, rejects

    # -- writes --------------------------------------------------------------------------------------------------------

    def write(
        self, object_name: str, records: list[OutboundRecord], *, mode: WriteMode = "upsert"
    ) -> list[WriteResult]:
        results: list[WriteResult] = []
        for batch in chunks(records, BATCH_LIMIT):
            results.extend(self._write_batch(object_name, batch, mode))
        return results

    def _key_of(self, object_name: str, record: OutboundRecord) -> str | None:
        """The record's Business Central key: its mapped number (or our external id), upper-cased as BC stores it."""
        key_field = KEYS[object_name]
        value = record.fields.get(key_field) or record.external_id
        limit = EXTERNAL_DOCUMENT_MAX if key_field == "externalDocumentNumber" else NUMBER_MAX
        text = str(value or "").strip().upper()
        return text if 0 < len(text) <= limit else None

    def _write_batch(self, object_name: str, chunk: list[OutboundRecord], mode: WriteMode) -> list[WriteResult]:
        collection = self._collection(object_name)
        key_field = KEYS[object_name]
        results: dict[int, WriteResult] = {}
        keys: dict[int, str] = {}
        for index, record in enumerate(chunk):
            key = self._key_of(object_name, record)
            if key is None:
                limit = EXTERNAL_DOCUMENT_MAX if key_field == "externalDocumentNumber" else NUMBER_MAX
                results[index] = WriteResult(
                    record.external_id,
                    "failed",
                    error_code="INVALID_KEY",
                    error_message=f"Business Central needs a {key_field} of 1 to {limit} characters for this record.",
                )
            else:
                keys[index] = key
        existing = self._existing(collection, key_field, sorted(set(keys.values())))
        # (record index, request, the record's outcome when it succeeds); a record may need several requests.
        operations: list[tuple[int, dict[str, Any], str]] = []
        for index, key in keys.items():
            record = chunk[index]
            current = existing.get(key)
            # Everything mapped goes to Business Central, which refuses what it does not know: nothing is dropped.
            body = {
                k: json_value(v, k)
                for k, v in record.fields.items()
                if k not in ("id", WATERMARK) and not k.startswith("@")
            }
            body[key_field] = key
            if current is None:
                if mode == "update":
                    results[index] = WriteResult(
                        record.external_id,
                        "failed",
                        record.target_id,
                        "Internal_RecordNotFound",
                        f"No {object_name[:-1]} with {key_field} {key} exists to update.",
                    )
                    continue
                operations.append((index, {"method": "POST", "url": collection, "body": body}, "created"))
                continue
            if mode == "create":
                results[index] = WriteResult(record.external_id, "unchanged", current["id"])
                continue
            lines = body.pop("salesInvoiceLines", None)
            changes = {k: v for k, v in body.items() if not same(current.get(k), v, k)}
            line_requests = self._line_changes(collection, current, lines) if lines is not None else []
            if not changes and not line_requests:
                results[index] = WriteResult(record.external_id, "unchanged", current["id"])
                continue
            if changes:
                url = f"{collection}({current['id']})"
                headers = {"If-Match": current["@odata.etag"]}
                operations.append(
                    (index, {"method": "PATCH", "url": url, "headers": headers, "body": changes}, "updated")
                )
            operations.extend((index, request, "updated") for request in line_requests)
        answers: list[tuple[int, Any]] = []
        for batch in chunks(operations, BATCH_LIMIT):
            answers.extend(self._batch([request for _, request, _ in batch]))
        for (index, _request, outcome), (status, body) in zip(operations, answers, strict=True):
            record = chunk[index]
            if index in results and results[index].outcome == "failed":
                continue  # the record's first refusal is what it is reported by
            if status in (200, 201, 204):
                target = (body or {}).get("id") if outcome == "created" else existing[keys[index]]["id"]
                results.setdefault(index, WriteResult(record.external_id, outcome, target))
            else:
                code, message = error_of(body, status)
                results[index] = WriteResult(
                    record.external_id, "failed", record.target_id, code, self.session.redact(message)
                )
        return [results[i] for i in range(len(chunk))]

    def _line_changes(self, collection: str, current: dict[str, Any], wanted: list[dict[str, Any]]) -> list[dict]:
        """The requests that make a draft invoice's lines the ones wanted: none when they already are, else each
        line removed and the wanted ones added (BC numbers lines itself, so a line has no key of ours to match)."""

        def shape(line: Mapping[str, Any]) -> tuple:
            return (
                line.get("lineType") or "",
                str(line.get("lineObjectNumber") or "").upper(),
                line.get("description") or "",
                float(line.get("quantity") or 0),
                float(line.get("unitPrice") or 0),
            )

        present = current.get("salesInvoiceLines") or []
        if Counter(map(shape, present)) == Counter(map(shape, wanted)):
            return []
        lines = f"{collection}({current['id']})/salesInvoiceLines"
        removals = [
            {
                "method": "DELETE",
                "url": f"{lines}({line['id']})",
                "headers": {"If-Match": line.get("@odata.etag") or "*"},
                "body": None,
            }
            for line in present
        ]
        return removals + [{"method": "POST", "url": lines, "body": line} for line in wanted]

    def _existing(self, collection: str, key_field: str, keys: list[str]) -> dict[str, dict[str, Any]]:
        """The records holding these keys (with their ETags; an invoice with its lines), by key, in as few queries
        as the URL allows."""
        found: dict[str, dict[str, Any]] = {}
        for some_keys in chunks(keys, 40):
            condition = " or ".join(f"{key_field} eq {literal(k)}" for k in some_keys)
            url: str | None = collection
            params: dict[str, str] | None = {"$filter": condition}
            if collection.endswith("/salesInvoices"):
                params["$expand"] = "salesInvoiceLines"
            while url:
                body = self._json("GET", url, params=params)
                for row in body.get("value") or []:
                    found[str(row.get(key_field) or "").upper()] = row
                url, params = body.get("@odata.nextLink"), None
        return found

    def _batch(self, operations: list[dict[str, Any]]) -> list[tuple[int, Any]]:
        payload = {
            "requests": [
                {
                    "method": op["method"],
                    "id": str(n),
                    "url": op["url"],
                    "headers": {"Content-Type": "application/json", **op.get("headers", {})},
                    "body": op["body"],
                }
                for n, op in enumerate(operations)
            ]
        }
        body = self._json("POST", "$batch", json=payload, headers={"Content-Type": "application/json"})
        by_id = {str(r.get("id")): r for r in body.get("responses") or [] if isinstance(r, dict)}
        answers = []
        for n in range(len(operations)):
            answer = by_id.get(str(n))
            if answer is None:
                answers.append(
                    (
                        0,
                        {
                            "error": {
                                "code": "NO_RESULT",
                                "message": "Business Central returned no answer for this record.",
                            }
                        },
                    )
                )
            else:
                answers.append((int(answer.get("status") or 0), answer.get("body")))
        return answers

    # -- webhooks ------------------------------------------------------------------------------------------------------

    def subscribe(self, object_name: str, notification_url: str) -> dict[str, Any]:
        """Ask Business Central to notify `notification_url` of changes to `object_name` (it will handshake first)."""
        client_state = self.credentials.get("webhook_secret") or ""
        if not client_state:
            raise ConnectorError("Set a webhook client state on this connection before subscribing.")
        resource = f"/api/v2.0/{self._collection(object_name)}"
        return self._json(
            "POST",
            "subscriptions",
            json={"notificationUrl": notification_url, "resource": resource, "clientState": client_state},
        )

    def renew(self, subscription: Mapping[str, Any]) -> dict[str, Any]:
        """Renew a subscription before it expires (three days); Business Central handshakes again."""
        return self._json(
            "PATCH",
            f"subscriptions('{subscription['subscriptionId']}')",
            json={"notificationUrl": subscription["notificationUrl"]},
            headers={"If-Match": subscription["@odata.etag"]},
        )

    @classmethod
    def webhook_handshake(
        cls, *, method: str, url: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, str, str] | None:
        token = parse_qs(urlsplit(url).query).get("validationToken", [None])[0]
        return (200, "text/plain", token) if token else None

    @classmethod
    def verify_webhook(
        cls, *, secret: str, method: str, url: str, headers: Mapping[str, str], body: bytes, now: float | None = None
    ) -> None:
        if not secret:
            raise WebhookRejected("No webhook client state is configured for this Business Central connection.")
        try:
            notifications = json.loads(body.decode("utf-8-sig"))["value"]
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            raise WebhookRejected("The body is not a Business Central notification.") from None
        if not isinstance(notifications, list) or not notifications:
            raise WebhookRejected("The Business Central notification lists no change.")
        for notification in notifications:
            state = str((notification or {}).get("clientState") or "") if isinstance(notification, dict) else ""
            if not hmac.compare_digest(state.encode(), secret.encode()):
                raise WebhookRejected("The Business Central notification's clientState does not match.")
