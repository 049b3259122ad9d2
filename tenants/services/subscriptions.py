"""Subscriptions: a partner sets a client's term, price and renewal; the renewal task rolls terms over and sends
each renewal's reminder once."""

from __future__ import annotations

import logging
from datetime import date, timedelta
from decimal import Decimal

from django.db import IntegrityError, transaction

from portal.emails import branded_email_send
from tenants.models import Client, Membership, RenewalReminder, Role, Subscription, SubscriptionTerm, User
from tenants.models.subscriptions import months_after
from tenants.services.audit import audit_changes, partner_audit_record

logger = logging.getLogger(__name__)


class SubscriptionRefused(Exception):  # noqa: N818 - the domain's words; `str()` is the sentence to show
    pass


def _values(subscription: Subscription) -> dict:
    term = subscription.current_term
    return {
        "term_months": subscription.term_months,
        "starts_on": term.starts_on.isoformat() if term else None,
        "renewal_date": term.ends_on.isoformat() if term else None,
        "monthly_price": str(term.monthly_price) if term else None,
        "renewal_price": None if subscription.renewal_price is None else str(subscription.renewal_price),
        "auto_renew": subscription.auto_renew,
        "reminder_days": subscription.reminder_days,
    }


@transaction.atomic
def subscription_set(
    *,
    client: Client,
    starts_on: date,
    term_months: int,
    monthly_price: Decimal,
    auto_renew: bool,
    renewal_price: Decimal | None = None,
    reminder_days: int = 30,
    actor: User | None,
) -> Subscription:
    """Give a client a subscription, or change it. Changing the start, term or price corrects the current term;
    a price for the next term is `renewal_price` (it takes effect at the renewal date)."""
    if client.plan_id is None:
        raise SubscriptionRefused(f"Put {client.name} on a plan first: a subscription is to a plan.")
    if term_months < 1 or term_months > 120:
        raise SubscriptionRefused("A term is 1 to 120 months.")
    if monthly_price < 0 or (renewal_price is not None and renewal_price < 0):
        raise SubscriptionRefused("A price cannot be negative.")
    if reminder_days > 365:
        raise SubscriptionRefused("Send the reminder at most 365 days before the renewal.")
    subscription = Subscription.objects.select_for_update().filter(client=client).first()
    created = subscription is None
    before = None if created else _values(subscription)
    if created:
        subscription = Subscription(client=client)
    subscription.term_months = term_months
    subscription.auto_renew = auto_renew
    subscription.renewal_price = renewal_price
    subscription.reminder_days = reminder_days
    subscription.save()
    term = subscription.current_term
    if term is None:
        term = SubscriptionTerm(subscription=subscription)
    elif term.starts_on != starts_on and subscription.terms.count() > 1:
        earlier = subscription.terms.exclude(pk=term.pk).order_by("-starts_on").first()
        if starts_on != earlier.ends_on:
            raise SubscriptionRefused(
                f"The current term follows the one that ended on {earlier.ends_on:%-d %b %Y}; it starts then."
            )
    term.starts_on = starts_on
    term.ends_on = months_after(starts_on, term_months)
    term.monthly_price = monthly_price
    term.save()
    if subscription.ended_on and (auto_renew or term.ends_on > subscription.ended_on):
        subscription.ended_on = None  # renewing again, or a longer term: it has not ended
        subscription.save(update_fields=["ended_on"])
    after = _values(subscription)
    if created:
        summary = (
            f"{client.name} subscribed for {term_months} months from {starts_on:%-d %b %Y} at {monthly_price} a month"
        )
        partner_audit_record(
            partner=client.partner,
            actor=actor,
            action="subscription.created",
            target_type="client",
            target_id=client.pk,
            summary=summary,
            after=after,
        )
    else:
        was, now = audit_changes(before, after)
        if now:
            partner_audit_record(
                partner=client.partner,
                actor=actor,
                action="subscription.updated",
                target_type="client",
                target_id=client.pk,
                summary=f"{client.name}'s subscription changed: {', '.join(key.replace('_', ' ') for key in now)}",
                before=was,
                after=now,
            )
    return subscription


def subscriptions_renew(*, today: date) -> int:
    """Roll over every subscription whose renewal date has come: a new term at the renewal price when it renews
    (as many terms as have passed), else it ends. Running it again the same day changes nothing."""
    done = 0
    due = Subscription.objects.filter(ended_on__isnull=True, terms__isnull=False).distinct()
    for subscription_id in due.values_list("pk", flat=True):
        if _subscription_renew(subscription_id=subscription_id, today=today):
            done += 1
    return done


