"""ADP Workforce Now connector: the firm's workers, read-only, from the HR and payroll system that owns the person.

Every call, the token request included, presents the connection's client certificate (mutual TLS); the bearer
token comes from the OAuth client-credentials grant and lasts about an hour. A full read pages through
`/hr/v2/workers` with $top/$skip (204 No Content past the end). After it, reads follow the event notification
queue: GET the next message, read the worker it names, and acknowledge it (DELETE) only once that page's cursor is
stored, so an event is never lost and at worst read twice.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
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
    Page,
    RejectedRecord,
    SourceRecord,
    VendorError,
    objects_by_name,
)

PAGE_MAX = 100
PRODUCTION_TOKEN_URL = "https://accounts.adp.com/auth/oauth/v2/token"  # noqa: S105 - a URL
QUEUE = "queue"  # the cursor once a full read is done: follow the event queue from here on
MESSAGE_ID = "adp-msg-msgid"
WORKER_FIELDS = (
    "associateOID",
    "workerID",
    "givenName",
    "familyName1",
    "formattedName",
    "emailUri",
    "jobTitle",
    "positionID",
    "department",
    "homeWorkLocation",
    "workerStatus",
    "originalHireDate",
    "terminationDate",
    "annualRateAmount",
    "currencyCode",
    "costRate",
    "reportsToWorkerID",
    "eventNameCode",
)

# ---------------------------------------------------------------------------------------------------------------
# (unverified) assumptions, kept here and emulated the same way by connectors/adp/sandbox.py:
# - $top is capped at PAGE_MAX per call; `count=true` adds meta.totalNumber.
# - Throttling is HTTP 429 with Retry-After (ADP publishes no limits).
# - The hourly cost rate is an amount custom field whose codeValue is COST_RATE_FIELD (each client names its own).
# - Records from a full read carry the moment of the read as updated_at: the workers API gives no change time.
# ---------------------------------------------------------------------------------------------------------------
COST_RATE_FIELD = "costRate"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def adp_error(response: requests.Response) -> str:
    """The sentence in one of ADP's error bodies (OAuth, API gateway or confirm message), or ""."""
    try:
        body = response.json()
    except ValueError:
        return ""
    if not isinstance(body, Mapping):
        return ""
    if body.get("error_description") or body.get("error"):
        return str(body.get("error_description") or body.get("error"))
    code = (body.get("response") or {}).get("applicationCode") or {}
    if code.get("message"):
        return str(code["message"])
    messages = ((body.get("_confirmMessage") or {}).get("messages")) or []
    return "; ".join(str(m.get("messageText")) for m in messages if isinstance(m, Mapping) and m.get("messageText"))


