"""Invoices per project and month, built in the canonical store from approved billable time and expenses.

A page marks the project-months it touched (one statement); when a run has read what it will read, the
marked invoices are rebuilt a chunk at a time (one grouped query for their time, one for their expenses, one
statement each to replace their lines and totals) and written to the ERP once, not once per page.
"""

from __future__ import annotations

import zlib
from collections import defaultdict
from contextlib import contextmanager
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from django.db import connection, transaction
from django.db.models import Sum
from django.db.models.functions import TruncMonth

from connectors.base import AuthenticationFailed, DestinationRefused
from integrations.engine import bulk
from integrations.engine.issues import ExceptionBook, exceptions_resolve_for_records
from integrations.engine.items import ConnectionBroken
from integrations.models import Expense, FlowStep, Invoice, InvoiceLine, Project, TimeEntry
from portal.months import month_last_day, month_start

CHUNK = 200  # invoices rebuilt and written together


def invoices_mark(entries: list) -> int:
    """Note that these project-months have new time or expenses: their invoices are rebuilt at flush.

    One statement for the page; entries mostly carry their project (the page resolved it), the rest are read."""
    project_field = TimeEntry._meta.get_field("project")
    projects = {e.project_id: e.project for e in entries if project_field.is_cached(e)}
    missing = {entry.project_id for entry in entries} - set(projects)
    projects |= {p.pk: p for p in Project.objects.filter(pk__any=missing).only("code", "customer_id", "currency")}
    periods = sorted({(entry.project_id, month_start(entry.date), entry.environment) for entry in entries})
    if not periods:
        return 0
    columns: list[list] = [[], [], [], [], [], [], []]
    for project_id, start, environment in periods:
        project = projects[project_id]
        row = (project_id, start, month_last_day(start), f"{project.code}-{start:%Y-%m}", project.customer_id)
        for column, value in zip(columns, (*row, project.currency, environment), strict=True):
            column.append(value)
    table = Invoice._meta.db_table
    # Sorted, so two runs marking the same months take their row locks in the same order; one array per column,
    # so the statement is as short for a hundred months as for one.
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (project_id, period_start, period_end, number, customer_id,"  # noqa: S608
            f" currency, environment, needs_sync, marks, total, updated_at)"
            f" SELECT *, true, 1, 0, now() FROM unnest(%s::bigint[], %s::date[], %s::date[], %s::text[],"
            f" %s::bigint[], %s::text[], %s::text[])"
            f" ON CONFLICT (project_id, period_start, environment)"
            f" DO UPDATE SET needs_sync = true, marks = {table}.marks + 1",
            columns,
        )
    return len(periods)


def invoices_rebuild(invoices: list[Invoice]) -> list[Invoice]:
    """Each invoice's lines and total from all its approved billable time (a line per rate) and expenses (a line
    each), a few statements for the whole chunk; returns the invoices that have lines."""
    if not invoices:
        return []
    (environment,) = {inv.environment for inv in invoices}  # a chunk is one environment's (invoices_pending)
    by_key = {(inv.project_id, inv.period_start): inv for inv in invoices}
    projects = {p.pk: p for p in Project.objects.filter(pk__any={inv.project_id for inv in invoices})}
    start = min(inv.period_start for inv in invoices)
    end = max(month_last_day(inv.period_start) for inv in invoices)
    hours: dict[tuple[int, date], dict[Decimal, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for row in (
        TimeEntry.objects.filter(
            project_id__any=projects,
            date__gte=start,
            date__lte=end,
            approved=True,
            billable=True,
            environment=environment,
        )
        .annotate(month=TruncMonth("date"))
        .values("project_id", "month", "bill_rate")
        .annotate(hours=Sum("hours"))
        .order_by()
    ):
        month = row["month"].date() if hasattr(row["month"], "date") else row["month"]
        if (row["project_id"], month) in by_key:
            hours[(row["project_id"], month)][row["bill_rate"] or Decimal(0)] += row["hours"]
    expenses: dict[tuple[int, date], list[Expense]] = defaultdict(list)
    for expense in Expense.objects.filter(
        project_id__any=projects, date__gte=start, date__lte=end, billable=True, environment=environment
    ).order_by("date", "id"):
        key = (expense.project_id, month_start(expense.date))
        if key in by_key:
            expenses[key].append(expense)
    lines: list[InvoiceLine] = []
    for key, invoice in by_key.items():
        project = projects[invoice.project_id]
        invoice.number = f"{project.code}-{invoice.period_start:%Y-%m}"
        invoice.customer_id = project.customer_id
        invoice.currency = project.currency
        invoice.period_end = month_last_day(invoice.period_start)
        invoice.prepared_lines = []
        for rate, quantity in sorted(hours[key].items()):
            invoice.prepared_lines.append(
                InvoiceLine(
                    invoice=invoice,
                    description=f"Professional services {invoice.period_start:%B %Y} at {rate}/h",
                    quantity=quantity,
                    rate=rate,
                    amount=(quantity * rate).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP),
                )
            )
        for expense in expenses[key]:
            invoice.prepared_lines.append(
                InvoiceLine(
                    invoice=invoice,
                    kind="expense",
                    description=f"Expense: {expense.category or 'other'}",
                    quantity=1,
                    rate=expense.amount,
                    amount=expense.amount,
                )
            )
        invoice.total = sum((line.amount for line in invoice.prepared_lines), Decimal(0))
        lines += invoice.prepared_lines
    InvoiceLine.objects.filter(invoice_id__any=[invoice.pk for invoice in invoices]).delete()
    bulk.insert(lines)
    bulk.update(invoices, ["number", "customer", "currency", "period_end", "total"])
    return [invoice for invoice in invoices if invoice.prepared_lines]


@contextmanager
def invoices_flushing():
    """One flush at a time per workspace: a workspace's time and expenses runs rebuild the same invoices, and a
    rebuild read before the other run's last mark must not reach the ERP after that run's fuller one."""
    key = zlib.crc32(f"{connection.schema_name}:invoices".encode())
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s)", [key])
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [key])


