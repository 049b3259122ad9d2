"""A local emulator of the Kantata OX (Mavenlink) API v1 subset the connector uses, seeded from the shared Firm.

Faithful to developer.kantata.com: Bearer auth, `/api/v1/<collection>[.json]`, the response format
`{count, meta:{count, page_count, page_number, page_size}, results:[{key, id}], <key>:{"<id>": {...}}}`,
`page`/`per_page` (default 20, max 200) or `limit`/`offset`, `include=` side-loading (external_references,
user, workspace, cost_rates), `only=`, `order=`, the `updated_after`/`approved` and external-reference filters,
bulk create of up to 100 objects under the plural key, errors as `{"errors":[{type, message, field?}]}`
(`oauth` 401, `validation` 422, `system` otherwise) and 429 when calls come too fast.

Time entries and expenses are computed from the Firm by index (ids are a fixed base + index + 1), so the
sandbox serves 100,000 of them with almost no memory; only records written through the API are stored.
"""

from __future__ import annotations

import math
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from connectors.sandbox.app import SandboxApp, json_response
from connectors.sandbox.firm import Firm

DEMO_CREDENTIALS = {"access_token": "kantata-demo-token-7Hq2"}

# ---------------------------------------------------------------------------------------------------------------
# Assumptions not confirmed by Kantata's published reference (unverified), kept in one place:
# - Bulk create is all-or-nothing: one invalid object rejects the whole call with 422 and nothing is written.
#   The errors say which field failed but not which object (no index is documented).
# - More than 100 objects in one bulk create -> 422 `system` error; per_page above 200 is clamped to 200.
# - `updated_after` / `created_after` are strict (greater than), at one-second resolution.
# - 429 carries no documented headers; the sandbox adds Retry-After only when the fault sets "retry_after".
# - Account invitations are accepted at once (a user and account membership appear immediately), so a
#   resource written through the API can be given cost rates straight away.
# - Saving an object without any change keeps its updated_at (Rails semantics).
# - Expenses carry no `approved` attribute; the `approved` filter uses the firm's approval state, and objects
#   created through the API start unapproved (they would need a submitted and approved report).
# ---------------------------------------------------------------------------------------------------------------

MAX_PER_PAGE = 200
DEFAULT_PER_PAGE = 20
MAX_BULK = 100
ACCOUNT_ID = "4200"

WORKSPACE_BASE = 3_000_000
USER_BASE = 5_000_000
MEMBERSHIP_BASE = 6_000_000
COST_RATE_BASE = 7_000_000
TIME_ENTRY_BASE = 100_000_000  # seeded entry i has id TIME_ENTRY_BASE + i + 1
EXPENSE_BASE = 200_000_000
EXTERNAL_REFERENCE_BASE = 400_000_000
CREATED_TIME_ENTRY_BASE = 900_000_000  # entries created through the API, far from any seeded id
CREATED_EXPENSE_BASE = 950_000_000

CURRENCY_SYMBOLS = {"USD": "$", "GBP": "£", "EUR": "€", "CAD": "$"}

SUBJECT_TYPES = {
    "time_entries": "TimeEntry",
    "expenses": "Expense",
    "workspaces": "Workspace",
    "account_invitations": "AccountInvitation",
}


def _cents(amount: str | None) -> int | None:
    return None if amount is None else int(Decimal(amount) * 100)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _timestamp(value: str, name: str) -> str:
    """A filter datetime in the form the sandbox stores (UTC, seconds, Z), or ValueError naming the filter."""
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace(" ", "+"))
    except ValueError:
        raise ValueError(f"{name} must be an ISO 8601 datetime") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _approved(record: dict) -> bool:
    """Time entries show `approved`; expenses keep it out of sight (Kantata has no such attribute on them)."""
    return bool(record.get("_approved", record.get("approved")))


def _truthy(value: str | None) -> bool:
    return str(value).lower() in ("true", "1", "yes")


def errors(status: int, *items: dict[str, str]) -> Response:
    return json_response({"errors": list(items)}, status=status)


def validation(message: str, field: str) -> dict[str, str]:
    return {"type": "validation", "message": message, "field": field}


