"""Salesforce connector: Accounts and Opportunities over the REST API (see connectors.salesforce_platform.rest).

Adds to the platform's connector the CRM's objects and the signed Closed Won webhook.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from collections.abc import Mapping

from connectors.account_fields import AccountField, AccountUpdate, words
from connectors.base import (
    ConnectorError,
    FormField,
    OutboundRecord,
    WebhookRejected,
    WriteResult,
    chunks,
    header_value,
    objects_by_name,
)
from connectors.salesforce_platform.rest import (
    _ID_RE,
    COLLECTION_LIMIT,
    DEFAULT_EXTERNAL_ID_FIELD,
    SalesforcePlatformConnector,
    _error_code,
    _error_message,
    _json_value,
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

# ---------------------------------------------------------------------------------------------------------------
# Account fields (delivery health written back to the account). Custom fields are created through the Tooling API:
# POST /tooling/sobjects/CustomField {FullName: "Account.X__c", Metadata: {label, type, precision, scale | length}}
# -> 201 {id, success, errors}. (unverified) assumptions, kept here and copied by the sandbox:
# - creating a field that exists answers 400 DUPLICATE_VALUE;
# - a field created so is visible to the integration user at once (a real org may need its profile or a permission
#   set to be granted field-level security first: until then describe does not list it and writes refuse it).
NUMBER_PRECISION, NUMBER_SCALE, TEXT_LENGTH = 18, 2, 40
_FIELD_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
# ---------------------------------------------------------------------------------------------------------------


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

    # -- account fields (connectors.account_fields.AccountFields) ------------------------------------------------

    def account_field_name(self, key: str) -> str:
        return "_".join(word.capitalize() for word in words(key)) + "__c"

    def account_fields(self) -> dict[str, AccountField]:
        body = self._api("GET", "sobjects/Account/describe").json()
        self._described["Account"] = {f["name"] for f in body.get("fields", [])}
        numbers = {"double", "currency", "percent", "int", "long"}
        return {
            f["name"]: AccountField(
                name=f["name"],
                label=f.get("label") or f["name"],
                kind="number" if f.get("type") in numbers else "text",
                custom=bool(f.get("custom")),
            )
            for f in body.get("fields", [])
            if f.get("updateable")
        }

    def account_fields_create(self, fields: list[AccountField]) -> list[str]:
        present = set(self.account_fields())
        created = []
        for wanted in fields:
            if wanted.name in present:
                continue
            if not (wanted.name.endswith("__c") and _FIELD_NAME.match(wanted.name)):
                raise ConnectorError(f"{wanted.name} is not a Salesforce custom field name (they end in __c).")
            metadata: dict = {"label": wanted.label[:40], "description": wanted.description[:1000]}
            if wanted.kind == "number":
                metadata.update(type="Number", precision=NUMBER_PRECISION, scale=NUMBER_SCALE)
            else:
                metadata.update(type="Text", length=TEXT_LENGTH)
            self._api(
                "POST",
                "tooling/sobjects/CustomField",
                json={"FullName": f"Account.{wanted.name}", "Metadata": metadata},
                expected=(201,),
            )
            created.append(wanted.name)
        if created:
            self._described.pop("Account", None)
        return created

    def accounts_read(self, account_ids: list[str], names: list[str]) -> dict[str, dict]:
        bad = [name for name in names if not _FIELD_NAME.match(name)]
        if bad:
            raise ConnectorError(f"{', '.join(bad)} cannot be a Salesforce field name.")
        ids = [i for i in dict.fromkeys(account_ids) if _ID_RE.match(i)]
        found: dict[str, dict] = {}
        select = ", ".join(dict.fromkeys(["Id", *names]))
        for chunk in chunks(ids, COLLECTION_LIMIT):
            # Ids are checked against Salesforce's id shape and names against a field name's: no text of anyone's
            # reaches the query as anything but a literal.
            quoted = ", ".join(f"'{i}'" for i in chunk)
            soql = f"SELECT {select} FROM Account WHERE Id IN ({quoted})"  # noqa: S608
            response = self._api("GET", "query", params={"q": soql})
            while True:
                body = response.json()
                for record in body.get("records", []):
                    found[record["Id"]] = {name: record.get(name) for name in names}
                if body.get("done", True) or not body.get("nextRecordsUrl"):
                    break
                response = self._api("GET", body["nextRecordsUrl"])
        # Salesforce answers with 18-character ids; a caller may hold the 15-character form.
        by_prefix = {record_id[:15]: values for record_id, values in found.items()}
        return {i: by_prefix[i[:15]] for i in ids if i[:15] in by_prefix}

    def accounts_update(self, updates: list[AccountUpdate]) -> list[WriteResult]:
        results: list[WriteResult] = []
        for chunk in chunks(updates, COLLECTION_LIMIT):
            records = [
                {
                    "attributes": {"type": "Account"},
                    "id": update.account_id,
                    **{name: _json_value(value) for name, value in update.values.items()},
                }
                for update in chunk
            ]
            response = self._api(
                "PATCH", "composite/sobjects", json={"allOrNone": False, "records": records}, expected=(200, 400)
            )
            if response.status_code == 400:
                code, message = _error_code(response) or "INVALID_REQUEST", _error_message(response)
                results.extend(WriteResult(u.account_id, "failed", u.account_id, code, message) for u in chunk)
                continue
            for update, result in zip(chunk, response.json(), strict=True):
                record = OutboundRecord(external_id=update.account_id, fields={}, target_id=update.account_id)
                results.append(self._write_result(record, result, "update"))
        return results
