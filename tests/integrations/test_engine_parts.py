"""The engine's page units on their own, without the orchestrator: validation before any write, the page's
outcome, target writes held by a duplicate, and the set-based writes they stand on."""

from datetime import date, datetime
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.utils import timezone

from connectors.base import RejectedRecord, SourceRecord
from integrations.engine import bulk
from integrations.engine.issues import ExceptionBook
from integrations.engine.items import Item
from integrations.engine.outcome import PageOutcome
from integrations.engine.store import CanonicalStore, Planned
from integrations.engine.validation import PageValidator, leavers_with_later_work
from integrations.models import (
    Customer,
    ExternalRef,
    Flow,
    FlowStep,
    Mapping,
    Project,
    Rate,
    Resource,
    RunRecord,
    SyncException,
    SyncRun,
    TimeEntry,
)
from tests.integrations.conftest import make_connection


def _address(url: str):
    return type("Sandbox", (), {"url": url})()


def _flow_and_run(billing, name: str, object_name: str, entity: str) -> tuple[Flow, SyncRun]:
    """A flow reading `object_name` from the PSA, and a run of it."""
    mapping = Mapping.objects.create(name=name)
    flow = Flow.objects.create(
        name=name, source_connection=billing.psa, source_object=object_name, entity=entity, inbound_mapping=mapping
    )
    return flow, SyncRun.objects.create(flow=flow)


def _entry_item(external_id: str, entry: TimeEntry) -> Item:
    item = Item(source=SourceRecord(external_id=external_id, updated_at="2026-03-02T00:00:00Z", data={}))
    item.plan = {"time_entry": Planned("time_entry", entry, new=True)}
    return item


@pytest.fixture
def billing(in_workspace):
    """A PSA source, an ERP target step that bills, a customer's project and two people (one with a cost rate)."""
    psa = make_connection("kantata", _address("https://api.mavenlink.com"), name="Parts PSA")
    erp = make_connection("netsuite", _address("https://1.suitetalk.api.netsuite.com"), name="Parts ERP")
    customer = Customer.objects.create(name="Parts Holdings")
    billed = Project.objects.create(code="PRJ-PARTS-1", name="Billed", customer=customer)
    unknown = Project.objects.create(code="PRJ-PARTS-2", name="Not in the ERP", customer=customer)
    ExternalRef.objects.create(connection=erp, object="job", external_id="901", entity="project", record_id=billed.pk)
    rated = Resource.objects.create(email="rated@parts.example", first_name="Rae")
    Rate.objects.create(kind=Rate.Kind.COST, resource=rated, amount=Decimal("80.00"), effective_from=date(2026, 1, 1))
    unrated = Resource.objects.create(email="unrated@parts.example", first_name="Uma")
    step = FlowStep(pk=10_001, name="Invoice in the ERP", action=FlowStep.Action.INVOICE, entity="invoice")
    step.target_connection = erp
    writers = {step.pk: SimpleNamespace(target=SimpleNamespace(label="NetSuite"))}
    store = CanonicalStore(source_connection=psa, category="psa")
    return SimpleNamespace(
        psa=psa, store=store, step=step, writers=writers, billed=billed, unknown=unknown, rated=rated, unrated=unrated
    )


@pytest.mark.django_db
def test_validation_parks_time_on_a_project_the_erp_lacks_and_for_a_person_without_a_cost_rate(billing):
    on = date(2026, 3, 2)
    good = _entry_item("T1", TimeEntry(project=billing.billed, resource=billing.rated, date=on, hours=1))
    elsewhere = _entry_item("T2", TimeEntry(project=billing.unknown, resource=billing.rated, date=on, hours=1))
    no_rate = _entry_item("T3", TimeEntry(project=billing.billed, resource=billing.unrated, date=on, hours=1))
    validator = PageValidator(steps=[billing.step], writers=billing.writers, store=billing.store, rules=[])

    validator.validate([good, elsewhere, no_rate])

    assert good.problems == [] and good.plan["time_entry"].record.cost_rate == Decimal("80.00")
    assert "cost_rate" in good.plan["time_entry"].changed
    assert [(p.code, p.message) for p in elsewhere.problems] == [
        ("PROJECT_NOT_IN_TARGET", "project code not found in NetSuite")
    ]
    assert [(p.code, p.message) for p in no_rate.problems] == [
        ("MISSING_COST_RATE", "Uma has no cost rate on 2 Mar 2026")
    ]


