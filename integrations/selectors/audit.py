"""The workspace's audit log, newest first, paged by keyset."""

from __future__ import annotations

from integrations.models import AuditEvent
from integrations.selectors.counting import distinct_values
from portal.audit_log import audit_page


def audit_events(
    *, action: str = "", actor: str = "", target_type: str = "", q: str = "", since=None, until=None, after: str = ""
) -> tuple[list[AuditEvent], str | None]:
    events = AuditEvent.objects.all()
    if target_type:
        events = events.filter(target_type=target_type)
    return audit_page(events, action=action, actor=actor, q=q, since=since, until=until, after=after)


def audit_action_groups() -> list[str]:
    return sorted({value.split(".", 1)[0] for value in distinct_values(AuditEvent, "action")})
