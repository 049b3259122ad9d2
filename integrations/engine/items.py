"""What a run carries: each source record on its way (Item), where the records went (Tally), and the error
that stops a run (ConnectionBroken)."""

from __future__ import annotations

from dataclasses import dataclass, field

from connectors.base import SourceRecord
from integrations.models import RunRecord


class ConnectionBroken(Exception):
    """A connection refused our credentials or address: stop the run, do not fill the queue."""

    def __init__(self, connection, error: Exception):
        super().__init__(str(error))
        self.connection = connection
        self.error = error


@dataclass
class Item:
    """One source record on its way through a run."""

    source: SourceRecord
    entities: dict[str, dict] = field(default_factory=dict)  # what the mapping made of it, per entity
    records: dict = field(default_factory=dict)  # canonical records it produced or points at, per entity
    plan: dict = field(default_factory=dict)  # entity -> store.Planned, until applied
    problems: list = field(default_factory=list)  # why it cannot sync (mapping.Problem), first one first
    conflicts: list = field(default_factory=list)  # fields another system owns that it tried to change
    skipped_entities: set = field(default_factory=set)  # parts it has nothing for (a person's cost rate)
    created: bool = False  # a canonical record was created for it
    updated: bool = False  # a canonical record changed
    linked: bool = False  # its canonical record was found by match keys (another system brought it)
    failed: bool = False
    skipped: bool = False
    exception_id: int | None = None  # the exception it ended in
    parked_on: int | None = None  # the exception it waits on
    book_key: tuple[str, str] | None = None  # its row in the page's ExceptionBook, for exception_id
    changed_entities: set = field(default_factory=set)  # canonical records this item created or changed
    targets: list[dict] = field(default_factory=list)  # what each target did: created, linked, updated...

    def payload(self) -> dict:
        return {
            "external_id": self.source.external_id,
            "updated_at": self.source.updated_at,
            "data": dict(self.source.data),
        }

    @property
    def first_sync(self) -> bool:
        return self.created or self.linked

    @property
    def outcome(self) -> str:
        if self.skipped:
            return RunRecord.Outcome.SKIPPED
        if self.parked_on:
            return RunRecord.Outcome.PARKED
        if self.failed:
            return RunRecord.Outcome.EXCEPTION
        actions = {target["action"] for target in self.targets}
        for action in ("created", "linked", "updated"):
            if action in actions:
                return action
        if self.created:
            return RunRecord.Outcome.CREATED
        if self.linked:
            return RunRecord.Outcome.LINKED
        if self.updated:
            return RunRecord.Outcome.UPDATED
        return RunRecord.Outcome.UNCHANGED


# A run adds rows faster than autovacuum counts them; with stale counts PostgreSQL plans a page's lookups for a
# table far smaller than it is, and every page gets slower (61 -> 99 ms per page over 100,000 entries, against

COUNTS = ("read", "created", "linked", "updated", "unchanged", "parked", "failed", "skipped")
OUTCOME_COUNT = {
    RunRecord.Outcome.CREATED: "created",
    RunRecord.Outcome.LINKED: "linked",
    RunRecord.Outcome.UPDATED: "updated",
    RunRecord.Outcome.UNCHANGED: "unchanged",
    RunRecord.Outcome.PARKED: "parked",
    RunRecord.Outcome.EXCEPTION: "failed",
    RunRecord.Outcome.SKIPPED: "skipped",
}


@dataclass
class Tally:
    """Where a run's records went; everything but `read` adds up to `read`."""

    read: int = 0
    created: int = 0
    linked: int = 0
    updated: int = 0
    unchanged: int = 0
    parked: int = 0
    failed: int = 0
    skipped: int = 0

    def add(self, outcome: str) -> None:
        name = OUTCOME_COUNT[outcome]
        setattr(self, name, getattr(self, name) + 1)

    def __add__(self, other: Tally) -> Tally:
        return Tally(**{name: getattr(self, name) + getattr(other, name) for name in COUNTS})
