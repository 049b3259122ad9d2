"""What a packaged template needs of the vendor playing each role (a profile), the value maps it ships
with, and the rule shapes several vendors share with their own field names passed in."""

from __future__ import annotations

from dataclasses import dataclass

from integrations.catalog.specs import DATE, LOWER, MINUTES, NUMBER2, TRIM, UPPER, FlowSpec, default, lookup, ref

# --- Value maps ----------------------------------------------------------------------------------------

PROJECT_CODES = (
    "project-codes",
    "Project codes (PSA → ERP)",
    "When the PSA spells a project code differently from the ERP.",
    [],
)
TICKET_PROJECT_CODES = (
    "ticket-project-codes",
    "Project codes (ticketing → PSA)",
    "When the ticketing system spells a project's code differently from the PSA.",
    [],
)
PAYMENT_TERMS = (
    "payment-terms",
    "Payment terms",
    "CRM billing terms to ERP payment terms.",
    [("Time and materials", "Net 30"), ("Fixed fee", "Net 45"), ("Retainer", "Net 15")],
)
PRACTICES = (
    "practices",
    "Departments → practices",
    "HR departments to delivery practices.",
    [
        ("Strategy", "Strategy"),
        ("Technology", "Technology"),
        ("Finance Advisory", "Finance Advisory"),
        ("Operations", "Operations"),
        ("Data & Analytics", "Data & Analytics"),
        ("Finance", "Back office"),
        ("People", "Back office"),
        ("Business Development", "Back office"),
    ],
)


# --- How each vendor's objects map, by the role it plays ----------------------------------------------
#
# A packaged template names roles (CRM, ERP, PSA, HR, ticketing) and what it needs of each; a profile says
# how one vendor provides it. Reference flows read a system's records so they can be linked before
# anything is created there; write rules say how a canonical record becomes the vendor's.


@dataclass(frozen=True)
class Write:
    """How canonical records of one entity become a vendor's object."""

    object: str
    rules: list


@dataclass(frozen=True)
class CrmProfile:
    companies: FlowSpec  # reference: the CRM's companies as customers
    deals: str  # the object holding deals
    won: dict  # the source filter that keeps won deals
    won_deal_rules: list  # a won deal as an opportunity and its project
    webhook: bool = True


@dataclass(frozen=True)
class ErpProfile:
    customers: FlowSpec
    projects: FlowSpec
    employees: FlowSpec
    customer: Write
    project: Write
    employee: Write
    invoice: Write


@dataclass(frozen=True)
class PsaProfile:
    projects: FlowSpec
    people: FlowSpec
    project: Write
    resource: Write
    # approved time and expenses as (object, rules, source filter), for billing: a PSA without approvals, rates or
    # expenses (Float) leaves them out and is offered only for the templates that do not need them
    time_entries: tuple | None = None
    expenses: tuple | None = None
    # reference: the PSA's own customers, when its projects name one (Certinia's Accounts): a project an ERP
    # holds without its customer (Business Central's) then still reaches an invoice's customer.
    customers: FlowSpec | None = None
    # time logged elsewhere (a ticketing system) as the PSA's time entries, where the PSA takes them one by one
    time_entry: Write | None = None


@dataclass(frozen=True)
class HrProfile:
    employees: str
    rules: list


@dataclass(frozen=True)
class TicketingProfile:
    requests: FlowSpec | None = None  # reference: staffing requests already filed, by project
    request: Write | None = None
    # the time logged on tickets as (object, rules, source filter): each entry's project is matched by the code the
    # ticket's project, board or group carries, its person by email
    time: tuple | None = None


def ticket_time_rules(*, code: tuple[str, list], email: str, day: str, minutes: str, notes: list[str]) -> list:
    """Time logged on a ticket as a canonical time entry; the ticketing system's own field names passed in
    (`code`: the field carrying the project's code and the transforms that take the code out of it)."""
    code_path, code_transforms = code
    return [
        (
            "time_entry.project",
            [code_path],
            [*code_transforms, TRIM, UPPER, lookup("ticket-project-codes", keep=True)],
            True,
            "Project code",
        ),
        ("time_entry.resource", [email], [TRIM, LOWER], True, "Person (email)"),
        ("time_entry.date", [day], [DATE], True, "Date"),
        ("time_entry.hours", [minutes], [MINUTES], True, "Hours"),
        ("time_entry.billable", [], [default(True)], False, "Billable"),
        ("time_entry.notes", notes, [{"name": "concat", "separator": " "}], False, "Notes"),
    ]


