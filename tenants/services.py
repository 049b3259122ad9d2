"""Writes on the public schema: partners, client workspaces, people and their roles."""

from __future__ import annotations

import json
import re
from decimal import Decimal

from allauth.account.forms import default_token_generator
from allauth.account.utils import user_pk_to_url_str
from django.conf import settings
from django.db import connection, transaction
from django.urls import reverse
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from branding.models import Brand
from portal.emails import branded_email_send
from tenants.models import Client, Membership, Partner, PartnerDomain, Plan, Role, User


def schema_name_for(partner: Partner, slug: str) -> str:
    """Schema names are unique across partners, so they carry the partner's slug too."""
    name = f"c_{partner.slug}_{slug}".replace("-", "_")
    return re.sub(r"[^a-z0-9_]", "", name)[:63]


def partner_base_url(partner: Partner) -> str:
    domain = partner.domains.filter(is_primary=True).first() or partner.domains.first()
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


def client_create(*, partner: Partner, name: str, slug: str, plan: Plan | None = None, admin_email: str = "") -> Client:
    """A new client workspace: its registry row and its own schema (cloned from the template)."""
    client = Client(partner=partner, name=name, slug=slug, plan=plan, schema_name=schema_name_for(partner, slug))
    client.save(verbosity=0)  # creates the schema (cloned from the template)
    connection.set_schema_to_public()
    if admin_email:
        user_invite(email=admin_email, role=Role.CLIENT_ADMIN, client=client)
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
    branded_email_send(
        partner=partner,
        to=[user.email],
        subject="You are invited",
        template="invitation",
        context={"user": user, "partner": partner, "client": client, "accept_url": partner_base_url(partner) + path},
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
    """A beat schedule that runs `task` inside `client`'s schema (tenant-schemas-celery reads the header)."""
    interval, _ = IntervalSchedule.objects.get_or_create(every=every_seconds, period=IntervalSchedule.SECONDS)
    periodic, _ = PeriodicTask.objects.update_or_create(
        name=f"{client.schema_name}:{name}",
        defaults={
            "task": task,
            "interval": interval,
            "kwargs": json.dumps(kwargs),
            "headers": json.dumps({"_schema_name": client.schema_name}),
            "enabled": True,
        },
    )
    return periodic
