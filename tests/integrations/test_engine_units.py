"""The engine's parts on their own: mapping transforms, field ownership in the canonical store, record checks."""

from datetime import date
from decimal import Decimal

import pytest
from django.db import models

from connectors.base import SourceRecord
from integrations.engine.mapping import MappingContext, Ref, Rule, apply_mapping, validate_rule
from integrations.engine.orchestrator import Item
from integrations.engine.store import CanonicalStore
from integrations.models import Customer, Resource
from tests.integrations.conftest import make_connection


def test_transforms_cover_the_library():
    ctx = MappingContext(
        value_maps={"terms": {"Time and materials": "Net 30"}}, value_map_names={"terms": "Payment terms"}
    )
    rules = [
        Rule("a.name", ("first", "last"), ({"name": "concat", "separator": " "}, {"name": "upper"})),
        Rule("a.hours", ("minutes",), ({"name": "minutes_to_hours"},)),
        Rule("a.amount", ("cents",), ({"name": "cents_to_amount"},)),
        Rule(
            "a.cents", ("price",), ({"name": "number", "thousands": ".", "decimal": ","}, {"name": "amount_to_cents"})
        ),
        Rule("a.day", ("when",), ({"name": "date", "format": "%m/%d/%Y"},)),
        Rule("a.at", ("stamp",), ({"name": "datetime", "tz": "Europe/Amsterdam"},)),
        Rule("a.terms", ("terms",), ({"name": "lookup", "value_map": "terms"},)),
        Rule("a.city", ("address",), ({"name": "split", "separator": ",", "index": 1},)),
        Rule("a.code", (), ({"name": "default", "value": "X"},)),
        Rule("a.ref", ("workspace_id",), ({"name": "ref", "entity": "project", "object": "workspaces"},)),
    ]
    record = {
        "first": " Ada",
        "last": "Lovelace",
        "minutes": 90,
        "cents": "12345",
        "price": "1.234,50",
        "when": "03/06/2026",
        "stamp": "2026-03-06T10:00:00Z",
        "terms": "Time and materials",
        "address": "1 Main St, Springfield",
        "workspace_id": 7,
    }
    result = apply_mapping(rules, record, ctx)
    assert result.ok, result.problems
    values = result.values
    assert values["a.name"] == "ADA LOVELACE"
    assert values["a.hours"] == Decimal("1.50")
    assert values["a.amount"] == Decimal("123.45")
    assert values["a.cents"] == 123450
    assert values["a.day"] == date(2026, 3, 6)
    assert values["a.at"].hour == 11
    assert values["a.terms"] == "Net 30"
    assert values["a.city"] == "Springfield"
    assert values["a.code"] == "X"
    assert values["a.ref"] == Ref("project", "workspaces", "7")


def test_problems_say_what_to_fix_in_words():
    ctx = MappingContext(value_maps={"terms": {}}, value_map_names={"terms": "Payment terms"})
    rules = [
        Rule("a.terms", ("terms",), ({"name": "lookup", "value_map": "terms"},), label="Payment terms"),
        Rule("a.day", ("when",), ({"name": "date"},), label="Date"),
        Rule("a.email", ("email",), (), required=True, label="Work email"),
    ]
    result = apply_mapping(rules, {"terms": "Net 99", "when": "yesterday"}, ctx)
    messages = [p.message for p in result.problems]
    assert "Payment terms: “Net 99” has no entry in the value map “Payment terms”" in messages
    assert "Date: “yesterday” is not a date" in messages
    assert "Work email is missing" in messages
    assert result.problems[0].fix == {"action": "map_value", "value_map": "terms", "value": "Net 99"}


def test_rules_name_only_known_transforms():
    assert validate_rule(Rule("a.x", ("x",), ({"name": "eval"},))) == ["Unknown transform “eval”."]
    assert validate_rule(Rule("a.x", ("x",), ({"name": "lookup"},))) == ["A lookup needs a value map."]


def _page(store, object_name: str, primary: str, records: list[tuple[str, dict]]) -> list[Item]:
    """A page through the store as the orchestrator takes it: plan the whole page, then apply what is going."""
    items = [
        Item(source=SourceRecord(external_id=external_id, updated_at="", data={}), entities=entities)
        for external_id, entities in records
    ]
    store.plan(items, primary=primary, object_name=object_name)
    store.apply([item for item in items if not item.problems], primary=primary, object_name=object_name)
    return items


