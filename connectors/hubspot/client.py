"""HubSpot connector: companies and deals over the CRM v3 objects API with a private app token.

A full read pages the list endpoint (`after` cursor, 100 a page); an incremental read pages the search endpoint
filtered and sorted on hs_lastmodifieddate. Writes use the batch endpoints (100 a call, 207 on partial failure)
and upsert on a unique `integration_record_id` property; companies are first matched on their domain.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Iterator, Mapping
from datetime import datetime
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
    WebhookRejected,
    WriteMode,
    WriteResult,
    chunks,
    header_value,
    iso_utc_millis,
    json_object,
    objects_by_name,
)
from connectors.hubspot.account_fields import HubSpotAccountFields
from connectors.hubspot.records import (
    BATCH_LIMIT,
    COMPANY_PROPERTIES,
    DEAL_PROPERTIES,
    EXTERNAL_ID_PROPERTY,
    WATERMARK_PROPERTY,
    detail_code,
    domain_of,
    error_message,
    parse_hubspot_datetime,
    property_value,
    rate_limit_wait,
    trace_index,
)
from connectors.hubspot.webhooks import signature_v3

LIST_LIMIT = 100  # list endpoint page cap
SEARCH_LIMIT = 200  # search endpoint page cap
SEARCH_RESULT_CAP = 10_000  # search cannot page past 10,000 results: start a new search from the watermark
SEARCH_REQUESTS_PER_SECOND = 4.0  # the search endpoints have their own per-account limit (about 5 a second)
WEBHOOK_MAX_AGE_SECONDS = 300  # HubSpot: reject requests whose timestamp is older than 5 minutes

# ---------------------------------------------------------------------------------------------------------------
# (unverified) assumptions, kept in this one place:
# - batch create/update/upsert take at most 100 inputs;
# - with an objectWriteTraceId on every input, a partial failure answers 207 and each error's `context` carries
#   {"objectWriteTraceId": [<trace id>]}; results carry their objectWriteTraceId back;
# - a 429 may come without Retry-After: SECONDLY then means wait 1 s, DAILY means stop for today;
# - property validation codes: PROPERTY_DOESNT_EXIST, INVALID_OPTION, INVALID_DECIMAL, INVALID_DATE, READ_ONLY_VALUE;
# - `closedwon` is the won stage id of the default pipeline.
# - a list `limit` above 100 is capped, not refused; paging past 10,000 search results is 400 VALIDATION_ERROR;
# - deal -> company association type ids 5 (primary) and 341, and NO_ASSOCIATIONS errors as OBJECT_NOT_FOUND.
# - creating a property or a property group that exists answers 409 OBJECT_ALREADY_EXISTS.
# ---------------------------------------------------------------------------------------------------------------


class HubSpotConnector(HubSpotAccountFields, Connector):
    vendor = "hubspot"
    label = "HubSpot"
    category = "crm"
    objects = objects_by_name(
        ObjectSpec(
            "companies",
            "Companies",
            writable=True,
            batch_size=BATCH_LIMIT,
            page_size=LIST_LIMIT,
            fields=COMPANY_PROPERTIES,
        ),
        ObjectSpec(
            "deals", "Deals", writable=True, batch_size=BATCH_LIMIT, page_size=LIST_LIMIT, fields=DEAL_PROPERTIES
        ),
    )

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.session.rate_limit_detector = rate_limit_wait

    @classmethod
    def form_fields(cls) -> list[FormField]:
        return [
            FormField(
                "access_token",
                "Private app access token",
                kind="secret",
                help=(
                    "Settings > Integrations > Private apps; scopes crm.objects.companies, crm.objects.deals and "
                    f"crm.schemas read. Upserts need a unique-value property {EXTERNAL_ID_PROPERTY} on both objects."
                ),
            ),
            FormField(
                "webhook_secret",
                "App client secret",
                kind="secret",
                required=False,
                help="Used to check the X-HubSpot-Signature-v3 of deal-stage webhooks.",
            ),
        ]

    # -- HTTP ---------------------------------------------------------------------------------------------------

    def _call(self, method: str, path: str, *, expected: tuple[int, ...] = (200,), **kwargs) -> requests.Response:
        headers = {
            "Authorization": f"Bearer {self.credentials.get('access_token', '')}",
            "Accept": "application/json",
            **kwargs.pop("headers", {}),
        }
        response = self.session.request(method, f"{self.base_url}{path}", headers=headers, **kwargs)
        if response.status_code == 401:
            raise AuthenticationFailed(f"HubSpot refused the access token: {error_message(response)}")
        if response.status_code not in expected:
            body = json_object(response)
            raise VendorError(
                f"HubSpot answered {method} {path} with {error_message(response)}",
                status=response.status_code,
                code=body.get("category"),
            )
        return response

    def _search(self, object_name: str, body: dict[str, Any]) -> dict[str, Any]:
        # Search has its own, tighter per-account limit: pace it through the shared budget under its own key.
        wait = self.policy.budget.reserve(
            f"hubspot-search:{self.connection_key}", rate_per_second=SEARCH_REQUESTS_PER_SECOND, burst=1
        )
        if wait > 0:
            self.session.sleep(wait)
        return self._call("POST", f"/crm/v3/objects/{object_name}/search", json=body).json()

    # -- contract ----------------------------------------------------------------------------------------------

    def test_connection(self) -> ConnectionTestResult:
        try:
            details = self._call("GET", "/account-info/v3/details").json()
            missing = [name for name in self.objects if not self._has_unique_external_id(name)]
        except (ConnectorError, requests.RequestException) as exc:
            return ConnectionTestResult.failed(exc, vendor="HubSpot")
        portal = details.get("portalId")
        message = f"Connected to HubSpot account {portal} ({details.get('companyCurrency', 'no currency set')})."
        if missing:
            message += (
                f" Upserts need a unique-value property {EXTERNAL_ID_PROPERTY} on {' and '.join(missing)}; "
                "create it in Settings > Properties."
            )
        return ConnectionTestResult(
            ok=True, message=message, detail={**details, "objects_missing_external_id": missing}
        )

    def _has_unique_external_id(self, object_name: str) -> bool:
        properties = self._call("GET", f"/crm/v3/properties/{object_name}").json().get("results", [])
        return any(p.get("name") == EXTERNAL_ID_PROPERTY and p.get("hasUniqueValue") for p in properties)

    def read(self, object_name: str, *, since: str | None = None, page_size: int | None = None) -> Iterator[Page]:
        if object_name not in self.objects:
            raise ConnectorError(f"HubSpot has no readable object {object_name!r} here.")
        if since is None:
            yield from self._read_all(object_name, min(page_size or LIST_LIMIT, LIST_LIMIT))
        else:
            watermark = parse_hubspot_datetime(since)
            if watermark is None:
                raise ConnectorError(f"The sync cursor {since!r} is not a date and time.")
            yield from self._read_changed(object_name, watermark, min(page_size or LIST_LIMIT, SEARCH_LIMIT))

    def _read_all(self, object_name: str, limit: int) -> Iterator[Page]:
        """The list endpoint pages in id order, not time order: the watermark is only safe after the last page."""
        params: dict[str, Any] = {"limit": limit, "properties": ",".join(self.objects[object_name].fields)}
        if object_name == "deals":
            params["associations"] = "companies"
        newest: datetime | None = None
        while True:
            body = self._call("GET", f"/crm/v3/objects/{object_name}", params=params).json()
            records, rejects = self._records(body.get("results", []))
            for record in records:
                moment = parse_hubspot_datetime(record.updated_at)
                newest = moment if newest is None or moment > newest else newest
            after = ((body.get("paging") or {}).get("next") or {}).get("after")
            cursor = iso_utc_millis(newest) if newest and not after else None
            yield Page(records=records, rejects=rejects, cursor=cursor, has_more=bool(after))
            if not after:
                return
            params["after"] = after

    def _read_changed(self, object_name: str, since: datetime, limit: int) -> Iterator[Page]:
        watermark = since
        after = 0
        while True:
            body = {
                "filterGroups": [
                    {
                        "filters": [
                            {
                                "propertyName": WATERMARK_PROPERTY,
                                "operator": "GTE",
                                "value": str(int(watermark.timestamp() * 1000)),
                            }
                        ]
                    }
                ],
                "sorts": [{"propertyName": WATERMARK_PROPERTY, "direction": "ASCENDING"}],
                "properties": list(self.objects[object_name].fields),
                "limit": limit,
                "after": str(after),
            }
            result = self._search(object_name, body)
            records, rejects = self._records(result.get("results", []))
            if object_name == "deals" and records:
                records = self._with_companies(records)
            page_newest = watermark
            for record in records:
                moment = parse_hubspot_datetime(record.updated_at)
                page_newest = moment if moment > page_newest else page_newest
            next_after = ((result.get("paging") or {}).get("next") or {}).get("after")
            yield Page(records=records, rejects=rejects, cursor=iso_utc_millis(page_newest), has_more=bool(next_after))
            if not next_after:
                return
            if int(next_after) + limit > SEARCH_RESULT_CAP:
                # Search stops at 10,000 results: go on with a fresh search from this page's watermark.
                if page_newest == watermark:
                    raise ConnectorError(
                        f"More than {SEARCH_RESULT_CAP:,} HubSpot {object_name} changed at {iso_utc_millis(watermark)}."
                    )
                watermark, after = page_newest, 0
            else:
                after = int(next_after)

    def _with_companies(self, records: list[SourceRecord]) -> list[SourceRecord]:
        """Search results carry no associations: fetch each deal's companies in one v4 batch call."""
        body = {"inputs": [{"id": r.external_id} for r in records]}
        result = self._call(
            "POST", "/crm/v4/associations/deals/companies/batch/read", json=body, expected=(200, 207)
        ).json()
        companies = {
            str(item["from"]["id"]): [str(to["toObjectId"]) for to in item.get("to", [])]
            for item in result.get("results", [])
        }
        return [
            SourceRecord(r.external_id, r.updated_at, {**r.data, "company_ids": companies.get(r.external_id, [])})
            for r in records
        ]

    @staticmethod
    def _records(results: list[Any]) -> tuple[list[SourceRecord], list[RejectedRecord]]:
        records, rejects = [], []
        for raw in results:
            if not isinstance(raw, Mapping):
                rejects.append(RejectedRecord(None, "HubSpot returned a record that is not an object.", raw))
                continue
            record_id = raw.get("id")
            if not isinstance(record_id, str) or not record_id.isdigit():
                rejects.append(RejectedRecord(None, "The record has no valid HubSpot id.", raw))
                continue
            updated = parse_hubspot_datetime(raw.get("updatedAt"))
            if updated is None:
                reason = f"The record's updatedAt {raw.get('updatedAt')!r} is not a date and time."
                rejects.append(RejectedRecord(record_id, reason, raw))
                continue
            data: dict[str, Any] = dict(raw.get("properties") or {})
            data.update(id=record_id, createdAt=raw.get("createdAt"), updatedAt=raw.get("updatedAt"))
            data["archived"] = bool(raw.get("archived", False))
            companies = ((raw.get("associations") or {}).get("companies") or {}).get("results")
            if companies is not None:
                data["company_ids"] = sorted({str(c["id"]) for c in companies})
            records.append(SourceRecord(external_id=record_id, updated_at=iso_utc_millis(updated), data=data))
        return records, rejects

    def write(
        self, object_name: str, records: list[OutboundRecord], *, mode: WriteMode = "upsert"
    ) -> list[WriteResult]:
        if object_name not in self.objects:
            raise ConnectorError(f"HubSpot cannot write {object_name} here.")
        results: list[WriteResult] = []
        for chunk in chunks(records, BATCH_LIMIT):
            results.extend(self._write_chunk(object_name, chunk, mode))
        return results

    def _write_chunk(self, object_name: str, chunk: list[OutboundRecord], mode: WriteMode) -> list[WriteResult]:
        results: dict[int, WriteResult] = {}
        updates: dict[int, str] = {}  # position -> HubSpot id to update
        if mode == "update":
            for index, record in enumerate(chunk):
                if record.target_id:
                    updates[index] = record.target_id
                else:
                    results[index] = WriteResult(
                        record.external_id,
                        "failed",
                        error_code="MISSING_ID",
                        error_message="This record has no HubSpot id yet, so it cannot be updated.",
                    )
        elif mode == "upsert" and object_name == "companies":
            updates = self._companies_by_domain(chunk)

        if updates:
            inputs = {
                index: {"id": target, "properties": self._properties(chunk[index])} for index, target in updates.items()
            }
            results.update(self._batch(object_name, "update", chunk, inputs))
        rest = [i for i in range(len(chunk)) if i not in results and i not in updates]
        if rest and mode == "create":
            inputs = {i: {"properties": self._properties(chunk[i])} for i in rest}
            results.update(self._batch(object_name, "create", chunk, inputs))
        elif rest and mode == "upsert":
            inputs = {
                i: {
                    "id": chunk[i].external_id,
                    "idProperty": EXTERNAL_ID_PROPERTY,
                    "properties": self._properties(chunk[i]),
                }
                for i in rest
            }
            results.update(self._batch(object_name, "upsert", chunk, inputs))
        return [results[i] for i in range(len(chunk))]

    @staticmethod
    def _properties(record: OutboundRecord) -> dict[str, str | None]:
        properties = {name: property_value(value) for name, value in record.fields.items()}
        if properties.get("domain"):
            # Stored in the form HubSpot keeps and searches ("acme.example"), so the next match finds it.
            properties["domain"] = domain_of(properties["domain"]) or properties["domain"]
        properties[EXTERNAL_ID_PROPERTY] = record.external_id
        return properties

    def _companies_by_domain(self, chunk: list[OutboundRecord]) -> dict[int, str]:
        """HubSpot does not dedupe API-created companies: adopt an existing company with the same domain."""
        wanted = {
            i: domain_of(r.fields.get("domain")) for i, r in enumerate(chunk) if domain_of(r.fields.get("domain"))
        }
        if not wanted:
            return {}
        body = {
            "filterGroups": [
                {"filters": [{"propertyName": "domain", "operator": "IN", "values": sorted(set(wanted.values()))}]}
            ],
            "properties": ["domain", EXTERNAL_ID_PROPERTY],
            "sorts": [{"propertyName": "createdate", "direction": "ASCENDING"}],
            "limit": SEARCH_LIMIT,
        }
        # Oldest first: with two companies on one domain (a duplicate someone entered), the older is the one
        # people know, unless the newer already carries our id from an earlier write.
        by_domain: dict[str, list[tuple[str, str | None]]] = {}
        for company in self._search("companies", body).get("results", []):
            properties = company.get("properties") or {}
            domain = domain_of(properties.get("domain"))
            if domain:
                by_domain.setdefault(domain, []).append((str(company["id"]), properties.get(EXTERNAL_ID_PROPERTY)))
        adopted: dict[int, str] = {}
        claimed: set[str] = set()
        for index, domain in wanted.items():
            ours = chunk[index].external_id
            candidates = by_domain.get(domain, [])
            match = next((c for c in candidates if c[1] == ours), None) or next(
                (c for c in candidates if c[1] in (None, "") and c[0] not in claimed), None
            )
            # Only adopt a company nobody else claimed; one already linked to another record keeps its link.
            if match and match[0] not in claimed:
                adopted[index] = match[0]
                claimed.add(match[0])
        return adopted

    def _batch(
        self, object_name: str, action: str, chunk: list[OutboundRecord], inputs: dict[int, dict[str, Any]]
    ) -> dict[int, WriteResult]:
        """One batch call; every input carries objectWriteTraceId = its position, to match results and errors."""
        payload = [{**body, "objectWriteTraceId": str(index)} for index, body in inputs.items()]
        response = self._call(
            "POST",
            f"/crm/v3/objects/{object_name}/batch/{action}",
            json={"inputs": payload},
            expected=(200, 201, 207, 400, 409),
        )
        body = json_object(response)
        if response.status_code in (400, 409):
            # The whole call was refused: every record in it failed for the same reason.
            code = detail_code(body) or body.get("category") or "VALIDATION_ERROR"
            message = body.get("message") or error_message(response)
            return {i: WriteResult(chunk[i].external_id, "failed", None, code, message) for i in inputs}
        results: dict[int, WriteResult] = {}
        for item in body.get("results", []):
            index = trace_index(item.get("objectWriteTraceId"), inputs)
            if index is None:
                continue
            if action == "create":
                outcome = "created"
            elif action == "update":
                outcome = "updated"
            else:
                outcome = "created" if item.get("new") else "updated"
            results[index] = WriteResult(chunk[index].external_id, outcome, str(item.get("id")))
        for error in body.get("errors", []):
            for trace in (error.get("context") or {}).get("objectWriteTraceId", []):
                index = trace_index(trace, inputs)
                if index is None:
                    continue
                code = detail_code(error) or error.get("category") or "ERROR"
                target = inputs[index].get("id") if action == "update" else None
                results[index] = WriteResult(chunk[index].external_id, "failed", target, code, error.get("message"))
        for index in inputs:
            results.setdefault(
                index,
                WriteResult(
                    chunk[index].external_id,
                    "failed",
                    error_code="NO_RESULT",
                    error_message="HubSpot returned neither a result nor an error for this record.",
                ),
            )
        return results

    @classmethod
    def verify_webhook(
        cls, *, secret: str, method: str, url: str, headers: Mapping[str, str], body: bytes, now: float | None = None
    ) -> None:
        if not secret:
            raise WebhookRejected("No app client secret is configured for this HubSpot connection.")
        signature = header_value(headers, "X-HubSpot-Signature-v3")
        timestamp = header_value(headers, "X-HubSpot-Request-Timestamp")
        if not signature or not timestamp:
            raise WebhookRejected("The request has no X-HubSpot-Signature-v3 or X-HubSpot-Request-Timestamp header.")
        # The signature first: until it matches, every header is anyone's text, and nothing in it is
        # parsed (a timestamp of 400 nines, "²" or 5,000 digits must be a refusal, not a crash).
        expected = signature_v3(secret, method, url, body, timestamp)
        if not hmac.compare_digest(expected.encode(), signature.strip().encode("utf-8", "replace")):
            raise WebhookRejected("The HubSpot webhook signature does not match the request.")
        if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 15):
            raise WebhookRejected("The X-HubSpot-Request-Timestamp header is not a timestamp.")
        age = (now if now is not None else time.time()) - int(timestamp) / 1000.0
        if abs(age) > WEBHOOK_MAX_AGE_SECONDS:
            raise WebhookRejected(f"The HubSpot webhook is {int(abs(age))} seconds old; refusing a replay.")
