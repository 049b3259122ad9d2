"""The two audit logs a public-schema change writes to: the partner console's and the client workspace's."""

from __future__ import annotations

from tenants.models import (
    Client,
    Partner,
    PartnerAuditEvent,
    User,
)
from tenants.signals import workspace_changed


def audit_changes(before: dict, after: dict) -> tuple[dict, dict]:
    """Only the values that changed, as JSON-ready text: what an audit row shows of an edit."""
    changed = [key for key in after if before.get(key) != after.get(key)]
    return {key: json_ready(before.get(key)) for key in changed}, {key: json_ready(after.get(key)) for key in changed}


def json_ready(value):
    return value if value is None or isinstance(value, bool | int | str | list | dict) else str(value)


def client_audit_record(
    *, client: Client, actor: User | None, action: str, summary: str, before=None, after=None
) -> None:
    """An audit row in the client's own schema, where its people read their workspace's history.

    Call it inside the change's transaction: the public-schema write and this row commit together. The row
    is written by whoever listens to `workspace_changed` (integrations keeps the workspace's audit log).
    """
    workspace_changed.send(
        sender=Client, client=client, actor=actor, action=action, summary=summary, before=before, after=after
    )


def partner_audit_record(
    *,
    partner: Partner,
    actor: User | None,
    action: str,
    summary: str,
    target_type: str = "",
    target_id="",
    before=None,
    after=None,
) -> PartnerAuditEvent:
    """An audit row in the partner console's log (public schema): a change to the partner's own settings.

    Call it inside the change's transaction, as for client_audit_record. `before` and `after` hold what a
    partner admin needs to see what changed, never a secret (SSO secrets, tokens, keys stay out).
    """
    return PartnerAuditEvent.objects.create(
        partner=partner,
        actor=actor if getattr(actor, "pk", None) else None,
        actor_email=getattr(actor, "email", "") or "",
        action=action,
        target_type=target_type,
        target_id=str(target_id or ""),
        summary=summary[:300],
        before=before,
        after=after,
    )