class ADPConnector(Connector):
    vendor = "adp"
    label = "ADP Workforce Now"
    category = "hr"
    objects = objects_by_name(
        ObjectSpec("workers", "Workers", readable=True, writable=False, page_size=PAGE_MAX, fields=WORKER_FIELDS),
    )

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._token: str | None = None
        self._tls_ready = False

    @classmethod
    def form_fields(cls) -> list[FormField]:
        return [
            FormField("client_id", "Client ID", help="From your ADP API Central or Marketplace app's credentials."),
            FormField("client_secret", "Client secret", kind="secret"),
            FormField(
                "client_certificate",
                "Client certificate (PEM)",
                kind="secret",
                multiline=True,
                help="The certificate ADP signed for your CSR (-----BEGIN CERTIFICATE-----); presented on every call.",
            ),
            FormField(
                "client_private_key",
                "Client private key (PEM)",
                kind="secret",
                multiline=True,
                help="The private key you generated with the CSR (-----BEGIN PRIVATE KEY-----).",
            ),
            FormField(
                "token_url",
                "Token URL",
                kind="url",
                required=False,
                help=f"Leave blank for ADP ({PRODUCTION_TOKEN_URL}, or the API host's own for a gateway or sandbox).",
            ),
            FormField(
                "ca_certificate",
                "Trusted CA certificate (PEM)",
                required=False,
                multiline=True,
                help="Leave blank for ADP itself; only a private gateway or the local sandbox needs its CA here.",
            ),
        ]

    # -- HTTP ----------------------------------------------------------------------------------------------------

    @property
    def token_url(self) -> str:
        configured = (self.credentials.get("token_url") or "").strip()
        if configured:
            return configured
        if urlsplit(self.base_url).hostname == "api.adp.com":
            return PRODUCTION_TOKEN_URL
        return f"{self.base_url}/auth/oauth/v2/token"

    def _present_certificate(self) -> None:
        if self._tls_ready:
            return
        try:
            self.session.use_client_certificate(
                certificate_pem=self.credentials.get("client_certificate", ""),
                private_key_pem=self.credentials.get("client_private_key", ""),
                ca_pem=self.credentials.get("ca_certificate", ""),
            )
        except ValueError as exc:
            raise AuthenticationFailed(f"The ADP client certificate cannot be used: {exc}") from None
        self._tls_ready = True

    def _access_token(self) -> str:
        if self._token:
            return self._token
        self._present_certificate()
        response = self.session.post(
            self.token_url,
            data={
                "grant_type": "client_credentials",
                "client_id": self.credentials.get("client_id", ""),
                "client_secret": self.credentials.get("client_secret", ""),
            },
            headers={"Accept": "application/json"},
        )
        if response.status_code != 200:
            reason = self.session.redact(adp_error(response)) or f"HTTP {response.status_code}"
            if "certificate" in reason:
                raise AuthenticationFailed(
                    f"ADP did not accept the client certificate ({reason}). Check that the certificate ADP signed "
                    "and its private key are both saved on this connection."
                )
            raise AuthenticationFailed(f"ADP refused the client ID or secret ({reason}).")
        token = str(response.json().get("access_token") or "")
        if not token:
            raise AuthenticationFailed("ADP's token endpoint answered without an access token.")
        self.session.add_secrets([token])
        self._token = token
        return token

    def _api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """One API call with the bearer token (fetched again once if ADP says it expired)."""
        for attempt in (1, 2):
            headers = {"Accept": "application/json", "Authorization": f"Bearer {self._access_token()}"}
            response = self.session.request(method, f"{self.base_url}{path}", headers=headers, **kwargs)
            if response.status_code == 401 and attempt == 1:
                self._token = None
                continue
            break
        if response.status_code in (200, 204):
            return response
        reason = self.session.redact(adp_error(response)) or f"HTTP {response.status_code}"
        shown = path.split("?")[0]
        if response.status_code in (401, 403):
            raise AuthenticationFailed(f"ADP refused {method} {shown} ({reason}): check the app's API scopes.")
        raise VendorError(f"ADP answered {method} {shown} with {reason}", status=response.status_code)

    # -- contract ------------------------------------------------------------------------------------------------

    def test_connection(self) -> ConnectionTestResult:
        try:
            body = self._api("GET", "/hr/v2/workers?$top=1&count=true")
        except (ConnectorError, requests.RequestException) as exc:
            return ConnectionTestResult.failed(exc, vendor="ADP")
        total = (body.json().get("meta") or {}).get("totalNumber", 0) if body.status_code == 200 else 0
        return ConnectionTestResult(
            ok=True,
            message=f"Connected to ADP Workforce Now with a client certificate; {total} workers visible.",
            detail={"workers": total},
        )

    def read(self, object_name: str, *, since: str | None = None, page_size: int | None = None) -> Iterator[Page]:
        self.object_spec(object_name)
        top = max(1, min(page_size or PAGE_MAX, PAGE_MAX))
        if since is None:
            yield from self._read_all(top, skip=0)
        elif since.startswith("all|") and since[4:].isdigit():  # a full read that stopped after `skip` workers
            yield from self._read_all(top, skip=int(since[4:]))
        elif since == QUEUE or since.startswith(f"{QUEUE}|"):
            yield from self._read_queue(acknowledge=since.partition("|")[2] or None)
        else:
            raise ConnectorError(f"Not an ADP cursor: {since!r} (a full read ends with {QUEUE!r})")

    def _read_all(self, top: int, *, skip: int) -> Iterator[Page]:
        moment = _now()
        while True:
            response = self._api("GET", f"/hr/v2/workers?$top={top}&$skip={skip}&count=true")
            if response.status_code == 204:  # past the last worker
                yield Page(records=[], rejects=[], cursor=QUEUE, has_more=False)
                return
            body = response.json()
            workers = body.get("workers") or []
            records, rejects = parse_workers(workers, updated_at=moment)
            skip += len(workers)
            total = (body.get("meta") or {}).get("totalNumber")
            done = not workers or (total is not None and skip >= int(total))
            yield Page(
                records=records,
                rejects=rejects,
                cursor=QUEUE if done else f"all|{skip}",
                has_more=not done,
                total=int(total) if total is not None else None,
            )
            if done:
                return

    def _read_queue(self, *, acknowledge: str | None) -> Iterator[Page]:
        """One event a page. The message a page came from is acknowledged when the next page is asked for (the
        engine stores a page's cursor before it asks) or, after a stop, when the next read starts from that cursor."""
        while True:
            if acknowledge:
                self._acknowledge(acknowledge)
            response = self._api("GET", "/core/v1/event-notification-messages")
            if response.status_code == 204:  # nothing queued
                yield Page(records=[], rejects=[], cursor=QUEUE, has_more=False)
                return
            message_id = response.headers.get(MESSAGE_ID)
            if not message_id:
                raise VendorError(f"ADP sent an event notification without its {MESSAGE_ID} header.")
            records, rejects = self._event_records(response)
            yield Page(records=records, rejects=rejects, cursor=f"{QUEUE}|{message_id}", has_more=True)
            acknowledge = message_id

    def _acknowledge(self, message_id: str) -> None:
        try:
            self._api("DELETE", f"/core/v1/event-notification-messages/{quote(message_id, safe='')}")
        except VendorError as exc:
            if exc.status != 404:  # already acknowledged (a read that restarted after storing its cursor)
                raise

    def _event_records(self, response: requests.Response) -> tuple[list[SourceRecord], list[RejectedRecord]]:
        try:
            body = response.json()
            event = (body.get("events") or [])[0]
            name = event["eventNameCode"]["codeValue"]
            when = event.get("recordDateTime") or event.get("creationDateTime") or _now()
            associate = ((event.get("data") or {}).get("eventContext") or {}).get("worker", {}).get("associateOID")
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            return [], [
                RejectedRecord(external_id=None, reason="The event notification cannot be read.", raw=response.text)
            ]
        if not associate:
            reason = f"The {name} event names no worker (eventContext.worker.associateOID)."
            return [], [RejectedRecord(external_id=None, reason=reason, raw=body)]
        worker = self._api("GET", f"/hr/v2/workers/{quote(str(associate), safe='')}")
        workers = (worker.json().get("workers") or []) if worker.status_code == 200 else []
        return parse_workers(workers, updated_at=when, event=name)


