"""What the firm's systems should hold after the packaged flows ran, computed from the firm alone.

Nothing here reads the engine's tables to decide what is right: expectations come from the
deterministic firm (connectors.sandbox.firm) and the rules a finance team would state ("an approved,
billable hour on a project the ERP knows is billed once, at its rate, in its project's month"). The
sandboxes' own records are read as they are, to compare.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from connectors.sandbox.firm import TIME_START, Firm, convert
from connectors.sandbox.tickets import work_logs

CENT = Decimal("0.01")


def hours_of(minutes: int) -> Decimal:
    return (Decimal(minutes) / 60).quantize(CENT, rounding=ROUND_HALF_UP)


def month_of(day: str) -> str:
    return day[:7]


@dataclass
class FirmExpectation:
    """The end state of every system, for the flows installed (by template key)."""

    firm: Firm
    installed: set[str]
    # erp: invoice memo ("PRJ-101-2023-01") -> total; and its lines as (kind, quantity, rate, amount)
    invoices: dict[str, Decimal] = field(default_factory=dict)
    invoice_lines: dict[str, Counter] = field(default_factory=dict)
    # faults: exception code -> {subject: number of records parked behind it}
    faults: dict[str, dict[str, int]] = field(default_factory=dict)
    # dashboards: person email -> (billable hours, total hours); project code -> (revenue, cost, currency)
    hours_by_person: dict[str, tuple[Decimal, Decimal]] = field(default_factory=dict)
    money_by_project: dict[str, tuple[Decimal, Decimal, str]] = field(default_factory=dict)

    @property
    def lead_to_project(self) -> bool:
        return "lead-to-project" in self.installed

    @property
    def approved_time(self) -> bool:
        return "approved-time-to-invoice" in self.installed

    @property
    def employee_to_resource(self) -> bool:
        return "employee-to-resource" in self.installed

    # -- what each system holds, each record exactly once ----------------------------------------
    def erp_customer_names(self) -> Counter:
        return Counter(c["name"] for c in self.firm.customers())

    def erp_project_codes(self) -> Counter:
        projects = self.firm.projects() if self.lead_to_project else self.firm.erp_projects()
        return Counter(p["code"] for p in projects)

    def erp_employee_emails(self) -> Counter:
        people = self.firm.people() if self.employee_to_resource else self.firm.erp_people()
        return Counter(p["work_email"] for p in people)

    def psa_project_codes(self) -> Counter:
        return Counter(p["code"] for p in self.firm.psa_projects())

    def psa_user_emails(self) -> Counter:
        return Counter(p["work_email"] for p in self.firm.people())

    def staffing_request_codes(self) -> Counter:
        return Counter(p["code"] for p in self.firm.projects())


def weekly_approval(firm: Firm) -> Callable[[dict], bool]:
    """A PSA that approves a week's timecard as a whole (Certinia): an entry counts as approved when every entry
    on its card (same person, project, week and billable flag) was approved."""
    cards: dict[tuple, bool] = {}

    def card(entry: dict) -> tuple:
        week = (date.fromisoformat(entry["date"]) - TIME_START).days // 7
        return entry["person_id"], entry["project_id"], week, entry["billable"]

    for entry in firm.time_entries():
        cards[card(entry)] = cards.get(card(entry), True) and entry["approved"]
    return lambda entry: cards[card(entry)]


def workday_gaps(firm: Firm) -> dict[int, str]:
    """The firm's HR gaps as Workday holds them: the missing work emails (every worker has a department)."""
    return {person_id: missing for person_id, missing in firm.hr_gaps().items() if missing == "work_email"}


