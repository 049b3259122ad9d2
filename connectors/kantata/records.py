"""Kantata's objects as it sends them and as we write them: the fields per object, what makes a record readable,
and how a response becomes source records."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from connectors.base import RejectedRecord, SourceRecord

MAX_PER_PAGE = 200  # Kantata's cap for per_page

TIME_ENTRY_FIELDS = (
    "workspace_id",
    "user_id",
    "date_performed",
    "time_in_minutes",
    "billable",
    "notes",
    "rate_in_cents",
    "story_id",
)


EXPENSE_FIELDS = ("workspace_id", "user_id", "date", "category", "amount_in_cents", "notes", "billable", "reimbursable")


WORKSPACE_FIELDS = ("title", "description", "budgeted", "price", "currency", "start_date", "due_date", "creator_role")


USER_FIELDS = ("full_name", "email_address", "headline", "bill_rate_in_cents", "cost_rate_in_cents", "permission")


COST_RATE_FIELDS = ("account_membership_id", "currency", "amount_in_subunits")


# Per object: (path, response key, singular body key, service_model written on our external references).
COLLECTIONS = {
    "workspaces": ("/workspaces", "workspaces", "workspace", "project"),
    "time_entries": ("/time_entries", "time_entries", "time_entry", "time_entry"),
    "expenses": ("/expenses", "expenses", "expense", "expense"),
}


def to_utc(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _need_date(raw: dict, name: str) -> None:
    try:
        date.fromisoformat(str(raw.get(name)))
    except ValueError:
        raise ValueError(f"{name} {raw.get(name)!r} is not a date") from None


def _need_int(raw: dict, name: str) -> None:
    value = raw.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{name} {value!r} is not a whole number")


def same(current: Any, wanted: Any) -> bool:
    """Kantata returns ids as strings and prices as "1200.00"; compare the way a person would."""
    if isinstance(wanted, bool) or isinstance(current, bool):
        return bool(current) == bool(wanted)
    if current is None or wanted is None:
        return current is None and wanted is None
    try:
        return Decimal(str(current)) == Decimal(str(wanted))
    except ArithmeticError:
        return str(current).strip() == str(wanted).strip()


def records_of(body: dict, key: str, convert: Callable) -> tuple[list[SourceRecord], list[RejectedRecord]]:
    """Turn a Kantata response into records in `results` order; anything unreadable becomes a reject."""
    objects = body.get(key) or {}
    records: list[SourceRecord] = []
    rejects: list[RejectedRecord] = []
    for ref in body.get("results") or []:
        if ref.get("key") != key:
            continue
        raw = objects.get(str(ref.get("id")))
        if raw is None:
            rejects.append(RejectedRecord(str(ref.get("id")), f"{key} {ref.get('id')} is listed but not sent", ref))
            continue
        try:
            records.append(convert(raw, body))
        except (KeyError, TypeError, ValueError) as exc:
            rejects.append(RejectedRecord(raw.get("id") or str(ref.get("id")), str(exc), raw))
    return records, rejects


def plain_converter(object_name: str) -> Callable[[dict, dict], SourceRecord]:
    def convert(raw: dict, body: dict) -> SourceRecord:
        record_id = raw.get("id")
        if not record_id:
            raise ValueError("the record has no id")
        check_fields(object_name, raw)
        data = dict(raw)
        if "external_reference_ids" in raw:
            references = body.get("external_references") or {}
            data["external_references"] = [references[i] for i in raw["external_reference_ids"] if i in references]
        return SourceRecord(str(record_id), stamp(raw), data)

    return convert


def resource_record(membership: dict, body: dict) -> SourceRecord:
    """A resource is a user seen through its account membership (which carries the rates)."""
    if not membership.get("id"):
        raise ValueError("the account membership has no id")
    user = (body.get("users") or {}).get(str(membership.get("user_id")))
    if user is None:
        raise ValueError(f"user {membership.get('user_id')} of membership {membership['id']} was not sent")
    if "@" not in str(user.get("email_address") or ""):
        raise ValueError(f"user {user.get('id')} has no valid email address")
    data = dict(user, account_membership=dict(membership), account_membership_id=membership["id"])
    for name in ("bill_rate_in_cents", "cost_rate_in_cents", "permission", "disabled_at", "manager_id"):
        data[name] = membership.get(name)
    return SourceRecord(str(user["id"]), stamp(membership), data)


def stamp(raw: dict) -> str:
    value = raw.get("updated_at")
    if not value:
        raise ValueError("updated_at is missing")
    try:
        moment = to_utc(str(value))
    except ValueError:
        raise ValueError(f"updated_at {value!r} is not an ISO 8601 datetime") from None
    # Kantata already sends UTC with a Z; formatting again only costs time on 100k records.
    return value if len(value) == 20 and value.endswith("Z") and moment.microsecond == 0 else iso(moment)


def check_fields(object_name: str, raw: dict) -> None:
    """The fields the flows rely on must make sense, or the record is reported, not passed on."""
    if object_name == "time_entries":
        _need_date(raw, "date_performed")
        _need_int(raw, "time_in_minutes")
        if not raw.get("workspace_id"):
            raise ValueError("workspace_id is missing")
    elif object_name == "expenses":
        _need_date(raw, "date")
        _need_int(raw, "amount_in_cents")
    elif object_name == "workspaces" and not str(raw.get("title") or "").strip():
        raise ValueError("the project has no title")
    elif object_name == "cost_rates":
        _need_int(raw, "amount_in_subunits")


def referenced(body: dict, key: str, service_name: str, model: str) -> dict[str, dict]:
    """Our external id -> each object of `body` that carries our external reference (`service_name`, `model`)."""
    references = body.get("external_references") or {}
    found: dict[str, dict] = {}
    for record in (body.get(key) or {}).values():
        for ref_id in record.get("external_reference_ids") or []:
            ref = references.get(ref_id) or {}
            if ref.get("service_name") == service_name and ref.get("service_model") == model:
                found[str(ref.get("service_model_ref"))] = record
    return found
