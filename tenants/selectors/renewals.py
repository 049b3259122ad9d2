"""The subscriptions coming up for renewal, with their prices and reminders."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.utils import timezone

from tenants.models import Client, Partner, Subscription


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
