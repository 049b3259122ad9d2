"""Where links in emails and invitations point: a partner's primary serving host, or the platform's."""

from __future__ import annotations

from django.conf import settings

from tenants.models import (
    Partner,
)


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
