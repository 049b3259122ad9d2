"""What clients owe: monthly statements (plan price, overage, Sandbox records, approved change requests),
their totals per currency and the partner's monthly recurring revenue."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.utils import timezone

from portal.months import month_bounds, this_month
from tenants.models import ChangeRequest, Client, Partner, Subscription
from tenants.models.changes import BILLED_STATUSES
from tenants.plans import system_label
from tenants.selectors.usage import Usage, usage_rolled_up

CENT = Decimal("0.01")


@dataclass(frozen=True)
class SystemLine:
    """One system on a statement: connections the client has, against those its plan includes (None: the
    plan includes every system, within its connection limit; 0: the plan leaves this system out)."""

    label: str
    used: int
    included: int | None

    @property
    def over(self) -> bool:
        return self.included is not None and self.used > self.included


@dataclass(frozen=True)
class ChangeLine:
    """An approved change request on the statement of the month it was approved in, at its quoted amount."""

    number: int
    title: str
    amount: Decimal
    currency: str
    hours: Decimal | None
    rate: Decimal | None
    approved_at: datetime
    delivered: bool


@dataclass(frozen=True)
class Statement:
    """What a client owes for a month: the plan's price plus overage above the included records, plus the change
    requests it approved that month.

    Overage is charged pro rata per record at the plan's price per 1,000 records (2,500 records over
    at 4.00 per 1,000 is 10.00), computed in Decimal and rounded half-up to the cent once, on the
    statement's overage line; the total is the plan price plus that rounded line.
    """

    client: Client
    month: date
    plan_name: str
    currency: str
    plan_price: Decimal
    included_records: int
    overage_per_1000: Decimal
    records_synced: int
    runs: int
    as_of: datetime | None = None  # when the usage roll-up last read the client's schema
    # Sandbox runs' records, outside the included records: billed on their own line, or free, per the plan.
    sandbox_records: int = 0
    sandbox_runs: int = 0
    sandbox_billed: bool = False
    sandbox_per_1000: Decimal = Decimal("0.00")
    connections: dict[str, int] = field(default_factory=dict)  # Production connections by vendor key
    included_systems: dict[str, int] = field(default_factory=dict)  # the plan's; empty: every system
    price_basis: str = "plan"  # "subscription", "ended" or "plan": see plan_price_for_month
    changes: tuple[ChangeLine, ...] = ()  # change requests approved this month, billed at their quote

    @property
    def changes_amount(self) -> Decimal:
        """The approved quotes in the statement's currency (a quote keeps the currency its plan had then: one in
        another currency is listed, never added)."""
        return sum((line.amount for line in self.changes if line.currency == self.currency), Decimal("0.00"))

    @property
    def systems(self) -> list[SystemLine]:
        """Connections per system against what the plan includes: every system the client has connected, and
        every system the plan includes, by name."""
        vendors = set(self.connections) | set(self.included_systems)
        lines = [
            SystemLine(
                label=system_label(vendor),
                used=self.connections.get(vendor, 0),
                included=self.included_systems.get(vendor, 0) if self.included_systems else None,
            )
            for vendor in vendors
        ]
        return sorted(lines, key=lambda line: line.label)

    @property
    def systems_over(self) -> list[SystemLine]:
        return [line for line in self.systems if line.over]

    @property
    def overage_records(self) -> int:
        return max(0, self.records_synced - self.included_records)

    @property
    def overage_amount(self) -> Decimal:
        raw = Decimal(self.overage_records) * self.overage_per_1000 / Decimal(1000)
        return raw.quantize(CENT, rounding=ROUND_HALF_UP)

    @property
    def sandbox_amount(self) -> Decimal:
        if not self.sandbox_billed:
            return Decimal("0.00")
        raw = Decimal(self.sandbox_records) * self.sandbox_per_1000 / Decimal(1000)
        return raw.quantize(CENT, rounding=ROUND_HALF_UP)

    @property
    def total(self) -> Decimal:
        return self.plan_price + self.overage_amount + self.sandbox_amount + self.changes_amount

    @property
    def usage_percent(self) -> int | None:
        return round(100 * self.records_synced / self.included_records) if self.included_records else None


def subscription_of(client: Client) -> Subscription | None:
    try:
        return client.subscription
    except Subscription.DoesNotExist:
        return None


def plan_price_for_month(client: Client, month: date) -> tuple[str, Decimal]:
    """What a client's plan costs in the month containing `month`, and on what basis: "subscription" (the price
    of its subscription's term in force that month), "ended" (its subscription ended before: nothing), or
    "plan" (no subscription yet that month: the plan's list price, as before subscriptions)."""
    plan = client.plan
    if plan is None:
        return "plan", Decimal("0.00")
    subscription = subscription_of(client)
    if subscription is not None:
        basis, price = subscription.price_for_month(month, list(subscription.terms.all()))
        if basis == "term":
            return "subscription", price
        if basis == "ended":
            return "ended", Decimal("0.00")
    return "plan", plan.monthly_price


def changes_billed(*, clients, month: date) -> dict[int, tuple[ChangeLine, ...]]:
    """Change requests approved in the month containing `month` (in the portal's time zone) and not undone since
    (approved or delivered), by client id: what each client's statement bills beside its plan."""
    first, following = month_bounds(month)
    zone = timezone.get_current_timezone()
    rows = ChangeRequest.objects.filter(
        client__in=clients,
        status__in=BILLED_STATUSES,
        # Moments, not dates, so the (client, approved_at) index serves it: midnight to midnight in the portal's zone.
        approved_at__gte=datetime.combine(first, time.min, tzinfo=zone),
        approved_at__lt=datetime.combine(following, time.min, tzinfo=zone),
    ).order_by("approved_at", "number")
    lines: dict[int, list[ChangeLine]] = {}
    for row in rows:
        lines.setdefault(row.client_id, []).append(
            ChangeLine(
                number=row.number,
                title=row.title,
                amount=row.quote_amount,
                currency=row.currency,
                hours=row.quote_hours,
                rate=row.quote_rate,
                approved_at=row.approved_at,
                delivered=row.status == ChangeRequest.Status.DELIVERED,
            )
        )
    return {client_id: tuple(found) for client_id, found in lines.items()}


def _statement(client: Client, month: date, usage: Usage, changes: tuple[ChangeLine, ...] = ()) -> Statement:
    plan = client.plan
    basis, price = plan_price_for_month(client, month)
    return Statement(
        client=client,
        month=month,
        plan_name=plan.name if plan else "",
        currency=plan.currency if plan else "",
        plan_price=price,
        price_basis=basis,
        included_records=plan.included_records if plan else 0,
        overage_per_1000=plan.overage_per_1000 if plan else Decimal("0.00"),
        records_synced=usage.records,
        runs=usage.runs,
        as_of=usage.as_of,
        sandbox_records=usage.sandbox_records,
        sandbox_runs=usage.sandbox_runs,
        sandbox_billed=bool(plan and plan.sandbox_billing == plan.SandboxBilling.SEPARATE),
        sandbox_per_1000=plan.sandbox_per_1000 if plan else Decimal("0.00"),
        connections=usage.connections,
        included_systems=plan.included_systems if plan else {},
        changes=changes,
    )


def client_statement(*, client: Client, month: date) -> Statement:
    """The statement of one client for the month containing `month`, on its current plan."""
    month = this_month(month)
    usage = usage_rolled_up(clients=[client], month=month).get(client.pk, Usage())
    return _statement(client, month, usage, changes_billed(clients=[client], month=month).get(client.pk, ()))


def partner_statements(*, partner: Partner, month: date) -> list[Statement]:
    """Statements of every client the partner had by the end of `month`, by client name."""
    month, next_month = month_bounds(month)
    clients = (
        Client.objects.filter(partner=partner, created_at__date__lt=next_month)
        .select_related("plan", "subscription")
        .prefetch_related("subscription__terms")
        .order_by("name")
    )
    usage = usage_rolled_up(clients=clients, month=month)
    changes = changes_billed(clients=clients, month=month)
    return [_statement(client, month, usage.get(client.pk, Usage()), changes.get(client.pk, ())) for client in clients]


@dataclass
class CurrencyTotal:
    currency: str
    clients: int = 0
    plan_price: Decimal = Decimal("0.00")
    overage_amount: Decimal = Decimal("0.00")
    changes_amount: Decimal = Decimal("0.00")
    total: Decimal = Decimal("0.00")
    records_synced: int = 0


def statement_totals(statements: list[Statement]) -> list[CurrencyTotal]:
    """Sums per currency: amounts in different currencies are never added together."""
    totals: dict[str, CurrencyTotal] = {}
    for statement in statements:
        if not statement.currency:
            continue
        total = totals.setdefault(statement.currency, CurrencyTotal(currency=statement.currency))
        total.clients += 1
        total.plan_price += statement.plan_price
        total.overage_amount += statement.overage_amount
        total.changes_amount += statement.changes_amount
        total.total += statement.total
        total.records_synced += statement.records_synced
    return sorted(totals.values(), key=lambda item: item.currency)


def partner_mrr(partner: Partner, *, today: date | None = None) -> list[CurrencyTotal]:
    """Monthly recurring revenue, per currency: what each active client's plan costs this month (its
    subscription's price in force, or the plan's price when it has none; nothing once its subscription ended)."""
    month = this_month(today)
    clients = (
        Client.objects.filter(partner=partner, status=Client.Status.ACTIVE, plan__isnull=False)
        .select_related("plan", "subscription")
        .prefetch_related("subscription__terms")
    )
    totals: dict[str, CurrencyTotal] = {}
    for client in clients:
        basis, price = plan_price_for_month(client, month)
        if basis == "ended":
            continue
        total = totals.setdefault(client.plan.currency, CurrencyTotal(currency=client.plan.currency))
        total.clients += 1
        total.plan_price += price
        total.total += price
    return sorted(totals.values(), key=lambda item: item.currency)


def usage_history(client: Client, *, months: int = 6, until: date | None = None) -> list[Statement]:
    """The client's statements for the last `months` months up to `until`, newest first."""
    month = this_month(until)
    first = this_month(timezone.localtime(client.created_at).date()) if client.created_at else None
    history = []
    for _ in range(months):
        if first and month < first:
            break
        history.append(client_statement(client=client, month=month))
        month = (month - timedelta(days=1)).replace(day=1)
    return history
