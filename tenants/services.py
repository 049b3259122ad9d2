"""Writes on the public schema: partners, client workspaces, people and their roles, plans, usage, domains."""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from allauth.account.forms import default_token_generator
from allauth.account.utils import user_pk_to_url_str
from django.conf import settings
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask, PeriodicTasks
from django_tenants.utils import tenant_context

from branding.models import Brand
from portal.emails import branded_email_send
from tenants.models import (
    Client,
    Invitation,
    Membership,
    MfaPolicy,
    Partner,
    PartnerAuditEvent,
    PartnerDomain,
    Plan,
    Role,
    UsageRecord,
    User,
)
from tenants.selectors import home_partner


def schema_name_for(partner: Partner, slug: str) -> str:
    """Schema names are unique across partners, so they carry the partner's slug too."""
    name = f"c_{partner.slug}_{slug}".replace("-", "_")
    return re.sub(r"[^a-z0-9_]", "", name)[:63]


def partner_base_url(partner: Partner) -> str:
    serving = partner.domains.serving()
    domain = serving.filter(is_primary=True).first() or serving.first()
    return _base_url(domain.domain if domain else settings.PLATFORM_HOSTS[0])


def site_base_url(partner: Partner | None) -> str:
    """Where links for `partner` point: its primary serving host, or the platform's for None."""
    return partner_base_url(partner) if partner is not None else _base_url(settings.PLATFORM_HOSTS[0])


def _base_url(host: str) -> str:
    scheme = "https" if settings.SESSION_COOKIE_SECURE else "http"
    port = f":{settings.PUBLIC_PORT}" if settings.PUBLIC_PORT else ""
    return f"{scheme}://{host}{port}"


@transaction.atomic
def partner_create(
    *, name: str, slug: str, domain: str, admin_email: str, admin_name: str = "", actor: User | None = None
) -> Partner:
    """A new partner with its host, a brand named after it, a starter plan and its first admin."""
    partner = Partner.objects.create(name=name, slug=slug)
    PartnerDomain.objects.create(partner=partner, domain=domain.lower(), is_primary=True)
    Brand.objects.create(partner=partner, product_name=f"{name} Connect", email_sender_name=name)
    Plan.objects.create(partner=partner, name="Standard", monthly_price=Decimal("499.00"))
    user_invite(email=admin_email, full_name=admin_name, role=Role.PARTNER_ADMIN, partner=partner)
    partner_audit_record(
        partner=partner,
        actor=actor,
        action="partner.created",
        summary=f"{name} set up on {domain.lower()}, first admin {admin_email.strip().lower()}",
        after={"domain": domain.lower(), "admin": admin_email.strip().lower()},
    )
    return partner


def client_create(
    *,
    partner: Partner,
    name: str,
    slug: str,
    plan: Plan | None = None,
    admin_email: str = "",
    admin_name: str = "",
    actor: User | None = None,
) -> Client:
    """A new client workspace: its registry row and its own schema (cloned from the template)."""
    client = Client(partner=partner, name=name, slug=slug, plan=plan, schema_name=schema_name_for(partner, slug))
    client.save(verbosity=0)  # creates the schema (cloned from the template)
    connection.set_schema_to_public()
    with transaction.atomic():
        partner_audit_record(
            partner=partner,
            actor=actor,
            action="client.created",
            target_type="client",
            target_id=client.pk,
            summary=f"{name} workspace created on plan {plan.name if plan else 'none'}",
            after={"name": name, "slug": slug, "plan": plan.name if plan else None},
        )
        if actor is not None:
            client_audit_record(
                client=client,
                actor=actor,
                action="workspace.created",
                summary=f"Workspace created on plan {plan.name if plan else 'none'}",
                after={"plan": plan.name if plan else None},
            )
    if admin_email:
        user_invite(email=admin_email, role=Role.CLIENT_ADMIN, client=client, full_name=admin_name)
    return client


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
        _client_roles_drop(membership)
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


