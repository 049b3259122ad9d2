"""The demo platform: two partners with their own brands, three clients, a user for every role, and the partners'
subscriptions and change requests."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django.core.files.base import ContentFile
from django.db import connection, transaction
from django.utils import timezone
from PIL import Image, ImageDraw, ImageFont

from branding.models import Brand
from tenants import services
from tenants.models import ChangeRequest, Client, Membership, Partner, PartnerDomain, Plan, Role, Subscription, User
from tenants.models.subscriptions import months_after

DEMO_PASSWORD = "connect-demo-2026"  # noqa: S105 - published demo password, demo data only


@dataclass(frozen=True)
class DemoUser:
    email: str
    name: str
    role: str
    partner: str = ""
    client: str = ""


PARTNERS = [
    {
        "slug": "northwind",
        "name": "Northwind Advisory",
        "domain": "northwind.localhost",
        "brand": {
            "product_name": "Northwind Connect",
            "primary_color": "#0B5CAD",
            "accent_color": "#F59E0B",
            "support_email": "support@northwind.example",
            "support_url": "https://northwind.example/support",
            "login_message": "Welcome to Northwind Connect, your managed integrations by Northwind Advisory.",
            "email_sender_name": "Northwind Advisory",
            "email_footer": "Northwind Advisory · Managed integrations for consultancies",
        },
        "logo": ("NW", "#0B5CAD", "#F59E0B"),
        "clients": [("contoso", "Contoso Engineering"), ("tailspin", "Tailspin Consulting")],
    },
    {
        "slug": "summit",
        "name": "Summit Cloud Partners",
        "domain": "summit.localhost",
        "brand": {
            "product_name": "Summit Sync",
            "primary_color": "#7C3AED",
            "accent_color": "#10B981",
            "support_email": "help@summit.example",
            "support_url": "https://summit.example/help",
            "login_message": "Summit Sync keeps your CRM, ERP and PSA in step.",
            "email_sender_name": "Summit Cloud Partners",
            "email_footer": "Summit Cloud Partners · Cloud ERP specialists",
        },
        "logo": ("S", "#7C3AED", "#10B981"),
        "clients": [("fabrikam", "Fabrikam Design")],
    },
]

USERS = [
    DemoUser("operator@sysgenpro.localhost", "Pat Operator", Role.PLATFORM_ADMIN),
    DemoUser("admin@northwind.localhost", "Nadia Admin", Role.PARTNER_ADMIN, partner="northwind"),
    DemoUser("engineer@northwind.localhost", "Erik Engineer", Role.PARTNER_STAFF, partner="northwind"),
    DemoUser("admin@contoso.localhost", "Carla Admin", Role.CLIENT_ADMIN, client="contoso"),
    DemoUser("finance@contoso.localhost", "Frank Finance", Role.CLIENT_FINANCE, client="contoso"),
    DemoUser("viewer@contoso.localhost", "Vera Viewer", Role.CLIENT_VIEWER, client="contoso"),
    DemoUser("admin@tailspin.localhost", "Tom Admin", Role.CLIENT_ADMIN, client="tailspin"),
    DemoUser("admin@summit.localhost", "Sam Admin", Role.PARTNER_ADMIN, partner="summit"),
    DemoUser("admin@fabrikam.localhost", "Fiona Admin", Role.CLIENT_ADMIN, client="fabrikam"),
]


def logo_png(text: str, background: str, accent: str, size: int = 256) -> bytes:
    """A simple square logo mark, drawn so the demo needs no image files."""
    image = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle((0, 0, size - 1, size - 1), radius=size // 5, fill=background)
    draw.ellipse((size * 0.62, size * 0.62, size * 0.86, size * 0.86), fill=accent)
    font = ImageFont.load_default(size=int(size * 0.42))
    box = draw.textbbox((0, 0), text, font=font)
    width, height = box[2] - box[0], box[3] - box[1]
    draw.text(((size - width) / 2 - box[0], (size - height) / 2 - box[1] - size * 0.04), text, font=font, fill="white")
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _partner(spec: dict) -> Partner:
    partner, _ = Partner.objects.get_or_create(slug=spec["slug"], defaults={"name": spec["name"]})
    PartnerDomain.objects.get_or_create(domain=spec["domain"], defaults={"partner": partner, "is_primary": True})
    brand, created = Brand.objects.get_or_create(partner=partner, defaults=spec["brand"])
    if created or not brand.logo:
        text, background, accent = spec["logo"]
        brand.logo.save(f"{spec['slug']}.png", ContentFile(logo_png(text, background, accent)), save=True)
    Plan.objects.get_or_create(
        partner=partner,
        name="Essentials",
        defaults={
            "monthly_price": Decimal("390.00"),
            "included_records": 20_000,
            "overage_per_1000": Decimal("4.00"),
            "max_connections": 4,
            "max_flows": 3,
            "min_sync_interval_minutes": 60,
        },
    )
    Plan.objects.get_or_create(
        partner=partner,
        name="Professional",
        defaults={
            "monthly_price": Decimal("1290.00"),
            "included_records": 250_000,
            "overage_per_1000": Decimal("2.50"),
            "max_connections": 12,
            "max_flows": 15,
            "min_sync_interval_minutes": 15,
            "sla_support_hours": 8,
            "sla_resolution_hours": 24,
            "sla_freshness_hours": 4,
            "hourly_rate": Decimal("150.00"),
        },
    )
    return partner


def _user(spec: DemoUser) -> User:
    user, created = User.objects.get_or_create(email=spec.email, defaults={"full_name": spec.name})
    if created or not user.has_usable_password():
        user.set_password(DEMO_PASSWORD)
        user.save()
    return user


def demo_seed(stdout=None) -> dict:
    """Create (or complete) the demo platform. Safe to run again: it only adds what is missing."""
    connection.set_schema_to_public()
    clients: dict[str, Client] = {}
    partners: dict[str, Partner] = {}
    with transaction.atomic():
        for spec in PARTNERS:
            partners[spec["slug"]] = _partner(spec)
    for spec in PARTNERS:
        partner = partners[spec["slug"]]
        plan = partner.plans.get(name="Professional")
        for slug, name in spec["clients"]:
            client = Client.objects.filter(partner=partner, slug=slug).first()
            if client is None:
                client = services.client_create(partner=partner, name=name, slug=slug, plan=plan)
                if stdout:
                    stdout.write(f"  created workspace {name} ({client.schema_name})\n")
            clients[slug] = client
    with transaction.atomic():
        for spec in USERS:
            user = _user(spec)
            if spec.client:
                Membership.objects.get_or_create(user=user, client=clients[spec.client], defaults={"role": spec.role})
            elif spec.partner:
                membership, _ = Membership.objects.get_or_create(
                    user=user, partner=partners[spec.partner], defaults={"role": spec.role}
                )
                if spec.role == Role.PARTNER_STAFF:
                    membership.assigned_clients.set(
                        [c for c in clients.values() if c.partner_id == membership.partner_id]
                    )
            else:
                Membership.objects.get_or_create(user=user, role=spec.role, partner=None, client=None)
    return {"partners": partners, "clients": clients}


def demo_commercials(clients: dict[str, Client], today: date | None = None) -> None:
    """What a partner's commercial pages show in the demo: every client on a yearly subscription (Contoso's renews
    within the month, so the renewals page has one coming and its reminder goes out; Fabrikam's price rises at
    renewal), and Northwind's change requests in the states a partner meets (asked, quoted, approved and billed).
    Only what is missing is added."""
    today = today or timezone.localdate()
    terms = {
        # client: (term start, renewal price or None)
        "contoso": (months_after(today + timedelta(days=21), -12), None),
        "tailspin": (months_after(today, -4), None),
        "fabrikam": (months_after(today, -9), Decimal("1390.00")),
    }
    for slug, (starts_on, renewal_price) in terms.items():
        client = clients.get(slug)
        if client is None or Subscription.objects.filter(client=client).exists():
            continue
        services.subscription_set(
            client=client,
            starts_on=starts_on,
            term_months=12,
            monthly_price=client.plan.monthly_price,
            auto_renew=True,
            renewal_price=renewal_price,
            actor=None,
        )
    people = {user.email: user for user in User.objects.filter(email__in=[spec.email for spec in USERS])}
    engineer = people["engineer@northwind.localhost"]
    asks = {
        "contoso": [
            (
                ChangeRequest.Kind.MAPPING,
                "Put expenses on the same invoice as time",
                "Our clients want one invoice a month per project: bill approved expenses with the hours.",
                {"hours": Decimal("6")},
                True,
            ),
            (
                ChangeRequest.Kind.NEW_SYSTEM,
                "Connect Jira Service Management",
                "Support engineers log time on service desk tickets; it should reach Kantata like project time.",
                None,
                False,
            ),
        ],
        "tailspin": [
            (
                ChangeRequest.Kind.NEW_FLOW,
                "Cost centres from Workday to Certinia",
                "Projects in Certinia should carry the cost centre of the person who leads them.",
                {"fee": Decimal("900.00")},
                False,
            )
        ],
    }
    for slug, requests in asks.items():
        client = clients.get(slug)
        if client is None or ChangeRequest.objects.filter(client=client).exists():
            continue
        admin = people[f"admin@{slug}.localhost"]
        for kind, title, description, quote, approve in requests:
            change_request = services.change_request_create(
                client=client, actor=admin, kind=kind, title=title, description=description
            )
            if quote:
                change_request = services.change_request_quote(change_request=change_request, actor=engineer, **quote)
            if approve:
                services.change_request_approve(
                    change_request=change_request, actor=admin, quote_version=change_request.quote_version
                )
