"""A client never meets the platform's name: every page a client's people can reach and every email they
get carries the partner's brand (Northwind Connect) and nothing of SysGenPro, unless the partner chose it.

The pages are found by following the links and htmx requests of the pages themselves, as each client
role, from the workspace home and the account pages, so a page added later is covered without a list.
"""

from __future__ import annotations

import re
from collections import deque
from datetime import timedelta
from decimal import Decimal
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import pytest
from allauth.core import context
from allauth.mfa.adapter import get_adapter as get_mfa_adapter
from django.core import mail
from django.db import connection
from django.test import RequestFactory
from django.utils import timezone

from branding.models import Brand
from integrations.models import Connection, NotificationRecipient, Project, SyncRun
from integrations.notifications import notify, notify_step
from tenants import services
from tenants.models import ChangeRequest, Role
from tenants.services.changes import change_request_comment, change_request_create, change_request_quote
from tests.integrations.workspace_fixtures import seed_workspace
from tests.support import NORTHWIND, browser_for

pytestmark = pytest.mark.django_db

PLATFORM_NAME = re.compile(r"sys\s*gen\s*pro|\bsgp\b", re.IGNORECASE)
CLIENT_PEOPLE = ("admin@contoso.localhost", "finance@contoso.localhost", "viewer@contoso.localhost")
PAGES_PER_PATH = 4  # the same page under other filters, sorts or page numbers says nothing new


class Links(HTMLParser):
    """The GET addresses a page offers: links, htmx gets, and GET forms' actions."""

    def __init__(self):
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag, attrs):
        values = dict(attrs)
        for name in ("href", "hx-get"):
            if values.get(name):
                self.found.append(values[name])
        if tag == "form" and (values.get("method") or "get").lower() == "get" and values.get("action"):
            self.found.append(values["action"])


def leaks_in(text: str) -> list[str]:
    return [text[max(0, m.start() - 60) : m.end() + 60] for m in PLATFORM_NAME.finditer(text)]


def crawl(browser, start: list[str], inside: tuple[str, ...], limit: int = 400) -> dict[str, str]:
    """Every page reachable from `start` by GET whose path starts with one of `inside`: address -> body."""
    seen: dict[str, str] = {}
    per_path: dict[str, int] = {}
    queue = deque(start)
    while queue and len(seen) < limit:
        address = queue.popleft()
        parts = urlsplit(address)
        if address in seen or not parts.path.startswith(inside) or parts.path.endswith("/logout/"):
            continue
        if per_path.get(parts.path, 0) >= PAGES_PER_PATH:
            continue
        per_path[parts.path] = per_path.get(parts.path, 0) + 1
        response = browser.get(address)
        content = b"".join(response.streaming_content) if response.streaming else response.content
        body = content.decode(errors="replace")
        seen[address] = body
        if "html" not in response.get("Content-Type", ""):
            continue
        parser = Links()
        parser.feed(body)
        for found in parser.found:
            target = urlsplit(urljoin(f"http://{NORTHWIND}{address}", found))
            if target.netloc in ("", NORTHWIND) and target.scheme in ("", "http"):
                queue.append(target.path + (f"?{target.query}" if target.query else ""))
    return seen


@pytest.fixture
def contoso(world):
    """Contoso with connections, a packaged flow, runs and exceptions; people to notify; the partner's logo."""
    assert "sysgenpro" not in world.partners["northwind"].brand.product_name.lower()
    connection.set_tenant(world.clients["contoso"])
    seeded = seed_workspace()
    NotificationRecipient.objects.create(email="lead@contoso.localhost", on_deal_won=True)
    connection.set_schema_to_public()
    # A change request with a quote and a thread, so its pages are among those a client's people reach.
    change_request = change_request_create(
        client=world.clients["contoso"],
        actor=world.user("admin@contoso.localhost"),
        kind="new_flow",
        title="Expenses to the ERP",
        description="Approved expenses, nightly.",
    )
    change_request_quote(change_request=change_request, actor=world.user("admin@northwind.localhost"), fee=Decimal(300))
    return seeded


def test_no_page_a_client_reaches_names_the_platform(world, contoso):
    for email in CLIENT_PEOPLE:
        browser = browser_for(world.user(email), host=NORTHWIND)
        pages = crawl(browser, ["/c/contoso/", "/accounts/2fa/", "/accounts/password/change/"], ("/c/", "/accounts/"))
        # Enough of the workspace was reached for the check to mean something.
        assert len([page for page in pages if page.startswith("/c/contoso/")]) >= 15, sorted(pages)
        leaks = {address: leaks_in(body) for address, body in pages.items() if leaks_in(body)}
        assert not leaks, f"{email} met the platform's name: {leaks}"

    anonymous = browser_for(host=NORTHWIND)
    for address in ("/accounts/login/", "/accounts/password/reset/", "/c/contoso/", "/no-such-page/", "/c/nobody/"):
        response = anonymous.get(address, follow=True)
        assert not leaks_in(response.content.decode()), address


