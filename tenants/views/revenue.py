"""Revenue and usage: statements per client and month, MRR, and the CSV a finance team imports."""

from __future__ import annotations

import csv
from datetime import timedelta

from django.http import HttpResponse

from portal.months import month_bounds, this_month
from tenants.decorators import partner_role_required
from tenants.models import Role
from tenants.selectors.revenue import client_statement, partner_mrr, partner_statements, statement_totals, usage_history
from tenants.selectors.usage import usage_as_of
from tenants.views.support import month_from, partner_client, render_page

# Spreadsheet programs run cells starting with these as formulas (CSV injection).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def _month_nav(month):
    previous = (month - timedelta(days=1)).replace(day=1)
    following = month_bounds(month)[1]
    return {
        "month": month,
        "previous_month": previous,
        "next_month": following,
        "is_current": month == this_month(),
    }


@partner_role_required(Role.PARTNER_ADMIN)
def revenue(request):
    month = month_from(request.GET.get("month"))
    statements = partner_statements(partner=request.partner, month=month)
    context = {
        "statements": statements,
        "totals": statement_totals(statements),
        "mrr": partner_mrr(request.partner),
        "records": sum(statement.records_synced for statement in statements),
        "runs": sum(statement.runs for statement in statements),
        "as_of": usage_as_of(statements),
        "section": "revenue",
        **_month_nav(month),
    }
    return render_page(request, "tenants/revenue.html", context)


@partner_role_required(Role.PARTNER_ADMIN)
def statement(request, slug):
    client = partner_client(request, slug)
    month = month_from(request.GET.get("month"))
    context = {
        "statement": client_statement(client=client, month=month),
        "history": usage_history(client, months=6, until=month),
        "this_client": client,
        "section": "revenue",
        **_month_nav(month),
    }
    return render_page(request, "tenants/statement.html", context)


def _cell(value) -> str:
    text = str(value)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


@partner_role_required(Role.PARTNER_ADMIN)
def revenue_csv(request):
    month = month_from(request.GET.get("month"))
    statements = partner_statements(partner=request.partner, month=month)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{request.partner.slug}-statements-{month:%Y-%m}.csv"'
    writer = csv.writer(response)
    writer.writerow(
        [
            "month",
            "client",
            "workspace",
            "status",
            "plan",
            "currency",
            "plan_price",
            "included_records",
            "records_synced",
            "overage_records",
            "overage_per_1000",
            "overage_amount",
            "total",
            "runs",
            "connections",
            "change_requests",
            "changes_amount",
        ]
    )
    for line in statements:
        writer.writerow(
            [
                f"{month:%Y-%m}",
                _cell(line.client.name),
                _cell(line.client.slug),
                line.client.status,
                _cell(line.plan_name),
                line.currency,
                f"{line.plan_price:.2f}",
                line.included_records,
                line.records_synced,
                line.overage_records,
                f"{line.overage_per_1000:.2f}",
                f"{line.overage_amount:.2f}",
                f"{line.total:.2f}",
                line.runs,
                # Per system, against what the plan includes: "NetSuite 3/2; Salesforce 1" (no "/n": every system).
                "; ".join(
                    f"{system.label} {system.used}" + ("" if system.included is None else f"/{system.included}")
                    for system in line.systems
                ),
                # Approved this month, each at its quote: "#3 412.50; #4 1234.56" (their sum is changes_amount).
                "; ".join(f"#{change.number} {change.amount:.2f}" for change in line.changes),
                f"{line.changes_amount:.2f}",
            ]
        )
    return response
