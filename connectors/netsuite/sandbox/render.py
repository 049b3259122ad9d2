"""How the NetSuite sandbox shows its records: record/v1 JSON with references, and the rows SuiteQL reads."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from werkzeug.wrappers import Request

from connectors.netsuite.records import INVOICE_TRANSACTION_TYPE
from connectors.netsuite.sandbox.query import _query_error
from connectors.netsuite.sandbox.schema import (
    CURRENCIES,
    DEPARTMENTS,
    ITEMS,
    LINE_SCHEMA,
    SCHEMA,
    SUBSIDIARIES,
    SUITEQL_COLUMNS,
    TERMS,
    _iso,
)


class NetSuiteRendering:
    """Records as record/v1 JSON and as SuiteQL tables."""

    def _table(self, table: str) -> tuple[list[dict[str, Any]], set[str]]:
        """The rows of a SuiteQL table (typed values) and its column names."""
        if table in SUITEQL_COLUMNS:
            fields = SUITEQL_COLUMNS[table]
            columns = {
                "id",
                "externalid",
                "isinactive",
                "datecreated",
                "lastmodifieddate",
                *(f.lower() for f in fields),
            }
            rows = []
            for record in self.records[table].values():
                row = {f.lower(): record.get(f) for f in fields}
                row.update(
                    id=record["id"],
                    externalid=record.get("externalId"),
                    isinactive="T" if record.get("isInactive") else "F",
                    datecreated=record["dateCreated"],
                    lastmodifieddate=record["lastModifiedDate"],
                )
                rows.append(row)
            return rows, columns
        if table == "transaction":
            columns = {
                "id",
                "tranid",
                "type",
                "entity",
                "trandate",
                "duedate",
                "terms",
                "currency",
                "subsidiary",
                "foreigntotal",
                "memo",
                "status",
                "externalid",
                "createddate",
                "lastmodifieddate",
            }
            rows = [
                {
                    "id": invoice["id"],
                    "tranid": invoice.get("tranId"),
                    "type": INVOICE_TRANSACTION_TYPE,
                    "entity": invoice.get("entity"),
                    "trandate": invoice.get("tranDate"),
                    "duedate": invoice.get("dueDate"),
                    "terms": invoice.get("terms"),
                    "currency": invoice.get("currency"),
                    "subsidiary": invoice.get("subsidiary"),
                    "foreigntotal": invoice.get("total"),
                    "memo": invoice.get("memo"),
                    "status": "A",  # Open
                    "externalid": invoice.get("externalId"),
                    "createddate": invoice["createdDate"],
                    "lastmodifieddate": invoice["lastModifiedDate"],
                }
                for invoice in self.records["invoice"].values()
            ]
            return rows, columns
        lists = {
            "term": [{"id": k, "name": n, "daysuntilnetdue": d} for k, (n, d) in TERMS.items()],
            "currency": [{"id": k, "symbol": s, "name": n} for k, (s, n) in CURRENCIES.items()],
            "subsidiary": [
                {"id": k, "name": n, "currency": str(c), "country": cc} for k, (n, c, cc) in SUBSIDIARIES.items()
            ],
            "department": [{"id": k, "name": n} for k, n in DEPARTMENTS.items()],
            "item": [{"id": k, "itemid": n, "displayname": n, "itemtype": t} for k, (n, t) in ITEMS.items()],
        }
        if table in lists:
            rows = lists[table]
            return rows, set(rows[0])
        raise _query_error(f"Search error occurred: Record '{table}' was not found.")

    def _display(self, column: str, value: Any) -> str | None:
        """BUILTIN.DF: the display name of a reference column's value."""
        if value is None:
            return None
        targets = {
            "terms": "term",
            "currency": "currency",
            "subsidiary": "subsidiary",
            "department": "department",
            "parent": "customer",
            "entity": "customer|job",
            "supervisor": "employee",
            "projectmanager": "employee",
            "item": "item",
        }
        target = targets.get(column)
        if target is None:
            return str(value)
        return self._ref_name(target, str(value)) or str(value)

    # -- rendering -----------------------------------------------------------------------------------------------
    def _ref_name(self, target: str, record_id: str) -> str | None:
        number = int(record_id) if str(record_id).isdigit() else -1
        for one in target.split("|"):
            if one == "term" and number in TERMS:
                return TERMS[number][0]
            if one == "currency" and number in CURRENCIES:
                return CURRENCIES[number][1]
            if one == "subsidiary" and number in SUBSIDIARIES:
                return SUBSIDIARIES[number][0]
            if one == "department" and number in DEPARTMENTS:
                return DEPARTMENTS[number]
            if one == "item" and number in ITEMS:
                return ITEMS[number][0]
            record = self.records.get(one, {}).get(number)
            if record is not None:
                if one == "customer":
                    return record.get("companyName")
                if one == "job":
                    return f"{record.get('entityId')} {record.get('companyName')}"
                if one == "employee":
                    return f"{record.get('firstName')} {record.get('lastName')}"
        return None

    def _ref(self, request: Request, target: str, record_id: str) -> dict[str, Any]:
        kind = target.split("|")[0]
        if "|" in target and int(record_id) in self.records["job"]:
            kind = "job"
        href = f"{request.host_url.rstrip('/')}/services/rest/record/v1/{kind}/{record_id}"
        return {
            "links": [{"rel": "self", "href": href}],
            "id": str(record_id),
            "refName": self._ref_name(target, record_id),
        }

    def _render(self, request: Request, record_type: str, record: dict[str, Any], *, expand: bool) -> dict[str, Any]:
        self_href = f"{request.host_url.rstrip('/')}/services/rest/record/v1/{record_type}/{record['id']}"
        out: dict[str, Any] = {"links": [{"rel": "self", "href": self_href}], "id": str(record["id"])}
        for field, kind in SCHEMA[record_type].items():
            value = record.get(field)
            if value is None:
                continue
            if kind.startswith("ref:"):
                out[field] = self._ref(request, kind[len("ref:") :], value)
            elif kind == "lines":
                href = f"{self_href}/item"
                if not expand:
                    out[field] = {"links": [{"rel": "self", "href": href}]}
                    continue
                lines = []
                for line in value:
                    rendered = {}
                    for line_field, line_kind in LINE_SCHEMA.items():
                        line_value = line.get(line_field)
                        if line_value is None:
                            continue
                        if line_kind.startswith("ref:"):
                            rendered[line_field] = self._ref(request, line_kind[len("ref:") :], line_value)
                        else:
                            rendered[line_field] = float(line_value) if isinstance(line_value, Decimal) else line_value
                    lines.append(rendered)
                out[field] = {
                    "links": [{"rel": "self", "href": href}],
                    "items": lines,
                    "count": len(lines),
                    "hasMore": False,
                    "offset": 0,
                    "totalResults": len(lines),
                }
            elif isinstance(value, Decimal):
                out[field] = float(value)
            elif isinstance(value, date):
                out[field] = value.isoformat()
            else:
                out[field] = value
        for field, value in record.items():
            if field.startswith("cust"):
                out[field] = value
        for field in ("dateCreated", "createdDate", "lastModifiedDate"):
            if field in record:
                out[field] = _iso(record[field])
        if record_type == "invoice":
            out["total"] = float(record.get("total") or 0)
            out["status"] = {"id": "A", "refName": record.get("status", "Open")}
        return out