def expect(
    firm: Firm,
    installed: set[str],
    *,
    approved: Callable[[dict], bool] | None = None,
    hr_gaps: dict[int, str] | None = None,
    extra_time: list[dict] | None = None,
) -> FirmExpectation:
    """The expected end state when the templates in `installed` have run (in any order, any number of times).

    `approved` says which time entries the PSA shows as approved (each entry's own flag unless the PSA approves
    weeks); `hr_gaps` which of the firm's HR gaps the HR system has (all of them unless said: Workday keeps
    every worker in a supervisory organization, so it lacks work emails only); `extra_time` is time the PSA holds
    beyond the firm's own entries (time logged on tickets that a flow brought there), shaped like them."""
    approved = approved or (lambda entry: entry["approved"])
    expectation = FirmExpectation(firm=firm, installed=set(installed))
    faults: dict[str, Counter] = defaultdict(Counter)
    people = {p["id"]: p for p in firm.people()}
    phases = {p["code"] for p in firm.psa_only_projects()}

    if expectation.lead_to_project:
        # The customer entered twice in the CRM: one exception for the pair; the won deal on the second
        # record waits on it (its project is in every system already, so nothing else depends on it).
        twin = next(c for c in firm.crm_companies() if c["twin_of"])
        on_twin = [d for d in firm.deals() if firm.crm_company_of(d) == twin["id"] and d["stage"] == "closed_won"]
        faults["DUPLICATE_IN_SOURCE"][twin["name"]] += len(on_twin)
    gaps = firm.hr_gaps() if hr_gaps is None else hr_gaps
    if expectation.employee_to_resource:
        for person in firm.people():
            if person["id"] in gaps:
                # The HR record lacks a department or a work email: that record is one exception, named by
                # the person's email (or name, when the email is what is missing).
                shown = person["display_name"] if gaps[person["id"]] == "work_email" else person["work_email"]
                faults["REQUIRED_MISSING"].setdefault(shown, 0)
            elif person["cost_rate"] is None:
                # HR has no cost rate for this person: one exception, whatever else waits on it.
                faults["MISSING_COST_RATE"].setdefault(person["work_email"], 0)

    if expectation.approved_time:
        billed: dict[str, dict] = defaultdict(lambda: {"time": defaultdict(Decimal), "expenses": []})
        person_hours: dict[str, list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0)])
        project_money: dict[str, list] = {}
        # Time can be billed only on a project the ERP holds: the firm's own, and the won deals' once
        # lead-to-project has created them there (PSA-only phases never are).
        in_erp = set(expectation.erp_project_codes())
        for entry in [*firm.time_entries(), *(extra_time or [])]:
            if not approved(entry):
                continue  # the PSA connection reads approved time only
            code = entry["project_code"]
            person = people[entry["person_id"]]
            hours = hours_of(entry["minutes"])
            if code in phases or code not in in_erp:
                faults["PROJECT_NOT_IN_TARGET"][code] += 1
                continue
            if entry["cost_rate"] is None:
                faults["MISSING_COST_RATE"][person["work_email"]] += 1
                continue
            totals = person_hours[person["work_email"]]
            totals[1] += hours
            revenue = Decimal(0)
            if entry["billable"]:
                totals[0] += hours
                rate = Decimal(entry["bill_rate"])
                billed[f"{code}-{month_of(entry['date'])}"]["time"][rate] += hours
                revenue = hours * rate
            money = project_money.setdefault(code, [Decimal(0), Decimal(0), entry["currency"]])
            money[0] += revenue
            money[1] += hours * Decimal(entry["cost_rate"])
        for expense in firm.expenses():
            if not expense["approved"]:
                continue
            code = expense["project_code"]
            if code in phases or code not in in_erp:
                faults["PROJECT_NOT_IN_TARGET"][code] += 1
                continue
            if expense["billable"]:
                billed[f"{code}-{month_of(expense['date'])}"]["expenses"].append(Decimal(expense["amount"]))
        for memo, parts in billed.items():
            lines = Counter()
            for rate, hours in parts["time"].items():
                lines[("time", hours, rate, (hours * rate).quantize(CENT, rounding=ROUND_HALF_UP))] += 1
            for amount in parts["expenses"]:
                lines[("expense", Decimal(1), amount, amount)] += 1
            if lines:
                expectation.invoice_lines[memo] = lines
                expectation.invoices[memo] = sum((line[3] * n for line, n in lines.items()), Decimal(0))
        expectation.hours_by_person = {email: (b, t) for email, (b, t) in person_hours.items()}
        # Exact, as the firm's figures are: hours to the hundredth times rates to the cent.
        expectation.money_by_project = {
            code: (revenue, cost, currency) for code, (revenue, cost, currency) in project_money.items()
        }
    expectation.faults = {code: dict(subjects) for code, subjects in faults.items()}
    return expectation


# -- reading the sandboxes as they are ------------------------------------------------------------


def netsuite_state(app) -> dict:
    records = app.records
    invoices: dict[str, Decimal] = {}
    lines: dict[str, Counter] = {}
    history = set()
    for invoice in records["invoice"].values():
        memo = invoice.get("memo") or ""
        items = invoice["item"]["items"] if isinstance(invoice["item"], dict) else invoice["item"]
        if str(invoice.get("tranId", "")).startswith("INV1"):
            history.add(invoice["tranId"])
            continue
        counted = Counter()
        for line in items:
            quantity = Decimal(str(line.get("quantity") or 1))
            rate = Decimal(str(line.get("rate") or line.get("amount")))
            kind = "expense" if str(line.get("description", "")).startswith("Expense") else "time"
            counted[(kind, quantity, rate, Decimal(str(line["amount"])))] += 1
        assert memo not in invoices, f"two invoices in the ERP for {memo}"
        invoices[memo] = sum((Decimal(str(line["amount"])) for line in items), Decimal(0))
        lines[memo] = counted
    return {
        "customers": Counter(c["companyName"] for c in records["customer"].values()),
        "jobs": Counter(j["entityId"] for j in records["job"].values()),
        "employees": Counter((e.get("email") or "").lower() for e in records["employee"].values()),
        "invoices": invoices,
        "invoice_lines": lines,
        "history": history,
    }


