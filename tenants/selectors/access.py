"""Who may reach what: every view, task and API call asks these; nothing else decides access."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db.models import Q, QuerySet

from tenants.models import CLIENT_ROLES, Client, Membership, MfaPolicy, Partner, Role, User


def is_platform_admin(user: User) -> bool:
    if not user.is_authenticated:
        return False
    return Membership.objects.filter(user=user, role=Role.PLATFORM_ADMIN).exists()


def partner_membership(user: User, partner: Partner) -> Membership | None:
    if not user.is_authenticated or partner is None:
        return None
    return Membership.objects.filter(user=user, partner=partner).first()


@dataclass(frozen=True)
class Standing:
    """A user's roles under one partner, read in one query: their partner membership, if any, and
    the workspaces they are a member of directly (by name). Every page's shell needs both: the
    workspace role, the partner console link and the workspace switcher."""

    staff: Membership | None = None
    direct: tuple[tuple[Client, str], ...] = ()

    def role_in(self, client: Client) -> str | None:
        """The role held inside `client`'s workspace, or None when they may not enter it. The partner's
        own people act with their partner role, and staff only in the clients assigned to them: a
        client role would let them keep a client after being unassigned, so it counts for nobody on
        the partner's team. Everyone else acts with their client role."""
        if self.staff is None or client.partner_id != self.staff.partner_id:
            for member_of, role in self.direct:
                if member_of.pk == client.pk:
                    return role
            return None
        if self.staff.role == Role.PARTNER_ADMIN:
            return Role.PARTNER_ADMIN
        if self.staff.role == Role.PARTNER_STAFF and self.staff.assigned_clients.filter(pk=client.pk).exists():
            return Role.PARTNER_STAFF
        return None

    def workspaces(self, user: User, partner: Partner) -> list[Client]:
        """As `workspaces_for`, without a query for a user who holds no partner role."""
        if self.staff is None:
            return [client for client, role in self.direct if role in CLIENT_ROLES]
        return list(_workspaces(user, partner, self.staff))


def standing_under(user: User, partner: Partner | None) -> Standing:
    if not user.is_authenticated or partner is None:
        return Standing()
    rows = (
        Membership.objects.filter(user=user)
        .filter(Q(partner=partner) | Q(client__partner=partner))
        .select_related("client")
        .order_by("client__name", "client_id")
    )
    staff = None
    direct = []
    for row in rows:
        if row.client_id is None:
            staff = row
        else:
            direct.append((row.client, row.role))
    return Standing(staff=staff, direct=tuple(direct))


def request_standing(request):
    """The user's roles under this host's partner, read once per request (WorkspaceMiddleware and
    the partner console's role check have usually read them already)."""
    standing = getattr(request, "standing", None)
    if standing is None:
        standing = request.standing = standing_under(request.user, request.partner)
    return standing


def workspaces_for(user: User, partner: Partner) -> QuerySet[Client]:
    """The client workspaces of `partner` that `user` may enter, by name."""
    if not user.is_authenticated or partner is None:
        return Client.objects.none()
    return _workspaces(user, partner, partner_membership(user, partner))


def _workspaces(user: User, partner: Partner, staff: Membership | None) -> QuerySet[Client]:
    clients = Client.objects.filter(partner=partner)
    if staff and staff.role == Role.PARTNER_ADMIN:
        return clients.order_by("name")
    if staff and staff.role == Role.PARTNER_STAFF:
        return clients.filter(assigned_staff=staff).order_by("name")
    return clients.filter(memberships__user=user, memberships__role__in=CLIENT_ROLES).distinct().order_by("name")


def workspace_role(user: User, client: Client) -> str | None:
    """The role `user` holds inside `client`'s workspace, or None when they may not enter it."""
    return standing_under(user, client.partner).role_in(client)


def home_partner(user: User) -> Partner | None:
    """The one partner whose host and brand a user's account emails come from, or None for the
    platform's: platform admins, and people of several partners. A link carrying a key to someone's
    account is built only on a host every party it could reach trusts; a partner controls its own
    domains, and so sees the keys of links to them."""
    rows = Membership.objects.filter(user=user).values_list("role", "partner_id", "client__partner_id")
    partner_ids = set()
    for role, partner_id, client_partner_id in rows:
        if role == Role.PLATFORM_ADMIN:
            return None
        partner_ids.add(partner_id or client_partner_id)
    if len(partner_ids) != 1:
        return None
    return Partner.objects.filter(pk=partner_ids.pop()).first()


def mfa_required(user: User) -> bool:
    """Must this person sign in with a second factor? Platform admins when PLATFORM_ADMINS_REQUIRE_MFA
    is on; otherwise as each partner they work with asks (MfaPolicy), for any of their roles, and everyone
    in a workspace whose admin asks for it (Client.requires_mfa)."""
    rows = Membership.objects.filter(user=user).values_list(
        "role", "partner__mfa_policy", "client__partner__mfa_policy", "client__requires_mfa"
    )
    for role, partner_policy, client_policy, client_requires in rows:
        if client_requires:
            return True
        if role == Role.PLATFORM_ADMIN:
            if settings.PLATFORM_ADMINS_REQUIRE_MFA:
                return True
            continue
        policy = partner_policy or client_policy
        if policy == MfaPolicy.EVERYONE:
            return True
        if policy == MfaPolicy.ADMINS and role in (Role.PARTNER_ADMIN, Role.CLIENT_ADMIN):
            return True
    return False
