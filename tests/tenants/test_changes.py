"""Change requests through their services: who may take each step, which steps a status allows, the quote's price,
the audit rows and mails each step leaves, and the statement that bills an approved request in its month."""

from __future__ import annotations

from datetime import datetime, time
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied
from django.utils import timezone
from django_tenants.utils import tenant_context

from integrations.models import AuditEvent
from tenants.models import ChangeRequest, ChangeRequestComment, Client, PartnerAuditEvent, Plan
from tenants.models.subscriptions import month_last_day, months_after
from tenants.selectors.revenue import client_statement, partner_statements, statement_totals
from tenants.services import changes as services

pytestmark = pytest.mark.django_db

Status = ChangeRequest.Status


@pytest.fixture
def contoso(world):
    """Contoso on Northwind's Professional plan, at 150.00 USD an hour."""
    client = Client.objects.select_related("plan", "partner").get(pk=world.clients["contoso"].pk)
    Plan.objects.filter(pk=client.plan_id).update(hourly_rate=Decimal("150.00"), currency="USD")
    client.plan.refresh_from_db()
    return client


@pytest.fixture
def people(world):
    return {
        "client_admin": world.user("admin@contoso.localhost"),
        "finance": world.user("finance@contoso.localhost"),
        "viewer": world.user("viewer@contoso.localhost"),
        "partner_admin": world.user("admin@northwind.localhost"),
        "engineer": world.user("engineer@northwind.localhost"),
        "other_client_admin": world.user("admin@tailspin.localhost"),
        "other_partner_admin": world.user("admin@summit.localhost"),
    }


def ask(client, actor, title="Send approved expenses to NetSuite"):
    return services.change_request_create(
        client=client, actor=actor, kind=ChangeRequest.Kind.NEW_FLOW, title=title, description="Nightly, please."
    )


def quoted(client, people, **price):
    change_request = ask(client, people["client_admin"])
    return services.change_request_quote(
        change_request=change_request, actor=people["partner_admin"], **(price or {"hours": Decimal("3")})
    )


# --- Who may do what ------------------------------------------------------------------------------------------------


def test_client_admin_asks_and_requests_are_numbered_per_client(contoso, people, world):
    first = ask(contoso, people["client_admin"])
    second = ask(contoso, people["client_admin"], title="Map the new cost centres")
    tailspin = Client.objects.get(pk=world.clients["tailspin"].pk)
    elsewhere = ask(tailspin, people["other_client_admin"])
    assert (first.number, second.number, elsewhere.number) == (1, 2, 1)
    assert first.status == Status.REQUESTED and first.requested_by == people["client_admin"]


@pytest.mark.parametrize("who", ["finance", "viewer", "partner_admin", "engineer", "other_client_admin"])
def test_only_the_clients_admins_ask_for_changes(contoso, people, who):
    with pytest.raises(PermissionDenied):
        ask(contoso, people[who])
    assert not ChangeRequest.objects.filter(client=contoso).exists()


@pytest.mark.parametrize("who", ["client_admin", "finance", "viewer", "other_partner_admin"])
def test_only_the_partners_people_quote(contoso, people, who):
    change_request = ask(contoso, people["client_admin"])
    with pytest.raises(PermissionDenied):
        services.change_request_quote(change_request=change_request, actor=people[who], fee=Decimal("100"))
    change_request.refresh_from_db()
    assert change_request.status == Status.REQUESTED and change_request.quote_amount is None


def test_staff_not_assigned_to_the_client_cannot_quote(world, people):
    wingtip = Client.objects.select_related("plan").get(pk=world.clients["wingtip"].pk)
    from tenants.models import Membership, Role

    admin = Membership.objects.create(
        user=world.user("viewer@contoso.localhost"), client=wingtip, role=Role.CLIENT_ADMIN
    )
    change_request = ask(wingtip, admin.user)
    with pytest.raises(PermissionDenied):  # the engineer works on Contoso and Tailspin, not Wingtip
        services.change_request_quote(change_request=change_request, actor=people["engineer"], fee=Decimal("100"))
    quoted_by_admin = services.change_request_quote(
        change_request=change_request, actor=people["partner_admin"], fee=Decimal("100")
    )
    assert quoted_by_admin.status == Status.QUOTED


