"""HubSpot sandbox vocabulary: demo credentials, limits, the company and deal properties, HubSpot's error."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from connectors.hubspot.records import EXTERNAL_ID_PROPERTY

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
    group: str = ""  # blank: the object's own information group
    description: str = ""
    created_by_api: bool = False  # created through the properties API (a custom property)

    def describe(self, object_name: str) -> dict[str, Any]:
        custom = self.created_by_api or self.name in CUSTOM_PROPERTIES
        return {
            "name": self.name,
            "label": self.label,
            "type": self.type,
            "fieldType": self.field_type,
            "description": self.description,
            "groupName": self.group or ("companyinformation" if object_name == "companies" else "dealinformation"),
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
GROUPS = {  # each object's own property groups: name -> label
    "companies": {"companyinformation": "Company information"},
    "deals": {"dealinformation": "Deal information"},
}
# The type and fieldType pairs a created property may take (HubSpot's documented combinations, the ones used here).
FIELD_TYPES = {
    "string": ("text", "textarea", "phonenumber"),
    "number": ("number",),
    "date": ("date",),
    "datetime": ("date",),
    "bool": ("booleancheckbox",),
}


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
