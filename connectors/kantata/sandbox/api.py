"""Kantata sandbox routes: auth, the vendor's error answers, users, memberships, invitations, cost rates, workspaces."""

from __future__ import annotations

import math
from datetime import date
from decimal import Decimal

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from connectors.kantata.sandbox.entries import KantataLineItems
from connectors.kantata.sandbox.query import KantataListing
from connectors.kantata.sandbox.state import (
    ACCOUNT_ID,
    CURRENCY_SYMBOLS,
    DEMO_CREDENTIALS,
    USER_BASE,
    KantataState,
    _cents,
    _truthy,
    errors,
    validation,
)
from connectors.sandbox.app import SandboxApp, json_response
from connectors.sandbox.firm import Firm


class KantataSandbox(KantataState, KantataListing, KantataLineItems, SandboxApp):
    vendor = "kantata"

    def __init__(self, firm: Firm | None = None, access_token: str = DEMO_CREDENTIALS["access_token"]):
        self.access_token = access_token
        super().__init__(firm)

    # -- routing ----------------------------------------------------------------------------------------------
    def routes(self) -> list[Rule]:
        rules: list[Rule] = []

        def add(path: str, endpoint: str, methods: list[str]) -> None:
            for suffix in ("", ".json"):
                rules.append(Rule(f"/api/v1/{path}{suffix}", endpoint=endpoint, methods=methods))

        add("users/me", "me", ["GET"])
        add("users", "list_users", ["GET"])
        add("workspaces", "workspaces_collection", ["GET", "POST"])
        add("workspaces/<record_id>", "workspace", ["GET", "PUT"])
        add("account_memberships", "list_memberships", ["GET"])
        add("account_memberships/<record_id>", "membership", ["GET", "PUT"])
        add("account_invitations", "create_invitation", ["POST"])
        add("cost_rates", "cost_rates_collection", ["GET", "POST"])
        add("time_entries", "time_entries", ["GET", "POST"])
        add("time_entries/<record_id>", "time_entry", ["GET", "PUT"])
        add("expenses", "expenses", ["GET", "POST"])
        add("expenses/<record_id>", "expense", ["GET", "PUT"])
        add("external_references", "list_external_references", ["GET"])
        add("external_references/create_or_update", "external_reference_upsert", ["POST"])
        return rules

    # -- vendor behaviour shared by every endpoint ------------------------------------------------------------------
    def authenticate(self, request: Request) -> Response | None:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or token.strip() != self.access_token:
            return errors(401, {"type": "oauth", "message": "Invalid OAuth 2 Request"})
        return None

    def rate_limited_response(self, request: Request, retry_after: float) -> Response:
        limit = self.faults.faults.get("rate_limit") or {}
        headers = {"Retry-After": str(math.ceil(retry_after))} if "retry_after" in limit else None
        return json_response(
            {"errors": [{"type": "system", "message": "Too many requests. Please retry your request shortly."}]},
            status=429,
            headers=headers,
        )

    def server_error_response(self, request: Request) -> Response:
        return errors(503, {"type": "system", "message": "Service is unavailable"})

    def not_found_response(self, request: Request) -> Response:
        return errors(404, {"type": "system", "message": "Page Not Found"})

    def method_not_allowed_response(self, request: Request) -> Response:
        return errors(400, {"type": "system", "message": f"{request.method} is not supported on {request.path}"})

    # -- users and account memberships ------------------------------------------------------------------------------
    def me(self, request: Request) -> Response:
        user = self.users[str(USER_BASE + 1)]
        return json_response(self._render("users", [user], 1, 1, 1, set()))

    def list_users(self, request: Request) -> Response:
        with self.lock:
            return self._listing(request, "users", list(self.users.values()))

    def list_memberships(self, request: Request) -> Response:
        with self.lock:
            try:
                order = self._order(request.args, {"created_at", "updated_at", "id"}, "updated_at:asc")
            except ValueError as exc:
                return errors(400, {"type": "system", "message": str(exc)})
            return self._listing(request, "account_memberships", list(self.memberships.values()), order=order)

    def membership(self, request: Request, record_id: str) -> Response:
        with self.lock:
            record = self.memberships.get(record_id)
            if record is None:
                return self.not_found_response(request)
            if request.method == "PUT":
                body = request.get_json(silent=True) or {}
                changes = body.get("account_membership") or {}
                allowed = {
                    "bill_rate_in_cents",
                    "cost_rate_in_cents",
                    "permission",
                    "manager_id",
                    "billability_target",
                    "default_role_id",
                }
                problems = [
                    validation(f"{name} must be a whole number of cents", name)
                    for name in ("bill_rate_in_cents", "cost_rate_in_cents")
                    if name in changes and changes[name] is not None and not isinstance(changes[name], int)
                ]
                if problems:
                    return errors(422, *problems)
                self._apply(record, {k: v for k, v in changes.items() if k in allowed})
            return json_response(self._render("account_memberships", [record], 1, 1, 1, self._includes(request.args)))

    def create_invitation(self, request: Request) -> Response:
        body = request.get_json(silent=True) or {}
        invitation = body.get("account_invitation")
        if not isinstance(invitation, dict):
            return errors(400, {"type": "system", "message": "account_invitation is required"})
        with self.lock:
            email = str(invitation.get("email_address") or "").strip().lower()
            problems = []
            if not str(invitation.get("full_name") or "").strip():
                problems.append(validation("Full name can't be blank", "full_name"))
            if "@" not in email:
                problems.append(validation("Email address is invalid", "email_address"))
            elif any(u["email_address"].lower() == email for u in self.users.values()):
                problems.append(validation("Email address is already a member of this account", "email_address"))
            if problems:
                return errors(422, *problems)
            now = self._tick()
            user_id = self._new_id("users")
            membership_id = self._new_id("account_memberships")
            self.users[user_id] = {
                "id": user_id,
                "full_name": invitation["full_name"].strip(),
                "email_address": email,
                "headline": invitation.get("headline") or "",
                "photo_path": None,
                "generic": False,
                "disabled": False,
                "account_id": ACCOUNT_ID,
            }
            self.memberships[membership_id] = {
                "id": membership_id,
                "user_id": user_id,
                "permission": invitation.get("permission") or "collaborator",
                "is_administrator": False,
                "is_project_lead": False,
                "can_create_workspace": False,
                "can_view_reports": False,
                "bill_rate_in_cents": invitation.get("bill_rate_in_cents"),
                "cost_rate_in_cents": invitation.get("cost_rate_in_cents"),
                "billability_target": "80.0",
                "disabled_at": None,
                "default_role_id": invitation.get("default_role_id"),
                "manager_id": None,
                "created_at": now,
                "updated_at": now,
            }
            invitation_id = str(self._new_id("account_invitations"))
            record = {
                "id": invitation_id,
                "full_name": invitation["full_name"].strip(),
                "email_address": email,
                "headline": invitation.get("headline") or "",
                "pending": False,
                "permission": invitation.get("permission") or "collaborator",
                "bill_rate_in_cents": invitation.get("bill_rate_in_cents"),
                "cost_rate_in_cents": invitation.get("cost_rate_in_cents"),
                "inviter_id": str(USER_BASE + 1),
                "invitee_id": user_id,
            }
            self.invitations[invitation_id] = record
            if isinstance(invitation.get("external_reference"), dict):
                self._attach_reference("AccountInvitation", invitation_id, invitation["external_reference"], now)
            return json_response(self._render("account_invitations", [record], 1, 1, 1, self._includes(request.args)))

    # -- cost rates -------------------------------------------------------------------------------------------------
    def cost_rates_collection(self, request: Request) -> Response:
        with self.lock:
            if request.method == "GET":
                try:
                    order = self._order(request.args, {"created_at", "updated_at"}, "created_at:asc")
                except ValueError as exc:
                    return errors(400, {"type": "system", "message": str(exc)})
                return self._listing(request, "cost_rates", list(self.cost_rates.values()), order=order)
            items, single = self._bulk_body(request, "cost_rate", "cost_rates")
            if isinstance(items, Response):
                return items
            problems = []
            for item in items:
                if str(item.get("account_membership_id")) not in self.memberships:
                    problems.append(validation("Account membership must exist", "account_membership_id"))
                if not isinstance(item.get("amount_in_subunits"), int) or item["amount_in_subunits"] < 0:
                    problems.append(validation("Amount in subunits must be a whole number", "amount_in_subunits"))
                if not isinstance(item.get("currency"), str) or len(item["currency"]) != 3:
                    problems.append(validation("Currency is not a valid ISO code", "currency"))
            if problems:
                return errors(422, *problems)
            now = self._tick()
            written = []
            for item in items:
                membership_id, currency = str(item["account_membership_id"]), item["currency"].upper()
                existing = next(
                    (
                        r
                        for r in self.cost_rates.values()
                        if r["account_membership_id"] == membership_id and r["currency"] == currency
                    ),
                    None,
                )
                if existing is None:  # Kantata: a rate for the same membership and currency is overridden
                    existing = {
                        "id": self._new_id("cost_rates"),
                        "account_membership_id": membership_id,
                        "currency": currency,
                        "amount_in_subunits": item["amount_in_subunits"],
                        "in_use": True,
                        "created_at": now,
                        "updated_at": now,
                    }
                    self.cost_rates[existing["id"]] = existing
                else:
                    self._apply(existing, {"amount_in_subunits": item["amount_in_subunits"]}, now)
                written.append(existing)
            return json_response(self._render("cost_rates", written, len(written), 1, len(written), set()))

    # -- workspaces -------------------------------------------------------------------------------------------------
    def workspaces_collection(self, request: Request) -> Response:
        with self.lock:
            if request.method == "GET":
                try:
                    order = self._order(
                        request.args, {"created_at", "updated_at", "title", "start_date", "due_date"}, "updated_at:desc"
                    )
                except ValueError as exc:
                    return errors(400, {"type": "system", "message": str(exc)})
                records = list(self.workspaces.values())
                if not _truthy(request.args.get("include_archived")):
                    records = [r for r in records if not r["archived"]]
                return self._listing(request, "workspaces", records, order=order)
            body = request.get_json(silent=True) or {}
            item = body.get("workspace")
            if not isinstance(item, dict):
                return errors(400, {"type": "system", "message": "workspace is required"})
            problems = self._workspace_problems(item, creating=True)
            if problems:
                return errors(422, *problems)
            now = self._tick()
            currency = (item.get("currency") or "USD").upper()
            record = {
                "id": self._new_id("workspaces"),
                "title": item["title"].strip(),
                "description": item.get("description") or "",
                "account_id": int(ACCOUNT_ID),
                "archived": False,
                "budgeted": bool(item.get("budgeted", False)),
                "price": item.get("price"),
                "price_in_cents": _cents(str(item["price"])) if item.get("price") not in (None, "") else None,
                "currency": currency,
                "currency_symbol": CURRENCY_SYMBOLS.get(currency, currency),
                "currency_base_unit": 100,
                "start_date": item.get("start_date"),
                "due_date": item.get("due_date"),
                "effective_due_date": item.get("due_date"),
                "access_level": "invitation",
                "consultant_role_name": item.get("consultant_role_name") or "Providers",
                "client_role_name": item.get("client_role_name") or "Clients",
                "require_time_approvals": True,
                "require_expense_approvals": True,
                "percentage_complete": 0,
                "over_budget": False,
                "status": {"color": "grey", "key": 100, "message": "Not Started"},
                "creator_id": str(USER_BASE + 1),
                "primary_maven_id": str(USER_BASE + 1),
                "created_at": now,
                "updated_at": now,
            }
            self.workspaces[record["id"]] = record
            if isinstance(item.get("external_reference"), dict):
                self._attach_reference("Workspace", record["id"], item["external_reference"], now)
            return json_response(self._render("workspaces", [record], 1, 1, 1, self._includes(request.args)))

    def _workspace_problems(self, item: dict, *, creating: bool) -> list[dict]:
        problems = []
        if creating or "title" in item:
            if not str(item.get("title") or "").strip():
                problems.append(validation("Please give your project a title", "title"))
        if creating and item.get("creator_role") not in ("maven", "buyer"):
            problems.append(validation("Please select a role for this project", "creator_role"))
        for name in ("start_date", "due_date"):
            if item.get(name):
                try:
                    date.fromisoformat(str(item[name]))
                except ValueError:
                    problems.append(validation(f"{name.replace('_', ' ').capitalize()} is not a valid date", name))
        if item.get("price") not in (None, ""):
            try:
                Decimal(str(item["price"]))
            except ArithmeticError:
                problems.append(validation("Price is not a number", "price"))
        return problems

    def workspace(self, request: Request, record_id: str) -> Response:
        with self.lock:
            record = self.workspaces.get(record_id)
            if record is None:
                return self.not_found_response(request)
            if request.method == "PUT":
                item = (request.get_json(silent=True) or {}).get("workspace") or {}
                problems = self._workspace_problems(item, creating=False)
                if problems:
                    return errors(422, *problems)
                allowed = {"title", "description", "budgeted", "price", "currency", "start_date", "due_date"}
                now = self._apply(record, {k: v for k, v in item.items() if k in allowed})
                if "price" in item:
                    record["price_in_cents"] = _cents(str(item["price"])) if item["price"] not in (None, "") else None
                if isinstance(item.get("external_reference"), dict):
                    self._attach_reference("Workspace", record_id, item["external_reference"], now or self._tick())
            return json_response(self._render("workspaces", [record], 1, 1, 1, self._includes(request.args)))


def create_app(firm: Firm | None = None) -> KantataSandbox:
    return KantataSandbox(firm)
