"""The workspace's audit log, newest first, paged by keyset."""

from __future__ import annotations

from datetime import UTC, datetime

from django.db.models import Q

from integrations.models import AuditEvent
from integrations.selectors.counting import distinct_values

AUDIT_PAGE_SIZE = 50


def audit_events(
    *, action: str = "", actor: str = "", target_type: str = "", q: str = "", since=None, until=None, after: str = ""
) -> tuple[list[AuditEvent], str | None]:
    qs = AuditEvent.objects.all()
    if action:
        qs = qs.filter(action=action) if "." in action else qs.filter(action__startswith=f"{action}.")
    if actor:
        qs = qs.filter(actor_email__icontains=actor)
    if target_type:
        qs = qs.filter(target_type=target_type)
    if q:
        qs = qs.filter(summary__icontains=q)
    if since:
        qs = qs.filter(at__date__gte=since)
    if until:
        qs = qs.filter(at__date__lte=until)
    if after:
        try:
            at_micros, pk = (int(part) for part in after.split(".", 1))
            moment = datetime.fromtimestamp(at_micros // 1_000_000, tz=UTC).replace(microsecond=at_micros % 1_000_000)
            qs = qs.filter(at__lte=moment).filter(Q(at__lt=moment) | Q(pk__lt=pk))
        except (ValueError, OverflowError, OSError):
            pass
    events = list(qs.order_by("-at", "-id")[: AUDIT_PAGE_SIZE + 1])
    more = len(events) > AUDIT_PAGE_SIZE
    events = events[:AUDIT_PAGE_SIZE]
    next_cursor = None
    if more and events:
        last = events[-1]
        next_cursor = f"{int(last.at.timestamp()) * 1_000_000 + last.at.microsecond}.{last.pk}"
    return events, next_cursor


def audit_action_groups() -> list[str]:
    return sorted({value.split(".", 1)[0] for value in distinct_values(AuditEvent, "action")})
