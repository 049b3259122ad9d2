"""Who may reach what. Every view and task asks these; nothing else decides access."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.core.cache import cache
from django.db.models import Q, QuerySet
from django.utils import timezone

from portal.audit_log import audit_page
from tenants.models import (
    CLIENT_ROLES,
    ChangeRequest,
    Client,
    Invitation,
    Membership,
    MfaPolicy,
    Partner,
    PartnerAuditEvent,
    Role,
    Subscription,
    UsageRecord,
    User,
)
from tenants.models.changes import BILLED_STATUSES, OPEN_STATUSES
from tenants.plans import system_label

logger = logging.getLogger(__name__)


def is_platform_admin(user: User) -> bool:
    if not user.is_authenticated:
        return False
    return Membership.objects.filter(user=user, role=Role.PLATFORM_ADMIN).exists()


def partner_membership(user: User, partner: Partner) -> Membership | None:
    if not user.is_authenticated or partner is None:
        return None
    return Membership.objects.filter(user=user, partner=partner).first()


@dataclass(frozen=True)
class Standing:
    """A user's roles under one partner, read in one query: their partner membership, if any, and
    the workspaces they are a member of directly (by name). Every page's shell needs both: the
    workspace role, the partner console link and the workspace switcher."""

    staff: Membership | None = None
    direct: tuple[tuple[Client, str], ...] = ()

    def role_in(self, client: Client) -> str | None:
        """The role held inside `client`'s workspace, or None when they may not enter it. The partner's
        own people act with their partner role, and staff only in the clients assigned to them: a
        client role would let them keep a client after being unassigned, so it counts for nobody on
        the partner's team. Everyone else acts with their client role."""
        if self.staff is None or client.partner_id != self.staff.partner_id:
            for member_of, role in self.direct:
                if member_of.pk == client.pk:
                    return role
            return None
        if self.staff.role == Role.PARTNER_ADMIN:
            return Role.PARTNER_ADMIN
        if self.staff.role == Role.PARTNER_STAFF and self.staff.assigned_clients.filter(pk=client.pk).exists():
            return Role.PARTNER_STAFF
        return None

    def workspaces(self, user: User, partner: Partner) -> list[Client]:
        """As `workspaces_for`, without a query for a user who holds no partner role."""
        if self.staff is None:
            return [client for client, role in self.direct if role in CLIENT_ROLES]
        return list(_workspaces(user, partner, self.staff))


def standing_under(user: User, partner: Partner | None) -> Standing:
    if not user.is_authenticated or partner is None:
        return Standing()
    rows = (
        Membership.objects.filter(user=user)
        .filter(Q(partner=partner) | Q(client__partner=partner))
        .select_related("client")
        .order_by("client__name", "client_id")
    )
    staff = None
    direct = []
    for row in rows:
        if row.client_id is None:
            staff = row
        else:
            direct.append((row.client, row.role))
    return Standing(staff=staff, direct=tuple(direct))


def request_standing(request):
    """The user's roles under this host's partner, read once per request (WorkspaceMiddleware and
    the partner console's role check have usually read them already)."""
    standing = getattr(request, "standing", None)
    if standing is None:
        standing = request.standing = standing_under(request.user, request.partner)
    return standing


def workspaces_for(user: User, partner: Partner) -> QuerySet[Client]:
    """The client workspaces of `partner` that `user` may enter, by name."""
    if not user.is_authenticated or partner is None:
        return Client.objects.none()
    return _workspaces(user, partner, partner_membership(user, partner))


def _workspaces(user: User, partner: Partner, staff: Membership | None) -> QuerySet[Client]:
    clients = Client.objects.filter(partner=partner)
    if staff and staff.role == Role.PARTNER_ADMIN:
        return clients.order_by("name")
    if staff and staff.role == Role.PARTNER_STAFF:
        return clients.filter(assigned_staff=staff).order_by("name")
    return clients.filter(memberships__user=user, memberships__role__in=CLIENT_ROLES).distinct().order_by("name")


def workspace_role(user: User, client: Client) -> str | None:
    """The role `user` holds inside `client`'s workspace, or None when they may not enter it."""
    return standing_under(user, client.partner).role_in(client)


def home_partner(user: User) -> Partner | None:
    """The one partner whose host and brand a user's account emails come from, or None for the
    platform's: platform admins, and people of several partners. A link carrying a key to someone's
    account is built only on a host every party it could reach trusts; a partner controls its own
    domains, and so sees the keys of links to them."""
    rows = Membership.objects.filter(user=user).values_list("role", "partner_id", "client__partner_id")
    partner_ids = set()
    for role, partner_id, client_partner_id in rows:
        if role == Role.PLATFORM_ADMIN:
            return None
        partner_ids.add(partner_id or client_partner_id)
    if len(partner_ids) != 1:
        return None
    return Partner.objects.filter(pk=partner_ids.pop()).first()


