from __future__ import annotations

from integrations.models import AuditEvent


def audit_record(
    *, actor, action: str, target_type: str = "", target_id: str = "", summary: str = "", before=None, after=None
) -> AuditEvent:
    """Append one audit row in the current client schema. Call it inside the change's transaction."""
    return AuditEvent.objects.create(
        actor_id=getattr(actor, "pk", None),
        actor_email=getattr(actor, "email", "") or "",
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        summary=summary[:300],
        before=before,
        after=after,
    )
