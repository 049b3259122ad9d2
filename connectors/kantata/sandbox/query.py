"""Kantata listings: filters (`updated_after`, `approved`, external references), `order=`, pages and side-loading."""

from __future__ import annotations

import math
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from datetime import date
from typing import Any

from werkzeug.wrappers import Request, Response

from connectors.kantata.sandbox.state import (
    DEFAULT_PER_PAGE,
    MAX_PER_PAGE,
    SUBJECT_TYPES,
    IndexView,
    LazyTable,
    _approved,
    _timestamp,
    _truthy,
    errors,
)
from connectors.sandbox.app import json_response


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


class KantataListing:
    """The response format every collection shares, and the lazily computed pages."""

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