def mfa_required(user: User) -> bool:
    """Must this person sign in with a second factor? Platform admins when PLATFORM_ADMINS_REQUIRE_MFA
    is on; otherwise as each partner they work with asks (MfaPolicy), for any of their roles, and everyone
    in a workspace whose admin asks for it (Client.requires_mfa)."""
    rows = Membership.objects.filter(user=user).values_list(
        "role", "partner__mfa_policy", "client__partner__mfa_policy", "client__requires_mfa"
    )
    for role, partner_policy, client_policy, client_requires in rows:
        if client_requires:
            return True
        if role == Role.PLATFORM_ADMIN:
            if settings.PLATFORM_ADMINS_REQUIRE_MFA:
                return True
            continue
        policy = partner_policy or client_policy
        if policy == MfaPolicy.EVERYONE:
            return True
        if policy == MfaPolicy.ADMINS and role in (Role.PARTNER_ADMIN, Role.CLIENT_ADMIN):
            return True
    return False


def pending_invitations(*, partner: Partner | None = None, client: Client | None = None) -> QuerySet[Invitation]:
    """Invitations to the partner's team, or to one workspace, not yet accepted and not expired."""
    invitations = Invitation.objects.filter(expires_at__gt=timezone.now()).select_related("user")
    if client is not None:
        return invitations.filter(client=client).order_by("email")
    return invitations.filter(partner=partner).prefetch_related("assigned_clients").order_by("email")


def client_members(client: Client) -> QuerySet[Membership]:
    return Membership.objects.filter(client=client).select_related("user").order_by("user__email")


def partner_staff(partner: Partner) -> QuerySet[Membership]:
    return (
        Membership.objects.filter(partner=partner)
        .select_related("user")
        .prefetch_related("assigned_clients")
        .order_by("role", "user__email")
    )


# --- Client health ---------------------------------------------------------------------------------


def this_month(today: date | None = None) -> date:
    return (today or timezone.localdate()).replace(day=1)


@dataclass(frozen=True)
class Usage:
    """A client's records synced and runs in one month, as the roll-up last read them from its schema."""

    records: int = 0
    runs: int = 0
    as_of: datetime | None = None  # when the roll-up last read the schema; None: not yet
    sandbox_records: int = 0  # Sandbox runs' records: never part of `records`, billed per the plan
    sandbox_runs: int = 0
    connections: dict[str, int] = field(default_factory=dict)  # Production connections by vendor key


def usage_rolled_up(*, clients, month: date) -> dict[int, Usage]:
    """Usage of `clients` in the month containing `month`, by client id: the one source of every usage
    figure the partner console shows (home, health, revenue, statements, CSV), so they always agree.
    A client the roll-up has not reached yet is absent (its usage reads as none, with no date)."""
    rows = UsageRecord.objects.filter(client__in=clients, month=this_month(month))
    return {
        row.client_id: Usage(
            row.records_synced,
            row.runs,
            row.updated_at,
            sandbox_records=row.sandbox_records_synced,
            sandbox_runs=row.sandbox_runs,
            connections=row.connections,
        )
        for row in rows
    }


def usage_as_of(usages) -> datetime | None:
    """The oldest roll-up among figures shown together: the moment the sum is true of."""
    moments = [usage.as_of for usage in usages if usage.as_of is not None]
    return min(moments) if moments else None


# --- Revenue -------------------------------------------------------------------------------------

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


def month_bounds(month: date) -> tuple[date, date]:
    first = this_month(month)
    return first, (first + timedelta(days=32)).replace(day=1)


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
    month = this_month(month)
    next_month = (month + timedelta(days=32)).replace(day=1)
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


@dataclass(frozen=True)
class Renewal:
    """One client's next renewal, as the partner's renewals list shows it."""

    client: Client
    subscription: Subscription
    renewal_date: date
    days: int
    current_price: Decimal
    next_price: Decimal | None  # None: it ends at the renewal date
    reminder_sent_at: datetime | None
    reminder_due: date
    reminder_due_now: bool  # due and not sent yet: the next run of the renewals task sends it

    @property
    def currency(self) -> str:
        return self.client.plan.currency if self.client.plan else ""

    @property
    def price_changes(self) -> bool:
        return self.next_price is not None and self.next_price != self.current_price


