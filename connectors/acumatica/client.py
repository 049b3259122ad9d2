"""Acumatica connector: customers, projects, employees and AR invoices over the contract-based REST API.

How it talks: every call goes to a versioned endpoint, `/entity/Default/{version}/{Entity}` (the version is a
connection setting: a contract that an instance no longer serves is refused, not guessed). Sign-in is a cookie
session (`/entity/auth/login` with name, password, tenant and branch) and each session holds one of the licence's
API seats until `/entity/auth/logout`: a trial has two, and a sign-in past them is refused with "API Login Limit".
So the connector signs in for one piece of work (a whole read, one batch of writes, a connection test) and always
signs out after it, when the work fails too; a read abandoned half way signs out when its generator is closed.

Every field comes and goes wrapped as `{"value": ...}`; reads give `data` unwrapped, with linked entities
(`MainContact`, `ContactInfo`) and detail lines (`Details`) as nested dicts and lists, so a mapping walks
`ContactInfo.Email`; writes wrap what a mapping gives, dotted names nesting (`ContactInfo.Email`).

Reads list an entity with `$filter=LastModifiedDateTime ge datetimeoffset'...'`, `$top` and `$skip`. The
contract-based API lists in key order, not in change order, so a page's stamps say nothing about the pages left:
the cursor stays where the read started until its last page, which stores the instant the read began (the
answer's Date header), and every record changed since is read again next time.

Writes: PUT upserts by an entity's key fields. Customers, projects and employees are keyed by their own ids
(CustomerID, ProjectID, EmployeeID), which is also the external id a read gives, so a project's `Customer` and
an invoice's `Customer` take what the customers' read gave. One query finds the batch's existing records;
records already equal cost no call. AR invoices have no key of ours: an invoice is found by `CustomerOrder`
(the customer's order number), which the mapping fills with our invoice number; a changed unreleased invoice
gets its lines replaced (each old line sent with `"delete": true`). There is no batch endpoint: each record is
its own PUT, and a 422 fails that record alone with the errors Acumatica put on its fields.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote, urlsplit

import requests

from connectors.acumatica.records import (
    DATE_FIELDS,
    ENTITIES,
    AcumaticaEntity,
    error_text,
    leaves,
    line_shape,
    literal,
    same,
    unwrap,
    wrap,
)
from connectors.base import (
    AuthenticationFailed,
    ConnectionTestResult,
    Connector,
    ConnectorError,
    FormField,
    ObjectSpec,
    OutboundRecord,
    Page,
    RateLimited,
    RejectedRecord,
    SourceRecord,
    VendorError,
    WriteMode,
    WriteResult,
    chunks,
    parse_utc_datetime,
    server_time,
)

DEFAULT_VERSION = "24.200.001"
ENDPOINT = "Default"
PAGE_SIZE = 1000  # records a GET asks for ($top); Acumatica sets no cap of its own, so this is ours
WRITE_BATCH = 100  # records one sign-in writes (each is its own PUT)
IN_FILTER_MAX = 40  # keys per `or` filter when looking records up
LOGIN_LIMIT_WAIT = 60.0  # seconds to come back after "API Login Limit"

# ---------------------------------------------------------------------------------------------------------------
# (unverified) assumptions, emulated the same way by connectors/acumatica/sandbox/:
# - a refused sign-in (wrong credentials, or "API Login Limit" when every API seat is taken) answers HTTP 500
#   with {"message", "exceptionMessage", "exceptionType"}; it is the final answer, not retried. A call without a
#   valid session cookie answers 401, after which we sign in again once.
# - an idle API session frees its seat after about 10 minutes; throttling past the licence's requests per minute
#   answers 429, with Retry-After.
# - a GET list returns records in key order whatever the filter, and has no $orderby or total count; `$top` has no
#   cap; `$expand` is needed for linked entities (MainContact, ContactInfo) as for details.
# - PUT without key values on Invoice creates a new document; a 422 answer echoes the record with an `error` on
#   each refused field (and one for the record); a line sent with `"delete": true` and its id is removed.
# - `CustomerOrder` on the Default endpoint's Invoice is the AR document's free-text customer order number.
# - Customer, project and employee ids are upper-cased by their segmented keys' input masks.
# ---------------------------------------------------------------------------------------------------------------


def _login_refusal(response: requests.Response) -> bool:
    """A 500 on sign-in that explains itself (credentials, API Login Limit) is Acumatica's final answer."""
    if response.status_code != 500 or not urlsplit(response.url).path.endswith("/entity/auth/login"):
        return False
    try:
        return bool(response.json().get("exceptionMessage"))
    except (ValueError, AttributeError):
        return False


