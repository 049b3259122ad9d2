"""Reconciliation: for a run, or a flow across its runs, where every source record went, on a page and as CSV."""

from __future__ import annotations

import csv

from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.views.decorators.http import require_safe
from django_tenants.utils import tenant_context

from integrations import selectors
from integrations.models import Flow, SyncRun
from integrations.views.support import csv_cell, render_page
from tenants.decorators import WORKSPACE_ALL, workspace_role_required

HEADER = [
    "run",
    "source_system",
    "object",
    "source_id",
    "record",
    "outcome",
    "exception",
    "entity",
    "record_id",
    "targets",
]


def _page(request, rows) -> dict:
    after = request.GET.get("after", "")
    if after.isascii() and after.isdigit():
        rows = rows.filter(pk__gt=int(after))
    shown = list(rows[: selectors.RECONCILIATION_PAGE + 1])
    more = len(shown) > selectors.RECONCILIATION_PAGE
    shown = shown[: selectors.RECONCILIATION_PAGE]
    return {"rows": shown, "next_after": shown[-1].pk if more and shown else None}


@require_safe
@workspace_role_required(WORKSPACE_ALL)
def run_reconciliation(request, client_slug, pk):
    run = get_object_or_404(SyncRun.objects.select_related("flow", "flow__source_connection"), pk=pk)
    outcome = request.GET.get("outcome", "")
    context = {
        "run": run,
        "flow": run.flow,
        "outcomes": selectors.run_outcomes(run),
        "total": run.read,
        "outcome": outcome,
        **_page(request, selectors.reconciliation_rows(run=run, outcome=outcome)),
        "section": "flows",
    }
    return render_page(request, "integrations/flows/reconciliation.html", context)


@require_safe
@workspace_role_required(WORKSPACE_ALL)
def flow_reconciliation(request, client_slug, pk):
    flow = get_object_or_404(Flow.objects.select_related("source_connection"), pk=pk)
    outcome = request.GET.get("outcome", "")
    outcomes = selectors.flow_outcomes(flow)
    context = {
        "run": None,
        "flow": flow,
        "outcomes": outcomes,
        "total": sum(row["count"] for row in outcomes),
        "outcome": outcome,
        **_page(request, selectors.reconciliation_rows(flow=flow, outcome=outcome)),
        "section": "flows",
    }
    return render_page(request, "integrations/flows/reconciliation.html", context)


@require_safe
@workspace_role_required(WORKSPACE_ALL)
def run_reconciliation_csv(request, client_slug, pk):
    run = get_object_or_404(SyncRun.objects.select_related("flow", "flow__source_connection"), pk=pk)
    rows = selectors.reconciliation_rows(run=run, outcome=request.GET.get("outcome", ""))
    return _csv(request, run.flow, rows, f"run-{run.pk}")


@require_safe
@workspace_role_required(WORKSPACE_ALL)
def flow_reconciliation_csv(request, client_slug, pk):
    flow = get_object_or_404(Flow.objects.select_related("source_connection"), pk=pk)
    rows = selectors.reconciliation_rows(flow=flow, outcome=request.GET.get("outcome", ""))
    return _csv(request, flow, rows, f"flow-{flow.pk}")


def _csv(request, flow: Flow, rows, name: str) -> StreamingHttpResponse:
    """Streamed after the view returns, when the connection is back on the public schema: the rows are read
    inside the client's schema again."""

    class Echo:
        def write(self, value):
            return value

    writer = csv.writer(Echo())
    client = request.client
    source = selectors.vendor_label(flow.source_connection.vendor)

    def lines():
        with tenant_context(client):
            yield writer.writerow(HEADER)
            for row in rows.iterator(chunk_size=2000):
                targets = "; ".join(
                    f"{t.get('system')} {t.get('object')} {t.get('id') or '—'} {t.get('action')}" for t in row.targets
                )
                yield writer.writerow(
                    [
                        csv_cell(value)
                        for value in (
                            row.run_id,
                            source,
                            row.object,
                            row.external_id,
                            row.description,
                            row.outcome,
                            row.exception_id or "",
                            row.entity,
                            row.record_id or "",
                            targets,
                        )
                    ]
                )

    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="reconciliation-{client.slug}-{name}-{stamp}.csv"'
    return response
