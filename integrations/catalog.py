"""The packaged flows a client can install, as data: connections they need, value maps, flows, rules.

Rules are (target, sources, transforms, required, label). Every transform is from the fixed
library in integrations.engine.mapping; nothing here is code a client could change.
"""

from __future__ import annotations

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


PROJECT_CODES = (
    "project-codes",
    "Project codes (PSA → ERP)",
    "When the PSA spells a project code differently from the ERP.",
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

ERP_CUSTOMERS = FlowSpec(
    key="erp-customers",
    name="ERP customers (reference)",
    source="erp",
    object="customer",
    entity="customer",
    rules=[("customer.name", ["companyName"], [TRIM], True, "Customer name")],
)
ERP_PROJECTS = FlowSpec(
    key="erp-projects",
    name="ERP projects (reference)",
    source="erp",
    object="job",
    entity="project",
    rules=[
        ("project.code", ["entityId"], [TRIM, UPPER], True, "Project code"),
        ("project.name", ["companyName"], [TRIM], True, "Project name"),
        ("project.customer", ["parent.id"], [ref("customer", "customer")], False, "Customer"),
    ],
)
PSA_PROJECTS = FlowSpec(
    key="psa-projects",
    name="PSA projects (reference)",
    source="psa",
    object="workspaces",
    entity="project",
    rules=[
        ("project.code", ["title"], [{"name": "split", "separator": " ", "index": 0}, UPPER], True, "Project code"),
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
)
PSA_PEOPLE = FlowSpec(
    key="psa-people",
    name="PSA people (reference)",
    source="psa",
    object="users",
    entity="resource",
    rules=[
        ("resource.email", ["email_address"], [TRIM, LOWER], True, "Email"),
        ("resource.first_name", ["full_name"], [{"name": "split", "separator": " ", "index": 0}], False, "First name"),
        ("resource.last_name", ["full_name"], [{"name": "split", "separator": " ", "index": -1}], False, "Last name"),
    ],
)

INVOICE_STEP = StepSpec(
    name="Invoice per project and month",
    entity="invoice",
    target="erp",
    object="invoice",
    action="invoice",
    rules=[
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
)

APPROVED_TIME = Template(
    key="approved-time-to-invoice",
    name="Approved time to invoice",
    summary="Approved time entries and expenses from the PSA become invoices per project and month in the ERP; "
    "hours, revenue and cost feed the utilization and margin dashboards.",
    version=2,  # 2: a PSA project's name is its title after the code
    connections={"psa": (("kantata",), "PSA (time and expenses)"), "erp": (("netsuite",), "ERP (invoices)")},
    value_maps=[PROJECT_CODES],
    flows=[
        ERP_CUSTOMERS,
        ERP_PROJECTS,
        PSA_PROJECTS,
        PSA_PEOPLE,
        FlowSpec(
            key="approved-time",
            name="Approved time to invoices",
            source="psa",
            object="time_entries",
            entity="time_entry",
            prerequisites=("erp-customers", "erp-projects", "psa-projects", "psa-people"),
            source_filter={"path": "approved", "in": [True, "true"]},
            rules=[
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
            steps=[INVOICE_STEP],
        ),
        FlowSpec(
            key="approved-expenses",
            name="Expenses to invoices",
            source="psa",
            object="expenses",
            entity="expense",
            prerequisites=("erp-customers", "erp-projects", "psa-projects", "psa-people"),
            rules=[
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
            steps=[INVOICE_STEP],
        ),
    ],
)

EMPLOYEE_TO_RESOURCE = Template(
    key="employee-to-resource",
    name="Employee to resource",
    summary="HR employees reach the PSA as resources with cost rates, then the ERP as employees, every day; "
    "missing departments, emails or pay rates become exceptions.",
    version=1,
    connections={
        "hr": (("bamboohr",), "HR (employees)"),
        "psa": (("kantata",), "PSA (resources)"),
        "erp": (("netsuite",), "ERP (employees)"),
    },
    value_maps=[PRACTICES],
    flows=[
        FlowSpec(
            key="employees",
            name="Employees to resources",
            source="hr",
            object="employees",
            entity="resource",
            schedule_minutes=1440,
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
                (
                    "rate.amount",
                    ["customCostRate"],
                    [{"name": "split", "separator": " ", "index": 0}, NUMBER2],
                    True,
                    "Cost rate",
                ),
                (
                    "rate.currency",
                    ["customCostRate"],
                    [{"name": "split", "separator": " ", "index": 1}, {"name": "currency", "default": "USD"}],
                    False,
                    "Cost rate currency",
                ),
                ("rate.effective_from", ["hireDate"], [DATE], True, "Hire date"),
            ],
            steps=[
                StepSpec(
                    name="Resource in the PSA",
                    entity="resource",
                    target="psa",
                    object="users",
                    rules=[
                        (
                            "full_name",
                            ["first_name", "last_name"],
                            [{"name": "concat", "separator": " "}],
                            True,
                            "Name",
                        ),
                        ("email_address", ["email"], [], True, "Email"),
                        ("headline", ["title"], [], False, "Title"),
                        ("cost_rate_in_cents", ["cost_rate"], [{"name": "amount_to_cents"}], False, "Cost rate"),
                    ],
                ),
                StepSpec(
                    name="Employee in the ERP",
                    entity="resource",
                    target="erp",
                    object="employee",
                    rules=[
                        ("entityId", ["key"], [], True, "Employee id"),
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
            ],
        ),
    ],
)

CRM_COMPANIES = FlowSpec(
    key="crm-companies",
    name="CRM companies (reference)",
    source="crm",
    object="companies",
    entity="customer",
    rules=[
        ("customer.name", ["name"], [TRIM], True, "Company name"),
        ("customer.domain", ["domain"], [TRIM, LOWER, default("")], False, "Domain"),
    ],
)

LEAD_TO_PROJECT = Template(
    key="lead-to-project",
    name="Lead to project",
    summary="A deal reaching closed-won creates the ERP customer and project with billing terms, the PSA project "
    "with the default rate card, and tells delivery leadership to staff it.",
    version=1,
    connections={
        "crm": (("hubspot",), "CRM (deals)"),
        "erp": (("netsuite",), "ERP (customers, projects)"),
        "psa": (("kantata",), "PSA (projects)"),
        "ticketing": (("jira",), "Ticketing (resource requests)"),
    },
    value_maps=[PAYMENT_TERMS],
    flows=[
        CRM_COMPANIES,
        FlowSpec(
            key="won-deals",
            name="Won deals to projects",
            source="crm",
            object="deals",
            entity="opportunity",
            trigger="webhook",
            schedule_minutes=15,
            source_filter={"path": "dealstage", "in": ["closedwon"]},
            prerequisites=("crm-companies",),
            rules=[
                ("opportunity.name", ["dealname"], [TRIM], True, "Deal"),
                ("opportunity.amount", ["amount"], [NUMBER2], False, "Amount"),
                (
                    "opportunity.currency",
                    ["deal_currency_code"],
                    [{"name": "currency", "default": "USD"}],
                    False,
                    "Currency",
                ),
                ("opportunity.stage", ["dealstage"], [], False, "Stage"),
                ("opportunity.close_date", ["closedate"], [DATE], False, "Close date"),
                ("opportunity.is_won", [], [default(True)], False, "Won"),
                ("opportunity.customer", ["company_ids.0"], [ref("customer", "companies")], True, "Company"),
                ("project.code", ["id"], [{"name": "prefix", "value": "PRJ-D"}], True, "Project code"),
                ("project.name", ["dealname"], [TRIM], True, "Project name"),
                ("project.customer", ["company_ids.0"], [ref("customer", "companies")], True, "Company"),
                ("project.opportunity", [], [default("@opportunity")], False, "Deal"),
                ("project.billing_terms", ["billing_terms"], [lookup("payment-terms")], False, "Payment terms"),
                ("project.budget", ["amount"], [NUMBER2], False, "Budget"),
                (
                    "project.currency",
                    ["deal_currency_code"],
                    [{"name": "currency", "default": "USD"}],
                    False,
                    "Currency",
                ),
            ],
            steps=[
                StepSpec(
                    name="Customer in the ERP",
                    entity="customer",
                    target="erp",
                    object="customer",
                    rules=[
                        ("entityId", ["key"], [], True, "Customer id"),
                        ("companyName", ["name"], [], True, "Company name"),
                        ("subsidiary", [], [default({"id": "1"})], False, "Subsidiary"),
                    ],
                ),
                StepSpec(
                    name="Project in the ERP",
                    entity="project",
                    target="erp",
                    object="job",
                    rules=[
                        ("entityId", ["code"], [], True, "Project code"),
                        ("companyName", ["name"], [], True, "Project name"),
                        ("parent", ["customer.ref"], [WRAP], True, "Customer in the ERP"),
                        ("subsidiary", [], [default({"id": "1"})], False, "Subsidiary"),
                    ],
                ),
                StepSpec(
                    name="Project in the PSA",
                    entity="project",
                    target="psa",
                    object="workspaces",
                    rules=[
                        ("title", ["code", "name"], [{"name": "concat", "separator": " "}], True, "Title"),
                        ("currency", ["currency"], [], False, "Currency"),
                    ],
                ),
                StepSpec(
                    name="Resource request in Jira",
                    entity="project",
                    target="ticketing",
                    object="issues",
                    rules=[
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
                        ("labels", [], [default(["resource-request"])], False, "Labels"),
                    ],
                ),
                StepSpec(name="Tell delivery leadership", entity="project", target="", object="", action="notify"),
            ],
        ),
    ],
)

TEMPLATES = {t.key: t for t in (LEAD_TO_PROJECT, APPROVED_TIME, EMPLOYEE_TO_RESOURCE)}

# A partner's own templates install under this prefix ("p-<template key>/<flow key>"), so their
# flows can never be taken for a packaged template's.
PARTNER_TEMPLATE_PREFIX = "p-"
assert not any(key.startswith(PARTNER_TEMPLATE_PREFIX) for key in TEMPLATES)