@pytest.mark.parametrize("who", ["finance", "viewer", "partner_admin", "engineer"])
def test_only_the_clients_admins_approve(contoso, people, who):
    change_request = quoted(contoso, people)
    with pytest.raises(PermissionDenied):
        services.change_request_approve(change_request=change_request, actor=people[who], quote_version=1)
    change_request.refresh_from_db()
    assert change_request.status == Status.QUOTED and change_request.approved_at is None


def test_viewers_only_read_but_finance_may_comment(contoso, people):
    change_request = ask(contoso, people["client_admin"])
    with pytest.raises(PermissionDenied):
        services.change_request_comment(change_request=change_request, actor=people["viewer"], body="Hello?")
    comment = services.change_request_comment(change_request=change_request, actor=people["finance"], body="Budget ok")
    assert comment.side == ChangeRequestComment.Side.CLIENT
    reply = services.change_request_comment(change_request=change_request, actor=people["engineer"], body="On it")
    assert reply.side == ChangeRequestComment.Side.PARTNER
    with pytest.raises(PermissionDenied):
        services.change_request_comment(
            change_request=change_request, actor=people["other_partner_admin"], body="Let me in"
        )
    assert change_request.comments.count() == 2


# --- Statuses ------------------------------------------------------------------------------------------------------


def test_the_whole_way_requested_quoted_approved_delivered(contoso, people):
    change_request = ask(contoso, people["client_admin"])
    change_request = services.change_request_quote(
        change_request=change_request, actor=people["engineer"], hours=Decimal("2.5"), note="Two days' notice"
    )
    assert change_request.status == Status.QUOTED
    assert (change_request.quote_hours, change_request.quote_rate) == (Decimal("2.5"), Decimal("150.00"))
    assert change_request.quote_amount == Decimal("375.00") and change_request.currency == "USD"
    change_request = services.change_request_approve(
        change_request=change_request, actor=people["client_admin"], quote_version=1
    )
    assert change_request.status == Status.APPROVED and change_request.approved_at is not None
    change_request = services.change_request_deliver(
        change_request=change_request, actor=people["engineer"], note="Live since Monday"
    )
    assert change_request.status == Status.DELIVERED and change_request.delivered_by == people["engineer"]


def test_illegal_steps_are_refused_with_a_sentence(contoso, people):
    change_request = ask(contoso, people["client_admin"])
    with pytest.raises(services.ChangeRequestRefused, match="is requested: it can no longer be approved"):
        services.change_request_approve(change_request=change_request, actor=people["client_admin"], quote_version=0)
    with pytest.raises(services.ChangeRequestRefused, match="is requested: it can no longer be marked delivered"):
        services.change_request_deliver(change_request=change_request, actor=people["partner_admin"])
    services.change_request_quote(change_request=change_request, actor=people["partner_admin"], fee=Decimal("90"))
    services.change_request_approve(change_request=change_request, actor=people["client_admin"], quote_version=1)
    with pytest.raises(services.ChangeRequestRefused, match="is approved: it can no longer be withdrawn"):
        services.change_request_withdraw(change_request=change_request, actor=people["client_admin"])
    with pytest.raises(services.ChangeRequestRefused, match="is approved: it can no longer be quoted"):
        services.change_request_quote(change_request=change_request, actor=people["partner_admin"], fee=Decimal("1"))
    with pytest.raises(services.ChangeRequestRefused, match="is approved: it can no longer be declined"):
        services.change_request_decline(change_request=change_request, actor=people["client_admin"], quote_version=1)
    services.change_request_deliver(change_request=change_request, actor=people["partner_admin"])
    with pytest.raises(services.ChangeRequestRefused, match="is delivered: it can no longer be marked delivered"):
        services.change_request_deliver(change_request=change_request, actor=people["partner_admin"])
    change_request.refresh_from_db()
    assert change_request.status == Status.DELIVERED and change_request.quote_amount == Decimal("90.00")


def test_withdrawn_and_declined_requests_take_no_more_steps(contoso, people):
    withdrawn = ask(contoso, people["client_admin"])
    services.change_request_withdraw(change_request=withdrawn, actor=people["client_admin"])
    with pytest.raises(services.ChangeRequestRefused, match="is withdrawn: it can no longer be quoted"):
        services.change_request_quote(change_request=withdrawn, actor=people["partner_admin"], fee=Decimal("5"))
    declined = quoted(contoso, people)
    services.change_request_decline(
        change_request=declined, actor=people["client_admin"], quote_version=1, reason="Too dear for now"
    )
    declined.refresh_from_db()
    assert declined.status == Status.DECLINED and declined.approved_at is None
    assert declined.comments.get().body == "Too dear for now"  # the reason is on the thread
    with pytest.raises(services.ChangeRequestRefused, match="is declined: it can no longer be approved"):
        services.change_request_approve(change_request=declined, actor=people["client_admin"], quote_version=1)


