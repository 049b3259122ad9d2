"""Partners: creating one with its host, brand, starter plan and first admin; its two-factor policy."""

from __future__ import annotations

from decimal import Decimal

from django.db import transaction

from branding.models import Brand
from tenants.models import (
    MfaPolicy,
    Partner,
    PartnerDomain,
    Plan,
    Role,
    User,
)
from tenants.services.audit import partner_audit_record
from tenants.services.invitations import user_invite


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
