"""Kantata time entries, expenses and external references: bulk create, show, update and reference upserts."""

from __future__ import annotations

from datetime import date

from werkzeug.wrappers import Request, Response

from connectors.kantata.sandbox.state import (
    CURRENCY_SYMBOLS,
    MAX_BULK,
    USER_BASE,
    LazyTable,
    _cents,
    errors,
    validation,
)
from connectors.sandbox.app import json_response
from connectors.sandbox.firm import convert


class KantataLineItems:
    """Time entries and expenses (seeded ones by index, written ones stored) and their references."""

    # -- time entries and expenses ----------------------------------------------------------------------------
    def time_entries(self, request: Request) -> Response:
        if request.method == "GET":
            return self._lazy_listing(request, self.time_entry_table, "TimeEntry", "date_performed:desc")
        return self._lazy_create(request, self.time_entry_table, "time_entry", "TimeEntry")

    def time_entry(self, request: Request, record_id: str) -> Response:
        return self._lazy_show_or_update(request, self.time_entry_table, record_id, "time_entry", "TimeEntry")

    def expenses(self, request: Request) -> Response:
        if request.method == "GET":
            return self._lazy_listing(request, self.expense_table, "Expense", "date:desc")
        return self._lazy_create(request, self.expense_table, "expense", "Expense")

    def expense(self, request: Request, record_id: str) -> Response:
        return self._lazy_show_or_update(request, self.expense_table, record_id, "expense", "Expense")

    def _bulk_body(self, request: Request, singular: str, plural: str) -> tuple[list[dict] | Response, bool]:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return errors(400, {"type": "system", "message": "The request body must be JSON"}), False
        if isinstance(body.get(plural), list):
            items = body[plural]
            if len(items) > MAX_BULK:
                return errors(
                    422, {"type": "system", "message": f"You can create up to {MAX_BULK} {plural} at once"}
                ), False
            if not all(isinstance(i, dict) for i in items):
                return errors(400, {"type": "system", "message": f"{plural} must be a list of objects"}), False
            return items, False
        if isinstance(body.get(singular), dict):
            return [body[singular]], True
        return errors(400, {"type": "system", "message": f"{singular} or {plural} is required"}), False

    def _line_item_problems(self, item: dict, singular: str, *, creating: bool) -> list[dict]:
        problems = []
        date_field = "date_performed" if singular == "time_entry" else "date"
        if creating or "workspace_id" in item:
            if str(item.get("workspace_id")) not in self.workspaces:
                problems.append(validation("Workspace can't be blank", "workspace_id"))
        if creating or date_field in item:
            try:
                date.fromisoformat(str(item.get(date_field)))
            except ValueError:
                label = "Date performed" if singular == "time_entry" else "Date"
                problems.append(validation(f"{label} is not a valid date", date_field))
        if "user_id" in item and item["user_id"] is not None and str(item["user_id"]) not in self.users:
            problems.append(validation("User must exist", "user_id"))
        if singular == "time_entry":
            minutes = item.get("time_in_minutes")
            if (creating or "time_in_minutes" in item) and (
                not isinstance(minutes, int) or isinstance(minutes, bool) or not 0 < minutes <= 1440
            ):
                problems.append(validation("Time in minutes must be between 1 and 1440", "time_in_minutes"))
        else:
            if creating and not str(item.get("category") or "").strip():
                problems.append(validation("Category can't be blank", "category"))
            amount = item.get("amount_in_cents")
            if (creating or "amount_in_cents" in item) and (not isinstance(amount, int) or isinstance(amount, bool)):
                problems.append(validation("Amount in cents must be a whole number", "amount_in_cents"))
        reference = item.get("external_reference")
        if reference is not None:
            if not isinstance(reference, dict) or not all(
                reference.get(k) for k in ("service_name", "service_model", "service_model_ref")
            ):
                problems.append(
                    validation(
                        "External reference needs service_name, service_model and service_model_ref",
                        "external_reference",
                    )
                )
        return problems

    def _lazy_create(self, request: Request, table: LazyTable, singular: str, subject_type: str) -> Response:
        items, _ = self._bulk_body(request, singular, table.key)
        if isinstance(items, Response):
            return items
        with self.lock:
            problems = [p for item in items for p in self._line_item_problems(item, singular, creating=True)]
            if problems:
                return errors(422, *problems)  # all or nothing (unverified, see the top of this module)
            now = self._tick()
            created = []
            for item in items:
                record = self._new_line_item(table, singular, item, now)
                table.created[record["id"]] = record
                if isinstance(item.get("external_reference"), dict):
                    self._attach_reference(subject_type, record["id"], item["external_reference"], now)
                created.append(record)
            body = self._render(table.key, created, len(created), 1, max(1, len(created)), self._includes(request.args))
        return json_response(body)

    def _new_line_item(self, table: LazyTable, singular: str, item: dict, now: str) -> dict:
        workspace = self.workspaces[str(item["workspace_id"])]
        currency = workspace["currency"]
        user_id = str(item.get("user_id") or USER_BASE + 1)
        common = {
            "id": self._new_id(table.key),
            "created_at": now,
            "updated_at": now,
            "notes": item.get("notes") or "",
            "currency": currency,
            "currency_symbol": CURRENCY_SYMBOLS.get(currency, currency),
            "currency_base_unit": 100,
            "user_can_edit": True,
            "taxable": bool(item.get("taxable", False)),
            "is_invoiced": False,
            "story_id": item.get("story_id"),
            "workspace_id": workspace["id"],
            "user_id": user_id,
        }
        if singular == "time_entry":
            bill, cost = self._rates_in(user_id, currency)
            return common | {
                "date_performed": str(item["date_performed"]),
                "time_in_minutes": item["time_in_minutes"],
                "billable": bool(item.get("billable", True)),
                "rate_in_cents": item.get("rate_in_cents", bill or 0),
                "cost_rate_in_cents": cost,
                "approved": False,
                "active_submission_id": None,
            }
        return common | {
            "date": str(item["date"]),
            "category": item["category"],
            "amount_in_cents": item["amount_in_cents"],
            "is_billable": bool(item.get("billable", True)),
            "reimbursable": bool(item.get("reimbursable", False)),
            "receipt_id": None,
            "expense_category_id": item.get("expense_category_id"),
            "_approved": False,
        }

    def _rates_in(self, user_id: str, currency: str) -> tuple[int | None, int | None]:
        """The person's bill and cost rates in cents of the workspace's currency: Kantata prices an entry in the
        currency its project bills in (the firm's own entries do too), not in the person's."""
        membership = next((m for m in self.memberships.values() if m["user_id"] == user_id), {})
        person_id = int(user_id) - USER_BASE
        if not 1 <= person_id <= len(self.firm.people()):
            return membership.get("bill_rate_in_cents"), membership.get("cost_rate_in_cents")
        person = self.firm.person(person_id)
        bill = convert(person["bill_rate"], person["currency"], currency)
        cost = convert(person["cost_rate"], person["currency"], currency)
        return _cents(bill), _cents(cost)

    def _lazy_show_or_update(
        self, request: Request, table: LazyTable, record_id: str, singular: str, subject_type: str
    ) -> Response:
        with self.lock:
            record = table.get(record_id)
            if record is None:
                return self.not_found_response(request)
            if request.method == "PUT":
                item = (request.get_json(silent=True) or {}).get(singular)
                if not isinstance(item, dict):
                    return errors(400, {"type": "system", "message": f"{singular} is required"})
                problems = self._line_item_problems(item, singular, creating=False)
                if problems:
                    return errors(422, *problems)
                if singular == "time_entry":
                    allowed = {
                        "workspace_id",
                        "date_performed",
                        "time_in_minutes",
                        "billable",
                        "notes",
                        "rate_in_cents",
                        "user_id",
                        "story_id",
                    }
                else:
                    allowed = {
                        "workspace_id",
                        "date",
                        "category",
                        "amount_in_cents",
                        "notes",
                        "user_id",
                        "reimbursable",
                        "story_id",
                    }
                changes = {
                    k: (str(v) if k.endswith("_id") and v is not None else v) for k, v in item.items() if k in allowed
                }
                if singular == "expense" and "billable" in item:
                    changes["is_billable"] = bool(item["billable"])
                record = dict(record)
                now = self._apply(record, changes)
                if record_id in table.created:
                    table.created[record_id] = record
                elif now:  # a seeded record that really changed is stored from now on
                    table.changed[table.index_of(record_id)] = record
                if isinstance(item.get("external_reference"), dict):
                    self._attach_reference(subject_type, record_id, item["external_reference"], now or self._tick())
                    if record_id not in table.created:  # a seeded record with a reference is stored from now on
                        table.changed[table.index_of(record_id)] = record
            return json_response(self._render(table.key, [record], 1, 1, 1, self._includes(request.args)))

    # -- external references ----------------------------------------------------------------------------------
    def list_external_references(self, request: Request) -> Response:
        with self.lock:
            records = list(self.external_references.values())
            for name in ("subject_type", "subject_id", "service_name", "service_model", "service_model_ref"):
                if request.args.get(name):
                    records = [r for r in records if str(r[name]) == request.args[name]]
            return self._listing(request, "external_references", records)

    def external_reference_upsert(self, request: Request) -> Response:
        item = (request.get_json(silent=True) or {}).get("external_reference")
        if not isinstance(item, dict):
            return errors(400, {"type": "system", "message": "external_reference is required"})
        required = ("service_name", "service_model", "service_model_ref", "subject_id", "subject_type")
        missing = [validation(f"{name} can't be blank", name) for name in required if not item.get(name)]
        if missing:
            return errors(422, *missing)
        with self.lock:
            record = self._attach_reference(item["subject_type"], str(item["subject_id"]), item, self._tick())
            return json_response(self._render("external_references", [record], 1, 1, 1, set()))

    def _attach_reference(self, subject_type: str, subject_id: str, item: dict, now: str) -> dict:
        """Create the subject's reference for this service, or update it: service_name is unique per object."""
        ids = self.references_by_subject.setdefault((subject_type, subject_id), [])
        existing = next(
            (
                self.external_references[i]
                for i in ids
                if self.external_references[i]["service_name"] == item["service_name"]
            ),
            None,
        )
        fields = {
            k: item[k]
            for k in (
                "service_name",
                "service_model",
                "service_model_ref",
                "status",
                "external_link",
                "external_message",
                "external_status",
                "locked",
            )
            if k in item
        }
        if "service_model_ref" in fields:
            fields["service_model_ref"] = str(fields["service_model_ref"])
        if existing is not None:
            existing.update(fields, updated_at=now, last_synced_at=now)
            return existing
        record = {
            "id": self._new_id("external_references"),
            "subject_type": subject_type,
            "subject_id": subject_id,
            "status": "successful",
            "external_link": None,
            "external_message": None,
            "external_status": None,
            "locked": False,
            **fields,
            "created_at": now,
            "updated_at": now,
            "last_synced_at": now,
        }
        self.external_references[record["id"]] = record
        ids.append(record["id"])
        return record
