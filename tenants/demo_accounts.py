"""What the demo's published logins need from the account rules: verified addresses, and no second
factor for the demo partners (each says so on its Team page; new partners require one for admins).

Run after `tenants.demo.demo_seed`; idempotent.
"""

from __future__ import annotations

from django.db import transaction

from tenants import services
from tenants.demo import PARTNERS, USERS
from tenants.models import MfaPolicy, Partner, User


@transaction.atomic
def demo_accounts_prepare() -> None:
    for spec in USERS:
        user = User.objects.filter(email=spec.email).first()
        if user is not None:
            # Seeded with a published password and a made-up address: nobody could follow a link sent there.
            services.account_email_verify(user=user, email=user.email)
    for partner in Partner.objects.filter(slug__in=[spec["slug"] for spec in PARTNERS]):
        # Explicit and visible: the demo's people sign in with the published password alone.
        services.partner_mfa_policy_set(partner=partner, policy=MfaPolicy.OPTIONAL)
