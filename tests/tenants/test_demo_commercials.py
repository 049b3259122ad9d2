"""The demo's commercial pages show something true: a subscription per client and Northwind's change requests in the
states a partner meets, added once however often the demo is seeded."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.utils import timezone

from tenants.demo import demo_commercials
from tenants.models import ChangeRequest, Subscription
from tenants.selectors.revenue import client_statement

pytestmark = pytest.mark.django_db

Status = ChangeRequest.Status


def test_the_demo_gives_each_client_a_subscription_and_northwind_change_requests_once(world):
    today = timezone.localdate()
    demo_commercials(world.clients, today=today)
    demo_commercials(world.clients, today=today)  # seeded again: nothing twice
    contoso, tailspin, fabrikam = (world.clients[slug] for slug in ("contoso", "tailspin", "fabrikam"))

    subscriptions = {s.client_id: s for s in Subscription.objects.filter(client__in=[contoso, tailspin, fabrikam])}
    assert len(subscriptions) == 3
    assert 0 < (subscriptions[contoso.pk].renewal_date - today).days <= 21  # the renewals page has one coming
    assert subscriptions[fabrikam.pk].next_price == Decimal("1390.00")
    assert subscriptions[tailspin.pk].next_price == tailspin.plan.monthly_price

    mine = ChangeRequest.objects.filter(client__in=[contoso, tailspin, fabrikam]).select_related("client")
    asked = {(c.client.slug, c.title): (c.status, c.quote_amount) for c in mine}
    rate = contoso.plan.hourly_rate
    assert asked == {
        ("contoso", "Put expenses on the same invoice as time"): (Status.APPROVED, 6 * rate),
        ("contoso", "Connect Jira Service Management"): (Status.REQUESTED, None),
        ("tailspin", "Cost centres from Workday to Certinia"): (Status.QUOTED, Decimal("900.00")),
    }
    # The approved one is billed on this month's statement, on top of the plan's price.
    statement = client_statement(client=contoso, month=today)
    assert statement.changes_amount == 6 * rate
