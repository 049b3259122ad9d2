"""Dataverse sandbox vocabulary: demo credentials, limits, the entities and their columns, and error answers."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from werkzeug.wrappers import Response

from connectors.sandbox.app import json_response

API = "/api/data/v9.2"
TENANT_ID = "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b"
DEMO_CREDENTIALS = {
    "tenant_id": TENANT_ID,
    "client_id": "51f81489-12ee-4a9e-aaae-a2591f45987d",
    "client_secret": "sgp~dataverse~demo~secret~Q8x",
    "authority": "http://127.0.0.1:8107",  # the sandbox serves Entra's token endpoint too
    "external_id_field": "new_externalid",
    "webhook_secret": "sgp-dataverse-webhook-key-3c1",
}
ORGANIZATION_ID = "0a1b2c3d-0000-4000-8000-00000000d365"
ORGANIZATION_NAME = "haldenrowe"
BUSINESS_UNIT_ID = "0a1b2c3d-0000-4000-8000-0000000000b0"
APPLICATION_USER_ID = "0a1b2c3d-0000-4000-8000-0000000000a1"
SEED_EPOCH = datetime(2024, 1, 2, 9, 0, 0, tzinfo=UTC)
MAX_PAGE_SIZE = 5000
MAX_BATCH = 1000
CONCURRENCY_LIMIT = 52
_NAMESPACE = uuid.UUID("2c8a4f5e-7b1d-4e3a-9f60-d365d365d365")


# (unverified) assumptions, kept in one place and mirrored by connectors/dynamics365/client.py:
# - `$skip` is answered 400 with code 0x80060888; a `$batch` of more than 1,000 requests 400 with 0x8004430D.
# - Updating an opportunity's statecode to Won/Lost is refused with 400 0x80040203; closing an opportunity that is
#   already closed through WinOpportunity/LoseOpportunity is refused with 400 0x80040203 "already closed".
# - Change tracking cannot be combined with $filter, $orderby or $top (400 0x80060888); a delta page has no
#   @odata.count. Paging cookies are opaque; the sandbox's carry an offset.
# - A 401 has an empty body and a WWW-Authenticate header naming the authority.
# - Creating a column whose logical name exists is refused with 400 0x80044363 (the code is assumed); a SchemaName
#   must carry a publisher's customization prefix ("new_").
THROTTLE_MESSAGES = {
    "0x80072322": "Number of requests exceeded the limit of 6000 over time window of 300 seconds.",
    "0x80072321": "Combined execution time of incoming requests exceeded limit of 1,200,000 milliseconds over time "
    "window of 300 seconds. Decrease number of concurrent requests or reduce the duration of requests and try "
    "again later.",
    "0x80072326": "Number of concurrent requests exceeded the limit of 52.",
}


class ApiError(Exception):
    """A Dataverse error: `{"error": {"code": "0x...", "message": ...}}` with an HTTP status."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class Column:
    def __init__(
        self,
        kind: str,
        size: int = 0,
        options: dict[int, str] | None = None,
        target: str = "",
        *,
        precision: int = 2,
        label: str = "",
        custom: bool = False,
    ):
        self.kind = kind  # guid string memo money decimal int option datetime date bool lookup
        self.size = size
        self.options = options or {}
        self.target = target  # lookup: the entity set it points at
        self.precision = precision  # decimal: the places a value is rounded to when saved
        self.label = label
        self.custom = custom

    @property
    def readonly(self) -> bool:
        return self.kind in ("guid", "datetime") or self.kind == "version"


# How the metadata API names each kind of column (AttributeType).
ATTRIBUTE_TYPES = {
    "guid": "Uniqueidentifier",
    "string": "String",
    "memo": "Memo",
    "money": "Money",
    "decimal": "Decimal",
    "int": "Integer",
    "option": "Picklist",
    "datetime": "DateTime",
    "date": "DateTime",
    "bool": "Boolean",
    "lookup": "Lookup",
    "version": "BigInt",
}

STATE = {0: "Active", 1: "Inactive"}
PAYMENT_TERMS = {1: "Net 30", 2: "2% 10, Net 30", 3: "Net 45", 4: "Net 60"}
SALES_STAGES = {0: "Qualify", 1: "Develop", 2: "Propose", 3: "Close"}
OPPORTUNITY_STATES = {0: "Open", 1: "Won", 2: "Lost"}
OPPORTUNITY_STATUSES = {1: "In Progress", 2: "On Hold", 3: "Won", 4: "Canceled", 5: "Out-Sold"}


