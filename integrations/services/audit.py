"""The workspace's audit log: one row per change, written in the change's transaction."""

from __future__ import annotations

from django_tenants.utils import tenant_context

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


def workspace_change_record(sender, *, client, actor, action: str, summary: str, before=None, after=None, **_) -> None:
    """Receives tenants' `workspace_changed`: a change made in the public schema (the console, invitations,
    sign-on, API keys) goes to the client's own audit log, where its people read their workspace's history."""
    with tenant_context(client):
        audit_record(
            actor=actor,
            action=action,
            target_type="workspace",
            target_id=str(client.pk),
            summary=summary,
            before=before,
            after=after,
        )
