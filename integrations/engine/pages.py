"""Reading a source a page ahead: the next page arrives over HTTP while the current one is written, and
the vendor's small pages gathered into pages of about a thousand records, so what a page costs the database
(a dozen statements, two transactions) is paid once per thousand records rather than once per 200.

The connector's generator runs in a thread of its own and hands pages over through a queue that holds at
most `ahead` of them, so memory stays bounded whatever the volume. The connector is used by that thread
alone; an error it raises reaches the reader at the page it would have been.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from dataclasses import replace

from connectors.base import Page

_DONE = object()


class _Failure:
    def __init__(self, error: BaseException):
        self.error = error


GATHER_RECORDS = 1000


def gathered(pages: Iterator[Page], *, at_least: int = GATHER_RECORDS) -> Iterator[Page]:
    """Consecutive pages as one, until it holds `at_least` records or the source has no more. The gathered
    page resumes where its last page does (its cursor and has_more), so a slice still ends only where the
    source gave a place to resume from."""
    group: list[Page] = []
    held = 0
    try:
        for page in pages:
            group.append(page)
            held += len(page.records) + len(page.rejects)
            if held >= at_least or not page.has_more:
                yield _joined(group)
                group, held = [], 0
        if group:
            yield _joined(group)
    finally:
        close = getattr(pages, "close", None)
        if close is not None:
            close()  # a slice that stops early lets the connector leave its read now, not at garbage collection


def _joined(group: list[Page]) -> Page:
    if len(group) == 1:
        return group[0]
    last = group[-1]
    return replace(
        last,
        records=[record for page in group for record in page.records],
        rejects=[reject for page in group for reject in page.rejects],
        total=next((page.total for page in group if page.total is not None), None),
    )


def prefetched(pages: Iterator, *, ahead: int = 2) -> Iterator:
    """Yield what `pages` yields, reading up to `ahead` pages before they are asked for."""
    handoff: queue.Queue = queue.Queue(maxsize=ahead)
    stop = threading.Event()

    def produce() -> None:
        try:
            for page in pages:
                while not stop.is_set():
                    try:
                        handoff.put(page, timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            handoff.put(_DONE)
        except BaseException as error:  # noqa: BLE001 - handed to the consumer, raised there
            handoff.put(_Failure(error))
        finally:
            close = getattr(pages, "close", None)
            if close is not None and stop.is_set():
                close()

    thread = threading.Thread(target=produce, name="page-reader", daemon=True)
    thread.start()
    try:
        while True:
            item = handoff.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item
    finally:
        stop.set()
        # Let a producer blocked on a full queue see the stop, then wait for it to leave the connector.
        while thread.is_alive():
            try:
                handoff.get_nowait()
            except queue.Empty:
                pass
            thread.join(timeout=0.1)
