"""Single sign-on: configuring a partner's or a client's identity provider, proving its email domains, and
admitting the people it signs in (just-in-time membership in its own scope, roles from IdP groups)."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils import timezone

from portal.crypto import credentials_decrypt, credentials_encrypt
from tenants.models import (
    CLIENT_ROLES,
    PARTNER_ROLES,
    Client,
    Membership,
    Partner,
    Role,
    SsoConnection,
    SsoDomain,
    User,
)
from tenants.services.audit import client_audit_record, partner_audit_record
from tenants.services.domains import DomainCheck, txt_record_check
from tenants.services.invitations import account_email_verify, client_roles_drop


class SsoRefused(Exception):  # noqa: N818 - the domain's words, shown to the person signing in
    """This identity provider may not sign this person in here; the message says why, plainly."""


def roles_for_scope(client: Client | None) -> list[Role]:
    """The roles an IdP may grant: partner roles for a partner's staff, client roles in a workspace."""
    allowed = CLIENT_ROLES if client is not None else PARTNER_ROLES
    return [role for role in Role if role in allowed]


def sso_secret(connection: SsoConnection) -> str:
    return credentials_decrypt(bytes(connection.encrypted_secret)).get("client_secret", "")


def sso_sp_private_key(connection: SsoConnection) -> str:
    """The portal's SAML signing key for this IdP (made when SAML was first saved; never shown)."""
    return credentials_decrypt(bytes(connection.encrypted_secret)).get("sp_private_key", "")


OIDC_FIELDS = ("server_url", "oauth_client_id")
SAML_FIELDS = (
    "saml_metadata_url",
    "saml_entity_id",
    "saml_sso_url",
    "saml_x509cert",
    "saml_email_attribute",
    "saml_name_attribute",
    "saml_groups_attribute",
)


@transaction.atomic
def sso_connection_save(
    *,
    partner: Partner,
    client: Client | None,
    values: dict,
    actor: User,
    connection: SsoConnection | None = None,
) -> SsoConnection:
    """Create or update the scope's identity provider, OpenID Connect or SAML 2.0. A blank secret keeps the stored
    one (write-only); SAML gets the portal's own key pair for this IdP the first time, kept encrypted beside it."""
    allowed = set(roles_for_scope(client))
    if values["default_role"] not in allowed or any(role not in allowed for role in values["group_roles"].values()):
        raise ValueError("An identity provider can only grant roles of its own scope.")
    connection = connection or SsoConnection(partner=partner, client=client)
    # As stored: the form that validated the values has already written them onto `connection`.
    before = _describe(SsoConnection.objects.get(pk=connection.pk)) if connection.pk else None
    connection.protocol = values.get("protocol") or SsoConnection.Protocol.OIDC
    for field in ("name", "default_role", "group_roles", "sso_required", "is_active"):
        setattr(connection, field, values[field])
    protocol_fields = SAML_FIELDS if connection.is_saml else OIDC_FIELDS
    for field in protocol_fields:
        setattr(connection, field, values.get(field, ""))
    stored = credentials_decrypt(bytes(connection.encrypted_secret)) if connection.encrypted_secret else {}
    if values.get("client_secret"):
        stored["client_secret"] = values["client_secret"]
    if connection.is_saml and not stored.get("sp_private_key"):
        from tenants.sso_saml import sp_key_pair

        stored["sp_private_key"], connection.saml_sp_x509cert = sp_key_pair(f"{partner.name} portal")
    if stored:
        connection.encrypted_secret = credentials_encrypt(stored)
    connection.save()
    if client is not None:
        client_audit_record(
            client=client,
            actor=actor,
            action="sso.updated" if before else "sso.created",
            summary=f"Single sign-on through {connection.name} {'changed' if before else 'set up'}",
            before=before,
            after=_describe(connection),
        )
    else:
        partner_audit_record(
            partner=partner,
            actor=actor,
            action="sso.updated" if before else "sso.created",
            target_type="sso",
            target_id=connection.pk,
            summary=f"Team single sign-on through {connection.name} {'changed' if before else 'set up'}",
            before=before,
            after=_describe(connection),
        )
    return connection