def test_a_quote_revised_meanwhile_is_not_approved_blind(contoso, people):
    change_request = quoted(contoso, people)  # 3 h: 450.00
    services.change_request_quote(change_request=change_request, actor=people["partner_admin"], hours=Decimal("4"))
    with pytest.raises(
        services.ChangeRequestRefused, match=r"The quote changed since you opened it: it is now \$600.00"
    ):
        services.change_request_approve(change_request=change_request, actor=people["client_admin"], quote_version=1)
    approved = services.change_request_approve(
        change_request=change_request, actor=people["client_admin"], quote_version=2
    )
    assert approved.quote_amount == Decimal("600.00")


def test_hours_need_an_hourly_rate_and_a_quote_needs_one_price(contoso, people):
    change_request = ask(contoso, people["client_admin"])
    with pytest.raises(services.ChangeRequestRefused, match="either a number of hours or a fixed fee"):
        services.change_request_quote(
            change_request=change_request, actor=people["partner_admin"], hours=Decimal("1"), fee=Decimal("1")
        )
    with pytest.raises(services.ChangeRequestRefused, match="more than 0"):
        services.change_request_quote(change_request=change_request, actor=people["partner_admin"], hours=Decimal("0"))
    Plan.objects.filter(pk=contoso.plan_id).update(hourly_rate=Decimal("0"))
    with pytest.raises(services.ChangeRequestRefused, match="has no hourly rate: quote a fixed fee"):
        services.change_request_quote(change_request=change_request, actor=people["partner_admin"], hours=Decimal("1"))
    fixed = services.change_request_quote(
        change_request=change_request, actor=people["partner_admin"], fee=Decimal("1234.565")
    )
    assert fixed.is_fixed_fee and fixed.quote_amount == Decimal("1234.57") and fixed.quote_rate is None


def test_a_quote_keeps_its_price_when_the_plans_rate_changes(contoso, people):
    change_request = quoted(contoso, people, hours=Decimal("1.25"))
    Plan.objects.filter(pk=contoso.plan_id).update(hourly_rate=Decimal("200.00"))
    change_request.refresh_from_db()
    assert (change_request.quote_rate, change_request.quote_amount) == (Decimal("150.00"), Decimal("187.50"))


# --- Audit and mail ------------------------------------------------------------------------------------------------


def test_each_side_audits_its_steps(contoso, people):
    change_request = quoted(contoso, people, fee=Decimal("250"))
    services.change_request_approve(change_request=change_request, actor=people["client_admin"], quote_version=1)
    services.change_request_deliver(change_request=change_request, actor=people["engineer"])
    partner_rows = PartnerAuditEvent.objects.filter(partner=contoso.partner, target_type="change_request")
    assert sorted(partner_rows.values_list("action", flat=True)) == [
        "change_request.delivered",
        "change_request.quoted",
    ]
    quote_row = partner_rows.get(action="change_request.quoted")
    assert quote_row.actor == people["partner_admin"] and "$250.00 (fixed fee)" in quote_row.summary
    assert quote_row.after["quote_amount"] == "250.00" and quote_row.before["status"] == "requested"
    with tenant_context(contoso):
        workspace_rows = list(
            AuditEvent.objects.filter(action__startswith="change_request.").values_list("action", "actor_email")
        )
    assert sorted(workspace_rows) == [
        ("change_request.approved", "admin@contoso.localhost"),
        ("change_request.delivered", "engineer@northwind.localhost"),
        ("change_request.quoted", "admin@northwind.localhost"),
        ("change_request.requested", "admin@contoso.localhost"),
    ]
    # The client's own steps stay out of the partner's log: it is about the partner's own work and settings.
    assert not partner_rows.filter(action__in=["change_request.requested", "change_request.approved"]).exists()


