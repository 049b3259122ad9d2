"""A client's usage by month, as the roll-up last read it from its schema."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from portal.months import this_month
from tenants.models import UsageRecord


@dataclass(frozen=True)
class Usage:
    """A client's records synced and runs in one month, as the roll-up last read them from its schema."""

    records: int = 0
    runs: int = 0
    as_of: datetime | None = None  # when the roll-up last read the schema; None: not yet
    sandbox_records: int = 0  # Sandbox runs' records: never part of `records`, billed per the plan
    sandbox_runs: int = 0
    connections: dict[str, int] = field(default_factory=dict)  # Production connections by vendor key


def usage_rolled_up(*, clients, month: date) -> dict[int, Usage]:
    """Usage of `clients` in the month containing `month`, by client id: the one source of every usage
    figure the partner console shows (home, health, revenue, statements, CSV), so they always agree.
    A client the roll-up has not reached yet is absent (its usage reads as none, with no date)."""
    rows = UsageRecord.objects.filter(client__in=clients, month=this_month(month))
    return {
        row.client_id: Usage(
            row.records_synced,
            row.runs,
            row.updated_at,
            sandbox_records=row.sandbox_records_synced,
            sandbox_runs=row.sandbox_runs,
            connections=row.connections,
        )
        for row in rows
    }


def usage_as_of(usages) -> datetime | None:
    """The oldest roll-up among figures shown together: the moment the sum is true of."""
    moments = [usage.as_of for usage in usages if usage.as_of is not None]
    return min(moments) if moments else None
