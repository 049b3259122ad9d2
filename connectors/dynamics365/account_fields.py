"""Dataverse's side of delivery health (connectors.account_fields.AccountFields): account columns created through
the metadata API, read by id and written in $batch requests. Mixed into DataverseConnector, whose _api, _json and
_batch it uses."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from connectors.account_fields import AccountField, AccountUpdate, words
from connectors.base import ConnectorError, VendorError, WriteResult, chunks
from connectors.dynamics365.records import BATCH_SIZE, GUID, error_of, response_error

CUSTOMIZATION_PREFIX = "new"
NUMBER_TYPES = {"Decimal", "Double", "Money", "Integer", "BigInt"}
READ_CHUNK = 50  # ids in one $filter, so the URL stays short


class DataverseAccountFields:
    def account_field_name(self, key: str) -> str:
        return f"{CUSTOMIZATION_PREFIX}_" + "".join(words(key)).lower()

    def account_fields(self) -> dict[str, AccountField]:
        rows = self._json("GET", "EntityDefinitions(LogicalName='account')/Attributes").get("value", [])
        fields = {}
        for row in rows:
            if not row.get("IsValidForUpdate"):
                continue
            label = ((row.get("DisplayName") or {}).get("UserLocalizedLabel") or {}).get("Label")
            fields[row["LogicalName"]] = AccountField(
                name=row["LogicalName"],
                label=label or row["LogicalName"],
                kind="number" if row.get("AttributeType") in NUMBER_TYPES else "text",
                custom=bool(row.get("IsCustomAttribute")),
            )
        return fields

    def account_fields_create(self, fields: list[AccountField]) -> list[str]:
        present = set(self.account_fields())
        created = []
        for wanted in fields:
            if wanted.name in present:
                continue
            prefix, _, rest = wanted.name.partition("_")
            if not prefix or not rest:
                raise ConnectorError(f"{wanted.name} has no customization prefix (such as new_) for Dataverse.")

            def label(text: str) -> dict[str, Any]:
                return {
                    "@odata.type": "Microsoft.Dynamics.CRM.Label",
                    "LocalizedLabels": [
                        {"@odata.type": "Microsoft.Dynamics.CRM.LocalizedLabel", "Label": text, "LanguageCode": 1033}
                    ],
                }

            body: dict[str, Any] = {
                "SchemaName": wanted.name,
                "DisplayName": label(wanted.label),
                "Description": label(wanted.description or wanted.label),
                "RequiredLevel": {"Value": "None", "CanBeChanged": True},
            }
            if wanted.kind == "number":
                body.update(
                    {
                        "@odata.type": "Microsoft.Dynamics.CRM.DecimalAttributeMetadata",
                        "AttributeType": "Decimal",
                        "AttributeTypeName": {"Value": "DecimalType"},
                        "Precision": 2,
                        "MinValue": -100000000000.0,
                        "MaxValue": 100000000000.0,
                    }
                )
            else:
                body.update(
                    {
                        "@odata.type": "Microsoft.Dynamics.CRM.StringAttributeMetadata",
                        "AttributeType": "String",
                        "AttributeTypeName": {"Value": "StringType"},
                        "MaxLength": 40,
                        "FormatName": {"Value": "Text"},
                    }
                )
            response = self._api(
                "POST",
                "EntityDefinitions(LogicalName='account')/Attributes",
                json=body,
                headers={"Content-Type": "application/json"},
            )
            if response.status_code >= 400:
                code, message = response_error(response)
                raise VendorError(
                    f"Dataverse refused the column {wanted.name}: {code}: {message}",
                    status=response.status_code,
                    code=code,
                )
            created.append(wanted.name)
        return created

    def accounts_read(self, account_ids: list[str], names: list[str]) -> dict[str, dict]:
        ids = [i for i in dict.fromkeys(account_ids) if GUID.match(i)]
        found: dict[str, dict] = {}
        for chunk in chunks(ids, READ_CHUNK):
            # Ids are GUIDs (checked), names come from the account's own column list: nothing else reaches $filter.
            condition = " or ".join(f"accountid eq {i}" for i in chunk)
            params = {"$select": ",".join(dict.fromkeys(["accountid", *names])), "$filter": condition}
            body = self._json("GET", "accounts", params=params)
            for row in body.get("value") or []:
                found[row["accountid"]] = {name: row.get(name) for name in names}
        return found

    def accounts_update(self, updates: list[AccountUpdate]) -> list[WriteResult]:
        results: list[WriteResult] = []
        for chunk in chunks(updates, BATCH_SIZE):
            operations = [
                {
                    "method": "PATCH",
                    "url": f"accounts({update.account_id})",
                    # If-Match: * makes it an update only: an account deleted meanwhile is not created again.
                    "headers": {"Content-Type": "application/json", "If-Match": "*"},
                    "body": {name: _number(value) for name, value in update.values.items()},
                }
                for update in chunk
            ]
            for update, (status, _headers, body) in zip(chunk, self._batch(operations), strict=True):
                if status < 300:
                    results.append(WriteResult(update.account_id, "updated", update.account_id))
                else:
                    code, message = error_of(body, status)
                    results.append(
                        WriteResult(update.account_id, "failed", update.account_id, code, self.session.redact(message))
                    )
        return results


def _number(value: Any) -> Any:
    """Decimals as JSON numbers (Dataverse's Edm.Decimal), everything else as it is."""
    return float(value) if isinstance(value, Decimal) else value
