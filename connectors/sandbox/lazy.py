"""Tables too large to hold: seeded rows computed from their index, beside the rows written through the API."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any


class SeededTable(ABC):
    """Seeded row i is `make(i)` until the API changes it (then it is kept in `changed`, by index); rows the API
    creates are kept in `created`, by id. A subclass says which seeded index an id names, in `index_of`."""

    def __init__(self, make: Callable[[int], dict[str, Any]], count: int):
        self.make = make
        self.count = count
        self.changed: dict[int, dict[str, Any]] = {}
        self.created: dict[str, dict[str, Any]] = {}

    @abstractmethod
    def index_of(self, record_id: str) -> int | None:
        """The seeded index `record_id` names, or None when it names no seeded row."""

    def get(self, record_id: str) -> dict[str, Any] | None:
        if record_id in self.created:
            return self.created[record_id]
        index = self.index_of(record_id)
        if index is None:
            return None
        return self.changed.get(index) or self.make(index)
