"""The packaged templates: each names roles, not vendors, and builds its flows from the profiles of the
vendors a client picks. Also the lookup of a vendor's reference flows."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from integrations.catalog.crm import CRM
from integrations.catalog.erp import ERP
from integrations.catalog.hr import HR
from integrations.catalog.psa import PSA
from integrations.catalog.roles import PAYMENT_TERMS, PRACTICES, PROJECT_CODES, TICKET_PROJECT_CODES, PsaProfile
from integrations.catalog.specs import FlowSpec, StepSpec, Template
from integrations.catalog.ticketing import TICKETING

# The entity of a flow that writes delivery figures to CRM accounts (integrations.services.account_health) instead
# of syncing records through the engine.
ACCOUNT_HEALTH_ENTITY = "account_health"

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


def _account_health(vendors: dict[str, str]) -> list[FlowSpec]:
    crm = CRM[vendors["crm"]]
    # The CRM's accounts are read first: each is linked to its customer (by name, then domain), which is where the
    # figures go. Nothing is created in the CRM but the fields.
    return [
        crm.companies,
        FlowSpec(
            key="account-health",
            name="Delivery health to CRM accounts",
            source="crm",
            object=crm.companies.object,
            entity=ACCOUNT_HEALTH_ENTITY,
            rules=[],
            schedule_minutes=1440,
            prerequisites=(crm.companies.key,),
            steps=[StepSpec("Delivery figures on each account", ACCOUNT_HEALTH_ENTITY, "crm", crm.companies.object)],
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

ACCOUNT_HEALTH = PackagedTemplate(
    key="account-health-to-crm",
    name="Delivery health to CRM accounts",
    summary="Every day, each customer's delivered hours, revenue, cost and margin for the last complete month and "
    "the month to date reach fields on its CRM account (created by the flow, or fields you already have), so "
    "account managers see delivery health where they work. The figures are the margin dashboard's.",
    version=1,
    roles={"crm": "CRM (accounts)"},
    value_maps=[],
    build=_account_health,
)

TEMPLATES = {t.key: t for t in (LEAD_TO_PROJECT, APPROVED_TIME, EMPLOYEE_TO_RESOURCE, TICKET_TIME, ACCOUNT_HEALTH)}

# Kept for tests that read one reference flow directly.
PSA_PROJECTS = PSA["kantata"].projects

# A partner's own templates install under this prefix ("p-<template key>/<flow key>"), so their
# flows can never be taken for a packaged template's.
PARTNER_TEMPLATE_PREFIX = "p-"
assert not any(key.startswith(PARTNER_TEMPLATE_PREFIX) for key in TEMPLATES)
