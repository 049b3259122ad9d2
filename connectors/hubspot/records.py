"""HubSpot's CRM objects as its API sends them: the properties we read, their values and timestamps, and its error
bodies (batch errors included)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import requests

from connectors.base import iso_utc_millis, json_object

EXTERNAL_ID_PROPERTY = "integration_record_id"  # a custom property with "unique values" set, created at setup
WATERMARK_PROPERTY = "hs_lastmodifieddate"
CLOSED_WON_STAGE = "closedwon"
BATCH_LIMIT = 100  # records in one batch create, update or read

COMPANY_PROPERTIES = (
    "name",
    "domain",
    "phone",
    "address",
    "city",
    "state",
    "zip",
    "country",
    "industry",
    "payment_terms",
    EXTERNAL_ID_PROPERTY,
    "createdate",
    WATERMARK_PROPERTY,
)


DEAL_PROPERTIES = (
    "dealname",
    "amount",
    "deal_currency_code",
    "dealstage",
    "pipeline",
    "closedate",
    "dealtype",
    "description",
    "hs_is_closed_won",
    "billing_terms",
    "project_code",
    EXTERNAL_ID_PROPERTY,
    "createdate",
    WATERMARK_PROPERTY,
)


def rate_limit_wait(response: requests.Response) -> float | None:
    """Rate-limit hook for VendorSession, for a 429 that carries no Retry-After (the session honours that one)."""
    if response.status_code != 429 or response.headers.get("Retry-After"):
        return None
    policy = json_object(response).get("policyName", "")
    if policy == "DAILY":
        return 3600.0  # longer than any policy's max_retry_after: give up now, the engine reschedules
    if policy == "SECONDLY":
        return 1.0
    interval = response.headers.get("X-HubSpot-RateLimit-Interval-Milliseconds")
    return int(interval) / 1000.0 if interval and interval.isascii() and interval.isdigit() else 1.0


def error_message(response: requests.Response) -> str:
    body = json_object(response)
    message = body.get("message") or f"HTTP {response.status_code}"
    category = body.get("category")
    return f"{message} ({category})" if category else message


def parse_hubspot_datetime(value: Any) -> datetime | None:
    """ISO 8601 (`2024-01-02T09:00:00.123Z`) or epoch milliseconds, as an aware UTC datetime."""
    if isinstance(value, int | float) or (isinstance(value, str) and value.isascii() and value.isdigit()):
        return datetime.fromtimestamp(int(value) / 1000.0, tz=UTC)
    if not isinstance(value, str) or len(value) < 10:
        return None
    text = value.strip().replace("Z", "+00:00")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


def property_value(value: Any) -> str | None:
    """HubSpot properties are strings on the wire."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        return iso_utc_millis(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def domain_of(value: Any) -> str:
    """`https://www.Acme.example/` -> `acme.example`: the form HubSpot keeps in a company's domain."""
    if not value:
        return ""
    text = str(value).strip().lower()
    host = urlsplit(text if "//" in text else f"//{text}").hostname or ""
    return host.removeprefix("www.")


def detail_code(error: Mapping[str, Any]) -> str | None:
    details = error.get("errors") or []
    return details[0].get("code") if details and isinstance(details[0], Mapping) else None


def trace_index(trace: Any, inputs: Mapping[int, Any]) -> int | None:
    try:
        index = int(trace)
    except (TypeError, ValueError):
        return None
    return index if index in inputs else None