def _describe(connection: SsoConnection) -> dict:
    """What the audit log keeps of a configuration: never the secret."""
    if connection.is_saml:
        idp = {
            "protocol": connection.protocol,
            "metadata_url": connection.saml_metadata_url,
            "entity_id": connection.saml_entity_id,
            "sso_url": connection.saml_sso_url,
            "attributes": [
                connection.saml_email_attribute,
                connection.saml_name_attribute,
                connection.saml_groups_attribute,
            ],
        }
    else:
        idp = {"server_url": connection.server_url, "client_id": connection.oauth_client_id}
    return {
        "name": connection.name,
        **idp,
        "default_role": connection.default_role,
        "group_roles": connection.group_roles,
        "sso_required": connection.sso_required,
        "is_active": connection.is_active,
    }


@transaction.atomic
def sso_domain_add(*, connection: SsoConnection, domain: str, actor: User) -> SsoDomain:
    """Claim an email domain for the IdP; it admits nobody until `sso_domain_verify` proves it."""
    added, _ = SsoDomain.objects.get_or_create(connection=connection, domain=domain.strip().lower().rstrip("."))
    if connection.client_id:
        client_audit_record(
            client=connection.client, actor=actor, action="sso.domain_added", summary=f"{added.domain} claimed for SSO"
        )
    else:
        partner_audit_record(
            partner=connection.partner,
            actor=actor,
            action="sso.domain_added",
            target_type="sso_domain",
            target_id=added.pk,
            summary=f"{added.domain} claimed for the team's single sign-on",
            after={"domain": added.domain},
        )
    return added


def sso_domain_verify(*, domain: SsoDomain, actor: User | None = None) -> DomainCheck:
    """Look up the domain's TXT record now; once it matches, the IdP admits addresses at this domain."""
    check = txt_record_check(
        name=domain.txt_name,
        expected=domain.txt_value,
        success=f"Verified: people at {domain.domain} can now sign in through single sign-on.",
    )
    if (
        check.verified
        and SsoDomain.objects.filter(domain=domain.domain, verified_at__isnull=False).exclude(pk=domain.pk).exists()
    ):
        check = DomainCheck(False, f"{domain.domain} is already proven for another organisation's single sign-on.")
    domain.last_checked_at = timezone.now()
    domain.last_check_message = check.message[:300]
    if check.verified and domain.verified_at is None:
        domain.verified_at = domain.last_checked_at
    newly_proven = check.verified and domain.verified_at == domain.last_checked_at
    try:
        with transaction.atomic():
            domain.save(update_fields=["last_checked_at", "last_check_message", "verified_at"])
            if newly_proven:
                _domain_proven_audit(domain, actor)
    except IntegrityError:  # proven elsewhere between the check and the write
        check = DomainCheck(False, f"{domain.domain} is already proven for another organisation's single sign-on.")
        domain.verified_at = None
        domain.last_check_message = check.message
        domain.save(update_fields=["last_checked_at", "last_check_message", "verified_at"])
    return check


def _domain_proven_audit(domain: SsoDomain, actor: User | None) -> None:
    connection = domain.connection
    summary = f"{domain.domain} verified: people there can sign in through {connection.name}"
    if connection.client_id:
        client_audit_record(client=connection.client, actor=actor, action="sso.domain_verified", summary=summary)
    else:
        partner_audit_record(
            partner=connection.partner,
            actor=actor,
            action="sso.domain_verified",
            target_type="sso_domain",
            target_id=domain.pk,
            summary=summary,
            after={"domain": domain.domain},
        )


@transaction.atomic
def sso_domain_remove(*, domain: SsoDomain, actor: User) -> None:
    connection = domain.connection
    domain_id = domain.pk
    domain.delete()
    if connection.client_id:
        client_audit_record(
            client=connection.client,
            actor=actor,
            action="sso.domain_removed",
            summary=f"{domain.domain} no longer signs in through SSO",
        )
    else:
        partner_audit_record(
            partner=connection.partner,
            actor=actor,
            action="sso.domain_removed",
            target_type="sso_domain",
            target_id=domain_id,
            summary=f"{domain.domain} no longer signs in through the team's single sign-on",
            before={"domain": domain.domain},
        )


