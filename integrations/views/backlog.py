"""Backlog and work in progress: the dashboard, the records behind each figure, and its rows as CSV."""

from __future__ import annotations

import csv
import io
from datetime import date

from django.http import HttpResponse
from django.shortcuts import redirect
from django.utils import timezone
from django.views.decorators.http import require_safe

from integrations.dashboard_cache import dashboard_cached
from integrations.selectors.backlog import KINDS, BacklogFilter, backlog_dashboard, backlog_figures, backlog_records
from integrations.views.support import csv_cell, render_page
from tenants.decorators import WORKSPACE_ALL, workspace_role_required

KIND_LABELS = {
    "contracted": "Contracted",
    "delivered": "Delivered",
    "unbilled": "Delivered, not yet billed",
}


def _selected(request) -> BacklogFilter:
    customer = request.GET.get("customer", "")
    month = request.GET.get("month", "")
    try:
        chosen_month = date.fromisoformat(f"{month}-01") if month else None
    except ValueError:
        chosen_month = None
    return BacklogFilter(
        customer_id=int(customer) if customer.isascii() and customer.isdigit() else None, month=chosen_month
    )


def _page(request) -> dict:
    figures = dashboard_cached("backlog", backlog_figures)
    return {**backlog_dashboard(figures, selected=_selected(request)), "computed_at": figures["computed_at"]}


@require_safe
@workspace_role_required(WORKSPACE_ALL)
def backlog_dashboard_view(request, client_slug):
    data = _page(request)
    customers = dict(data["customers"])
    context = {
        "client": request.client,
        "data": data,
        "section": "dashboards",
        "tab": "backlog",
        "customer_name": customers.get(data["selected"].customer_id, ""),
        "scope": _scope(data["selected"]),
    }
    return render_page(request, "integrations/dashboards/backlog.html", context, partial="body")


@require_safe
@workspace_role_required(WORKSPACE_ALL)
def backlog_records_view(request, client_slug):
    kind = request.GET.get("kind", "")
    currency = request.GET.get("currency", "")[:3].upper()
    project = request.GET.get("project", "")
    if kind not in KINDS or not currency.isalpha():
        return redirect("dashboard_backlog", client_slug)  # a figure's link always names both
    project_id = int(project) if project.isascii() and project.isdigit() else None
    selected = _selected(request)
    records = backlog_records(kind=kind, currency=currency, selected=selected, project_id=project_id)
    context = {
        "client": request.client,
        "records": records,
        "kind_label": KIND_LABELS[kind],
        "currency": currency,
        "selected": selected,
        "section": "dashboards",
        "tab": "backlog",
        "project": records["project"],
        "customer_name": records["customer"],
        "back_query": _without(request, "kind", "currency", "project"),
    }
    return render_page(request, "integrations/dashboards/backlog_records.html", context)


def _scope(selected: BacklogFilter) -> str:
    """The filters as a query string, for the links to a figure's records and to the CSV."""
    parts = []
    if selected.customer_id:
        parts.append(f"customer={selected.customer_id}")
    if selected.month:
        parts.append(f"month={selected.month:%Y-%m}")
    return "&".join(parts)


def _without(request, *names: str) -> str:
    query = request.GET.copy()
    for name in names:
        query.pop(name, None)
    return query.urlencode()


@require_safe
@workspace_role_required(WORKSPACE_ALL)
def backlog_csv(request, client_slug):
    """Per customer, project, month and currency, as filtered on the page; money to the cent."""
    data = _page(request)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        [
            "customer",
            "project_code",
            "project",
            "month",
            "currency",
            "contracted",
            "delivered",
            "unbilled",
            "backlog_at_month_end",
        ]
    )
    for row in sorted(data["month_rows"], key=lambda r: (r["customer"], r["code"], r["month"], r["currency"])):
        writer.writerow(
            [
                csv_cell(value)
                for value in (
                    row["customer"],
                    row["code"],
                    row["name"],
                    f"{row['month']:%Y-%m}",
                    row["currency"],
                    row["contracted"],
                    row["delivered"],
                    row["unbilled"],
                    row["backlog"],
                )
            ]
        )
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="backlog-{request.client.slug}-{stamp}.csv"'
    return response