class IndexView(Sequence):
    """A read-only window [start, stop) over a sorted sequence of seeded indexes, without copying it."""

    def __init__(self, indexes: Sequence[int], start: int = 0, stop: int | None = None):
        self.indexes = indexes
        self.start = start
        self.stop = len(indexes) if stop is None else stop

    def __len__(self) -> int:
        return max(0, self.stop - self.start)

    def __getitem__(self, position: int) -> int:  # type: ignore[override]
        if not 0 <= position < len(self):
            raise IndexError(position)
        return self.indexes[self.start + position]


class LazyTable:
    """Seeded records computed by index, plus the records written through the API.

    `make(index)` builds seeded record `index`; every field the sandbox orders or range-filters by
    (created_at, updated_at, the date field and id) grows with the index, which lets a page be found by
    bisection instead of a scan.
    """

    def __init__(self, key: str, base_id: int, make: Callable[[int], dict], count: int, date_field: str):
        self.key = key
        self.base_id = base_id
        self.make = make
        self.count = count
        self.date_field = date_field
        self.changed: dict[int, dict] = {}  # seeded index -> its current version after an update
        self.created: dict[str, dict] = {}  # id -> record created through the API
        self._approved: array | None = None

    def resize(self, count: int) -> None:
        self.count = count
        self._approved = None

    def index_of(self, record_id: str) -> int | None:
        try:
            index = int(record_id) - self.base_id - 1
        except ValueError:
            return None
        return index if 0 <= index < self.count else None

    def get(self, record_id: str) -> dict | None:
        if record_id in self.created:
            return self.created[record_id]
        index = self.index_of(record_id)
        if index is None:
            return None
        return self.changed.get(index) or self.make(index)

    def approved_indexes(self) -> array:
        """Indexes of approved seeded records, built once per volume: 4 bytes each, so 100k cost 400 kB."""
        if self._approved is None:
            self._approved = array("L", (i for i in range(self.count) if _approved(self.make(i))))
        return self._approved


class Query:
    """The filters of one list call, applied to seeded records by bisection and to stored ones one by one."""

    RANGE_FILTERS = {
        "updated_after": ("updated_at", ">"),
        "updated_before": ("updated_at", "<"),
        "created_after": ("created_at", ">"),
        "created_before": ("created_at", "<"),
    }

    def __init__(self, args: dict[str, str], date_field: str | None):
        self.ranges: list[tuple[str, str, str]] = []
        for name, (field, op) in self.RANGE_FILTERS.items():
            if args.get(name):
                self.ranges.append((field, op, _timestamp(args[name], name)))
        if date_field and args.get(f"{date_field}_between"):
            start, _, end = args[f"{date_field}_between"].partition(":")
            for value in (start, end):
                try:
                    date.fromisoformat(value)
                except ValueError:
                    raise ValueError(f"{date_field}_between must look like 2013-06-01:2013-08-01") from None
            self.ranges += [(date_field, ">=", start), (date_field, "<=", end)]
        self.approved = "approved" in args  # Kantata processes this filter as true whatever its value
        self.only = {i for i in args.get("only", "").split(",") if i}
        self.equal: dict[str, set[str]] = {}
        for name, field in (("workspace_id", "workspace_id"), ("user_id", "user_id")):
            if args.get(name):
                self.equal[field] = {args[name]}
        for name, field in (("workspace_ids", "workspace_id"), ("with_user_ids", "user_id")):
            if args.get(name):
                self.equal[field] = set(args[name].split(","))
        self.billable = _truthy(args["billable"]) if "billable" in args else None
        self.external = {
            key[len("external_reference_") :]: value
            for key, value in args.items()
            if key.startswith("external_reference_") and value
        }
        if "service_model_refs" in self.external:
            self.external["service_model_refs"] = set(self.external["service_model_refs"].split(","))
        self.has_external = _truthy(args["has_external_references"]) if "has_external_references" in args else None
        self.without_service = args.get("without_external_reference_service_name")

    @property
    def needs_references(self) -> bool:
        return bool(self.external) or self.has_external is True

    def matches_plain(self, record: dict) -> bool:
        """Everything except external references, which the sandbox checks separately."""
        if self.only and record["id"] not in self.only:
            return False
        for field, op, value in self.ranges:
            current = record.get(field) or ""
            if (
                (op == ">" and not current > value)
                or (op == "<" and not current < value)
                or (op == ">=" and not current >= value)
                or (op == "<=" and not current <= value)
            ):
                return False
        if self.approved and not _approved(record):
            return False
        for field, allowed in self.equal.items():
            if str(record.get(field)) not in allowed:
                return False
        billable = record.get("billable", record.get("is_billable"))
        return self.billable is None or billable == self.billable

    def matches_references(self, references: list[dict]) -> bool:
        if self.has_external is not None and bool(references) != self.has_external:
            return False
        if self.without_service and any(r["service_name"] == self.without_service for r in references):
            return False
        if not self.external:
            return True
        for reference in references:
            ok = True
            for name, wanted in self.external.items():
                if name == "service_model_refs":
                    ok = ok and reference["service_model_ref"] in wanted
                else:
                    ok = ok and str(reference.get(name)) == wanted
            if ok:
                return True
        return False


