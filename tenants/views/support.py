"""Small helpers every partner-console view shares: lookups, and the web kit (portal.htmx) re-exported."""

from __future__ import annotations

from datetime import date

from django.shortcuts import get_object_or_404

from portal.htmx import redirect_to, refusal_said, render_page, wants_partial
from portal.months import this_month
from tenants.models import Client, Role
from tenants.selectors.access import workspaces_for

__all__ = [
    "is_partner_admin",
    "month_from",
    "partner_client",
    "reachable_client",
    "redirect_to",
    "refusal_said",
    "render_page",
    "wants_partial",
]


def is_partner_admin(request) -> bool:
    return request.partner_membership.role == Role.PARTNER_ADMIN


def reachable_client(request, slug: str) -> Client:
    """A client of this partner that the signed-in partner admin or assigned staff may see, else 404."""
    return get_object_or_404(workspaces_for(request.user, request.partner).select_related("plan"), slug=slug)


def partner_client(request, slug: str) -> Client:
    return get_object_or_404(Client.objects.select_related("plan"), partner=request.partner, slug=slug)


def month_from(value: str | None) -> date:
    """`?month=2026-11` as the first of that month; the current month when absent or malformed."""
    if value:
        try:
            year, month = (int(part) for part in value.split("-", 1))
            if 2000 <= year <= 2100:
                return date(year, month, 1)
        except ValueError:
            pass
    return this_month()
