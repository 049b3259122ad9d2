"""The web kit every console shares: whole page or HTMX partial, redirects HTMX follows as a whole page, and a
service's refusal said to the person."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render


def wants_partial(request) -> bool:
    """HTMX asking for a piece of a page (not boosting a whole page, not restoring history)."""
    return bool(request.htmx) and not request.htmx.boosted and not request.htmx.history_restore_request


def render_page(request, template: str, context: dict, *, partial: str | None = None, status: int = 200):
    """The whole page, or only `partial` of it when HTMX asks for a piece.

    A form that failed answers 422 to a plain browser but 200 to HTMX: htmx 2 swaps no 4xx
    response by default, and the partial with its errors is exactly what should be swapped in.
    """
    if partial and wants_partial(request):
        template = f"{template}#{partial}"
        status = 200 if status == 422 else status
    return render(request, template, context, status=status)


def redirect_to(request, target: str):
    """A real redirect, or HX-Redirect for HTMX requests, so the new page loads whole with its toasts."""
    if request.htmx:
        response = HttpResponse(status=204)
        response["HX-Redirect"] = target
        return response
    return redirect(target)


@contextmanager
def refusal_said(request, *refusals: type[Exception]) -> Iterator[None]:
    """A service call whose refusal (one of `refusals`) is said to the person on the next page as an error, instead of
    failing the request; the rest of the block (saying what was done) runs only when it was not refused."""
    try:
        yield
    except refusals as refused:
        messages.error(request, str(refused))
