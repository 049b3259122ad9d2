"""What every workspace view shares: the web kit (portal.htmx) with role flags, HTMX events, people."""

from __future__ import annotations

import json

from django.shortcuts import render
from django.urls import reverse

from portal import htmx
from portal.htmx import redirect_to, refusal_said, wants_partial
from tenants.decorators import WORKSPACE_EDITORS, WORKSPACE_FINANCE
from tenants.selectors.people import workspace_people

__all__ = [
    "redirect_to",
    "refusal_said",
    "render_page",
    "render_partial",
    "role_flags",
    "sla_hours",
    "url",
    "wants_partial",
    "with_events",
    "workspace_people",
]


def render_page(request, template: str, context: dict, *, partial: str | None = None, status: int = 200):
    """portal.htmx.render_page with the workspace's role flags in the context."""
    return htmx.render_page(request, template, {**role_flags(request), **context}, partial=partial, status=status)


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


def with_events(response, *events: str, toast: str = "", level: str = "success"):
    """Tell the page what changed (HX-Trigger): listeners refresh counters and tables; a toast says it."""
    payload: dict = {event: True for event in events}
    if toast:
        payload["toast"] = {"message": toast, "level": level}
    if payload:
        response["HX-Trigger"] = json.dumps(payload)
    return response


def csv_cell(value):
    """Spreadsheets run cells starting with = + - @ as formulas: a record's text must stay text."""
    if value is None:
        return ""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    text = str(value)
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text
    return text
