"""The Dataverse sandbox's organization: rows seeded from the firm, row versions, and the writes on them."""

from __future__ import annotations

import copy
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import unquote, urlsplit

from connectors.dynamics365.sandbox.schema import (
    API,
    BIND_ALIASES,
    ENTITIES,
    FIRM_STAGES,
    FIRM_TERMS,
    SEED_EPOCH,
    ApiError,
    Column,
    Entity,
    _etag,
    guid,
)
from connectors.sandbox.odata import iso_z, key_values, prefer


class DataverseState:
    """The organization's rows and their writes; `self.lock` guards them."""

    def reset_state(self) -> None:
        # The organization's own table definitions: columns created through the metadata API live in them.
        self.entities: dict[str, Entity] = copy.deepcopy(ENTITIES)
        self.by_logical: dict[str, Entity] = {e.logical: e for e in self.entities.values()}
        self.tables: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in self.entities}
        self.version = 0
        self.tombstones: list[tuple[str, str, int]] = []  # (entity set, id, version when deleted)
        self.webhooks: list[dict[str, Any]] = []
        self.deliveries: list[dict[str, Any]] = []
        self.closures: list[dict[str, Any]] = []  # opportunityclose activities written by Win/LoseOpportunity
        self.entra.revoke_all()
        self._seed()

    def _next_version(self) -> int:
        self.version += 1
        return self.version

    def _seed(self) -> None:
        for number, (code, name) in enumerate((("USD", "US Dollar"), ("GBP", "Pound Sterling"), ("EUR", "Euro")), 1):
            self._store(
                "transactioncurrencies",
                {
                    "transactioncurrencyid": guid("currency", number),
                    "isocurrencycode": code,
                    "currencyname": name,
                },
                SEED_EPOCH,
            )
        currencies = {
            r["isocurrencycode"]: r["transactioncurrencyid"] for r in self.tables["transactioncurrencies"].values()
        }
        accounts: dict[int, str] = {}
        for index, company in enumerate(self.firm.crm_companies()):
            address = company.get("billing_address") or {}
            row = {
                "accountid": guid("account", company["id"]),
                "name": company["name"],
                "accountnumber": company.get("number"),
                "websiteurl": f"https://www.{company['domain']}" if company.get("domain") else None,
                "telephone1": company.get("phone"),
                "address1_line1": address.get("street"),
                "address1_city": address.get("city"),
                "address1_stateorprovince": address.get("region") or None,
                "address1_postalcode": address.get("postal_code"),
                "address1_country": address.get("country"),
                "paymenttermscode": FIRM_TERMS.get(company.get("payment_terms") or ""),
                "_transactioncurrencyid_value": currencies.get(company.get("currency"), currencies["USD"]),
                "statecode": 0,
                "statuscode": 1,
            }
            accounts[company["id"]] = self._store("accounts", row, SEED_EPOCH + timedelta(hours=index))["accountid"]
        offset = len(accounts)
        for index, deal in enumerate(self.firm.deals()):
            state, status, stage, step = FIRM_STAGES.get(deal["stage"], (0, 1, 0, "1-Qualify"))
            account = accounts.get(self.firm.crm_company_of(deal))
            row = {
                "opportunityid": guid("opportunity", deal["id"]),
                "name": deal["name"][:300],
                "_customerid_value": account,
                "_parentaccountid_value": account,
                "estimatedvalue": float(deal["amount"]),
                "actualvalue": float(deal["amount"]) if state == 1 else None,
                "estimatedclosedate": deal["close_date"],
                "actualclosedate": deal["close_date"] if state else None,
                "closeprobability": 100 if state == 1 else 0 if state == 2 else 25 * (stage + 1),
                "salesstage": stage,
                "stepname": step,
                "statecode": state,
                "statuscode": status,
                "new_projectcode": deal.get("project_code"),
                "new_billingterms": deal.get("billing_terms"),
                "_transactioncurrencyid_value": currencies.get(deal.get("currency"), currencies["USD"]),
            }
            self._store("opportunities", row, SEED_EPOCH + timedelta(hours=offset + index))

    def _store(self, entity_set: str, values: dict[str, Any], moment: datetime) -> dict[str, Any]:
        entity = self.entities[entity_set]
        row: dict[str, Any] = {}
        for name, column in entity.columns.items():
            row[f"_{name}_value" if column.kind == "lookup" else name] = None
        row.update(values)
        stamp = iso_z(moment)
        row.update(createdon=row.get("createdon") or stamp, modifiedon=stamp, versionnumber=self._next_version())
        self.tables[entity_set][row[entity.primary_id]] = row
        return row

    def seed(self, volumes: dict[str, int]) -> dict[str, int]:
        """Grow accounts or opportunities to the given totals with plain synthetic rows (volume and paging tests)."""
        unknown = set(volumes) - {"accounts", "opportunities"}
        if unknown:
            raise ValueError(f"the dynamics365 sandbox seeds accounts and opportunities, not {sorted(unknown)}")
        accounts = list(self.tables["accounts"])
        for entity_set, total in volumes.items():
            table = self.tables[entity_set]
            for n in range(len(table), total):
                moment = SEED_EPOCH + timedelta(days=400, seconds=n)
                if entity_set == "accounts":
                    self._store(
                        "accounts",
                        {
                            "accountid": guid("volume-account", n),
                            "name": f"Volume Account {n:06d}",
                            "statecode": 0,
                            "statuscode": 1,
                        },
                        moment,
                    )
                else:
                    self._store(
                        "opportunities",
                        {
                            "opportunityid": guid("volume-opportunity", n),
                            "name": f"Volume Opportunity {n:06d}",
                            "_customerid_value": accounts[n % len(accounts)],
                            "estimatedvalue": float(1000 + n % 50 * 250),
                            "statecode": 0,
                            "statuscode": 1,
                            "salesstage": 0,
                        },
                        moment,
                    )
        return {name: len(self.tables[name]) for name in ("accounts", "opportunities")}

    # -- writes --------------------------------------------------------------------------------------------------
    def _save(
        self,
        entity: Entity,
        key: str | None,
        body: Any,
        headers,
        root: str,
        *,
        creating_only: bool = False,
    ) -> tuple[int, dict[str, str], Any]:
        if not isinstance(body, dict):
            raise ApiError(400, "0x80048d19", "The request body must be a JSON object.")
        existing = self._find(entity, key) if key else None
        if_match, if_none_match = headers.get("If-Match"), headers.get("If-None-Match")
        if existing is None and if_match:
            raise ApiError(404, "0x80040217", f"{entity.logical} With Ids = {key} Does Not Exist")
        if existing is not None and if_none_match == "*":
            raise ApiError(412, "0x80040237", "A record with matching key values already exists.")
        if existing is not None and if_match not in (None, "*") and if_match != _etag(existing):
            raise ApiError(
                412, "0x80060882", "The version of the existing record doesn't match the RowVersion property provided."
            )
        values = self._values(entity, body, root)
        if entity.entity_set == "opportunities" and values.get("statecode") in (1, 2):
            current = existing.get("statecode") if existing else 0
            if values["statecode"] != current:
                raise ApiError(
                    400,
                    "0x80040203",
                    "An opportunity can't be closed by an update of its statecode; use the WinOpportunity or "
                    "LoseOpportunity action.",
                )
        now = datetime.now(UTC)
        if existing is None:
            if key and "" not in key_values(key):
                values.update(key_values(key))  # an upsert by alternate key creates the row with its key values
            elif key:
                values[entity.primary_id] = key_values(key)[""]
            values.setdefault(entity.primary_id, str(uuid.uuid4()))
            if values[entity.primary_id] in self.tables[entity.entity_set]:
                raise ApiError(412, "0x80040237", "A record with matching key values already exists.")
            self._check_unique_keys(entity, values, None)
            values.setdefault("statecode", 0)
            values.setdefault("statuscode", 1)
            row = self._store(entity.entity_set, values, now)
            status = 201
            self._notify(entity, row, "Create")
        else:
            self._check_unique_keys(entity, values, existing)
            existing.update(values)
            existing.update(modifiedon=iso_z(now), versionnumber=self._next_version())
            row, status = existing, 200
            self._notify(entity, row, "Update")
        entity_id = f"{root}/{entity.entity_set}({row[entity.primary_id]})"
        out_headers = {"OData-EntityId": entity_id, "ETag": _etag(row)}
        if (prefer(headers, "return") or "") == "representation":
            return status, out_headers, self._render(entity, row, [], root)
        return 204, out_headers, None

    def _check_unique_keys(self, entity: Entity, values: dict[str, Any], existing: dict[str, Any] | None) -> None:
        for columns in entity.keys.values():
            wanted = {c: values.get(c, existing.get(c) if existing else None) for c in columns}
            if any(v in (None, "") for v in wanted.values()):
                continue
            for row in self.tables[entity.entity_set].values():
                if row is not existing and all(row.get(c) == v for c, v in wanted.items()):
                    raise ApiError(412, "0x80040237", "A record with matching key values already exists.")

    def _values(self, entity: Entity, body: dict[str, Any], root: str) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, value in body.items():
            if name.startswith("@odata."):
                continue
            if name.endswith("@odata.bind"):
                column_name = name.removesuffix("@odata.bind")
                column_name = BIND_ALIASES.get((entity.entity_set, column_name), column_name)
                column = entity.columns.get(column_name)
                if column is None or column.kind != "lookup":
                    raise ApiError(
                        400,
                        "0x80060888",
                        f"An undeclared property '{name.removesuffix('@odata.bind')}' which only has property "
                        "annotations in the payload but no property value was found in the payload.",
                    )
                values[f"_{column_name}_value"] = self._resolve_bind(column, value, root)
                continue
            column = entity.columns.get(name)
            if column is None:
                raise ApiError(
                    400,
                    "0x80060888",
                    f"The property '{name}' does not exist on type 'Microsoft.Dynamics.CRM.{entity.logical}'. "
                    "Make sure to only use property names that are defined by the type.",
                )
            if column.kind in ("guid", "datetime", "version"):
                continue  # system columns: Dataverse ignores what a client sends for them
            values[name] = self._typed(entity, name, column, value)
        return values

    def _typed(self, entity: Entity, name: str, column: Column, value: Any) -> Any:
        def refuse(edm: str) -> ApiError:
            return ApiError(
                400,
                "0x80048d19",
                f"Error identified in Payload provided by the user for Entity :'{entity.entity_set}', For more "
                f"information on this error please follow this help link https://go.microsoft.com/fwlink/?linkid=2195293"
                f"  ---->  InnerException : Microsoft.OData.ODataException: Cannot convert the literal '{value}' to "
                f"the expected type '{edm}'.",
            )

        if value is None:
            return None
        if column.kind in ("string", "memo"):
            if not isinstance(value, str):
                raise refuse("Edm.String")
            if len(value) > column.size:
                raise ApiError(
                    400,
                    "0x80044331",
                    f"A validation error occurred. The length of the '{name}' attribute of the '{entity.logical}' "
                    f"entity exceeded the maximum allowed length of '{column.size}'.",
                )
            return value
        if column.kind == "decimal":
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise refuse("Edm.Decimal")
            return round(float(value), column.precision)
        if column.kind == "money":
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise refuse("Edm.Decimal")
            return float(value)
        if column.kind in ("int", "option"):
            if isinstance(value, bool) or not isinstance(value, int):
                raise refuse("Edm.Int32")
            if column.kind == "option" and value not in column.options:
                raise ApiError(
                    400,
                    "0x80044331",
                    f"A validation error occurred. The value {value} of '{name}' on record of type "
                    f"'{entity.logical}' is outside the valid range.",
                )
            return value
        if column.kind == "date":
            try:
                return date.fromisoformat(str(value)[:10]).isoformat()
            except ValueError:
                raise refuse("Edm.Date") from None
        if column.kind == "bool":
            if not isinstance(value, bool):
                raise refuse("Edm.Boolean")
            return value
        return value

    def _resolve_bind(self, column: Column, value: Any, root: str) -> str:
        text = str(value or "")
        path = urlsplit(text).path if "://" in text else text
        path = path.split(API, 1)[-1].lstrip("/")
        name, _, key = path.partition("(")
        target = self.entities.get(name)
        if target is None or target.entity_set != column.target or not key.endswith(")"):
            raise ApiError(400, "0x80060888", f"The entity reference '{text}' is not valid for this lookup.")
        row = self._find(target, unquote(key[:-1]))
        if row is None:
            shown = unquote(key[:-1])
            if "=" in shown:
                raise ApiError(
                    404,
                    "0x80040217",
                    f"A record with the specified key values does not exist in {target.logical} entity",
                )
            raise ApiError(404, "0x80040217", f"{target.logical} With Ids = {shown} Does Not Exist")
        return row[target.primary_id]

    def _close_opportunity(self, action: str, body: Any, root: str) -> tuple[int, dict[str, str], Any]:
        won = action == "WinOpportunity"
        if not isinstance(body, dict) or not isinstance(body.get("OpportunityClose"), dict):
            raise ApiError(400, "0x80040203", f"{action} requires OpportunityClose and Status.")
        status = body.get("Status")
        allowed = (3,) if won else (4, 5)
        if status not in (*allowed, -1):
            raise ApiError(
                400,
                "0x80040203",
                f"{status} is not a valid status code for state code OpportunityState.{'Won' if won else 'Lost'}",
            )
        close = body["OpportunityClose"]
        bind = close.get("opportunityid@odata.bind")
        opportunities = self.entities["opportunities"]
        target_id = self._resolve_bind(Column("lookup", target="opportunities"), bind, root) if bind else None
        if target_id is None:
            raise ApiError(400, "0x80040203", "OpportunityClose must name its opportunity (opportunityid@odata.bind).")
        row = self.tables["opportunities"][target_id]
        if row["statecode"] != 0:
            raise ApiError(400, "0x80040203", "The opportunity is already closed.")
        amount = close.get("actualrevenue")
        row.update(
            statecode=1 if won else 2,
            statuscode=(3 if won else 4) if status == -1 else status,
            actualvalue=float(amount) if isinstance(amount, int | float) else row.get("estimatedvalue"),
            actualclosedate=str(close.get("actualend") or date.today().isoformat())[:10],
            closeprobability=100 if won else 0,
            modifiedon=iso_z(datetime.now(UTC)),
            versionnumber=self._next_version(),
        )
        self.closures.append(
            {"activityid": str(uuid.uuid4()), "subject": close.get("subject"), "opportunityid": target_id, "won": won}
        )
        self._notify(opportunities, row, "Win" if won else "Lose")
        return 204, {}, None
