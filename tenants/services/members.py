"""People of one client workspace: invite, change role, remove. Public-schema memberships, audited
in the client's own schema."""

from __future__ import annotations

from django.db import transaction

from tenants.models import CLIENT_ROLES, Client, Invitation, Membership, Role, User
from tenants.services.audit import client_audit_record
from tenants.services.invitations import user_invite


class MemberChangeRefused(Exception):  # noqa: N818 - the domain's words, shown to the user
    pass


def _check_role(role: str) -> None:
    if role not in CLIENT_ROLES:
        raise MemberChangeRefused("A workspace member is a client admin, finance user or viewer.")


def _last_admin(membership: Membership) -> bool:
    if membership.role != Role.CLIENT_ADMIN:
        return False
    return (
        not Membership.objects.filter(client=membership.client, role=Role.CLIENT_ADMIN)
        .exclude(pk=membership.pk)
        .exists()
    )


@transaction.atomic
def workspace_member_invite(
    *, client: Client, email: str, role: str, full_name: str = "", actor: User
) -> Membership | Invitation:
    """Invite someone into the workspace (`user_invite`: someone with an account joins
    when they accept). The partner's own people are not invited: they reach the workspace through
    the partner's assignments, and a workspace role would outlive an unassignment or let a client
    admin lock the partner out of its own client's connections."""
    _check_role(role)
    email = email.strip().lower()
    existing = Membership.objects.filter(client=client, user__email=email).first()
    if existing is not None:
        raise MemberChangeRefused(f"{email} is already a member of {client.name}; change their role instead.")
    if Membership.objects.filter(partner_id=client.partner_id, user__email__iexact=email).exists():
        raise MemberChangeRefused(
            f"{email} is on {client.partner.name}'s team: they reach {client.name} through the partner, "
            "not a workspace role."
        )
    membership = user_invite(email=email, role=role, client=client, full_name=full_name, invited_by=actor)
    client_audit_record(
        client=client,
        actor=actor,
        action="member.invited",
        summary=f"Invited {email} as {Role(role).label}",
        after={"email": email, "role": role},
    )
    return membership


@transaction.atomic
def workspace_member_role_set(*, membership: Membership, role: str, actor: User) -> Membership:
    _check_role(role)
    if membership.role == role:
        return membership
    if _last_admin(membership):
        raise MemberChangeRefused("A workspace keeps at least one client admin.")
    before = membership.role
    membership.role = role
    membership.save(update_fields=["role"])
    client_audit_record(
        client=membership.client,
        actor=actor,
        action="member.role_changed",
        summary=f"{membership.user.email} is now {Role(role).label} (was {Role(before).label})",
        before={"role": before},
        after={"role": role},
    )
    return membership


@transaction.atomic
def workspace_member_remove(*, membership: Membership, actor: User) -> None:
    if membership.user_id == actor.pk:
        raise MemberChangeRefused("You cannot remove yourself; ask another admin.")
    if _last_admin(membership):
        raise MemberChangeRefused("A workspace keeps at least one client admin.")
    email, role = membership.user.email, membership.role
    client = membership.client
    membership.delete()
    client_audit_record(
        client=client,
        actor=actor,
        action="member.removed",
        summary=f"Removed {email} ({Role(role).label})",
        before={"email": email, "role": role},
    )
