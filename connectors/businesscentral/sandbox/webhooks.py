"""Business Central webhook subscriptions: the validationToken handshake on create and renew, and notifications."""

from __future__ import annotations

import json
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import requests

from connectors.businesscentral.sandbox.schema import COMPANY_ID, SUBSCRIPTION_DAYS, ApiError, _etag, _segments
from connectors.sandbox.app import deliver_webhook, is_loopback_url
from connectors.sandbox.odata import iso_z


class BusinessCentralWebhooks:
    """Subscriptions and the notifications they receive."""

    def _subscriptions(self, method, segments, headers, payload, root) -> tuple[int, dict[str, str], Any]:
        key = (segments[0][1] or "").strip("'") or None
        context = f"{root}/$metadata#subscriptions"
        if key is None and method == "GET":
            return (
                200,
                {},
                {"@odata.context": context, "value": [self._subscription_view(s) for s in self.subscriptions.values()]},
            )
        if key is None and method == "POST":
            if not isinstance(payload, dict) or not payload.get("notificationUrl") or not payload.get("resource"):
                raise ApiError(400, "BadRequest", "notificationUrl and resource are required.")
            self._check_resource(payload["resource"])
            self._handshake(payload["notificationUrl"])
            subscription = {
                "subscriptionId": uuid.uuid4().hex,
                "notificationUrl": payload["notificationUrl"],
                "resource": payload["resource"],
                "userId": "00000000-0000-0000-0000-0000000000a1",
                "clientState": str(payload.get("clientState") or "")[:2048],
            }
            self._renew(subscription)
            self.subscriptions[subscription["subscriptionId"]] = subscription
            return (
                201,
                {"ETag": _etag(subscription)},
                {"@odata.context": f"{context}/$entity", **self._subscription_view(subscription)},
            )
        subscription = self.subscriptions.get(key or "")
        if subscription is None:
            raise ApiError(
                404,
                "Internal_RecordNotFound",
                f"The API Webhook Subscription does not exist. Identification fields and values: Subscription Id='{key}'",
            )
        if method == "GET":
            return 200, {"ETag": _etag(subscription)}, self._subscription_view(subscription)
        self._check_etag(headers, subscription)
        if method == "PATCH":
            changes = payload if isinstance(payload, dict) else {}
            if "notificationUrl" in changes:
                subscription["notificationUrl"] = changes["notificationUrl"]
            if "clientState" in changes:
                subscription["clientState"] = str(changes["clientState"] or "")[:2048]
            self._handshake(subscription["notificationUrl"])  # renewing requires the handshake again
            self._renew(subscription)
            return 200, {"ETag": _etag(subscription)}, self._subscription_view(subscription)
        if method == "DELETE":
            del self.subscriptions[key]
            return 204, {}, None
        raise ApiError(405, "BadRequest_MethodNotAllowed", f"'{method}' is not allowed here.")

    def _renew(self, subscription: dict[str, Any]) -> None:
        self.version += 1
        now = datetime.now(UTC)
        subscription.update(
            _version=self.version,
            lastModifiedDateTime=iso_z(now),
            expirationDateTime=iso_z(now + timedelta(days=SUBSCRIPTION_DAYS)),
        )

    @staticmethod
    def _subscription_view(subscription: dict[str, Any]) -> dict[str, Any]:
        return {"@odata.etag": _etag(subscription), **{k: v for k, v in subscription.items() if not k.startswith("_")}}

    @staticmethod
    def _check_resource(resource: str) -> None:
        parts = _segments(resource.split("/api/v2.0/", 1)[-1].lstrip("/"))
        if (
            len(parts) != 2
            or parts[0] != ("companies", COMPANY_ID)
            or parts[1][0] not in ("customers", "projects", "employees", "salesInvoices")
            or parts[1][1]
        ):
            raise ApiError(400, "BadRequest", f"The resource '{resource}' cannot be subscribed to.")

    def _handshake(self, url: str) -> None:
        if not is_loopback_url(url):
            raise ApiError(400, "Application_ValidationError", "The sandbox calls back to loopback URLs only.")
        token = secrets.token_urlsafe(24)
        record = {"url": url, "token": token, "status": None}
        self.handshakes.append(record)
        try:
            answer = requests.post(
                f"{url}{'&' if '?' in url else '?'}{urlencode({'validationToken': token})}", timeout=5
            )
            record["status"] = answer.status_code
            ok = answer.status_code == 200 and answer.text.strip() == token
        except requests.RequestException as exc:
            record["status"] = f"error: {type(exc).__name__}"
            ok = False
        if not ok:
            raise ApiError(
                400,
                "Application_ValidationError",
                f"The handshake with the notification URL '{url}' failed: it must answer 200 with the validationToken.",
            )

    def _notify(self, table: str, record_id: str, change: str, _root: str | None) -> None:
        resource = f"api/v2.0/companies({COMPANY_ID})/{table}"
        for subscription in list(self.subscriptions.values()):
            if subscription["resource"].split("/api/v2.0/", 1)[-1].lstrip("/") != resource.removeprefix("api/v2.0/"):
                continue
            notification = {
                "value": [
                    {
                        "subscriptionId": subscription["subscriptionId"],
                        "clientState": subscription["clientState"],
                        "expirationDateTime": subscription["expirationDateTime"],
                        "resource": f"{resource}({record_id})",
                        "changeType": change,
                        "lastModifiedDateTime": iso_z(datetime.now(UTC)),
                    }
                ]
            }
            body = json.dumps(notification, separators=(",", ":")).encode()
            delivery = {
                "url": subscription["notificationUrl"],
                "headers": {"Content-Type": "application/json"},
                "body": body.decode(),
                "status": None,
            }
            self.deliveries.append(delivery)
            deliver_webhook(delivery, body)