def kantata_state(app) -> dict:
    return {
        "workspaces": Counter(str(w["title"]).split(" ", 1)[0] for w in app.workspaces.values()),
        "users": Counter((u.get("email_address") or "").lower() for u in app.users.values()),
    }


def jira_state(app) -> dict:
    return {
        "staffing": Counter(
            next((label for label in issue.get("labels") or [] if label.startswith("PRJ-")), "?")
            for issue in app.issues.values()
            if issue.get("project") == "RES"
        )
    }


def businesscentral_state(app) -> dict:
    tables = app.tables
    invoices: dict[str, Decimal] = {}
    lines: dict[str, Counter] = {}
    history = set()
    for invoice in tables["salesInvoices"].values():
        memo = invoice.get("externalDocumentNumber") or ""
        if not memo:
            history.add(invoice["number"])
            continue
        counted = Counter()
        for line in tables["salesInvoiceLines"].values():
            if line["documentId"] != invoice["id"]:
                continue
            kind = "expense" if str(line.get("description", "")).startswith("Expense") else "time"
            amount = Decimal(str(line["amountExcludingTax"])).quantize(CENT)
            quantity, rate = Decimal(str(line["quantity"])), Decimal(str(line["unitPrice"])).quantize(CENT)
            counted[(kind, quantity.quantize(CENT) if kind == "time" else quantity, rate, amount)] += 1
        assert memo not in invoices, f"two invoices in the ERP for {memo}"
        invoices[memo] = Decimal(str(invoice["totalAmountExcludingTax"])).quantize(CENT)
        lines[memo] = counted
    return {
        "customers": Counter(c["displayName"] for c in tables["customers"].values()),
        "jobs": Counter(p["number"] for p in tables["projects"].values()),
        "employees": Counter((e.get("email") or "").lower() for e in tables["employees"].values()),
        "invoices": invoices,
        "invoice_lines": lines,
        "history": history,
    }


def intacct_state(app) -> dict:
    records = app.records
    invoices: dict[str, Decimal] = {}
    lines: dict[str, Counter] = {}
    history = set()
    for invoice in records["ARINVOICE"].values():
        memo = str(invoice.get("RECORDID") or "")
        if memo.startswith("INV1"):
            history.add(memo)
            continue
        counted = Counter()
        for line in invoice.get("ARINVOICEITEMS") or []:
            kind = "expense" if str(line.get("MEMO", "")).startswith("Expense") else "time"
            counted[(kind, Decimal(str(line["AMOUNT"])))] += 1
        assert memo not in invoices, f"two invoices in the ERP for {memo}"
        invoices[memo] = Decimal(str(invoice["TOTALENTERED"]))
        lines[memo] = counted
    return {
        "customers": Counter(c["NAME"] for c in records["CUSTOMER"].values()),
        "jobs": Counter(p["PROJECTID"] for p in records["PROJECT"].values()),
        "employees": Counter((e.get("PERSONALINFO.EMAIL1") or "").lower() for e in records["EMPLOYEE"].values()),
        "invoices": invoices,
        "invoice_lines": lines,
        "history": history,
    }


def certinia_state(app) -> dict:
    records = app.org.records
    return {
        "workspaces": Counter(p["pse__Project_ID__c"] for p in records["pse__Proj__c"].values()),
        "users": Counter(
            (c.get("Email") or "").lower() for c in records["Contact"].values() if c.get("pse__Is_Resource__c")
        ),
    }


def amounts_only(lines: dict[str, Counter]) -> dict[str, Counter]:
    """Invoice lines as (kind, amount): for an ERP whose lines hold an amount but no quantity or rate (Intacct)."""
    shown: dict[str, Counter] = {}
    for memo, counted in lines.items():
        shown[memo] = Counter()
        for (kind, _quantity, _rate, amount), n in counted.items():
            shown[memo][(kind, amount)] += n
    return shown


def within(day: date, start: date, end: date) -> bool:
    return start <= day <= end


