"""One exception per cause, and the records that wait on it.

A time entry whose project is not in the ERP, a deal whose company is in the CRM twice, a person's
time while they have no cost rate: the clerk should see one exception per cause, saying how many
records wait on it, and fixing the cause should release them. Causes are keyed
(`SyncException.cause`), so whichever flow meets a cause first raises it and every other record held
up by it, in any flow, is parked behind that same exception.
"""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils import timezone

from integrations.models import ExternalRef, Flow, Project, Rate, Resource, SyncException, SyncRun

WAITING_ON = "WAITING_ON"


def not_in_target_cause(*, connection_id: int, entity: str, record_id: int) -> str:
    return f"not_in_target:{connection_id}:{entity}:{record_id}"


def missing_cost_rate_cause(*, resource_id: int) -> str:
    return f"missing_cost_rate:{resource_id}"


def first_sync_cause(*, flow_id: int) -> str:
    """Records that wait for a flow's first sync: time whose cost rates that flow brings (an HR system's)."""
    return f"first_sync:{flow_id}"


def cost_rate_flows_not_synced(*, besides: Flow) -> list[Flow]:
    """The workspace's enabled flows that bring people's cost rates (an HR system's) and have not finished a first
    sync: until they have, a person without a cost rate here may well have one there."""
    return list(
        Flow.objects.filter(enabled=True, inbound_mapping__rules__target="rate.amount")
        .exclude(pk=besides.pk)
        .exclude(runs__status__in=SyncRun.FINISHED)
        .select_related("source_connection")
        .distinct()
        .order_by("pk")
    )


def hr_record_failed(person) -> SyncException | None:
    """The live exception of this person's HR record, when it could not sync (a department or a work email
    missing): the store then lacks what the HR system holds for them, their cost rate included, and that record
    is what their time waits on. Found by what the exception names the person by: their email, else their name."""
    from connectors.registry import CONNECTORS

    hr = [vendor for vendor, connector in CONNECTORS.items() if connector.category == "hr"]
    names = {name for name in (person.email, str(person)) if name}
    return (
        SyncException.objects.filter(
            flow__entity="resource",
            flow__source_connection__vendor__in=hr,
            cause="",
            subject__in=names,
            status__in=SyncException.LIVE,
        )  # fmt: skip
        .order_by("pk")
        .first()
    )


def duplicate_cause(*, connection_id: int, entity: str, record_id: int, external_id: str) -> str:
    """One pair: the record `external_id` of a system that looks like the one already linked to `record_id`.
    With external_id "" it is the prefix of every pair about that record."""
    return f"duplicate:{connection_id}:{entity}:{record_id}:{external_id}"


def unknown_code_cause(*, connection_id: int, entity: str, code: str) -> str:
    """A code a system gives (a project's, on time logged in a ticketing system) that names no record here."""
    return f"unknown_code:{connection_id}:{entity}:{code}"


def cause_raise(
    *,
    cause: str,
    flow,
    run,
    subject: str,
    object_name: str,
    error_code: str,
    message: str,
    source_system: str = "",
    target_system: str = "",
    fix_actions: list | None = None,
    payload: dict | None = None,
    external_id: str = "",
) -> SyncException:
    """The live exception for `cause`, raised now if nobody raised it yet (in any flow)."""
    live = SyncException.objects.filter(cause=cause, status__in=SyncException.LIVE).first()
    if live is not None:
        return live
    now = timezone.now()
    try:
        with transaction.atomic():
            return SyncException.objects.create(
                flow=flow,
                first_run=run,
                last_run=run,
                source_system=source_system,
                target_system=target_system,
                object=object_name,
                external_id=external_id or subject[:200],
                subject=subject[:200],
                cause=cause,
                payload=payload or {},
                error_code=error_code,
                message=message[:500],
                fix_actions=fix_actions or [{"action": "retry"}],
                created_at=now,
                last_seen_at=now,
            )
    except IntegrityError:  # raised by another run a moment ago
        return SyncException.objects.get(cause=cause, status__in=SyncException.LIVE)


def root_of(exception: SyncException) -> SyncException:
    """The exception at the end of a chain of waits: the one a person must act on."""
    seen = set()
    while exception.waiting_on_id and exception.pk not in seen:
        seen.add(exception.pk)
        parent = SyncException.objects.filter(pk=exception.waiting_on_id).first()
        if parent is None:
            break
        exception = parent
    return exception


def record_exception(*, connection, object_name: str, external_id: str) -> SyncException | None:
    """A live exception about one record of a system (in any flow reading it), or None."""
    return (
        SyncException.objects.filter(
            flow__source_connection=connection,
            object=object_name,
            external_id=external_id,
            status__in=(*SyncException.LIVE, SyncException.Status.PARKED),
        )
        .order_by("pk")
        .first()
    )


def subject_exception(*, connection, subject: str) -> SyncException | None:
    """A live exception about a record of `connection` a person names `subject` ("PRJ-112"), or None."""
    return (
        SyncException.objects.filter(
            flow__source_connection=connection,
            subject=subject,
            status__in=(*SyncException.LIVE, SyncException.Status.PARKED),
        )
        .exclude(cause__startswith="not_in_target:")
        .order_by("pk")
        .first()
    )


def cause_gone(exception: SyncException, *, value_maps: dict | None = None) -> bool:
    """Whether what a cause exception says is no longer true (the link appeared, the rate was added)."""
    kind, _, rest = exception.cause.partition(":")
    if kind == "not_in_target":
        connection_id, entity, record_id = rest.split(":")
        if ExternalRef.objects.filter(
            connection_id=int(connection_id), entity=entity, record_id=int(record_id), alias=False
        ).exists():
            return True
        # A clerk mapped the code onto one the target has: the records will take that one.
        for fix in exception.fix_actions:
            if fix.get("action") == "map_value" and (value_maps or {}).get(fix["value_map"], {}).get(fix["value"]):
                return True
        return False
    if kind == "unknown_code":
        _connection_id, _entity, code = rest.split(":", 2)
        if Project.objects.filter(code=code).exists():
            return True
        return any(
            fix.get("action") == "map_value" and (value_maps or {}).get(fix["value_map"], {}).get(fix["value"])
            for fix in exception.fix_actions
        )
    if kind == "missing_cost_rate":
        if Rate.objects.filter(resource_id=int(rest), kind=Rate.Kind.COST).exists():
            return True
        # Not the cause after all: the person's HR record could not sync, so their time waits on that instead.
        person = Resource.objects.filter(pk=int(rest)).first()
        return person is not None and hr_record_failed(person) is not None
    if kind == "first_sync":
        # Gone once the flow has read its source to the end, or will not (switched off or removed): the records
        # then run again and wait on what is true of each (a person with no cost rate in HR either).
        flow = Flow.objects.filter(pk=int(rest), enabled=True).first()
        return flow is None or flow.runs.filter(status__in=SyncRun.FINISHED).exists()
    return False  # duplicates and ambiguous matches are decided by a person


def parked_count(exception: SyncException) -> int:
    return exception.parked.filter(status=SyncException.Status.PARKED).count()
