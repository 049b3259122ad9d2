"""The HubSpot sandbox's portal: companies and deals seeded from the firm, their validation, writes, webhooks."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import deque
from datetime import datetime, timedelta
from typing import Any

from connectors.base import iso_utc_millis
from connectors.hubspot.records import CLOSED_WON_STAGE, parse_hubspot_datetime
from connectors.hubspot.sandbox.schema import (
    ALWAYS_RETURNED,
    APP_ID,
    CURRENCIES,
    DEFAULT_PROPERTIES,
    FIRM_STAGES,
    GROUPS,
    ID_BASE,
    PORTAL_ID,
    REQUIRED,
    SCHEMA,
    SEED_EPOCH,
    WEBHOOK_SECRET,
    HubSpotError,
    _now,
)
from connectors.hubspot.webhooks import signature_v3
from connectors.sandbox.app import deliver_webhook
from connectors.sandbox.firm import Firm


class HubSpotPortal:
    """The mutable state of one portal: objects, limits and webhook subscriptions."""

    def __init__(self, firm: Firm):
        self.firm = firm
        self.lock = threading.RLock()
        self.objects: dict[str, dict[str, dict[str, Any]]] = {"companies": {}, "deals": {}}
        # The portal's own properties and groups: those created through the properties API are kept here.
        self.schema = {name: dict(props) for name, props in SCHEMA.items()}
        self.groups = {name: dict(groups) for name, groups in GROUPS.items()}
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
        stamp = iso_utc_millis(moment)
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
        shown = {n: record["properties"].get(n) for n in names if n in self.schema[object_name]}
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

    def _filter(self, object_name: str, record: dict[str, Any], flt: dict[str, Any]) -> bool:
        name, operator = flt.get("propertyName", ""), str(flt.get("operator", "EQ")).upper()
        prop = self.schema[object_name].get(name)
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
            prop = self.schema[object_name].get(name)
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
            stamp = iso_utc_millis(moment)
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
