"""HubSpot's side of delivery health (connectors.account_fields.AccountFields): company properties in a group of
their own, read and written in batches. Mixed into HubSpotConnector, whose _call and _batch it uses."""

from __future__ import annotations

from connectors.account_fields import AccountField, AccountUpdate, words
from connectors.base import OutboundRecord, WriteResult, chunks
from connectors.hubspot.records import BATCH_LIMIT, property_value

# The property group the account-health properties are created in, so a HubSpot admin sees them together.
DELIVERY_GROUP = ("delivery_health", "Delivery health")


class HubSpotAccountFields:
    def account_field_name(self, key: str) -> str:
        return "_".join(words(key)).lower()

    def account_fields(self) -> dict[str, AccountField]:
        results = self._call("GET", "/crm/v3/properties/companies").json().get("results", [])
        return {
            p["name"]: AccountField(
                name=p["name"],
                label=p.get("label") or p["name"],
                kind="number" if p.get("type") == "number" else "text",
                description=p.get("description") or "",
                custom=not p.get("hubspotDefined", False),
            )
            for p in results
            if not (p.get("modificationMetadata") or {}).get("readOnlyValue") and not p.get("calculated")
        }

    def account_fields_create(self, fields: list[AccountField]) -> list[str]:
        present = set(self.account_fields())
        missing = [f for f in fields if f.name not in present]
        if not missing:
            return []
        group, label = DELIVERY_GROUP
        groups = self._call("GET", "/crm/v3/properties/companies/groups").json().get("results", [])
        if group not in {g.get("name") for g in groups}:
            self._call(
                "POST",
                "/crm/v3/properties/companies/groups",
                json={"name": group, "label": label, "displayOrder": -1},
                expected=(201, 409),
            )
        created = []
        for wanted in missing:
            number = wanted.kind == "number"
            body = {
                "name": wanted.name,
                "label": wanted.label,
                "description": wanted.description,
                "groupName": group,
                "type": "number" if number else "string",
                "fieldType": "number" if number else "text",
            }
            response = self._call("POST", "/crm/v3/properties/companies", json=body, expected=(201, 409))
            if response.status_code == 201:
                created.append(wanted.name)
        return created

    def accounts_read(self, account_ids: list[str], names: list[str]) -> dict[str, dict]:
        found: dict[str, dict] = {}
        ids = [i for i in dict.fromkeys(account_ids) if i.isdigit()]
        for chunk in chunks(ids, BATCH_LIMIT):
            body = {"properties": list(names), "inputs": [{"id": i} for i in chunk]}
            result = self._call("POST", "/crm/v3/objects/companies/batch/read", json=body, expected=(200, 207)).json()
            for company in result.get("results", []):
                properties = company.get("properties") or {}
                found[str(company["id"])] = {name: properties.get(name) for name in names}
        return found

    def accounts_update(self, updates: list[AccountUpdate]) -> list[WriteResult]:
        results: list[WriteResult] = []
        for chunk in chunks(updates, BATCH_LIMIT):
            records = [OutboundRecord(external_id=u.account_id, fields={}, target_id=u.account_id) for u in chunk]
            inputs = {
                index: {
                    "id": update.account_id,
                    "properties": {name: property_value(value) for name, value in update.values.items()},
                }
                for index, update in enumerate(chunk)
            }
            by_index = self._batch("companies", "update", records, inputs)
            results.extend(by_index[index] for index in range(len(chunk)))
        return results
