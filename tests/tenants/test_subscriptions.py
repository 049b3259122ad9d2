"""Subscriptions: terms and their prices, the renewal roll-over, reminders sent once, and the figures that follow."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from tenants import services
from tenants.models import Client, PartnerAuditEvent, RenewalReminder, Subscription
from tenants.selectors.renewals import upcoming_renewals
from tenants.selectors.revenue import client_statement, partner_mrr
from tenants.tasks import renewals_run
from tests.support import NORTHWIND, SUMMIT, browser_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def contoso(world):
    return Client.objects.select_related("plan", "partner").get(pk=world.clients["contoso"].pk)


def subscribe(client, *, starts_on, months=12, price="1000.00", renewal_price=None, auto_renew=True, reminder_days=30):
    return services.subscription_set(
        client=client,
        starts_on=starts_on,
        term_months=months,
        monthly_price=Decimal(price),
        auto_renew=auto_renew,
        renewal_price=None if renewal_price is None else Decimal(renewal_price),
        reminder_days=reminder_days,
        actor=None,
    )


def price(subscription, year, month):
    return subscription.price_for_month(date(year, month, 1))


# --- The price in force --------------------------------------------------------------------------


def test_a_month_is_billed_at_the_price_in_force_on_its_first_day(contoso):
    subscription = subscribe(contoso, starts_on=date(2027, 1, 15), price="1000.00", renewal_price="1200.00")
    assert subscription.renewal_date == date(2028, 1, 15)
    assert price(subscription, 2026, 12) == ("none", None)  # before it starts: the plan's price applies
    assert price(subscription, 2027, 1) == ("term", Decimal("1000.00"))  # the month it starts: its first price
    assert price(subscription, 2027, 12) == ("term", Decimal("1000.00"))
    assert price(subscription, 2028, 1) == ("term", Decimal("1000.00"))  # 1 Jan is still in the first term
    assert price(subscription, 2028, 2) == ("term", Decimal("1200.00"))  # the scheduled price, even before roll-over


def test_the_renewal_rolls_over_once_at_the_scheduled_price(contoso):
    subscription = subscribe(contoso, starts_on=date(2027, 1, 15), price="1000.00", renewal_price="1200.00")
    # Counted by this subscription's terms: journeys commit subscriptions of their own partners to the same database.
    services.subscriptions_renew(today=date(2028, 1, 14))
    assert subscription.terms.count() == 1  # the day before: not yet
    services.subscriptions_renew(today=date(2028, 1, 15))
    services.subscriptions_renew(today=date(2028, 1, 15))  # again: nothing more to do
    subscription.refresh_from_db()
    terms = [(t.starts_on, t.ends_on, t.monthly_price) for t in subscription.terms.order_by("starts_on")]
    assert terms == [
        (date(2027, 1, 15), date(2028, 1, 15), Decimal("1000.00")),
        (date(2028, 1, 15), date(2029, 1, 15), Decimal("1200.00")),
    ]
    assert subscription.renewal_price is None and subscription.renewal_date == date(2029, 1, 15)
    assert price(subscription, 2027, 6) == ("term", Decimal("1000.00"))  # the past keeps its price
    assert price(subscription, 2028, 6) == ("term", Decimal("1200.00"))
    row = PartnerAuditEvent.objects.get(action="subscription.renewed", target_id=str(contoso.pk))
    assert row.actor is None and "renewed until 15 Jan 2029" in row.summary


def test_a_renewal_missed_for_several_terms_catches_up(contoso):
    subscription = subscribe(contoso, starts_on=date(2027, 1, 31), months=1, price="300.00")
    services.subscriptions_renew(today=date(2027, 4, 2))
    ends = [t.ends_on for t in subscription.terms.order_by("starts_on")]
    assert ends == [date(2027, 2, 28), date(2027, 3, 28), date(2027, 4, 28)]


def test_a_subscription_that_does_not_renew_ends_and_is_billed_no_more(world, contoso):
    subscription = subscribe(contoso, starts_on=date(2027, 1, 1), months=3, price="500.00", auto_renew=False)
    assert price(subscription, 2027, 4) == ("ended", Decimal("0.00"))  # read as ended before the task ran
    services.subscriptions_renew(today=date(2027, 4, 1))
    subscription.refresh_from_db()
    assert subscription.ended_on == date(2027, 4, 1) and subscription.terms.count() == 1
    statement = client_statement(client=contoso, month=date(2027, 5, 1))
    assert statement.plan_price == Decimal("0.00") and statement.price_basis == "ended"
    assert all(r.client.pk != contoso.pk for r in upcoming_renewals(world.partners["northwind"]))


# --- MRR and statements --------------------------------------------------------------------------


def test_statements_and_mrr_follow_the_subscription(world, contoso):
    northwind = world.partners["northwind"]
    plan_price = contoso.plan.monthly_price
    before = {line.currency: line.total for line in partner_mrr(northwind, today=date(2027, 3, 10))}
    subscribe(contoso, starts_on=date(2027, 1, 1), price=str(plan_price + 100), renewal_price=str(plan_price + 250))

    march = client_statement(client=contoso, month=date(2027, 3, 1))
    assert (march.plan_price, march.price_basis) == (plan_price + 100, "subscription")
    assert client_statement(client=contoso, month=date(2026, 12, 1)).plan_price == plan_price  # before: plan price
    next_year = client_statement(client=contoso, month=date(2028, 2, 1))
    assert next_year.plan_price == plan_price + 250

    currency = contoso.plan.currency
    assert {line.currency: line.total for line in partner_mrr(northwind, today=date(2027, 3, 10))}[currency] == (
        before[currency] + 100
    )
    assert {line.currency: line.total for line in partner_mrr(northwind, today=date(2028, 3, 10))}[currency] == (
        before[currency] + 250
    )


# --- Reminders -----------------------------------------------------------------------------------


def test_the_reminder_task_sends_each_renewal_once_to_both_sides_admins(
    world, contoso, mailoutbox, django_capture_on_commit_callbacks
):
    today = timezone.localdate()
    subscription = subscribe(contoso, starts_on=today - timedelta(days=355), months=12, renewal_price="1500.00")
    renewal = subscription.renewal_date
    assert 0 < (renewal - today).days <= 30

    with django_capture_on_commit_callbacks(execute=True):
        first = renewals_run.apply().get()
    with django_capture_on_commit_callbacks(execute=True):
        renewals_run.apply().get()  # beat runs it every hour: nothing goes twice

    assert first["reminded"] >= 1
    assert RenewalReminder.objects.filter(subscription=subscription).count() == 1
    mine = [m for m in mailoutbox if "admin@contoso.localhost" in m.to or m.subject.startswith(contoso.name)]
    by_audience = {tuple(m.to): m for m in mine}
    assert len(mine) == 2, [m.subject for m in mine]
    partner_mail = next(m for m in mine if "admin@northwind.localhost" in m.to)
    client_mail = next(m for m in mine if "admin@contoso.localhost" in m.to)
    assert "admin@contoso.localhost" not in partner_mail.to and "admin@northwind.localhost" not in client_mail.to
    assert partner_mail.subject.startswith(f"{contoso.name}'s subscription renews on {renewal:%-d %b %Y}")
    assert client_mail.subject.startswith(f"Your subscription renews on {renewal:%-d %b %Y}")
    assert "1,500.00" in client_mail.body and "Northwind" in client_mail.body
    assert len(by_audience) == 2


def test_no_reminder_before_its_day_nor_after_the_renewal(contoso, mailoutbox, django_capture_on_commit_callbacks):
    subscription = subscribe(contoso, starts_on=date(2027, 1, 1), reminder_days=14)
    with django_capture_on_commit_callbacks(execute=True):
        assert services.renewal_reminders_send(today=date(2027, 12, 17)) == 0
        assert services.renewal_reminders_send(today=date(2027, 12, 18)) == 1
        assert services.renewal_reminders_send(today=date(2027, 12, 30)) == 0
    assert RenewalReminder.objects.get(subscription=subscription).renewal_date == date(2028, 1, 1)
    services.subscriptions_renew(today=date(2028, 1, 1))
    with django_capture_on_commit_callbacks(execute=True):  # the next renewal has a reminder of its own
        assert services.renewal_reminders_send(today=date(2028, 12, 18)) == 1
    assert RenewalReminder.objects.filter(subscription=subscription).count() == 2


def test_the_renewals_task_is_on_beats_schedule(settings):
    assert settings.CELERY_BEAT_SCHEDULE["renewals"]["task"] == renewals_run.name


# --- The partner's pages -------------------------------------------------------------------------


def test_partner_admin_sets_a_subscription_and_sees_it_among_renewals(world, contoso):
    admin = browser_for(world.user("admin@northwind.localhost"), host=NORTHWIND)
    form = admin.get("/partner/clients/contoso/subscription").content.decode()
    assert "Price from the renewal" in form and "Renews automatically" in form
    response = admin.post(
        "/partner/clients/contoso/subscription",
        {
            "starts_on": "2027-02-01",
            "term_months": "12",
            "monthly_price": "1890.00",
            "auto_renew": "on",
            "renewal_price": "2090.00",
            "reminder_days": "45",
        },
    )
    assert response.status_code == 302 and response["Location"] == "/partner/clients/contoso/"
    subscription = Subscription.objects.get(client=contoso)
    assert subscription.renewal_date == date(2028, 2, 1) and subscription.renewal_price == Decimal("2090.00")
    audit = PartnerAuditEvent.objects.get(action="subscription.created", target_id=str(contoso.pk))
    assert audit.after["monthly_price"] == "1890.00" and audit.actor_email == "admin@northwind.localhost"
    detail = admin.get("/partner/clients/contoso/").content.decode()
    assert 'data-testid="client-subscription"' in detail and "1 Feb 2028" in detail

    wingtip = Client.objects.get(pk=world.clients["wingtip"].pk)
    subscribe(wingtip, starts_on=date(2026, 11, 1), price="700.00")
    page = admin.get("/partner/renewals/").content.decode()
    assert page.index("renewal-wingtip") < page.index("renewal-contoso")  # soonest first
    assert "Price rise" in page


def test_a_bad_subscription_comes_back_with_its_errors(world, contoso):
    admin = browser_for(world.user("admin@northwind.localhost"), host=NORTHWIND)
    response = admin.post(
        "/partner/clients/contoso/subscription",
        {"starts_on": "not a date", "term_months": "7", "monthly_price": "-1", "reminder_days": "30"},
    )
    assert response.status_code == 422
    assert not Subscription.objects.filter(client=contoso).exists()


def test_staff_other_partners_and_clients_cannot_reach_subscriptions(world, contoso):
    subscribe(contoso, starts_on=date(2027, 1, 1))
    engineer = browser_for(world.user("engineer@northwind.localhost"), host=NORTHWIND)
    assert engineer.get("/partner/renewals/").status_code == 403
    assert engineer.get("/partner/clients/contoso/subscription").status_code == 403
    summit_admin = browser_for(world.user("admin@summit.localhost"), host=SUMMIT)
    assert summit_admin.get("/partner/clients/contoso/subscription").status_code == 404
    assert "Contoso" not in summit_admin.get("/partner/renewals/").content.decode()
    client_admin = browser_for(world.user("admin@contoso.localhost"), host=NORTHWIND)
    forged = {"starts_on": "2027-01-01", "term_months": "1", "monthly_price": "1.00", "reminder_days": "1"}
    assert client_admin.post("/partner/clients/contoso/subscription", forged).status_code in (403, 404)
    assert Subscription.objects.get(client=contoso).current_term.monthly_price == Decimal("1000.00")


def test_a_client_without_a_plan_cannot_subscribe(world):
    wingtip = Client.objects.get(pk=world.clients["wingtip"].pk)
    wingtip.plan = None
    wingtip.save(update_fields=["plan"])
    with pytest.raises(services.SubscriptionRefused, match="on a plan first"):
        subscribe(wingtip, starts_on=date(2027, 1, 1))
    admin = browser_for(world.user("admin@northwind.localhost"), host=NORTHWIND)
    form = {"starts_on": "2027-01-01", "term_months": "12", "monthly_price": "10.00", "reminder_days": "30"}
    refused = admin.post("/partner/clients/wingtip/subscription", form)
    assert refused.status_code == 422 and "on a plan first" in refused.content.decode()
    assert not Subscription.objects.filter(client=wingtip).exists()
