"""Dynamics 365 Sales connector: accounts and opportunities over the Dataverse Web API v9.2.

Sign-in is an Entra client-credentials token for the environment (`{environment}/.default`, shared code in
connectors/entra.py). Reads follow server-driven paging (`Prefer: odata.maxpagesize`, `@odata.nextLink`; Dataverse
has no `$skip`) and are incremental through change tracking: the first read ends with a delta link, whose token is
the cursor, and later reads return only what changed since. A cursor that is an ISO date instead filters on
`modifiedon`. Writes go in `$batch` requests of 250 operations that continue on error, each an upsert by the
alternate key on our external id column (`If-None-Match: *` to only create, `If-Match: *` to only update); an
opportunity whose `statecode` says Won or Lost is closed through the WinOpportunity / LoseOpportunity action,
because Dataverse refuses to close one by an update. Webhooks are not signed: they carry a key (WebhookKey's
`?code=` or a header) that we compare with the connection's secret.
"""

from __future__ import annotations

import hmac
import json
import re
import time
import uuid
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

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
    header_value,
    iso_utc,
    objects_by_name,
    parse_utc_datetime,
)
from connectors.dynamics365.account_fields import DataverseAccountFields
from connectors.dynamics365.records import (
    ACCOUNT_FIELDS,
    BATCH_SIZE,
    CURRENCY_CODE,
    GUID,
    LOGICAL_NAMES,
    OPPORTUNITY_FIELDS,
    PRIMARY_IDS,
    WRITABLE,
    close_request,
    error_of,
    id_from,
    key_literal,
    parse_batch_response,
    payload,
    response_error,
)
from connectors.entra import EntraTokens, entra_form_fields

API_PATH = "/api/data/v9.2"
MAX_PAGE_SIZE = 5000  # odata.maxpagesize above this is ignored by Dataverse
DEFAULT_EXTERNAL_ID_FIELD = "new_externalid"
EXTERNAL_ID_MAX = 100  # the length of our external id column
DELTA_PREFIX = "delta:"  # a cursor holding a change-tracking delta token (anything else is an ISO date)
WEBHOOK_KEY_HEADER = "x-webhook-key"  # the header name we ask admins to set for HttpHeader authentication
# Dataverse posts webhooks from its asynchronous service, which retries a failed delivery for a while: an hour
# is late but honest, older is a replay.
WEBHOOK_MAX_AGE_SECONDS = 3600

# ---------------------------------------------------------------------------------------------------------------
# (unverified) assumptions, shared with connectors/dynamics365/sandbox.py:
# - Closing an opportunity already closed answers 400 0x80040203 with "already closed" in the message; we count it
#   as done (a re-run of the same batch).
# - A $batch part's error body is the same {"error": {"code", "message"}} as a direct call's.
# ---------------------------------------------------------------------------------------------------------------
ALREADY_CLOSED = "already closed"
# Columns the account-health push creates carry the default publisher's prefix, as a maker's own columns do.


