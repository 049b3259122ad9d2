"""Small helpers every partner-console view shares: HTMX partials, redirects, lookups."""

from __future__ import annotations

from datetime import date

from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from tenants.models import Client, Role
from tenants.selectors import this_month, workspaces_for


def wants_partial(request) -> bool:
    """HTMX asking for a piece of a page (not boosting a whole page, not restoring history)."""
    return bool(request.htmx) and not request.htmx.boosted and not request.htmx.history_restore_request


def render_page(request, template: str, context: dict, *, partial: str | None = None, status: int = 200):
    """The whole page, or only `partial` of it when HTMX asks for a piece.

    A form that failed answers 422 to a plain browser, but 200 to HTMX: htmx 2 swaps no 4xx
    response by default, and the partial with its errors is exactly what should be swapped in.
    """
    if partial and wants_partial(request):
        template = f"{template}#{partial}"
        status = 200 if status == 422 else status
    return render(request, template, context, status=status)


def redirect_to(request, url: str):
    """A real redirect, or HX-Redirect for HTMX requests, so the new page loads whole with its toasts."""
    if request.htmx:
        response = HttpResponse(status=204)
        response["HX-Redirect"] = url
        return response
    return redirect(url)


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
