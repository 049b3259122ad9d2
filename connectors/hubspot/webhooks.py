"""HubSpot's webhook signatures (v3: HMAC of method, URI as HubSpot decodes it, body and timestamp) and the won
deals a notification names."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

from connectors.hubspot.records import CLOSED_WON_STAGE

# HubSpot decodes these escapes in the request URI before signing (request-validation guide, v3 signature).
_URI_DECODES = {
    "%3A": ":",
    "%2F": "/",
    "%3F": "?",
    "%40": "@",
    "%21": "!",
    "%24": "$",
    "%27": "'",
    "%28": "(",
    "%29": ")",
    "%2A": "*",
    "%2C": ",",
    "%3B": ";",
}


def signed_uri(url: str) -> str:
    for escaped, char in _URI_DECODES.items():
        url = url.replace(escaped, char).replace(escaped.lower(), char)
    return url


def signature_v3(secret: str, method: str, url: str, body: bytes, timestamp: str) -> str:
    """X-HubSpot-Signature-v3: base64 HMAC-SHA256 of method + URI + body + timestamp, keyed by the app secret."""
    message = f"{method.upper()}{signed_uri(url)}".encode() + body + timestamp.encode()
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


def closed_won_deal_ids(body: bytes) -> list[str]:
    """Deal ids that moved to closedwon in a verified webhook body (HubSpot sends a JSON array of events)."""
    events = json.loads(body)
    if not isinstance(events, list):
        return []
    return [
        str(event["objectId"])
        for event in events
        if event.get("subscriptionType") == "deal.propertyChange"
        and event.get("propertyName") == "dealstage"
        and event.get("propertyValue") == CLOSED_WON_STAGE
    ]