@pytest.mark.django_db
def test_a_field_owned_by_another_system_is_kept_and_the_conflict_recorded(in_workspace):
    Resource.objects.create(email="ann@example.com", first_name="Ann", department="Finance")
    psa = make_connection("kantata", type("S", (), {"url": "https://api.mavenlink.com"})())
    store = CanonicalStore(source_connection=psa, category="psa")
    (item,) = _page(
        store,
        "users",
        "resource",
        [("42", {"resource": {"email": "ann@example.com", "first_name": "Anne", "practice": "Finance Advisory"}})],
    )
    ann = Resource.objects.get(email="ann@example.com")
    assert ann.first_name == "Ann"  # HR owns the person's name
    assert ann.practice == "Finance Advisory"  # nobody owns practice by default: the PSA may set it
    assert [(c.field, c.owner, c.current, c.proposed) for c in item.conflicts] == [("first_name", "hr", "Ann", "Anne")]


@pytest.mark.django_db
def test_two_source_records_for_one_canonical_record_are_an_exception_not_a_crash(in_workspace):
    erp = make_connection("netsuite", type("S", (), {"url": "https://1.suitetalk.api.netsuite.com"})())
    store = CanonicalStore(source_connection=erp, category="erp")
    (first,) = _page(store, "customer", "customer", [("C1", {"customer": {"name": "Acme"}})])
    assert not first.problems
    (second,) = _page(store, "customer", "customer", [("C2", {"customer": {"name": "Acme"}})])
    assert [p.code for p in second.problems] == ["DUPLICATE_IN_SOURCE"]
    assert "is twice in this system" in second.problems[0].message
    assert second.problems[0].value["twin"] == "C1"


@pytest.mark.django_db
def test_twins_in_one_page_are_found_before_anything_is_written(in_workspace):
    """Two records of one page that name one customer: the first creates it, the second is its twin."""
    erp = make_connection("netsuite", type("S", (), {"url": "https://1.suitetalk.api.netsuite.com"})())
    store = CanonicalStore(source_connection=erp, category="erp")
    first, second = _page(
        store, "customer", "customer", [("C1", {"customer": {"name": "Acme"}}), ("C2", {"customer": {"name": "ACME "}})]
    )
    assert not first.problems and first.plan["customer"].new
    assert [p.code for p in second.problems] == ["DUPLICATE_IN_SOURCE"]
    assert second.problems[0].value["twin"] == "C1"
    assert Customer.objects.count() == 1


def test_yes_or_no_gives_a_word_when_told_which():
    status = [Rule("resource.status", ["Terminated"], [{"name": "boolean", "yes": "terminated", "no": "active"}])]
    flag = [Rule("resource.billable", ["Billable"], [{"name": "boolean"}])]
    ctx = MappingContext()
    assert apply_mapping(status, {"Terminated": True}, ctx).values == {"resource.status": "terminated"}
    assert apply_mapping(status, {"Terminated": "0"}, ctx).values == {"resource.status": "active"}
    assert apply_mapping(status, {"Terminated": None}, ctx).values == {"resource.status": None}
    assert apply_mapping(flag, {"Billable": "yes"}, ctx).values == {"resource.billable": True}


def test_split_with_the_rest_keeps_every_part_from_the_one_asked():
    ctx = MappingContext()
    rest = Rule("p.name", ("title",), ({"name": "split", "separator": " ", "index": 1, "rest": True},))
    assert apply_mapping([rest], {"title": "PRJ-101 Acme ERP Selection"}, ctx).values == {
        "p.name": "Acme ERP Selection"
    }
    assert apply_mapping([rest], {"title": "PRJ-101"}, ctx).values == {"p.name": None}


