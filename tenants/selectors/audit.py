"""The partner console's audit log."""

from __future__ import annotations

from portal.audit_log import audit_page
from tenants.models import Partner, PartnerAuditEvent


def partner_audit_events(
    partner: Partner, *, action: str = "", actor: str = "", q: str = "", since=None, until=None, after: str = ""
) -> tuple[list[PartnerAuditEvent], str | None]:
    """One page of the partner's audit log, newest first, and the cursor of the next (older) page, if any.

    `action` is a group ("team") or one action ("team.invited"); `after` is the cursor a previous page gave.
    """
    events = PartnerAuditEvent.objects.filter(partner=partner)
    return audit_page(events, action=action, actor=actor, q=q, since=since, until=until, after=after)


def partner_audit_action_groups(partner: Partner) -> list[str]:
    """The kinds of change the partner's log holds ("brand", "team", ...), for its filter."""
    actions = PartnerAuditEvent.objects.filter(partner=partner).order_by().values_list("action", flat=True).distinct()
    return sorted({action.split(".", 1)[0] for action in actions})
