"""The Acumatica sandbox's tenant: customers, projects, employees and AR invoices seeded from the firm's ERP
history, and PUT's upsert by key fields on them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from connectors.acumatica.sandbox.schema import (
    CUSTOMER_CLASSES,
    DETAIL_FIELDS,
    EMPLOYEE_CLASSES,
    FIELDS,
    KEYS,
    LINKED_FIELDS,
    PROJECT_STATUSES,
    READ_ONLY,
    SEED_EPOCH,
    AcumaticaError,
    Unprocessable,
    date_value,
    money,
    stamp,
)


def _guid(kind: str, n: Any) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"acumatica:{kind}:{n}"))


class AcumaticaState:
    """The tenant's records, by entity and id; `self.lock` guards them."""

    def reset_state(self) -> None:
        self.tables: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in KEYS}
        self.sessions: dict[str, dict[str, Any]] = {}
        self.logins = self.logouts = self.refused_logins = 0
        self.next_reference = 1
        self._seed()

    def _put_row(self, entity: str, row: dict[str, Any], moment: datetime) -> dict[str, Any]:
        row.setdefault("id", str(uuid.uuid4()))
        row["LastModifiedDateTime"] = stamp(moment)
        self.tables[entity][row["id"]] = row
        return row

    def _seed(self) -> None:
        firm, minute = self.firm, 0

        def at() -> datetime:
            nonlocal minute
            minute += 1
            return SEED_EPOCH + timedelta(minutes=minute)

        for customer in firm.customers():
            address = customer.get("billing_address") or {}
            self._put_row(
                "Customer",
                {
                    "id": _guid("customer", customer["id"]),
                    "CustomerID": customer["number"],
                    "CustomerName": customer["name"],
                    "CustomerClass": "DEFAULT" if customer["currency"] == "USD" else "INTL",
                    "Status": "Active",
                    "CurrencyID": customer["currency"],
                    "Terms": customer["payment_terms"],
                    "MainContact": {
                        "Email": "",
                        "Phone1": customer["phone"],
                        "WebSite": f"www.{customer['domain']}",
                        "Address": {
                            "AddressLine1": address.get("street"),
                            "City": address.get("city"),
                            "State": address.get("region") or "",
                            "PostalCode": address.get("postal_code"),
                            "Country": address.get("country"),
                        },
                    },
                },
                at(),
            )
        for project in firm.erp_projects():
            customer = firm.customers()[project["customer_id"] - 1]
            self._put_row(
                "Project",
                {
                    "id": _guid("project", project["id"]),
                    "ProjectID": project["code"],
                    "Description": project["name"],
                    "Customer": customer["number"],
                    "Status": "Active",
                    "Hold": False,
                    "ProjectTemplateID": None,
                    "ExternalRefNbr": None,
                },
                at(),
            )
        for person in firm.erp_people():
            self._put_row(
                "Employee",
                {
                    "id": _guid("employee", person["id"]),
                    "EmployeeID": person["employee_number"],
                    "EmployeeName": person["display_name"],
                    "Status": person["status"],
                    "ContactInfo": {
                        "FirstName": person["first_name"],
                        "LastName": person["last_name"],
                        "Email": person["work_email"],
                        "JobTitle": person["job_title"],
                    },
                    "EmployeeSettings": {
                        "Branch": "HQ",
                        "Department": person["department"],
                        "EmployeeClass": "EMPSTAND",
                        "Calendar": "MAIN",
                    },
                },
                at(),
            )
        for invoice in firm.erp_invoices():
            customer = firm.customers()[invoice["customer_id"] - 1]
            amount = money(invoice["amount"])
            self._put_row(
                "Invoice",
                {
                    "id": _guid("invoice", invoice["number"]),
                    "Type": "Invoice",
                    "ReferenceNbr": invoice["number"],
                    "Customer": customer["number"],
                    "Date": date_value(invoice["date"]),
                    "DueDate": date_value(invoice["date"]),
                    "Description": invoice["description"],
                    "CustomerOrder": None,
                    "Hold": False,
                    "Status": "Closed",
                    "Amount": amount,
                    "Balance": Decimal("0.00"),
                    "Details": [
                        {
                            "id": _guid("invoice-line", invoice["number"]),
                            "LineNbr": 1,
                            "TransactionDescription": invoice["description"],
                            "Qty": Decimal(invoice["quantity"]),
                            "UnitPrice": Decimal(invoice["rate"]),
                            "Amount": amount,
                        }
                    ],
                },
                at(),
            )

    def seed(self, volumes: dict[str, int]) -> dict[str, int]:
        """Grow customers to the given total with plain synthetic ones (volume and paging tests)."""
        unknown = set(volumes) - {"customers"}
        if unknown:
            raise ValueError(f"the acumatica sandbox seeds customers, not {sorted(unknown)}")
        table = self.tables["Customer"]
        for n in range(len(table), volumes.get("customers", len(table))):
            self._put_row(
                "Customer",
                {
                    "id": _guid("volume-customer", n),
                    "CustomerID": f"V{n:06d}",
                    "CustomerName": f"Volume Customer {n:06d}",
                    "CustomerClass": "DEFAULT",
                    "Status": "Active",
                    "CurrencyID": "USD",
                    "Terms": "Net 30",
                    "MainContact": {"Email": "", "Phone1": "", "WebSite": "", "Address": {}},
                },
                SEED_EPOCH + timedelta(days=400, seconds=n),
            )
        return {"customers": len(table)}

    # -- reads ---------------------------------------------------------------------------------------------------
    def by_key(self, entity: str, key: dict[str, Any]) -> dict[str, Any] | None:
        wanted = {k: str(v).upper() for k, v in key.items()}
        for row in self.tables[entity].values():
            if all(str(row.get(k) or "").upper() == v for k, v in wanted.items()):
                return row
        return None

    def sorted_rows(self, entity: str) -> list[dict[str, Any]]:
        """Rows in key order, as a screen's primary view lists them."""
        return sorted(self.tables[entity].values(), key=lambda row: tuple(str(row.get(k) or "") for k in KEYS[entity]))

    # -- PUT: insert or update by key fields -------------------------------------------------------------------
    def upsert(self, entity: str, values: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """Apply one PUT body (already unwrapped); returns the stored row and whether it was created."""
        self._check_fields(entity, values)
        row = None
        if values.get("id"):
            row = self.tables[entity].get(str(values["id"]))
            if row is None:
                raise AcumaticaError(500, f"No entity satisfies the condition. (id {values['id']})")
        elif all(values.get(k) for k in KEYS[entity]):
            row = self.by_key(entity, {k: values[k] for k in KEYS[entity]})
        if row is None and entity == "Invoice" and values.get("ReferenceNbr"):
            raise Unprocessable({"ReferenceNbr": f"'{values['ReferenceNbr']}' cannot be found in the system."})
        created = row is None
        candidate = self._new_row(entity) if created else _deep_copy(row)
        for name, value in values.items():
            if name in ("id", "rowNumber", "Details"):
                continue
            if isinstance(value, dict) and name in LINKED_FIELDS:
                current = candidate.get(name) or {}
                candidate[name] = {**current, **value}
            else:
                # Customer, project and employee ids have input masks that upper-case them; document numbers not.
                upper = name in KEYS[entity] and entity != "Invoice" and isinstance(value, str)
                candidate[name] = value.upper() if upper else value
        if entity == "Invoice":
            self._invoice(candidate, values.get("Details"), created=created, before=row)
        errors = self._validate(entity, candidate)
        if errors:
            raise Unprocessable(errors)
        if created:
            if entity == "Invoice":
                candidate["ReferenceNbr"] = f"AR{self.next_reference:06d}"
                self.next_reference += 1
            return self._put_row(entity, candidate, datetime.now(UTC)), True
        if _comparable(candidate) != _comparable(row):
            self._put_row(entity, candidate, datetime.now(UTC))
            return candidate, False
        return row, False

    def _check_fields(self, entity: str, values: dict[str, Any]) -> None:
        for name, value in values.items():
            if name in ("id", "rowNumber", "note", "custom", "_links", "LastModifiedDateTime"):
                continue
            if name not in FIELDS[entity]:
                raise AcumaticaError(400, f"The {name} field was not found in the {entity} entity.")
            if name in READ_ONLY[entity]:
                raise AcumaticaError(400, f"The {name} field of the {entity} entity cannot be changed.")
            if name in LINKED_FIELDS:
                if not isinstance(value, dict):
                    raise AcumaticaError(400, f"{name} is a linked entity: give its fields as an object.")
                for inner in value:
                    if inner not in LINKED_FIELDS[name]:
                        raise AcumaticaError(400, f"The {inner} field was not found in the {name} entity.")
            if name == "Details":
                for line in value or []:
                    unknown = set(line) - DETAIL_FIELDS
                    if unknown:
                        raise AcumaticaError(
                            400, f"The {sorted(unknown)[0]} field was not found in the Details entity."
                        )

    def _new_row(self, entity: str) -> dict[str, Any]:
        if entity == "Customer":
            return {
                "CustomerClass": "DEFAULT",
                "Status": "Active",
                "CurrencyID": "USD",
                "Terms": "Net 30",
                "MainContact": {},
            }
        if entity == "Project":
            return {"Status": "In Planning", "Hold": True, "ProjectTemplateID": None, "ExternalRefNbr": None}
        if entity == "Employee":
            return {"Status": "Active", "ContactInfo": {}, "EmployeeSettings": {"Calendar": "MAIN"}}
        return {"Type": "Invoice", "Hold": True, "Status": "On Hold", "Details": [], "CustomerOrder": None}

    def _invoice(self, row: dict[str, Any], details: Any, *, created: bool, before: dict[str, Any] | None) -> None:
        if before is not None and before.get("Status") in ("Open", "Closed", "Voided"):
            raise Unprocessable({"Status": f"The document {before['ReferenceNbr']} is released and cannot be changed."})
        for name in ("Date", "DueDate"):
            if row.get(name):
                row[name] = date_value(str(row[name]))
        lines = [dict(line) for line in row.get("Details") or []]
        for line in details or []:
            if line.get("delete"):
                lines = [kept for kept in lines if kept["id"] != line.get("id")]
                continue
            existing = next((kept for kept in lines if line.get("id") and kept["id"] == line["id"]), None)
            target = existing if existing is not None else {"id": str(uuid.uuid4())}
            for name, value in line.items():
                if name not in ("id", "delete"):
                    target[name] = value
            if existing is None:
                lines.append(target)
        errors: dict[str, str] = {}
        for number, line in enumerate(lines, 1):
            line["LineNbr"] = number
            try:
                qty = Decimal(str(line.get("Qty") if line.get("Qty") is not None else 1))
                price = Decimal(str(line.get("UnitPrice") if line.get("UnitPrice") is not None else 0))
            except InvalidOperation:
                errors["Details"] = f"Line {number}: Qty and UnitPrice must be numbers."
                continue
            line["Qty"], line["UnitPrice"], line["Amount"] = qty, price, money(qty * price)
        if errors:
            raise Unprocessable(errors)
        row["Details"] = lines
        row["Amount"] = sum((line["Amount"] for line in lines), Decimal("0.00"))
        row["Balance"] = row["Amount"]
        row["Status"] = "On Hold" if row.get("Hold") in (True, "true") else "Balanced"

    def _validate(self, entity: str, row: dict[str, Any]) -> dict[str, str]:
        errors: dict[str, str] = {}
        if entity == "Customer":
            if not row.get("CustomerID"):
                errors["CustomerID"] = "'Customer ID' cannot be empty."
            if not row.get("CustomerName"):
                errors["CustomerName"] = "'Customer Name' cannot be empty."
            if row.get("CustomerClass") not in CUSTOMER_CLASSES:
                errors["CustomerClass"] = f"Customer Class '{row.get('CustomerClass')}' cannot be found in the system."
        elif entity == "Project":
            if not row.get("ProjectID"):
                errors["ProjectID"] = "'Project ID' cannot be empty."
            if row.get("Status") not in PROJECT_STATUSES:
                errors["Status"] = f"'{row.get('Status')}' is not a valid value for Status."
            self._customer_exists(row, errors)
        elif entity == "Employee":
            if not row.get("EmployeeID"):
                errors["EmployeeID"] = "'Employee ID' cannot be empty."
            contact, settings = row.get("ContactInfo") or {}, row.get("EmployeeSettings") or {}
            if not contact.get("LastName"):
                errors["ContactInfo.LastName"] = "'Last Name' cannot be empty."
            if settings.get("EmployeeClass") not in EMPLOYEE_CLASSES:
                errors["EmployeeSettings.EmployeeClass"] = "'Employee Class' cannot be empty or is unknown."
            if not settings.get("Branch"):
                errors["EmployeeSettings.Branch"] = "'Branch' cannot be empty."
            row["EmployeeName"] = " ".join(p for p in (contact.get("FirstName"), contact.get("LastName")) if p)
        elif entity == "Invoice":
            if not row.get("Customer"):
                errors["Customer"] = "'Customer' cannot be empty."
            else:
                self._customer_exists(row, errors)
            if not row.get("Date"):
                errors["Date"] = "'Date' cannot be empty."
        return errors

    def _customer_exists(self, row: dict[str, Any], errors: dict[str, str]) -> None:
        if row.get("Customer") and self.by_key("Customer", {"CustomerID": row["Customer"]}) is None:
            errors["Customer"] = f"Customer '{row['Customer']}' cannot be found in the system."


def _deep_copy(row: dict[str, Any]) -> dict[str, Any]:
    copied = {}
    for name, value in row.items():
        if isinstance(value, dict):
            copied[name] = dict(value)
        elif isinstance(value, list):
            copied[name] = [dict(v) for v in value]
        else:
            copied[name] = value
    return copied


def _comparable(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k != "LastModifiedDateTime"}
