"""The packaged flows a client can install, as data: connections they need, value maps, flows, rules.

Rules are (target, sources, transforms, required, label). Every transform is from the fixed
library in integrations.engine.mapping; nothing here is code a client could change.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

TRIM = {"name": "trim"}
UPPER = {"name": "upper"}
LOWER = {"name": "lower"}
DATE = {"name": "date"}
NUMBER2 = {"name": "number", "places": 2}
CENTS = {"name": "cents_to_amount"}
MINUTES = {"name": "minutes_to_hours"}
BOOL = {"name": "boolean"}
WRAP = {"name": "wrap", "key": "id"}


def ref(entity: str, object_name: str) -> dict:
    return {"name": "ref", "entity": entity, "object": object_name}


def lookup(value_map: str, keep: bool = False) -> dict:
    return {"name": "lookup", "value_map": value_map, **({"fallback": "keep"} if keep else {})}


def default(value) -> dict:
    return {"name": "default", "value": value}


@dataclass(frozen=True)
class StepSpec:
    name: str
    entity: str
    target: str  # role of the target connection in the template ("erp", "psa", ...)
    object: str
    rules: list = field(default_factory=list)
    action: str = "write"


@dataclass(frozen=True)
class FlowSpec:
    key: str
    name: str
    source: str
    object: str
    entity: str
    rules: list
    steps: list = field(default_factory=list)
    source_filter: dict = field(default_factory=dict)
    schedule_minutes: int | None = 60
    trigger: str = "schedule"
    prerequisites: tuple = ()


@dataclass(frozen=True)
class Template:
    key: str
    name: str
    summary: str
    version: int
    connections: dict  # role -> (vendor choices, label)
    value_maps: list  # (key, name, description, [(source, target), ...])
    flows: list
    publisher: str = ""  # who offers it: blank for packaged templates, the partner's name otherwise

    def for_vendors(self, vendors: dict[str, str]) -> Template:
        """The template as it installs with these vendors: a saved template is for the vendors it names."""
        return self

    def to_spec(self) -> dict:
        """The template's contents as JSON data, the shape a partner's saved template version stores."""
        return {
            "connections": {
                role: {"vendors": list(vendors), "label": label} for role, (vendors, label) in self.connections.items()
            },
            "value_maps": [
                {"key": key, "name": name, "description": description, "entries": [list(entry) for entry in entries]}
                for key, name, description, entries in self.value_maps
            ],
            "flows": [
                {
                    "key": flow.key,
                    "name": flow.name,
                    "source": flow.source,
                    "object": flow.object,
                    "entity": flow.entity,
                    "rules": _rules_to_spec(flow.rules),
                    "steps": [
                        {
                            "name": step.name,
                            "entity": step.entity,
                            "target": step.target,
                            "object": step.object,
                            "action": step.action,
                            "rules": _rules_to_spec(step.rules),
                        }
                        for step in flow.steps
                    ],
                    "source_filter": dict(flow.source_filter),
                    "schedule_minutes": flow.schedule_minutes,
                    "trigger": flow.trigger,
                    "prerequisites": list(flow.prerequisites),
                }
                for flow in self.flows
            ],
        }

    @classmethod
    def from_spec(cls, spec: dict, *, key: str, name: str, summary: str, version: int, publisher: str = "") -> Template:
        """A template from JSON data written by `to_spec`, installable like a packaged one."""
        return cls(
            key=key,
            name=name,
            summary=summary,
            version=version,
            publisher=publisher,
            connections={
                role: (tuple(value["vendors"]), value["label"]) for role, value in spec["connections"].items()
            },
            value_maps=[
                (vm["key"], vm["name"], vm.get("description", ""), [tuple(entry) for entry in vm["entries"]])
                for vm in spec["value_maps"]
            ],
            flows=[
                FlowSpec(
                    key=flow["key"],
                    name=flow["name"],
                    source=flow["source"],
                    object=flow["object"],
                    entity=flow["entity"],
                    rules=_rules_from_spec(flow["rules"]),
                    steps=[
                        StepSpec(
                            name=step["name"],
                            entity=step["entity"],
                            target=step["target"],
                            object=step["object"],
                            action=step.get("action", "write"),
                            rules=_rules_from_spec(step["rules"]),
                        )
                        for step in flow["steps"]
                    ],
                    source_filter=dict(flow.get("source_filter") or {}),
                    schedule_minutes=flow.get("schedule_minutes"),
                    trigger=flow.get("trigger", "schedule"),
                    prerequisites=tuple(flow.get("prerequisites", ())),
                )
                for flow in spec["flows"]
            ],
        )


def _rules_to_spec(rules: list) -> list[dict]:
    return [
        {
            "target": target,
            "sources": list(sources),
            "transforms": list(transforms),
            "required": required,
            "label": label,
        }
        for target, sources, transforms, required, label in rules
    ]


def _rules_from_spec(rules: list[dict]) -> list[tuple]:
    return [
        (rule["target"], list(rule["sources"]), list(rule["transforms"]), bool(rule["required"]), rule.get("label", ""))
        for rule in rules
    ]


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

DOMAIN = {"name": "domain"}
FIRST_WORD = {"name": "split", "separator": " ", "index": 0}


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


def _ticket_time_rules(*, code: tuple[str, list], email: str, day: str, minutes: str, notes: list[str]) -> list:
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


def _reference(key: str, name: str, source: str, object_name: str, entity: str, rules: list, **extra) -> FlowSpec:
    return FlowSpec(key=key, name=name, source=source, object=object_name, entity=entity, rules=rules, **extra)


def _won_deal_rules(
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


CRM: dict[str, CrmProfile] = {
    "hubspot": CrmProfile(
        companies=_reference(
            "crm-companies",
            "CRM companies (reference)",
            "crm",
            "companies",
            "customer",
            [
                ("customer.name", ["name"], [TRIM], True, "Company name"),
                ("customer.domain", ["domain"], [DOMAIN], False, "Domain"),
            ],
        ),
        deals="deals",
        won={"path": "dealstage", "in": ["closedwon"]},
        won_deal_rules=_won_deal_rules(
            name="dealname",
            amount="amount",
            currency="deal_currency_code",
            stage="dealstage",
            close="closedate",
            company=("company_ids.0", "companies"),
            code="project_code",
            deal_id="id",
            terms="billing_terms",
        ),
    ),
    "salesforce": CrmProfile(
        companies=_reference(
            "crm-companies",
            "CRM companies (reference)",
            "crm",
            "Account",
            "customer",
            [
                ("customer.name", ["Name"], [TRIM], True, "Account name"),
                ("customer.domain", ["Website"], [DOMAIN], False, "Website"),
            ],
        ),
        deals="Opportunity",
        won={"path": "StageName", "in": ["Closed Won"]},
        won_deal_rules=_won_deal_rules(
            name="Name",
            amount="Amount",
            currency="CurrencyIsoCode",
            stage="StageName",
            close="CloseDate",
            company=("AccountId", "Account"),
            code="Project_Code__c",
            deal_id="Id",
            terms="Billing_Terms__c",
        ),
    ),
    "dynamics365": CrmProfile(
        companies=_reference(
            "crm-companies",
            "CRM companies (reference)",
            "crm",
            "accounts",
            "customer",
            [
                ("customer.name", ["name"], [TRIM], True, "Account name"),
                ("customer.domain", ["websiteurl"], [DOMAIN], False, "Website"),
            ],
        ),
        deals="opportunities",
        won={"path": "statecode", "in": [1]},  # 1: Won (closed through WinOpportunity)
        won_deal_rules=_won_deal_rules(
            name="name",
            amount="estimatedvalue",
            currency="isocurrencycode",
            stage="stepname",
            close="actualclosedate",
            company=("_customerid_value", "accounts"),
            code="new_projectcode",
            deal_id="opportunityid",
            terms="new_billingterms",
        ),
    ),
}

ERP: dict[str, ErpProfile] = {
    "netsuite": ErpProfile(
        customers=_reference(
            "erp-customers",
            "ERP customers (reference)",
            "erp",
            "customer",
            "customer",
            [
                ("customer.name", ["companyName"], [TRIM], True, "Customer name"),
                ("customer.domain", ["url"], [DOMAIN], False, "Web address"),
            ],
        ),
        projects=_reference(
            "erp-projects",
            "ERP projects (reference)",
            "erp",
            "job",
            "project",
            [
                ("project.code", ["entityId"], [TRIM, UPPER], True, "Project code"),
                ("project.name", ["companyName"], [TRIM], True, "Project name"),
                ("project.customer", ["parent.id"], [ref("customer", "customer")], False, "Customer"),
            ],
        ),
        employees=_reference(
            "erp-employees",
            "ERP employees (reference)",
            "erp",
            "employee",
            "resource",
            [
                ("resource.email", ["email"], [TRIM, LOWER], True, "Email"),
                ("resource.employee_number", ["entityId"], [TRIM, default("")], False, "Employee id"),
                ("resource.first_name", ["firstName"], [TRIM], False, "First name"),
                ("resource.last_name", ["lastName"], [TRIM], False, "Last name"),
            ],
        ),
        customer=Write(
            "customer",
            [
                ("entityId", ["key"], [], True, "Customer id"),
                ("companyName", ["name"], [], True, "Company name"),
                ("subsidiary", [], [default({"id": "1"})], False, "Subsidiary"),
            ],
        ),
        project=Write(
            "job",
            [
                ("entityId", ["code"], [], True, "Project code"),
                ("companyName", ["name"], [], True, "Project name"),
                ("parent", ["customer.ref"], [WRAP], True, "Customer in the ERP"),
                ("subsidiary", [], [default({"id": "1"})], False, "Subsidiary"),
            ],
        ),
        employee=Write(
            "employee",
            [
                ("entityId", ["employee_number"], [{"name": "fallback", "source": "key"}], True, "Employee id"),
                ("firstName", ["first_name"], [], True, "First name"),
                ("lastName", ["last_name"], [], True, "Last name"),
                ("email", ["email"], [], True, "Email"),
                ("title", ["title"], [], False, "Title"),
                ("hireDate", ["hire_date"], [], False, "Hire date"),
                ("releaseDate", ["termination_date"], [], False, "Release date"),
                ("laborCost", ["cost_rate"], [NUMBER2], False, "Labor cost"),
                ("subsidiary", [], [default({"id": "1"})], False, "Subsidiary"),
            ],
        ),
        invoice=Write(
            "invoice",
            [
                ("entity", ["customer.ref"], [WRAP], True, "Customer in the ERP"),
                ("tranDate", ["period_end"], [], True, "Invoice date"),
                ("memo", ["number"], [], False, "Memo"),
                ("subsidiary", [], [default({"id": "1"})], False, "Subsidiary"),
                (
                    "item",
                    ["lines"],
                    [
                        {
                            "name": "sublist",
                            "key": "items",
                            "constants": {"item": {"id": "1"}},
                            "fields": {
                                "description": "description",
                                "quantity": "quantity",
                                "rate": "rate",
                                "amount": "amount",
                            },
                        }
                    ],
                    True,
                    "Lines",
                ),
            ],
        ),
    ),
    "businesscentral": ErpProfile(
        customers=_reference(
            "erp-customers",
            "ERP customers (reference)",
            "erp",
            "customers",
            "customer",
            [
                ("customer.name", ["displayName"], [TRIM], True, "Customer name"),
                ("customer.domain", ["website"], [DOMAIN], False, "Website"),
            ],
        ),
        projects=_reference(
            "erp-projects",
            "ERP projects (reference)",
            "erp",
            "projects",
            "project",
            [
                ("project.code", ["number"], [TRIM, UPPER], True, "Project No."),
                ("project.name", ["displayName"], [TRIM], True, "Project name"),
            ],
        ),
        employees=_reference(
            "erp-employees",
            "ERP employees (reference)",
            "erp",
            "employees",
            "resource",
            [
                ("resource.email", ["email"], [TRIM, LOWER], True, "Email"),
                ("resource.employee_number", ["number"], [TRIM, default("")], False, "Employee No."),
                ("resource.first_name", ["givenName"], [TRIM], False, "First name"),
                ("resource.last_name", ["surname"], [TRIM], False, "Last name"),
            ],
        ),
        # Business Central has no external-id field: customers, projects and employees are upserted by their No.
        customer=Write(
            "customers",
            [
                ("number", ["key"], [UPPER], True, "Customer No."),
                ("displayName", ["name"], [], True, "Customer name"),
            ],
        ),
        project=Write(
            "projects",
            [
                ("number", ["code"], [], True, "Project No."),
                ("displayName", ["name"], [], True, "Project name"),
            ],
        ),
        employee=Write(
            "employees",
            [
                ("number", ["employee_number"], [{"name": "fallback", "source": "key"}], True, "Employee No."),
                ("givenName", ["first_name"], [], True, "First name"),
                ("surname", ["last_name"], [], True, "Last name"),
                ("email", ["email"], [], True, "Email"),
                ("employmentDate", ["hire_date"], [], False, "Employment date"),
            ],
        ),
        invoice=Write(
            "salesInvoices",
            [
                ("externalDocumentNumber", ["number"], [], True, "External document No."),
                ("customerId", ["customer.ref"], [], True, "Customer in the ERP"),
                ("invoiceDate", ["period_end"], [], True, "Invoice date"),
                (
                    "salesInvoiceLines",
                    ["lines"],
                    [
                        {
                            "name": "sublist",
                            # Time and expenses post to the consulting revenue account of the firm's chart.
                            "constants": {"lineType": "Account", "lineObjectNumber": "40100"},
                            "fields": {"description": "description", "quantity": "quantity", "unitPrice": "rate"},
                        }
                    ],
                    True,
                    "Lines",
                ),
            ],
        ),
    ),
    "intacct": ErpProfile(
        customers=_reference(
            "erp-customers",
            "ERP customers (reference)",
            "erp",
            "CUSTOMER",
            "customer",
            [
                ("customer.name", ["NAME"], [TRIM], True, "Customer name"),
                ("customer.domain", ["DISPLAYCONTACT.URL1"], [DOMAIN], False, "Web address"),
            ],
        ),
        projects=_reference(
            "erp-projects",
            "ERP projects (reference)",
            "erp",
            "PROJECT",
            "project",
            [
                ("project.code", ["PROJECTID"], [TRIM, UPPER], True, "Project ID"),
                ("project.name", ["NAME"], [TRIM], True, "Project name"),
                ("project.customer", ["CUSTOMERKEY"], [ref("customer", "CUSTOMER")], False, "Customer"),
            ],
        ),
        employees=_reference(
            "erp-employees",
            "ERP employees (reference)",
            "erp",
            "EMPLOYEE",
            "resource",
            [
                ("resource.email", ["PERSONALINFO.EMAIL1"], [TRIM, LOWER], True, "Email"),
                ("resource.employee_number", ["EMPLOYEEID"], [TRIM, default("")], False, "Employee ID"),
                ("resource.first_name", ["PERSONALINFO.FIRSTNAME"], [TRIM], False, "First name"),
                ("resource.last_name", ["PERSONALINFO.LASTNAME"], [TRIM], False, "Last name"),
            ],
        ),
        customer=Write(
            "CUSTOMER",
            [
                ("CUSTOMERID", ["key"], [UPPER], True, "Customer ID"),
                ("NAME", ["name"], [], True, "Customer name"),
            ],
        ),
        project=Write(
            "PROJECT",
            [
                ("PROJECTID", ["code"], [], True, "Project ID"),
                ("NAME", ["name"], [], True, "Project name"),
                ("PROJECTCATEGORY", [], [default("Contract")], True, "Project category"),
                # The customer as the RECORDNO the reference flow read; the connector sends its CUSTOMERID.
                ("CUSTOMERID", ["customer.ref"], [{"name": "wrap", "key": "RECORDNO"}], True, "Customer in the ERP"),
                ("CURRENCY", ["currency"], [], False, "Currency"),
            ],
        ),
        employee=Write(
            "EMPLOYEE",
            [
                ("EMPLOYEEID", ["employee_number"], [{"name": "fallback", "source": "key"}], True, "Employee ID"),
                ("PERSONALINFO.FIRSTNAME", ["first_name"], [], True, "First name"),
                ("PERSONALINFO.LASTNAME", ["last_name"], [], True, "Last name"),
                ("PERSONALINFO.EMAIL1", ["email"], [], True, "Email"),
                ("TITLE", ["title"], [], False, "Title"),
                ("STARTDATE", ["hire_date"], [], False, "Start date"),
                ("ENDDATE", ["termination_date"], [], False, "End date"),
            ],
        ),
        invoice=Write(
            "ARINVOICE",
            [
                ("RECORDID", ["number"], [], True, "Invoice number"),
                ("CUSTOMERID", ["customer.ref"], [{"name": "wrap", "key": "RECORDNO"}], True, "Customer in the ERP"),
                ("WHENCREATED", ["period_end"], [], True, "Invoice date"),
                ("TERMNAME", [], [default("Net 30")], True, "Payment terms"),
                ("CURRENCY", ["currency"], [], False, "Currency"),
                ("DESCRIPTION", ["number"], [], False, "Description"),
                (
                    "ARINVOICEITEMS",
                    ["lines"],
                    [
                        {
                            "name": "sublist",
                            "constants": {"ACCOUNTNO": "4000"},  # the firm's services revenue account
                            "fields": {"MEMO": "description", "AMOUNT": "amount"},
                        }
                    ],
                    True,
                    "Lines",
                ),
            ],
        ),
    ),
    # Acumatica upserts by key fields: customers, projects and employees by their own ids (which the reads give as
    # external ids, so a project's Customer is the customers' read), invoices by CustomerOrder, our invoice number.
    "acumatica": ErpProfile(
        customers=_reference(
            "erp-customers",
            "ERP customers (reference)",
            "erp",
            "Customer",
            "customer",
            [
                ("customer.name", ["CustomerName"], [TRIM], True, "Customer name"),
                ("customer.domain", ["MainContact.WebSite"], [DOMAIN], False, "Web site"),
            ],
        ),
        projects=_reference(
            "erp-projects",
            "ERP projects (reference)",
            "erp",
            "Project",
            "project",
            [
                ("project.code", ["ProjectID"], [TRIM, UPPER], True, "Project ID"),
                ("project.name", ["Description"], [TRIM], True, "Project description"),
                ("project.customer", ["Customer"], [ref("customer", "Customer")], False, "Customer"),
            ],
        ),
        employees=_reference(
            "erp-employees",
            "ERP employees (reference)",
            "erp",
            "Employee",
            "resource",
            [
                ("resource.email", ["ContactInfo.Email"], [TRIM, LOWER], True, "Email"),
                ("resource.employee_number", ["EmployeeID"], [TRIM, default("")], False, "Employee ID"),
                ("resource.first_name", ["ContactInfo.FirstName"], [TRIM], False, "First name"),
                ("resource.last_name", ["ContactInfo.LastName"], [TRIM], False, "Last name"),
            ],
        ),
        customer=Write(
            "Customer",
            [
                ("CustomerID", ["key"], [UPPER], True, "Customer ID"),
                ("CustomerName", ["name"], [], True, "Customer name"),
            ],
        ),
        project=Write(
            "Project",
            [
                ("ProjectID", ["code"], [], True, "Project ID"),
                ("Description", ["name"], [], True, "Project description"),
                ("Customer", ["customer.ref"], [], True, "Customer in the ERP"),
                ("Status", [], [default("Active")], False, "Status"),
            ],
        ),
        employee=Write(
            "Employee",
            [
                (
                    "EmployeeID",
                    ["employee_number"],
                    [{"name": "fallback", "source": "key"}, UPPER],
                    True,
                    "Employee ID",
                ),
                ("ContactInfo.FirstName", ["first_name"], [], False, "First name"),
                ("ContactInfo.LastName", ["last_name"], [], True, "Last name"),
                ("ContactInfo.Email", ["email"], [], True, "Email"),
                ("ContactInfo.JobTitle", ["title"], [], False, "Job title"),
                # The tenant's employee class and branch (the sandbox's); a client sets its own in the mapping.
                ("EmployeeSettings.EmployeeClass", [], [default("EMPSTAND")], True, "Employee class"),
                ("EmployeeSettings.Branch", [], [default("HQ")], True, "Branch"),
            ],
        ),
        invoice=Write(
            "Invoice",
            [
                ("Type", [], [default("Invoice")], True, "Type"),
                ("CustomerOrder", ["number"], [], True, "Customer order (our invoice number)"),
                ("Customer", ["customer.ref"], [], True, "Customer in the ERP"),
                ("Date", ["period_end"], [], True, "Invoice date"),
                ("Description", ["number"], [], False, "Description"),
                ("Hold", [], [default(False)], False, "On hold"),
                (
                    "Details",
                    ["lines"],
                    [
                        {
                            "name": "sublist",
                            "fields": {"TransactionDescription": "description", "Qty": "quantity", "UnitPrice": "rate"},
                        }
                    ],
                    True,
                    "Lines",
                ),
            ],
        ),
    ),
}

PSA: dict[str, PsaProfile] = {
    "kantata": PsaProfile(
        projects=_reference(
            "psa-projects",
            "PSA projects (reference)",
            "psa",
            "workspaces",
            "project",
            [
                ("project.code", ["title"], [FIRST_WORD, UPPER], True, "Project code"),
                # Titles are "<code> <name>", as lead-to-project writes them: the name is what follows the code,
                # so it matches the CRM's (which owns it) instead of raising a conflict on every project.
                (
                    "project.name",
                    ["title"],
                    [{"name": "split", "separator": " ", "index": 1, "rest": True}],
                    True,
                    "Project name",
                ),
            ],
        ),
        people=_reference(
            "psa-people",
            "PSA people (reference)",
            "psa",
            "users",
            "resource",
            [
                ("resource.email", ["email_address"], [TRIM, LOWER], True, "Email"),
                ("resource.first_name", ["full_name"], [FIRST_WORD], False, "First name"),
                (
                    "resource.last_name",
                    ["full_name"],
                    [{"name": "split", "separator": " ", "index": -1}],
                    False,
                    "Last name",
                ),
            ],
        ),
        time_entries=(
            "time_entries",
            [
                (
                    "time_entry.project",
                    ["workspace_id"],
                    [ref("project", "workspaces"), lookup("project-codes", keep=True)],
                    True,
                    "Project",
                ),
                ("time_entry.resource", ["user_id"], [ref("resource", "users")], True, "Person"),
                ("time_entry.date", ["date_performed"], [DATE], True, "Date"),
                ("time_entry.hours", ["time_in_minutes"], [MINUTES], True, "Hours"),
                ("time_entry.billable", ["billable"], [BOOL], False, "Billable"),
                ("time_entry.approved", ["approved"], [BOOL, default(True)], False, "Approved"),
                ("time_entry.notes", ["notes"], [TRIM, default("")], False, "Notes"),
                ("time_entry.bill_rate", ["rate_in_cents"], [CENTS], False, "Bill rate"),
                ("time_entry.cost_rate", ["cost_rate_in_cents"], [CENTS], False, "Cost rate"),
                ("time_entry.currency", ["currency"], [{"name": "currency", "default": "USD"}], False, "Currency"),
            ],
            {"path": "approved", "in": [True, "true"]},
        ),
        expenses=(
            "expenses",
            [
                (
                    "expense.project",
                    ["workspace_id"],
                    [ref("project", "workspaces"), lookup("project-codes", keep=True)],
                    True,
                    "Project",
                ),
                ("expense.resource", ["user_id"], [ref("resource", "users")], True, "Person"),
                ("expense.date", ["date"], [DATE], True, "Date"),
                ("expense.amount", ["amount_in_cents"], [CENTS], True, "Amount"),
                ("expense.currency", ["currency"], [{"name": "currency", "default": "USD"}], False, "Currency"),
                ("expense.category", ["category"], [TRIM, default("")], False, "Category"),
                ("expense.billable", ["is_billable"], [BOOL], False, "Billable"),
                ("expense.reimbursable", ["reimbursable"], [BOOL], False, "Reimbursable"),
                ("expense.notes", ["notes"], [TRIM, default("")], False, "Notes"),
            ],
            {},
        ),
        project=Write(
            "workspaces",
            [
                ("title", ["code", "name"], [{"name": "concat", "separator": " "}], True, "Title"),
                ("currency", ["currency"], [], False, "Currency"),
            ],
        ),
        resource=Write(
            "users",
            [
                ("full_name", ["first_name", "last_name"], [{"name": "concat", "separator": " "}], True, "Name"),
                ("email_address", ["email"], [], True, "Email"),
                ("headline", ["title"], [], False, "Title"),
                ("cost_rate_in_cents", ["cost_rate"], [{"name": "amount_to_cents"}], False, "Cost rate"),
            ],
        ),
        # Kantata prices an entry from the person's rate on its project; approval happens in Kantata.
        time_entry=Write(
            "time_entries",
            [
                ("workspace_id", ["project.ref"], [], True, "Project in Kantata"),
                ("user_id", ["resource.ref"], [], True, "Person in Kantata"),
                ("date_performed", ["date"], [], True, "Date"),
                ("time_in_minutes", ["hours"], [{"name": "hours_to_minutes"}], True, "Minutes"),
                ("billable", ["billable"], [], False, "Billable"),
                ("notes", ["notes"], [], False, "Notes"),
            ],
        ),
    ),
    "certinia": PsaProfile(
        customers=_reference(
            "psa-customers",
            "PSA accounts (reference)",
            "psa",
            "Account",
            "customer",
            [
                ("customer.name", ["Name"], [TRIM], True, "Account name"),
                ("customer.domain", ["Website"], [DOMAIN], False, "Website"),
            ],
        ),
        projects=_reference(
            "psa-projects",
            "PSA projects (reference)",
            "psa",
            "pse__Proj__c",
            "project",
            [
                ("project.code", ["pse__Project_ID__c"], [TRIM, UPPER], True, "Project ID"),
                ("project.name", ["Name"], [TRIM], True, "Project name"),
                ("project.customer", ["pse__Account__c"], [ref("customer", "Account")], False, "Account"),
            ],
        ),
        people=_reference(
            "psa-people",
            "PSA people (reference)",
            "psa",
            "Contact",
            "resource",
            [
                ("resource.email", ["Email"], [TRIM, LOWER], True, "Email"),
                ("resource.employee_number", ["Employee_Number__c"], [TRIM, default("")], False, "Employee number"),
                ("resource.first_name", ["FirstName"], [TRIM], False, "First name"),
                ("resource.last_name", ["LastName"], [TRIM], False, "Last name"),
            ],
        ),
        # Approved weekly timecards, one record per day worked, with the rates of the resource's assignment.
        time_entries=(
            "timecard_days",
            [
                (
                    "time_entry.project",
                    ["pse__Project__c"],
                    [ref("project", "pse__Proj__c"), lookup("project-codes", keep=True)],
                    True,
                    "Project",
                ),
                ("time_entry.resource", ["pse__Resource__c"], [ref("resource", "Contact")], True, "Resource"),
                ("time_entry.date", ["Date"], [DATE], True, "Date"),
                ("time_entry.hours", ["Hours"], [NUMBER2], True, "Hours"),
                ("time_entry.billable", ["pse__Billable__c"], [BOOL], False, "Billable"),
                ("time_entry.approved", ["pse__Approved__c"], [BOOL, default(True)], False, "Approved"),
                ("time_entry.notes", ["Notes"], [TRIM, default("")], False, "Notes"),
                ("time_entry.bill_rate", ["pse__Assignment__r.pse__Bill_Rate__c"], [NUMBER2], False, "Bill rate"),
                (
                    "time_entry.cost_rate",
                    ["pse__Assignment__r.pse__Cost_Rate_Amount__c"],
                    [NUMBER2],
                    False,
                    "Cost rate",
                ),
                (
                    "time_entry.currency",
                    ["pse__Assignment__r.CurrencyIsoCode"],
                    [{"name": "currency", "default": "USD"}],
                    False,
                    "Currency",
                ),
            ],
            {"path": "pse__Status__c", "in": ["Approved"]},
        ),
        expenses=(
            "pse__Expense__c",
            [
                (
                    "expense.project",
                    ["pse__Project__c"],
                    [ref("project", "pse__Proj__c"), lookup("project-codes", keep=True)],
                    True,
                    "Project",
                ),
                ("expense.resource", ["pse__Resource__c"], [ref("resource", "Contact")], True, "Resource"),
                ("expense.date", ["pse__Expense_Date__c"], [DATE], True, "Date"),
                ("expense.amount", ["pse__Amount__c"], [NUMBER2], True, "Amount"),
                ("expense.currency", ["CurrencyIsoCode"], [{"name": "currency", "default": "USD"}], False, "Currency"),
                ("expense.category", ["pse__Type__c"], [TRIM, default("")], False, "Type"),
                ("expense.billable", ["pse__Billable__c"], [BOOL], False, "Billable"),
                ("expense.notes", ["pse__Description__c"], [TRIM, default("")], False, "Description"),
            ],
            {"path": "pse__Status__c", "in": ["Approved"]},
        ),
        project=Write(
            "pse__Proj__c",
            [
                ("pse__Project_ID__c", ["code"], [], True, "Project ID"),
                ("Name", ["name"], [], True, "Project name"),
                ("CurrencyIsoCode", ["currency"], [], False, "Currency"),
                ("pse__Is_Active__c", [], [default(True)], False, "Active"),
                ("pse__Is_Billable__c", [], [default(True)], False, "Billable"),
            ],
        ),
        resource=Write(
            "Contact",
            [
                ("FirstName", ["first_name"], [], False, "First name"),
                ("LastName", ["last_name"], [], True, "Last name"),
                ("Email", ["email"], [], True, "Email"),
                ("Title", ["title"], [], False, "Title"),
                ("Department", ["department"], [], False, "Department"),
                ("Employee_Number__c", ["employee_number"], [], False, "Employee number"),
                ("pse__Is_Resource__c", [], [default(True)], True, "Is resource"),
                ("pse__Is_Resource_Active__c", [], [default(True)], False, "Resource active"),
                ("pse__Default_Cost_Rate__c", ["cost_rate"], [NUMBER2], False, "Default cost rate"),
                ("pse__Start_Date__c", ["hire_date"], [], False, "Start date"),
            ],
        ),
    ),
    # Kimble's statuses are lookups to reference data: approved time and expenses are read as such (the
    # connection reads approved ones only by default) and kept by the filter on the status's enum.
    "kimble": PsaProfile(
        customers=_reference(
            "psa-customers",
            "PSA accounts (reference)",
            "psa",
            "Account",
            "customer",
            [
                ("customer.name", ["Name"], [TRIM], True, "Account name"),
                ("customer.domain", ["Website"], [DOMAIN], False, "Website"),
            ],
        ),
        projects=_reference(
            "psa-projects",
            "PSA engagements (reference)",
            "psa",
            "KimbleOne__DeliveryGroup__c",
            "project",
            [
                ("project.code", ["KimbleOne__Reference__c"], [TRIM, UPPER], True, "Reference"),
                ("project.name", ["Name"], [TRIM], True, "Engagement name"),
                ("project.customer", ["KimbleOne__Account__c"], [ref("customer", "Account")], False, "Account"),
            ],
        ),
        people=_reference(
            "psa-people",
            "PSA resources (reference)",
            "psa",
            "KimbleOne__Resource__c",
            "resource",
            [
                ("resource.email", ["KimbleOne__Email__c"], [TRIM, LOWER], True, "Email"),
                ("resource.employee_number", ["Employee_Number__c"], [TRIM, default("")], False, "Employee number"),
                ("resource.first_name", ["KimbleOne__FirstName__c"], [TRIM], False, "First name"),
                ("resource.last_name", ["KimbleOne__LastName__c"], [TRIM], False, "Last name"),
            ],
        ),
        time_entries=(
            "KimbleOne__TimeEntry__c",
            [
                (
                    "time_entry.project",
                    ["KimbleOne__DeliveryElement__r.KimbleOne__DeliveryGroup__c"],
                    [ref("project", "KimbleOne__DeliveryGroup__c"), lookup("project-codes", keep=True)],
                    True,
                    "Engagement",
                ),
                (
                    "time_entry.resource",
                    ["KimbleOne__Resource__c"],
                    [ref("resource", "KimbleOne__Resource__c")],
                    True,
                    "Resource",
                ),
                ("time_entry.date", ["KimbleOne__TimePeriod__r.KimbleOne__StartDate__c"], [DATE], True, "Date"),
                ("time_entry.hours", ["KimbleOne__EntryUnits__c"], [NUMBER2], True, "Hours"),
                ("time_entry.billable", ["KimbleOne__IsChargeable__c"], [BOOL], False, "Chargeable"),
                ("time_entry.approved", [], [default(True)], False, "Approved"),  # only approved ones pass the filter
                ("time_entry.notes", ["KimbleOne__Notes__c"], [TRIM, default("")], False, "Notes"),
                (
                    "time_entry.bill_rate",
                    ["KimbleOne__ActivityAssignment__r.KimbleOne__ForecastRevenueRate__c"],
                    [NUMBER2],
                    False,
                    "Revenue rate",
                ),
                (
                    "time_entry.cost_rate",
                    ["KimbleOne__ActivityAssignment__r.KimbleOne__ForecastCostRate__c"],
                    [NUMBER2],
                    False,
                    "Cost rate",
                ),
                (
                    "time_entry.currency",
                    ["KimbleOne__ActivityAssignment__r.CurrencyIsoCode"],
                    [{"name": "currency", "default": "USD"}],
                    False,
                    "Currency",
                ),
            ],
            {"path": "KimbleOne__Status__r.KimbleOne__Enum__c", "in": ["Approved"]},
        ),
        expenses=(
            "KimbleOne__ExpenseItem__c",
            [
                (
                    "expense.project",
                    ["KimbleOne__DeliveryElement__r.KimbleOne__DeliveryGroup__c"],
                    [ref("project", "KimbleOne__DeliveryGroup__c"), lookup("project-codes", keep=True)],
                    True,
                    "Engagement",
                ),
                (
                    "expense.resource",
                    ["KimbleOne__Resource__c"],
                    [ref("resource", "KimbleOne__Resource__c")],
                    True,
                    "Resource",
                ),
                ("expense.date", ["KimbleOne__ExpenseDate__c"], [DATE], True, "Date"),
                ("expense.amount", ["KimbleOne__IncurredAmount__c"], [NUMBER2], True, "Amount"),
                ("expense.currency", ["CurrencyIsoCode"], [{"name": "currency", "default": "USD"}], False, "Currency"),
                ("expense.category", ["KimbleOne__Category__c"], [TRIM, default("")], False, "Category"),
                ("expense.billable", ["KimbleOne__IsChargeable__c"], [BOOL], False, "Chargeable"),
                ("expense.notes", ["KimbleOne__Notes__c"], [TRIM, default("")], False, "Notes"),
            ],
            {"path": "KimbleOne__Status__r.KimbleOne__Enum__c", "in": ["Approved"]},
        ),
        project=Write(
            "KimbleOne__DeliveryGroup__c",
            [
                ("KimbleOne__Reference__c", ["code"], [], True, "Reference"),
                ("Name", ["name"], [], True, "Engagement name"),
                ("KimbleOne__InvoicingCurrencyIsoCode__c", ["currency"], [], False, "Invoicing currency"),
                ("CurrencyIsoCode", ["currency"], [], False, "Currency"),
            ],
        ),
        resource=Write(
            "KimbleOne__Resource__c",
            [
                ("KimbleOne__FirstName__c", ["first_name"], [], False, "First name"),
                ("KimbleOne__LastName__c", ["last_name"], [], True, "Last name"),
                ("KimbleOne__Email__c", ["email"], [], True, "Email"),
                ("KimbleOne__Grade__c", ["title"], [], False, "Grade"),
                ("KimbleOne__BusinessUnit__c", ["department"], [], False, "Business unit"),
                ("Employee_Number__c", ["employee_number"], [], False, "Employee number"),
                ("KimbleOne__StartDate__c", ["hire_date"], [], True, "Start date"),
                ("KimbleOne__CostRate__c", ["cost_rate"], [NUMBER2], False, "Cost rate"),
            ],
        ),
    ),
    # Float is resource scheduling: it takes the PSA role of lead-to-project (projects) and employee to resource
    # (people), not of approved time to invoice. Its logged time has no approval (only locked periods) and carries no
    # rate (a person has one default hourly rate, in the account's single currency, where the firm bills each
    # project in its own currency at the person's converted rate), and Float keeps no expenses: the profile leaves
    # time entries and expenses out, so the templates that need them do not offer Float.
    "float": PsaProfile(
        projects=_reference(
            "psa-projects",
            "PSA projects (reference)",
            "psa",
            "projects",
            "project",
            [
                ("project.code", ["project_code"], [TRIM, UPPER], True, "Project code"),
                ("project.name", ["name"], [TRIM], True, "Project name"),
            ],
        ),
        people=_reference(
            "psa-people",
            "PSA people (reference)",
            "psa",
            "people",
            "resource",
            [
                ("resource.email", ["email"], [TRIM, LOWER], True, "Email"),
                ("resource.first_name", ["name"], [FIRST_WORD], False, "First name"),
                (
                    "resource.last_name",
                    ["name"],
                    [{"name": "split", "separator": " ", "index": -1}],
                    False,
                    "Last name",
                ),
            ],
        ),
        # Float finds a project by its code and a person by email before it creates one (connectors/float).
        project=Write(
            "projects",
            [
                ("project_code", ["code"], [], True, "Project code"),
                ("name", ["name"], [], True, "Project name"),
            ],
        ),
        resource=Write(
            "people",
            [
                ("name", ["first_name", "last_name"], [{"name": "concat", "separator": " "}], True, "Name"),
                ("email", ["email"], [], True, "Email"),
                ("job_title", ["title"], [], False, "Job title"),
            ],
        ),
    ),
}


def _hr_rules(
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


HR: dict[str, HrProfile] = {
    "bamboohr": HrProfile(
        employees="employees",
        rules=[
            ("resource.email", ["workEmail"], [TRIM, LOWER], True, "Work email"),
            ("resource.first_name", ["firstName"], [TRIM], True, "First name"),
            ("resource.last_name", ["lastName"], [TRIM], True, "Last name"),
            ("resource.employee_number", ["employeeNumber"], [TRIM, default("")], False, "Employee number"),
            ("resource.department", ["department"], [TRIM], True, "Department"),
            ("resource.practice", ["department"], [lookup("practices")], True, "Practice"),
            ("resource.title", ["jobTitle"], [TRIM, default("")], False, "Job title"),
            ("resource.location", ["location"], [TRIM, default("")], False, "Location"),
            ("resource.status", ["status"], [LOWER, default("active")], False, "Status"),
            ("resource.hire_date", ["hireDate"], [DATE], False, "Hire date"),
            ("resource.termination_date", ["terminationDate"], [DATE], False, "Termination date"),
            ("rate.resource", [], [default("@resource")], False, "Person"),
            ("rate.kind", [], [default("cost")], False, "Rate kind"),
            # Not required: a person without a cost rate still reaches the PSA and ERP, and is one
            # "no cost rate" exception that their time waits on.
            ("rate.amount", ["customCostRate"], [FIRST_WORD, NUMBER2], False, "Cost rate"),
            (
                "rate.currency",
                ["customCostRate"],
                [{"name": "split", "separator": " ", "index": 1}, {"name": "currency", "default": "USD"}],
                False,
                "Cost rate currency",
            ),
            ("rate.effective_from", ["hireDate"], [DATE], True, "Hire date"),
        ],
    ),
    "workday": HrProfile(
        employees="workers",
        rules=_hr_rules(
            email="Email_Address",
            first_name="First_Name",
            last_name="Last_Name",
            number="Worker_ID",
            department="Supervisory_Organization",
            title="Business_Title",
            location="Location",
            hire_date="Hire_Date",
            termination_date="Termination_Date",
            cost_rate="Cost_Rate_Amount",
            cost_currency="Cost_Rate_Currency",
            status=("Terminated", [{"name": "boolean", "yes": "terminated", "no": "active"}]),
        ),
    ),
    "adp": HrProfile(
        employees="workers",
        rules=_hr_rules(
            email="emailUri",
            first_name="givenName",
            last_name="familyName1",
            number="workerID",
            department="department",
            title="jobTitle",
            location="homeWorkLocation",
            hire_date="originalHireDate",
            termination_date="terminationDate",
            cost_rate="costRate",
            cost_currency="currencyCode",  # the pay currency: ADP keeps the cost rate in it
            status=("workerStatus", [LOWER, default("active")]),  # "Active" or "Terminated"
        ),
    ),
}

TICKETING: dict[str, TicketingProfile] = {
    "jira": TicketingProfile(
        requests=_reference(
            "ticketing-requests",
            "Staffing requests (reference)",
            "ticketing",
            "issues",
            "project",
            [
                # Staffing requests carry their project's code as a label, and "Staff <code>: <name>" as summary.
                ("project.code", ["labels.0"], [TRIM, UPPER], True, "Project code"),
                (
                    "project.name",
                    ["summary"],
                    [{"name": "split", "separator": ": ", "index": 1, "rest": True}],
                    True,
                    "Project name",
                ),
            ],
            source_filter={"path": "labels", "contains": "staffing"},
        ),
        request=Write(
            "issues",
            [
                ("project", [], [default("RES")], True, "Jira project"),
                ("issuetype", [], [default("Task")], True, "Issue type"),
                (
                    "summary",
                    ["code", "name"],
                    [{"name": "concat", "separator": ": "}, {"name": "prefix", "value": "Staff "}],
                    True,
                    "Summary",
                ),
                (
                    "description",
                    ["customer.name"],
                    [{"name": "prefix", "value": "Won deal for "}],
                    False,
                    "Description",
                ),
                ("labels", ["code"], [{"name": "list", "append": ["staffing"]}], False, "Labels"),
            ],
        ),
        # Worklogs; the issue's first label is its project's code, as on staffing requests.
        time=(
            "worklogs",
            _ticket_time_rules(
                code=("issue.labels.0", []),
                email="author.emailAddress",
                day="started_date",
                minutes="time_spent_minutes",
                notes=["issue.key", "comment"],
            ),
            {},
        ),
    ),
    "asana": TicketingProfile(
        # Time tracking entries; a project is named with its code first ("PRJ-113 Globex Data Platform").
        time=(
            "time_tracking_entries",
            _ticket_time_rules(
                code=("project.name", [FIRST_WORD]),
                email="created_by.email",
                day="entered_on",
                minutes="duration_minutes",
                notes=["task.name"],
            ),
            {},
        ),
    ),
    "monday": TicketingProfile(
        # Sessions in an item's time tracking column; the board is named with its project's code first.
        time=(
            "time_tracking",
            _ticket_time_rules(
                code=("board.name", [FIRST_WORD]),
                email="user.email",
                day="date",
                minutes="minutes",
                notes=["item.name"],
            ),
            {},
        ),
    ),
    "servicenow": TicketingProfile(
        # Time worked on incidents and tasks; the assignment group is named with its project's code first.
        time=(
            "task_time_worked",
            _ticket_time_rules(
                code=("task.assignment_group.name", [FIRST_WORD]),
                email="user.email",
                day="work_date",
                minutes="minutes",
                notes=["task.number", "comments"],
            ),
            {},
        ),
    ),
}

# Which profiles each role draws on; the order is the order vendors are offered in.
PROFILES = {"crm": CRM, "erp": ERP, "psa": PSA, "hr": HR, "ticketing": TICKETING}


def reference_spec(*, vendor: str, object_name: str, entity: str) -> FlowSpec | None:
    """The reference flow that reads `object_name` of `vendor` into `entity` records, if a profile has one:
    what a flow built by hand needs before it writes there, so it links what the system holds."""
    for profiles in PROFILES.values():
        profile = profiles.get(vendor)
        if profile is None:
            continue
        for value in vars(profile).values():
            if (
                isinstance(value, FlowSpec)
                and not value.steps
                and (value.object, value.entity) == (object_name, entity)
            ):
                return value
    return None


# --- The packaged templates --------------------------------------------------------------------------


@dataclass(frozen=True)
class PackagedTemplate:
    """A template that names roles, not vendors: it installs with any vendor that has a profile for each role.

    `build(vendors)` makes its flows for the vendors chosen ({"crm": "salesforce", ...}); `for_vendors` gives
    the plain Template every install goes through, so packaged and partner templates share one path.
    """

    key: str
    name: str
    summary: str
    version: int
    roles: dict  # role -> label, e.g. {"crm": "CRM (deals)"}
    value_maps: list
    build: Callable[[dict[str, str]], list[FlowSpec]] = field(repr=False, compare=False)
    publisher: str = ""
    # role -> what a vendor's profile must hold to play it here (a ticketing system that only holds time cannot
    # take staffing requests); a role not named takes every vendor with a profile for it
    needs: dict = field(default_factory=dict)

    def vendors(self, role: str) -> tuple[str, ...]:
        """The vendors that can play `role` in this template, in the order they are offered."""
        wanted = self.needs.get(role, ())
        return tuple(
            vendor
            for vendor, profile in PROFILES[role].items()
            if all(getattr(profile, name) is not None for name in wanted)
        )

    @property
    def connections(self) -> dict[str, tuple[tuple[str, ...], str]]:
        return {role: (self.vendors(role), label) for role, label in self.roles.items()}

    @property
    def default_vendors(self) -> dict[str, str]:
        return {role: self.vendors(role)[0] for role in self.roles}

    def for_vendors(self, vendors: dict[str, str]) -> Template:
        chosen = {role: vendors.get(role) or default for role, default in self.default_vendors.items()}
        for role, vendor in chosen.items():
            if vendor not in self.vendors(role):
                raise KeyError(f"{vendor} cannot play the {role} role in “{self.name}”")
        return Template(
            key=self.key,
            name=self.name,
            summary=self.summary,
            version=self.version,
            connections={role: ((chosen[role],), label) for role, label in self.roles.items()},
            value_maps=self.value_maps,
            flows=self.build(chosen),
            publisher=self.publisher,
        )

    @property
    def flows(self) -> list[FlowSpec]:
        """The flows as they install with the first vendor of each role (the install page lists them)."""
        return self.build(self.default_vendors)

    def to_spec(self) -> dict:
        return self.for_vendors(self.default_vendors).to_spec()


def _psa_customers(psa: PsaProfile) -> tuple[FlowSpec, ...]:
    return (psa.customers,) if psa.customers is not None else ()


def _approved_time(vendors: dict[str, str]) -> list[FlowSpec]:
    erp, psa = ERP[vendors["erp"]], PSA[vendors["psa"]]
    references = (erp.customers, erp.projects, *_psa_customers(psa), psa.projects, psa.people)
    invoice = StepSpec(
        name="Invoice per project and month",
        entity="invoice",
        target="erp",
        object=erp.invoice.object,
        action="invoice",
        rules=erp.invoice.rules,
    )
    flows = list(references)
    for key, name, entity, (object_name, rules, source_filter) in (
        ("approved-time", "Approved time to invoices", "time_entry", psa.time_entries),
        ("approved-expenses", "Expenses to invoices", "expense", psa.expenses),
    ):
        flows.append(
            FlowSpec(
                key=key,
                name=name,
                source="psa",
                object=object_name,
                entity=entity,
                prerequisites=tuple(reference.key for reference in references),
                source_filter=source_filter,
                rules=rules,
                steps=[invoice],
            )
        )
    return flows


def _employee_to_resource(vendors: dict[str, str]) -> list[FlowSpec]:
    hr, psa, erp = HR[vendors["hr"]], PSA[vendors["psa"]], ERP[vendors["erp"]]
    references = (psa.people, erp.employees)
    return [
        *references,
        FlowSpec(
            key="employees",
            name="Employees to resources",
            source="hr",
            object=hr.employees,
            entity="resource",
            schedule_minutes=1440,
            prerequisites=tuple(reference.key for reference in references),
            rules=hr.rules,
            steps=[
                StepSpec("Resource in the PSA", "resource", "psa", psa.resource.object, psa.resource.rules),
                StepSpec("Employee in the ERP", "resource", "erp", erp.employee.object, erp.employee.rules),
            ],
        ),
    ]


def _lead_to_project(vendors: dict[str, str]) -> list[FlowSpec]:
    crm, erp, psa, ticketing = (
        CRM[vendors["crm"]],
        ERP[vendors["erp"]],
        PSA[vendors["psa"]],
        TICKETING[vendors["ticketing"]],
    )
    # Every system the flow writes to is read first, so what it already holds is linked, not created again.
    references = (crm.companies, erp.customers, erp.projects, *_psa_customers(psa), psa.projects, ticketing.requests)
    return [
        *references,
        FlowSpec(
            key="won-deals",
            name="Won deals to projects",
            source="crm",
            object=crm.deals,
            entity="opportunity",
            trigger="webhook" if crm.webhook else "schedule",
            schedule_minutes=15,
            source_filter=crm.won,
            prerequisites=tuple(reference.key for reference in references),
            rules=crm.won_deal_rules,
            steps=[
                StepSpec("Customer in the ERP", "customer", "erp", erp.customer.object, erp.customer.rules),
                StepSpec("Project in the ERP", "project", "erp", erp.project.object, erp.project.rules),
                StepSpec("Project in the PSA", "project", "psa", psa.project.object, psa.project.rules),
                StepSpec(
                    "Resource request in the ticketing system",
                    "project",
                    "ticketing",
                    ticketing.request.object,
                    ticketing.request.rules,
                ),
                StepSpec(name="Tell delivery leadership", entity="project", target="", object="", action="notify"),
            ],
        ),
    ]


def _ticket_time(vendors: dict[str, str]) -> list[FlowSpec]:
    ticketing, psa = TICKETING[vendors["ticketing"]], PSA[vendors["psa"]]
    object_name, rules, source_filter = ticketing.time
    references = (*_psa_customers(psa), psa.projects, psa.people)
    return [
        *references,
        FlowSpec(
            key="ticket-time",
            name="Ticket time to PSA time",
            source="ticketing",
            object=object_name,
            entity="time_entry",
            schedule_minutes=60,
            source_filter=source_filter,
            prerequisites=tuple(reference.key for reference in references),
            rules=rules,
            steps=[StepSpec("Time entry in the PSA", "time_entry", "psa", psa.time_entry.object, psa.time_entry.rules)],
        ),
    ]


APPROVED_TIME = PackagedTemplate(
    key="approved-time-to-invoice",
    name="Approved time to invoice",
    summary="Approved time entries and expenses from the PSA become invoices per project and month in the ERP; "
    "hours, revenue and cost feed the utilization and margin dashboards.",
    # 2: a PSA project's name is its title after the code. 3: roles, not vendors; records are linked before
    # anything is created; customers match on their web domain too.
    version=3,
    roles={"psa": "PSA (time and expenses)", "erp": "ERP (invoices)"},
    value_maps=[PROJECT_CODES],
    build=_approved_time,
    needs={"psa": ("time_entries", "expenses")},
)

EMPLOYEE_TO_RESOURCE = PackagedTemplate(
    key="employee-to-resource",
    name="Employee to resource",
    summary="HR employees reach the PSA as resources with cost rates, then the ERP as employees, every day; "
    "missing departments, emails or cost rates become exceptions.",
    version=2,  # 2: people already in the PSA and ERP are linked; a missing cost rate no longer stops the person
    roles={"hr": "HR (employees)", "psa": "PSA (resources)", "erp": "ERP (employees)"},
    value_maps=[PRACTICES],
    build=_employee_to_resource,
)

LEAD_TO_PROJECT = PackagedTemplate(
    key="lead-to-project",
    name="Lead to project",
    summary="A deal reaching closed-won creates the ERP customer and project with billing terms, the PSA project "
    "with the default rate card, and tells delivery leadership to staff it.",
    # 2: customers, projects and staffing requests the systems already hold are linked, not created again; a
    # deal's own project code is used; any CRM with a profile (HubSpot, Salesforce).
    version=2,
    roles={
        "crm": "CRM (deals)",
        "erp": "ERP (customers, projects)",
        "psa": "PSA (projects)",
        "ticketing": "Ticketing (resource requests)",
    },
    value_maps=[PAYMENT_TERMS],
    build=_lead_to_project,
    needs={"ticketing": ("requests", "request")},
)

TICKET_TIME = PackagedTemplate(
    key="ticket-time-to-psa",
    name="Ticket time to billable time",
    summary="Time logged on tickets reaches the PSA as time entries on the project whose code the ticket's project "
    "carries, for the person with the same email, once each; the PSA approves it and it is billed with the rest.",
    version=1,
    roles={"ticketing": "Ticketing (time logged on tickets)", "psa": "PSA (time entries)"},
    value_maps=[TICKET_PROJECT_CODES],
    build=_ticket_time,
    needs={"ticketing": ("time",), "psa": ("time_entry",)},
)

TEMPLATES = {t.key: t for t in (LEAD_TO_PROJECT, APPROVED_TIME, EMPLOYEE_TO_RESOURCE, TICKET_TIME)}

# Kept for tests that read one reference flow directly.
PSA_PROJECTS = PSA["kantata"].projects

# A partner's own templates install under this prefix ("p-<template key>/<flow key>"), so their
# flows can never be taken for a packaged template's.
PARTNER_TEMPLATE_PREFIX = "p-"
assert not any(key.startswith(PARTNER_TEMPLATE_PREFIX) for key in TEMPLATES)