@transaction.atomic
def _subscription_renew(*, subscription_id: int, today: date) -> bool:
    subscription = Subscription.objects.select_for_update().select_related("client__partner").get(pk=subscription_id)
    term = subscription.current_term
    if subscription.ended_on is not None or term is None or term.ends_on > today:
        return False
    client = subscription.client
    if not subscription.auto_renew:
        subscription.ended_on = term.ends_on
        subscription.save(update_fields=["ended_on"])
        partner_audit_record(
            partner=client.partner,
            actor=None,
            action="subscription.ended",
            target_type="client",
            target_id=client.pk,
            summary=f"{client.name}'s subscription ended on {term.ends_on:%-d %b %Y}, not renewed",
        )
        return True
    price = subscription.renewal_price if subscription.renewal_price is not None else term.monthly_price
    while term.ends_on <= today:
        term = SubscriptionTerm.objects.create(
            subscription=subscription,
            starts_on=term.ends_on,
            ends_on=months_after(term.ends_on, subscription.term_months),
            monthly_price=price,
        )
    was = subscription.renewal_price
    subscription.renewal_price = None  # the scheduled price is now the term's
    subscription.save(update_fields=["renewal_price"])
    partner_audit_record(
        partner=client.partner,
        actor=None,
        action="subscription.renewed",
        target_type="client",
        target_id=client.pk,
        summary=f"{client.name} renewed until {term.ends_on:%-d %b %Y} at {price} a month",
        before={"renewal_price": None if was is None else str(was)},
        after={
            "starts_on": term.starts_on.isoformat(),
            "renewal_date": term.ends_on.isoformat(),
            "monthly_price": str(price),
        },
    )
    return True


def renewal_reminder_recipients(subscription: Subscription) -> dict[str, list[str]]:
    """Who decides about a renewal: the partner's admins and the client's admins, each told in their own words."""
    client = subscription.client
    people = Membership.objects.filter(user__is_active=True)
    partner = people.filter(role=Role.PARTNER_ADMIN, partner_id=client.partner_id).values_list("user__email", flat=True)
    admins = people.filter(role=Role.CLIENT_ADMIN, client=client).values_list("user__email", flat=True)
    return {"partner": sorted(set(partner)), "client": sorted(set(admins))}


def renewal_reminders_send(*, today: date) -> int:
    """Send each renewal's reminder once, from `reminder_days` before the renewal date until it: a
    RenewalReminder row per (subscription, renewal date) is written first, and the mail goes after it commits."""
    sent = 0
    live = Subscription.objects.filter(ended_on__isnull=True, terms__isnull=False, client__status=Client.Status.ACTIVE)
    for subscription in live.distinct().select_related("client__partner", "client__plan"):
        renewal = subscription.renewal_date
        if renewal is None or not (renewal - timedelta(days=subscription.reminder_days) <= today < renewal):
            continue
        if _reminder_send(subscription=subscription, renewal=renewal, today=today):
            sent += 1
    return sent


def _reminder_send(*, subscription: Subscription, renewal: date, today: date) -> bool:
    recipients = renewal_reminder_recipients(subscription)
    if not recipients["partner"] and not recipients["client"]:
        return False
    client = subscription.client
    context = {
        "client": client,
        "plan": client.plan,
        "subscription": subscription,
        "renewal_date": renewal,
        "days": (renewal - today).days,
        "current_price": subscription.current_term.monthly_price,
        "next_price": subscription.next_price,
        "currency": client.plan.currency if client.plan else "",
    }
    verb = "renews" if subscription.auto_renew else "ends"
    try:
        with transaction.atomic():
            RenewalReminder.objects.create(
                subscription=subscription,
                renewal_date=renewal,
                recipients=recipients["partner"] + recipients["client"],
            )
    except IntegrityError:  # sent already, by this task running twice at once: once is enough
        return False
    for audience, to in recipients.items():
        if to:
            subject = f"{client.name}'s subscription {verb} on {renewal:%-d %b %Y}"
            if audience == "client":
                subject = f"Your subscription {verb} on {renewal:%-d %b %Y}"
            transaction.on_commit(
                lambda to=to, subject=subject, audience=audience: branded_email_send(
                    partner=client.partner,
                    to=to,
                    subject=subject,
                    template="renewal_reminder",
                    context={**context, "audience": audience},
                )
            )
    return True
