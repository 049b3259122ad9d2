"""Writes on the public schema: partners, client workspaces, people and their roles, plans, usage, domains."""

from __future__ import annotations

import json
import re
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
from tenants.models import Client, Membership, Partner, PartnerDomain, Plan, Role, UsageRecord, User


def schema_name_for(partner: Partner, slug: str) -> str:
    """Schema names are unique across partners, so they carry the partner's slug too."""
    name = f"c_{partner.slug}_{slug}".replace("-", "_")
    return re.sub(r"[^a-z0-9_]", "", name)[:63]


def partner_base_url(partner: Partner) -> str:
    serving = partner.domains.serving()
    domain = serving.filter(is_primary=True).first() or serving.first()
    host = domain.domain if domain else "localhost"
    scheme = "https" if settings.SESSION_COOKIE_SECURE else "http"
    port = f":{settings.PUBLIC_PORT}" if settings.PUBLIC_PORT else ""
    return f"{scheme}://{host}{port}"


@transaction.atomic
def partner_create(*, name: str, slug: str, domain: str, admin_email: str, admin_name: str = "") -> Partner:
    """A new partner with its host, a brand named after it, a starter plan and its first admin."""
    partner = Partner.objects.create(name=name, slug=slug)
    PartnerDomain.objects.create(partner=partner, domain=domain.lower(), is_primary=True)
    Brand.objects.create(partner=partner, product_name=f"{name} Connect", email_sender_name=name)
    Plan.objects.create(partner=partner, name="Standard", monthly_price=Decimal("499.00"))
    user_invite(email=admin_email, full_name=admin_name, role=Role.PARTNER_ADMIN, partner=partner)
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
    if actor is not None:
        with transaction.atomic():
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
    *, email: str, role: str, partner: Partner | None = None, client: Client | None = None, full_name: str = ""
) -> Membership:
    """Give `email` a role (creating the user if new) and email them a link to set their password."""
    user, created = User.objects.get_or_create(email=email.lower(), defaults={"full_name": full_name})
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    if client is not None:
        membership, _ = Membership.objects.update_or_create(user=user, client=client, defaults={"role": role})
    else:
        membership, _ = Membership.objects.update_or_create(user=user, partner=partner, defaults={"role": role})
    if not user.has_usable_password():
        home_partner = client.partner if client is not None else partner
        transaction.on_commit(lambda: invitation_send(user=user, partner=home_partner, client=client))
    return membership


def invitation_send(*, user: User, partner: Partner, client: Client | None = None) -> None:
    key = default_token_generator.make_token(user)
    path = reverse(
        "account_reset_password_from_key",
        urlconf="portal.urls_partner",
        kwargs={"uidb36": user_pk_to_url_str(user), "key": key},
    )
    base_url = partner_base_url(partner)
    branded_email_send(
        partner=partner,
        to=[user.email],
        subject="You are invited",
        template="invitation",
        context={
            "user": user,
            "partner": partner,
            "client": client,
            "accept_url": base_url + path,
        },
    )


@transaction.atomic
def staff_assign(*, membership: Membership, clients: list[Client]) -> None:
    if membership.role != Role.PARTNER_STAFF:
        raise ValueError("Only partner staff are assigned to clients; partner admins reach every client.")
    if any(client.partner_id != membership.partner_id for client in clients):
        raise ValueError("Staff can only be assigned to their own partner's clients.")
    membership.assigned_clients.set(clients)


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


PLAN_FIELDS = (
    "name",
    "monthly_price",
    "currency",
    "included_records",
    "overage_per_1000",
    "max_connections",
    "max_flows",
    "min_sync_interval_minutes",
    "sla_support_hours",
    "sla_resolution_hours",
    "sla_freshness_hours",
)


@transaction.atomic
def plan_create(*, partner: Partner, values: dict) -> Plan:
    plan = Plan(partner=partner, **{field: values[field] for field in PLAN_FIELDS if field in values})
    plan.full_clean()
    plan.save()
    return plan


@transaction.atomic
def plan_update(*, plan: Plan, values: dict) -> Plan:
    """Change a plan. Limits are read from the database on every check, so clients feel it at once."""
    for field in PLAN_FIELDS:
        if field in values:
            setattr(plan, field, values[field])
    plan.full_clean()
    plan.save()
    return plan


class PlanInUse(Exception):  # noqa: N818
    pass


