"""A person's decisions about identity: two records of one system that are the same customer, the record a
source record is when it matches several, and a cost rate set by hand. Each is audited, resolves its
exception and releases what waited on it."""

from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation

from django.db import transaction
from django.utils import timezone

from integrations.engine.entities import ENTITIES
from integrations.engine.orchestrator import FlowRunner
from integrations.models import ExternalRef, Rate, Resource, SyncException, SyncRun
from integrations.services.audit import audit_record
from integrations.services.connections import connector_for
from integrations.services.exceptions import ExceptionActionRefused, exceptions_retry
from integrations.services.releases import exceptions_release
from integrations.services.reruns import exception_source_record, rerun_finish
from integrations.services.runs import target_guard


def _record_id_of_pair(exception: SyncException) -> int:
    # duplicate:<connection>:<entity>:<record id>:<external id>
    return int(exception.cause.split(":")[3])


def _resolve(exception: SyncException, *, action: str, summary: str, actor, after: dict) -> dict:
    before = {"status": exception.status}
    exception.status = SyncException.Status.RESOLVED
    exception.resolved_at = timezone.now()
    exception.save(update_fields=["status", "resolved_at"])
    audit_record(
        actor=actor,
        action=action,
        target_type="exception",
        target_id=exception.pk,
        summary=summary,
        before=before,
        after=after,
    )
    return after


def exception_duplicate_resolve(*, exception: SyncException, keep: str = "", same: bool = True, actor=None) -> dict:
    """Two records of one system look like one record here (a customer entered twice).

    same=True: both stand for it from now on, `keep` the one written to (the other becomes an alias, so
    whatever points at it is found). same=False: they are different, and this one gets a record of its own.
    Returns what happened, with how many waiting records synced.
    """
    if exception.error_code != "DUPLICATE_IN_SOURCE" or not exception.is_live:
        raise ExceptionActionRefused("This exception is not an open pair of duplicates.")
    flow = exception.flow
    connection = flow.source_connection
    record_id = _record_id_of_pair(exception)
    twin = next((f["keep"] for f in exception.fix_actions if f.get("keep") not in (None, exception.external_id)), "")
    label = ENTITIES[flow.entity].label.lower()
    with transaction.atomic():
        if not same:
            _run_one(exception, unmatched=True)
            outcome = {"decision": "different", "record": exception.external_id}
            summary = f"Not the same {label}: {exception.external_id} is a {label} of its own"
        else:
            if keep not in (twin, exception.external_id):
                raise ExceptionActionRefused("Choose one of the two records to keep.")
            if keep == exception.external_id:
                # This record becomes the one written to; the one linked so far is kept as an alias.
                ExternalRef.objects.filter(
                    connection=connection, object=exception.object, entity=flow.entity, record_id=record_id, alias=False
                ).update(alias=True)
            ExternalRef.objects.update_or_create(
                connection=connection,
                object=exception.object,
                external_id=exception.external_id,
                defaults={"entity": flow.entity, "record_id": record_id, "alias": keep != exception.external_id},
            )
            outcome = {"decision": "same", "keep": keep, "alias": twin if keep == exception.external_id else keep}
            summary = f"The same {label}: {connection.name} {exception.object} {twin} and {exception.external_id}, keeping {keep}"
        _resolve(exception, action="exception.duplicate_resolved", summary=summary, actor=actor, after=outcome)
    released = exceptions_release(only=[])
    return {**outcome, "released": released.synced, "still_waiting": released.still_waiting}


def exception_pick(*, exception: SyncException, record_id: int | None, actor=None) -> dict:
    """The record a source record is, among the candidates it matched (remembered), or None: a new one."""
    if exception.error_code != "AMBIGUOUS_MATCH" or not exception.is_live:
        raise ExceptionActionRefused("This exception is not a choice between matching records.")
    flow = exception.flow
    candidates = [f["record"] for f in exception.fix_actions if f.get("action") == "pick"]
    if record_id is not None and record_id not in candidates:
        raise ExceptionActionRefused("Pick one of the records offered.")
    with transaction.atomic():
        if record_id is None:
            _run_one(exception, unmatched=True)
            summary = f"{exception.subject or exception.external_id} is a new {ENTITIES[flow.entity].label.lower()}"
        else:
            ExternalRef.objects.update_or_create(
                connection=flow.source_connection,
                object=exception.object,
                external_id=exception.external_id,
                defaults={"entity": flow.entity, "record_id": record_id, "alias": False},
            )
            picked = ENTITIES[flow.entity].model.objects.filter(pk=record_id).first()
            summary = f"{exception.subject or exception.external_id} is “{picked}”"
        audit_record(
            actor=actor,
            action="exception.match_picked",
            target_type="exception",
            target_id=exception.pk,
            summary=summary,
            after={"record": record_id},
        )
    if record_id is not None:
        return exceptions_retry(exceptions=[exception], actor=actor)
    exception.refresh_from_db()
    return {"retried": 1, "resolved": int(exception.status == SyncException.Status.RESOLVED), "released": 0}


def _run_one(exception: SyncException, *, unmatched: bool) -> None:
    """Run the exception's record through its flow again, without matching it to records that look alike."""
    flow = exception.flow
    run = SyncRun.objects.create(flow=flow, trigger="retry", status=SyncRun.Status.RUNNING, started_at=timezone.now())
    runner = FlowRunner(flow, run, connector_for=connector_for, link_before_create=target_guard)
    if unmatched:
        runner.store.unmatched.add((exception.object, exception.external_id))
    tally = runner.process([exception_source_record(exception)])
    runner.flush()
    rerun_finish(run=run, tally=tally)


def resource_cost_rate_set(
    *, exception: SyncException, amount: str, currency: str, effective_from: date | None = None, actor=None
) -> dict:
    """A cost rate a finance person sets for someone the HR system has none for; their time is released."""
    if exception.error_code != "MISSING_COST_RATE" or not exception.is_live:
        raise ExceptionActionRefused("This exception is not about a missing cost rate.")
    resource_id = next((f["resource"] for f in exception.fix_actions if f.get("action") == "set_cost_rate"), None)
    person = Resource.objects.filter(pk=resource_id).first()
    if person is None:
        raise ExceptionActionRefused("The person this exception is about is no longer here.")
    try:
        value = Decimal(str(amount).strip().replace(",", ""))
    except (InvalidOperation, ValueError):
        raise ExceptionActionRefused(f"“{amount}” is not an amount.") from None
    if not value.is_finite() or value <= 0 or value >= Decimal("1000000"):
        raise ExceptionActionRefused("A cost rate is an amount per hour above 0.")
    code = (currency or "").strip().upper()
    if len(code) != 3 or not code.isalpha():
        raise ExceptionActionRefused("Give the currency as a three-letter code such as USD.")
    start = effective_from or person.hire_date or date(2000, 1, 1)
    with transaction.atomic():
        rate = Rate.objects.create(
            kind=Rate.Kind.COST,
            resource=person,
            amount=value.quantize(Decimal("0.01")),
            currency=code,
            effective_from=start,
            role="set by hand",
        )
        audit_record(
            actor=actor,
            action="rate.set_by_hand",
            target_type="exception",
            target_id=exception.pk,
            summary=f"Set {person}'s cost rate to {rate.amount} {code}/h from {start:%-d %b %Y}",
            after={"resource": person.pk, "amount": str(rate.amount), "currency": code, "from": start.isoformat()},
        )
    released = exceptions_release(only=[exception])
    exception.refresh_from_db()
    return {
        "resolved": int(exception.status == SyncException.Status.RESOLVED),
        "released": released.synced,
        "still_waiting": released.still_waiting,
    }
