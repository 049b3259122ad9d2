"""Kantata OX (formerly Mavenlink), the PSA: projects, resources, cost rates, time entries and expenses.

Reads follow Kantata's own pagination (page/per_page up to 200, `meta.page_count`) in `updated_at` order from an
`updated_after` watermark. Kantata has no upsert, so writes tag every object with an external reference
(service_name + service_model + our id) and look those up first (`external_reference_service_model_refs`),
which makes writing the same batch twice create nothing new. Resources are matched by email address, and cost
rates by account membership and currency (Kantata's own upsert key for them).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import timedelta
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
    VendorError,
    WriteMode,
    WriteResult,
    chunks,
    objects_by_name,
)
from connectors.kantata.people import PeopleWrites
from connectors.kantata.records import (
    COLLECTIONS,
    COST_RATE_FIELDS,
    EXPENSE_FIELDS,
    MAX_PER_PAGE,
    TIME_ENTRY_FIELDS,
    USER_FIELDS,
    WORKSPACE_FIELDS,
    iso,
    plain_converter,
    records_of,
    referenced,
    resource_record,
    same,
    to_utc,
)

DEFAULT_BASE_URL = "https://api.mavenlink.com"
API_PATH = "/api/v1"
MAX_BULK = 100  # Kantata's cap for one bulk create
MAX_REFS_PER_LOOKUP = 200  # external_reference_service_model_refs takes up to 200 ids
# What Kantata shows as the origin of the records we create when the connection names nothing (the form
# offers the partner's product name): never the platform's name. Connections that named nothing wrote
# "SysGenPro" before this default became brand-neutral, and their records are still looked up under it.
DEFAULT_SERVICE_NAME = "Integration"
LEGACY_SERVICE_NAME = "SysGenPro"


class KantataConnector(PeopleWrites, Connector):
    vendor = "kantata"
    label = "Kantata OX"
    category = "psa"
    objects = objects_by_name(
        ObjectSpec(
            "workspaces", "Projects", writable=True, batch_size=50, page_size=MAX_PER_PAGE, fields=WORKSPACE_FIELDS
        ),
        ObjectSpec("users", "Resources", writable=True, batch_size=50, page_size=MAX_PER_PAGE, fields=USER_FIELDS),
        ObjectSpec(
            "cost_rates",
            "Cost rates",
            writable=True,
            batch_size=MAX_BULK,
            page_size=MAX_PER_PAGE,
            fields=COST_RATE_FIELDS,
        ),
        ObjectSpec(
            "time_entries",
            "Time entries",
            writable=True,
            batch_size=MAX_BULK,
            page_size=MAX_PER_PAGE,
            fields=TIME_ENTRY_FIELDS,
        ),
        ObjectSpec(
            "expenses", "Expenses", writable=True, batch_size=MAX_BULK, page_size=MAX_PER_PAGE, fields=EXPENSE_FIELDS
        ),
    )

    def __init__(
        self,
        *,
        base_url: str = DEFAULT_BASE_URL,
        credentials: Mapping[str, str],
        policy=None,
        connection_key: str = "default",
    ):
        super().__init__(base_url=base_url, credentials=credentials, policy=policy, connection_key=connection_key)
        root = self.base_url
        self.api = root if root.endswith(API_PATH) else root + API_PATH
        named = (self.credentials.get("service_name") or "").strip()
        self.service_name = named or DEFAULT_SERVICE_NAME
        # Records an unnamed connection wrote under the former default are still its own: found, never duplicated.
        self.service_names = (self.service_name,) if named else (self.service_name, LEGACY_SERVICE_NAME)
        self.approved_only = (self.credentials.get("approved_only") or "yes").strip().lower() in ("yes", "true", "1")
        self.session.headers.update(
            {
                "Authorization": f"Bearer {self.credentials.get('access_token', '')}",
                "Accept": "application/json",
                "User-Agent": "Connect-Integration/1.0",
            }
        )

    @classmethod
    def form_fields(cls) -> list[FormField]:
        return [
            FormField(
                "access_token",
                "OAuth access token",
                kind="secret",
                help="A Kantata OX OAuth 2 bearer token of an account administrator (Settings > API).",
            ),
            FormField(
                "service_name",
                "Integration name",
                required=False,
                initial="{product_name}",
                help="Written on the external reference of every record we create, so Kantata shows its origin.",
            ),
            FormField(
                "approved_only",
                "Read approved time and expenses only",
                required=False,
                initial="yes",
                help="yes: only time and expenses on approved timesheets and reports are read.",
            ),
        ]

    # -- HTTP ---------------------------------------------------------------------------------------------------

    def _send(self, method: str, path: str, *, params: dict | None = None, json: Any = None) -> requests.Response:
        response = self.session.request(method, self.api + path, params=params, json=json)
        if response.status_code == 401:
            raise AuthenticationFailed(f"Kantata OX refused the access token ({self._error_text(response)}).")
        return response

    def _check(self, response: requests.Response) -> dict:
        if response.status_code >= 400:
            errors = self._errors(response)
            first = errors[0] if errors else {}
            raise VendorError(
                f"Kantata OX answered HTTP {response.status_code}: {self._error_text(response)}",
                status=response.status_code,
                code=first.get("type"),
            )
        try:
            return response.json()
        except ValueError:
            raise VendorError(
                "Kantata OX answered with something that is not JSON", status=response.status_code
            ) from None

    def _get(self, path: str, params: dict) -> dict:
        return self._check(self._send("GET", path, params=params))

    @staticmethod
    def _errors(response: requests.Response) -> list[dict]:
        try:
            body = response.json()
        except ValueError:
            return []
        found = body.get("errors") if isinstance(body, dict) else None
        return [e for e in found if isinstance(e, dict)] if isinstance(found, list) else []

    def _error_text(self, response: requests.Response) -> str:
        parts = []
        for error in self._errors(response):
            message = str(error.get("message") or error.get("type") or "error")
            parts.append(f"{message} ({error['field']})" if error.get("field") else message)
        return self.session.redact("; ".join(parts) or f"HTTP {response.status_code}")

    def _failure(self, record: OutboundRecord, errors: list[dict], status: int) -> WriteResult:
        first = errors[0] if errors else {}
        code = first.get("type") or f"http_{status}"
        if first.get("field"):
            code = f"{code}.{first['field']}"
        messages = "; ".join(
            f"{e.get('message')} ({e['field']})" if e.get("field") else str(e.get("message")) for e in errors
        )
        return WriteResult(
            record.external_id,
            "failed",
            record.target_id,
            error_code=code,
            error_message=self.session.redact(messages or f"Kantata OX answered HTTP {status}"),
        )

    # -- connection -----------------------------------------------------------------------------------------------

    def test_connection(self) -> ConnectionTestResult:
        try:
            body = self._get("/users/me", {})
            user = next(iter(body.get("users", {}).values()), {})
            who = f"{user.get('full_name', 'the API user')} ({user.get('email_address', 'no email')})"
            return ConnectionTestResult(True, f"Connected to Kantata OX as {who}.", {"user_id": user.get("id")})
        except AuthenticationFailed as exc:
            return ConnectionTestResult(False, str(exc))
        except ConnectorError as exc:
            return ConnectionTestResult(False, f"Could not reach Kantata OX: {exc}")

    # -- reads ----------------------------------------------------------------------------------------------------

    def read(self, object_name: str, *, since: str | None = None, page_size: int | None = None) -> Iterator[Page]:
        self.object_spec(object_name)
        per_page = max(1, min(page_size or MAX_PER_PAGE, MAX_PER_PAGE))
        params: dict[str, Any] = {"per_page": per_page}
        if object_name == "users":
            path, key, convert = "/account_memberships", "account_memberships", resource_record
            params.update(include="user", order="updated_at:asc")
        elif object_name == "cost_rates":
            # Kantata orders cost rates by created_at only, so they are read in full pages (there are few).
            path, key, convert = "/cost_rates", "cost_rates", plain_converter("cost_rates")
            params.update(order="created_at:asc")
        else:
            path, key, _singular, _model = COLLECTIONS[object_name]
            convert = plain_converter(object_name)
            params.update(include="external_references", order="updated_at:asc")
            if object_name == "workspaces":
                params["include_archived"] = "true"
            elif self.approved_only:
                params["approved"] = "true"
        if params["order"].startswith("updated_at"):
            yield from self._read_by_watermark(path, key, params, convert, since)
        else:
            yield from self._read_by_page(path, key, params, convert, since)

    def _read_by_watermark(
        self, path: str, key: str, params: dict, convert: Callable, since: str | None
    ) -> Iterator[Page]:
        """Keyset reading on updated_at, so records changed during a long read are neither skipped nor lost.

        Each query asks for records updated after (watermark - 1 s): Kantata's filter is strict and stamps
        have one-second resolution, so this re-reads the watermark's own second, and the ids already handed
        out in that second are dropped. When a whole page sits in one second, the page number moves instead.
        """
        # Stamps are normalised to "YYYY-MM-DDTHH:MM:SSZ" (see _stamp), which sorts as text.
        watermark = iso(to_utc(since)) if since else None
        seen_at_edge: set[str] = set()
        page_number = 1
        cursor = watermark
        total: int | None = None  # what the first query matched: the size of this read, for progress
        while True:
            query = dict(params, page=page_number)
            if watermark is not None:
                query["updated_after"] = iso(to_utc(watermark) - timedelta(seconds=1))
            body = self._get(path, query)
            records, rejects = records_of(body, key, convert)
            fresh = [r for r in records if r.external_id not in seen_at_edge]
            meta = body.get("meta") or {}
            has_more = int(meta.get("page_number", page_number)) < int(meta.get("page_count", 0))
            if total is None:
                total = int(meta.get("count", body.get("count", 0)))
            newest = max((r.updated_at for r in records), default=None)
            if newest is not None and (cursor is None or newest > cursor):
                cursor = newest
            yield Page(records=fresh, rejects=rejects, cursor=cursor, has_more=has_more, total=total)
            if not has_more:
                return
            if newest is not None and (watermark is None or newest > watermark):
                seen_at_edge = {r.external_id for r in records if r.updated_at == newest}
                watermark, page_number = newest, 1
            else:
                seen_at_edge |= {r.external_id for r in records}
                page_number += 1

    def _read_by_page(self, path: str, key: str, params: dict, convert: Callable, since: str | None) -> Iterator[Page]:
        page_number = 1
        cursor = iso(to_utc(since)) if since else None
        if since:
            params = dict(params, updated_after=iso(to_utc(since) - timedelta(seconds=1)))
        while True:
            body = self._get(path, dict(params, page=page_number))
            records, rejects = records_of(body, key, convert)
            for record in records:
                if cursor is None or record.updated_at > cursor:
                    cursor = record.updated_at
            meta = body.get("meta") or {}
            has_more = int(meta.get("page_number", page_number)) < int(meta.get("page_count", 0))
            total = int(meta.get("count", body.get("count", 0)))
            yield Page(records=records, rejects=rejects, cursor=cursor, has_more=has_more, total=total)
            if not has_more:
                return
            page_number += 1

    # -- writes ---------------------------------------------------------------------------------------------------

    def write(
        self, object_name: str, records: list[OutboundRecord], *, mode: WriteMode = "upsert"
    ) -> list[WriteResult]:
        spec = self.objects.get(object_name)
        if spec is None or not spec.writable:
            raise ConnectorError(f"Kantata OX cannot write {object_name}")
        if len(records) > spec.batch_size:
            raise ConnectorError(f"Kantata OX takes at most {spec.batch_size} {object_name} per batch")
        if not records:
            return []
        if object_name == "users":
            return self._write_resources(records, mode)
        if object_name == "cost_rates":
            return self._write_cost_rates(records, mode)
        return self._write_referenced(object_name, records, mode)

    def _reference(self, object_name: str, external_id: str) -> dict[str, str]:
        return {
            "service_name": self.service_name,
            "service_model": COLLECTIONS[object_name][3],
            "service_model_ref": external_id,
            "status": "successful",
        }

    def _find_by_reference(self, object_name: str, external_ids: list[str]) -> dict[str, dict]:
        """Our external id -> the Kantata object carrying our external reference with that id."""
        found: dict[str, dict] = {}
        for service_name in self.service_names:
            missing = [external_id for external_id in external_ids if external_id not in found]
            if missing:
                found.update(self._find_by_reference_named(object_name, missing, service_name))
        return found

    def _find_by_reference_named(self, object_name: str, external_ids: list[str], service_name: str) -> dict[str, dict]:
        path, key, _singular, model = COLLECTIONS[object_name]
        found: dict[str, dict] = {}
        for chunk in chunks(external_ids, MAX_REFS_PER_LOOKUP):
            params = {
                "external_reference_service_name": service_name,
                "external_reference_service_model": model,
                "external_reference_service_model_refs": ",".join(chunk),
                "include": "external_references",
                "per_page": MAX_PER_PAGE,
            }
            if object_name == "workspaces":
                params["include_archived"] = "true"
            found.update(referenced(self._get(path, params), key, service_name, model))
        return found

    def _write_referenced(self, object_name: str, records: list[OutboundRecord], mode: WriteMode) -> list[WriteResult]:
        path, key, singular, _model = COLLECTIONS[object_name]
        results: list[WriteResult | None] = [None] * len(records)
        bad_ids = [i for i, r in enumerate(records) if not r.external_id or "," in r.external_id]
        for i in bad_ids:
            results[i] = WriteResult(
                records[i].external_id,
                "failed",
                error_code="invalid_external_id",
                error_message="The id is empty or has a comma",
            )
        existing = (
            {}
            if mode == "create"
            else self._find_by_reference(
                object_name, [r.external_id for i, r in enumerate(records) if i not in bad_ids]
            )
        )
        to_create: list[int] = []
        for i, record in enumerate(records):
            if results[i] is not None:
                continue
            target = existing.get(record.external_id)
            if target is None and record.target_id and mode != "create":
                target = self._fetch(path, key, record.target_id)
            if target is None:
                if mode == "update":
                    results[i] = WriteResult(
                        record.external_id,
                        "failed",
                        record.target_id,
                        "not_found",
                        "No such record in Kantata OX to update",
                    )
                else:
                    to_create.append(i)
                continue
            results[i] = self._update(object_name, record, target, tagged=record.external_id in existing)
        if object_name == "workspaces":
            for i in to_create:  # Kantata documents no bulk create for projects: one call each
                fields = {"creator_role": "maven", **records[i].fields}
                results[i] = self._create_batch(object_name, [(records[i], fields)])[0]
        elif to_create:
            batch = [(records[i], dict(records[i].fields)) for i in to_create]
            for i, result in zip(to_create, self._create_batch(object_name, batch), strict=True):
                results[i] = result
        return [r for r in results if r is not None]

    def _fetch(self, path: str, key: str, record_id: str) -> dict | None:
        response = self._send("GET", f"{path}/{record_id}", params={"include": "external_references"})
        if response.status_code == 404:
            return None
        body = self._check(response)
        return (body.get(key) or {}).get(str(record_id))

    def _update(self, object_name: str, record: OutboundRecord, target: dict, *, tagged: bool) -> WriteResult:
        path, key, singular, _model = COLLECTIONS[object_name]
        changes = {
            name: value
            for name, value in record.fields.items()
            if name != "creator_role" and not same(target.get(name, target.get(f"is_{name}")), value)
        }
        if not changes and tagged:
            return WriteResult(record.external_id, "unchanged", str(target["id"]))
        payload = dict(changes, external_reference=self._reference(object_name, record.external_id))
        response = self._send("PUT", f"{path}/{target['id']}", json={singular: payload})
        if response.status_code in (400, 404, 422):
            return self._failure(record, self._errors(response), response.status_code)
        self._check(response)
        return WriteResult(record.external_id, "updated" if changes else "unchanged", str(target["id"]))

    def _create_batch(self, object_name: str, batch: list[tuple[OutboundRecord, dict]]) -> list[WriteResult]:
        """Create objects tagged with our external reference; find the invalid ones when Kantata refuses the call.

        Kantata rejects a whole bulk create when one object is invalid and does not say which (see the sandbox's
        assumptions), so a refused call is split in halves until each invalid object stands alone.
        """
        path, key, singular, _model = COLLECTIONS[object_name]
        results: dict[int, WriteResult] = {}

        def attempt(indexes: list[int]) -> None:
            payloads = [
                dict(batch[i][1], external_reference=self._reference(object_name, batch[i][0].external_id))
                for i in indexes
            ]
            body = {key: payloads} if object_name != "workspaces" else {singular: payloads[0]}
            response = self._send("POST", path, params={"include": "external_references"}, json=body)
            if response.status_code in (400, 422):
                if len(indexes) == 1:
                    record = batch[indexes[0]][0]
                    results[indexes[0]] = self._failure(record, self._errors(response), response.status_code)
                    return
                middle = len(indexes) // 2
                attempt(indexes[:middle])
                attempt(indexes[middle:])
                return
            created = self._check(response)
            by_reference = self._created_by_reference(object_name, created)
            for i in indexes:
                record = batch[i][0]
                target = by_reference.get(record.external_id)
                if target is None:
                    results[i] = WriteResult(
                        record.external_id, "failed", None, "not_confirmed", "Kantata OX did not return the new record"
                    )
                else:
                    results[i] = WriteResult(record.external_id, "created", str(target["id"]))

        attempt(list(range(len(batch))))
        return [results[i] for i in range(len(batch))]

    def _created_by_reference(self, object_name: str, body: dict) -> dict[str, dict]:
        _path, key, _singular, model = COLLECTIONS[object_name]
        return referenced(body, key, self.service_name, model)
