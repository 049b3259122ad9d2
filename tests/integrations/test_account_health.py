"""Delivery health written back to CRM accounts, after the firm's approved time ran: every account's fields in the
CRM sandbox equal figures computed from the firm's own time entries, and equal the margin dashboard's; a second run
writes nothing; a customer without a CRM account and an account the CRM refuses are exceptions a person sees."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

import pytest
from django.db import connection

from connectors.account_fields import number_value
from connectors.sandbox.firm import Firm
from integrations import selectors
from integrations.models import Customer, ExternalRef, Flow, SyncException, SyncRun
from integrations.services.account_health import FIGURES, account_health_fields_set, account_health_step
from integrations.services.connections import connector_for
from integrations.services.flows import template_install
from tests.integrations.conftest import make_connection
from tests.integrations.firm_state import hours_of
from tests.integrations.test_approved_time import run_to_end
from tests.support import vendor_sandboxes

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(600)]

# Time through the whole of January 2023 and into February: a last complete month and a month to date.
FIRM = dict(time_entries=2900, expenses=60)
LAST, CURRENT = date(2023, 1, 1), date(2023, 2, 1)
CENT = Decimal("0.01")
CRMS = ("salesforce", "hubspot", "dynamics365")


@pytest.fixture(scope="module")
def firm_systems():
    with vendor_sandboxes(("kantata", "netsuite", *CRMS), **FIRM) as running:
        yield running


@pytest.fixture
def systems(firm_systems, settings):
    settings.CONNECTOR_ALLOWED_HOSTS = [f"127.0.0.1:{s.port}" for s in firm_systems.values()]
    settings.CONNECTOR_RATE_PER_SECOND = 500.0
    for sandbox in firm_systems.values():
        sandbox.reset()
    yield firm_systems
    for sandbox in firm_systems.values():
        sandbox.reset()


def workspace(world):
    from tenants.models import Client

    connection.set_schema_to_public()
    client = Client.objects.get(pk=world.clients["wingtip"].pk)
    client.plan = client.partner.plans.order_by("-max_connections").first()
    client.save(update_fields=["plan"])
    connection.set_tenant(client)


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def firm_figures(firm: Firm) -> dict[str, dict[str, object]]:
    """Customer name -> figure key -> value, from the firm alone: approved time on projects the ERP holds, by a
    person with a cost rate (what approved-time-to-invoice books), per customer and month, in its project's currency."""
    in_erp = {p["code"] for p in firm.erp_projects()}
    projects = {p["code"]: p for p in firm.psa_projects()}
    sums: dict[tuple[str, str], list[Decimal]] = defaultdict(lambda: [Decimal(0)] * 3)
    currency: dict[str, str] = {}
    for entry in firm.time_entries():
        if not entry["approved"] or entry["project_code"] not in in_erp or entry["cost_rate"] is None:
            continue
        project = projects[entry["project_code"]]
        month = "last_month" if entry["date"].startswith("2023-01") else "month_to_date"
        hours = hours_of(entry["minutes"])
        totals = sums[(project["customer_name"], month)]
        totals[0] += hours
        totals[1] += hours * Decimal(entry["bill_rate"]) if entry["billable"] else Decimal(0)
        totals[2] += hours * Decimal(entry["cost_rate"])
        currency[project["customer_name"]] = entry["currency"]
    expected = {}
    for customer in firm.customers():
        name = customer["name"]
        values: dict[str, object] = {
            "delivery_last_month": "2023-01",
            "delivery_current_month": "2023-02",
            "delivery_currency": currency.get(name, customer["currency"]),
        }
        for month in ("last_month", "month_to_date"):
            hours, revenue, cost = sums.get((name, month), [Decimal(0)] * 3)
            values[f"delivery_hours_{month}"] = cents(hours)
            values[f"delivery_revenue_{month}"] = cents(revenue)
            values[f"delivery_cost_{month}"] = cents(cost)
            values[f"delivery_margin_{month}"] = cents(revenue - cost)
        expected[name] = values
    return expected