def _first(items: Any, predicate=lambda item: True) -> dict[str, Any]:
    for item in items or []:
        if isinstance(item, Mapping) and predicate(item):
            return dict(item)
    return {}


def _code(node: Any, key: str = "codeValue") -> str | None:
    return (node or {}).get(key) if isinstance(node, Mapping) else None


def parse_workers(
    workers: list[Any], *, updated_at: str, event: str | None = None
) -> tuple[list[SourceRecord], list[RejectedRecord]]:
    """Workers as records; `event` is the notification (e.g. worker.hire) that brought them, if any."""
    records: list[SourceRecord] = []
    rejects: list[RejectedRecord] = []
    for worker in workers:
        if not isinstance(worker, Mapping):
            rejects.append(RejectedRecord(external_id=None, reason="The worker is not a JSON object.", raw=worker))
            continue
        associate = worker.get("associateOID")
        if not associate:
            rejects.append(RejectedRecord(external_id=None, reason="The worker has no associateOID.", raw=worker))
            continue
        data, problem = worker_fields(worker)
        data["eventNameCode"] = event
        if problem:
            rejects.append(RejectedRecord(external_id=str(associate), reason=problem, raw=worker))
            continue
        records.append(SourceRecord(external_id=str(associate), updated_at=updated_at, data=data))
    return records, rejects


def worker_fields(worker: Mapping[str, Any]) -> tuple[dict[str, Any], str | None]:
    """The worker flattened under ADP's leaf names (primary assignment), or a reason it cannot be used."""
    name = (worker.get("person") or {}).get("legalName") or {}
    assignment = _first(worker.get("workAssignments"), lambda a: a.get("primaryIndicator")) or _first(
        worker.get("workAssignments")
    )
    email = _first(
        (worker.get("businessCommunication") or {}).get("emails"),
        lambda e: _code(e.get("nameCode")) in (None, "Work E-mail", "Work Email"),
    )
    department = _first(assignment.get("homeOrganizationalUnits"), lambda u: _code(u.get("typeCode")) == "Department")
    pay = ((assignment.get("baseRemuneration") or {}).get("annualRateAmount")) or {}
    cost = _first(
        (worker.get("customFieldGroup") or {}).get("amountFields"),
        lambda f: _code(f.get("nameCode")) == COST_RATE_FIELD,
    )
    boss = _first(assignment.get("reportsTo"))
    dates = worker.get("workerDates") or {}
    data = {
        "associateOID": worker.get("associateOID"),
        "workerID": (worker.get("workerID") or {}).get("idValue"),
        "givenName": name.get("givenName"),
        "familyName1": name.get("familyName1"),
        "formattedName": name.get("formattedName"),
        "emailUri": email.get("emailUri"),
        "jobTitle": assignment.get("jobTitle"),
        "positionID": assignment.get("positionID"),
        "department": _code(department.get("nameCode"), "shortName"),
        "homeWorkLocation": _code((assignment.get("homeWorkLocation") or {}).get("nameCode"), "shortName"),
        "workerStatus": _code((worker.get("workerStatus") or {}).get("statusCode")),
        "originalHireDate": dates.get("originalHireDate"),
        "terminationDate": dates.get("terminationDate"),
        "annualRateAmount": pay.get("amountValue"),
        "currencyCode": pay.get("currencyCode"),
        "costRate": cost.get("amountValue"),
        "reportsToWorkerID": (boss.get("workerID") or {}).get("idValue"),
        "eventNameCode": None,
    }
    if not data["workerID"]:
        return data, "The worker has no workerID (employee number)."
    for field in ("originalHireDate", "terminationDate"):
        value = data[field]
        if value is not None:
            try:
                data[field] = datetime.strptime(str(value)[:10], "%Y-%m-%d").date().isoformat()
            except ValueError:
                return data, f"{field} is not a date: {value!r}"
    return data, None
