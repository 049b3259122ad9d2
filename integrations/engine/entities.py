"""What the engine knows of each canonical entity: its model, natural key, relations and field owners."""

from __future__ import annotations

from dataclasses import dataclass, field

from integrations import models as m


@dataclass(frozen=True)
class MatchKey:
    """One way to recognise a record in another system: compare `field` normalised by keys.NORMALISERS[kind]."""

    field: str  # the canonical field mapped from the source
    kind: str  # name | domain | code | email
    column: str = ""  # the column holding the normalised value, when it is not `field` itself
    label: str = ""

    @property
    def lookup(self) -> str:
        return self.column or self.field


@dataclass(frozen=True)
class EntitySpec:
    name: str
    model: type
    label: str
    natural_key: str | None = None  # a unique field that identifies the record across systems
    identity: tuple[str, ...] = ()  # fields that together identify a record that has no natural key
    relations: dict[str, str] = field(default_factory=dict)  # field -> related entity
    describe: str = "{pk}"  # how a clerk reads one record, formatted with its values
    # How a record arriving from one system is recognised as one another system brought already,
    # by key name; a flow chooses which (Flow.match_keys), `default_match` otherwise.
    match_keys: dict[str, MatchKey] = field(default_factory=dict)
    default_match: tuple[str, ...] = ()
    # A record mapped alongside another (a person's cost rate) is left out when these are blank.
    requires: tuple[str, ...] = ()


ENTITIES: dict[str, EntitySpec] = {
    "customer": EntitySpec(
        "customer",
        m.Customer,
        "Customer",
        describe="customer {name}",
        match_keys={
            "name": MatchKey("name", "name", column="name_key", label="Name (ignoring case, punctuation and Ltd/Inc)"),
            "domain": MatchKey("domain", "domain", label="Web domain"),
            "registration_number": MatchKey("registration_number", "code", label="Registration or tax number"),
        },
        default_match=("name", "domain"),
    ),
    "opportunity": EntitySpec(
        "opportunity", m.Opportunity, "Opportunity", relations={"customer": "customer"}, describe="deal {name}"
    ),
    "project": EntitySpec(
        "project",
        m.Project,
        "Project",
        natural_key="code",
        relations={"customer": "customer", "opportunity": "opportunity", "rate_card": "rate_card"},
        describe="project {code}",
        match_keys={"code": MatchKey("code", "code", label="Project code")},
        default_match=("code",),
    ),
    "rate_card": EntitySpec("rate_card", m.RateCard, "Rate card", natural_key="name", describe="rate card {name}"),
    "resource": EntitySpec(
        "resource",
        m.Resource,
        "Person",
        natural_key="email",
        describe="{first_name} {last_name}",
        match_keys={
            "email": MatchKey("email", "email", label="Work email"),
            "employee_number": MatchKey("employee_number", "code", label="Employee number"),
        },
        default_match=("email", "employee_number"),
    ),
    "rate": EntitySpec(
        "rate",
        m.Rate,
        "Rate",
        relations={"resource": "resource", "rate_card": "rate_card"},
        identity=("resource", "kind", "effective_from"),
        describe="rate of {resource}",
        requires=("amount",),
    ),
    "time_entry": EntitySpec(
        "time_entry",
        m.TimeEntry,
        "Time entry",
        relations={"project": "project", "resource": "resource"},
        describe="time entry of {date:%-d %b} on project {project_code}",
    ),
    "expense": EntitySpec(
        "expense",
        m.Expense,
        "Expense",
        relations={"project": "project", "resource": "resource"},
        describe="expense of {date:%-d %b} on project {project_code}",
    ),
    "invoice": EntitySpec(
        "invoice",
        m.Invoice,
        "Invoice",
        natural_key="number",
        relations={"customer": "customer", "project": "project"},
        describe="invoice {number}",
    ),
}

# Dependency order: a record is written only after the records it points to.
ORDER = ["customer", "rate_card", "opportunity", "project", "resource", "rate", "time_entry", "expense", "invoice"]

# Which kind of system owns a field by default (DESIGN: CRM owns pipeline context, PSA delivery,
# HR the person, ERP financial truth). Per-client overrides live in FieldOwnership rows.
DEFAULT_OWNERS: dict[str, dict[str, str]] = {
    "customer": {
        "name": "crm",
        "domain": "crm",
        "payment_terms": "erp",
        "currency": "erp",
        "billing_city": "erp",
        "billing_country": "erp",
    },
    "opportunity": {"name": "crm", "amount": "crm", "stage": "crm", "close_date": "crm", "is_won": "crm"},
    "project": {
        "name": "crm",
        "billing_terms": "erp",
        "budget": "erp",
        "status": "psa",
        "start_date": "psa",
        "end_date": "psa",
    },
    "resource": {
        "first_name": "hr",
        "last_name": "hr",
        "email": "hr",
        "department": "hr",
        "title": "hr",
        "status": "hr",
        "hire_date": "hr",
        "termination_date": "hr",
        "location": "hr",
        "employee_number": "hr",
    },
    "time_entry": {"hours": "psa", "date": "psa", "billable": "psa", "approved": "psa", "notes": "psa"},
    "expense": {"amount": "psa", "date": "psa", "category": "psa", "billable": "psa"},
}


def match_keys_for(entity: str, chosen: dict | None = None) -> list[MatchKey]:
    """The keys a flow matches `entity` on: the ones it chose (Flow.match_keys), else the entity's defaults."""
    spec = ENTITIES[entity]
    names = (chosen or {}).get(entity) or spec.default_match
    return [spec.match_keys[name] for name in names if name in spec.match_keys]


def field_owner(entity: str, field_name: str, overrides: dict[tuple[str, str], str]) -> str | None:
    return overrides.get((entity, field_name)) or DEFAULT_OWNERS.get(entity, {}).get(field_name)
