"""Salesforce connector: Accounts and Opportunities over the REST API (see connectors.salesforce_platform.rest).

Adds to the platform's connector the CRM's objects and the signed Closed Won webhook.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Mapping

from connectors.base import FormField, WebhookRejected, header_value, objects_by_name
from connectors.salesforce_platform.rest import (
    DEFAULT_EXTERNAL_ID_FIELD,
    SalesforcePlatformConnector,
    object_spec,
    parse_salesforce_datetime,
)

__all__ = ["DEFAULT_EXTERNAL_ID_FIELD", "SalesforceConnector"]

# ---------------------------------------------------------------------------------------------------------------
# (unverified) Salesforce has no signed JSON webhook: outbound messages are SOAP and unsigned. Customers install a
# small trigger (Apex or a Flow HTTP callout) that POSTs a Platform-Event-shaped JSON body when an Opportunity
# reaches "Closed Won", signed with `Crypto.generateMac('hmacSHA256', body, secret)` base64-encoded in the
# X-Webhook-Signature header; freshness comes from payload.CreatedDate inside the signed body. The shape is ours.
WEBHOOK_SIGNATURE_HEADER = "X-Webhook-Signature"
WEBHOOK_EVENT_SCHEMA = "Opportunity_Closed_Won__e"
WEBHOOK_MAX_AGE_SECONDS = 300
# ---------------------------------------------------------------------------------------------------------------

ACCOUNT_FIELDS = (
    "Id",
    "Name",
    "Type",
    "Website",
    "Phone",
    "Industry",
    "BillingStreet",
    "BillingCity",
    "BillingState",
    "BillingPostalCode",
    "BillingCountry",
    "CurrencyIsoCode",
    "Description",
    "CreatedDate",
    "LastModifiedDate",
    "SystemModstamp",
)
OPPORTUNITY_FIELDS = (
    "Id",
    "Name",
    "AccountId",
    "Account.Name",
    "Amount",
    "CurrencyIsoCode",
    "StageName",
    "CloseDate",
    "Probability",
    "Type",
    "IsClosed",
    "IsWon",
    "Description",
    "CreatedDate",
    "LastModifiedDate",
    "SystemModstamp",
)
CLOSED_WON_STAGE = "Closed Won"


class SalesforceConnector(SalesforcePlatformConnector):
    vendor = "salesforce"
    label = "Salesforce"
    category = "crm"
    objects = objects_by_name(
        object_spec("Account", "Accounts", ACCOUNT_FIELDS),
        object_spec("Opportunity", "Opportunities", OPPORTUNITY_FIELDS),
    )

    @classmethod
    def form_fields(cls) -> list[FormField]:
        return [
            *super().form_fields(),
            FormField(
                "webhook_secret",
                "Webhook signing secret",
                kind="secret",
                required=False,
                help="Shared with the Closed Won trigger that calls us.",
            ),
        ]

    @classmethod
    def verify_webhook(
        cls, *, secret: str, method: str, url: str, headers: Mapping[str, str], body: bytes, now: float | None = None
    ) -> None:
        if not secret:
            raise WebhookRejected("No webhook secret is configured for this Salesforce connection.")
        signature = header_value(headers, WEBHOOK_SIGNATURE_HEADER)
        if not signature:
            raise WebhookRejected(f"The request has no {WEBHOOK_SIGNATURE_HEADER} header.")
        expected = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
        if not hmac.compare_digest(expected, signature.strip()):
            raise WebhookRejected("The Salesforce webhook signature does not match the body.")
        try:
            event = json.loads(body)
            created = parse_salesforce_datetime(event["payload"]["CreatedDate"])
        except (ValueError, KeyError, TypeError):
            raise WebhookRejected("The Salesforce webhook body is not a Closed Won event.") from None
        if created is None:
            raise WebhookRejected("The Salesforce webhook event has no creation time.")
        age = (now if now is not None else time.time()) - created.timestamp()
        if abs(age) > WEBHOOK_MAX_AGE_SECONDS:
            raise WebhookRejected(f"The Salesforce webhook event is {int(abs(age))} seconds old; refusing a replay.")