@pytest.mark.django_db
def test_a_person_who_left_with_time_booked_after_their_last_day_is_found_once(billing):
    billing.unrated.status, billing.unrated.termination_date = "terminated", date(2026, 2, 27)
    billing.unrated.save()
    for day in (date(2026, 2, 26), date(2026, 3, 3), date(2026, 3, 4)):
        TimeEntry.objects.create(project=billing.billed, resource=billing.unrated, date=day, hours=2)
    item = Item(source=SourceRecord(external_id="P1", updated_at="", data={}), records={"resource": billing.unrated})
    stayed = Item(source=SourceRecord(external_id="P2", updated_at="", data={}), records={"resource": billing.rated})

    found = leavers_with_later_work([item, stayed])

    assert [(found_item, entry.date) for found_item, entry in found] == [(item, date(2026, 3, 3))]


@pytest.mark.django_db
def test_a_page_outcome_counts_every_record_read_once_and_moves_the_cursor_with_them(billing):
    flow, run = _flow_and_run(billing, "Parts time", "time_entries", "time_entry")
    synced = Item(source=SourceRecord(external_id="T1", updated_at="", data={}), created=True)
    failed = Item(source=SourceRecord(external_id="T2", updated_at="", data={}), failed=True)
    book = ExceptionBook(flow=flow, run=run, source_system="kantata")
    book.fail(object_name="time_entries", external_id="T2", code="BAD_VALUE", message="Hours “x” is not valid")
    failed.book_key = ("time_entries", "T2")
    malformed = RejectedRecord(external_id="T3", reason="not JSON", raw="{")
    book.fail(object_name="time_entries", external_id="T3", code="MALFORMED_RECORD", message="Record T3 is unreadable")

    tally = PageOutcome(flow=flow, run=run, store=billing.store, rules=[]).finish(
        [synced, failed], [malformed], book, "2026-03-02T00:00:00Z"
    )

    assert (tally.read, tally.created, tally.failed) == (3, 1, 2)
    run.refresh_from_db()
    assert (run.read, run.created, run.failed) == (3, 1, 2)
    outcomes = dict(RunRecord.objects.filter(run=run).values_list("external_id", "outcome"))
    assert outcomes == {"T1": "created", "T2": "exception", "T3": "exception"}
    exception = SyncException.objects.get(flow=flow, external_id="T2")
    assert RunRecord.objects.get(run=run, external_id="T2").exception_id == exception.pk
    assert Flow.objects.get(pk=flow.pk).cursor == "2026-03-02T00:00:00Z"


@pytest.mark.django_db
def test_bulk_update_writes_each_kind_of_value_as_a_save_would(billing):
    first = TimeEntry.objects.create(project=billing.billed, resource=billing.rated, date=date(2026, 3, 2), hours=1)
    second = TimeEntry.objects.create(project=billing.billed, resource=billing.rated, date=date(2026, 3, 3), hours=2)
    first.hours, first.notes, first.cost_rate, first.date = (
        Decimal("7.25"),
        "tab\there",
        Decimal("81.50"),
        date(2026, 4, 1),
    )
    second.hours, second.notes, second.cost_rate, second.project = Decimal("0.5"), "", None, billing.unknown
    second.project_id = billing.unknown.pk

    bulk.update([first, second], ["hours", "notes", "cost_rate", "date", "project"])

    again = {entry.pk: entry for entry in TimeEntry.objects.filter(pk__any=[first.pk, second.pk])}
    assert (again[first.pk].hours, again[first.pk].notes, again[first.pk].cost_rate) == (
        Decimal("7.25"), "tab\there", Decimal("81.50"),
    )  # fmt: skip
    assert again[first.pk].date == date(2026, 4, 1)
    assert (again[second.pk].hours, again[second.pk].cost_rate, again[second.pk].project_id) == (
        Decimal("0.50"), None, billing.unknown.pk,
    )  # fmt: skip
    assert again[first.pk].updated_at > timezone.now() - timezone.timedelta(minutes=1)


