"""Salesforce sandbox: the platform's REST emulator (connectors.salesforce_platform.org) with a CRM org in it.

Accounts and Opportunities seeded from the shared Firm so every sandbox tells the same story, the stage
picklist and its derived fields, and a signed Closed Won webhook for each opportunity that is won.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from werkzeug.wrappers import Request, Response

from connectors.salesforce.client import (
    CLOSED_WON_STAGE,
    DEFAULT_EXTERNAL_ID_FIELD,
    WEBHOOK_EVENT_SCHEMA,
    WEBHOOK_SIGNATURE_HEADER,
)
from connectors.salesforce_platform.org import (
    USER_ID,
    Field,
    PlatformOrg,
    PlatformSandbox,
    now_utc,
    sf_datetime,
    system_fields,
)
from connectors.sandbox.app import deliver_webhook, webhook_urls_control
from connectors.sandbox.firm import Firm

DEMO_CREDENTIALS = {
    "client_id": "3MVG9sgpDemoConsumerKey.SysGenProConnectSandbox",
    "client_secret": "sgp-demo-consumer-secret-5b1f0c",
    "username": "integration@sysgenpro-demo.example",
    "password": "demo-password-and-security-token",
    "external_id_field": DEFAULT_EXTERNAL_ID_FIELD,
    "webhook_secret": "sgp-salesforce-webhook-secret",
}
WEBHOOK_SECRET = DEMO_CREDENTIALS["webhook_secret"]

SEED_EPOCH = datetime(2024, 1, 2, 9, 0, 0, tzinfo=UTC)  # seeded records were last modified an hour apart from here

CURRENCIES = ("USD", "EUR", "GBP", "CAD", "AUD")
STAGES = {  # stage -> default probability, as in a new org's Opportunity stage picklist
    "Prospecting": 10,
    "Qualification": 10,
    "Needs Analysis": 20,
    "Value Proposition": 50,
    "Id. Decision Makers": 60,
    "Perception Analysis": 70,
    "Proposal/Price Quote": 75,
    "Negotiation/Review": 90,
    "Closed Won": 100,
    "Closed Lost": 0,
}


SCHEMA: dict[str, dict[str, Field]] = {
    "Account": {
        f.name: f
        for f in [
            *system_fields(),
            Field("Name", "string", "Account Name", 255, required=True),
            Field(
                "Type",
                "picklist",
                "Account Type",
                255,
                picklist=("Prospect", "Customer - Direct", "Customer - Channel", "Partner", "Other"),
            ),
            Field("Website", "url", "Website", 255),
            Field("Phone", "phone", "Account Phone", 40),
            Field(
                "Industry",
                "picklist",
                "Industry",
                255,
                picklist=("Consulting", "Engineering", "Finance", "Healthcare", "Manufacturing", "Technology"),
            ),
            Field("BillingStreet", "textarea", "Billing Street", 255),
            Field("BillingCity", "string", "Billing City", 40),
            Field("BillingState", "string", "Billing State/Province", 80),
            Field("BillingPostalCode", "string", "Billing Zip/Postal Code", 20),
            Field("BillingCountry", "string", "Billing Country", 80),
            Field("CurrencyIsoCode", "picklist", "Account Currency", 3, picklist=CURRENCIES, restricted=True),
            Field("Description", "textarea", "Account Description", 32000),
            Field(DEFAULT_EXTERNAL_ID_FIELD, "string", "Integration Record ID", 80, external_id=True),
            Field(
                "Payment_Terms__c",
                "picklist",
                "Payment Terms",
                255,
                picklist=("Due on receipt", "Net 15", "Net 30", "Net 45", "Net 60"),
            ),
        ]
    },
    "Opportunity": {
        f.name: f
        for f in [
            *system_fields(),
            Field("Name", "string", "Name", 120, required=True),
            Field("AccountId", "reference", "Account ID", 18, reference_to="Account", relationship="Account"),
            Field("Amount", "currency", "Amount"),
            Field("CurrencyIsoCode", "picklist", "Opportunity Currency", 3, picklist=CURRENCIES, restricted=True),
            Field("StageName", "picklist", "Stage", 255, required=True, picklist=tuple(STAGES), restricted=True),
            Field("CloseDate", "date", "Close Date", required=True),
            Field("Probability", "percent", "Probability (%)"),
            Field("Type", "picklist", "Opportunity Type", 255, picklist=("New Business", "Existing Business")),
            Field("IsClosed", "boolean", "Closed", createable=False, updateable=False),
            Field("IsWon", "boolean", "Won", createable=False, updateable=False),
            Field("Description", "textarea", "Description", 32000),
            Field("Billing_Terms__c", "string", "Billing Terms", 255),
            Field("Project_Code__c", "string", "Project Code", 40),
            Field(DEFAULT_EXTERNAL_ID_FIELD, "string", "Integration Record ID", 80, external_id=True),
        ]
    },
}
KEY_PREFIXES = {"Account": "001", "Opportunity": "006"}
FIRM_STAGES = {  # the Firm's neutral deal stages -> this org's StageName picklist
    "qualification": "Qualification",
    "needs_analysis": "Needs Analysis",
    "proposal": "Proposal/Price Quote",
    "negotiation": "Negotiation/Review",
    "closed_won": "Closed Won",
    "closed_lost": "Closed Lost",
}


class SalesforceOrg(PlatformOrg):
    """A CRM org: Accounts and Opportunities, and the Closed Won webhooks it sends."""

    schema = SCHEMA
    key_prefixes = KEY_PREFIXES

    def reset(self) -> None:
        with self.lock:
            self.webhook_urls: list[str] = []
            self.deliveries: list[dict[str, Any]] = []
            super().reset()

    def _seed(self) -> None:
        firm = self.firm
        if firm is None:
            return
        account_ids: dict[int, str] = {}
        for index, customer in enumerate(firm.crm_companies()):
            address = customer.get("billing_address") or {}
            values = {
                "Name": customer["name"],
                "Type": "Customer - Direct",
                "Website": f"https://www.{customer['domain']}" if customer.get("domain") else None,
                "Phone": customer.get("phone"),
                "Industry": "Consulting",
                "BillingStreet": address.get("street"),
                "BillingCity": address.get("city"),
                "BillingState": address.get("region") or None,
                "BillingPostalCode": address.get("postal_code"),
                "BillingCountry": address.get("country"),
                "CurrencyIsoCode": customer.get("currency") if customer.get("currency") in CURRENCIES else "USD",
                "Payment_Terms__c": customer.get("payment_terms"),
            }
            account_ids[customer["id"]] = self._insert("Account", values, SEED_EPOCH + timedelta(hours=index))["Id"]
        offset = len(account_ids)
        for index, deal in enumerate(firm.deals()):
            values = {
                "Name": deal["name"][:120],
                "AccountId": account_ids.get(firm.crm_company_of(deal)),
                "Amount": float(deal["amount"]) if deal.get("amount") is not None else None,
                "CurrencyIsoCode": deal.get("currency") if deal.get("currency") in CURRENCIES else "USD",
                "StageName": FIRM_STAGES.get(deal.get("stage"), "Prospecting"),
                "CloseDate": deal.get("close_date"),
                "Type": "New Business",
                "Description": f"Billing terms: {deal['billing_terms']}" if deal.get("billing_terms") else None,
                "Billing_Terms__c": deal.get("billing_terms"),
                "Project_Code__c": deal.get("project_code"),
            }
            self._insert("Opportunity", values, SEED_EPOCH + timedelta(hours=offset + index))

    def seed_more(self, object_name: str, count: int) -> int:
        """Add `count` synthetic records (for volume and paging tests); returns the new total."""
        with self.lock:
            existing = len(self.records[object_name])
            accounts = list(self.records["Account"])
            for i in range(count):
                moment = SEED_EPOCH + timedelta(days=400, minutes=existing + i)
                if object_name == "Account":
                    values = {"Name": f"Volume Account {existing + i:06d}", "CurrencyIsoCode": "USD"}
                else:
                    values = {
                        "Name": f"Volume Opportunity {existing + i:06d}",
                        "AccountId": accounts[i % len(accounts)] if accounts else None,
                        "Amount": float(1000 + (i % 50) * 250),
                        "CurrencyIsoCode": "USD",
                        "StageName": "Prospecting",
                        "CloseDate": (SEED_EPOCH.date() + timedelta(days=30 + i % 300)).isoformat(),
                    }
                self._insert(object_name, values, moment)
            return len(self.records[object_name])

    def _derive(self, object_name: str, record: dict[str, Any], changes: dict[str, Any]) -> None:
        if object_name == "Opportunity":
            _derive_stage_fields(record, probability_given="Probability" in changes)

    def _after_apply(self, object_name: str, record: dict[str, Any], before: dict[str, Any] | None) -> None:
        was_won = bool(before and before.get("IsWon"))
        if object_name == "Opportunity" and record.get("StageName") == CLOSED_WON_STAGE and not was_won:
            self._emit_closed_won(record)

    # -- webhooks --------------------------------------------------------------------------------------------

    def _emit_closed_won(self, opportunity: dict[str, Any]) -> None:
        self.counters["event"] += 1
        event = {
            "schema": WEBHOOK_EVENT_SCHEMA,
            "event": {"replayId": self.counters["event"], "EventUuid": secrets.token_hex(16)},
            "payload": {
                "CreatedDate": sf_datetime(now_utc()),
                "CreatedById": USER_ID,
                "OpportunityId__c": opportunity["Id"],
                "AccountId__c": opportunity.get("AccountId"),
                "Name__c": opportunity.get("Name"),
                "Amount__c": opportunity.get("Amount"),
                "CurrencyIsoCode__c": opportunity.get("CurrencyIsoCode"),
                "CloseDate__c": opportunity.get("CloseDate"),
                "StageName__c": opportunity.get("StageName"),
                "External_Id__c": opportunity.get(DEFAULT_EXTERNAL_ID_FIELD),
            },
        }
        body = json.dumps(event, separators=(",", ":")).encode()
        signature = base64.b64encode(hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha256).digest()).decode()
        headers = {"Content-Type": "application/json", WEBHOOK_SIGNATURE_HEADER: signature}
        for url in list(self.webhook_urls):
            delivery = {"url": url, "method": "POST", "headers": headers, "body": body.decode(), "status": None}
            self.deliveries.append(delivery)
            deliver_webhook(delivery, body)


def _derive_stage_fields(record: dict[str, Any], *, probability_given: bool) -> None:
    stage = record.get("StageName")
    record["IsClosed"] = stage in ("Closed Won", "Closed Lost")
    record["IsWon"] = stage == "Closed Won"
    if not probability_given and stage in STAGES:
        record["Probability"] = float(STAGES[stage])


class SalesforceSandbox(PlatformSandbox):
    vendor = "salesforce"
    org_class = SalesforceOrg
    credentials = DEMO_CREDENTIALS
    org: SalesforceOrg

    def seed(self, volumes: dict[str, int]) -> dict[str, int]:
        names = {
            "accounts": "Account",
            "account": "Account",
            "opportunities": "Opportunity",
            "opportunity": "Opportunity",
        }
        counts = {}
        for key, count in volumes.items():
            object_name = names.get(key.lower()) or (key if key in SCHEMA else None)
            if object_name is None:
                raise ValueError(f"the salesforce sandbox seeds accounts and opportunities, not {key!r}")
            counts[key] = self.org.seed_more(object_name, count)
        return counts

    # -- webhook subscriptions (a control endpoint: not counted as vendor calls, never faulted) --------------------

    def _control(self, request: Request) -> Response:
        if request.path.rstrip("/") != "/_sandbox/webhooks":
            return super()._control(request)
        org = self.org
        return webhook_urls_control(request, lock=org.lock, urls=org.webhook_urls, deliveries=org.deliveries)


def create_app(firm: Firm | None = None) -> SalesforceSandbox:
    return SalesforceSandbox(firm)
