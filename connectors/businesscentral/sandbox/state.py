"""The Business Central sandbox's company: tables seeded from the firm's ERP history, and the writes on them."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from connectors.businesscentral.sandbox.schema import (
    COMPUTED,
    GL_ACCOUNTS,
    LOCAL_CURRENCY,
    PAYMENT_TERMS,
    READ_ONLY,
    SCHEMA,
    SEED_EPOCH,
    TABLE_NAMES,
    ApiError,
    _typed,
    guid,
    line_amount,
)
from connectors.sandbox.odata import iso_z


class BusinessCentralState:
    """The company's tables and their writes; `self.lock` guards them."""

    def reset_state(self) -> None:
        self.version = 0
        self.tables: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in SCHEMA}
        self.subscriptions: dict[str, dict[str, Any]] = {}
        self.deliveries: list[dict[str, Any]] = []
        self.handshakes: list[dict[str, Any]] = []
        self.next_invoice = 103001
        self.entra.revoke_all()
        self._seed()

    def _stamp(self, row: dict[str, Any], moment: datetime | None = None) -> None:
        self.version += 1
        row["_version"] = self.version
        row["lastModifiedDateTime"] = iso_z(moment or datetime.now(UTC))

    def _put(self, table: str, row: dict[str, Any], moment: datetime | None = None) -> dict[str, Any]:
        full = {name: None for name in SCHEMA[table]}
        full.update(row)
        self._stamp(full, moment)
        self.tables[table][full["id"]] = full
        return full

    def _seed(self) -> None:
        firm = self.firm
        for n, (code, name) in enumerate((("GBP", "British Pound"), ("EUR", "Euro")), 1):
            self._put("currencies", {"id": guid("currency", n), "code": code, "displayName": name}, SEED_EPOCH)
        for n, (code, name, formula) in enumerate(PAYMENT_TERMS, 1):
            self._put(
                "paymentTerms",
                {"id": guid("terms", n), "code": code, "displayName": name, "dueDateCalculation": formula},
                SEED_EPOCH,
            )
        for n, (number, name) in enumerate(GL_ACCOUNTS, 1):
            account = {"id": guid("account", n), "number": number, "displayName": name, "category": "Income"}
            self._put("accounts", {**account, "blocked": False}, SEED_EPOCH)
        terms = {r["displayName"]: r["id"] for r in self.tables["paymentTerms"].values()}
        currencies = {r["code"]: r["id"] for r in self.tables["currencies"].values()}
        step = 0
        for customer in firm.customers():
            address = customer.get("billing_address") or {}
            currency = customer.get("currency") if customer.get("currency") != LOCAL_CURRENCY else ""
            self._put(
                "customers",
                {
                    "id": guid("customer", customer["id"]),
                    "number": customer["number"],
                    "displayName": customer["name"],
                    "type": "Company",
                    "addressLine1": address.get("street"),
                    "addressLine2": "",
                    "city": address.get("city"),
                    "state": address.get("region") or "",
                    "country": address.get("country"),
                    "postalCode": address.get("postal_code"),
                    "phoneNumber": customer.get("phone"),
                    "email": "",
                    "website": f"www.{customer['domain']}" if customer.get("domain") else "",
                    "taxRegistrationNumber": "",
                    "currencyCode": currency,
                    "currencyId": currencies.get(currency, "00000000-0000-0000-0000-000000000000"),
                    "paymentTermsId": terms.get(customer.get("payment_terms") or "", terms["Net 30"]),
                    "blocked": " ",
                },
                SEED_EPOCH + timedelta(minutes=step),
            )
            step += 1
        for project in firm.erp_projects():
            self._put(
                "projects",
                {"id": guid("project", project["id"]), "number": project["code"], "displayName": project["name"][:100]},
                SEED_EPOCH + timedelta(minutes=step),
            )
            step += 1
        for person in firm.erp_people():
            self._put(
                "employees",
                {
                    "id": guid("employee", person["id"]),
                    "number": person["employee_number"],
                    "displayName": person["display_name"],
                    "givenName": person["first_name"],
                    "middleName": "",
                    "surname": person["last_name"],
                    "jobTitle": person["job_title"][:30],
                    "city": person["location"],
                    "country": person["country"],
                    "email": person["work_email"],
                    "employmentDate": person["hire_date"],
                    "terminationDate": person["termination_date"] or "0001-01-01",
                    "status": person["status"],
                    "birthDate": "0001-01-01",
                },
                SEED_EPOCH + timedelta(minutes=step),
            )
            step += 1
        by_firm_id = {c["id"]: c for c in firm.customers()}
        for invoice in firm.erp_invoices():
            customer = by_firm_id[invoice["customer_id"]]
            invoice_id = guid("invoice", invoice["number"])
            amount = float(invoice["amount"])
            self._put(
                "salesInvoices",
                {
                    "id": invoice_id,
                    "number": invoice["number"],
                    "externalDocumentNumber": "",
                    "invoiceDate": invoice["date"],
                    "postingDate": invoice["date"],
                    "dueDate": invoice["date"],
                    "customerId": guid("customer", customer["id"]),
                    "customerNumber": customer["number"],
                    "customerName": customer["name"],
                    "currencyCode": invoice["currency"] if invoice["currency"] != LOCAL_CURRENCY else "",
                    "status": "Paid",
                    "totalAmountExcludingTax": amount,
                    "totalAmountIncludingTax": amount,
                },
                SEED_EPOCH + timedelta(minutes=step),
            )
            self.tables["salesInvoiceLines"][guid("invoice-line", invoice["number"])] = {
                "id": guid("invoice-line", invoice["number"]),
                "documentId": invoice_id,
                "sequence": 10000,
                "lineType": "Account",
                "lineObjectNumber": "40100",
                "description": invoice["description"][:100],
                "quantity": float(invoice["quantity"]),
                "unitPrice": float(invoice["rate"]),
                "amountExcludingTax": amount,
                "netAmount": amount,
                "_version": 0,
            }
            step += 1

    def seed(self, volumes: dict[str, int]) -> dict[str, int]:
        """Grow customers to the given total with plain synthetic ones (volume and paging tests)."""
        unknown = set(volumes) - {"customers"}
        if unknown:
            raise ValueError(f"the businesscentral sandbox seeds customers, not {sorted(unknown)}")
        table = self.tables["customers"]
        for n in range(len(table), volumes.get("customers", len(table))):
            self._put(
                "customers",
                {
                    "id": guid("volume-customer", n),
                    "number": f"V{n:06d}",
                    "displayName": f"Volume Customer {n:06d}",
                    "type": "Company",
                    "blocked": " ",
                },
                SEED_EPOCH + timedelta(days=400, seconds=n),
            )
        return {"customers": len(table)}

    def _add_lines(self, invoice: dict[str, Any], parsed_lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if not parsed_lines:
            return []
        last = max((line["sequence"] for line in self._lines(invoice["id"])), default=0)
        added = []
        for offset, line in enumerate(parsed_lines, 1):
            amount = line_amount(line.get("quantity"), line.get("unitPrice"))
            line_id = str(uuid.uuid4())
            added.append(
                {
                    **{n: None for n in SCHEMA["salesInvoiceLines"]},
                    **line,
                    "id": line_id,
                    "documentId": invoice["id"],
                    "sequence": last + offset * 10000,
                    "amountExcludingTax": amount,
                    "netAmount": amount,
                    "_version": 0,
                }
            )
            self.tables["salesInvoiceLines"][line_id] = added[-1]
        return added

    def _retotal(self, invoice: dict[str, Any]) -> None:
        total = float(sum((Decimal(str(line["netAmount"])) for line in self._lines(invoice["id"])), Decimal(0)))
        if total != invoice.get("totalAmountExcludingTax"):
            invoice["totalAmountExcludingTax"] = invoice["totalAmountIncludingTax"] = total
            self._stamp(invoice)
            self._notify("salesInvoices", invoice["id"], "updated", None)

    # -- writes --------------------------------------------------------------------------------------------------
    def _values(self, table: str, payload: Any, *, creating: bool) -> dict[str, Any]:
        if not isinstance(payload, dict):
            raise ApiError(400, "BadRequest", "Invalid Request Body")
        values: dict[str, Any] = {}
        for name, value in payload.items():
            if name.startswith("@odata.") or (table == "salesInvoices" and name == "salesInvoiceLines"):
                continue
            spec = SCHEMA[table].get(name)
            if spec is None:
                raise ApiError(
                    400,
                    "BadRequest",
                    f"The property '{name}' does not exist on type 'Microsoft.NAV.{table[:-1]}'. Make sure to only use property names that are defined by the type.",
                )
            if (
                name in READ_ONLY
                or name in COMPUTED.get(table, set())
                and not (table == "salesInvoices" and name == "customerId")
            ):
                raise ApiError(400, "BadRequest_PropertyReadOnly", f"The property '{name}' is read-only.")
            kind, size = spec
            values[name] = _typed(name, kind, size, value)
        if table == "salesInvoices":
            self._invoice_customer(values, creating=creating)
        if "currencyCode" in values and table == "customers":
            code = values["currencyCode"] or ""
            found = next((r for r in self.tables["currencies"].values() if r["code"] == code), None)
            if code and found is None:
                raise ApiError(
                    400,
                    "Internal_RecordNotFound",
                    f"The Currency does not exist. Identification fields and values: Code='{code}'",
                )
            values["currencyId"] = found["id"] if found else "00000000-0000-0000-0000-000000000000"
        if values.get("paymentTermsId") and values["paymentTermsId"] not in self.tables["paymentTerms"]:
            raise ApiError(
                400,
                "Internal_RecordNotFound",
                f"The Payment Terms does not exist. Identification fields and values: SystemId='{values['paymentTermsId']}'",
            )
        return values

    def _invoice_customer(self, values: dict[str, Any], *, creating: bool) -> None:
        number, customer_id = values.get("customerNumber"), values.pop("customerId", None)
        customer = None
        if number:
            customer = next((c for c in self.tables["customers"].values() if c["number"] == number), None)
            if customer is None:
                raise ApiError(
                    400,
                    "Internal_RecordNotFound",
                    f"The Customer does not exist. Identification fields and values: No.='{number}'",
                )
        elif customer_id:
            customer = self.tables["customers"].get(customer_id)
            if customer is None:
                raise ApiError(
                    400,
                    "Internal_RecordNotFound",
                    f"The Customer does not exist. Identification fields and values: SystemId='{customer_id}'",
                )
        elif creating:
            raise ApiError(
                400,
                "Application_FieldValidationException",
                "Sell-to Customer No. must have a value in Sales Header: Document Type=Invoice, No.=. It cannot be zero or empty.",
            )
        if customer is not None:
            values.update(
                customerId=customer["id"], customerNumber=customer["number"], customerName=customer["displayName"]
            )

    def _check_unique(self, table: str, row: dict[str, Any]) -> None:
        key = "number" if table != "salesInvoices" else None
        if key and row.get(key):
            for other in self.tables[table].values():
                if other["id"] != row["id"] and other.get(key) == row[key]:
                    raise ApiError(
                        400,
                        "Internal_EntityWithSameKeyExists",
                        f"The record in table {TABLE_NAMES[table]} already exists. Identification fields and values: No.='{row[key]}'",
                    )

    def _create(self, table: str, payload: Any) -> dict[str, Any]:
        values = self._values(table, payload, creating=True)
        lines = payload.get("salesInvoiceLines") if table == "salesInvoices" else None
        parsed_lines = [self._line_values(line) for line in lines or []]
        row = {name: None for name in SCHEMA[table]}
        row.update(values, id=str(uuid.uuid4()))
        if table == "employees":
            row["displayName"] = " ".join(
                p for p in (row.get("givenName"), row.get("middleName"), row.get("surname")) if p
            )
            row["status"] = row.get("status") or "Active"
        if table == "customers":
            row["type"], row["blocked"] = row.get("type") or "Company", row.get("blocked") or " "
        if table == "salesInvoices":
            row["number"] = str(self.next_invoice)
            self.next_invoice += 1
            row["status"] = "Draft"
            row["invoiceDate"] = row.get("invoiceDate") or date.today().isoformat()
            row["postingDate"] = row.get("postingDate") or row["invoiceDate"]
            row["dueDate"] = row.get("dueDate") or row["invoiceDate"]
        elif not row.get("number"):
            raise ApiError(
                400,
                "Application_FieldValidationException",
                f"No. must have a value in {TABLE_NAMES[table]}: No.=. It cannot be zero or empty.",
            )
        self._check_unique(table, row)
        row = self._put(table, row)
        self._add_lines(row, parsed_lines)
        if table == "salesInvoices":
            total = float(sum((Decimal(str(line["netAmount"])) for line in self._lines(row["id"])), Decimal(0)))
            row["totalAmountExcludingTax"] = row["totalAmountIncludingTax"] = total
        self._notify(table, row["id"], "created", None)
        return row

    def _line_values(self, line: Any) -> dict[str, Any]:
        values = self._values("salesInvoiceLines", line, creating=True)
        if values.get("lineType") not in (None, "Comment") and not values.get("lineObjectNumber"):
            raise ApiError(
                400,
                "Application_FieldValidationException",
                "No. must have a value in Sales Line. It cannot be zero or empty.",
            )
        number, line_type = values.get("lineObjectNumber"), values.get("lineType")
        if line_type == "Account":
            if not any(a["number"] == number for a in self.tables["accounts"].values()):
                raise ApiError(
                    400,
                    "Internal_RecordNotFound",
                    f"The G/L Account does not exist. Identification fields and values: No.='{number}'",
                )
        elif line_type not in (None, "Comment"):
            # The firm sells its people's time, not stock: this company has no items, resources or fixed assets.
            raise ApiError(
                400,
                "Internal_RecordNotFound",
                f"The {line_type} does not exist. Identification fields and values: No.='{number}'",
            )
        return values

    def _update(self, table: str, row: dict[str, Any], payload: Any) -> None:
        values = self._values(table, payload, creating=False)
        candidate = {**row, **values}
        self._check_unique(table, candidate)
        changed = any(row.get(k) != v for k, v in values.items())
        row.update(values)
        if table == "employees":
            row["displayName"] = " ".join(
                p for p in (row.get("givenName"), row.get("middleName"), row.get("surname")) if p
            )
        if changed:
            self._stamp(row)
            self._notify(table, row["id"], "updated", None)
