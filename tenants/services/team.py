"""The partner's team: invite admins and staff, assign staff to clients, take someone off the team."""

from __future__ import annotations

from django.db import transaction

from tenants.models import (
    Client,
    Invitation,
    Membership,
    Partner,
    Role,
    User,
)
from tenants.services.audit import partner_audit_record
from tenants.services.invitations import user_invite


@transaction.atomic
def staff_assign(*, membership: Membership, clients: list[Client], actor: User | None = None) -> None:
    """Choose the clients a partner staff member reaches (the switcher and every page follow at once)."""
    before = sorted(client.name for client in membership.assigned_clients.all())
    _staff_clients_set(membership=membership, clients=clients)
    after = sorted(client.name for client in clients)
    if before != after:
        partner_audit_record(
            partner=membership.partner,
            actor=actor,
            action="team.clients_assigned",
            target_type="member",
            target_id=membership.pk,
            summary=f"{membership.user.email} now reaches {_count(after, 'client')}",
            before={"email": membership.user.email, "clients": before},
            after={"email": membership.user.email, "clients": after},
        )


def _staff_clients_set(*, membership: Membership, clients: list[Client]) -> None:
    if membership.role != Role.PARTNER_STAFF:
        raise ValueError("Only partner staff are assigned to clients; partner admins reach every client.")
    if any(client.partner_id != membership.partner_id for client in clients):
        raise ValueError("Staff can only be assigned to their own partner's clients.")
    membership.assigned_clients.set(clients)


def _count(items, noun: str) -> str:
    return f"{len(items)} {noun}{'' if len(items) == 1 else 's'}"


@transaction.atomic
def staff_invite(
    *,
    partner: Partner,
    email: str,
    role: str,
    actor: User | None,
    clients: list[Client] | None = None,
    full_name: str = "",
) -> Membership | Invitation:
    """Invite someone to the partner's team; partner staff reach only the clients given (at once for
    someone new, when they accept for someone who already has an account). Someone already on the team
    gets the role given, and the audit log says it changed."""
    if role not in (Role.PARTNER_ADMIN, Role.PARTNER_STAFF):
        raise ValueError("The partner team has admins and staff only.")
    held = Membership.objects.filter(partner=partner, user__email__iexact=email.strip()).first()
    invited = user_invite(
        email=email,
        role=role,
        partner=partner,
        full_name=full_name,
        assigned_clients=list(clients or []),
        invited_by=actor,
    )
    if not isinstance(invited, Invitation):
        if role == Role.PARTNER_STAFF:
            _staff_clients_set(membership=invited, clients=list(clients or []))
        else:
            invited.assigned_clients.clear()
    names = sorted(client.name for client in clients or []) if role == Role.PARTNER_STAFF else []
    address = email.strip().lower()
    if held is not None and held.role != role:
        action, summary = "team.role_changed", f"{address} is now {Role(role).label} (was {Role(held.role).label})"
    elif held is not None:
        action, summary = "team.invited", f"{address} invited again as {Role(role).label}"
    else:
        action, summary = "team.invited", f"{address} invited as {Role(role).label}"
    partner_audit_record(
        partner=partner,
        actor=actor,
        action=action,
        target_type="member",
        target_id=invited.pk if isinstance(invited, Membership) else "",
        summary=summary,
        before={"email": address, "role": held.role} if held is not None else None,
        after={"email": address, "role": role, "clients": names},
    )
    return invited


class MemberRemovalRefused(Exception):  # noqa: N818
    pass


@transaction.atomic
def partner_member_remove(*, membership: Membership, actor: User) -> None:
    """Take someone off the partner's team. Their user (and any client roles) stay."""
    if membership.user_id == actor.pk:
        raise MemberRemovalRefused("You cannot remove yourself; ask another partner admin.")
    if membership.role == Role.PARTNER_ADMIN:
        admins = Membership.objects.filter(partner_id=membership.partner_id, role=Role.PARTNER_ADMIN).count()
        if admins <= 1:
            raise MemberRemovalRefused("A partner keeps at least one admin.")
    partner_audit_record(
        partner=membership.partner,
        actor=actor,
        action="team.removed",
        target_type="member",
        target_id=membership.pk,
        summary=f"{membership.user.email} removed from the team ({membership.get_role_display()})",
        before={"email": membership.user.email, "role": membership.role},
    )
    membership.delete()