class Entity:
    def __init__(self, logical: str, entity_set: str, primary_id: str, primary_name: str, columns: dict[str, Column]):
        self.logical, self.entity_set, self.primary_id, self.primary_name = (
            logical,
            entity_set,
            primary_id,
            primary_name,
        )
        self.columns = columns
        self.keys: dict[str, tuple[str, ...]] = {}  # alternate key name -> its columns

    def lookups(self) -> dict[str, Column]:
        return {name: c for name, c in self.columns.items() if c.kind == "lookup"}


def _system(primary_id: str) -> dict[str, Column]:
    return {
        primary_id: Column("guid"),
        "createdon": Column("datetime"),
        "modifiedon": Column("datetime"),
        "versionnumber": Column("version"),
        "statecode": Column("option", options=STATE),
        "statuscode": Column("option", options={1: "Active", 2: "Inactive"}),
        "transactioncurrencyid": Column("lookup", target="transactioncurrencies"),
    }


ENTITIES: dict[str, Entity] = {
    "accounts": Entity(
        "account",
        "accounts",
        "accountid",
        "name",
        {
            **_system("accountid"),
            "name": Column("string", 160),
            "accountnumber": Column("string", 20),
            "websiteurl": Column("string", 200),
            "telephone1": Column("string", 50),
            "emailaddress1": Column("string", 100),
            "address1_line1": Column("string", 250),
            "address1_city": Column("string", 80),
            "address1_stateorprovince": Column("string", 50),
            "address1_postalcode": Column("string", 20),
            "address1_country": Column("string", 80),
            "paymenttermscode": Column("option", options=PAYMENT_TERMS),
            "description": Column("memo", 2000),
            "new_externalid": Column("string", 100),
        },
    ),
    "opportunities": Entity(
        "opportunity",
        "opportunities",
        "opportunityid",
        "name",
        {
            **_system("opportunityid"),
            "statecode": Column("option", options=OPPORTUNITY_STATES),
            "statuscode": Column("option", options=OPPORTUNITY_STATUSES),
            "name": Column("string", 300),
            "customerid": Column("lookup", target="accounts"),  # customer type: bound as customerid_account
            "parentaccountid": Column("lookup", target="accounts"),
            "estimatedvalue": Column("money"),
            "actualvalue": Column("money"),
            "estimatedclosedate": Column("date"),
            "actualclosedate": Column("date"),
            "closeprobability": Column("int"),
            "salesstage": Column("option", options=SALES_STAGES),
            "stepname": Column("string", 200),
            "description": Column("memo", 2000),
            "new_projectcode": Column("string", 100),
            "new_billingterms": Column("string", 100),
            "new_externalid": Column("string", 100),
        },
    ),
    "transactioncurrencies": Entity(
        "transactioncurrency",
        "transactioncurrencies",
        "transactioncurrencyid",
        "currencyname",
        {
            "transactioncurrencyid": Column("guid"),
            "isocurrencycode": Column("string", 5),
            "currencyname": Column("string", 100),
            "modifiedon": Column("datetime"),
            "versionnumber": Column("version"),
        },
    ),
}
ENTITIES["accounts"].keys = {"new_externalid_key": ("new_externalid",), "accountnumber_key": ("accountnumber",)}
ENTITIES["opportunities"].keys = {"new_externalid_key": ("new_externalid",)}
ENTITIES["transactioncurrencies"].keys = {"isocurrencycode_key": ("isocurrencycode",)}
BY_LOGICAL = {e.logical: e for e in ENTITIES.values()}


# Bind names that differ from the lookup column (a customer lookup is bound per target type).
BIND_ALIASES = {("opportunities", "customerid_account"): "customerid"}


FIRM_STAGES = {  # the firm's deal stage -> (statecode, statuscode, salesstage, stepname)
    "qualification": (0, 1, 0, "1-Qualify"),
    "needs_analysis": (0, 1, 1, "2-Develop"),
    "proposal": (0, 1, 2, "3-Propose"),
    "negotiation": (0, 1, 3, "4-Close"),
    "closed_won": (1, 3, 3, "4-Close"),
    "closed_lost": (2, 4, 3, "4-Close"),
}
FIRM_TERMS = {"Net 30": 1, "Net 45": 3, "Net 60": 4}


def guid(kind: str, number: int) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"{kind}:{number}"))


def _etag(row: dict[str, Any]) -> str:
    return f'W/"{row["versionnumber"]}"'


def _json_body(data: bytes) -> Any:
    if not data:
        return None
    try:
        return json.loads(data)
    except ValueError:
        raise ApiError(400, "0x80048d19", "The request body is not valid JSON.") from None


def _response(status: int, headers: dict[str, str], body: Any) -> Response:
    headers = {"OData-Version": "4.0", **headers}
    if body is None:
        return Response(b"", status=status, headers=headers)
    return json_response(body, status=status, headers=headers)


def _error_response(error: ApiError) -> Response:
    return _response(error.status, {}, {"error": {"code": error.code, "message": error.message}})