@pytest.mark.django_db
def test_copy_in_writes_json_and_moments_as_django_would(billing):
    flow, run = _flow_and_run(billing, "Parts copy", "time_entries", "time_entry")
    seen = datetime(2026, 3, 2, 9, 30, tzinfo=timezone.get_current_timezone())
    ids = bulk.copy_in(
        SyncException,
        [
            {
                "flow_id": flow.pk,
                "first_run_id": run.pk,
                "last_run_id": run.pk,
                "object": "time_entries",
                "external_id": "J1",
                "error_code": "BAD_VALUE",
                "message": "a message",
                "payload": {"data": {"note": "line\nbreak \\ and “quotes”", "hours": 1.5, "tags": [None, True]}},
                "fix_actions": [{"action": "retry"}],
                "last_seen_at": seen,
                "created_at": seen,
            }
        ],
        with_ids=True,
    )
    (row,) = SyncException.objects.filter(pk__any=ids)
    assert row.payload == {"data": {"note": "line\nbreak \\ and “quotes”", "hours": 1.5, "tags": [None, True]}}
    assert row.fix_actions == [{"action": "retry"}] and row.last_seen_at == seen


@pytest.mark.django_db
def test_any_lookup_matches_as_in_does_and_an_empty_list_matches_nothing(billing):
    codes = ["PRJ-PARTS-1", "PRJ-PARTS-2", "PRJ-NOWHERE"]
    assert set(Project.objects.filter(code__any=codes)) == set(Project.objects.filter(code__in=codes))
    assert list(Project.objects.filter(code__any=[])) == []
    assert set(Project.objects.filter(customer__any=[billing.billed.customer_id])) == {billing.billed, billing.unknown}


class RecordingWriter:
    """A step writer that records what it was asked to write and says each group was created (the target
    itself is exercised through StepWriter in the flows' end-to-end tests)."""

    def __init__(self):
        self.target = SimpleNamespace(label="NetSuite", vendor="netsuite")
        self.asked: list = []

    def write(self, ready):
        from integrations.engine.writer import Written

        self.asked += [record for _, record in ready]
        return [Written(items=group, record=record, action="created", target_id="77") for group, record in ready]


@pytest.mark.django_db
def test_a_write_held_by_a_duplicate_in_the_target_parks_its_records_and_the_rest_are_written(billing):
    from integrations.engine import parking
    from integrations.engine.failures import Failures
    from integrations.engine.targets import TargetWrites

    flow, run = _flow_and_run(billing, "Parts customers", "customers", "customer")
    erp = billing.step.target_connection
    step = FlowStep.objects.create(
        flow=flow, name="Customer in the ERP", entity="customer", target_connection=erp, target_object="customer"
    )
    held, free = Customer.objects.create(name="Held Ltd"), Customer.objects.create(name="Free Ltd")
    cause = parking.duplicate_cause(connection_id=erp.pk, entity="customer", record_id=held.pk, external_id="5")
    blocker = SyncException.objects.create(
        flow=flow, object="customer", external_id="5", error_code="DUPLICATE_IN_TARGET", cause=cause,
        message="Held Ltd is twice in NetSuite",
    )  # fmt: skip
    items = []
    for external_id, record in (("C1", held), ("C2", free)):
        item = Item(source=SourceRecord(external_id=external_id, updated_at="", data={}))
        item.records, item.changed_entities = {"customer": record}, {"customer"}
        items.append(item)
    writer = RecordingWriter()
    failures = Failures(flow=flow, run=run, source=SimpleNamespace(vendor="kantata", label="Kantata"),
                        store=billing.store, rules=[], billing_target=None)  # fmt: skip
    book = ExceptionBook(flow=flow, run=run, source_system="kantata")

    TargetWrites(steps=[step], writers={step.pk: writer}, failures=failures).write(items, book)

    assert writer.asked == [free]
    assert (items[0].failed, items[0].parked_on) == (True, blocker.pk)
    assert items[1].targets == [
        {"step": "Customer in the ERP", "system": "NetSuite", "object": "customer", "action": "created", "id": "77"}
    ]
