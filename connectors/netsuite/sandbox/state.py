"""The NetSuite sandbox's records: seeded from the firm, found by id or `eid:`, validated and stored the way
NetSuite does."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from connectors.netsuite.sandbox.schema import (
    BILLING_TERMS_TO_JOB_TYPE,
    CURRENCIES,
    DEPARTMENTS,
    ENTITY_TYPES,
    ITEMS,
    JOB_BILLING_TYPES,
    LINE_SCHEMA,
    READ_ONLY,
    REQUIRED,
    SCHEMA,
    SEED_EPOCH,
    SUBSIDIARIES,
    TERMS,
    ApiError,
    _invalid_value,
    _now,
)
from connectors.sandbox.firm import minute_stamps


class NetSuiteRecords:
    """The account's records and their mutations; `self.lock` guards them."""

    def reset_state(self) -> None:
        self.tokens: dict[str, float] = {}
        self.idempotency_keys: dict[str, tuple[str, int]] = {}
        self.records: dict[str, dict[int, dict[str, Any]]] = {t: {} for t in SCHEMA}
        self.external_index: dict[str, dict[str, int]] = {t: {} for t in SCHEMA}
        self._next_entity_id = 100
        self._next_transaction_id = 5000
        self._seed()
        with self._inflight_lock:
            self.max_inflight = 0
            self.concurrency_rejections = 0

    def _seed(self) -> None:
        firm = self.firm
        subsidiary_by_country = {country: sid for sid, (_n, _c, country) in SUBSIDIARIES.items()}
        term_by_name = {name: tid for tid, (name, _days) in TERMS.items()}
        department_by_name = {name: did for did, name in DEPARTMENTS.items()}
        stamp = minute_stamps(SEED_EPOCH)

        customer_ids: dict[int, int] = {}
        for customer in firm.customers():
            subsidiary = subsidiary_by_country.get(customer["billing_address"]["country"], 1)
            address = customer["billing_address"]
            record = self._insert(
                "customer",
                {
                    "entityId": customer["number"],
                    "companyName": customer["name"],
                    "phone": customer["phone"],
                    "url": f"https://{customer['domain']}",
                    "email": f"accounts@{customer['domain']}",
                    "terms": str(term_by_name.get(customer["payment_terms"], 2)),
                    "subsidiary": str(subsidiary),
                    "currency": str(SUBSIDIARIES[subsidiary][1]),
                    "isInactive": False,
                    "addressBook": {
                        "items": [
                            {
                                "defaultBilling": True,
                                "addressBookAddress": {
                                    "addr1": address["street"],
                                    "city": address["city"],
                                    "state": address["region"],
                                    "zip": address["postal_code"],
                                    "country": address["country"],
                                },
                            }
                        ]
                    },
                    "externalId": customer["number"],
                },
                stamp(),
            )
            customer_ids[customer["id"]] = record["id"]

        people = firm.erp_people()  # the latest hires are not in the ERP yet
        employee_ids: dict[str, int] = {}
        for person in people:
            subsidiary = subsidiary_by_country.get(person["country"], 1)
            record = self._insert(
                "employee",
                {
                    "entityId": person["employee_number"],
                    "firstName": person["first_name"],
                    "lastName": person["last_name"],
                    "email": person["work_email"],
                    "title": person["job_title"],
                    "department": str(department_by_name[person["department"]]),
                    "subsidiary": str(subsidiary),
                    "laborCost": Decimal(person["cost_rate"]) if person["cost_rate"] else None,
                    "hireDate": date.fromisoformat(person["hire_date"]),
                    "releaseDate": date.fromisoformat(person["termination_date"])
                    if person["termination_date"]
                    else None,
                    "isInactive": person["status"] != "Active",
                    "externalId": person["employee_number"],
                },
                stamp(),
            )
            employee_ids[person["work_email"]] = record["id"]
        for person in people:
            supervisor = employee_ids.get(person["supervisor_email"] or "")
            if supervisor:
                self.records["employee"][employee_ids[person["work_email"]]]["supervisor"] = str(supervisor)

        job_ids: dict[int, int] = {}
        for project in firm.erp_projects():  # the last won deals are not set up in the ERP yet
            parent = self.records["customer"][customer_ids[project["customer_id"]]]
            manager = employee_ids.get(project["manager_email"])
            job = self._insert(
                "job",
                {
                    "entityId": project["code"],
                    "companyName": project["name"],
                    "parent": str(parent["id"]),
                    "startDate": date.fromisoformat(project["start_date"]),
                    "projectedEndDate": date.fromisoformat(project["end_date"]),
                    "jobBillingType": BILLING_TERMS_TO_JOB_TYPE.get(project["billing_terms"], "TM"),
                    "projectManager": str(manager) if manager else None,
                    "currency": parent["currency"],
                    "subsidiary": parent["subsidiary"],
                    "isInactive": False,
                    "externalId": project["code"],
                },
                stamp(),
            )
            job_ids[project["id"]] = job["id"]

        # Invoices from before the firm kept its time in the PSA: they bill months no time entry falls in.
        for invoice in firm.erp_invoices():
            customer = self.records["customer"][customer_ids[invoice["customer_id"]]]
            day = date.fromisoformat(invoice["date"])
            self._insert(
                "invoice",
                {
                    "tranId": invoice["number"],
                    "entity": str(customer["id"]),
                    "tranDate": day,
                    "dueDate": day + timedelta(days=TERMS[int(customer["terms"])][1]),
                    "terms": customer["terms"],
                    "currency": customer["currency"],
                    "subsidiary": customer["subsidiary"],
                    "memo": invoice["description"],
                    "item": [
                        {
                            "item": "1",
                            "quantity": Decimal(invoice["quantity"]),
                            "rate": Decimal(invoice["rate"]),
                            "amount": Decimal(invoice["amount"]),
                            "description": invoice["description"],
                            "job": str(job_ids[invoice["project_id"]]),
                        }
                    ],
                    "externalId": invoice["number"],
                },
                stamp(),
            )

    def _insert(self, record_type: str, values: dict[str, Any], moment: datetime) -> dict[str, Any]:
        if record_type in ENTITY_TYPES:
            self._next_entity_id += 1
            record_id = self._next_entity_id
        else:
            self._next_transaction_id += 1
            record_id = self._next_transaction_id
        record = {"id": record_id, **values}
        if record_type == "invoice":
            record["createdDate"] = moment
            record["status"] = "Open"
            record.setdefault("tranId", f"INV{record_id}")
            record["total"] = sum((line.get("amount") or Decimal(0) for line in record.get("item") or []), Decimal(0))
        else:
            record["dateCreated"] = moment
            record.setdefault("entityId", f"{record_type[:3].upper()}{record_id}")
        record["lastModifiedDate"] = moment
        self.records[record_type][record_id] = record
        if record.get("externalId"):
            self.external_index[record_type][str(record["externalId"]).lower()] = record_id
        return record

    def _find(self, record_type: str, key: str) -> dict[str, Any] | None:
        if key.startswith("eid:"):
            record_id = self.external_index[record_type].get(key[len("eid:") :].lower())
        else:
            record_id = int(key) if key.isdigit() else None
        return self.records[record_type].get(record_id) if record_id is not None else None

    # -- validation ----------------------------------------------------------------------------------------------
    def _validate(self, record_type: str, body: dict[str, Any], existing: dict[str, Any] | None) -> dict[str, Any]:
        """Body fields as stored values; raises ApiError the way NetSuite reports the first problem."""
        schema = SCHEMA[record_type]
        values: dict[str, Any] = {}
        for field, value in body.items():
            if field in READ_ONLY:
                continue
            if field.startswith("cust"):
                values[field] = value  # custom fields (custentity_..., custbody_...) are stored as given
                continue
            kind = schema.get(field)
            if kind is None:
                raise ApiError(
                    400,
                    "INVALID_CONTENT",
                    f"Error while accessing resource: Invalid field name '{field}' for record type {record_type}.",
                    field,
                )
            values[field] = self._convert(kind, value, field, field, record_type)

        merged = {**(existing or {}), **values}
        # Defaults NetSuite fills in from related records.
        if record_type == "job" and merged.get("parent"):
            parent = self.records["customer"][int(merged["parent"])]
            merged.setdefault("currency", parent.get("currency"))
            merged.setdefault("subsidiary", parent.get("subsidiary"))
            values.setdefault("currency", merged["currency"])
            values.setdefault("subsidiary", merged["subsidiary"])
        if record_type in ("customer", "employee") and not merged.get("subsidiary"):
            values["subsidiary"] = merged["subsidiary"] = "1"
        if record_type == "customer" and not merged.get("currency"):
            values["currency"] = merged["currency"] = str(SUBSIDIARIES[int(merged["subsidiary"])][1])
        if record_type == "invoice" and merged.get("entity"):
            entity = self._entity(merged["entity"])
            customer = entity if "parent" not in entity else self.records["customer"].get(int(entity["parent"]), entity)
            for field in ("currency", "subsidiary", "terms"):
                if not merged.get(field) and customer.get(field):
                    values[field] = merged[field] = customer[field]
            if not merged.get("tranDate"):
                values["tranDate"] = merged["tranDate"] = _now().date()
            if not merged.get("dueDate"):
                days = TERMS[int(merged["terms"])][1] if merged.get("terms") else 0
                values["dueDate"] = merged["dueDate"] = merged["tranDate"] + timedelta(days=days)
        for field, label in REQUIRED[record_type]:
            if merged.get(field) in (None, "", []):
                raise ApiError(400, "USER_ERROR", f"Please enter value(s) for: {label}.", field)
        return values

    def _convert(self, kind: str, value: Any, field: str, path: str, record_type: str) -> Any:
        if value is None:
            return None
        if kind == "text":
            if not isinstance(value, str | int | float):
                raise _invalid_value(value, field, path)
            return str(value)
        if kind == "raw":
            return value
        if kind == "bool":
            if not isinstance(value, bool):
                raise _invalid_value(value, field, path)
            return value
        if kind == "number":
            try:
                if isinstance(value, bool):
                    raise InvalidOperation
                return Decimal(str(value))
            except InvalidOperation:
                raise _invalid_value(value, field, path) from None
        if kind == "date":
            try:
                return date.fromisoformat(str(value)[:10])
            except ValueError:
                raise _invalid_value(value, field, path) from None
        if kind == "enum":
            if value not in JOB_BILLING_TYPES:
                raise _invalid_value(value, field, path)
            return value
        if kind == "lines":
            return self._lines(value, record_type)
        if kind.startswith("ref:"):
            return self._reference(kind[len("ref:") :], value, field, path)
        raise ValueError(kind)

    def _reference(self, targets: str, value: Any, field: str, path: str) -> str:
        """A reference {"id": ...} (or {"externalId": ...}, unverified) to an existing record, as its id."""
        if not isinstance(value, dict) or not (value.get("id") or value.get("externalId")):
            raise _invalid_value(value, field, path)
        for target in targets.split("|"):
            found = self._lookup(target, value)
            if found is not None:
                return str(found)
        raise _invalid_value(value, field, path)

    def _lookup(self, target: str, value: dict[str, Any]) -> int | None:
        lists = {
            "term": TERMS,
            "currency": CURRENCIES,
            "subsidiary": SUBSIDIARIES,
            "department": DEPARTMENTS,
            "item": ITEMS,
        }
        if value.get("id") not in (None, ""):
            raw = str(value["id"])
            if not raw.isdigit():
                return None
            number = int(raw)
            if target in lists:
                return number if number in lists[target] else None
            return number if number in self.records[target] else None
        if target in lists:
            return None
        return self.external_index[target].get(str(value["externalId"]).lower())

    def _lines(self, value: Any, record_type: str) -> list[dict[str, Any]]:
        items = value.get("items") if isinstance(value, dict) else None
        if not isinstance(items, list):
            raise _invalid_value(value, "item", "item")
        lines = []
        for index, line in enumerate(items):
            path = f"item.items[{index}]"
            if not isinstance(line, dict):
                raise _invalid_value(line, "item", path)
            converted: dict[str, Any] = {}
            for field, item_value in line.items():
                kind = LINE_SCHEMA.get(field)
                if kind is None:
                    if field.startswith("cust"):
                        converted[field] = item_value
                        continue
                    raise ApiError(
                        400,
                        "INVALID_CONTENT",
                        f"Error while accessing resource: Invalid field name '{field}' for sublist item.",
                        f"{path}.{field}",
                    )
                converted[field] = self._convert(kind, item_value, field, f"{path}.{field}", record_type)
            if not converted.get("item"):
                raise ApiError(400, "USER_ERROR", "Please enter value(s) for: Item.", f"{path}.item")
            if converted.get("amount") is None:
                if converted.get("quantity") is None or converted.get("rate") is None:
                    raise ApiError(400, "USER_ERROR", "Please enter value(s) for: Amount.", f"{path}.amount")
                converted["amount"] = (converted["quantity"] * converted["rate"]).quantize(Decimal("0.01"))
            lines.append(converted)
        return lines

    def _entity(self, entity_id: str) -> dict[str, Any]:
        number = int(entity_id)
        return self.records["customer"].get(number) or self.records["job"][number]

    # -- introspection for tests and the demo ---------------------------------------------------------------------
    def count(self, record_type: str) -> int:
        with self.lock:
            return len(self.records[record_type])

    def get_by_external_id(self, record_type: str, external_id: str) -> dict[str, Any] | None:
        with self.lock:
            record = self._find(record_type, f"eid:{external_id}")
            return dict(record) if record else None
