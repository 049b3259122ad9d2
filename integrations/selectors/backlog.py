"""Backlog and work in progress: what is contracted but not yet delivered, and what is delivered but not yet
on an invoice the ERP holds, per customer, project and month, each currency apart. Production books only.

Delivered work is approved billable time at its bill rate plus billable expenses, priced the way invoices
price it (integrations.engine.invoicing): a project-month's hours summed per bill rate, each sum times its
rate to the cent. A project-month's work is billed once its invoice has been written to the ERP as rebuilt
(`needs_sync` false); until then all of it is unbilled, whatever an older version of the invoice said.
The contracted value of a project is its contract's (Contract on the project's deal), else the won deal's
amount; a project with neither has no backlog, only delivered work.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from django.db.models import DateField, Exists, OuterRef, Q, Sum
from django.db.models.functions import TruncMonth

from integrations.models import Contract, Customer, Environment, Expense, Invoice, Project, TimeEntry
from portal.months import month_last_day, month_of

CENT = Decimal("0.01")
DRILL_LIMIT = 500
KINDS = ("contracted", "delivered", "unbilled")


@dataclass(frozen=True)
class BacklogFilter:
    customer_id: int | None = None
    month: date | None = None  # the first day of a month; None: every month to date


def _billed_months() -> set[tuple[int, date]]:
    """Project-months whose invoice the ERP holds as rebuilt."""
    return set(
        Invoice.objects.filter(environment=Environment.PRODUCTION, needs_sync=False).values_list(
            "project_id", "period_start"
        )
    )


def _delivered() -> dict[tuple[int, str, date], Decimal]:
    """(project, currency, month) -> delivered value, two grouped queries."""
    delivered: dict[tuple[int, str, date], Decimal] = defaultdict(Decimal)
    for row in (
        TimeEntry.objects.filter(environment=Environment.PRODUCTION, approved=True, billable=True)
        .annotate(month=TruncMonth("date"))
        .values("project_id", "currency", "month", "bill_rate")
        .annotate(hours=Sum("hours"))
        .order_by()
    ):
        amount = (row["hours"] * (row["bill_rate"] or 0)).quantize(CENT, rounding=ROUND_HALF_UP)
        delivered[(row["project_id"], row["currency"], month_of(row["month"]))] += amount
    for row in (
        Expense.objects.filter(environment=Environment.PRODUCTION, billable=True)
        .annotate(month=TruncMonth("date"))
        .values("project_id", "currency", "month")
        .annotate(amount=Sum("amount"))
        .order_by()
    ):
        delivered[(row["project_id"], row["currency"], month_of(row["month"]))] += row["amount"]
    return delivered


def _contracted(projects: dict[int, dict]) -> dict[tuple[int, str], Decimal]:
    """(project, currency) -> contracted value: the contracts on the project's deal, else the won deal's amount."""
    by_deal: dict[int, list[tuple[str, Decimal]]] = defaultdict(list)
    deals = {p["opportunity_id"] for p in projects.values() if p["opportunity_id"]}
    for contract in Contract.objects.filter(opportunity_id__in=deals, value__isnull=False).values(
        "opportunity_id", "currency", "value"
    ):
        by_deal[contract["opportunity_id"]].append((contract["currency"], contract["value"]))
    contracted: dict[tuple[int, str], Decimal] = defaultdict(Decimal)
    for pk, project in projects.items():
        deal = project["opportunity_id"]
        if deal in by_deal:
            for currency, value in by_deal[deal]:
                contracted[(pk, currency)] += value
        elif deal and project["opportunity__is_won"] and project["opportunity__amount"] is not None:
            contracted[(pk, project["opportunity__currency"])] += project["opportunity__amount"]
    return contracted


def backlog_figures() -> dict:
    """Every project's contracted value and every project-month's delivered and unbilled value, by currency.

    The filters are applied to these by `backlog_dashboard`, so one computation serves every view of them."""
    delivered = _delivered()
    billed = _billed_months()
    project_ids = {key[0] for key in delivered}
    projects = {
        p["pk"]: p
        for p in Project.objects.filter(Q(pk__in=project_ids) | Q(opportunity__is_won=True)).values(
            "pk",
            "code",
            "name",
            "customer_id",
            "opportunity_id",
            "opportunity__is_won",
            "opportunity__amount",
            "opportunity__currency",
        )
    }
    contracted = _contracted(projects)
    customers = dict(
        Customer.objects.filter(pk__in={p["customer_id"] for p in projects.values()}).values_list("pk", "name")
    )
    months = [
        {
            "project_id": pk,
            "currency": currency,
            "month": month,
            "delivered": value,
            "unbilled": Decimal(0) if (pk, month) in billed else value,
        }
        for (pk, currency, month), value in delivered.items()
    ]
    return {
        "projects": {
            pk: {
                "project_id": pk,
                "code": p["code"],
                "name": p["name"],
                "customer_id": p["customer_id"],
                "customer": customers.get(p["customer_id"], "No customer"),
            }
            for pk, p in projects.items()
        },
        "contracted": [
            {"project_id": pk, "currency": currency, "value": value} for (pk, currency), value in contracted.items()
        ],
        "months": sorted(months, key=lambda row: (row["month"], row["project_id"], row["currency"])),
    }


def backlog_dashboard(figures: dict, *, selected: BacklogFilter) -> dict:
    """The page's rows from `backlog_figures`: per project and currency, per month, per customer, and totals per
    currency. With a month chosen, delivered and unbilled are that month's, backlog is what remained at its end."""
    projects = figures["projects"]
    in_scope = {pk for pk, project in projects.items() if selected.customer_id in (None, project["customer_id"])}
    until = month_last_day(selected.month) if selected.month else None
    rows: dict[tuple[int, str], dict] = {}

    def row_for(pk: int, currency: str) -> dict:
        key = (pk, currency)
        if key not in rows:
            project = projects[pk]
            rows[key] = {
                **project,
                "currency": currency,
                "contracted": None,
                "delivered": Decimal(0),
                "delivered_to_date": Decimal(0),
                "unbilled": Decimal(0),
            }
        return rows[key]

    for contract in figures["contracted"]:
        if contract["project_id"] in in_scope:
            row_for(contract["project_id"], contract["currency"])["contracted"] = contract["value"]
    by_month: dict[tuple[date, str], dict] = {}
    month_rows = []
    running: dict[tuple[int, str], Decimal] = defaultdict(Decimal)
    for entry in figures["months"]:
        pk, currency, month = entry["project_id"], entry["currency"], entry["month"]
        if pk not in in_scope or (until and month > until):
            continue
        running[(pk, currency)] += entry["delivered"]
        row = row_for(pk, currency)
        row["delivered_to_date"] += entry["delivered"]
        if selected.month and month != selected.month:
            continue
        row["delivered"] += entry["delivered"]
        row["unbilled"] += entry["unbilled"]
        contracted = row["contracted"]
        month_rows.append(
            {
                **entry,
                "code": row["code"],
                "name": row["name"],
                "customer": row["customer"],
                "customer_id": row["customer_id"],
                "contracted": contracted,
                "backlog": None if contracted is None else contracted - running[(pk, currency)],
            }
        )
        total = by_month.setdefault(
            (month, currency), {"month": month, "currency": currency, "delivered": Decimal(0), "unbilled": Decimal(0)}
        )
        total["delivered"] += entry["delivered"]
        total["unbilled"] += entry["unbilled"]
    by_project = []
    for row in rows.values():
        row["backlog"] = None if row["contracted"] is None else row["contracted"] - row["delivered_to_date"]
        if row["contracted"] is None and not row["delivered_to_date"]:
            continue
        by_project.append(row)
    by_project.sort(key=lambda r: (r["customer"], r["code"], r["currency"]))
    currencies: dict[str, dict] = {}
    by_customer: dict[tuple[int | None, str], dict] = {}
    for row in by_project:
        for totals in (
            currencies.setdefault(row["currency"], _zero({"currency": row["currency"]})),
            by_customer.setdefault(
                (row["customer_id"], row["currency"]),
                _zero({"customer_id": row["customer_id"], "customer": row["customer"], "currency": row["currency"]}),
            ),
        ):
            totals["projects"] += 1
            totals["delivered"] += row["delivered"]
            totals["unbilled"] += row["unbilled"]
            if row["contracted"] is not None:
                totals["contracts"] += 1
                totals["contracted"] += row["contracted"]
                totals["backlog"] += row["backlog"]
    for totals in [*currencies.values(), *by_customer.values()]:
        if not totals["contracts"]:  # nothing contracted: no backlog to speak of, not a backlog of zero
            totals["contracted"] = totals["backlog"] = None
    return {
        "currencies": sorted(currencies.values(), key=lambda c: (-(c["contracted"] or 0), c["currency"])),
        "by_project": by_project,
        "by_customer": sorted(by_customer.values(), key=lambda c: (c["customer"], c["currency"])),
        "by_month": sorted(by_month.values(), key=lambda m: (m["month"], m["currency"]), reverse=True),
        "month_rows": month_rows,
        "customers": sorted(
            {(p["customer_id"], p["customer"]) for p in projects.values() if p["customer_id"]}, key=lambda c: c[1]
        ),
        "months": sorted({entry["month"] for entry in figures["months"]}, reverse=True),
        "selected": selected,
    }