def test_a_psa_project_read_back_has_the_code_and_name_lead_to_project_wrote():
    """Lead-to-project titles PSA projects "<code> <name>"; the PSA projects reference flow must read
    the same name back, or every project the CRM named conflicts with its own PSA copy."""
    from integrations.catalog import PSA_PROJECTS, TEMPLATES

    (psa_step,) = [step for spec in TEMPLATES["lead-to-project"].flows for step in spec.steps if step.target == "psa"]
    title_rule = next(Rule(*rule) for rule in psa_step.rules if rule[0] == "title")
    ctx = MappingContext()
    canonical = {"code": "PRJ-155", "name": "Oceanic Health Cost Reduction"}
    written = apply_mapping([title_rule], canonical, ctx).values
    read_back = apply_mapping([Rule(*rule) for rule in PSA_PROJECTS.rules], written, ctx).values
    assert read_back == {"project.code": "PRJ-155", "project.name": "Oceanic Health Cost Reduction"}


@pytest.mark.parametrize("entity", ["customer", "opportunity", "project", "resource", "time_entry", "expense"])
def test_a_planned_record_is_refused_for_what_full_clean_refuses(entity):
    """The store checks a planned record without Model.full_clean (too slow per record); it must refuse the same."""
    from django.core.exceptions import ValidationError

    from integrations.engine.entities import ENTITIES
    from integrations.engine.records import fields_of, invalid

    model = ENTITIES[entity].model
    keys = [f.name for f in model._meta.concrete_fields if isinstance(f, models.ForeignKey)]

    def full_clean(record) -> dict:
        try:
            record.full_clean(exclude=keys, validate_unique=False, validate_constraints=False)
        except ValidationError as error:
            return error.message_dict
        return {}

    blank = model()
    assert invalid(blank, fields_of(model), set(), new=True) == full_clean(model())
    text = next(f for f in fields_of(model).checked if isinstance(f, models.CharField) and f.max_length)
    too_long = model(**{text.name: "x" * (text.max_length + 1)})
    found = invalid(too_long, fields_of(model), {text.name}, new=True)
    assert text.name in found and found == full_clean(model(**{text.name: "x" * (text.max_length + 1)}))


@pytest.mark.django_db
def test_an_invoice_marked_while_its_rebuild_was_written_stays_pending(in_workspace):
    """A workspace's time and expenses runs: one writes an invoice it rebuilt while the other marks it with new
    time. The write must not clear the mark, or that time never reaches the ERP."""
    from integrations.engine import invoicing
    from integrations.models import Invoice, Project, TimeEntry

    customer = Customer.objects.create(name="Marks & Co")
    project = Project.objects.create(code="PRJ-MARK", name="Marks", customer=customer)
    entry = TimeEntry(project=project, date=date(2024, 3, 4))
    invoicing.invoices_mark([entry])
    (loaded,) = [invoice for invoice in invoicing.invoices_pending() if invoice.project_id == project.pk]
    invoicing.invoices_mark([TimeEntry(project=project, date=date(2024, 3, 5))])  # the other run's page
    invoicing.invoices_written([loaded])
    assert Invoice.objects.get(pk=loaded.pk).needs_sync  # the next flush sends it again, with that time
    (again,) = [invoice for invoice in invoicing.invoices_pending() if invoice.project_id == project.pk]
    invoicing.invoices_written([again])
    assert not Invoice.objects.get(pk=loaded.pk).needs_sync


@pytest.mark.django_db
def test_run_records_follow_their_run_and_exception_without_database_foreign_keys(in_workspace):
    """Run records carry no database-side foreign keys (a check per row at every commit): deleting a run
    still deletes its records, and deleting an exception still clears the records that named it."""
    from integrations.models import RunRecord, SyncException, SyncRun
    from integrations.services.flows import template_install
    from tests.integrations.test_alerts import main_flow, unreachable

    connections = {
        "psa": unreachable("kantata", "Kantata (cascade)"),
        "erp": unreachable("netsuite", "NetSuite (cascade)"),
    }
    flow = main_flow(template_install(key="approved-time-to-invoice", connections=connections), "approved-time")
    run = SyncRun.objects.create(flow=flow)
    exception = SyncException.objects.create(
        flow=flow, source_system="kantata", object="time_entries", error_code="REQUIRED_MISSING", message="m"
    )
    kept = RunRecord.objects.create(run=run, flow=flow, object="time_entries", outcome="exception", exception=exception)
    exception.delete()
    kept.refresh_from_db()
    assert kept.exception_id is None
    run.delete()
    assert not RunRecord.objects.filter(pk=kept.pk).exists()