def acumatica_state(app) -> dict:
    tables = app.tables
    invoices: dict[str, Decimal] = {}
    lines: dict[str, Counter] = {}
    history = set()
    for invoice in tables["Invoice"].values():
        memo = invoice.get("CustomerOrder") or ""
        if not memo:
            history.add(invoice["ReferenceNbr"])
            continue
        counted = Counter()
        for line in invoice.get("Details") or []:
            kind = "expense" if str(line.get("TransactionDescription", "")).startswith("Expense") else "time"
            quantity = Decimal(str(line["Qty"]))
            rate = Decimal(str(line["UnitPrice"])).quantize(CENT)
            amount = Decimal(str(line["Amount"])).quantize(CENT)
            counted[(kind, quantity.quantize(CENT) if kind == "time" else quantity, rate, amount)] += 1
        assert memo not in invoices, f"two invoices in the ERP for {memo}"
        invoices[memo] = Decimal(str(invoice["Amount"])).quantize(CENT)
        lines[memo] = counted
    return {
        "customers": Counter(c["CustomerName"] for c in tables["Customer"].values()),
        "jobs": Counter(p["ProjectID"] for p in tables["Project"].values()),
        "employees": Counter(
            ((e.get("ContactInfo") or {}).get("Email") or "").lower() for e in tables["Employee"].values()
        ),
        "invoices": invoices,
        "invoice_lines": lines,
        "history": history,
    }


def kimble_state(app) -> dict:
    records = app.org.records
    return {
        "workspaces": Counter(g["KimbleOne__Reference__c"] for g in records["KimbleOne__DeliveryGroup__c"].values()),
        "users": Counter(
            (r.get("KimbleOne__Email__c") or "").lower() for r in records["KimbleOne__Resource__c"].values()
        ),
    }


def float_state(app) -> dict:
    tables = app.tables
    return {
        "workspaces": Counter(p["project_code"] for p in tables["projects"].values()),
        "users": Counter((p.get("email") or "").lower() for p in tables["people"].values()),
    }


class TicketTime:
    """What the firm says the systems hold once ticket time has run (HR first, for the cost rates)."""

    def __init__(self, firm: Firm):
        self.firm = firm
        people = {p["work_email"]: p for p in firm.people()}
        projects = {p["code"]: p for p in firm.psa_projects()}
        gaps = firm.hr_gaps()
        self.logs = work_logs(firm)
        self.unknown = [log for log in self.logs if log["code"] not in projects]
        known = [log for log in self.logs if log["code"] in projects]

        # Time needs its person's cost rate, which the HR flow brings: not for people HR has none for, nor for
        # those whose HR record could not sync (a department or an email missing).
        def costed(log):
            person = people[log["person_email"]]
            return person["cost_rate"] is not None and person["id"] not in gaps

        self.synced = [log for log in known if costed(log)]
        self.no_rate = [log for log in known if not costed(log)]
        self.minutes = Counter()
        for log in self.synced:
            self.minutes[(log["code"], log["person_email"])] += log["minutes"]
        # The synced logs as the PSA holds them once approved: firm-shaped entries for the invoice expectations.
        self.as_psa_time = []
        for log in self.synced:
            person, project = people[log["person_email"]], projects[log["code"]]
            self.as_psa_time.append(
                {
                    "person_id": person["id"],
                    "project_id": project["id"],
                    "project_code": project["code"],
                    "date": log["date"],
                    "minutes": log["minutes"],
                    "billable": True,
                    "approved": True,
                    "bill_rate": convert(person["bill_rate"], person["currency"], project["currency"]),
                    "cost_rate": convert(person["cost_rate"], person["currency"], project["currency"]),
                    "currency": project["currency"],
                }
            )

    def ticket_faults(self) -> dict[str, dict[str, int]]:
        faults: dict[str, Counter] = defaultdict(Counter)
        for code in {log["code"] for log in self.unknown}:
            # One exception for the code; every log under it waits on it (the first one included).
            faults["PROJECT_NOT_FOUND"][code] = sum(1 for log in self.unknown if log["code"] == code)
        people, gaps = {p["work_email"]: p for p in self.firm.people()}, self.firm.hr_gaps()
        for log in self.no_rate:
            person = people[log["person_email"]]
            if person["id"] in gaps:
                # HR holds their cost rate but their HR record could not sync: their time waits on that record's
                # exception, named as employee to resource names it.
                shown = person["display_name"] if gaps[person["id"]] == "work_email" else person["work_email"]
                faults["REQUIRED_MISSING"][shown] += 1
            else:
                faults["MISSING_COST_RATE"][log["person_email"]] += 1
        return {code: dict(subjects) for code, subjects in faults.items()}