def test_each_step_mails_the_other_side(contoso, people, mailoutbox, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        change_request = ask(contoso, people["client_admin"])
    asked = mailoutbox[-1]
    assert sorted(asked.to) == ["admin@northwind.localhost", "engineer@northwind.localhost"]
    assert "New change request from Contoso Engineering" in asked.subject
    assert f"/partner/changes/{change_request.pk}/" in asked.body
    with django_capture_on_commit_callbacks(execute=True):
        services.change_request_quote(change_request=change_request, actor=people["engineer"], hours=Decimal("2"))
    quote = mailoutbox[-1]
    assert quote.to == ["admin@contoso.localhost"]
    assert "$300.00 (2 hours at $150.00)" in quote.body
    assert "/c/contoso/changes/1/" in quote.body
    with django_capture_on_commit_callbacks(execute=True):
        services.change_request_comment(change_request=change_request, actor=people["client_admin"], body="Thanks!")
    # The partner's people hear of it; the one who wrote does not get their own message back.
    assert sorted(mailoutbox[-1].to) == ["admin@northwind.localhost", "engineer@northwind.localhost"]
    assert "Thanks!" in mailoutbox[-1].body
    with django_capture_on_commit_callbacks(execute=True):
        services.change_request_comment(change_request=change_request, actor=people["engineer"], body="Welcome")
    assert mailoutbox[-1].to == ["admin@contoso.localhost"]
    sent = len(mailoutbox)
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(PermissionDenied):
        services.change_request_approve(change_request=change_request, actor=people["viewer"], quote_version=1)
    assert len(mailoutbox) == sent  # a refused step mails no one


# --- The statement -------------------------------------------------------------------------------------------------


def approved_on(change_request, moment: datetime):
    ChangeRequest.objects.filter(pk=change_request.pk).update(approved_at=moment)


def test_an_approved_fee_is_billed_on_the_statement_of_the_month_it_was_approved(contoso, people):
    month = timezone.localdate().replace(day=1)
    following, last_day = months_after(month, 1), month_last_day(month)
    before = client_statement(client=contoso, month=month)
    fee = quoted(contoso, people, fee=Decimal("1234.56"))
    services.change_request_approve(change_request=fee, actor=people["client_admin"], quote_version=1)
    hours = quoted(contoso, people, hours=Decimal("2.75"))  # 412.50
    services.change_request_approve(change_request=hours, actor=people["client_admin"], quote_version=1)
    services.change_request_deliver(change_request=hours, actor=people["engineer"])  # delivered: still billed
    declined = quoted(contoso, people, fee=Decimal("999"))
    services.change_request_decline(change_request=declined, actor=people["client_admin"], quote_version=1)
    quoted(contoso, people, fee=Decimal("555"))  # quoted, never approved: not billed
    next_month = quoted(contoso, people, fee=Decimal("70"))
    services.change_request_approve(change_request=next_month, actor=people["client_admin"], quote_version=1)
    tz = timezone.get_current_timezone()
    approved_on(fee, datetime.combine(last_day, time(23, 59, 59), tzinfo=tz))  # the month's last minute
    approved_on(hours, datetime.combine(month, time(0, 0, 1), tzinfo=tz))  # and its first
    approved_on(next_month, datetime.combine(following, time(0, 0, 1), tzinfo=tz))

    statement = client_statement(client=contoso, month=month)
    assert [line.number for line in statement.changes] == [hours.number, fee.number]
    assert statement.changes_amount == Decimal("1647.06")
    assert statement.total == before.total + Decimal("1647.06")
    later = client_statement(client=contoso, month=following)
    assert [line.amount for line in later.changes] == [Decimal("70.00")]

    statements = {line.client.slug: line for line in partner_statements(partner=contoso.partner, month=month)}
    assert statements["contoso"].changes_amount == Decimal("1647.06")
    assert statements["tailspin"].changes == ()
    usd = next(total for total in statement_totals(list(statements.values())) if total.currency == "USD")
    assert usd.changes_amount == Decimal("1647.06")


def test_a_quote_in_another_currency_is_listed_but_not_added(contoso, people):
    change_request = quoted(contoso, people, fee=Decimal("100"))
    services.change_request_approve(change_request=change_request, actor=people["client_admin"], quote_version=1)
    Plan.objects.filter(pk=contoso.plan_id).update(currency="EUR")
    contoso.plan.refresh_from_db()
    statement = client_statement(client=contoso, month=timezone.localdate())
    assert len(statement.changes) == 1 and statement.changes_amount == Decimal("0.00")