def test_the_authenticator_app_lists_the_partners_product(world):
    request = RequestFactory().get("/accounts/2fa/totp/activate/", HTTP_HOST=NORTHWIND)
    request.partner = world.partners["northwind"]
    with context.request_context(request):
        url = get_mfa_adapter().build_totp_url(world.user("finance@contoso.localhost"), "JBSWY3DPEHPK3PXP")
    assert url.endswith("&issuer=Northwind%20Connect") and not leaks_in(url), url


def test_no_email_a_client_gets_names_the_platform_and_worker_mail_carries_the_logo(
    world, contoso, django_capture_on_commit_callbacks
):
    brand = Brand.objects.get(partner=world.partners["northwind"])
    assert brand.logo, "the demo's Northwind brand has a logo"
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        services.user_invite(
            email="new.clerk@contoso.localhost", role=Role.CLIENT_FINANCE, client=world.clients["contoso"]
        )
    browser_for(host=NORTHWIND).post("/accounts/password/reset/", {"email": "finance@contoso.localhost"})

    # What a worker sends: no request, so nothing but the client's schema says whose brand it is.
    connection.set_tenant(world.clients["contoso"])
    try:
        run = SyncRun.objects.create(flow=contoso.flow, trigger="schedule", status=SyncRun.Status.FAILED)
        run.finished_at, run.error = timezone.now(), "NetSuite refused the login"
        run.save()
        notify(kind="run_failed", run=run)
        notify(kind="connection_failed", connection=Connection.objects.first())
        notify(kind="sla_breach", count=3, oldest=timezone.now() - timedelta(days=3), hours=24)
        project = Project.objects.create(code="PRJ-900", name="Data platform")
        notify_step(step=None, items=[type("Item", (), {"records": {"project": project}})()])
    finally:
        connection.set_schema_to_public()
    with django_capture_on_commit_callbacks(execute=True):  # the partner's reply on a change request
        change_request_comment(
            change_request=ChangeRequest.objects.get(client=world.clients["contoso"]),
            actor=world.user("admin@northwind.localhost"),
            body="Next week.",
        )

    sent = {message.subject: message for message in mail.outbox}
    assert len(sent) == 7, sorted(sent)
    for subject, message in sent.items():
        html = message.alternatives[0][0]
        everything = "\n".join([message.from_email, subject, message.body, html, str(message.reply_to)])
        assert not leaks_in(everything), f"“{subject}” names the platform: {leaks_in(everything)}"
        assert message.from_email == "Northwind Advisory <no-reply@northwind.localhost>"
        assert f"http://{NORTHWIND}" in html and "/brand/logo?v=" in html, f"“{subject}” has no logo"


def test_a_partner_that_keeps_the_platforms_name_shows_it(world):
    brand = Brand.objects.get(partner=world.partners["summit"])
    Brand.objects.filter(pk=brand.pk).update(product_name="SysGenPro Connect")
    page = browser_for(host="summit.localhost").get("/accounts/login/").content.decode()
    assert "SysGenPro Connect" in page


# Ids and field names written into the clients' own systems: our record keys, the custom fields and labels
# that carry them, in every vendor that has one.
def test_ids_written_into_a_clients_systems_do_not_name_the_platform():
    from connectors.dynamics365.client import DEFAULT_EXTERNAL_ID_FIELD as DATAVERSE_FIELD
    from connectors.dynamics365.client import WEBHOOK_KEY_HEADER
    from connectors.hubspot.records import EXTERNAL_ID_PROPERTY
    from connectors.intacct.client import DEFAULT_EXTERNAL_ID_FIELD as INTACCT_FIELD
    from connectors.jira.records import EXTERNAL_ID_LABEL_PREFIX
    from connectors.salesforce.client import DEFAULT_EXTERNAL_ID_FIELD, WEBHOOK_SIGNATURE_HEADER
    from integrations.engine.views import record_key

    written = [
        record_key("customer", 101),
        EXTERNAL_ID_PROPERTY,
        DEFAULT_EXTERNAL_ID_FIELD,
        WEBHOOK_SIGNATURE_HEADER,
        EXTERNAL_ID_LABEL_PREFIX,
        DATAVERSE_FIELD,
        WEBHOOK_KEY_HEADER,
        INTACCT_FIELD,
    ]
    assert not [value for value in written if PLATFORM_NAME.search(value.replace("_", " ").replace("-", " "))]
