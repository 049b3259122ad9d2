"""Inviting people: accounts for someone new, invitations for someone with an account, accepting them."""

from __future__ import annotations

import hashlib
import secrets

from allauth.account.forms import default_token_generator
from allauth.account.utils import user_pk_to_url_str
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from portal.emails import branded_email_send
from tenants.models import (
    Client,
    Invitation,
    Membership,
    Partner,
    Role,
    User,
)
from tenants.selectors.access import home_partner
from tenants.services.audit import client_audit_record, partner_audit_record
from tenants.services.links import site_base_url


@transaction.atomic
def user_invite(
    *,
    email: str,
    role: str,
    partner: Partner | None = None,
    client: Client | None = None,
    full_name: str = "",
    assigned_clients: list[Client] | None = None,
    invited_by: User | None = None,
) -> Membership | Invitation:
    """Offer `email` a role on a partner or a client.

    Someone new gets an account holding the role and an email with a link to choose a password:
    nobody can sign in to it without that link. Someone who already has an account gets an
    Invitation instead, which grants nothing until they accept it through the link emailed to the
    address, signed in as themselves: an address a person merely typed into their own profile
    must not collect someone else's invitation. Changing the role of someone who already holds one
    here is the inviting admin's to decide, and happens at once.
    """
    email = email.strip().lower()
    scope = {"client": client} if client is not None else {"partner": partner}
    user = (
        User.objects.filter(email__iexact=email).first()
        or User.objects.filter(emailaddress__email__iexact=email, emailaddress__verified=True).first()
    )
    if user is not None and not Membership.objects.filter(user=user, **scope).exists():
        return invitation_offer(
            user=user, email=email, role=role, assigned_clients=assigned_clients, invited_by=invited_by, **scope
        )
    if user is None:
        user = User(email=email, full_name=full_name)
        user.set_unusable_password()
        user.save()
    membership, _ = Membership.objects.update_or_create(user=user, **scope, defaults={"role": role})
    if not user.has_usable_password():
        inviting = client.partner if client is not None else partner
        transaction.on_commit(lambda: invitation_send(user=user, partner=inviting, client=client))
    return membership


def invitation_send(*, user: User, partner: Partner, client: Client | None = None) -> None:
    """The email to someone new: a link to choose a password, which also proves the address."""
    key = default_token_generator.make_token(user)
    path = reverse(
        "account_reset_password_from_key",
        urlconf="portal.urls_partner",
        kwargs={"uidb36": user_pk_to_url_str(user), "key": key},
    )
    # The key opens the account: the link goes to the host the account belongs to (the inviting
    # partner's for someone new), never a host another partner controls.
    _invitation_email_send(
        user=user, partner=partner, client=client, accept_url=site_base_url(home_partner(user)) + path
    )


def invitation_offer(
    *,
    user: User,
    email: str,
    role: str,
    partner: Partner | None = None,
    client: Client | None = None,
    assigned_clients: list[Client] | None = None,
    invited_by: User | None = None,
) -> Invitation:
    """A pending Invitation for someone with an account, and the email with its link. A new offer for
    the same place replaces an older one (and its link)."""
    scope = {"client": client} if client is not None else {"partner": partner}
    Invitation.objects.filter(user=user, **scope).delete()
    token = secrets.token_urlsafe(32)
    invitation = Invitation.objects.create(
        user=user, email=email, role=role, invited_by=invited_by, token_hash=invitation_token_hash(token), **scope
    )
    if role == Role.PARTNER_STAFF:
        invitation.assigned_clients.set(assigned_clients or [])
    home = invitation.home_partner
    accept_url = site_base_url(home) + reverse("invitation_accept", urlconf="portal.urls_partner", args=[token])
    transaction.on_commit(
        lambda: _invitation_email_send(user=user, partner=home, client=client, accept_url=accept_url, existing=True)
    )
    return invitation


def invitation_token_hash(token: str) -> str:
    """Only a digest of an invitation's token is stored: the database never holds a working link."""
    return hashlib.sha256(token.encode()).hexdigest()


