"""Dataverse's accounts and opportunities as the Web API names them: their columns and lookups, values as
Dataverse takes them, its error bodies and the answers of a multipart $batch."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import requests

from connectors.base import (
    OutboundRecord,
    VendorError,
    iso_utc,
)

ACCOUNT_FIELDS = (
    "accountid",
    "name",
    "accountnumber",
    "websiteurl",
    "telephone1",
    "emailaddress1",
    "address1_line1",
    "address1_city",
    "address1_stateorprovince",
    "address1_postalcode",
    "address1_country",
    "paymenttermscode",
    "description",
    "statecode",
    "_transactioncurrencyid_value",
    "createdon",
    "modifiedon",
)


OPPORTUNITY_FIELDS = (
    "opportunityid",
    "name",
    "_customerid_value",
    "_parentaccountid_value",
    "estimatedvalue",
    "actualvalue",
    "estimatedclosedate",
    "actualclosedate",
    "closeprobability",
    "salesstage",
    "stepname",
    "statecode",
    "statuscode",
    "description",
    "new_projectcode",
    "new_billingterms",
    "_transactioncurrencyid_value",
    "createdon",
    "modifiedon",
)


# Writable lookups, given as a Dataverse id or as the target's key value, and bound with @odata.bind.
LOOKUPS = {
    "accounts": {"transactioncurrencyid": ("transactioncurrencyid", "transactioncurrencies", "isocurrencycode")},
    "opportunities": {
        "customerid": ("customerid_account", "accounts", None),
        "parentaccountid": ("parentaccountid", "accounts", None),
        "transactioncurrencyid": ("transactioncurrencyid", "transactioncurrencies", "isocurrencycode"),
    },
}


WRITABLE = {
    "accounts": tuple(
        f
        for f in ACCOUNT_FIELDS
        if not f.startswith("_") and f not in ("accountid", "createdon", "modifiedon", "statecode")
    )
    + ("transactioncurrencyid",),
    "opportunities": tuple(
        f
        for f in OPPORTUNITY_FIELDS
        if not f.startswith("_") and f not in ("opportunityid", "createdon", "modifiedon", "statuscode")
    )
    + ("customerid", "parentaccountid", "transactioncurrencyid"),
}


# $batch takes 1,000 requests, but 250 is the cap seen in practice and keeps each call short.
BATCH_SIZE = 250
PRIMARY_IDS = {"accounts": "accountid", "opportunities": "opportunityid"}


LOGICAL_NAMES = {"accounts": "account", "opportunities": "opportunity"}


OPPORTUNITY_WON, OPPORTUNITY_LOST = 1, 2


# Added to every row that names a transaction currency: its ISO code ("EUR"), which mappings need.
CURRENCY_CODE = "isocurrencycode"


GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def key_literal(value: str) -> str:
    """A string as an OData key literal in a URL path: quotes doubled, then percent-encoded."""
    return "'" + quote(value.replace("'", "''"), safe="") + "'"


def json_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime):
        return iso_utc(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def error_of(body: Any, status: int) -> tuple[str, str]:
    """(code, message) of a Dataverse error body."""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return str(error.get("code") or f"HTTP_{status}"), str(error.get("message") or f"HTTP {status}")
    return f"HTTP_{status}", f"Dataverse answered HTTP {status}"


def response_error(response: requests.Response) -> tuple[str, str]:
    try:
        body = response.json()
    except ValueError:
        body = None
    return error_of(body, response.status_code)


def parse_batch_response(content_type: str, content: bytes) -> list[tuple[int, dict[str, str], Any]]:
    """The inner responses of a multipart $batch answer, in order, as (status, lower-cased headers, JSON body)."""
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if not match:
        raise VendorError("Dataverse answered a batch without a multipart boundary.", code="BATCH_FORMAT")
    answers = []
    for chunk in content.split(b"--" + match.group(1).encode())[1:]:
        if chunk.startswith(b"--"):
            break
        _part_headers, _, http = chunk.lstrip(b"\r\n").partition(b"\r\n\r\n")
        head, _, payload = http.partition(b"\r\n\r\n")
        lines = head.decode("utf-8", "replace").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {
            name.strip().lower(): value.strip()
            for name, _, value in (line.partition(":") for line in lines[1:])
            if value
        }
        payload = payload.strip()
        try:
            body = json.loads(payload) if payload else None
        except ValueError:
            body = None
        answers.append((status, headers, body))
    return answers


def id_from(entity_url: str) -> str | None:
    match = re.search(r"\(([0-9a-fA-F-]{36})\)\s*$", entity_url)
    return match.group(1) if match else None


def payload(entity_set: str, fields: Mapping[str, Any], *, external_id_field: str) -> tuple[dict[str, Any], int | None]:
    """The JSON body for a record's fields, and the state to close an opportunity in (Won/Lost) or None."""
    body: dict[str, Any] = {}
    close_as = None
    lookups = LOOKUPS[entity_set]
    for name, value in fields.items():
        if name in (PRIMARY_IDS[entity_set], external_id_field):
            continue
        if name == "statecode" and entity_set == "opportunities":
            if value in (OPPORTUNITY_WON, OPPORTUNITY_LOST):
                close_as = value
            continue
        if name in lookups:
            bind_name, target_set, alternate = lookups[name]
            if value in (None, ""):
                continue
            text = str(value)
            if GUID.match(text):
                reference = f"/{target_set}({text})"
            else:
                key = alternate or external_id_field
                reference = f"/{target_set}({key}={key_literal(text)})"
            body[f"{bind_name}@odata.bind"] = reference
            continue
        body[name] = json_value(value)
    return body, close_as


def close_request(
    record: OutboundRecord, opportunity_id: str | None, state: int, *, external_id_field: str
) -> dict[str, Any]:
    """The WinOpportunity / LoseOpportunity call that closes a saved opportunity (an update cannot)."""
    won = state == OPPORTUNITY_WON
    target = (
        f"/opportunities({opportunity_id})"
        if opportunity_id
        else (f"/opportunities({external_id_field}={key_literal(record.external_id)})")
    )
    close: dict[str, Any] = {
        "subject": f"{'Won' if won else 'Lost'}: {record.fields.get('name') or record.external_id}",
        "opportunityid@odata.bind": target,
        "actualend": str(record.fields.get("actualclosedate") or date.today().isoformat())[:10],
    }
    if record.fields.get("actualvalue") is not None:
        close["actualrevenue"] = json_value(record.fields["actualvalue"])
    return {
        "method": "POST",
        "url": "WinOpportunity" if won else "LoseOpportunity",
        "headers": {"Content-Type": "application/json"},
        "body": {"Status": -1, "OpportunityClose": close},  # -1: the default Won (3) or Canceled (4) reason
    }
