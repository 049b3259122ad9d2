"""HubSpot sandbox: a local WSGI emulator of the CRM v3 objects API for companies and deals.

List (limit 100, `after` cursor), search (filterGroups, one sort, 200 a page, 10,000 results at most), batch
create/update/upsert/read (100 inputs, 207 on partial failure), v4 association reads, private-app Bearer auth,
the rate limits with their 429 body and X-HubSpot-RateLimit-* headers, and deal-stage webhooks signed with
X-HubSpot-Signature-v3. Seeded from the shared Firm. Assumptions are listed in client.py's "(unverified)" block.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import math
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from connectors.hubspot.client import (
    CLOSED_WON_STAGE,
    EXTERNAL_ID_PROPERTY,
    iso_millis,
    parse_hubspot_datetime,
    signature_v3,
)
from connectors.sandbox.app import SandboxApp, deliver_webhook, json_response
from connectors.sandbox.firm import Firm

DEMO_CREDENTIALS = {
    "access_token": "pat-na1-7c0d5e8a-3b1f-4f6e-9a2d-5d6e0f5c1a77",
    "webhook_secret": "sgp-hubspot-app-client-secret-2f9c",
}
WEBHOOK_SECRET = DEMO_CREDENTIALS["webhook_secret"]

PORTAL_ID = 24681357
APP_ID = 1357913
TEN_SECOND_LIMIT = 190  # Professional/Enterprise private apps: 190 requests per rolling 10 seconds
SEARCH_PER_SECOND = 5  # the search endpoints: 5 requests per second per account
DAILY_LIMIT = 1_000_000
LIST_MAX = 100
SEARCH_MAX = 200
SEARCH_RESULT_CAP = 10_000
BATCH_MAX = 100
SEED_EPOCH = datetime(2024, 1, 2, 9, 0, 0, tzinfo=UTC)
ID_BASE = {"companies": 18_000_000_000, "deals": 9_000_000_000}  # HubSpot ids are numeric strings
OBJECT_ALIASES = {
    "companies": "companies",
    "company": "companies",
    "0-2": "companies",
    "deals": "deals",
    "deal": "deals",
    "0-3": "deals",
}


@dataclass(frozen=True)
class Prop:
    name: str
    label: str
    type: str  # string, number, date, datetime, enumeration, bool
    field_type: str
    options: tuple[str, ...] = ()
    unique: bool = False
    read_only: bool = False

    def describe(self, object_name: str) -> dict[str, Any]:
        custom = self.name in CUSTOM_PROPERTIES
        return {
            "name": self.name,
            "label": self.label,
            "type": self.type,
            "fieldType": self.field_type,
            "description": "",
            "groupName": "companyinformation" if object_name == "companies" else "dealinformation",
            "options": [
                {"label": o, "value": o, "displayOrder": i, "hidden": False} for i, o in enumerate(self.options)
            ],
            "displayOrder": -1,
            "calculated": self.read_only and not custom,
            "externalOptions": False,
            "hasUniqueValue": self.unique,
            "hidden": False,
            "hubspotDefined": not custom,
            "modificationMetadata": {
                "archivable": True,
                "readOnlyDefinition": not custom,
                "readOnlyValue": self.read_only,
            },
            "formField": not self.read_only,
            "archived": False,
            "createdAt": "2023-06-01T12:00:00.000Z",
            "updatedAt": "2023-06-01T12:00:00.000Z",
        }


# Properties a firm (or our setup) created in its portal; every other property is HubSpot's own.
CUSTOM_PROPERTIES = {EXTERNAL_ID_PROPERTY, "payment_terms", "billing_terms", "project_code"}

STAGES = (
    "appointmentscheduled",
    "qualifiedtobuy",
    "presentationscheduled",
    "decisionmakerboughtin",
    "contractsent",
    "closedwon",
    "closedlost",
)
FIRM_STAGES = {  # the Firm's neutral deal stages -> the default pipeline's stage ids
    "qualification": "qualifiedtobuy",
    "needs_analysis": "presentationscheduled",
    "proposal": "decisionmakerboughtin",
    "negotiation": "contractsent",
    "closed_won": "closedwon",
    "closed_lost": "closedlost",
}
CURRENCIES = ("USD", "EUR", "GBP", "CAD", "AUD")


def _common() -> list[Prop]:
    return [
        Prop("hs_object_id", "Record ID", "number", "number", read_only=True),
        Prop("createdate", "Create Date", "datetime", "date", read_only=True),
        Prop(
            "hs_lastmodifieddate",
            "Last Modified Date",
            "datetime",
            "date",
            read_only=True,
        ),
        Prop(EXTERNAL_ID_PROPERTY, "Integration record ID", "string", "text", unique=True),
    ]


SCHEMA: dict[str, dict[str, Prop]] = {
    "companies": {
        p.name: p
        for p in [
            *_common(),
            Prop("name", "Company name", "string", "text"),
            Prop("domain", "Company domain name", "string", "text"),
            Prop("phone", "Phone number", "string", "phonenumber"),
            Prop("address", "Street address", "string", "text"),
            Prop("city", "City", "string", "text"),
            Prop("state", "State/Region", "string", "text"),
            Prop("zip", "Postal code", "string", "text"),
            Prop("country", "Country/Region", "string", "text"),
            Prop("industry", "Industry", "string", "text"),
            Prop(
                "payment_terms",
                "Payment terms",
                "enumeration",
                "select",
                ("Due on receipt", "Net 15", "Net 30", "Net 45", "Net 60"),
            ),
        ]
    },
    "deals": {
        p.name: p
        for p in [
            *_common(),
            Prop("dealname", "Deal Name", "string", "text"),
            Prop("amount", "Amount", "number", "number"),
            Prop("deal_currency_code", "Currency", "enumeration", "select", CURRENCIES),
            Prop("dealstage", "Deal Stage", "enumeration", "radio", STAGES),
            Prop("pipeline", "Pipeline", "enumeration", "select", ("default",)),
            Prop("closedate", "Close Date", "datetime", "date"),
            Prop("dealtype", "Deal Type", "enumeration", "radio", ("newbusiness", "existingbusiness")),
            Prop("description", "Deal Description", "string", "textarea"),
            Prop("hs_is_closed_won", "Is Closed Won", "bool", "booleancheckbox", read_only=True),
            Prop("billing_terms", "Billing terms", "string", "text"),
            Prop("project_code", "Project code", "string", "text"),
        ]
    },
}
DEFAULT_PROPERTIES = {
    "companies": ("createdate", "domain", "hs_lastmodifieddate", "hs_object_id", "name"),
    "deals": (
        "amount",
        "closedate",
        "createdate",
        "dealname",
        "dealstage",
        "hs_lastmodifieddate",
        "hs_object_id",
        "pipeline",
    ),
}
ALWAYS_RETURNED = ("createdate", "hs_lastmodifieddate", "hs_object_id")
REQUIRED = {"companies": (), "deals": ("dealname", "dealstage")}


class HubSpotError(Exception):
    """A whole-request failure in HubSpot's error shape."""

    def __init__(self, status: int, category: str, message: str, details: list[dict[str, Any]] | None = None):
        super().__init__(message)
        self.status, self.category, self.message, self.details = status, category, message, details or []

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "status": "error",
            "message": self.message,
            "correlationId": str(uuid.uuid4()),
            "category": self.category,
        }
        if self.details:
            body["errors"] = self.details
        return body


