"""Bulk retries and ignores run by a worker: the queue page's progress box, polled while one runs."""

from __future__ import annotations

from django.views.decorators.http import require_safe

from integrations.models import BulkAction
from integrations.services.bulk import bulk_action_summary
from integrations.services.exceptions import BULK_LIVE
from integrations.views.support import render_partial, with_events
from tenants.decorators import WORKSPACE_ALL, workspace_role_required

TEMPLATE = "integrations/exceptions/bulk_progress.html"


@require_safe
@workspace_role_required(WORKSPACE_ALL)
def exception_bulk_progress(request, client_slug):
    """The running bulk job (or the one asked for by ?job=): polled each second until it ends;
    the poll that sees the end says so in a toast and refreshes the queue and its counters."""
    asked = request.GET.get("job", "")
    if asked.isascii() and asked.isdigit():
        job = BulkAction.objects.filter(pk=int(asked)).first()
    else:
        job = BulkAction.objects.filter(status__in=BULK_LIVE).first()
    context = {"job": job, "summary": bulk_action_summary(job) if job is not None and not job.live else ""}
    response = render_partial(request, TEMPLATE, "box", context)
    if job is not None and asked and not job.live:
        failed = job.status == BulkAction.Status.FAILED
        return with_events(
            response, "exceptions-changed", toast=context["summary"], level="error" if failed else "success"
        )
    return response
