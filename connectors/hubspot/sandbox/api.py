"""HubSpot sandbox routes: private-app auth, rate limits and their answers, account details, properties, won deals."""

from __future__ import annotations

import hmac
import math
import re
import time
import uuid
from typing import Any

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from connectors.hubspot.records import CLOSED_WON_STAGE
from connectors.hubspot.sandbox.objects import HubSpotObjects
from connectors.hubspot.sandbox.schema import (
    APP_ID,
    DAILY_LIMIT,
    DEMO_CREDENTIALS,
    FIELD_TYPES,
    OBJECT_ALIASES,
    PORTAL_ID,
    SEARCH_PER_SECOND,
    TEN_SECOND_LIMIT,
    HubSpotError,
    Prop,
)
from connectors.hubspot.sandbox.state import HubSpotPortal
from connectors.sandbox.app import SandboxApp, json_response, webhook_urls_control
from connectors.sandbox.firm import Firm


class HubSpotSandbox(HubSpotObjects, SandboxApp):
    vendor = "hubspot"

    def routes(self) -> list[Rule]:
        objects = "/crm/v3/objects/<object_type>"
        return [
            Rule("/account-info/v3/details", endpoint="account_details", methods=["GET"]),
            Rule("/crm/v3/properties/<object_type>", endpoint="properties", methods=["GET", "POST"]),
            Rule("/crm/v3/properties/<object_type>/groups", endpoint="property_groups", methods=["GET", "POST"]),
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
        portal = self.portal
        try:
            object_name = self._object_type(object_type)
            with portal.lock:
                if request.method == "POST":
                    return self._json(self._property_create(object_name, request), status=201)
                return self._json({"results": [p.describe(object_name) for p in portal.schema[object_name].values()]})
        except HubSpotError as error:
            return self._error(error)

    def _property_create(self, object_name: str, request: Request) -> dict[str, Any]:
        """POST /crm/v3/properties/{objectType}: a custom property in one of the object's groups."""
        body = request.get_json(force=True, silent=True)
        if not isinstance(body, dict):
            raise HubSpotError(400, "VALIDATION_ERROR", "Invalid input JSON on line 1")
        missing = [key for key in ("name", "label", "type", "fieldType", "groupName") if not body.get(key)]
        if missing:
            raise HubSpotError(400, "VALIDATION_ERROR", f"Missing required fields: {', '.join(missing)}")
        name, kind, field_type = str(body["name"]), str(body["type"]), str(body["fieldType"])
        if not re.fullmatch(r"[a-z][a-z0-9_]{0,99}", name):
            raise HubSpotError(
                400,
                "VALIDATION_ERROR",
                f"Property name {name} is invalid: it must start with a letter and contain only lowercase letters, "
                "numbers and underscores.",
            )
        if name in self.portal.schema[object_name]:
            raise HubSpotError(409, "OBJECT_ALREADY_EXISTS", f"Property named '{name}' already exists.")
        if field_type not in FIELD_TYPES.get(kind, ()):
            raise HubSpotError(400, "VALIDATION_ERROR", f"fieldType {field_type} is not valid for a {kind} property")
        group = str(body["groupName"])
        if group not in self.portal.groups[object_name]:
            raise HubSpotError(400, "VALIDATION_ERROR", f"Property group {group} does not exist")
        prop = Prop(
            name,
            str(body["label"]),
            kind,
            field_type,
            unique=bool(body.get("hasUniqueValue")),
            group=group,
            description=str(body.get("description") or ""),
            created_by_api=True,
        )
        self.portal.schema[object_name][name] = prop
        return prop.describe(object_name)

    def property_groups(self, request: Request, object_type: str) -> Response:
        if denied := self._authorize(request):
            return denied
        portal = self.portal
        try:
            object_name = self._object_type(object_type)
            with portal.lock:
                groups = portal.groups[object_name]
                if request.method == "GET":
                    return self._json({"results": [_group(name, label) for name, label in groups.items()]})
                body = request.get_json(force=True, silent=True)
                if not isinstance(body, dict) or not body.get("name") or not body.get("label"):
                    raise HubSpotError(400, "VALIDATION_ERROR", "A property group needs a name and a label")
                name = str(body["name"])
                if not re.fullmatch(r"[a-z][a-z0-9_]{0,99}", name):
                    raise HubSpotError(400, "VALIDATION_ERROR", f"Property group name {name} is invalid")
                if name in groups:
                    raise HubSpotError(409, "OBJECT_ALREADY_EXISTS", f"Property group named '{name}' already exists.")
                groups[name] = str(body["label"])
                return self._json(_group(name, groups[name]), status=201)
        except HubSpotError as error:
            return self._error(error)

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
        return webhook_urls_control(request, lock=portal.lock, urls=portal.webhook_urls, deliveries=portal.deliveries)


def _group(name: str, label: str) -> dict[str, Any]:
    return {"name": name, "label": label, "displayOrder": -1, "archived": False}


def _open_deal(portal: HubSpotPortal, deal_id: str) -> dict[str, Any] | None:
    deals = portal.objects["deals"]
    if deal_id:
        return deals.get(deal_id)
    still_open = (d for d in deals.values() if d["properties"].get("dealstage") not in (CLOSED_WON_STAGE, "closedlost"))
    return next(iter(sorted(still_open, key=lambda d: int(d["id"]))), None)


def create_app(firm: Firm | None = None) -> HubSpotSandbox:
    return HubSpotSandbox(firm)