def upcoming_renewals(partner: Partner, *, today: date | None = None) -> list[Renewal]:
    """The partner's subscriptions that have not ended, soonest renewal first."""
    today = today or timezone.localdate()
    subscriptions = (
        Subscription.objects.filter(client__partner=partner, ended_on__isnull=True)
        .select_related("client__plan")
        .prefetch_related("terms", "reminders")
    )
    renewals = []
    for subscription in subscriptions:
        terms = sorted(subscription.terms.all(), key=lambda term: term.starts_on)
        if not terms:
            continue
        term = terms[-1]
        next_price = None
        if subscription.auto_renew:
            next_price = subscription.renewal_price if subscription.renewal_price is not None else term.monthly_price
        reminder = next((r for r in subscription.reminders.all() if r.renewal_date == term.ends_on), None)
        renewals.append(
            Renewal(
                client=subscription.client,
                subscription=subscription,
                renewal_date=term.ends_on,
                days=(term.ends_on - today).days,
                current_price=term.monthly_price,
                next_price=next_price,
                reminder_sent_at=reminder.sent_at if reminder else None,
                reminder_due=term.ends_on - timedelta(days=subscription.reminder_days),
                reminder_due_now=reminder is None
                and term.ends_on - timedelta(days=subscription.reminder_days) <= today,
            )
        )
    return sorted(renewals, key=lambda renewal: (renewal.renewal_date, renewal.client.name))


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


# --- The partner console's audit log ---------------------------------------------------------------


def partner_audit_events(
    partner: Partner, *, action: str = "", actor: str = "", q: str = "", since=None, until=None, after: str = ""
) -> tuple[list[PartnerAuditEvent], str | None]:
    """One page of the partner's audit log, newest first, and the cursor of the next (older) page, if any.

    `action` is a group ("team") or one action ("team.invited"); `after` is the cursor a previous page gave.
    """
    events = PartnerAuditEvent.objects.filter(partner=partner)
    return audit_page(events, action=action, actor=actor, q=q, since=since, until=until, after=after)


def partner_audit_action_groups(partner: Partner) -> list[str]:
    """The kinds of change the partner's log holds ("brand", "team", ...), for its filter."""
    actions = PartnerAuditEvent.objects.filter(partner=partner).order_by().values_list("action", flat=True).distinct()
    return sorted({action.split(".", 1)[0] for action in actions})


# --- Who a workspace's exceptions may be assigned to ------------------------------------------------


def workspace_people(client) -> list[tuple[int, str]]:
    """Who may be assigned exceptions: the client's admins and finance staff, and the partner's
    admins and the staff assigned to this client. Kept half a minute: every queue page asks."""
    key = f"workspace-people:{client.pk}"
    people = cache.get(key)
    if people is None:
        people = _workspace_people(client)
        cache.set(key, people, 30)
    return people


def _workspace_people(client) -> list[tuple[int, str]]:
    members = Membership.objects.filter(client=client, role__in=[Role.CLIENT_ADMIN, Role.CLIENT_FINANCE])
    partner_admins = Membership.objects.filter(partner_id=client.partner_id, role=Role.PARTNER_ADMIN)
    staff = Membership.objects.filter(partner_id=client.partner_id, role=Role.PARTNER_STAFF, assigned_clients=client)
    people = {}
    for membership in (members | partner_admins | staff).select_related("user").order_by("user__email"):
        people[membership.user_id] = membership.user.email
    return sorted(people.items(), key=lambda item: item[1])


# --- Change requests -----------------------------------------------------------------------------------------------


def change_requests_for_partner(user: User, partner: Partner, *, only_open: bool = False) -> QuerySet[ChangeRequest]:
    """The change requests of the clients `user` may reach under `partner` (every client for its admins, the
    assigned ones for its staff), newest first."""
    rows = ChangeRequest.objects.filter(client__in=workspaces_for(user, partner)).select_related("client__plan")
    if only_open:
        rows = rows.filter(status__in=OPEN_STATUSES)
    return rows.order_by("-requested_at", "-id")


def change_requests_of(client: Client) -> QuerySet[ChangeRequest]:
    return ChangeRequest.objects.filter(client=client).select_related("requested_by").order_by("-number")


def change_request_counts(rows) -> dict[str, int]:
    """How many requests wait on whom: the partner to quote, the client to decide, the partner to deliver."""
    counts = {status: 0 for status in ChangeRequest.Status.values}
    for status in rows.values_list("status", flat=True):
        counts[status] += 1
    return counts
