"""Releasing records parked behind an exception, once what held them up is gone.

A cause exception ("project PRJ-161 is not in NetSuite") resolves itself when a run links the project,
a person maps its code or adds a cost rate; an exception about one record resolves when that record
syncs or a person fixes it. Either way the records waiting on it are run through their flows again,
right away, so the clerk never has to retry them one by one.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field

from django.utils import timezone

from integrations.engine import parking
from integrations.engine.orchestrator import FlowRunner
from integrations.models import SyncException, SyncRun, ValueMap
from integrations.services.reruns import exception_source_record, rerun_finish

logger = logging.getLogger("integrations.runs")

ROUNDS = 5  # a released record may release others (a company, then its deals); a chain ends within a few


@dataclass
class ReleaseResult:
    causes_resolved: int = 0
    released: int = 0  # records run again
    synced: int = 0  # of those, the ones that synced
    still_waiting: int = 0  # parked again, behind the same or another exception
    failed: int = 0  # now exceptions of their own (a different problem showed once they ran)
    reasons: list[str] = field(default_factory=list)


def exceptions_release(*, only: list[SyncException] | None = None, notify=None) -> ReleaseResult:
    """Resolve cause exceptions whose cause is gone (all live ones, or `only` these) and run the records
    parked behind any exception that is no longer live through their flows again."""
    from integrations.services.runs import target_guard

    result = ReleaseResult()
    value_maps = {vm.key: vm.as_dict() for vm in ValueMap.objects.prefetch_related("entries")}
    for _ in range(ROUNDS):
        causes = SyncException.objects.filter(status__in=SyncException.LIVE).exclude(cause="")
        if only is not None:
            causes = causes.filter(pk__in=[e.pk for e in only])
        gone = [e.pk for e in causes if parking.cause_gone(e, value_maps=value_maps)]
        if gone:
            result.causes_resolved += SyncException.objects.filter(pk__in=gone).update(
                status=SyncException.Status.RESOLVED, resolved_at=timezone.now()
            )
        waiting = list(
            SyncException.objects.filter(status=SyncException.Status.PARKED)
            .exclude(waiting_on__status__in=SyncException.LIVE)
            .select_related("flow", "flow__source_connection", "flow__inbound_mapping")
        )
        if not waiting:
            break
        by_flow: dict[int, list[SyncException]] = defaultdict(list)
        for row in waiting:
            by_flow[row.flow_id].append(row)
        for rows in by_flow.values():
            _release_flow(rows, result, notify=notify, guard=target_guard)
    return result


def _release_flow(rows: list[SyncException], result: ReleaseResult, *, notify, guard) -> None:
    flow = rows[0].flow
    from integrations.services.connections import connector_for

    run = SyncRun.objects.create(flow=flow, trigger="release", status=SyncRun.Status.RUNNING, started_at=timezone.now())
    runner = FlowRunner(flow, run, connector_for=connector_for, notify=notify, link_before_create=guard)
    records = [exception_source_record(row) for row in rows if row.payload.get("data") is not None]
    tally = runner.process(records)
    runner.flush()
    rerun_finish(run=run, tally=tally)
    result.released += len(records)
    result.synced += tally.created + tally.linked + tally.updated + tally.unchanged
    result.still_waiting += tally.parked
    result.failed += tally.failed
    # A row with no record to run (never expected) must not wait forever on a parent that is gone.
    SyncException.objects.filter(pk__in=[r.pk for r in rows if r.payload.get("data") is None]).update(
        status=SyncException.Status.OPEN, waiting_on=None
    )
