"""The connector contract: what every vendor connector offers the sync engine.

Connectors know nothing of Django, models or tenants. They take a base URL, a dict of
credentials and an HTTP policy, and speak one vendor's API.
"""

from __future__ import annotations

import email.utils
import re
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal, TypeVar

from connectors.errors import (
    AuthenticationFailed,
    CertificateRejected,
    ConnectorError,
    DestinationRefused,
    RateLimited,
    VendorError,
    VendorUnavailable,
    WebhookRejected,
)
from connectors.http import HttpPolicy, VendorSession

__all__ = [
    "AuthenticationFailed",
    "CertificateRejected",
    "ConnectionTestResult",
    "Connector",
    "ConnectorError",
    "DestinationRefused",
    "FormField",
    "ObjectSpec",
    "OutboundRecord",
    "Page",
    "RateLimited",
    "RejectedRecord",
    "SourceRecord",
    "VendorError",
    "VendorUnavailable",
    "WebhookRejected",
    "WriteResult",
    "chunks",
    "header_value",
    "iso_utc",
    "json_object",
    "objects_by_name",
    "parse_utc_datetime",
]

T = TypeVar("T")

Outcome = Literal["created", "updated", "unchanged", "failed"]
WriteMode = Literal["create", "update", "upsert"]


def parse_utc_datetime(value: Any, *, naive_as_utc: bool = True, needs_time: bool = False) -> datetime | None:
    """An aware UTC datetime from a vendor's ISO 8601 text (`Z`, `+hh:mm` or `+hhmm`), else None.

    Text without an offset is read as UTC, or refused when `naive_as_utc` is False; `needs_time` refuses text too
    short to hold a time of day.
    """
    if not isinstance(value, str) or (needs_time and len(value) < 19):
        return None
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    elif re.search(r"[+-]\d{4}$", text):
        text = text[:-2] + ":" + text[-2:]
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        if not naive_as_utc:
            return None
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def iso_utc(moment: datetime) -> str:
    """A moment as ISO 8601 in UTC to the second with a Z, the form most vendors' filters take."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_utc_millis(moment: datetime) -> str:
    """A moment as ISO 8601 in UTC to the millisecond with a Z: "2012-02-22T02:06:58.147Z" (Asana's form)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def server_time(response) -> str:
    """The instant a vendor made an answer (its Date header), else now, as iso_utc: where a read's next cursor
    starts, so no record changed during the read is missed for a difference between the two clocks."""
    date = response.headers.get("Date")
    moment = email.utils.parsedate_to_datetime(date) if date else datetime.now(UTC)
    return iso_utc(moment)


def header_value(headers: Mapping[str, str], name: str) -> str | None:
    """A header's value whatever the case of its name (a webhook's headers arrive as a plain dict)."""
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return value
    return None


def json_object(response) -> dict[str, Any]:
    """A response's body when it is a JSON object; {} when it is not JSON, or is another JSON value."""
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """`items` in consecutive slices of at most `size`, in order: what a vendor takes in one call."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


@dataclass(frozen=True)
class FormField:
    """One field of a connection form. Secret fields are write-only in the UI.

    `multiline` asks for a text area, for values that span lines such as a PEM certificate or private key.
    """

    name: str
    label: str
    kind: Literal["text", "url", "email", "secret"] = "text"
    required: bool = True
    help: str = ""
    initial: str = ""  # "{product_name}" in it reads as the product name of the portal showing the form
    multiline: bool = False

    @property
    def secret(self) -> bool:
        return self.kind == "secret"


@dataclass(frozen=True)
class ObjectSpec:
    """An object a connector can read and/or write, e.g. Kantata "time_entries"."""

    name: str
    label: str
    readable: bool = True
    writable: bool = False
    batch_size: int = 1  # the vendor's cap per write call
    page_size: int = 100  # the vendor's cap per read page
    fields: tuple[str, ...] = ()  # field names a mapping editor can offer


def objects_by_name(*specs: ObjectSpec) -> dict[str, ObjectSpec]:
    """A connector's `objects`, each under its own name (so a key and the name it stands for cannot disagree)."""
    return {spec.name: spec for spec in specs}


@dataclass(frozen=True)
class ConnectionTestResult:
    ok: bool
    message: str  # a sentence a person understands: "Connected to Acme as api@acme.com"
    detail: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def failed(cls, error: Exception, *, vendor: str) -> ConnectionTestResult:
        """A test that failed on `error`: a ConnectorError says what went wrong in its own words; anything else (the
        network, an answer that could not be read) means `vendor` could not be reached."""
        if isinstance(error, ConnectorError):
            return cls(ok=False, message=str(error))
        return cls(ok=False, message=f"Could not reach {vendor}: {type(error).__name__}.")


@dataclass(frozen=True)
class SourceRecord:
    """One record read from a vendor, with the id and change time the engine needs."""

    external_id: str
    updated_at: str  # ISO 8601, as the vendor gave it (normalised to UTC where possible)
    data: Mapping[str, Any]


@dataclass(frozen=True)
class RejectedRecord:
    """A record the vendor returned that cannot be understood (malformed): reported, not dropped."""

    external_id: str | None
    reason: str
    raw: Any


@dataclass(frozen=True)
class Page:
    """One page of an incremental read.

    `cursor` is the watermark to store once this page is durably handled; reading again
    with `since=cursor` continues after it (records at the watermark may be read again,
    which the engine's idempotent writes absorb).
    """

    records: list[SourceRecord]
    rejects: list[RejectedRecord]
    cursor: str | None
    has_more: bool
    total: int | None = None  # records the whole read will return, when the vendor says (progress bars)


@dataclass(frozen=True)
class OutboundRecord:
    """One record to write. `external_id` is our id for it in the target (for upsert)."""

    external_id: str
    fields: Mapping[str, Any]
    target_id: str | None = None  # the vendor's own id, when already known (update)


@dataclass(frozen=True)
class WriteResult:
    external_id: str
    outcome: Outcome
    target_id: str | None = None
    error_code: str | None = None  # the vendor's code, e.g. "REQUIRED_FIELD_MISSING"
    error_message: str | None = None  # the vendor's message, secrets removed


class Connector(ABC):
    """One vendor's API. Subclasses set the class attributes and implement the methods."""

    vendor: ClassVar[str]  # "salesforce"
    label: ClassVar[str]  # "Salesforce"
    category: ClassVar[Literal["crm", "erp", "psa", "hr", "ticketing"]]
    objects: ClassVar[Mapping[str, ObjectSpec]]

    def __init__(self, *, base_url: str, credentials: Mapping[str, str], policy=None, connection_key: str = "default"):
        self.base_url = base_url.rstrip("/")
        self.credentials = dict(credentials)
        self.policy = policy or HttpPolicy()
        self.connection_key = connection_key
        secrets = [v for f in self.form_fields() if f.secret and (v := self.credentials.get(f.name))]
        self.session = VendorSession(
            policy=self.policy, vendor=self.vendor, connection_key=connection_key, secrets=secrets
        )

    @classmethod
    @abstractmethod
    def form_fields(cls) -> list[FormField]:
        """The fields of this connector's connection form (base URL is always asked separately)."""

    @abstractmethod
    def test_connection(self) -> ConnectionTestResult:
        """Make one real authenticated call and say in a sentence what happened. Never raises."""

    @abstractmethod
    def read(self, object_name: str, *, since: str | None = None, page_size: int | None = None) -> Iterator[Page]:
        """Yield pages of records changed at or after `since` (None: everything), oldest first."""

    def object_spec(self, object_name: str) -> ObjectSpec:
        """The object asked for; ConnectorError naming the objects there are when this connector has no such one."""
        spec = self.objects.get(object_name)
        if spec is None:
            raise ConnectorError(f"{self.label} has no object {object_name!r}; known: {', '.join(self.objects)}")
        return spec

    def write(
        self, object_name: str, records: list[OutboundRecord], *, mode: WriteMode = "upsert"
    ) -> list[WriteResult]:
        """Write one batch (at most the object's batch_size); one result per record, in order."""
        raise ConnectorError(f"{self.label} cannot write {object_name}")

    @classmethod
    def verify_webhook(
        cls, *, secret: str, method: str, url: str, headers: Mapping[str, str], body: bytes, now: float | None = None
    ) -> None:
        """Raise WebhookRejected unless the request is signed by the vendor and fresh."""
        raise WebhookRejected(f"{cls.label} does not send webhooks")

    @classmethod
    def webhook_handshake(
        cls, *, method: str, url: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, str, str] | None:
        """The answer (status, content type, body) to a vendor's subscription handshake, or None when the request
        is not one. Answered before any verification: a handshake carries no secret, and echoing it grants nothing.
        """
        return None

    def batch_size(self, object_name: str) -> int:
        return self.objects[object_name].batch_size

    def close(self) -> None:
        self.session.close()
