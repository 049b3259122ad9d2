"""Who may reach what. Every view and task asks these; nothing else decides access."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from tenants.models import CLIENT_ROLES, Client, Membership, Partner, Role, User


def is_platform_admin(user: User) -> bool:
    if not user.is_authenticated:
        return False
    return Membership.objects.filter(user=user, role=Role.PLATFORM_ADMIN).exists()


def partner_membership(user: User, partner: Partner) -> Membership | None:
    if not user.is_authenticated or partner is None:
        return None
    return Membership.objects.filter(user=user, partner=partner).first()


def workspaces_for(user: User, partner: Partner) -> QuerySet[Client]:
    """The client workspaces of `partner` that `user` may enter, by name."""
    if not user.is_authenticated or partner is None:
        return Client.objects.none()
    staff = partner_membership(user, partner)
    clients = Client.objects.filter(partner=partner)
    if staff and staff.role == Role.PARTNER_ADMIN:
        return clients.order_by("name")
    if staff and staff.role == Role.PARTNER_STAFF:
        return clients.filter(Q(assigned_staff=staff) | Q(memberships__user=user)).distinct().order_by("name")
    return clients.filter(memberships__user=user, memberships__role__in=CLIENT_ROLES).distinct().order_by("name")


def workspace_role(user: User, client: Client) -> str | None:
    """The role `user` holds inside `client`'s workspace, or None when they may not enter it.

    Partner admins and assigned partner staff act in a workspace with their partner role.
    """
    if not user.is_authenticated:
        return None
    direct = Membership.objects.filter(user=user, client=client).values_list("role", flat=True).first()
    if direct:
        return direct
    staff = partner_membership(user, client.partner)
    if staff is None:
        return None
    if staff.role == Role.PARTNER_ADMIN:
        return Role.PARTNER_ADMIN
    if staff.role == Role.PARTNER_STAFF and staff.assigned_clients.filter(pk=client.pk).exists():
        return Role.PARTNER_STAFF
    return None


def client_members(client: Client) -> QuerySet[Membership]:
    return Membership.objects.filter(client=client).select_related("user").order_by("user__email")


def partner_clients(partner: Partner) -> QuerySet[Client]:
    return Client.objects.filter(partner=partner).select_related("plan").order_by("name")


def partner_staff(partner: Partner) -> QuerySet[Membership]:
    return (
        Membership.objects.filter(partner=partner)
        .select_related("user")
        .prefetch_related("assigned_clients")
        .order_by("role", "user__email")
    )