def crm_accounts(vendor: str, sandbox) -> dict[str, dict]:
    """Account name -> every field it holds, read from the CRM sandbox's own store."""
    app = sandbox.app
    if vendor == "salesforce":
        return {r["Name"]: r for r in app.org.records["Account"].values() if not r["IsDeleted"]}
    if vendor == "hubspot":
        return {r["properties"]["name"]: r["properties"] for r in app.portal.objects["companies"].values()}
    return {r["name"]: r for r in app.tables["accounts"].values()}


def written(vendor: str, sandbox, names: dict[str, str]) -> dict[str, dict[str, object]]:
    """Account name -> figure key -> value as the CRM holds it (numbers to the cent), for accounts given any."""
    kinds = {figure.key: figure.kind for figure in FIGURES}
    out = {}
    for account, fields in crm_accounts(vendor, sandbox).items():
        values = {
            key: number_value(fields.get(name)) if kinds[key] == "number" else fields.get(name)
            for key, name in names.items()
        }
        if any(value is not None for value in values.values()):
            out[account] = values
    return out


def install(systems, vendor: str) -> Flow:
    kantata = make_connection("kantata", systems["kantata"])
    netsuite = make_connection("netsuite", systems["netsuite"])
    crm = make_connection(vendor, systems[vendor])
    for flow in template_install(key="approved-time-to-invoice", connections={"psa": kantata, "erp": netsuite}):
        if flow.steps.exists():
            assert run_to_end(flow).status in (SyncRun.Status.SUCCEEDED, SyncRun.Status.PARTIAL)
    flows = template_install(key="account-health-to-crm", connections={"crm": crm})
    return next(f for f in flows if f.template_key == "account-health-to-crm/account-health")


@pytest.mark.parametrize("vendor", CRMS)
def test_every_accounts_figures_equal_the_firms_and_the_dashboards_and_a_rerun_writes_nothing(systems, world, vendor):
    workspace(world)
    flow = install(systems, vendor)
    names = {
        f.key: connector_for(account_health_step(flow).target_connection).account_field_name(f.key) for f in FIGURES
    }

    run = run_to_end(flow)

    assert run.status == SyncRun.Status.SUCCEEDED, run.error
    expected = firm_figures(Firm(**FIRM))
    assert written(vendor, systems[vendor], names) == expected
    assert (run.read, run.updated, run.unchanged, run.failed) == (len(expected), len(expected), 0, 0)
    assert run.records.count() == len(expected)
    assert "January 2023 and February 2023 to date" in run.error  # the run's note

    # The dashboard shows the same figures for every customer it lists, month by month and currency by currency.
    crm = written(vendor, systems[vendor], names)
    for month, suffix in ((LAST, "last_month"), (CURRENT, "month_to_date")):
        for currency in ("USD", "GBP", "EUR"):
            dashboard = selectors.margin_dashboard(months=1, end=month, currency=currency)
            assert dashboard["currency"] == currency
            assert dashboard["by_customer"]
            for row in dashboard["by_customer"]:
                account = crm[row["customer"]]
                assert account["delivery_currency"] == currency
                assert account[f"delivery_hours_{suffix}"] == cents(row["hours"]), row["customer"]
                assert account[f"delivery_revenue_{suffix}"] == cents(row["revenue"]), row["customer"]
                assert account[f"delivery_cost_{suffix}"] == cents(row["cost"]), row["customer"]
                assert account[f"delivery_margin_{suffix}"] == cents(row["margin"]), row["customer"]

    before = crm_accounts(vendor, systems[vendor])
    again = run_to_end(flow)
    assert (again.status, again.read, again.updated, again.unchanged) == (
        SyncRun.Status.SUCCEEDED,
        len(expected),
        0,
        len(expected),
    )
    assert crm_accounts(vendor, systems[vendor]) == before  # not one account touched, not one modstamp moved
    assert not SyncException.objects.filter(flow=flow).exists()


