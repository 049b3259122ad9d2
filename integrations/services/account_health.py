"""Delivery health written back to CRM accounts: per customer, the hours, revenue, cost and margin of the last
complete month and of the month to date, on fields of the customer's CRM account that the flow creates or that a
client admin maps to fields the CRM already has.

A flow of this kind is marked by its entity (`ACCOUNT_HEALTH`): runs start, queue, slice, count and audit like every
other flow's (services.runs), but the work is this module's, not the sync engine's. The figures are the margin
dashboard's own (selectors.dashboards.margin_rows, folded by customer_margins), in the currency most of the
customer's hours were logged in, rounded to the cent.

The months follow the dashboards: the month of the newest Production time entry is "month to date", the one before
it the "last complete month"; in a firm that logs time every day these are this month and the last. A run reads what
the CRM holds, writes only the accounts whose values differ, and overwrites the fields every month: a second run
with nothing new writes nothing. An account whose customer has no delivery in either month is left blank, unless it
holds figures from an earlier month: those are set to zero, never left stale.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.db import transaction
from django.utils import timezone

from connectors.account_fields import CENT, AccountField, AccountUpdate, number_value
from integrations.catalog.templates import ACCOUNT_HEALTH_ENTITY
from integrations.engine.items import Tally
from integrations.models import Customer, ExternalRef, Flow, FlowStep, RunRecord, SyncException, SyncRun
from integrations.selectors.dashboards import customer_margins, margin_rows, time_entries_latest
from integrations.selectors.labels import vendor_label
from integrations.services.audit import audit_record
from portal.months import month_last_day, month_of, month_start

ACCOUNT_HEALTH = ACCOUNT_HEALTH_ENTITY  # Flow.entity and FlowStep.entity of this kind of flow

ErrorCode = SyncException.ErrorCode


@dataclass(frozen=True)
class Figure:
    key: str  # the field's key; each CRM spells its name its own way (AccountFields.account_field_name)
    label: str
    kind: str  # "number" | "text"
    description: str


FIGURES = (
    Figure("delivery_last_month", "Last complete month", "text", "The month the “last month” figures are for."),
    Figure("delivery_hours_last_month", "Delivered hours, last month", "number", "Hours logged on the account."),
    Figure("delivery_revenue_last_month", "Revenue, last month", "number", "Billable hours at bill rates."),
    Figure("delivery_cost_last_month", "Cost, last month", "number", "All hours at cost rates."),
    Figure("delivery_margin_last_month", "Margin, last month", "number", "Revenue minus cost."),
    Figure("delivery_current_month", "Month to date", "text", "The month the “month to date” figures are for."),
    Figure("delivery_hours_month_to_date", "Delivered hours, month to date", "number", "Hours logged so far."),
    Figure("delivery_revenue_month_to_date", "Revenue, month to date", "number", "Billable hours at bill rates."),
    Figure("delivery_cost_month_to_date", "Cost, month to date", "number", "All hours at cost rates."),
    Figure("delivery_margin_month_to_date", "Margin, month to date", "number", "Revenue minus cost."),
    Figure("delivery_currency", "Delivery currency", "text", "The currency of the revenue, cost and margin."),
)
BY_KEY = {figure.key: figure for figure in FIGURES}


class AccountHealthNotReady(Exception):
    """The flow cannot run as set up (no CRM target); the message says what to do."""


def account_health_step(flow: Flow) -> FlowStep | None:
    return flow.steps.filter(entity=ACCOUNT_HEALTH).select_related("target_connection").first()


def field_names(*, step: FlowStep, connector) -> dict[str, str]:
    """Figure key -> the CRM field it is written to: the client admin's mapping, else the vendor's own spelling of a
    custom field for it. A figure mapped to "" is not written."""
    mapped = (step.options or {}).get("fields") or {}
    names = {}
    for figure in FIGURES:
        name = mapped.get(figure.key, connector.account_field_name(figure.key))
        if name:
            names[figure.key] = name
    return names


@dataclass(frozen=True)
class Periods:
    last_month: date  # first day of the last complete month
    current_month: date  # first day of the month to date

    @classmethod
    def now(cls) -> Periods:
        current = month_start(time_entries_latest() or timezone.localdate())
        return cls(last_month=month_start(current - timedelta(days=1)), current_month=current)


def _money(value) -> Decimal:
    return Decimal(value or 0).quantize(CENT, rounding=ROUND_HALF_UP)


def account_health_figures(*, periods: Periods) -> dict[int, dict[str, object]]:
    """Customer id -> figure key -> value, for every customer with time in either month: the dashboard's figures
    (margin_rows folded by customer_margins), in the currency most of the customer's hours of the two months were
    logged in, to the cent; margin is revenue minus cost, then rounded."""
    finish = month_last_day(periods.current_month)
    rows = margin_rows(start=periods.last_month, finish=finish)
    months = {"last_month": periods.last_month, "month_to_date": periods.current_month}
    by_month = {
        suffix: customer_margins(rows=[r for r in rows if month_of(r["month"]) == first])
        for suffix, first in months.items()
    }
    customers = {pk for folded in by_month.values() for pk in folded if pk is not None}
    figures: dict[int, dict[str, object]] = {}
    for pk in customers:
        hours: dict[str, Decimal] = {}
        for folded in by_month.values():
            for currency, values in folded.get(pk, {}).items():
                hours[currency] = hours.get(currency, Decimal(0)) + values["hours"]
        currency = sorted(hours, key=lambda code: (-hours[code], code))[0]
        figures[pk] = _values(by_month, pk, currency, periods)
    return figures


def _values(by_month: dict, pk: int | None, currency: str, periods: Periods) -> dict[str, object]:
    values: dict[str, object] = {
        "delivery_last_month": f"{periods.last_month:%Y-%m}",
        "delivery_current_month": f"{periods.current_month:%Y-%m}",
        "delivery_currency": currency,
    }
    for suffix, folded in by_month.items():
        got = folded.get(pk, {}).get(currency) or {}
        revenue, cost = Decimal(got.get("revenue") or 0), Decimal(got.get("cost") or 0)
        values[f"delivery_hours_{suffix}"] = _money(got.get("hours"))
        values[f"delivery_revenue_{suffix}"] = _money(revenue)
        values[f"delivery_cost_{suffix}"] = _money(cost)
        values[f"delivery_margin_{suffix}"] = _money(revenue - cost)
    return values


def _nothing_delivered(currency: str, periods: Periods) -> dict[str, object]:
    return _values({"last_month": {}, "month_to_date": {}}, None, currency, periods)


def account_health_push(*, run: SyncRun, connector_for) -> str:
    """Write the figures to every linked account whose values differ, as one run; returns the run's note.

    Connector errors (the CRM down, a field it will not create) propagate: services.runs fails the run with them."""
    flow = run.flow
    step = account_health_step(flow)
    if step is None or step.target_connection is None:
        raise AccountHealthNotReady(f"“{flow.name}” has no CRM connection to write to.")
    crm = step.target_connection
    connector = connector_for(crm)
    names = field_names(step=step, connector=connector)
    wanted = [
        AccountField(name, BY_KEY[key].label, BY_KEY[key].kind, BY_KEY[key].description) for key, name in names.items()
    ]
    created = connector.account_fields_create(wanted)

    periods = Periods.now()
    figures = account_health_figures(periods=periods)
    links = dict(
        ExternalRef.objects.filter(
            connection=crm, object=step.target_object, entity="customer", alias=False
        ).values_list("record_id", "external_id")
    )
    customers = dict(Customer.objects.filter(pk__in=set(figures) | set(links)).values_list("pk", "name"))
    default_currency = Customer._meta.get_field("currency").default
    currencies = dict(Customer.objects.filter(pk__in=set(links) - set(figures)).values_list("pk", "currency"))

    system = vendor_label(crm.vendor)
    tally = Tally()
    records: list[RunRecord] = []
    raised: list[dict] = []
    linked = sorted(pk for pk in customers if pk in links)
    current = connector.accounts_read([links[pk] for pk in linked], list(names.values())) if linked else {}
    updates: list[tuple[int, AccountUpdate]] = []
    numbers = [name for key, name in names.items() if BY_KEY[key].kind == "number"]
    for pk in sorted(customers):
        name = customers[pk]
        held = current.get(links.get(pk), {})
        if pk not in figures and all(held.get(field) in (None, "") for field in numbers):
            # No delivery in either month and no figures on the account: a prospect, or a customer long done. Left
            # blank rather than filled with zeros; an account that holds figures from before is set to zero instead.
            continue
        tally.read += 1
        if pk not in links:
            month = f"{periods.last_month:%B %Y} or {periods.current_month:%B %Y}"
            raised.append(
                dict(
                    pk=pk,
                    code=ErrorCode.NO_CRM_ACCOUNT,
                    subject=name,
                    message=f"{name} has delivery in {month} but no {system} account is linked to it, so its figures "
                    f"were not written. Link the account in {system} (the CRM companies flow links accounts by name "
                    "and domain), then run the flow again.",
                )
            )
            continue
        account = links[pk]
        values = figures.get(pk) or _nothing_delivered(currencies.get(pk) or default_currency, periods)
        desired = {names[key]: value for key, value in values.items() if key in names}
        if account not in current:
            raised.append(
                dict(
                    pk=pk,
                    code=ErrorCode.CRM_ACCOUNT_GONE,
                    subject=name,
                    account=account,
                    message=f"The {system} account {account} linked to {name} is not in {system} any more (deleted "
                    "or merged), so its figures were not written. Link the account it became, then run the flow again.",
                )
            )
            continue
        if _same(desired, current[account], wanted):
            tally.unchanged += 1
            records.append(_record(run, step, pk, name, RunRecord.Outcome.UNCHANGED, system, account, "unchanged"))
            continue
        updates.append((pk, AccountUpdate(account, desired)))

    results = connector.accounts_update([update for _, update in updates]) if updates else []
    for (pk, update), result in zip(updates, results, strict=True):
        name = customers[pk]
        if result.outcome == "failed":
            raised.append(
                dict(
                    pk=pk,
                    code=ErrorCode.CRM_REFUSED,
                    subject=name,
                    account=update.account_id,
                    message=f"{system} refused the delivery figures for {name} (account {update.account_id}): "
                    f"{result.error_message or result.error_code}",
                    detail=f"{result.error_code}: {result.error_message}",
                    values={name: str(value) for name, value in update.values.items()},
                )
            )
            continue
        tally.updated += 1
        records.append(_record(run, step, pk, name, RunRecord.Outcome.UPDATED, system, update.account_id, "updated"))

    with transaction.atomic():
        still: list[int] = []
        for problem in raised:
            tally.failed += 1
            exception = _exception_raise(flow=flow, run=run, step=step, problem=problem, object_name=step.target_object)
            still.append(exception.pk)
            records.append(
                RunRecord(
                    run=run,
                    flow=flow,
                    object=step.target_object,
                    external_id=problem.get("account", ""),
                    description=problem["subject"][:200],
                    outcome=RunRecord.Outcome.EXCEPTION,
                    exception=exception,
                    entity="customer",
                    record_id=problem["pk"],
                )
            )
        RunRecord.objects.bulk_create(records)
        # Every customer is looked at again each run: what was not raised again is fixed (the account was linked,
        # the CRM took the value) or no longer applies (the customer has neither delivery nor an account now).
        SyncException.objects.filter(flow=flow, status__in=SyncException.LIVE).exclude(pk__in=still).update(
            status=SyncException.Status.RESOLVED, resolved_at=timezone.now(), waiting_on=None
        )
        SyncRun.objects.filter(pk=run.pk).update(
            read=tally.read, updated=tally.updated, unchanged=tally.unchanged, failed=tally.failed
        )
    note = (
        f"Figures for {periods.last_month:%B %Y} and {periods.current_month:%B %Y} to date: "
        f"{tally.updated} accounts updated, {tally.unchanged} already up to date"
    )
    if created:
        note += f"; created {len(created)} {system} field{'s' if len(created) != 1 else ''} for them"
    return note + "."


def _same(desired: dict, current: dict, wanted: list[AccountField]) -> bool:
    kinds = {field.name: field.kind for field in wanted}
    for name, value in desired.items():
        held = current.get(name)
        if kinds.get(name) == "number":
            if number_value(held) != number_value(value):
                return False
        elif (held or "") != (value or ""):
            return False
    return True


def _record(run, step, pk: int, name: str, outcome: str, system: str, account: str, action: str) -> RunRecord:
    return RunRecord(
        run=run,
        flow=run.flow,
        object=step.target_object,
        external_id=account,
        description=name[:200],
        outcome=outcome,
        entity="customer",
        record_id=pk,
        targets=[{"system": system, "object": step.target_object, "action": action, "id": account}],
    )


def _key(problem: dict) -> str:
    """What an exception is about in the CRM: the account, or for a customer without one the customer itself."""
    return problem.get("account") or f"customer-{problem['pk']}"


def _exception_raise(*, flow, run, step, problem: dict, object_name: str) -> SyncException:
    """One live exception per customer and error: a repeat bumps it (its sentence as true as when it was raised)."""
    now = timezone.now()
    live = SyncException.objects.filter(
        flow=flow,
        object=object_name,
        external_id=_key(problem),
        error_code=problem["code"],
        status__in=SyncException.LIVE,
    ).first()
    if live is not None:
        live.message = problem["message"][:500]
        live.detail = problem.get("detail", "")
        live.last_run = run
        live.occurrences += 1
        live.last_seen_at = now
        live.status = SyncException.Status.OPEN
        live.save(update_fields=["message", "detail", "last_run", "occurrences", "last_seen_at", "status"])
        return live
    return SyncException.objects.create(
        flow=flow,
        step=step,
        first_run=run,
        last_run=run,
        # The figures are about the CRM's account: the queue files them under that system.
        source_system=step.target_connection.vendor,
        target_system=step.target_connection.vendor,
        object=object_name,
        external_id=_key(problem),
        payload={"customer": problem["subject"], "account": problem.get("account", ""), **problem.get("values", {})},
        subject=problem["subject"][:200],
        error_code=problem["code"],
        message=problem["message"][:500],
        detail=problem.get("detail", ""),
        fix_actions=[],
        created_at=now,
        last_seen_at=now,
    )


def account_health_fields_set(*, step: FlowStep, fields: dict[str, str], actor=None) -> FlowStep:
    """Map figures to CRM fields (figure key -> field name; "" leaves the figure out), audited; keys not given keep
    the default custom field."""
    unknown = set(fields) - set(BY_KEY)
    if unknown:
        raise ValueError(f"No such figure: {', '.join(sorted(unknown))}")
    with transaction.atomic():
        step = FlowStep.objects.select_for_update().get(pk=step.pk)
        before = dict((step.options or {}).get("fields") or {})
        after = {key: value.strip() for key, value in fields.items()}
        step.options = {**(step.options or {}), "fields": after}
        step.save(update_fields=["options"])
        audit_record(
            actor=actor,
            action="flow.account_fields_mapped",
            target_type="flow",
            target_id=step.flow_id,
            summary=f"Chose the CRM fields “{step.flow.name}” writes",
            before=before,
            after=after,
        )
    return step