def _invitation_email_send(
    *, user: User, partner: Partner, client: Client | None, accept_url: str, existing: bool = False
) -> None:
    branded_email_send(
        partner=partner,
        to=[user.email],
        subject="You are invited",
        template="invitation",
        context={
            "user": user,
            "partner": partner,
            "client": client,
            "accept_url": accept_url,
            "existing_account": existing,
        },
    )


class InvitationRefused(Exception):  # noqa: N818 - the domain's words, shown to the user
    pass


@transaction.atomic
def invitation_accept(*, invitation: Invitation, user: User) -> Membership:
    """Turn an invitation into the role it offers, for the account it was sent to. Following the
    emailed link proved the address: it is verified on the account from now on."""
    # Locked: a double-submitted accept makes one membership, then finds the invitation gone.
    invitation = (
        Invitation.objects.select_for_update(of=("self",))
        .select_related("client__partner", "partner")
        .filter(pk=invitation.pk)
        .first()
    )
    if invitation is None:
        raise InvitationRefused("This invitation was accepted already.")
    if invitation.user_id != user.pk:
        raise InvitationRefused(f"This invitation was sent to {invitation.email}: sign in as its owner to accept it.")
    if invitation.expires_at <= timezone.now():
        raise InvitationRefused("This invitation has expired: ask whoever invited you for a new one.")
    client = invitation.client
    if client is not None and Membership.objects.filter(user=user, partner_id=client.partner_id).exists():
        raise InvitationRefused(
            f"You are on {client.partner.name}'s team: you reach {client.name} through the clients assigned to you."
        )
    account_email_verify(user=user, email=invitation.email)
    scope = {"client": client} if client is not None else {"partner": invitation.partner}
    membership, _ = Membership.objects.update_or_create(user=user, **scope, defaults={"role": invitation.role})
    if client is not None:
        client_audit_record(
            client=client,
            actor=user,
            action="member.joined",
            summary=f"{user.email} accepted the invitation as {Role(invitation.role).label}",
            after={"email": user.email, "role": invitation.role},
        )
    else:
        if invitation.role == Role.PARTNER_STAFF:
            membership.assigned_clients.set(invitation.assigned_clients.all())
        else:
            membership.assigned_clients.clear()
        client_roles_drop(membership)
        partner_audit_record(
            partner=invitation.partner,
            actor=user,
            action="team.joined",
            target_type="member",
            target_id=membership.pk,
            summary=f"{user.email} accepted the invitation as {Role(invitation.role).label}",
            after={"email": user.email, "role": invitation.role},
        )
    invitation.delete()
    return membership


def client_roles_drop(team_membership: Membership) -> None:
    """Someone joining a partner's team reaches its clients through the partner's assignments only:
    client roles they held in its workspaces go (they would outlive an unassignment)."""
    for held in Membership.objects.filter(
        user_id=team_membership.user_id, client__partner_id=team_membership.partner_id
    ).select_related("client", "user"):
        client_audit_record(
            client=held.client,
            actor=None,
            action="member.removed",
            summary=f"{held.user.email} joined {team_membership.partner.name}'s team: "
            f"reaches this workspace through its assignments, no longer as {held.get_role_display()}",
            before={"email": held.user.email, "role": held.role},
        )
        held.delete()


def account_email_verify(*, user: User, email: str) -> None:
    """Record that `user` proved they receive mail at `email` (they followed a link sent there). An
    unconfirmed copy of the address on anyone else's account can no longer be confirmed: it goes."""
    from allauth.account.models import EmailAddress

    email = email.strip().lower()
    EmailAddress.objects.filter(email__iexact=email, verified=False).exclude(user=user).delete()
    address = EmailAddress.objects.filter(user=user, email__iexact=email).first()
    if address is None:
        has_primary = EmailAddress.objects.filter(user=user, primary=True).exists()
        EmailAddress.objects.create(user=user, email=email, verified=True, primary=not has_primary)
    elif not address.verified:
        address.verified = True
        address.save(update_fields=["verified"])
