"""Cursor paging by id: a page of `limit` rows after the cursor, and the cursor of the next page."""

from __future__ import annotations

from ninja import Path

from api.schemas import MAX_ID, SLUG

ID_CURSOR = r"^[0-9]{0,18}$"  # a page's cursor: the last id it showed, or empty for the first page


def id_path():
    return Path(..., ge=1, le=MAX_ID)


def slug_path():
    return Path(..., pattern=SLUG, max_length=40)


def page_by_id(queryset, *, cursor: str, limit: int, descending: bool = False) -> dict:
    if cursor:
        queryset = queryset.filter(pk__lt=int(cursor)) if descending else queryset.filter(pk__gt=int(cursor))
    rows = list(queryset.order_by("-pk" if descending else "pk")[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    return {"items": rows, "next_cursor": str(rows[-1].pk) if more and rows else None}