def _client_roles_drop(team_membership: Membership) -> None:
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


@transaction.atomic
def partner_mfa_policy_set(*, partner: Partner, policy: str, actor: User | None = None) -> Partner:
    """Who must sign in with a second factor; it applies from each person's next sign-in."""
    before = partner.mfa_policy
    partner.mfa_policy = MfaPolicy(policy)
    partner.save(update_fields=["mfa_policy"])
    if before != partner.mfa_policy:
        partner_audit_record(
            partner=partner,
            actor=actor,
            action="security.mfa_policy",
            summary=f"Two-factor sign-in: {MfaPolicy(policy).label.lower()}",
            before={"mfa_policy": before},
            after={"mfa_policy": str(partner.mfa_policy)},
        )
    return partner


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


def client_periodic_task_upsert(
    *, client: Client, name: str, task: str, every_seconds: int, kwargs: dict
) -> PeriodicTask:
    """A beat schedule that runs `task` inside `client`'s schema (tenant-schemas-celery reads the header).

    A suspended client's entries are kept but disabled; `client_resume` turns them back on.
    """
    interval, _ = IntervalSchedule.objects.get_or_create(every=every_seconds, period=IntervalSchedule.SECONDS)
    suspended = Client.objects.filter(pk=client.pk, status=Client.Status.SUSPENDED).exists()
    periodic, _ = PeriodicTask.objects.update_or_create(
        name=f"{client.schema_name}:{name}",
        defaults={
            "task": task,
            "interval": interval,
            "kwargs": json.dumps(kwargs),
            "headers": json.dumps({"_schema_name": client.schema_name}),
            "enabled": not suspended,
        },
    )
    return periodic


# --- Partner console: audit, plans, clients, usage, staff, domains -------------------------------