def _zero(extra: dict) -> dict:
    return {
        **extra,
        "projects": 0,
        "contracts": 0,
        "contracted": Decimal(0),
        "delivered": Decimal(0),
        "backlog": Decimal(0),
        "unbilled": Decimal(0),
    }


def backlog_records(*, kind: str, currency: str, selected: BacklogFilter, project_id: int | None = None) -> dict:
    """The records behind one figure: the contract or won deal behind a contracted value, the time and
    expenses behind a delivered or unbilled one (at most DRILL_LIMIT of each, newest first)."""
    projects = Project.objects.all()
    scope = {
        "project": Project.objects.filter(pk=project_id).first() if project_id is not None else None,
        "customer": Customer.objects.filter(pk=selected.customer_id).values_list("name", flat=True).first() or "",
    }
    if project_id is not None:
        projects = projects.filter(pk=project_id)
    if selected.customer_id is not None:
        projects = projects.filter(customer_id=selected.customer_id)
    if kind == "contracted":
        project_rows = list(
            projects.filter(opportunity__isnull=False).select_related("customer", "opportunity").order_by("code")
        )
        contracts = defaultdict(list)
        for contract in Contract.objects.filter(
            opportunity_id__in=[p.opportunity_id for p in project_rows], value__isnull=False
        ).order_by("pk"):
            contracts[contract.opportunity_id].append(contract)
        deals = []
        for project in project_rows:
            if project.opportunity_id in contracts:
                deals += [
                    {"project": project, "source": "Contract", "contract": c, "value": c.value}
                    for c in contracts[project.opportunity_id]
                    if c.currency == currency
                ]
            elif project.opportunity.is_won and project.opportunity.currency == currency:
                if project.opportunity.amount is not None:
                    deals.append({"project": project, "source": "Won deal", "value": project.opportunity.amount})
        return {
            **scope,
            "kind": kind,
            "deals": deals,
            "time": [],
            "expenses": [],
            "total": sum((d["value"] for d in deals), 0),
        }
    time = TimeEntry.objects.filter(
        environment=Environment.PRODUCTION, approved=True, billable=True, currency=currency, project__in=projects
    )
    expenses = Expense.objects.filter(
        environment=Environment.PRODUCTION, billable=True, currency=currency, project__in=projects
    )
    if selected.month:
        start, end = selected.month, month_last_day(selected.month)
        time, expenses = time.filter(date__gte=start, date__lte=end), expenses.filter(date__gte=start, date__lte=end)
    if kind == "unbilled":
        time = time.annotate(period=TruncMonth("date", output_field=DateField())).exclude(_on_written_invoice())
        expenses = expenses.annotate(period=TruncMonth("date", output_field=DateField())).exclude(_on_written_invoice())
    time_total = time.aggregate(n=Sum("hours"))["n"] or Decimal(0)
    time_rows = list(time.select_related("resource", "project").order_by("-date", "-id")[:DRILL_LIMIT])
    expense_rows = list(expenses.select_related("resource", "project").order_by("-date", "-id")[:DRILL_LIMIT])
    return {
        **scope,
        "kind": kind,
        "deals": [],
        "time": time_rows,
        "time_count": time.count(),
        "time_hours": time_total,
        "expenses": expense_rows,
        "expense_count": expenses.count(),
        "total": _priced(time) + (expenses.aggregate(n=Sum("amount"))["n"] or Decimal(0)),
    }


def _on_written_invoice() -> Exists:
    """A time entry's or expense's project-month has an invoice the ERP holds as rebuilt."""
    return Exists(
        Invoice.objects.filter(
            environment=Environment.PRODUCTION,
            needs_sync=False,
            project_id=OuterRef("project_id"),
            period_start=OuterRef("period"),
        )
    )


def _priced(time) -> Decimal:
    """Time's value as invoices price it: hours per project, month and rate, each sum times its rate."""
    total = Decimal(0)
    for row in (
        time.annotate(month=TruncMonth("date"))
        .values("project_id", "month", "bill_rate")
        .annotate(hours=Sum("hours"))
        .order_by()
    ):
        total += (row["hours"] * (row["bill_rate"] or 0)).quantize(CENT, rounding=ROUND_HALF_UP)
    return total
