"""Who is on a partner's team or in a workspace, and who is invited."""

from __future__ import annotations

from django.core.cache import cache
from django.db.models import QuerySet
from django.utils import timezone

from tenants.models import Client, Invitation, Membership, Partner, Role


def pending_invitations(*, partner: Partner | None = None, client: Client | None = None) -> QuerySet[Invitation]:
    """Invitations to the partner's team, or to one workspace, not yet accepted and not expired."""
    invitations = Invitation.objects.filter(expires_at__gt=timezone.now()).select_related("user")
    if client is not None:
        return invitations.filter(client=client).order_by("email")
    return invitations.filter(partner=partner).prefetch_related("assigned_clients").order_by("email")


def client_members(client: Client) -> QuerySet[Membership]:
    return Membership.objects.filter(client=client).select_related("user").order_by("user__email")


def partner_staff(partner: Partner) -> QuerySet[Membership]:
    return (
        Membership.objects.filter(partner=partner)
        .select_related("user")
        .prefetch_related("assigned_clients")
        .order_by("role", "user__email")
    )


def workspace_people(client) -> list[tuple[int, str]]:
    """Who may be assigned exceptions: the client's admins and finance staff, and the partner's
    admins and the staff assigned to this client. Kept half a minute: every queue page asks."""
    key = f"workspace-people:{client.pk}"
    people = cache.get(key)
    if people is None:
        people = _workspace_people(client)
        cache.set(key, people, 30)
    return people


def _workspace_people(client) -> list[tuple[int, str]]:
    members = Membership.objects.filter(client=client, role__in=[Role.CLIENT_ADMIN, Role.CLIENT_FINANCE])
    partner_admins = Membership.objects.filter(partner_id=client.partner_id, role=Role.PARTNER_ADMIN)
    staff = Membership.objects.filter(partner_id=client.partner_id, role=Role.PARTNER_STAFF, assigned_clients=client)
    people = {}
    for membership in (members | partner_admins | staff).select_related("user").order_by("user__email"):
        people[membership.user_id] = membership.user.email
    return sorted(people.items(), key=lambda item: item[1])
