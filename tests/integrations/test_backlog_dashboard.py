"""Backlog and work in progress after the packaged flows ran, against figures computed from the firm alone.

Contracted: the firm's won deals (the one on the CRM's duplicate company waits on its exception, so its
project has no deal in the workspace). Delivered: approved billable time and billable expenses the ERP can
bill, priced as the firm's own invoices are. Unbilled: delivered work whose invoice the ERP does not hold,
the work of a customer the ERP refused invoices for while it had lost that customer.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from decimal import Decimal

import pytest

from connectors.sandbox.firm import Firm
from integrations.selectors.backlog import BacklogFilter, backlog_dashboard, backlog_figures, backlog_records
from tests.integrations.conftest import TEST_FIRM
from tests.integrations.firm_state import expect, netsuite_state
from tests.integrations.test_approved_time import run_to_end
from tests.integrations.test_firm_end_state import ALL, connect, install, run_all, workspace

pytestmark = pytest.mark.django_db

LOST = "Soylent Logistics"  # a customer of the firm with approved time in two projects


def firm_contracts(firm: Firm) -> dict[str, tuple[Decimal, str]]:
    """Project code -> (won deal amount, currency), for the deals the CRM holds on a company of its own."""
    twin = next(c for c in firm.crm_companies() if c["twin_of"])
    return {
        d["project_code"]: (Decimal(d["amount"]), d["currency"])
        for d in firm.deals()
        if d["stage"] == "closed_won" and firm.crm_company_of(d) != twin["id"]
    }


def firm_currencies(firm: Firm) -> dict[str, str]:
    """Project code -> the currency its time and expenses are kept in."""
    found = {}
    for record in [*firm.time_entries(), *firm.expenses()]:
        found[record["project_code"]] = record["currency"]
    return found


def expected_rows(firm: Firm, billed_memos: set[str], *, month: str | None = None) -> dict:
    """(code, currency) -> (contracted, delivered, backlog, unbilled), as a finance team would compute them."""
    contracts = firm_contracts(firm)
    currencies = firm_currencies(firm)
    delivered_by_memo = expect(firm, set(ALL)).invoices  # what an invoice per project-month bills
    delivered, to_date, unbilled = defaultdict(Decimal), defaultdict(Decimal), defaultdict(Decimal)
    for memo, amount in delivered_by_memo.items():
        code, memo_month = memo[:-8], memo[-7:]
        if month and memo_month > month:
            continue
        to_date[code] += amount
        if month and memo_month != month:
            continue
        delivered[code] += amount
        if memo not in billed_memos:
            unbilled[code] += amount
    rows = {}
    for code in set(contracts) | set(to_date):
        contracted, currency = contracts.get(code, (None, currencies.get(code)))
        backlog = None if contracted is None else contracted - to_date[code]
        rows[(code, currency)] = (contracted, delivered[code], backlog, unbilled[code])
    return rows


def shown_rows(page: dict) -> dict:
    return {
        (row["code"], row["currency"]): (row["contracted"], row["delivered"], row["backlog"], row["unbilled"])
        for row in page["by_project"]
    }


def test_backlog_and_unbilled_work_match_the_firm_before_and_after_the_erp_holds_every_invoice(systems, world):
    workspace(world, "wingtip")
    main = install(connect(systems), ALL)
    firm = Firm(**TEST_FIRM)
    run_all(main, ["lead-to-project", "employee-to-resource"])
    # Someone deletes a customer in the ERP: it refuses that customer's invoices, the rest are written.
    erp = systems["netsuite"].app.records["customer"]
    gone = {key: record for key, record in erp.items() if record["companyName"] == LOST}
    for key in gone:
        del erp[key]
    for flow in main["approved-time-to-invoice"]:
        run_to_end(flow)
    theirs = {p["code"] for p in firm.projects() if p["customer_name"] == LOST}
    in_erp = {memo for memo in expect(firm, set(ALL)).invoices if memo[:-8] not in theirs}
    expected = expected_rows(firm, in_erp)
    assert sum(row[3] for row in expected.values()) > 0, "the faults left no invoice unwritten"
    assert shown_rows(backlog_dashboard(backlog_figures(), selected=BacklogFilter())) == expected

    # A month and a customer chosen: that month's delivered and unbilled work, the backlog at its end.
    month = date(2023, 1, 1)
    page = backlog_dashboard(backlog_figures(), selected=BacklogFilter(month=month))
    assert shown_rows(page) == expected_rows(firm, in_erp, month="2023-01")
    row = next(r for r in page["by_project"] if r["unbilled"])
    mine = backlog_dashboard(backlog_figures(), selected=BacklogFilter(month=month, customer_id=row["customer_id"]))
    assert {r["customer_id"] for r in mine["by_project"]} == {row["customer_id"]}
    assert shown_rows(mine) == {
        k: v for k, v in shown_rows(page).items() if k[0] in {r["code"] for r in mine["by_project"]}
    }

    # Each figure's records add up to it.
    selected = BacklogFilter(month=month, customer_id=row["customer_id"])
    for kind in ("delivered", "unbilled"):
        records = backlog_records(kind=kind, currency=row["currency"], selected=selected, project_id=row["project_id"])
        assert records["total"] == row[kind]
        assert records["time"] or records["expenses"]
    deal = backlog_records(kind="contracted", currency=row["currency"], selected=selected, project_id=row["project_id"])
    assert deal["total"] == row["contracted"] == firm_contracts(firm)[row["code"]][0]

    # The customer is back and the next round writes the rest: nothing delivered stays unbilled, the backlog is unchanged.
    erp.update(gone)
    for flow in main["approved-time-to-invoice"]:
        run_to_end(flow)
    in_erp = set(netsuite_state(systems["netsuite"].app)["invoices"])
    assert in_erp == set(expect(firm, set(ALL)).invoices)
    after = shown_rows(backlog_dashboard(backlog_figures(), selected=BacklogFilter()))
    assert after == expected_rows(firm, in_erp)
    assert all(row[3] == 0 for row in after.values())