def test_a_customer_without_a_crm_account_and_an_account_the_crm_refuses_are_exceptions(systems, world):
    workspace(world)
    flow = install(systems, "salesforce")
    assert run_to_end(flow).status == SyncRun.Status.SUCCEEDED
    step = account_health_step(flow)
    unlinked, refused = Customer.objects.filter(
        pk__in=ExternalRef.objects.filter(connection=step.target_connection, entity="customer").values("record_id")
    ).order_by("name")[:2]
    ExternalRef.objects.filter(connection=step.target_connection, entity="customer", record_id=unlinked.pk).delete()
    # The CRM companies flow reads the account again (the push moved its modstamp), but neither its name nor its
    # website matches anyone's now.
    sandbox = systems["salesforce"]
    account = next(r for r in sandbox.app.org.records["Account"].values() if r["Name"] == unlinked.name)
    website = account["Website"]
    account.update(Name="Someone Else Entirely", Website=None)
    # A client admin maps the month to the account's currency, a restricted picklist: Salesforce refuses "2023-01".
    account_health_fields_set(step=step, fields={"delivery_last_month": "CurrencyIsoCode"})
    refused_account = ExternalRef.objects.get(connection=step.target_connection, record_id=refused.pk).external_id

    run = run_to_end(flow)

    assert run.status == SyncRun.Status.PARTIAL
    assert run.failed == run.read - run.updated - run.unchanged
    no_account = SyncException.objects.get(flow=flow, error_code="NO_CRM_ACCOUNT")
    assert no_account.subject == unlinked.name
    assert "no Salesforce account is linked to it" in no_account.message
    crm_refused = SyncException.objects.filter(flow=flow, error_code="CRM_REFUSED")
    assert refused.name in set(crm_refused.values_list("subject", flat=True))
    assert "restricted picklist" in crm_refused.get(subject=refused.name).message
    assert refused_account in crm_refused.get(subject=refused.name).message
    assert crm_refused.get(subject=refused.name).payload["CurrencyIsoCode"] == "2023-01"  # what it tried
    # The clerk's page says what happened and offers no retry of a stored record (the next run is the retry).
    from tests.support import NORTHWIND, browser_for

    connection.set_schema_to_public()
    admin = browser_for(world.user("admin@northwind.localhost"), host=NORTHWIND)
    shown = admin.get(f"/c/{world.clients['wingtip'].slug}/exceptions/{no_account.pk}/").content.decode()
    connection.set_tenant(world.clients["wingtip"])
    assert "no Salesforce account is linked to it" in shown and "Retry as is" not in shown

    # Put right: the mapping back to the flow's own field and the account linked again; the next run resolves both.
    account_health_fields_set(step=step, fields={})
    # The CRM companies flow took the renamed account for a new customer: a person links it to the right one.
    account.update(Name=unlinked.name, Website=website)
    ExternalRef.objects.filter(connection=step.target_connection, external_id=account["Id"]).update(
        record_id=unlinked.pk
    )
    fixed = run_to_end(flow)
    assert fixed.status == SyncRun.Status.SUCCEEDED, fixed.error
    assert not SyncException.objects.filter(flow=flow, status__in=["open", "retrying"]).exists()
    assert run_to_end(flow).updated == 0

    # A customer's delivery leaves the books (here: its time turns out to be a test's): its account is set to zero,
    # not left holding last run's figures.
    from integrations.models import Environment, TimeEntry

    TimeEntry.objects.filter(project__customer=refused).update(environment=Environment.SANDBOX)
    emptied = run_to_end(flow)
    assert (emptied.updated, emptied.failed) == (1, 0)
    account = next(r for r in sandbox.app.org.records["Account"].values() if r["Id"] == refused_account)
    assert account["Delivery_Hours_Last_Month__c"] == 0 and account["Delivery_Margin_Month_To_Date__c"] == 0
    assert account["Delivery_Last_Month__c"] == "2023-01"
    assert run_to_end(flow).updated == 0


