"""What every workspace view shares: partial rendering, HTMX redirects and events, role flags."""

from __future__ import annotations

import json

from django.core.cache import cache
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from tenants.decorators import WORKSPACE_EDITORS, WORKSPACE_FINANCE
from tenants.models import Membership, Role


def wants_partial(request) -> bool:
    """HTMX asking for a piece of a page (not boosting a whole page, not restoring history)."""
    return bool(request.htmx) and not request.htmx.boosted and not request.htmx.history_restore_request


def render_page(request, template: str, context: dict, *, partial: str | None = None, status: int = 200):
    """The whole page, or only `partial` of it when HTMX asks for a piece.

    A form that failed answers 422 to a plain browser but 200 to HTMX: htmx 2 swaps no 4xx
    response by default, and the partial with its errors is what should be swapped in.
    """
    context = {**role_flags(request), **context}
    if partial and wants_partial(request):
        template = f"{template}#{partial}"
        status = 200 if status == 422 else status
    return render(request, template, context, status=status)


def render_partial(request, template: str, partial: str, context: dict, *, status: int = 200):
    """Only a piece of a page, whoever asks: endpoints that exist to refresh one part of a page."""
    return render(request, f"{template}#{partial}", {**role_flags(request), **context}, status=status)


def role_flags(request) -> dict:
    role = request.workspace_role
    return {
        "can_edit": role in WORKSPACE_EDITORS,
        "can_work_queue": role in WORKSPACE_FINANCE,
        "sla_hours": sla_hours(request),
    }


def sla_hours(request) -> int | None:
    plan = getattr(request.client, "plan", None)
    return plan.sla_resolution_hours if plan else None


def url(request, name: str, *args) -> str:
    return reverse(name, args=[request.client.slug, *args])


def redirect_to(request, target: str):
    """A real redirect, or HX-Redirect for HTMX requests so the new page loads whole with its toasts."""
    if request.htmx:
        response = HttpResponse(status=204)
        response["HX-Redirect"] = target
        return response
    return redirect(target)


def with_events(response, *events: str, toast: str = "", level: str = "success"):
    """Tell the page what changed (HX-Trigger): listeners refresh counters and tables; a toast says it."""
    payload: dict = {event: True for event in events}
    if toast:
        payload["toast"] = {"message": toast, "level": level}
    if payload:
        response["HX-Trigger"] = json.dumps(payload)
    return response


def workspace_people(client) -> list[tuple[int, str]]:
    """Who may be assigned exceptions: the client's admins and finance staff, and the partner's
    admins and the staff assigned to this client. Kept half a minute: every queue page asks."""
    key = f"workspace-people:{client.pk}"
    people = cache.get(key)
    if people is None:
        people = _workspace_people(client)
        cache.set(key, people, 30)
    return people


def _workspace_people(client) -> list[tuple[int, str]]:
    members = Membership.objects.filter(client=client, role__in=[Role.CLIENT_ADMIN, Role.CLIENT_FINANCE])
    partner_admins = Membership.objects.filter(partner_id=client.partner_id, role=Role.PARTNER_ADMIN)
    staff = Membership.objects.filter(partner_id=client.partner_id, role=Role.PARTNER_STAFF, assigned_clients=client)
    people = {}
    for membership in (members | partner_admins | staff).select_related("user").order_by("user__email"):
        people[membership.user_id] = membership.user.email
    return sorted(people.items(), key=lambda item: item[1])