class DataverseConnector(DataverseAccountFields, Connector):
    vendor = "dynamics365"
    label = "Dynamics 365 Sales"
    category = "crm"
    objects = objects_by_name(
        ObjectSpec(
            "accounts",
            "Accounts",
            writable=True,
            batch_size=BATCH_SIZE,
            page_size=MAX_PAGE_SIZE,
            fields=WRITABLE["accounts"],
        ),
        ObjectSpec(
            "opportunities",
            "Opportunities",
            writable=True,
            batch_size=BATCH_SIZE,
            page_size=MAX_PAGE_SIZE,
            fields=WRITABLE["opportunities"],
        ),
    )

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.external_id_field = (self.credentials.get("external_id_field") or DEFAULT_EXTERNAL_ID_FIELD).strip()
        self.api = f"{self.base_url}{API_PATH}"
        self._currency_codes: dict[str, str] | None = None
        self.tokens = EntraTokens.for_connection(self.session, self.credentials, scope=f"{self.base_url}/.default")

    @classmethod
    def form_fields(cls) -> list[FormField]:
        return entra_form_fields(
            client_help="The app registration added to the environment as an application user.",
            more=[
                FormField(
                    "external_id_field",
                    "External ID column",
                    required=False,
                    initial=DEFAULT_EXTERNAL_ID_FIELD,
                    help="A text column on Account and Opportunity with an alternate key on it.",
                ),
                FormField(
                    "webhook_secret",
                    "Webhook key",
                    kind="secret",
                    required=False,
                    help=f"The WebhookKey (or the {WEBHOOK_KEY_HEADER} header value) registered for our webhook.",
                ),
            ],
        )

    # -- HTTP --------------------------------------------------------------------------------------------------------

    def _api(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """An authorised call; a 401 gets one fresh token, then AuthenticationFailed."""
        url = url if url.startswith("http") else f"{self.api}/{url.lstrip('/')}"
        extra = kwargs.pop("headers", {})
        rejected = None
        for _attempt in (1, 2):
            token = self.tokens.token(rejected=rejected)
            headers = {
                "Authorization": f"Bearer {token}",
                "Accept": "application/json",
                "OData-MaxVersion": "4.0",
                "OData-Version": "4.0",
                **extra,
            }
            response = self.session.request(method, url, headers=headers, **kwargs)
            if response.status_code != 401:
                return response
            rejected = token
        raise AuthenticationFailed(
            "Dataverse refused the access token: add the app registration to the environment as an application "
            "user with a security role."
        )

    def _json(self, method: str, url: str, **kwargs: Any) -> dict[str, Any]:
        response = self._api(method, url, **kwargs)
        if response.status_code >= 400:
            code, message = response_error(response)
            raise VendorError(
                f"Dataverse answered {method} {urlsplit(response.url or url).path} with {code}: {message}",
                status=response.status_code,
                code=code,
            )
        return response.json()

    # -- contract ------------------------------------------------------------------------------------------------------

    def test_connection(self) -> ConnectionTestResult:
        host = urlsplit(self.base_url).netloc
        try:
            who = self._json("GET", "WhoAmI")
            missing = [
                LOGICAL_NAMES[name]
                for name in self.objects
                if not any(
                    key.get("KeyAttributes") == [self.external_id_field]
                    for key in self._json("GET", f"EntityDefinitions(LogicalName='{LOGICAL_NAMES[name]}')/Keys").get(
                        "value", []
                    )
                )
            ]
        except (ConnectorError, requests.RequestException) as exc:
            return ConnectionTestResult.failed(exc, vendor=f"Dataverse at {host}")
        message = f"Connected to Dynamics 365 at {host} as application user {who.get('UserId')}."
        if missing:
            message += (
                f" No alternate key on {self.external_id_field} for {', '.join(missing)}: writes cannot upsert there."
            )
        return ConnectionTestResult(
            ok=True, message=message, detail={"user_id": who.get("UserId"), "missing_keys": missing}
        )

    def _entity(self, object_name: str) -> str:
        if object_name not in self.objects:
            raise ConnectorError(f"Dynamics 365 has no object {object_name!r} here; known: {', '.join(self.objects)}.")
        return object_name

    def _select(self, entity_set: str) -> str:
        fields = ACCOUNT_FIELDS if entity_set == "accounts" else OPPORTUNITY_FIELDS
        return ",".join(dict.fromkeys([*fields, self.external_id_field]))

    def read(self, object_name: str, *, since: str | None = None, page_size: int | None = None) -> Iterator[Page]:
        entity_set = self._entity(object_name)
        size = max(1, min(page_size or MAX_PAGE_SIZE, MAX_PAGE_SIZE))
        if since and not since.startswith(DELTA_PREFIX):
            yield from self._read_modified_since(entity_set, since, size)
            return
        # Change tracking: the first read pages through everything and ends with a delta link; later reads pass
        # its token and get only the rows created, changed or deleted since.
        headers = {"Prefer": f"odata.track-changes,odata.maxpagesize={size}"}
        params: dict[str, str] | None = {"$select": self._select(entity_set)}
        if since:
            params["$deltatoken"] = since[len(DELTA_PREFIX) :]
        url = entity_set
        while True:
            body = self._json("GET", url, params=params, headers=headers)
            records, rejects, _ = self._parse_rows(entity_set, body.get("value") or [])
            next_link = body.get("@odata.nextLink")
            delta_link = body.get("@odata.deltaLink")
            cursor = None
            if delta_link:
                token = parse_qs(urlsplit(delta_link).query).get("$deltatoken", [None])[0]
                cursor = f"{DELTA_PREFIX}{token}" if token else None
            yield Page(records=records, rejects=rejects, cursor=cursor, has_more=bool(next_link))
            if not next_link:
                return
            url, params = next_link, None

    def _read_modified_since(self, entity_set: str, since: str, size: int) -> Iterator[Page]:
        watermark = parse_utc_datetime(since, needs_time=True)
        if watermark is None:
            raise ConnectorError(f"The sync cursor {since!r} is neither a delta token nor a date and time.")
        primary = PRIMARY_IDS[entity_set]
        params: dict[str, str] | None = {
            "$select": self._select(entity_set),
            "$filter": f"modifiedon ge {iso_utc(watermark)}",
            "$orderby": f"modifiedon asc,{primary} asc",
            "$count": "true",
        }
        headers = {"Prefer": f"odata.maxpagesize={size}"}
        url, cursor, total = entity_set, since, None
        while True:
            body = self._json("GET", url, params=params, headers=headers)
            if (
                total is None
                and "@odata.count" in body
                and not body.get("@Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded")
            ):
                total = int(body["@odata.count"])
            records, rejects, newest = self._parse_rows(entity_set, body.get("value") or [])
            if newest and newest > cursor:
                cursor = newest
            next_link = body.get("@odata.nextLink")
            yield Page(records=records, rejects=rejects, cursor=cursor, has_more=bool(next_link), total=total)
            if not next_link:
                return
            url, params = next_link, None

    def _parse_rows(self, entity_set: str, rows: list) -> tuple[list[SourceRecord], list[RejectedRecord], str | None]:
        primary = PRIMARY_IDS[entity_set]
        records: list[SourceRecord] = []
        rejects: list[RejectedRecord] = []
        newest: str | None = None
        for row in rows:
            if not isinstance(row, Mapping):
                rejects.append(RejectedRecord(None, "Dataverse returned a row that is not an object.", row))
                continue
            if "$deletedEntity" in str(row.get("@odata.context", "")):
                continue  # a deletion: the engine does not delete downstream records
            record_id = row.get(primary)
            if not isinstance(record_id, str) or not GUID.match(record_id):
                rejects.append(RejectedRecord(None, f"The row has no valid {primary}.", row))
                continue
            modified = parse_utc_datetime(row.get("modifiedon"), needs_time=True)
            if modified is None:
                reason = f"The row's modifiedon {row.get('modifiedon')!r} is not a date and time."
                rejects.append(RejectedRecord(record_id, reason, row))
                continue
            stamp = iso_utc(modified)
            data = {k: v for k, v in row.items() if not k.startswith("@")}
            if data.get("_transactioncurrencyid_value"):
                data[CURRENCY_CODE] = self._currency_code(data["_transactioncurrencyid_value"])
            records.append(SourceRecord(external_id=record_id, updated_at=stamp, data=data))
            newest = stamp if newest is None or stamp > newest else newest
        return records, rejects, newest

    def _currency_code(self, currency_id: str) -> str | None:
        """The ISO code of a transaction currency: a row names its currency by a lookup id, which change tracking
        cannot $expand, and a mapping needs "EUR". The environment's few currencies are read once per connector."""
        if self._currency_codes is None:
            body = self._json(
                "GET", "transactioncurrencies", params={"$select": "transactioncurrencyid,isocurrencycode"}
            )
            self._currency_codes = {
                str(row.get("transactioncurrencyid")): str(row.get("isocurrencycode") or "")
                for row in body.get("value") or []
                if isinstance(row, Mapping)
            }
        return self._currency_codes.get(currency_id) or None

    # -- writes --------------------------------------------------------------------------------------------------------

    def write(
        self, object_name: str, records: list[OutboundRecord], *, mode: WriteMode = "upsert"
    ) -> list[WriteResult]:
        entity_set = self._entity(object_name)
        results: list[WriteResult] = []
        for chunk in chunks(records, BATCH_SIZE):
            results.extend(self._write_batch(entity_set, chunk, mode))
        return results

    def _write_batch(self, entity_set: str, chunk: list[OutboundRecord], mode: WriteMode) -> list[WriteResult]:
        primary = PRIMARY_IDS[entity_set]
        results: dict[int, WriteResult] = {}
        saves: list[tuple[int, dict[str, Any]]] = []
        closing: dict[int, int] = {}  # record index -> the state its opportunity closes in once saved
        for index, record in enumerate(chunk):
            external_id = record.external_id or ""
            if not external_id or len(external_id) > EXTERNAL_ID_MAX:
                results[index] = WriteResult(
                    external_id,
                    "failed",
                    error_code="INVALID_EXTERNAL_ID",
                    error_message=f"An external id must be 1 to {EXTERNAL_ID_MAX} characters for Dataverse.",
                )
                continue
            body, close_as = payload(entity_set, record.fields, external_id_field=self.external_id_field)
            by_key = f"{entity_set}({self.external_id_field}={key_literal(external_id)})"
            headers = {"Content-Type": "application/json", "Prefer": "return=representation"}
            if mode == "create":
                url, headers["If-None-Match"] = by_key, "*"
                body[self.external_id_field] = external_id
            elif mode == "update":
                url = f"{entity_set}({record.target_id})" if record.target_id else by_key
                headers["If-Match"] = "*"
            else:
                url = by_key
            saves.append(
                (index, {"method": "PATCH", "url": f"{url}?$select={primary}", "headers": headers, "body": body})
            )
            if close_as is not None:
                closing[index] = close_as

        answers = self._batch([op for _, op in saves]) if saves else []
        already_there: list[int] = []
        for (index, _op), (status, headers, body) in zip(saves, answers, strict=True):
            record = chunk[index]
            if status in (200, 201, 204):
                target = body.get(primary) if isinstance(body, dict) else None
                outcome = "created" if status == 201 else "updated"
                results[index] = WriteResult(
                    record.external_id, outcome, target or id_from(headers.get("odata-entityid", ""))
                )
            elif status == 412 and mode == "create":
                already_there.append(index)  # a re-run: the record is there, nothing to do
            else:
                code, message = error_of(body, status)
                results[index] = WriteResult(
                    record.external_id, "failed", record.target_id, code, self.session.redact(message)
                )
        if already_there:
            found = self._ids_by_external_id(entity_set, [chunk[i].external_id for i in already_there])
            for index in already_there:
                results[index] = WriteResult(chunk[index].external_id, "unchanged", found.get(chunk[index].external_id))

        # Only opportunities saved without error are closed, in a second batch: a failed save must not win a deal.
        closes = [(i, state) for i, state in closing.items() if results.get(i) and results[i].outcome != "failed"]
        if closes:
            requests_ = [
                close_request(chunk[i], results[i].target_id, state, external_id_field=self.external_id_field)
                for i, state in closes
            ]
            for (index, _state), (status, _headers, body) in zip(closes, self._batch(requests_), strict=True):
                if status < 300:
                    continue
                code, message = error_of(body, status)
                if ALREADY_CLOSED not in message.lower():  # closing a closed deal again is a re-run, not a failure
                    saved = results[index]
                    results[index] = WriteResult(
                        saved.external_id, "failed", saved.target_id, code, f"Saved, but not closed: {message}"
                    )
        for index, record in enumerate(chunk):
            results.setdefault(
                index,
                WriteResult(record.external_id, "failed", record.target_id, "NO_RESULT", "Dataverse gave no answer."),
            )
        return [results[i] for i in range(len(chunk))]

    def _ids_by_external_id(self, entity_set: str, external_ids: list[str]) -> dict[str, str]:
        primary = PRIMARY_IDS[entity_set]
        found: dict[str, str] = {}
        for chunk in chunks(external_ids, 50):
            condition = " or ".join(f"{self.external_id_field} eq '{e.replace(chr(39), chr(39) * 2)}'" for e in chunk)
            body = self._json(
                "GET", entity_set, params={"$select": f"{primary},{self.external_id_field}", "$filter": condition}
            )
            for row in body.get("value") or []:
                found[row.get(self.external_id_field)] = row.get(primary)
        return found

    def _batch(self, operations: list[dict[str, Any]]) -> list[tuple[int, dict[str, str], Any]]:
        """Send operations in one $batch that continues after a failed one; one (status, headers, body) each."""
        boundary = f"batch_{uuid.uuid4()}"
        parts = []
        for op in operations:
            lines = [
                f"{op['method']} {self.api}/{op['url']} HTTP/1.1",
                *(f"{k}: {v}" for k, v in op["headers"].items()),
            ]
            payload = json.dumps(op["body"], separators=(",", ":")) if op.get("body") is not None else ""
            parts.append(
                f"--{boundary}\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
                + "\r\n".join(lines)
                + "\r\n\r\n"
                + payload
                + "\r\n"
            )
        data = ("".join(parts) + f"--{boundary}--\r\n").encode()
        response = self._api(
            "POST",
            "$batch",
            data=data,
            headers={"Content-Type": f"multipart/mixed; boundary={boundary}", "Prefer": "odata.continue-on-error"},
        )
        if response.status_code >= 400:
            code, message = response_error(response)
            raise VendorError(f"Dataverse refused the batch: {code}: {message}", status=response.status_code, code=code)
        answers = parse_batch_response(response.headers.get("Content-Type", ""), response.content)
        if len(answers) != len(operations):
            raise VendorError(
                f"Dataverse answered {len(answers)} of the {len(operations)} operations of a batch.", code="BATCH_SHORT"
            )
        return answers

    # -- webhooks ------------------------------------------------------------------------------------------------------

    @classmethod
    def verify_webhook(
        cls, *, secret: str, method: str, url: str, headers: Mapping[str, str], body: bytes, now: float | None = None
    ) -> None:
        if not secret:
            raise WebhookRejected("No webhook key is configured for this Dynamics 365 connection.")
        presented = parse_qs(urlsplit(url).query).get("code", [None])[0] or header_value(headers, WEBHOOK_KEY_HEADER)
        if not presented:
            raise WebhookRejected(f"The request carries no webhook key (?code= or the {WEBHOOK_KEY_HEADER} header).")
        if not hmac.compare_digest(presented.encode(), secret.encode()):
            raise WebhookRejected("The Dynamics 365 webhook key does not match.")
        try:
            context = json.loads(body)
            created = re.fullmatch(r"/Date\((\d+)\)/", context["OperationCreatedOn"])
        except (ValueError, KeyError, TypeError):
            raise WebhookRejected("The body is not a Dataverse execution context.") from None
        if not created:
            raise WebhookRejected("The Dataverse execution context has no creation time.")
        age = (now if now is not None else time.time()) - int(created.group(1)) / 1000
        if abs(age) > WEBHOOK_MAX_AGE_SECONDS:
            raise WebhookRejected(f"The Dynamics 365 webhook is {int(abs(age))} seconds old; refusing a replay.")