def reference_flow(key: str, name: str, source: str, object_name: str, entity: str, rules: list, **extra) -> FlowSpec:
    return FlowSpec(key=key, name=name, source=source, object=object_name, entity=entity, rules=rules, **extra)


def won_deal_rules(
    *,
    name: str,
    amount: str,
    currency: str,
    stage: str,
    close: str,
    company: tuple,
    code: str,
    deal_id: str,
    terms: str,
) -> list:
    """A won deal as canonical opportunity and project; the CRM's own field names passed in."""
    company_path, company_object = company
    return [
        ("opportunity.name", [name], [TRIM], True, "Deal"),
        ("opportunity.amount", [amount], [NUMBER2], False, "Amount"),
        ("opportunity.currency", [currency], [{"name": "currency", "default": "USD"}], False, "Currency"),
        ("opportunity.stage", [stage], [], False, "Stage"),
        ("opportunity.close_date", [close], [DATE], False, "Close date"),
        ("opportunity.is_won", [], [default(True)], False, "Won"),
        ("opportunity.customer", [company_path], [ref("customer", company_object)], True, "Company"),
        # The project code the firm gave the deal, or one made from the deal's id when it has none yet.
        (
            "project.code",
            [code],
            [TRIM, UPPER, {"name": "fallback", "source": deal_id, "prefix": "PRJ-D"}],
            True,
            "Project code",
        ),
        ("project.name", [name], [TRIM], True, "Project name"),
        ("project.customer", [company_path], [ref("customer", company_object)], True, "Company"),
        ("project.opportunity", [], [default("@opportunity")], False, "Deal"),
        ("project.billing_terms", [terms], [lookup("payment-terms")], False, "Payment terms"),
        ("project.budget", [amount], [NUMBER2], False, "Budget"),
        ("project.currency", [currency], [{"name": "currency", "default": "USD"}], False, "Currency"),
    ]


def hr_rules(
    *,
    email: str,
    first_name: str,
    last_name: str,
    number: str,
    department: str,
    title: str,
    location: str,
    hire_date: str,
    termination_date: str,
    cost_rate: str,
    cost_currency: str,
    status: tuple[str, list],
) -> list:
    """An HR system's worker as canonical person and cost rate; the system's own field names passed in
    (`status`: the field saying whether the person still works there, and the transforms that make it
    "active" or "terminated")."""
    status_field, status_transforms = status
    return [
        ("resource.email", [email], [TRIM, LOWER], True, "Work email"),
        ("resource.first_name", [first_name], [TRIM], True, "First name"),
        ("resource.last_name", [last_name], [TRIM], True, "Last name"),
        ("resource.employee_number", [number], [TRIM, default("")], False, "Employee number"),
        ("resource.department", [department], [TRIM], True, "Department"),
        ("resource.practice", [department], [lookup("practices")], True, "Practice"),
        ("resource.title", [title], [TRIM, default("")], False, "Job title"),
        ("resource.location", [location], [TRIM, default("")], False, "Location"),
        ("resource.status", [status_field], status_transforms, False, "Status"),
        ("resource.hire_date", [hire_date], [DATE], False, "Hire date"),
        ("resource.termination_date", [termination_date], [DATE], False, "Termination date"),
        ("rate.resource", [], [default("@resource")], False, "Person"),
        ("rate.kind", [], [default("cost")], False, "Rate kind"),
        # Not required: a person without a cost rate still reaches the PSA and ERP, and is one
        # "no cost rate" exception that their time waits on.
        ("rate.amount", [cost_rate], [NUMBER2], False, "Cost rate"),
        ("rate.currency", [cost_currency], [{"name": "currency", "default": "USD"}], False, "Cost rate currency"),
        ("rate.effective_from", [hire_date], [DATE], True, "Hire date"),
    ]
