"""Calendar months as the product counts them: a month is named by its first day, and runs up to (not including)
the first day of the next one. Shared by the engine's invoices, the dashboards, usage and revenue."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from django.utils import timezone


def month_start(day: date) -> date:
    return day.replace(day=1)


def this_month(today: date | None = None) -> date:
    """The month of `today` (the local date when not given)."""
    return month_start(today or timezone.localdate())


def month_bounds(day: date) -> tuple[date, date]:
    """The month of `day` as [its first day, the next month's first day)."""
    first = month_start(day)
    return first, (first.replace(day=28) + timedelta(days=4)).replace(day=1)


def month_last_day(day: date) -> date:
    return month_bounds(day)[1] - timedelta(days=1)


def month_of(value: date | datetime) -> date:
    """A date, or a datetime's date (what a database truncation to the month gives, depending on the column)."""
    return value.date() if isinstance(value, datetime) else value
