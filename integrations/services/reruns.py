"""Records kept on exceptions, run through their flow again outside a scheduled sync (a retry, a release, a person's
match), and the run that counts them."""

from __future__ import annotations

from django.utils import timezone

from connectors.base import SourceRecord
from integrations.engine.orchestrator import COUNTS, Tally
from integrations.models import SyncException, SyncRun


def exception_source_record(exception: SyncException) -> SourceRecord:
    """The source record an exception kept, as its flow read it (with any field a person corrected since)."""
    payload = exception.payload
    return SourceRecord(
        external_id=payload.get("external_id") or exception.external_id,
        updated_at=payload.get("updated_at") or "",
        data=payload.get("data") or {},
    )


def rerun_finish(*, run: SyncRun, tally: Tally) -> None:
    """The run's counts, every one of them, so they add up to what it read; partial when a record failed or waits."""
    SyncRun.objects.filter(pk=run.pk).update(
        **{name: getattr(tally, name) for name in COUNTS},
        status=SyncRun.Status.PARTIAL if tally.failed or tally.parked else SyncRun.Status.SUCCEEDED,
        finished_at=timezone.now(),
    )