class KantataSandbox(SandboxApp):
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

    # -- state ------------------------------------------------------------------------------------------------

    def reset_state(self) -> None:
        firm = self.firm
        self.workspaces: dict[str, dict] = {}
        for project in firm.psa_projects():
            record = self._workspace_from(project)
            self.workspaces[record["id"]] = record
        self.users: dict[str, dict] = {}
        self.memberships: dict[str, dict] = {}
        self.cost_rates: dict[str, dict] = {}
        for person in firm.people():
            self._add_person(person)
        self.invitations: dict[str, dict] = {}
        self.external_references: dict[str, dict] = {}
        self.references_by_subject: dict[tuple[str, str], list[str]] = {}
        self.time_entry_table = LazyTable(
            "time_entries", TIME_ENTRY_BASE, self._time_entry_from, firm.time_entry_count, "date_performed"
        )
        self.expense_table = LazyTable("expenses", EXPENSE_BASE, self._expense_from, firm.expense_count, "date")
        # Seeded people keep their firm ids (base + person id); people without a cost rate leave gaps.
        self._next_id = {
            "workspaces": WORKSPACE_BASE + len(firm.psa_projects()) + 1,
            "time_entries": CREATED_TIME_ENTRY_BASE + 1,
            "expenses": CREATED_EXPENSE_BASE + 1,
            "users": USER_BASE + len(firm.people()) + 1,
            "account_memberships": MEMBERSHIP_BASE + len(firm.people()) + 1,
            "cost_rates": COST_RATE_BASE + len(firm.people()) + 1,
            "external_references": EXTERNAL_REFERENCE_BASE + 1,
            "account_invitations": 1,
        }

    def seed(self, volumes: dict[str, int]) -> dict[str, int]:
        unknown = set(volumes) - {"time_entries", "expenses"}
        if unknown:
            raise ValueError(f"the kantata sandbox seeds time_entries and expenses, not {sorted(unknown)}")
        for name, count in volumes.items():
            if count < 0:
                raise ValueError(f"{name} must be zero or more")
            self._tables()[name].resize(count)
        return {name: table.count for name, table in self._tables().items()}

    def _tables(self) -> dict[str, LazyTable]:
        return {"time_entries": self.time_entry_table, "expenses": self.expense_table}

    def _new_id(self, collection: str) -> str:
        value = self._next_id[collection]
        self._next_id[collection] = value + 1
        return str(value)

    def _workspace_from(self, project: dict) -> dict:
        created = f"{project['start_date']}T09:00:00Z"
        currency = project["currency"]
        return {
            "id": str(WORKSPACE_BASE + project["id"]),
            "title": f"{project['code']} {project['name']}",
            "description": f"{project['billing_terms']} engagement for {project['customer_name']}",
            "account_id": int(ACCOUNT_ID),
            "archived": False,
            "budgeted": True,
            "price": project["budget"],
            "price_in_cents": _cents(project["budget"]),
            "currency": currency,
            "currency_symbol": CURRENCY_SYMBOLS.get(currency, currency),
            "currency_base_unit": 100,
            "start_date": project["start_date"],
            "due_date": project["end_date"],
            "effective_due_date": project["end_date"],
            "access_level": "invitation",
            "consultant_role_name": "Providers",
            "client_role_name": "Clients",
            "require_time_approvals": True,
            "require_expense_approvals": True,
            "percentage_complete": 0,
            "over_budget": False,
            "status": {"color": "green", "key": 310, "message": "Active"},
            "creator_id": str(USER_BASE + 1),
            "primary_maven_id": str(USER_BASE + 1),
            "created_at": created,
            "updated_at": created,
        }

    def _add_person(self, person: dict) -> None:
        user_id = str(USER_BASE + person["id"])
        membership_id = str(MEMBERSHIP_BASE + person["id"])
        joined = f"{person['hire_date']}T08:00:00Z"
        self.users[user_id] = {
            "id": user_id,
            "full_name": person["display_name"],
            "email_address": person["work_email"],
            "headline": person["job_title"],
            "photo_path": None,
            "generic": False,
            "disabled": person["status"] != "Active",
            "account_id": ACCOUNT_ID,
        }
        self.memberships[membership_id] = {
            "id": membership_id,
            "user_id": user_id,
            "permission": "administrator" if person["id"] == 1 else "collaborator",
            "is_administrator": person["id"] == 1,
            "is_project_lead": person["level"] in ("Manager", "Senior Manager", "Director", "Partner"),
            "can_create_workspace": person["id"] == 1,
            "can_view_reports": person["id"] == 1,
            "bill_rate_in_cents": _cents(person["bill_rate"]),
            "cost_rate_in_cents": _cents(person["cost_rate"]),
            "billability_target": "80.0" if person["billable"] else "0.0",
            "disabled_at": f"{person['termination_date']}T00:00:00Z" if person["termination_date"] else None,
            "default_role_id": None,
            "manager_id": None,
            "created_at": joined,
            "updated_at": joined,
        }
        if person["cost_rate"] is not None:
            rate_id = str(COST_RATE_BASE + person["id"])
            self.cost_rates[rate_id] = {
                "id": rate_id,
                "account_membership_id": membership_id,
                "currency": person["currency"],
                "amount_in_subunits": _cents(person["cost_rate"]),
                "in_use": True,
                "created_at": joined,
                "updated_at": joined,
            }

    def _time_entry_from(self, index: int) -> dict:
        entry = self.firm.time_entry(index)
        currency = entry["currency"]
        return {
            "id": str(TIME_ENTRY_BASE + index + 1),
            "created_at": entry["created_at"],
            "updated_at": entry["updated_at"],
            "date_performed": entry["date"],
            "time_in_minutes": entry["minutes"],
            "billable": entry["billable"],
            "notes": entry["notes"],
            "rate_in_cents": _cents(entry["bill_rate"]) or 0,
            "cost_rate_in_cents": _cents(entry["cost_rate"]),
            "currency": currency,
            "currency_symbol": CURRENCY_SYMBOLS.get(currency, currency),
            "currency_base_unit": 100,
            "user_can_edit": True,
            "approved": entry["approved"],
            "taxable": False,
            "is_invoiced": False,
            "story_id": None,
            "workspace_id": str(WORKSPACE_BASE + entry["project_id"]),
            "user_id": str(USER_BASE + entry["person_id"]),
            "active_submission_id": None,
        }

    def _expense_from(self, index: int) -> dict:
        expense = self.firm.expense(index)
        currency = expense["currency"]
        return {
            "id": str(EXPENSE_BASE + index + 1),
            "created_at": expense["created_at"],
            "updated_at": expense["updated_at"],
            "date": expense["date"],
            "notes": expense["notes"],
            "category": expense["category"],
            "amount_in_cents": _cents(expense["amount"]),
            "currency": currency,
            "currency_symbol": CURRENCY_SYMBOLS.get(currency, currency),
            "currency_base_unit": 100,
            "user_can_edit": True,
            "is_invoiced": False,
            "is_billable": expense["billable"],
            "taxable": False,
            "reimbursable": expense["reimbursable"],
            "workspace_id": str(WORKSPACE_BASE + expense["project_id"]),
            "user_id": str(USER_BASE + expense["person_id"]),
            "story_id": None,
            "receipt_id": None,
            "expense_category_id": None,
            "_approved": expense["approved"],
        }

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

    # -- response format ------------------------------------------------------------------------------------------

    def _page_args(self, args: dict[str, str]) -> tuple[int, int, int]:
        """(offset, limit, page_number): page/per_page, or limit/offset when both are given."""
        if args.get("limit") and args.get("offset"):
            limit = max(1, min(int(args["limit"]), MAX_PER_PAGE))
            offset = max(0, int(args["offset"]))
            return offset, limit, offset // limit + 1
        per_page = max(1, min(int(args.get("per_page") or DEFAULT_PER_PAGE), MAX_PER_PAGE))
        page = max(1, int(args.get("page") or 1))
        return (page - 1) * per_page, per_page, page

    def _render(
        self, key: str, records: list[dict], total: int, page: int, per_page: int, includes: set[str]
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "count": total,
            "meta": {
                "count": total,
                "page_count": math.ceil(total / per_page) if per_page else 0,
                "page_number": page,
                "page_size": per_page,
            },
            "results": [{"key": key, "id": r["id"]} for r in records],
        }
        objects: dict[str, dict] = {}
        side: dict[str, dict[str, dict]] = {}
        subject_type = SUBJECT_TYPES.get(key)
        for record in records:
            # "_approved" is the only private key (on expenses); copying only then keeps big pages cheap.
            shown = {k: v for k, v in record.items() if k != "_approved"} if "_approved" in record else dict(record)
            if "external_references" in includes and subject_type:
                ids = self.references_by_subject.get((subject_type, record["id"]), [])
                shown["external_reference_ids"] = list(ids)
                for ref_id in ids:
                    side.setdefault("external_references", {})[ref_id] = self.external_references[ref_id]
            if "user" in includes and record.get("user_id") in self.users:
                side.setdefault("users", {})[record["user_id"]] = self.users[record["user_id"]]
            if "workspace" in includes and record.get("workspace_id") in self.workspaces:
                side.setdefault("workspaces", {})[record["workspace_id"]] = self.workspaces[record["workspace_id"]]
            if "cost_rates" in includes and key == "account_memberships":
                rates = [r for r in self.cost_rates.values() if r["account_membership_id"] == record["id"]]
                shown["cost_rate_ids"] = [r["id"] for r in rates]
                side.setdefault("cost_rates", {}).update({r["id"]: r for r in rates})
            if "account_membership" in includes and key == "cost_rates":
                membership = self.memberships.get(record["account_membership_id"])
                if membership:
                    side.setdefault("account_memberships", {})[membership["id"]] = membership
            objects[record["id"]] = shown
        body[key] = objects
        for name, values in side.items():
            body.setdefault(name, {}).update(values)
        return body

    @staticmethod
    def _includes(args: dict[str, str]) -> set[str]:
        return {i.strip() for i in args.get("include", "").split(",") if i.strip()}

    @staticmethod
    def _order(args: dict[str, str], allowed: set[str], default: str) -> tuple[str, bool]:
        field, _, direction = (args.get("order") or default).partition(":")
        if field not in allowed or direction not in ("asc", "desc", ""):
            raise ValueError(f"order must be one of {sorted(allowed)} with :asc or :desc")
        return field, direction == "desc"

    def _listing(
        self, request: Request, key: str, records: list[dict], *, order: tuple[str, bool] | None = None
    ) -> Response:
        """A list call over a small stored collection: filter, order, page and render."""
        args = request.args.to_dict()
        try:
            query = Query(args, None)
            offset, limit, page = self._page_args(args)
        except ValueError as exc:
            return errors(400, {"type": "system", "message": str(exc)})
        subject_type = SUBJECT_TYPES.get(key)
        chosen = [
            r
            for r in records
            if query.matches_plain(r)
            and (not subject_type or query.matches_references(self._references_of(subject_type, r["id"])))
        ]
        if order:
            field, descending = order
            chosen.sort(key=lambda r: (r.get(field) or "", int(r["id"])), reverse=descending)
        body = self._render(key, chosen[offset : offset + limit], len(chosen), page, limit, self._includes(args))
        return json_response(body)

    def _references_of(self, subject_type: str, subject_id: str) -> list[dict]:
        return [self.external_references[i] for i in self.references_by_subject.get((subject_type, subject_id), [])]

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

    def _lazy_listing(self, request: Request, table: LazyTable, subject_type: str, default_order: str) -> Response:
        args = request.args.to_dict()
        try:
            query = Query(args, table.date_field)
            offset, limit, page = self._page_args(args)
            field, descending = self._order(args, {"created_at", "updated_at", table.date_field, "id"}, default_order)
        except ValueError as exc:
            return errors(400, {"type": "system", "message": str(exc)})
        with self.lock:
            total, records = self._lazy_page(table, subject_type, query, field, descending, offset, limit)
            positions = self.malformed_positions(len(records))
            records = [self._malformed(r, p) if p in positions else r for p, r in enumerate(records)]
            body = self._render(table.key, records, total, page, limit, self._includes(args))
        return json_response(body)

    @staticmethod
    def _malformed(record: dict, position: int) -> dict:
        """A copy of `record` broken the way real exports break: a bad date, a non-number, a missing stamp."""
        broken = dict(record)
        mode = position % 3
        date_field = "date_performed" if "date_performed" in broken else "date"
        if mode == 0:
            broken[date_field] = "not-a-date"
        elif mode == 1:
            number_field = "time_in_minutes" if "time_in_minutes" in broken else "amount_in_cents"
            broken[number_field] = "ninety"
        else:
            broken.pop("updated_at", None)
        return broken

    def _lazy_page(
        self,
        table: LazyTable,
        subject_type: str,
        query: Query,
        field: str,
        descending: bool,
        offset: int,
        limit: int,
    ) -> tuple[int, list[dict]]:
        """One page of seeded + stored records in `field` order, without building the whole list.

        Seeded records are already in order by index, so the page is found by bisection; the few stored
        records (created or changed through the API) are merged in at their positions.
        """
        make = table.make

        def key_of(record: dict) -> tuple[str, int]:
            return (str(record.get(field) or ""), int(record["id"]))

        # Seeded candidates: seeded records never have external references.
        seeded: Sequence[int]
        if query.needs_references:
            seeded = ()
        elif query.only:
            seeded = sorted(i for i in (table.index_of(x) for x in query.only) if i is not None)
        else:
            seeded = range(table.count)
            if query.approved:
                seeded = table.approved_indexes()
            lo, hi = 0, len(seeded)
            for range_field, op, value in query.ranges:
                keyed = lambda i, f=range_field: make(i)[f]  # noqa: E731 - one bisection key per filter
                if op == ">":
                    lo = max(lo, bisect_right(seeded, value, lo, hi, key=keyed))
                elif op == ">=":
                    lo = max(lo, bisect_left(seeded, value, lo, hi, key=keyed))
                elif op == "<":
                    hi = min(hi, bisect_left(seeded, value, lo, hi, key=keyed))
                else:
                    hi = min(hi, bisect_right(seeded, value, lo, hi, key=keyed))
            seeded = IndexView(seeded, lo, max(lo, hi))
        check_each = bool(query.equal) or query.billable is not None or bool(query.only)
        if (check_each or table.changed) and len(seeded):
            # Filters that do not follow the index (and records replaced by an update) cost a scan.
            seeded = array(
                "L",
                (i for i in seeded if i not in table.changed and (not check_each or query.matches_plain(make(i)))),
            )
        stored = [
            r
            for r in list(table.changed.values()) + list(table.created.values())
            if query.matches_plain(r) and query.matches_references(self._references_of(subject_type, r["id"]))
        ]
        stored.sort(key=key_of)
        # Where each stored record sits in the merged ascending order.
        slots = [bisect_left(seeded, key_of(r), key=lambda i: key_of(make(i))) + rank for rank, r in enumerate(stored)]
        total = len(seeded) + len(stored)
        page: list[dict] = []
        for position in range(offset, min(offset + limit, total)):
            ascending = total - 1 - position if descending else position
            j = bisect_left(slots, ascending)
            if j < len(slots) and slots[j] == ascending:
                page.append(stored[j])
            else:
                page.append(make(seeded[ascending - j]))
        return total, page

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
            membership = next((m for m in self.memberships.values() if m["user_id"] == user_id), {})
            return common | {
                "date_performed": str(item["date_performed"]),
                "time_in_minutes": item["time_in_minutes"],
                "billable": bool(item.get("billable", True)),
                "rate_in_cents": item.get("rate_in_cents", membership.get("bill_rate_in_cents") or 0),
                "cost_rate_in_cents": membership.get("cost_rate_in_cents"),
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

    # -- helpers ----------------------------------------------------------------------------------------------

    def _tick(self) -> str:
        return _now()

    def _apply(self, record: dict, changes: dict, now: str | None = None) -> str | None:
        """Apply changes; bump updated_at only when something really changed. Returns the new stamp or None."""
        changed = {k: v for k, v in changes.items() if record.get(k) != v}
        if not changed:
            return None
        stamp = now or self._tick()
        record.update(changed, updated_at=stamp)
        return stamp


def create_app(firm: Firm | None = None) -> KantataSandbox:
    return KantataSandbox(firm)
