"""The exception queue's bulk actions as a person asks for them: retry or ignore the ticked exceptions, or every
one the filters match, in the request up to BULK_LIMIT and on a worker past it."""

from __future__ import annotations

from dataclasses import dataclass

from integrations import selectors
from integrations.services.exceptions import (
    ExceptionActionRefused,
    RetryUnreachable,
    exception_ignore,
    exceptions_bulk_start,
    exceptions_retry,
    retrying,
)

# Bulk actions run in the request: this many at a time keeps it to seconds.
BULK_LIMIT = 500


@dataclass(frozen=True)
class BulkOutcome:
    """What to tell the person, and what changed: the queue refreshes on `event`, or not at all."""

    note: str
    level: str = "success"
    event: str = "exceptions-changed"  # "bulk-started" when a worker took it; "" when nothing changed


def exceptions_bulk_act(
    *, query, action: str, scope: str | None, ids: list[str], reason: str, actor, sla_hours: int | None
) -> BulkOutcome:
    """Retry or ignore the chosen live exceptions: the ticked `ids`, or all the filters match (`scope` "filtered").

    `action` "ignore-all" is one button's way of saying "ignore every one that matches"; anything else but
    "ignore" retries. Ignoring needs a reason, refused before anything runs. Past BULK_LIMIT matches a worker
    takes over (exceptions_bulk_start); within it they are acted on here, oldest first.
    """
    matching = selectors.exceptions_filtered(query, user_id=getattr(actor, "pk", None), sla_hours=sla_hours)
    live = matching.filter(status__in=selectors.LIVE_EXCEPTION)
    if action == "ignore-all":
        action, scope = "ignore", "filtered"
    elif action != "ignore":
        action = "retry"
    reason = (reason or "").strip()
    if action == "ignore" and not reason:
        # Nothing changed, so the table is not refreshed: the ticks stay.
        return BulkOutcome("Say why these exceptions are ignored.", "error", event="")
    if scope == "filtered":
        chosen = live.order_by("created_at", "id")
        total = selectors.bounded_count(live)
    else:
        picked = [int(value) for value in ids if value.isascii() and value.isdigit()][:BULK_LIMIT]
        chosen = live.filter(pk__in=picked).order_by("created_at", "id")
        total = None
    if total is not None and int(total) > BULK_LIMIT:
        return _in_background(query=query, action=action, reason=reason, actor=actor, sla_hours=sla_hours)
    batch = list(chosen.select_related("flow")[:BULK_LIMIT])
    if not batch:
        return BulkOutcome("Nothing to do: choose open exceptions first.", "error")
    level = "success"
    if action == "ignore":
        for exception in batch:
            exception_ignore(exception=exception, reason=reason[:300], actor=actor)
        note = f"Ignored {len(batch)} exception{'s' if len(batch) != 1 else ''}."
    else:
        try:
            outcome = retrying(exceptions_retry, exceptions=batch, actor=actor)
        except (ExceptionActionRefused, RetryUnreachable) as refused:
            note, level = str(refused), "error"
        else:
            note = (
                f"Retried {outcome['retried']}: {outcome['resolved']} resolved, {outcome['still_open']} still open."
                if outcome["retried"]
                else "None of these can be retried: they have no stored record."
            )
    if total is not None and int(total) > len(batch):
        note += f" That was the oldest {len(batch)} of {int(total):,}; run it again for the next ones."
    return BulkOutcome(note, level)


def _in_background(*, query, action: str, reason: str, actor, sla_hours: int | None) -> BulkOutcome:
    """More than one request should handle: a worker acts on them in batches; the queue shows its progress."""
    try:
        job = exceptions_bulk_start(action=action, reason=reason, query=query, sla_hours=sla_hours, actor=actor)
    except ExceptionActionRefused as refused:  # one already running, or the workspace is suspended
        return BulkOutcome(str(refused), "error", event="bulk-started")
    return BulkOutcome(
        f"{job.doing} {job.total:,} exceptions in the background; progress shows above the queue.",
        event="bulk-started",
    )