@transaction.atomic
def plan_delete(*, plan: Plan) -> None:
    in_use = plan.clients.count()
    if in_use:
        noun = "client is" if in_use == 1 else "clients are"
        raise PlanInUse(f"{in_use} {noun} on {plan.name}; move them to another plan before deleting it.")
    plan.delete()


@transaction.atomic
def client_plan_change(*, client: Client, plan: Plan, actor: User) -> Client:
    """Put a client on another plan of its partner; limits and the next statement follow at once."""
    if plan.partner_id != client.partner_id:
        raise ValueError("A client can only be put on its own partner's plans.")
    before = client.plan.name if client.plan_id else None
    client.plan = plan
    client.save(update_fields=["plan"])
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
def usage_record_upsert(*, client: Client, month: date, records_synced: int, runs: int) -> UsageRecord:
    """Set a client's usage for a month (any day of it), as recomputed from its schema by the roll-up.

    The figures replace the stored ones rather than adding to them, so a roll-up that runs twice,
    or retries after a crash, counts nothing twice.
    """
    if records_synced < 0 or runs < 0:
        raise ValueError("Usage figures cannot be negative.")
    record, _ = UsageRecord.objects.update_or_create(
        client=client,
        month=month_start(month),
        defaults={"records_synced": records_synced, "runs": runs},
    )
    return record


@transaction.atomic
def staff_invite(
    *, partner: Partner, email: str, role: str, clients: list[Client] | None = None, full_name: str = ""
) -> Membership:
    """Invite someone to the partner's team; partner staff reach only the clients given."""
    if role not in (Role.PARTNER_ADMIN, Role.PARTNER_STAFF):
        raise ValueError("The partner team has admins and staff only.")
    membership = user_invite(email=email, role=role, partner=partner, full_name=full_name)
    if role == Role.PARTNER_STAFF:
        staff_assign(membership=membership, clients=list(clients or []))
    else:
        membership.assigned_clients.clear()
    return membership


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
    membership.delete()


@transaction.atomic
def domain_add(*, partner: Partner, domain: str) -> PartnerDomain:
    """A custom domain for the partner's portal. It serves nothing until `domain_verify` succeeds."""
    return PartnerDomain.objects.create(partner=partner, domain=domain.lower(), requires_verification=True)


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


def domain_verify(*, domain: PartnerDomain) -> DomainCheck:
    """Look up the domain's TXT record now and record the result; verified domains start serving."""
    import dns.exception
    import dns.resolver

    name = domain.txt_name
    try:
        values = _txt_lookup(name)
    except dns.resolver.NXDOMAIN:
        check = DomainCheck(False, f"No DNS record exists at {name} yet. Create the TXT record, then check again.")
    except dns.resolver.NoAnswer:
        check = DomainCheck(False, f"{name} exists but has no TXT record. Add the TXT record, then check again.")
    except (dns.exception.Timeout, dns.resolver.LifetimeTimeout):
        check = DomainCheck(False, "The DNS lookup timed out. Try again in a few minutes.")
    except (dns.resolver.NoNameservers, dns.resolver.NoResolverConfiguration, dns.exception.DNSException, OSError):
        check = DomainCheck(False, "No DNS server answered the lookup. Try again in a few minutes.")
    else:
        if domain.txt_value in (value.strip() for value in values):
            check = DomainCheck(True, f"Verified: the TXT record matches. The portal now answers on {domain.domain}.")
        else:
            found = ", ".join(value[:60] for value in values[:3]) or "an empty record"
            check = DomainCheck(
                False,
                f"The TXT record at {name} holds {found}, not this domain's token. Copy the value shown here exactly.",
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
        domain.save(update_fields=update)
    return check


@transaction.atomic
def domain_remove(*, domain: PartnerDomain) -> None:
    if domain.is_primary:
        raise ValueError("The primary domain is where emails link to; make another domain primary first.")
    domain.delete()


@transaction.atomic
def domain_make_primary(*, domain: PartnerDomain) -> PartnerDomain:
    """Emails and invitations link to the primary domain; only a serving domain can be primary."""
    if not domain.is_serving:
        raise ValueError("Verify the domain before making it primary.")
    PartnerDomain.objects.filter(partner_id=domain.partner_id, is_primary=True).update(is_primary=False)
    domain.is_primary = True
    domain.save(update_fields=["is_primary"])
    return domain