def test_a_client_admin_sees_the_fields_and_maps_figures_to_fields_the_crm_has(systems, world):
    from integrations.models import AuditEvent
    from tests.support import NORTHWIND, browser_for

    workspace(world)
    crm = make_connection("salesforce", systems["salesforce"])
    flow = next(
        f
        for f in template_install(key="account-health-to-crm", connections={"crm": crm})
        if f.template_key.endswith("/account-health")
    )
    connection.set_schema_to_public()
    admin = browser_for(world.user("admin@northwind.localhost"), host=NORTHWIND)
    page = f"/c/{world.clients['wingtip'].slug}/flows/{flow.pk}/crm-fields"

    shown = admin.get(page).content.decode()
    assert shown.count('data-testid="figure-') == len(FIGURES)
    assert "Delivery_Margin_Last_Month__c" in shown and "Created on the next run" in shown
    detail = admin.get(f"/c/{world.clients['wingtip'].slug}/flows/{flow.pk}/").content.decode()
    assert "Fields it writes" in detail and "Fields it maps" not in detail

    choices = {figure.key: salesforce_field(figure.key) for figure in FIGURES}
    choices.update(delivery_currency="Description", delivery_cost_last_month="-")
    saved = admin.post(page, choices)
    assert saved.status_code == 302

    connection.set_tenant(world.clients["wingtip"])
    step = account_health_step(flow)
    assert step.options["fields"] == {"delivery_currency": "Description", "delivery_cost_last_month": ""}
    assert AuditEvent.objects.filter(action="flow.account_fields_mapped", target_id=str(flow.pk)).exists()
    connection.set_schema_to_public()
    again = admin.get(page).content.decode()
    assert "Not written" in again


def test_beat_runs_the_flow_every_day_as_a_scheduled_run(systems, world):
    from django_celery_beat.models import PeriodicTask

    from integrations.services.runs import run_slice
    from integrations.tasks import flow_scheduled

    workspace(world)
    crm = make_connection("hubspot", systems["hubspot"])
    flow = next(
        f
        for f in template_install(key="account-health-to-crm", connections={"crm": crm})
        if f.template_key.endswith("/account-health")
    )
    schema = connection.schema_name
    entry = PeriodicTask.objects.get(name=f"{schema}:flow-{flow.pk}")
    assert (entry.task, entry.interval.every, entry.enabled) == ("integrations.tasks.flow_scheduled", 86400, True)

    run = SyncRun.objects.get(pk=flow_scheduled(flow.pk))
    assert run_slice(run_id=run.pk, slice_seconds=60) == "done"
    run.refresh_from_db()
    assert (run.trigger, run.status) == ("schedule", SyncRun.Status.SUCCEEDED)
    # No time in the books yet: no account is touched (none is filled with zeros it never had).
    assert (run.read, run.updated) == (0, 0)
    assert run.records.count() == 0


def salesforce_field(key: str) -> str:
    """The field Salesforce's connector names for a figure (its spelling needs no connection)."""
    from connectors.salesforce.client import SalesforceConnector

    return SalesforceConnector.account_field_name(None, key)


def test_the_flow_is_captured_as_a_template_and_has_no_mapping_editor(systems, world):
    from integrations.partner_templates.workspace import template_capture
    from tests.support import NORTHWIND, browser_for

    workspace(world)
    crm = make_connection("dynamics365", systems["dynamics365"])
    flow = next(
        f
        for f in template_install(key="account-health-to-crm", connections={"crm": crm})
        if f.template_key.endswith("/account-health")
    )
    spec = template_capture(flow=flow)
    main = next(f for f in spec["flows"] if f["key"].endswith("account-health"))
    assert (main["entity"], main["steps"][0]["entity"], main["steps"][0]["object"]) == (
        "account_health",
        "account_health",
        "accounts",
    )
    connection.set_schema_to_public()
    admin = browser_for(world.user("admin@northwind.localhost"), host=NORTHWIND)
    assert admin.get(f"/c/{world.clients['wingtip'].slug}/mappings/{flow.inbound_mapping_id}/").status_code == 404
