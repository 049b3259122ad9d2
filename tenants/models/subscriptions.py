"""A client's subscription to its plan: terms of a number of months, each at its own price, renewed or ended at
their end, and the renewal reminders sent before."""

from __future__ import annotations

import calendar
from datetime import date
from decimal import Decimal

from django.db import models

from portal.months import month_last_day, month_start


def months_after(day: date, months: int) -> date:
    """The same day `months` months later, or that month's last day when it is shorter (31 Jan + 1 = 28 Feb)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return day.replace(year=year, month=month, day=min(day.day, calendar.monthrange(year, month)[1]))


class Subscription(models.Model):
    """What a client has committed to: its plan for terms of `term_months`, the price of each term in its
    SubscriptionTerm row. At the renewal date (the current term's end) a new term starts at `renewal_price`
    (or the same price) when `auto_renew`; otherwise the subscription ends there."""

    client = models.OneToOneField("tenants.Client", on_delete=models.CASCADE, related_name="subscription")
    term_months = models.PositiveIntegerField(default=12)
    auto_renew = models.BooleanField(default=True)
    # A price change scheduled for the renewal: the next term's monthly price. Empty: the same price as now.
    renewal_price = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    reminder_days = models.PositiveIntegerField(default=30)
    ended_on = models.DateField(null=True, blank=True)  # set when a subscription that does not renew reaches its end
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(term_months__gte=1), name="subscription_term_at_least_a_month"),
            models.CheckConstraint(
                condition=models.Q(renewal_price__gte=0), name="subscription_renewal_price_not_negative"
            ),
        ]

    def __str__(self):
        return f"{self.client} subscription"

    @property
    def current_term(self) -> SubscriptionTerm | None:
        return self.terms.order_by("-starts_on").first()

    @property
    def renewal_date(self) -> date | None:
        term = self.current_term
        return term.ends_on if term else None

    @property
    def next_price(self) -> Decimal | None:
        """The monthly price from the renewal date on; None when the subscription ends there."""
        term = self.current_term
        if term is None or not self.auto_renew:
            return None
        return self.renewal_price if self.renewal_price is not None else term.monthly_price

    def price_for_month(self, month: date, terms: list[SubscriptionTerm] | None = None) -> tuple[str, Decimal | None]:
        """What the subscription bills for the month containing `month`: ("term", price) for the price in force
        on its first day (in the month it starts, its first price); ("ended", 0) once it has ended;
        ("none", None) before it starts. Terms the renewal task has not rolled over yet are read as it will:
        the renewal price when it renews, ended when it does not."""
        first, last = month_start(month), month_last_day(month)
        terms = sorted(terms if terms is not None else self.terms.all(), key=lambda term: term.starts_on)
        if not terms or terms[0].starts_on > last:
            return "none", None
        for term in terms:
            if term.starts_on <= first < term.ends_on:
                return "term", term.monthly_price
        if first < terms[0].starts_on:  # the month it starts
            return "term", terms[0].monthly_price
        latest = terms[-1]
        if self.ended_on is not None or not self.auto_renew:
            return "ended", Decimal("0.00")
        # Past the last term, renewing: the renewal price from the renewal on (every later term keeps it).
        return "term", self.renewal_price if self.renewal_price is not None else latest.monthly_price


class SubscriptionTerm(models.Model):
    """One term of a subscription: from `starts_on` to the day before `ends_on` (its renewal date), at one price."""

    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="terms")
    starts_on = models.DateField()
    ends_on = models.DateField()
    monthly_price = models.DecimalField(max_digits=12, decimal_places=2)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["subscription", "starts_on"]
        constraints = [
            models.UniqueConstraint(fields=["subscription", "starts_on"], name="one_term_per_start"),
            models.CheckConstraint(condition=models.Q(ends_on__gt=models.F("starts_on")), name="term_ends_after_start"),
            models.CheckConstraint(condition=models.Q(monthly_price__gte=0), name="term_price_not_negative"),
        ]

    def __str__(self):
        return f"{self.subscription.client} {self.starts_on:%Y-%m-%d}–{self.ends_on:%Y-%m-%d} at {self.monthly_price}"


class RenewalReminder(models.Model):
    """A reminder sent for one renewal date of one subscription: the row that makes it go once."""

    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="reminders")
    renewal_date = models.DateField()
    recipients = models.JSONField(default=list)
    sent_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-sent_at"]
        constraints = [
            models.UniqueConstraint(fields=["subscription", "renewal_date"], name="one_reminder_per_renewal"),
        ]

    def __str__(self):
        return f"{self.subscription.client} reminder for {self.renewal_date:%Y-%m-%d}"