class AcumaticaConnector(Connector):
    vendor = "acumatica"
    label = "Acumatica"
    category = "erp"
    objects = {
        name: ObjectSpec(
            name=name,
            label=entity.label,
            writable=True,
            batch_size=WRITE_BATCH,
            page_size=PAGE_SIZE,
            fields=entity.fields,
        )
        for name, entity in ENTITIES.items()
    }

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.session.final_answer_detector = _login_refusal
        version = (self.credentials.get("endpoint_version") or DEFAULT_VERSION).strip()
        self.version = version
        self.root = f"{self.base_url}/entity/{ENDPOINT}/{quote(version, safe='.')}"
        self._cookies: dict[str, str] | None = None

    @classmethod
    def form_fields(cls) -> list[FormField]:
        return [
            FormField(
                "username", "API user name", help="A user with an API licence seat and the roles to read and write."
            ),
            FormField("password", "Password", kind="secret"),
            FormField("tenant", "Tenant (company)", help="The tenant's login name, as on the sign-in page."),
            FormField("branch", "Branch", required=False, help="The branch to work in; empty for the user's default."),
            FormField(
                "endpoint_version",
                "Endpoint version",
                initial=DEFAULT_VERSION,
                help="The Default endpoint's contract version, e.g. 24.200.001 (Web Service Endpoints, SM207060).",
            ),
        ]

    # -- the session: one sign-in per piece of work, always signed out ---------------------------------------------
    @contextmanager
    def signed_in(self) -> Iterator[None]:
        """Sign in, do the work, sign out (on failure too), freeing the API seat for others."""
        if self._cookies is not None:  # already inside a signed-in piece of work
            yield
            return
        self._login()
        try:
            yield
        finally:
            self._logout()

    def _login(self) -> None:
        body = {
            "name": self.credentials.get("username", ""),
            "password": self.credentials.get("password", ""),
            "tenant": self.credentials.get("tenant", ""),
        }
        if self.credentials.get("branch"):
            body["branch"] = self.credentials["branch"]
        response = self.session.post(f"{self.base_url}/entity/auth/login", json=body)
        cookies = dict(response.cookies)
        self.session.cookies.clear()
        if response.status_code in (200, 204):
            self._cookies = cookies
            self.session.add_secrets(cookies.values())
            return
        message = self.session.redact(error_text(response))
        if "API Login Limit" in message:
            raise RateLimited(
                "Acumatica refused the sign-in: every API seat of its licence is in use (API Login Limit). Another "
                "integration or a session that was not signed out holds them; the next run tries again.",
                retry_after=LOGIN_LIMIT_WAIT,
            )
        if response.status_code in (401, 403, 500):
            raise AuthenticationFailed(
                f"Acumatica refused the sign-in of {body['name']} to tenant {body['tenant']}: {message} Check the "
                "user name, password, tenant and branch."
            )
        raise VendorError(
            f"Acumatica answered the sign-in with HTTP {response.status_code}: {message}", response.status_code
        )

    def _logout(self) -> None:
        cookies, self._cookies = self._cookies, None
        try:
            self.session.post(f"{self.base_url}/entity/auth/logout", cookies=cookies)
        except ConnectorError:
            pass  # the seat frees itself when the session times out; the work's own outcome matters more
        finally:
            self.session.cookies.clear()

    def _call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        url = path if path.startswith("http") else f"{self.root}/{path.lstrip('/')}"
        for attempt in (1, 2):
            response = self.session.request(
                method, url, cookies=self._cookies, headers={"Accept": "application/json"}, **kwargs
            )
            self.session.cookies.clear()
            if response.status_code != 401 or attempt == 2:
                break
            self._login()  # the session timed out: one new sign-in (the old seat is already free)
        if response.status_code == 401:
            raise AuthenticationFailed("Acumatica ended the session and refused a new one.")
        if response.status_code == 404:
            raise VendorError(
                f"Acumatica has no {urlsplit(url).path.split('/entity/', 1)[-1]}: is the endpoint version {self.version} "
                f"published on this instance? ({self.session.redact(error_text(response))})",
                status=404,
            )
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._call(method, path, **kwargs)
        if response.status_code >= 400:
            raise VendorError(
                f"Acumatica answered {method} {path.split('?')[0]} with HTTP {response.status_code}: "
                f"{self.session.redact(error_text(response))}",
                status=response.status_code,
            )
        return response.json()

    def _entity(self, object_name: str) -> AcumaticaEntity:
        try:
            return ENTITIES[object_name]
        except KeyError:
            raise ConnectorError(
                f"Acumatica has no entity {object_name!r} here; known: {', '.join(ENTITIES)}"
            ) from None

    # -- contract --------------------------------------------------------------------------------------------------
    def test_connection(self) -> ConnectionTestResult:
        tenant = self.credentials.get("tenant", "")
        try:
            with self.signed_in():
                listing = self._call("GET", f"{self.base_url}/entity")
                published = (
                    [e.get("version") for e in (listing.json() or {}).get("endpoints", [])] if listing.ok else []
                )
                if published and self.version not in published:
                    return ConnectionTestResult(
                        ok=False,
                        message=f"Acumatica tenant {tenant} does not publish the Default endpoint {self.version} "
                        f"(it has {', '.join(published)}).",
                    )
                self._json("GET", "Customer", params={"$top": "1", "$select": "CustomerID"})
        except (ConnectorError, requests.RequestException, ValueError) as exc:
            return ConnectionTestResult.failed(exc, vendor="Acumatica")
        return ConnectionTestResult(
            ok=True,
            message=f"Connected to Acumatica tenant {tenant} as {self.credentials.get('username', '')} "
            f"(endpoint Default/{self.version}), and signed out again.",
            detail={"endpoint_version": self.version},
        )

    def read(self, object_name: str, *, since: str | None = None, page_size: int | None = None) -> Iterator[Page]:
        entity = self._entity(object_name)
        size = max(1, min(page_size or PAGE_SIZE, PAGE_SIZE))
        params: dict[str, str] = {"$top": str(size)}
        if entity.expand:
            params["$expand"] = ",".join(entity.expand)
        if since:
            watermark = parse_utc_datetime(since, needs_time=True)
            if watermark is None:
                raise ConnectorError(f"The sync cursor {since!r} is not a date and time.")
            params["$filter"] = f"LastModifiedDateTime ge datetimeoffset'{watermark.strftime('%Y-%m-%dT%H:%M:%S')}Z'"
        with self.signed_in():
            skip, started = 0, None
            while True:
                response = self._call("GET", object_name, params={**params, "$skip": str(skip)})
                if response.status_code >= 400:
                    raise VendorError(
                        f"Acumatica could not list {entity.label.lower()}: {self.session.redact(error_text(response))}",
                        status=response.status_code,
                    )
                started = started or server_time(response)
                rows = response.json()
                records, rejects = self._parse(entity, rows if isinstance(rows, list) else [])
                skip += len(rows)
                has_more = len(rows) == size
                cursor = since if has_more else started
                yield Page(records=records, rejects=rejects, cursor=cursor, has_more=has_more)
                if not has_more:
                    return

    def _parse(self, entity: AcumaticaEntity, rows: list) -> tuple[list[SourceRecord], list[RejectedRecord]]:
        records, rejects = [], []
        for row in rows:
            if not isinstance(row, Mapping) or not isinstance(row.get("id"), str):
                rejects.append(RejectedRecord(None, "Acumatica returned a record without its id.", row))
                continue
            data = unwrap(row)
            key = data.get(entity.key) if entity.own_key else row["id"]
            if not key:
                rejects.append(RejectedRecord(row["id"], f"The record has no {entity.key}.", row))
                continue
            modified = parse_utc_datetime(data.get("LastModifiedDateTime"), needs_time=True)
            if modified is None:
                reason = f"LastModifiedDateTime {data.get('LastModifiedDateTime')!r} is not a date and time."
                rejects.append(RejectedRecord(str(key), reason, row))
                continue
            for name in DATE_FIELDS:
                if isinstance(data.get(name), str):
                    data[name] = data[name][:10]
            updated = modified.strftime("%Y-%m-%dT%H:%M:%SZ")
            records.append(SourceRecord(external_id=str(key), updated_at=updated, data=data))
        return records, rejects

    # -- writes ----------------------------------------------------------------------------------------------------
    def write(
        self, object_name: str, records: list[OutboundRecord], *, mode: WriteMode = "upsert"
    ) -> list[WriteResult]:
        entity = self._entity(object_name)
        results: list[WriteResult] = []
        for batch in chunks(records, WRITE_BATCH):
            with self.signed_in():
                results.extend(self._write_batch(entity, batch, mode))
        return results

    def _key_of(self, entity: AcumaticaEntity, record: OutboundRecord) -> str | None:
        # A record already linked is written under its own id: renaming a key takes Acumatica's Change ID action.
        linked = record.target_id if entity.own_key else None
        value = linked or leaves(record.fields).get(entity.key) or record.external_id
        text = str(value or "").strip()
        return (text.upper() if entity.own_key else text) or None

    def _write_batch(self, entity: AcumaticaEntity, batch: list[OutboundRecord], mode: WriteMode) -> list[WriteResult]:
        keys = {index: self._key_of(entity, record) for index, record in enumerate(batch)}
        existing = self._existing(entity, sorted({k for k in keys.values() if k}))
        results: list[WriteResult] = []
        for index, record in enumerate(batch):
            key = keys[index]
            if key is None:
                results.append(
                    WriteResult(
                        record.external_id,
                        "failed",
                        None,
                        "MISSING_KEY",
                        f"Acumatica needs a {entity.key} for this record.",
                    )
                )
                continue
            current = existing.get(key.upper() if entity.own_key else key)
            results.append(self._write_one(entity, record, key, current, mode))
        return results

    def _write_one(
        self, entity: AcumaticaEntity, record: OutboundRecord, key: str, current: dict | None, mode: WriteMode
    ) -> WriteResult:
        fields = {k: v for k, v in leaves(record.fields).items() if k not in ("id", "LastModifiedDateTime")}
        fields[entity.key] = key
        target = (current or {}).get(entity.key) if entity.own_key else (current or {}).get("id")
        if current is None and mode == "update":
            return WriteResult(
                record.external_id,
                "failed",
                record.target_id,
                "NOT_FOUND",
                f"Acumatica holds no {entity.name} {key} to update.",
            )
        if current is not None:
            if mode == "create":
                return WriteResult(record.external_id, "unchanged", target)
            body = self._changes(entity, current, fields)
            if body is None:
                return WriteResult(record.external_id, "unchanged", target)
        else:
            body = fields
        response = self._call(
            "PUT", entity.name, json=wrap(body), params={"$expand": ",".join(entity.expand)} if entity.expand else None
        )
        if response.status_code in (200, 201):
            saved = unwrap(response.json())
            written = saved.get(entity.key) if entity.own_key else saved.get("id")
            return WriteResult(record.external_id, "created" if current is None else "updated", str(written or target))
        if response.status_code == 422 or (400 <= response.status_code < 500) or response.status_code == 500:
            code = "VALIDATION" if response.status_code == 422 else f"HTTP_{response.status_code}"
            return WriteResult(record.external_id, "failed", target, code, self.session.redact(error_text(response)))
        raise VendorError(
            f"Acumatica answered PUT {entity.name} with HTTP {response.status_code}.", response.status_code
        )

    def _changes(self, entity: AcumaticaEntity, current: dict, fields: dict[str, Any]) -> dict[str, Any] | None:
        """The PUT that makes `current` what `fields` says, or None when it already is."""
        present = leaves(current)
        lines = fields.pop("Details", None)
        changed = {k: v for k, v in fields.items() if not same(present.get(k), v, k)}
        replace_lines = lines is not None and Counter(map(line_shape, current.get("Details") or [])) != Counter(
            map(line_shape, lines)
        )
        if not changed and not replace_lines:
            return None
        body: dict[str, Any] = dict(changed)
        if entity.own_key:
            body[entity.key] = current[entity.key]
        else:
            body["id"] = current["id"]
        if replace_lines:
            body["Details"] = [{"id": line["id"], "delete": True} for line in current.get("Details") or []] + list(
                lines
            )
        return body

    def _existing(self, entity: AcumaticaEntity, keys: list[str]) -> dict[str, dict[str, Any]]:
        """The records holding these keys, unwrapped, by key (upper-cased where Acumatica upper-cases it)."""
        found: dict[str, dict[str, Any]] = {}
        for some_keys in chunks(keys, IN_FILTER_MAX):
            condition = " or ".join(f"{entity.key} eq {literal(k)}" for k in some_keys)
            params = {"$filter": condition}
            if entity.expand:
                params["$expand"] = ",".join(entity.expand)
            for row in self._json("GET", entity.name, params=params):
                data = unwrap(row)
                value = str(data.get(entity.key) or "")
                found[value.upper() if entity.own_key else value] = data
        return found
