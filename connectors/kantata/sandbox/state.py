"""The Kantata sandbox's state: ids, the firm's records by index (served without storing them), what the API wrote."""

from __future__ import annotations

from array import array
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal

from werkzeug.wrappers import Response

from connectors.sandbox.app import json_response
from connectors.sandbox.lazy import SeededTable

DEMO_CREDENTIALS = {"access_token": "kantata-demo-token-7Hq2"}


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


class LazyTable(SeededTable):
    """Seeded records computed by index, plus the records written through the API.

    `make(index)` builds seeded record `index`; every field the sandbox orders or range-filters by
    (created_at, updated_at, the date field and id) grows with the index, which lets a page be found by
    bisection instead of a scan.
    """

    def __init__(self, key: str, base_id: int, make: Callable[[int], dict], count: int, date_field: str):
        super().__init__(make, count)
        self.key = key
        self.base_id = base_id
        self.date_field = date_field
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

    def approved_indexes(self) -> array:
        """Indexes of approved seeded records, built once per volume: 4 bytes each, so 100k cost 400 kB."""
        if self._approved is None:
            self._approved = array("L", (i for i in range(self.count) if _approved(self.make(i))))
        return self._approved


class KantataState:
    """Seeded and written records; `self.lock` guards them."""

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