def invoices_pending(after: int = 0, *, environment: str = "production") -> list[Invoice]:
    """The next chunk of one environment's invoices that new time or expenses touched and its ERP has not seen
    since (a Sandbox flow writes Sandbox invoices to the Sandbox ERP, never Production's)."""
    # With their customer and project: the ERP write sends both, and a query each would be 400 per chunk.
    return list(
        Invoice.objects.filter(needs_sync=True, pk__gt=after, environment=environment)
        .select_related("customer", "project")
        .order_by("pk")[:CHUNK]
    )


def invoices_written(invoices: list[Invoice]) -> None:
    """The ERP has these invoices as rebuilt; one that new time or expenses marked since it was read for the
    rebuild stays pending, so the next flush sends it again with them."""
    table = Invoice._meta.db_table
    if not invoices:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET needs_sync = false FROM unnest(%s::bigint[], %s::integer[])"  # noqa: S608
            f" AS sent (id, marks) WHERE {table}.id = sent.id AND {table}.marks = sent.marks",
            [[invoice.pk for invoice in invoices], [invoice.marks for invoice in invoices]],
        )


def invoices_flush(*, flow, run, steps: list[FlowStep], writers: dict, source_system: str) -> None:
    """Rebuild every invoice new time or expenses touched and write it to the ERP once, a chunk at a time,
    instead of once per page that touched it."""
    for step in steps:
        if step.action != FlowStep.Action.INVOICE:
            continue
        writer, after = writers[step.pk], 0
        try:
            with invoices_flushing():
                while chunk := invoices_pending(after, environment=flow.environment):
                    after = chunk[-1].pk
                    with transaction.atomic():
                        ready = invoices_rebuild(chunk)
                    _invoices_write(flow, run, source_system, step, writer, chunk, ready)
        except (AuthenticationFailed, DestinationRefused) as error:
            raise ConnectionBroken(step.target_connection, error) from error


def _invoices_write(flow, run, source_system: str, step: FlowStep, writer, chunk: list, ready: list) -> None:
    book = ExceptionBook(flow=flow, run=run, source_system=source_system)
    written_ok = [invoice for invoice in chunk if invoice not in ready]  # no lines: nothing to bill
    for written in writer.write([([], invoice) for invoice in ready], always=True):
        invoice = written.record
        if written.problems or written.refused:
            if written.problems:
                code, reason = written.problems[0].code, "; ".join(p.message for p in written.problems)
            else:
                code, reason = written.refused
            book.fail(
                object_name="invoice",
                external_id=invoice.number,
                code=code,
                message=f"Invoice {invoice.number} could not be written to {writer.target.label}: {reason}"
                if code != "TARGET_UNAVAILABLE"
                else reason,
                detail=reason,
                fix_actions=[{"action": "retry"}],
                payload={"invoice": invoice.number},  # rebuilt from the canonical store on retry
                step=step,
                target_system=writer.target.vendor,
                subject=invoice.number,
            )
        else:
            written_ok.append(invoice)
    with transaction.atomic():
        book.flush()
        invoices_written(written_ok)
        exceptions_resolve_for_records(
            flow=flow, object_name="invoice", external_ids=[invoice.number for invoice in written_ok]
        )