def client_audit_record(
    *, client: Client, actor: User | None, action: str, summary: str, before=None, after=None
) -> None:
    """An audit row in the client's own schema, where its people read their workspace's history.

    Call it inside the change's transaction: the public-schema write and this row commit together.
    """
    from integrations.models import AuditEvent  # the client schema's audit log

    with tenant_context(client):
        AuditEvent.objects.create(
            actor_id=getattr(actor, "pk", None),
            actor_email=getattr(actor, "email", "") or "",
            action=action,
            target_type="workspace",
            target_id=str(client.pk),
            summary=summary[:300],
            before=before,
            after=after,
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


def _changes(before: dict, after: dict) -> tuple[dict, dict]:
    """Only the values that changed, as JSON-ready text: what an audit row shows of an edit."""
    changed = [key for key in after if before.get(key) != after.get(key)]
    return {key: _plain(before.get(key)) for key in changed}, {key: _plain(after.get(key)) for key in changed}


def _plain(value):
    return value if value is None or isinstance(value, bool | int | str | list | dict) else str(value)


PLAN_FIELDS = (
    "name",
    "monthly_price",
    "currency",
    "included_records",
    "overage_per_1000",
    "sandbox_billing",
    "sandbox_per_1000",
    "max_connections",
    "max_flows",
    "min_sync_interval_minutes",
    "sla_support_hours",
    "sla_resolution_hours",
    "sla_freshness_hours",
)


def _plan_values(plan: Plan) -> dict:
    return {field: _plain(getattr(plan, field)) for field in PLAN_FIELDS}


@transaction.atomic
def plan_create(*, partner: Partner, values: dict, actor: User | None) -> Plan:
    plan = Plan(partner=partner, **{field: values[field] for field in PLAN_FIELDS if field in values})
    plan.full_clean()
    plan.save()
    partner_audit_record(
        partner=partner,
        actor=actor,
        action="plan.created",
        target_type="plan",
        target_id=plan.pk,
        summary=f"Plan {plan.name} created at {plan.monthly_price} {plan.currency} a month",
        after=_plan_values(Plan.objects.get(pk=plan.pk)),
    )
    return plan


@transaction.atomic
def plan_update(*, plan: Plan, values: dict, actor: User | None) -> Plan:
    """Change a plan. Limits are read from the database on every check, so clients feel it at once."""
    before = _plan_values(Plan.objects.get(pk=plan.pk))
    for field in PLAN_FIELDS:
        if field in values:
            setattr(plan, field, values[field])
    plan.full_clean()
    plan.save()
    was, now = _changes(before, _plan_values(Plan.objects.get(pk=plan.pk)))  # as stored: 99 is 99.00
    if now:
        partner_audit_record(
            partner=plan.partner,
            actor=actor,
            action="plan.updated",
            target_type="plan",
            target_id=plan.pk,
            summary=f"Plan {plan.name} changed: {', '.join(field.replace('_', ' ') for field in now)}",
            before=was,
            after=now,
        )
    return plan


class PlanInUse(Exception):  # noqa: N818
    pass


@transaction.atomic
def plan_delete(*, plan: Plan, actor: User | None) -> None:
    in_use = plan.clients.count()
    if in_use:
        noun = "client is" if in_use == 1 else "clients are"
        raise PlanInUse(f"{in_use} {noun} on {plan.name}; move them to another plan before deleting it.")
    partner_audit_record(
        partner=plan.partner,
        actor=actor,
        action="plan.deleted",
        target_type="plan",
        target_id=plan.pk,
        summary=f"Plan {plan.name} deleted",
        before=_plan_values(plan),
    )
    plan.delete()


@transaction.atomic
def client_plan_change(*, client: Client, plan: Plan, actor: User) -> Client:
    """Put a client on another plan of its partner; limits and the next statement follow at once."""
    if plan.partner_id != client.partner_id:
        raise ValueError("A client can only be put on its own partner's plans.")
    before = client.plan.name if client.plan_id else None
    client.plan = plan
    client.save(update_fields=["plan"])
    partner_audit_record(
        partner=client.partner,
        actor=actor,
        action="client.plan_changed",
        target_type="client",
        target_id=client.pk,
        summary=f"{client.name} moved from plan {before or 'none'} to {plan.name}",
        before={"plan": before},
        after={"plan": plan.name},
    )
    client_audit_record(
        client=client,
        actor=actor,
        action="workspace.plan_changed",
        summary=f"Plan changed from {before or 'none'} to {plan.name}",
        before={"plan": before},
        after={"plan": plan.name},
    )
    return client


@transaction.atomic
def client_suspend(*, client: Client, actor: User) -> Client:
    """Stop a client: its syncs stop (the engine checks `client.is_suspended`) and its users see a notice."""
    if client.is_suspended:
        return client
    client.status = Client.Status.SUSPENDED
    client.save(update_fields=["status"])
    # Beat stops sending its syncs at all; the engine still refuses a run that was already queued.
    PeriodicTask.objects.filter(name__startswith=f"{client.schema_name}:").update(enabled=False)
    PeriodicTasks.update_changed()  # a queryset update sends no signal; beat reloads on this mark
    partner_audit_record(
        partner=client.partner,
        actor=actor,
        action="client.suspended",
        target_type="client",
        target_id=client.pk,
        summary=f"{client.name} suspended: its syncs stopped",
        before={"status": "active"},
        after={"status": "suspended"},
    )
    client_audit_record(
        client=client,
        actor=actor,
        action="workspace.suspended",
        summary="Workspace suspended: syncs stopped",
        before={"status": "active"},
        after={"status": "suspended"},
    )
    return client


def _client_schedules_restore(client: Client) -> None:
    """Turn a resumed client's beat entries back on: each flow's by its own state, the rest all."""
    from integrations.models import Flow
    from integrations.services.flows import flow_schedule_sync

    prefix = f"{client.schema_name}:"
    PeriodicTask.objects.filter(name__startswith=prefix).exclude(name__startswith=f"{prefix}flow-").update(enabled=True)
    PeriodicTasks.update_changed()
    with tenant_context(client):
        for flow in Flow.objects.all():
            flow_schedule_sync(flow=flow)


@transaction.atomic
def client_resume(*, client: Client, actor: User) -> Client:
    if not client.is_suspended:
        return client
    client.status = Client.Status.ACTIVE
    client.save(update_fields=["status"])
    _client_schedules_restore(client)
    partner_audit_record(
        partner=client.partner,
        actor=actor,
        action="client.resumed",
        target_type="client",
        target_id=client.pk,
        summary=f"{client.name} resumed: its syncs run again",
        before={"status": "suspended"},
        after={"status": "active"},
    )
    client_audit_record(
        client=client,
        actor=actor,
        action="workspace.resumed",
        summary="Workspace resumed: syncs run again",
        before={"status": "suspended"},
        after={"status": "active"},
    )
    return client


def month_start(day: date) -> date:
    return day.replace(day=1)


@transaction.atomic
def usage_record_upsert(
    *,
    client: Client,
    month: date,
    records_synced: int,
    runs: int,
    sandbox_records_synced: int = 0,
    sandbox_runs: int = 0,
) -> UsageRecord:
    """Set a client's usage for a month (any day of it), as recomputed from its schema by the roll-up.

    The figures replace the stored ones rather than adding to them, so a roll-up that runs twice,
    or retries after a crash, counts nothing twice.
    """
    if min(records_synced, runs, sandbox_records_synced, sandbox_runs) < 0:
        raise ValueError("Usage figures cannot be negative.")
    record, _ = UsageRecord.objects.update_or_create(
        client=client,
        month=month_start(month),
        defaults={
            "records_synced": records_synced,
            "runs": runs,
            "sandbox_records_synced": sandbox_records_synced,
            "sandbox_runs": sandbox_runs,
        },
    )
    return record


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


@transaction.atomic
def domain_add(*, partner: Partner, domain: str, actor: User | None) -> PartnerDomain:
    """A custom domain for the partner's portal. It serves nothing until `domain_verify` succeeds."""
    added = PartnerDomain.objects.create(partner=partner, domain=domain.lower(), requires_verification=True)
    partner_audit_record(
        partner=partner,
        actor=actor,
        action="domain.added",
        target_type="domain",
        target_id=added.pk,
        summary=f"{added.domain} added; it serves once its DNS record is verified",
        after={"domain": added.domain},
    )
    return added


@dataclass(frozen=True)
class DomainCheck:
    verified: bool
    message: str


def _txt_lookup(name: str) -> list[str]:
    """The TXT strings at `name`, from the resolvers in settings.DOMAIN_VERIFY_NAMESERVERS or the system's."""
    import dns.resolver

    nameservers = list(getattr(settings, "DOMAIN_VERIFY_NAMESERVERS", []) or [])
    resolver = dns.resolver.Resolver(configure=not nameservers)
    if nameservers:
        hosts, ports = [], set()
        for entry in nameservers:
            host, _, port = entry.rpartition(":") if entry.count(":") == 1 else (entry, "", "")
            hosts.append(host)
            ports.add(int(port) if port else 53)
        resolver.nameservers = hosts
        resolver.port = ports.pop()
    resolver.lifetime = float(getattr(settings, "DOMAIN_VERIFY_TIMEOUT_SECONDS", 5))
    answer = resolver.resolve(name, "TXT", search=False)
    return [b"".join(record.strings).decode("utf-8", "replace") for record in answer]


def _legacy_txt_record_matches(domain: PartnerDomain) -> bool:
    """A partner may have published the record under its former name before it was renamed: it still counts."""
    import dns.exception

    try:
        values = _txt_lookup(domain.legacy_txt_name)
    except (dns.exception.DNSException, OSError):
        return False
    return domain.legacy_txt_value in (value.strip() for value in values)


def txt_record_check(*, name: str, expected: str, success: str) -> DomainCheck:
    """Look up the TXT record at `name` now: verified when one of its strings is `expected`."""
    import dns.exception
    import dns.resolver

    try:
        values = _txt_lookup(name)
    except dns.resolver.NXDOMAIN:
        return DomainCheck(False, f"No DNS record exists at {name} yet. Create the TXT record, then check again.")
    except dns.resolver.NoAnswer:
        return DomainCheck(False, f"{name} exists but has no TXT record. Add the TXT record, then check again.")
    except (dns.exception.Timeout, dns.resolver.LifetimeTimeout):
        return DomainCheck(False, "The DNS lookup timed out. Try again in a few minutes.")
    except (dns.resolver.NoNameservers, dns.resolver.NoResolverConfiguration, dns.exception.DNSException, OSError):
        return DomainCheck(False, "No DNS server answered the lookup. Try again in a few minutes.")
    if expected in (value.strip() for value in values):
        return DomainCheck(True, success)
    found = ", ".join(value[:60] for value in values[:3]) or "an empty record"
    return DomainCheck(
        False, f"The TXT record at {name} holds {found}, not this domain's token. Copy the value shown here exactly."
    )


def domain_verify(*, domain: PartnerDomain, actor: User | None = None) -> DomainCheck:
    """Look up the domain's TXT record now and record the result; verified domains start serving."""
    check = txt_record_check(
        name=domain.txt_name,
        expected=domain.txt_value,
        success=f"Verified: the TXT record matches. The portal now answers on {domain.domain}.",
    )
    if not check.verified and _legacy_txt_record_matches(domain):
        check = DomainCheck(True, f"Verified: the TXT record matches. The portal now answers on {domain.domain}.")
    with transaction.atomic():
        domain.last_checked_at = timezone.now()
        domain.last_check_message = check.message[:300]
        update = ["last_checked_at", "last_check_message"]
        if check.verified and domain.verified_at is None:
            domain.verified_at = domain.last_checked_at
            update.append("verified_at")
            partner_audit_record(
                partner=domain.partner,
                actor=actor,
                action="domain.verified",
                target_type="domain",
                target_id=domain.pk,
                summary=f"{domain.domain} verified: the portal now answers on it",
                after={"domain": domain.domain},
            )
        domain.save(update_fields=update)
    return check


@transaction.atomic
def domain_remove(*, domain: PartnerDomain, actor: User | None) -> None:
    if domain.is_primary:
        raise ValueError("The primary domain is where emails link to; make another domain primary first.")
    partner_audit_record(
        partner=domain.partner,
        actor=actor,
        action="domain.removed",
        target_type="domain",
        target_id=domain.pk,
        summary=f"{domain.domain} removed; it no longer serves the portal",
        before={"domain": domain.domain, "verified": domain.verified_at is not None},
    )
    domain.delete()


@transaction.atomic
def domain_make_primary(*, domain: PartnerDomain, actor: User | None) -> PartnerDomain:
    """Emails and invitations link to the primary domain; only a serving domain can be primary."""
    if not domain.is_serving:
        raise ValueError("Verify the domain before making it primary.")
    previous = PartnerDomain.objects.filter(partner_id=domain.partner_id, is_primary=True).first()
    PartnerDomain.objects.filter(partner_id=domain.partner_id, is_primary=True).update(is_primary=False)
    domain.is_primary = True
    domain.save(update_fields=["is_primary"])
    if previous is None or previous.pk != domain.pk:
        partner_audit_record(
            partner=domain.partner,
            actor=actor,
            action="domain.made_primary",
            target_type="domain",
            target_id=domain.pk,
            summary=f"{domain.domain} is the primary domain: emails and invitations link to it",
            before={"primary": previous.domain if previous else None},
            after={"primary": domain.domain},
        )
    return domain
