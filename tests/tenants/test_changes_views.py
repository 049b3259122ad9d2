"""Change request pages on both sides: the forms and their refusals, who sees which button, and isolation: a client
never reaches another client's requests, a partner never another partner's, however the URL or the POST is forged."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest
from django.utils import timezone

from tenants.models import ChangeRequest, Client, Membership, Plan, Role
from tenants.services import changes as services
from tests.support import NORTHWIND, SUMMIT, browser_for

pytestmark = pytest.mark.django_db

Status = ChangeRequest.Status


@pytest.fixture
def contoso(world):
    client = Client.objects.select_related("plan", "partner").get(pk=world.clients["contoso"].pk)
    Plan.objects.filter(pk=client.plan_id).update(hourly_rate=Decimal("150.00"), currency="USD")
    client.plan.refresh_from_db()
    return client


@pytest.fixture
def tailspin(world):
    return Client.objects.select_related("plan", "partner").get(pk=world.clients["tailspin"].pk)


def as_(world, email, host=NORTHWIND):
    return browser_for(world.user(email), host=host)


def ask(client, user, title="Send approved expenses to NetSuite"):
    return services.change_request_create(
        client=client, actor=user, kind=ChangeRequest.Kind.NEW_FLOW, title=title, description="Nightly, please."
    )


# --- The workspace --------------------------------------------------------------------------------------------------


def test_client_admin_asks_for_a_change_and_bad_input_comes_back_with_the_message(world, contoso):
    admin = as_(world, "admin@contoso.localhost")
    page = admin.get("/c/contoso/changes/")
    assert page.status_code == 200 and b"Ask for a change" in page.content
    refused = admin.post("/c/contoso/changes/new", {"kind": "new_flow", "title": "  ", "description": "x"})
    assert refused.status_code == 422
    assert b"This field is required." in refused.content and b'value="new_flow" selected' in refused.content
    assert not ChangeRequest.objects.filter(client=contoso).exists()
    sent = admin.post(
        "/c/contoso/changes/new",
        {"kind": "mapping", "title": "Map cost centres", "description": "The new ones from HR."},
    )
    change_request = ChangeRequest.objects.get(client=contoso)
    assert sent.status_code == 302 and sent["Location"] == f"/c/contoso/changes/{change_request.number}/"
    detail = admin.get(sent["Location"])
    assert b"Map cost centres" in detail.content and b"Not quoted yet." in detail.content
    assert b"Withdraw request" in detail.content


def test_viewers_read_but_cannot_ask_decide_or_comment(world, contoso):
    change_request = ask(contoso, world.user("admin@contoso.localhost"))
    viewer = as_(world, "viewer@contoso.localhost")
    listing = viewer.get("/c/contoso/changes/")
    assert listing.status_code == 200 and b"Send approved expenses" in listing.content
    assert b"Ask for a change" not in listing.content
    detail = viewer.get(f"/c/contoso/changes/{change_request.number}/")
    assert detail.status_code == 200 and b"Post message" not in detail.content and b"Withdraw" not in detail.content
    assert viewer.get("/c/contoso/changes/new").status_code == 403
    base = f"/c/contoso/changes/{change_request.number}"
    assert viewer.post("/c/contoso/changes/new", {"kind": "other", "title": "t", "description": "d"}).status_code == 403
    assert viewer.post(f"{base}/withdraw").status_code == 403
    assert viewer.post(f"{base}/decide", {"decision": "approve", "quote_version": 0}).status_code == 403
    assert viewer.post(f"{base}/comment", {"body": "Me too"}).status_code == 403
    change_request.refresh_from_db()
    assert change_request.status == Status.REQUESTED and not change_request.comments.exists()
    assert ChangeRequest.objects.filter(client=contoso).count() == 1


def test_finance_comments_on_the_thread(world, contoso):
    change_request = ask(contoso, world.user("admin@contoso.localhost"))
    finance = as_(world, "finance@contoso.localhost")
    base = f"/c/contoso/changes/{change_request.number}"
    empty = finance.post(f"{base}/comment", {"body": "   "})
    assert empty.status_code == 422 and b"This field is required." in empty.content
    assert finance.post(f"{base}/comment", {"body": "Which month is it billed in?"}).status_code == 302
    assert b"Which month is it billed in?" in finance.get(f"{base}/").content


def test_a_client_never_reaches_another_clients_requests(world, contoso, tailspin):
    theirs = ask(contoso, world.user("admin@contoso.localhost"), title="Contoso secret plan")
    services.change_request_quote(change_request=theirs, actor=world.user("admin@northwind.localhost"), fee=Decimal(9))
    tom = as_(world, "admin@tailspin.localhost")
    # Contoso's workspace is not Tom's: every page and every POST under it is not found.
    assert tom.get("/c/contoso/changes/").status_code == 404
    assert tom.get(f"/c/contoso/changes/{theirs.number}/").status_code == 404
    forged = tom.post(f"/c/contoso/changes/{theirs.number}/decide", {"decision": "approve", "quote_version": 1})
    assert forged.status_code == 404
    assert tom.post(f"/c/contoso/changes/{theirs.number}/withdraw").status_code == 404
    assert tom.post(f"/c/contoso/changes/{theirs.number}/comment", {"body": "hi"}).status_code == 404
    # Under Tom's own workspace, Contoso's number names nothing (Tailspin has no request yet)...
    assert tom.get(f"/c/tailspin/changes/{theirs.number}/").status_code == 404
    assert (
        tom.post(f"/c/tailspin/changes/{theirs.number}/decide", {"decision": "approve", "quote_version": 1}).status_code
        == 404
    )
    listing = tom.get("/c/tailspin/changes/")
    assert b"Contoso secret plan" not in listing.content
    # ...and once Tailspin has its own #1, acting on it touches Tailspin's only.
    own = ask(tailspin, world.user("admin@tailspin.localhost"), title="Tailspin own request")
    assert own.number == theirs.number
    assert tom.post(f"/c/tailspin/changes/{own.number}/withdraw").status_code == 302
    theirs.refresh_from_db()
    own.refresh_from_db()
    assert (theirs.status, own.status) == (Status.QUOTED, Status.WITHDRAWN)
    assert not theirs.comments.exists()


def test_a_quote_changed_while_the_client_read_it_is_refused_with_the_new_price(world, contoso):
    change_request = ask(contoso, world.user("admin@contoso.localhost"))
    partner_admin = world.user("admin@northwind.localhost")
    services.change_request_quote(change_request=change_request, actor=partner_admin, hours=Decimal("2"))
    services.change_request_quote(change_request=change_request, actor=partner_admin, hours=Decimal("3"))
    admin = as_(world, "admin@contoso.localhost")
    base = f"/c/contoso/changes/{change_request.number}"
    stale = admin.post(f"{base}/decide", {"decision": "approve", "quote_version": 1})
    assert stale.status_code == 422
    assert "The quote changed since you opened it: it is now $450.00" in stale.content.decode()
    assert b'name="quote_version" value="2"' in stale.content  # the page offers the new quote to decide on
    garbled = admin.post(f"{base}/decide", {"decision": "approve", "quote_version": "x"})
    assert garbled.status_code == 422 and b"Open the quote again before you decide." in garbled.content
    change_request.refresh_from_db()
    assert change_request.status == Status.QUOTED
    approved = admin.post(f"{base}/decide", {"decision": "approve", "quote_version": 2})
    assert approved.status_code == 302
    change_request.refresh_from_db()
    assert change_request.status == Status.APPROVED and change_request.quote_amount == Decimal("450.00")


# --- The partner console --------------------------------------------------------------------------------------------


def test_partner_quotes_and_bad_input_comes_back_with_the_message(world, contoso):
    change_request = ask(contoso, world.user("admin@contoso.localhost"))
    engineer = as_(world, "engineer@northwind.localhost")
    listing = engineer.get("/partner/changes/")
    assert listing.status_code == 200 and b"Send approved expenses" in listing.content
    url = f"/partner/changes/{change_request.pk}/"
    page = engineer.get(url)
    assert page.status_code == 200 and b"Send quote" in page.content and b"$150.00 an hour" in page.content
    missing = engineer.post(f"{url}quote", {"basis": "hours", "hours": "", "note": ""})
    assert missing.status_code == 422 and b"How many hours?" in missing.content
    negative = engineer.post(f"{url}quote", {"basis": "fee", "fee": "-5"})
    assert negative.status_code == 422 and b"greater than or equal to 0" in negative.content
    change_request.refresh_from_db()
    assert change_request.status == Status.REQUESTED
    sent = engineer.post(f"{url}quote", {"basis": "hours", "hours": "2.5", "note": "Next week"})
    assert sent.status_code == 302 and sent["Location"] == url
    change_request.refresh_from_db()
    assert (change_request.status, change_request.quote_amount) == (Status.QUOTED, Decimal("375.00"))
    assert engineer.post(f"{url}deliver", {}).status_code == 422  # not approved yet
    change_request.refresh_from_db()
    assert change_request.status == Status.QUOTED


def test_a_plan_without_an_hourly_rate_quotes_fixed_fees_only(world, contoso):
    Plan.objects.filter(pk=contoso.plan_id).update(hourly_rate=0)
    change_request = ask(contoso, world.user("admin@contoso.localhost"))
    admin = as_(world, "admin@northwind.localhost")
    url = f"/partner/changes/{change_request.pk}/"
    page = admin.get(url)
    assert b"plan has no hourly rate" in page.content and b'name="hours"' not in page.content
    forged = admin.post(f"{url}quote", {"basis": "hours", "hours": "3"})  # fields the form does not have
    assert forged.status_code == 422 and b"What is the fee?" in forged.content
    assert admin.post(f"{url}quote", {"fee": "800"}).status_code == 302
    change_request.refresh_from_db()
    assert change_request.is_fixed_fee and change_request.quote_amount == Decimal("800.00")


def test_a_partner_never_reaches_another_partners_requests(world, contoso):
    change_request = ask(contoso, world.user("admin@contoso.localhost"), title="Contoso secret plan")
    summit = as_(world, "admin@summit.localhost", host=SUMMIT)
    assert b"Contoso secret plan" not in summit.get("/partner/changes/?show=all").content
    url = f"/partner/changes/{change_request.pk}/"
    assert summit.get(url).status_code == 404
    assert summit.post(f"{url}quote", {"fee": "1"}).status_code == 404
    assert summit.post(f"{url}comment", {"body": "hello"}).status_code == 404
    assert summit.post(f"{url}deliver", {}).status_code == 404
    # On Northwind's host Summit's admin has no role at all.
    wrong_host = as_(world, "admin@summit.localhost")
    assert wrong_host.get(url).status_code in (403, 404)
    assert wrong_host.post(f"{url}quote", {"fee": "1"}).status_code in (403, 404)
    # Clients' people have no place in the console.
    assert as_(world, "admin@contoso.localhost").post(f"{url}quote", {"fee": "1"}).status_code == 403
    change_request.refresh_from_db()
    assert change_request.status == Status.REQUESTED and not change_request.comments.exists()


def test_staff_see_only_the_clients_assigned_to_them(world):
    wingtip = Client.objects.get(pk=world.clients["wingtip"].pk)
    someone = world.user("viewer@contoso.localhost")
    Membership.objects.create(user=someone, client=wingtip, role=Role.CLIENT_ADMIN)
    change_request = ask(wingtip, someone, title="Wingtip cost centres")
    engineer = as_(world, "engineer@northwind.localhost")
    assert b"Wingtip cost centres" not in engineer.get("/partner/changes/?show=all").content
    assert engineer.get(f"/partner/changes/{change_request.pk}/").status_code == 404
    assert engineer.post(f"/partner/changes/{change_request.pk}/quote", {"fee": "1"}).status_code == 404
    admin = as_(world, "admin@northwind.localhost")
    assert b"Wingtip cost centres" in admin.get("/partner/changes/").content


def test_a_clients_page_leads_to_its_requests_and_the_queue_filters_by_reachable_client(world, contoso, tailspin):
    ask(contoso, world.user("admin@contoso.localhost"), title="Contoso expenses")
    ask(tailspin, world.user("admin@tailspin.localhost"), title="Tailspin timesheets")
    engineer = as_(world, "engineer@northwind.localhost")
    detail = engineer.get("/partner/clients/contoso/").content.decode()
    assert "/partner/changes/?client=contoso" in detail and "1 open" in detail
    only_contoso = engineer.get("/partner/changes/?client=contoso").content.decode()
    assert "Contoso expenses" in only_contoso and "Tailspin timesheets" not in only_contoso
    everything = engineer.get("/partner/changes/").content.decode()
    assert "Contoso expenses" in everything and "Tailspin timesheets" in everything
    wingtip = Client.objects.get(pk=world.clients["wingtip"].pk)
    someone = world.user("viewer@contoso.localhost")
    Membership.objects.create(user=someone, client=wingtip, role=Role.CLIENT_ADMIN)
    ask(wingtip, someone, title="Wingtip payroll")
    # A client the engineer is not assigned to, or another partner's, filters to nothing rather than showing it.
    for slug in ("wingtip", "fabrikam", "nobody"):
        page = engineer.get(f"/partner/changes/?client={slug}&show=all").content.decode()
        assert "Wingtip payroll" not in page and "Contoso expenses" not in page and "No change requests yet" in page


def test_the_statement_and_the_csv_bill_the_approved_quote_to_the_cent(world, contoso):
    client_admin, partner_admin = world.user("admin@contoso.localhost"), world.user("admin@northwind.localhost")
    month = timezone.localdate().replace(day=1)
    before = as_(world, "admin@northwind.localhost").get(f"/partner/revenue/contoso/?month={month:%Y-%m}")
    change_request = ask(contoso, client_admin, title="Expenses to NetSuite")
    services.change_request_quote(change_request=change_request, actor=partner_admin, hours=Decimal("3.33"))  # 499.50
    services.change_request_approve(change_request=change_request, actor=client_admin, quote_version=1)
    admin = as_(world, "admin@northwind.localhost")
    page = admin.get(f"/partner/revenue/contoso/?month={month:%Y-%m}").content.decode()
    assert "Change request #1 “Expenses to NetSuite”" in page
    assert "3.33 h × $150.00" in page and "$499.50" in page
    was = Decimal(_total(before.content.decode()))
    assert Decimal(_total(page)) == was + Decimal("499.50")
    rows = list(csv.DictReader(io.StringIO(admin.get("/partner/revenue/statements.csv").content.decode())))
    row = next(row for row in rows if row["workspace"] == "contoso")
    assert row["changes_amount"] == "499.50" and row["change_requests"] == "#1 499.50"
    assert Decimal(row["total"]) == was + Decimal("499.50")


def _total(html: str) -> str:
    start = html.index('data-testid="statement-total">') + len('data-testid="statement-total">')
    return html[start : html.index("<", start)].replace("$", "").replace(",", "")