def _now() -> datetime:
    moment = datetime.now(UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


class HubSpotPortal:
    """The mutable state of one portal: objects, limits and webhook subscriptions."""

    def __init__(self, firm: Firm):
        self.firm = firm
        self.lock = threading.RLock()
        self.objects: dict[str, dict[str, dict[str, Any]]] = {"companies": {}, "deals": {}}
        self.counters = {"companies": 0, "deals": 0, "event": 0}
        self.recent_calls: deque[float] = deque()
        self.recent_searches: deque[float] = deque()
        self.daily_calls = 0
        self.webhook_urls: list[str] = []
        self.deliveries: list[dict[str, Any]] = []
        self._pending_events: list[dict[str, Any]] = []
        self._seed()

    # -- seeding ---------------------------------------------------------------------------------------------

    def _seed(self) -> None:
        company_ids: dict[int, str] = {}
        for index, customer in enumerate(self.firm.crm_companies()):
            address = customer.get("billing_address") or {}
            properties = {
                "name": customer["name"],
                "domain": customer.get("domain"),
                "phone": customer.get("phone"),
                "address": address.get("street"),
                "city": address.get("city"),
                "state": address.get("region") or None,
                "zip": address.get("postal_code"),
                "country": address.get("country"),
                "industry": "Management Consulting",
                "payment_terms": customer.get("payment_terms"),
            }
            moment = SEED_EPOCH + timedelta(hours=index, milliseconds=index * 7)
            company_ids[customer["id"]] = self._insert("companies", properties, moment)["id"]
        offset = len(company_ids)
        for index, deal in enumerate(self.firm.deals()):
            properties = {
                "dealname": deal["name"],
                "amount": deal.get("amount"),
                "deal_currency_code": deal.get("currency") if deal.get("currency") in CURRENCIES else "USD",
                "dealstage": FIRM_STAGES.get(deal.get("stage"), "appointmentscheduled"),
                "pipeline": "default",
                "closedate": f"{deal['close_date']}T00:00:00.000Z" if deal.get("close_date") else None,
                "dealtype": "newbusiness",
                "billing_terms": deal.get("billing_terms"),
                "project_code": deal.get("project_code"),
            }
            moment = SEED_EPOCH + timedelta(hours=offset + index, milliseconds=index * 7)
            company = company_ids.get(self.firm.crm_company_of(deal))
            self._insert("deals", properties, moment, companies=[company] if company else [])

    def seed_more(self, object_name: str, count: int) -> int:
        with self.lock:
            existing = len(self.objects[object_name])
            companies = list(self.objects["companies"])
            for i in range(count):
                moment = SEED_EPOCH + timedelta(days=400, seconds=existing + i)
                if object_name == "companies":
                    properties = {
                        "name": f"Volume Company {existing + i:06d}",
                        "domain": f"volume{existing + i}.example",
                    }
                    self._insert("companies", properties, moment)
                else:
                    properties = {
                        "dealname": f"Volume Deal {existing + i:06d}",
                        "amount": str(1000 + (i % 50) * 250),
                        "dealstage": "appointmentscheduled",
                        "pipeline": "default",
                        "deal_currency_code": "USD",
                    }
                    self._insert("deals", properties, moment, companies=[companies[i % len(companies)]])
            return len(self.objects[object_name])

    def _insert(
        self, object_name: str, properties: dict[str, Any], moment: datetime, companies: list[str] | None = None
    ) -> dict[str, Any]:
        self.counters[object_name] += 1
        object_id = str(ID_BASE[object_name] + self.counters[object_name])
        stamp = iso_millis(moment)
        record = {
            "id": object_id,
            "properties": {k: (None if v is None else str(v)) for k, v in properties.items()},
            "createdAt": stamp,
            "updatedAt": stamp,
            "archived": False,
            "companies": list(companies or []),
        }
        record["properties"].update(hs_object_id=object_id, createdate=stamp, hs_lastmodifieddate=stamp)
        if object_name == "deals":
            record["properties"]["pipeline"] = record["properties"].get("pipeline") or "default"
            record["properties"]["hs_is_closed_won"] = str(
                record["properties"].get("dealstage") == CLOSED_WON_STAGE
            ).lower()
        self.objects[object_name][object_id] = record
        return record

    # -- reads -------------------------------------------------------------------------------------------------

    def render(
        self, object_name: str, record: dict[str, Any], properties: list[str] | None, associations: list[str] = ()
    ) -> dict[str, Any]:
        names = list(properties) if properties else list(DEFAULT_PROPERTIES[object_name])
        names += [n for n in ALWAYS_RETURNED if n not in names]
        shown = {n: record["properties"].get(n) for n in names if n in SCHEMA[object_name]}
        out: dict[str, Any] = {
            "id": record["id"],
            "properties": shown,
            "createdAt": record["createdAt"],
            "updatedAt": record["updatedAt"],
            "archived": record["archived"],
        }
        if "companies" in associations and object_name == "deals" and record["companies"]:
            out["associations"] = {
                "companies": {"results": [{"id": c, "type": "deal_to_company"} for c in record["companies"]]}
            }
        return out

    def matches(self, object_name: str, record: dict[str, Any], groups: list[dict[str, Any]]) -> bool:
        if not groups:
            return True
        return any(all(self._filter(object_name, record, f) for f in g.get("filters", [])) for g in groups)

    @staticmethod
    def _filter(object_name: str, record: dict[str, Any], flt: dict[str, Any]) -> bool:
        name, operator = flt.get("propertyName", ""), str(flt.get("operator", "EQ")).upper()
        prop = SCHEMA[object_name].get(name)
        if prop is None:
            raise HubSpotError(
                400, "VALIDATION_ERROR", f"There was a problem with the request. Unknown property {name}"
            )
        raw = record["properties"].get(name)
        if operator == "HAS_PROPERTY":
            return raw not in (None, "")
        if operator == "NOT_HAS_PROPERTY":
            return raw in (None, "")

        def typed(value: Any) -> Any:
            if value is None or value == "":
                return None
            if prop.type in ("datetime", "date"):
                parsed = parse_hubspot_datetime(value)
                if parsed is None:
                    raise HubSpotError(400, "VALIDATION_ERROR", f"{value} is not a valid date for {name}")
                return parsed
            if prop.type == "number":
                try:
                    return float(value)
                except (TypeError, ValueError):
                    raise HubSpotError(400, "VALIDATION_ERROR", f"{value} is not a valid number for {name}") from None
            return str(value).lower()

        actual = typed(raw)
        if operator in ("IN", "NOT_IN"):
            values = {typed(v) for v in flt.get("values") or []}
            return (actual in values) == (operator == "IN")
        if operator in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
            token = str(flt.get("value", "")).lower().strip("*")
            found = actual is not None and token in str(actual)
            return found == (operator == "CONTAINS_TOKEN")
        expected = typed(flt.get("value"))
        if operator == "EQ":
            return actual == expected
        if operator == "NEQ":
            return actual != expected
        if actual is None or expected is None:
            return False
        if operator == "BETWEEN":
            high = typed(flt.get("highValue"))
            return high is not None and expected <= actual <= high
        comparisons = {
            "LT": actual < expected,
            "LTE": actual <= expected,
            "GT": actual > expected,
            "GTE": actual >= expected,
        }
        if operator not in comparisons:
            raise HubSpotError(400, "VALIDATION_ERROR", f"Unknown filter operator {operator}")
        return comparisons[operator]

    # -- writes ------------------------------------------------------------------------------------------------

    def validate(
        self, object_name: str, properties: dict[str, Any], existing: dict[str, Any] | None
    ) -> list[dict[str, Any]]:
        """Per-input problems as HubSpot error details ({message, code, in, context})."""
        problems: list[dict[str, Any]] = []

        def problem(name: str, code: str, message: str) -> None:
            problems.append({"message": message, "code": code, "in": name, "context": {"propertyName": [name]}})

        for name, value in properties.items():
            prop = SCHEMA[object_name].get(name)
            if prop is None:
                problem(name, "PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist')
                continue
            if prop.read_only:
                problem(name, "READ_ONLY_VALUE", f'"{name}" is a read only property; its value cannot be set.')
                continue
            if value in (None, ""):
                continue
            text = str(value)
            if prop.type == "enumeration" and text not in prop.options:
                problem(name, "INVALID_OPTION", f"{text} was not one of the allowed options: {list(prop.options)}")
            elif prop.type == "number":
                try:
                    float(text)
                except ValueError:
                    problem(name, "INVALID_DECIMAL", f"{text} was not a valid number.")
            elif prop.type in ("datetime", "date") and parse_hubspot_datetime(text) is None:
                problem(name, "INVALID_DATE", f"{text} is not a valid date or date-time.")
            if prop.unique:
                owner = self.find_by(object_name, name, text)
                if owner is not None and owner is not existing:
                    problem(
                        name,
                        "DUPLICATE_UNIQUE_PROPERTY_VALUE",
                        f"{owner['id']} already has that value for {name}.",
                    )
        if existing is None:
            for name in REQUIRED[object_name]:
                if properties.get(name) in (None, ""):
                    problem(name, "REQUIRED_PROPERTY", f"{name} is required.")
        return problems

    def find_by(self, object_name: str, property_name: str, value: str) -> dict[str, Any] | None:
        lowered = value.lower()
        for record in self.objects[object_name].values():
            current = record["properties"].get(property_name)
            if not record["archived"] and current is not None and current.lower() == lowered:
                return record
        return None

    def apply(
        self,
        object_name: str,
        properties: dict[str, Any],
        existing: dict[str, Any] | None,
        companies: list[str] | None = None,
    ) -> dict[str, Any]:
        moment = _now()
        clean = {k: (None if v is None else str(v)) for k, v in properties.items()}
        if existing is None:
            record = self._insert(object_name, clean, moment, companies=companies)
            was_won = False
        else:
            was_won = existing["properties"].get("dealstage") == CLOSED_WON_STAGE
            existing["properties"].update(clean)
            stamp = iso_millis(moment)
            existing["updatedAt"] = stamp
            existing["properties"]["hs_lastmodifieddate"] = stamp
            if object_name == "deals":
                won = existing["properties"].get("dealstage") == CLOSED_WON_STAGE
                existing["properties"]["hs_is_closed_won"] = str(won).lower()
            if companies:
                existing["companies"] = list(dict.fromkeys([*existing["companies"], *companies]))
            record = existing
        if object_name == "deals" and record["properties"].get("dealstage") == CLOSED_WON_STAGE and not was_won:
            self._pending_events.append(record)
        return record

    # -- webhooks ----------------------------------------------------------------------------------------------

    def begin_events(self) -> None:
        self._pending_events = []

    def flush_events(self) -> None:
        """One webhook request per write call, carrying every closedwon event it caused (HubSpot batches them)."""
        deals, self._pending_events = self._pending_events, []
        if not deals or not self.webhook_urls:
            return
        events = []
        for deal in deals:
            self.counters["event"] += 1
            events.append(
                {
                    "eventId": 100_000 + self.counters["event"],
                    "subscriptionId": 2_468_001,
                    "portalId": PORTAL_ID,
                    "appId": APP_ID,
                    "occurredAt": int(time.time() * 1000),
                    "subscriptionType": "deal.propertyChange",
                    "attemptNumber": 0,
                    "objectId": int(deal["id"]),
                    "propertyName": "dealstage",
                    "propertyValue": CLOSED_WON_STAGE,
                    "changeSource": "INTEGRATION",
                    "sourceId": f"{APP_ID}",
                }
            )
        body = json.dumps(events, separators=(",", ":")).encode()
        for url in self.webhook_urls:
            timestamp = str(int(time.time() * 1000))
            headers = {
                "Content-Type": "application/json",
                "User-Agent": "HubSpot Connect 2.0 (http://dev.hubspot.com/) - Webhooks",
                "X-HubSpot-Signature-v3": signature_v3(WEBHOOK_SECRET, "POST", url, body, timestamp),
                "X-HubSpot-Request-Timestamp": timestamp,
                # v1 kept for older receivers: SHA-256 hex of client secret + body.
                "X-HubSpot-Signature": hashlib.sha256(WEBHOOK_SECRET.encode() + body).hexdigest(),
                "X-HubSpot-Signature-Version": "v1",
            }
            delivery = {"url": url, "method": "POST", "headers": headers, "body": body.decode(), "status": None}
            self.deliveries.append(delivery)
            deliver_webhook(delivery, body)


# ---------------------------------------------------------------------------------------------------------------
# The WSGI app
# ---------------------------------------------------------------------------------------------------------------


class HubSpotSandbox(SandboxApp):
    vendor = "hubspot"

    def routes(self) -> list[Rule]:
        objects = "/crm/v3/objects/<object_type>"
        return [
            Rule("/account-info/v3/details", endpoint="account_details", methods=["GET"]),
            Rule("/crm/v3/properties/<object_type>", endpoint="properties", methods=["GET"]),
            Rule(objects, endpoint="objects", methods=["GET", "POST"]),
            Rule(f"{objects}/search", endpoint="search", methods=["POST"]),
            Rule(f"{objects}/batch/<action>", endpoint="batch", methods=["POST"]),
            Rule(f"{objects}/<object_id>", endpoint="one_object", methods=["GET", "PATCH"]),
            Rule(
                "/crm/v4/associations/<from_type>/<to_type>/batch/read", endpoint="association_read", methods=["POST"]
            ),
        ]

    def reset_state(self) -> None:
        self.portal = HubSpotPortal(self.firm)

    def seed(self, volumes: dict[str, int]) -> dict[str, int]:
        counts = {}
        for key, count in volumes.items():
            object_name = OBJECT_ALIASES.get(key.lower())
            if object_name is None:
                raise ValueError(f"the hubspot sandbox seeds companies and deals, not {key!r}")
            counts[key] = self.portal.seed_more(object_name, count)
        return counts

    # -- how HubSpot says "no" -------------------------------------------------------------------------------------

    def rate_limited_response(self, request: Request, retry_after: float, policy: str = "SECONDLY") -> Response:
        message = {
            "SECONDLY": "You have reached your secondly limit.",
            "TEN_SECONDLY_ROLLING": "You have reached your ten_secondly_rolling limit.",
            "DAILY": "You have reached your daily limit.",
        }[policy]
        body = {
            "status": "error",
            "message": message,
            "errorType": "RATE_LIMIT",
            "correlationId": str(uuid.uuid4()),
            "policyName": policy,
            "groupName": f"publicapi:private-app:{APP_ID}",
        }
        return self._json(body, status=429, headers={"Retry-After": str(math.ceil(retry_after))})

    def server_error_response(self, request: Request) -> Response:
        return self._error(HubSpotError(500, "INTERNAL_ERROR", "internal error"))

    def not_found_response(self, request: Request) -> Response:
        return self._error(HubSpotError(404, "OBJECT_NOT_FOUND", f"Unable to route {request.method} {request.path}"))

    def method_not_allowed_response(self, request: Request) -> Response:
        return self._error(
            HubSpotError(405, "VALIDATION_ERROR", f"{request.method} is not supported on {request.path}")
        )

    def _limit_headers(self) -> dict[str, str]:
        portal = self.portal
        with portal.lock:
            remaining = max(0, TEN_SECOND_LIMIT - len(portal.recent_calls))
            now = time.monotonic()
            secondly = sum(1 for t in portal.recent_calls if t > now - 1.0)
            daily_remaining = max(0, DAILY_LIMIT - portal.daily_calls)
        return {
            "X-HubSpot-RateLimit-Daily": str(DAILY_LIMIT),
            "X-HubSpot-RateLimit-Daily-Remaining": str(daily_remaining),
            "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
            "X-HubSpot-RateLimit-Max": str(TEN_SECOND_LIMIT),
            "X-HubSpot-RateLimit-Remaining": str(remaining),
            "X-HubSpot-RateLimit-Secondly": str(TEN_SECOND_LIMIT // 10),
            "X-HubSpot-RateLimit-Secondly-Remaining": str(max(0, TEN_SECOND_LIMIT // 10 - secondly)),
        }

    def _json(self, data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        return json_response(data, status=status, headers={**self._limit_headers(), **(headers or {})})

    def _error(self, error: HubSpotError) -> Response:
        return self._json(error.body(), status=error.status)

    def _authorize(self, request: Request, *, search: bool = False) -> Response | None:
        header = request.headers.get("Authorization", "")
        token = header[7:].strip() if header[:7].lower() == "bearer " else ""
        if not hmac.compare_digest(token, DEMO_CREDENTIALS["access_token"]):
            return self._error(
                HubSpotError(
                    401,
                    "INVALID_AUTHENTICATION",
                    "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can "
                    "find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
                )
            )
        portal = self.portal
        now = time.monotonic()
        with portal.lock:
            while portal.recent_calls and portal.recent_calls[0] <= now - 10.0:
                portal.recent_calls.popleft()
            while portal.recent_searches and portal.recent_searches[0] <= now - 1.0:
                portal.recent_searches.popleft()
            if portal.daily_calls >= DAILY_LIMIT:
                policy, wait = "DAILY", 3600.0
            elif len(portal.recent_calls) >= TEN_SECOND_LIMIT:
                policy, wait = "TEN_SECONDLY_ROLLING", portal.recent_calls[0] + 10.0 - now
            elif search and len(portal.recent_searches) >= SEARCH_PER_SECOND:
                policy, wait = "SECONDLY", portal.recent_searches[0] + 1.0 - now
            else:
                portal.recent_calls.append(now)
                portal.daily_calls += 1
                if search:
                    portal.recent_searches.append(now)
                return None
        self.stats.add(rate_limited=1)
        return self.rate_limited_response(request, max(wait, 0.001), policy)

    def _object_type(self, object_type: str) -> str:
        name = OBJECT_ALIASES.get(object_type.lower())
        if name is None:
            raise HubSpotError(400, "VALIDATION_ERROR", f"Unable to infer object type from: {object_type}")
        return name

    # -- endpoints --------------------------------------------------------------------------------------------

    def account_details(self, request: Request) -> Response:
        if denied := self._authorize(request):
            return denied
        return self._json(
            {
                "portalId": PORTAL_ID,
                "accountType": "STANDARD",
                "timeZone": "US/Eastern",
                "companyCurrency": "USD",
                "additionalCurrencies": ["EUR", "GBP"],
                "utcOffset": "-05:00",
                "utcOffsetMilliseconds": -18_000_000,
                "uiDomain": "app.hubspot.com",
                "dataHostingLocation": "na1",
            }
        )

    def properties(self, request: Request, object_type: str) -> Response:
        if denied := self._authorize(request):
            return denied
        try:
            object_name = self._object_type(object_type)
        except HubSpotError as error:
            return self._error(error)
        return self._json({"results": [p.describe(object_name) for p in SCHEMA[object_name].values()]})

    def objects(self, request: Request, object_type: str) -> Response:
        if denied := self._authorize(request):
            return denied
        try:
            object_name = self._object_type(object_type)
            if request.method == "POST":
                return self._create_one(request, object_name)
            return self._list(request, object_name)
        except HubSpotError as error:
            return self._error(error)

    def _list(self, request: Request, object_name: str) -> Response:
        try:
            limit = int(request.args.get("limit", 10))
        except ValueError:
            raise HubSpotError(400, "VALIDATION_ERROR", "limit must be a number") from None
        limit = max(1, min(limit, LIST_MAX))  # capped, not refused: see client.py's (unverified) block
        after = request.args.get("after", "")
        archived = request.args.get("archived", "false").lower() == "true"
        properties = _csv(request.args.getlist("properties"))
        associations = _csv(request.args.getlist("associations"))
        portal = self.portal
        with portal.lock:
            records = sorted(
                (r for r in portal.objects[object_name].values() if r["archived"] == archived),
                key=lambda r: int(r["id"]),
            )
            if after:
                if not after.isdigit():
                    raise HubSpotError(400, "VALIDATION_ERROR", f"Invalid paging cursor: {after}")
                records = [r for r in records if int(r["id"]) >= int(after)]
            page = records[:limit]
            results = [portal.render(object_name, r, properties, associations) for r in page]
        body: dict[str, Any] = {"results": self._maybe_malformed(results)}
        if len(records) > limit:
            next_after = str(int(page[-1]["id"]) + 1)
            query = f"limit={limit}&after={next_after}"
            body["paging"] = {
                "next": {"after": next_after, "link": f"{request.host_url}crm/v3/objects/{object_name}?{query}"}
            }
        return self._json(body)

    def _create_one(self, request: Request, object_name: str) -> Response:
        data = _body(request)
        properties = data.get("properties") or {}
        portal = self.portal
        with portal.lock:
            problems = portal.validate(object_name, properties, None)
            if problems:
                raise _validation_error(problems)
            portal.begin_events()
            record = portal.apply(object_name, properties, None, _association_ids(data.get("associations")))
            portal.flush_events()
            return self._json(portal.render(object_name, record, list(properties)), status=201)

    def one_object(self, request: Request, object_type: str, object_id: str) -> Response:
        if denied := self._authorize(request):
            return denied
        portal = self.portal
        try:
            object_name = self._object_type(object_type)
            with portal.lock:
                id_property = request.args.get("idProperty")
                if id_property:
                    record = portal.find_by(object_name, id_property, object_id)
                else:
                    record = portal.objects[object_name].get(object_id)
                if record is None or record["archived"]:
                    raise HubSpotError(404, "OBJECT_NOT_FOUND", "Object not found.  objectId are usually numeric.")
                if request.method == "GET":
                    properties = _csv(request.args.getlist("properties"))
                    associations = _csv(request.args.getlist("associations"))
                    return self._json(portal.render(object_name, record, properties, associations))
                properties = _body(request).get("properties") or {}
                problems = portal.validate(object_name, properties, record)
                if problems:
                    raise _validation_error(problems)
                portal.begin_events()
                portal.apply(object_name, properties, record)
                portal.flush_events()
                return self._json(portal.render(object_name, record, list(properties)))
        except HubSpotError as error:
            return self._error(error)

    def search(self, request: Request, object_type: str) -> Response:
        if denied := self._authorize(request, search=True):
            return denied
        portal = self.portal
        try:
            object_name = self._object_type(object_type)
            data = _body(request)
            groups = data.get("filterGroups") or []
            if len(groups) > 5 or sum(len(g.get("filters", [])) for g in groups) > 18:
                raise HubSpotError(400, "VALIDATION_ERROR", "Too many filter groups or filters (5 groups, 18 filters)")
            limit = int(data.get("limit") or 10)
            if limit > SEARCH_MAX:
                raise HubSpotError(400, "VALIDATION_ERROR", f"limit must be at most {SEARCH_MAX}")
            after = int(data.get("after") or 0)
            if after + limit > SEARCH_RESULT_CAP:
                # The 10,000-result ceiling is documented; the answer is assumed (client.py's (unverified) block).
                raise HubSpotError(400, "VALIDATION_ERROR", f"Search results are limited to {SEARCH_RESULT_CAP}")
            sorts = data.get("sorts") or []
            with portal.lock:
                records = [
                    r
                    for r in portal.objects[object_name].values()
                    if not r["archived"] and portal.matches(object_name, r, groups)
                ]
                records.sort(key=lambda r: int(r["id"]))
                if sorts:
                    sort = sorts[0]
                    name = sort.get("propertyName") if isinstance(sort, dict) else str(sort).lstrip("-")
                    descending = (
                        str(sort.get("direction", "ASCENDING")).upper() == "DESCENDING"
                        if isinstance(sort, dict)
                        else str(sort).startswith("-")
                    )
                    records.sort(key=lambda r: _sort_key(object_name, r, name), reverse=descending)
                page = records[after : after + limit]
                results = [portal.render(object_name, r, data.get("properties") or None) for r in page]
            body: dict[str, Any] = {"total": len(records), "results": self._maybe_malformed(results)}
            if after + limit < len(records):
                body["paging"] = {"next": {"after": str(after + limit)}}
            return self._json(body)
        except HubSpotError as error:
            return self._error(error)
        except (TypeError, ValueError):
            return self._error(HubSpotError(400, "VALIDATION_ERROR", "Invalid input JSON on line 1"))

    def batch(self, request: Request, object_type: str, action: str) -> Response:
        if denied := self._authorize(request):
            return denied
        try:
            object_name = self._object_type(object_type)
            if action not in ("create", "update", "upsert", "read", "archive"):
                return self.not_found_response(request)
            data = _body(request)
            inputs = data.get("inputs")
            if not isinstance(inputs, list) or not all(isinstance(i, dict) for i in inputs):
                raise HubSpotError(400, "VALIDATION_ERROR", "Invalid input JSON: inputs must be a list of objects")
            if len(inputs) > BATCH_MAX:
                raise HubSpotError(400, "VALIDATION_ERROR", f"Batch input must have at most {BATCH_MAX} items")
            with self.portal.lock:
                if action == "read":
                    return self._batch_read(object_name, data)
                if action == "archive":
                    return self._batch_archive(object_name, inputs)
                return self._batch_write(object_name, action, inputs)
        except HubSpotError as error:
            return self._error(error)

    def _batch_read(self, object_name: str, data: dict[str, Any]) -> Response:
        portal = self.portal
        id_property = data.get("idProperty")
        results, missing = [], []
        for item in data["inputs"]:
            key = str(item.get("id", ""))
            record = (
                portal.find_by(object_name, id_property, key) if id_property else portal.objects[object_name].get(key)
            )
            if record is None or record["archived"]:
                missing.append(key)
            else:
                results.append(portal.render(object_name, record, data.get("properties") or None))
        errors = []
        if missing:
            errors.append(
                _batch_error(
                    "OBJECT_NOT_FOUND",
                    "Could not get some objects, they may be deleted or not exist.",
                    {"ids": missing},
                )
            )
        return self._batch_response(results, errors, ok_status=200)

    def _batch_archive(self, object_name: str, inputs: list[dict[str, Any]]) -> Response:
        for item in inputs:
            record = self.portal.objects[object_name].get(str(item.get("id", "")))
            if record is not None:
                record["archived"] = True
        return Response(status=204)

    def _batch_write(self, object_name: str, action: str, inputs: list[dict[str, Any]]) -> Response:
        portal = self.portal
        traced = all(item.get("objectWriteTraceId") for item in inputs)
        plans: list[tuple[dict[str, Any], dict[str, Any] | None, bool] | dict[str, Any]] = []
        if action == "upsert":
            id_properties = {item.get("idProperty") for item in inputs}
            if len(id_properties) != 1 or not all(
                p and p in SCHEMA[object_name] and SCHEMA[object_name][p].unique for p in id_properties
            ):
                raise HubSpotError(
                    400, "VALIDATION_ERROR", "idProperty must name one property with unique values for every input"
                )
            keys = [str(item.get("id", "")).lower() for item in inputs]
            if len(set(keys)) != len(keys):
                raise HubSpotError(400, "VALIDATION_ERROR", "Duplicate IDs found in batch input")
        for item in inputs:
            properties = dict(item.get("properties") or {})
            existing = None
            if action == "update":
                key = str(item.get("id", ""))
                id_property = item.get("idProperty")
                existing = (
                    portal.find_by(object_name, id_property, key)
                    if id_property
                    else portal.objects[object_name].get(key)
                )
                if existing is None or existing["archived"]:
                    plans.append(
                        _batch_error(
                            "OBJECT_NOT_FOUND", "Object not found.  objectId are usually numeric.", {"ids": [key]}, item
                        )
                    )
                    continue
            elif action == "upsert":
                id_property, key = item["idProperty"], str(item.get("id", ""))
                existing = portal.find_by(object_name, id_property, key)
                properties[id_property] = key
            problems = portal.validate(object_name, properties, existing)
            if problems:
                error = _validation_error(problems)
                plans.append(_batch_error(error.category, error.message, {}, item, problems))
                continue
            plans.append((properties, existing, action == "upsert"))
        errors = [p for p in plans if isinstance(p, dict)]
        if errors and not traced:
            # Without objectWriteTraceId HubSpot cannot say which input failed: the whole batch is refused.
            first = errors[0]
            raise HubSpotError(400, first["category"], first["message"], first.get("errors"))
        results = []
        portal.begin_events()
        for item, plan in zip(inputs, plans, strict=True):
            if isinstance(plan, dict):
                continue
            properties, existing, upsert = plan
            record = portal.apply(object_name, properties, existing, _association_ids(item.get("associations")))
            rendered = portal.render(object_name, record, list(properties))
            if item.get("objectWriteTraceId"):
                rendered["objectWriteTraceId"] = item["objectWriteTraceId"]
            if upsert:
                rendered["new"] = existing is None
            results.append(rendered)
        portal.flush_events()
        return self._batch_response(results, errors, ok_status=201 if action == "create" else 200)

    def _batch_response(self, results: list[dict[str, Any]], errors: list[dict[str, Any]], ok_status: int) -> Response:
        stamp = iso_millis(_now())
        body: dict[str, Any] = {"status": "COMPLETE", "results": results, "startedAt": stamp, "completedAt": stamp}
        if errors:
            body["numErrors"] = len(errors)
            body["errors"] = errors
            return self._json(body, status=207)
        return self._json(body, status=ok_status)

    def association_read(self, request: Request, from_type: str, to_type: str) -> Response:
        if denied := self._authorize(request):
            return denied
        try:
            if self._object_type(from_type) != "deals" or self._object_type(to_type) != "companies":
                raise HubSpotError(400, "VALIDATION_ERROR", "This sandbox reads deal-to-company associations only")
            inputs = _body(request).get("inputs") or []
            results, missing = [], []
            with self.portal.lock:
                for item in inputs:
                    deal = self.portal.objects["deals"].get(str(item.get("id", "")))
                    if deal is None or not deal["companies"]:
                        missing.append(str(item.get("id", "")))
                        continue
                    to = [
                        {
                            "toObjectId": int(company),
                            "associationTypes": [
                                {"category": "HUBSPOT_DEFINED", "typeId": 5, "label": "Primary"},
                                {"category": "HUBSPOT_DEFINED", "typeId": 341, "label": None},
                            ],
                        }
                        for company in deal["companies"]
                    ]
                    results.append({"from": {"id": deal["id"]}, "to": to})
            errors = []
            if missing:
                errors.append(_batch_error("OBJECT_NOT_FOUND", "No associations found", {"fromObjectId": missing}))
            return self._batch_response(results, errors, ok_status=200)
        except HubSpotError as error:
            return self._error(error)

    def _maybe_malformed(self, results: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Fault injection: some records of the page lose their id or get a non-date updatedAt."""
        positions = self.malformed_positions(len(results))
        if not positions:
            return results
        results = list(results)
        for n, position in enumerate(sorted(positions)):
            broken = dict(results[position])
            if n % 2 == 0:
                broken.pop("id", None)
            else:
                broken["updatedAt"] = "yesterday-ish"
            results[position] = broken
        return results

    # -- webhook subscriptions (a control endpoint: not counted as a vendor call, never faulted) ---------------------

    def _win_deal(self, request: Request) -> Response:
        """A salesperson moves a deal to closed won in HubSpot (the oldest open one, or {"id": ...}): the webhook
        subscribers hear of it at once, as HubSpot tells them."""
        portal = self.portal
        wanted = str((request.get_json(force=True, silent=True) or {}).get("id") or "")
        with portal.lock:
            deal = _open_deal(portal, wanted)
            if deal is None:
                return json_response({"error": "no such open deal"}, status=404)
            portal.begin_events()
            portal.apply("deals", {"dealstage": CLOSED_WON_STAGE}, deal)
            portal.flush_events()
            return json_response(
                {
                    "deal": deal["id"],
                    "dealname": deal["properties"].get("dealname"),
                    "delivered_to": list(portal.webhook_urls),
                }
            )

    def _control(self, request: Request) -> Response:
        if request.path.rstrip("/") == "/_sandbox/deals/win" and request.method == "POST":
            return self._win_deal(request)
        if request.path.rstrip("/") != "/_sandbox/webhooks":
            return super()._control(request)
        portal = self.portal
        if request.method == "POST":
            url = (request.get_json(force=True, silent=True) or {}).get("url", "")
            if not _is_loopback_url(url):
                return json_response({"error": "webhooks are delivered to loopback URLs only"}, status=400)
            with portal.lock:
                portal.webhook_urls.append(url)
        elif request.method == "DELETE":
            with portal.lock:
                portal.webhook_urls.clear()
                portal.deliveries.clear()
        with portal.lock:
            return json_response({"subscriptions": list(portal.webhook_urls), "deliveries": list(portal.deliveries)})


def _open_deal(portal: HubSpotPortal, deal_id: str) -> dict[str, Any] | None:
    deals = portal.objects["deals"]
    if deal_id:
        return deals.get(deal_id)
    still_open = (d for d in deals.values() if d["properties"].get("dealstage") not in (CLOSED_WON_STAGE, "closedlost"))
    return next(iter(sorted(still_open, key=lambda d: int(d["id"]))), None)


def _csv(values: list[str]) -> list[str]:
    return [name.strip() for value in values for name in value.split(",") if name.strip()]


def _body(request: Request) -> dict[str, Any]:
    data = request.get_json(force=True, silent=True)
    if not isinstance(data, dict):
        raise HubSpotError(400, "VALIDATION_ERROR", "Invalid input JSON on line 1")
    return data


def _association_ids(associations: Any) -> list[str]:
    if not isinstance(associations, list):
        return []
    return [
        str((a.get("to") or {}).get("id"))
        for a in associations
        if isinstance(a, dict) and (a.get("to") or {}).get("id")
    ]


def _validation_error(problems: list[dict[str, Any]]) -> HubSpotError:
    summary = [
        {
            "isValid": False,
            "message": p["message"],
            "error": p["code"],
            "name": p["in"],
            "localizedErrorMessage": p["message"],
        }
        for p in problems
    ]
    category = (
        "CONFLICT" if all(p["code"] == "DUPLICATE_UNIQUE_PROPERTY_VALUE" for p in problems) else "VALIDATION_ERROR"
    )
    status = 409 if category == "CONFLICT" else 400
    return HubSpotError(status, category, f"Property values were not valid: {json.dumps(summary)}", problems)


def _batch_error(
    category: str,
    message: str,
    context: dict[str, list[str]],
    item: dict[str, Any] | None = None,
    details: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    context = dict(context)
    if item is not None and item.get("objectWriteTraceId"):
        context["objectWriteTraceId"] = [str(item["objectWriteTraceId"])]
    return {
        "status": "error",
        "category": category,
        "message": message,
        "context": context,
        "errors": details or [],
        "links": {},
    }


def _sort_key(object_name: str, record: dict[str, Any], name: str) -> tuple[bool, Any]:
    value = record["properties"].get(name)
    prop = SCHEMA[object_name].get(name)
    if value is None or prop is None:
        return (False, 0)
    if prop.type in ("datetime", "date"):
        parsed = parse_hubspot_datetime(value)
        return (parsed is not None, parsed.timestamp() if parsed else 0)
    if prop.type == "number":
        try:
            return (True, float(value))
        except ValueError:
            return (False, 0)
    return (True, value.lower())


def _is_loopback_url(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def create_app(firm: Firm | None = None) -> HubSpotSandbox:
    return HubSpotSandbox(firm)
