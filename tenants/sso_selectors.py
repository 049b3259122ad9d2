"""Reads for single sign-on: which identity providers a host offers, and which one an email address uses."""

from __future__ import annotations

from django.db.models import QuerySet

from tenants.models import Partner, SsoConnection


def _email_domain(email: str) -> str:
    return (email or "").strip().lower().rpartition("@")[2]


def sso_connections_offered(partner: Partner | None) -> QuerySet[SsoConnection]:
    """The identity providers a partner's host offers: its own and its clients', switched on."""
    if partner is None:
        return SsoConnection.objects.none()
    return SsoConnection.objects.filter(partner=partner, is_active=True).select_related("partner", "client")


def sso_connection_for_email(*, partner: Partner | None, email: str) -> SsoConnection | None:
    """The identity provider on this host that has proven the address's domain, if any."""
    domain = _email_domain(email)
    if not domain:
        return None
    return sso_connections_offered(partner).filter(domains__domain=domain, domains__verified_at__isnull=False).first()


def sso_required_for_email(email: str) -> SsoConnection | None:
    """The identity provider an address must sign in through (its proven domain says SSO is required)."""
    domain = _email_domain(email)
    if not domain:
        return None
    return (
        SsoConnection.objects.filter(
            is_active=True, sso_required=True, domains__domain=domain, domains__verified_at__isnull=False
        )
        .select_related("partner", "client")
        .first()
    )