def _admission_refusal(connection: SsoConnection, user: User) -> str:
    """Why this existing account may not be signed in by `connection`, or "": an IdP never reaches an
    account that works for another partner, the platform's operators, or (for a client's IdP) the
    partner's own people, who sign in through their partner's."""
    scope_name = connection.client.name if connection.client_id else connection.partner.name
    for role, partner_id, client_partner_id in Membership.objects.filter(user=user).values_list(
        "role", "partner_id", "client__partner_id"
    ):
        if role == Role.PLATFORM_ADMIN:
            return "This account belongs to the platform's operators: sign in with its password."
        if (partner_id or client_partner_id) != connection.partner_id:
            return f"This account also works for another organisation, so {scope_name}'s sign-on cannot open it."
        if connection.client_id and partner_id == connection.partner_id:
            return f"You are on {connection.partner.name}'s team: sign in through {connection.partner.name}'s sign-on."
    if user.is_superuser:
        return "This account belongs to the platform's operators: sign in with its password."
    return ""


@transaction.atomic
def sso_person_admit(*, connection: SsoConnection, email: str, name: str, groups: list[str]) -> User:
    """The account an IdP's verified identity signs in to, made now if it is new (just in time), with the
    role its groups map to in the connection's scope. Raises SsoRefused when it may not."""
    email = (email or "").strip().lower()
    domain = email.rpartition("@")[2]
    if not email or "@" not in email:
        raise SsoRefused("The identity provider did not say who you are (no email address): ask your administrator.")
    if not connection.is_active:
        raise SsoRefused(f"Single sign-on through {connection.name} is switched off.")
    if not connection.domains.filter(domain=domain, verified_at__isnull=False).exists():
        raise SsoRefused(f"{connection.name} cannot sign in people at {domain}: that domain is not proven for it.")
    user = User.objects.filter(email__iexact=email).first()
    if user is None:
        user = User.objects.create_user(email=email, full_name=name[:150])
        user.set_unusable_password()
        user.save(update_fields=["password"])
    else:
        refusal = _admission_refusal(connection, user)
        if refusal:
            raise SsoRefused(refusal)
        if not user.is_active:
            raise SsoRefused("This account is switched off: ask your administrator.")
    account_email_verify(user=user, email=email)  # the IdP speaks for a domain its owner proved
    _membership_grant(connection=connection, user=user, role=connection.role_for_groups(groups))
    return user


def _membership_grant(*, connection: SsoConnection, user: User, role: str) -> None:
    """Join the connection's scope with `role`, or move to it when the IdP's groups changed."""
    scope = {"client": connection.client} if connection.client_id else {"partner": connection.partner}
    membership = Membership.objects.filter(user=user, **scope).first()
    if membership is not None and membership.role == role:
        return
    previous = membership.role if membership else None
    membership, _ = Membership.objects.update_or_create(user=user, **scope, defaults={"role": role})
    if connection.client_id:
        client_audit_record(
            client=connection.client,
            actor=None,
            action="member.joined" if previous is None else "member.role_changed",
            summary=f"{user.email} {'joined' if previous is None else 'now'} as {Role(role).label} "
            f"through {connection.name}",
            before={"email": user.email, "role": previous} if previous else None,
            after={"email": user.email, "role": role},
        )
    else:
        if role == Role.PARTNER_ADMIN:
            membership.assigned_clients.clear()
        client_roles_drop(membership)
        partner_audit_record(
            partner=connection.partner,
            actor=None,
            action="team.joined" if previous is None else "team.role_changed",
            target_type="member",
            target_id=membership.pk,
            summary=f"{user.email} {'joined' if previous is None else 'now'} as {Role(role).label} "
            f"through {connection.name}",
            before={"email": user.email, "role": previous} if previous else None,
            after={"email": user.email, "role": role},
        )


@transaction.atomic
def client_mfa_requirement_set(*, client: Client, required: bool, actor: User) -> Client:
    """A client admin asks everyone in the workspace for a second factor (or stops asking); audited. The
    partner's policy still applies on top: this can only ask for more."""
    if client.requires_mfa == required:
        return client
    client.requires_mfa = required
    client.save(update_fields=["requires_mfa"])
    client_audit_record(
        client=client,
        actor=actor,
        action="security.mfa_required" if required else "security.mfa_optional",
        summary="Two-factor sign-in required for everyone in the workspace"
        if required
        else "Two-factor sign-in no longer required for everyone in the workspace",
        before={"requires_mfa": not required},
        after={"requires_mfa": required},
    )
    return client
