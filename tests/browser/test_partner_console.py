"""Partner console journeys: Chromium drives the product's real gunicorn, as a partner admin and staff would.

The journeys change what they touch, so they run on a partner of their own (Lakeside Advisory,
on lakeside.localhost), committed once for this module; the demo partners stay as seeded.
This module's web server writes emails to files, which the journeys open like an inbox.
"""

from __future__ import annotations

import email
import email.policy
import os
import re
import signal
import time
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from unittest import mock

import pytest
from playwright.sync_api import expect

from tenants.demo import DEMO_PASSWORD, logo_png
from tests.browser.conftest import loaded_width, screenshot, sign_in
from tests.support import free_port, start_web, user_who_can_sign_in

pytestmark = [pytest.mark.django_db, pytest.mark.browser]

HOST = "lakeside.localhost"
TEAL = "rgb(15, 118, 110)"
NEW_PASSWORD = "lakeside-journey-2026"


@dataclass
class Lakeside:
    base: str
    outbox: Path


@pytest.fixture(scope="module")
def outbox(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("outbox")


@pytest.fixture(scope="module")
def web(world, outbox, tmp_path_factory):
    """This module's gunicorn: like the session's, but emails go to files and uploads to a scratch folder."""
    env = {
        "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
        "EMAIL_FILE_PATH": str(outbox),
        "MEDIA_ROOT": str(tmp_path_factory.mktemp("media")),
    }
    port = free_port()
    with mock.patch.dict(os.environ, env):  # start_web passes os.environ on to the server
        process = start_web(port, tmp_path_factory.mktemp("partner-web") / "web.log")
    yield f"{port}"
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=20)


@pytest.fixture(scope="module")
def lakeside(world, web, outbox, django_db_blocker) -> Lakeside:
    """Lakeside Advisory: three clients on three plans with a few months of usage, committed for the server."""
    with django_db_blocker.unblock():
        from branding.models import Brand
        from tenants import services
        from tenants.models import MfaPolicy, Partner, Plan

        if not Partner.objects.filter(slug="lakeside").exists():
            partner = services.partner_create(
                name="Lakeside Advisory",
                slug="lakeside",
                domain=HOST,
                admin_email="admin@lakeside.localhost",
                admin_name="Lena Admin",
            )
            admin = user_who_can_sign_in("admin@lakeside.localhost", DEMO_PASSWORD)
            # These journeys are about the console; two-factor sign-in has journeys of its own.
            Partner.objects.filter(pk=partner.pk).update(mfa_policy=MfaPolicy.OPTIONAL)
            Brand.objects.filter(partner=partner).update(
                product_name="Lakeside Connect",
                primary_color="#1E40AF",
                accent_color="#F97316",
                support_email="support@lakeside.example",
                support_url="https://lakeside.example/help",
                login_message="Lakeside Connect keeps your CRM, ERP and PSA in step, run by Lakeside Advisory.",
                email_sender_name="Lakeside Advisory",
                email_footer="Lakeside Advisory · Managed integrations for professional services",
            )
            Plan.objects.filter(partner=partner, name="Standard").update(
                monthly_price=Decimal("490.00"), included_records=40_000, overage_per_1000=Decimal("4.00"), max_flows=6
            )
            starter = Plan.objects.create(
                partner=partner,
                name="Starter",
                monthly_price=Decimal("190.00"),
                included_records=10_000,
                overage_per_1000=Decimal("5.00"),
                max_connections=2,
                max_flows=2,
                min_sync_interval_minutes=60,
                sla_support_hours=48,
                sla_resolution_hours=72,
                sla_freshness_hours=24,
            )
            growth = Plan.objects.create(
                partner=partner,
                name="Growth",
                monthly_price=Decimal("1190.00"),
                included_records=100_000,
                overage_per_1000=Decimal("3.00"),
                max_connections=10,
                max_flows=20,
                min_sync_interval_minutes=15,
                sla_support_hours=8,
                sla_resolution_hours=24,
                sla_freshness_hours=4,
            )
            standard = partner.plans.get(name="Standard")
            # Client admins' addresses are Lakeside's own: other journeys' partners have an admin@harbor.localhost.
            usage = {"harbor": (118_400, 96_200), "maple": (31_750, 28_900), "orchard": (9_100, 6_400)}
            for slug, name, plan in (
                ("harbor", "Harbor Legal", growth),
                ("maple", "Maple Engineering", standard),
                ("orchard", "Orchard Analytics", starter),
            ):
                client = services.client_create(
                    partner=partner,
                    name=name,
                    slug=slug,
                    plan=plan,
                    admin_email=f"admin@{slug}.lakeside.localhost",
                    actor=admin,
                )
                this_month = client.created_at.date()
                last_month = (this_month.replace(day=1) - timedelta(days=1)).replace(day=1)
                current, previous = usage[slug]
                services.usage_record_upsert(client=client, month=this_month, records_synced=current, runs=180)
                services.usage_record_upsert(client=client, month=last_month, records_synced=previous, runs=420)
    return Lakeside(base=f"http://{HOST}:{web}", outbox=outbox)


def emails_to(outbox: Path, address: str, timeout: float = 10) -> list[email.message.EmailMessage]:
    """Messages the file backend wrote for `address`, oldest first."""
    deadline = time.time() + timeout
    while True:
        found = []
        for path in sorted(outbox.glob("*.log"), key=lambda p: p.stat().st_mtime):
            for chunk in path.read_bytes().split(b"\n" + b"-" * 79 + b"\n"):
                if chunk.strip():
                    message = email.message_from_bytes(chunk.lstrip(), policy=email.policy.default)
                    if address in (message["To"] or ""):
                        found.append(message)
        if found or time.time() > deadline:
            return found
        time.sleep(0.2)


def accept_invitation(page, message, password: str = NEW_PASSWORD) -> None:
    """Follow the email's link and choose a password, as the invited person does."""
    link = re.search(r"http://\S+/accounts/password/reset/key/\S+", message.get_body(("plain",)).get_content()).group(0)
    page.goto(link)
    page.locator("input[name=password1]").fill(password)
    page.locator("input[name=password2]").fill(password)
    page.locator("form button[type=submit]").first.click()
    page.wait_for_load_state("networkidle")


def switcher_items(page) -> list[str]:
    page.get_by_label("Switch client workspace").click()
    return page.locator(".switcher-item").all_inner_texts()


def test_staff_assigned_to_two_of_three_clients_see_exactly_those(page, chromium, lakeside):
    base = lakeside.base
    sign_in(page, base, "admin@lakeside.localhost")
    page.get_by_role("link", name="Team").click()
    invite = page.locator("#invite-form")
    invite.get_by_label("Email").fill("rosa@lakeside.localhost")
    invite.get_by_label("Name").fill("Rosa Staff")
    invite.get_by_label("Harbor Legal").check()
    invite.get_by_label("Orchard Analytics").check()
    invite.get_by_role("button", name="Send invitation").click()
    expect(page.locator(".toast")).to_contain_text("Invitation sent to rosa@lakeside.localhost")
    row = page.get_by_test_id("team").get_by_role("row").filter(has_text="Rosa Staff")
    expect(row).to_contain_text("Harbor Legal, Orchard Analytics")
    screenshot(page, "partner-team")

    (invitation,) = emails_to(lakeside.outbox, "rosa@lakeside.localhost")
    staff_context = chromium.new_context(viewport={"width": 1280, "height": 800})
    staff = staff_context.new_page()
    accept_invitation(staff, invitation)
    sign_in(staff, base, "rosa@lakeside.localhost", NEW_PASSWORD)
    assert staff.url == f"{base}/partner/"
    listed = staff.get_by_test_id("client-list").locator("tbody .row-link").all_inner_texts()
    assert listed == ["Harbor Legal", "Orchard Analytics"]
    nav = staff.get_by_role("navigation", name="Main").inner_text()
    assert "Clients" in nav and "Revenue" not in nav and "Plans" not in nav
    assert switcher_items(staff) == ["Harbor Legal", "Orchard Analytics"]

    staff.get_by_role("menuitem", name="Harbor Legal").click()
    assert staff.url == f"{base}/c/harbor/"
    expect(staff.get_by_role("heading", level=1)).to_have_text("Harbor Legal")
    members = staff.get_by_test_id("member-list").inner_text()
    assert "admin@harbor.lakeside.localhost" in members and "admin@orchard.lakeside.localhost" not in members

    assert switcher_items(staff) == ["Harbor Legal", "Orchard Analytics"]
    staff.get_by_role("menuitem", name="Orchard Analytics").click()
    assert staff.url == f"{base}/c/orchard/"
    expect(staff.get_by_role("heading", level=1)).to_have_text("Orchard Analytics")
    members = staff.get_by_test_id("member-list").inner_text()
    assert "admin@orchard.lakeside.localhost" in members and "admin@harbor.lakeside.localhost" not in members

    staff.goto(f"{base}/partner/clients/orchard/")
    expect(staff.get_by_role("heading", level=1)).to_have_text("Orchard Analytics")
    assert "Suspend workspace" not in staff.content()
    for path in ("/c/maple/", "/partner/clients/maple/"):
        response = staff.goto(f"{base}{path}")
        assert response.status == 404, path
    staff_context.close()


def test_partner_admin_rebrands_and_workspace_login_and_invitation_show_it(page, chromium, lakeside):
    base = lakeside.base
    sign_in(page, base, "admin@lakeside.localhost")
    page.get_by_role("link", name="Brand").click()
    preview = page.get_by_test_id("brand-preview")
    expect(preview.get_by_text("Live now")).to_be_visible()

    page.get_by_label("Primary colour").fill("#0f766e")
    expect(preview.locator(".pv-topbar")).to_have_css("border-top-color", TEAL)
    expect(preview.get_by_text("Not saved yet")).to_be_visible()
    page.get_by_label("Logo", exact=True).set_input_files(
        files=[{"name": "lakeside.png", "mimeType": "image/png", "buffer": logo_png("LA", "#0F766E", "#F97316", 240)}]
    )
    expect(preview.locator("img.pv-login-logo")).to_have_attribute("src", re.compile(r"^data:image/png;base64,"))
    expect(preview.get_by_test_id("contrast-1")).to_contain_text("AA")
    screenshot(page, "partner-brand-editor")

    page.get_by_role("button", name="Save brand").click()
    expect(page.locator(".toast")).to_contain_text("Brand saved")
    expect(page.locator(".topbar")).to_have_css("border-top-color", TEAL)
    assert loaded_width(page.locator("img.brand-logo")) == 240

    page.get_by_role("link", name="Clients").click()
    page.get_by_role("link", name="New client").click()
    page.get_by_label("Client name").fill("Birch Design")
    page.get_by_label("Plan").select_option(label="Starter")
    page.get_by_label("Client admin's email").fill("owner@birch.example")
    page.get_by_label("Client admin's name").fill("Bea Owner")
    page.get_by_role("button", name="Create workspace and invite").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Birch Design")
    expect(page.locator(".toast")).to_contain_text("an invitation went to owner@birch.example")

    page.get_by_role("link", name="Open workspace").click()
    assert page.url == f"{base}/c/birch-design/"
    expect(page.locator(".topbar")).to_have_css("border-top-color", TEAL)
    assert loaded_width(page.locator("img.brand-logo")) == 240

    (invitation,) = emails_to(lakeside.outbox, "owner@birch.example")
    assert invitation["From"].startswith("Lakeside Advisory <")
    assert invitation["Subject"] == "You are invited · Lakeside Connect"
    html = invitation.get_body(("html",)).get_content()
    assert "background:#0F766E" in html and f"{base}/brand/logo?v=" in html
    reader = chromium.new_context(viewport={"width": 720, "height": 640}).new_page()
    reader.set_content(html, wait_until="networkidle")
    header = reader.locator("td:has(> img)")
    expect(header).to_have_text("Lakeside Connect")
    expect(header).to_have_css("background-color", TEAL)
    assert loaded_width(header.locator("img")) == 240
    expect(reader.get_by_text("Lakeside Advisory · Managed integrations")).to_be_visible()
    screenshot(reader, "invitation-email")
    reader.context.close()

    owner_context = chromium.new_context(viewport={"width": 1280, "height": 800})
    owner = owner_context.new_page()
    owner.goto(f"{base}/accounts/login/")
    expect(owner.locator(".entrance-card")).to_have_css("border-top-color", TEAL)
    assert loaded_width(owner.locator("img.entrance-logo")) == 240
    expect(owner.get_by_test_id("login-message")).to_contain_text("Lakeside Connect keeps your CRM")
    screenshot(owner, "login-lakeside-rebranded")
    accept_invitation(owner, invitation)
    sign_in(owner, base, "owner@birch.example", NEW_PASSWORD)
    assert owner.url == f"{base}/c/birch-design/"
    expect(owner.get_by_role("heading", level=1)).to_have_text("Birch Design")
    expect(owner.locator(".topbar")).to_have_css("border-top-color", TEAL)
    owner_context.close()


def test_partner_admin_rebrands_and_finds_the_change_in_the_audit_log(page, lakeside):
    base = lakeside.base
    sign_in(page, base, "admin@lakeside.localhost")
    page.get_by_role("link", name="Brand").click()
    page.get_by_label("Support email").fill("help@lakeside-audit.example")
    page.get_by_role("button", name="Save brand").click()
    expect(page.locator(".toast")).to_contain_text("Brand saved")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Audit log").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Audit log")
    rows = page.get_by_test_id("audit-events").locator("tbody tr")
    newest = rows.first
    expect(newest).to_contain_text("Brand changed: support email")
    expect(newest).to_contain_text("admin@lakeside.localhost")
    newest.get_by_text("Before and after").click()
    expect(newest.locator("dl.change")).to_contain_text("help@lakeside-audit.example")
    expect(newest.locator("dl.change")).to_contain_text("support@lakeside.example")
    # The clients the fixture created are in the log too; the filter narrows it to the brand's changes.
    expect(rows.filter(has_text="Harbor Legal workspace created")).to_have_count(1)
    page.get_by_label("What").select_option(label="Brand")
    expect(rows.filter(has_text="workspace created")).to_have_count(0)
    expect(rows.first).to_contain_text("Brand changed: support email")
    assert "action=brand" in page.url
    rows.first.get_by_text("Before and after").click()
    screenshot(page, "partner-audit-log")


def test_partner_admin_suspends_a_client_after_confirming_and_resumes_it(page, lakeside):
    base = lakeside.base
    sign_in(page, base, "admin@lakeside.localhost")
    page.goto(f"{base}/partner/clients/maple/")
    dialogs = []

    def answer(dialog):
        dialogs.append(dialog.message)
        dialog.accept()

    page.on("dialog", answer)
    page.get_by_role("button", name="Suspend workspace").click()
    expect(page.locator(".toast")).to_contain_text("Maple Engineering is suspended")
    assert dialogs == ["Suspend Maple Engineering? Its syncs stop until you resume it."]
    expect(page.locator(".header-badges")).to_contain_text("Suspended")
    page.goto(f"{base}/c/maple/")
    expect(page.locator(".banner-warning")).to_contain_text("This workspace is suspended")
    page.goto(f"{base}/partner/clients/maple/")
    page.get_by_role("button", name="Resume Maple Engineering").click()
    expect(page.locator(".toast")).to_contain_text("Maple Engineering is active again")


def test_partner_console_pages_for_the_screenshots(page, lakeside):
    base = lakeside.base
    sign_in(page, base, "admin@lakeside.localhost")
    assert page.url == f"{base}/partner/"
    expect(page.get_by_test_id("client-list")).to_contain_text("Harbor Legal")
    screenshot(page, "partner-home")

    page.get_by_label("Search clients").fill("harb")
    expect(page.get_by_test_id("client-list").locator("tbody tr")).to_have_count(1)
    assert "q=harb" in page.url

    page.get_by_role("link", name="Plans").click()
    expect(page.get_by_test_id("plan-cards")).to_contain_text("Growth")
    screenshot(page, "partner-plans")

    page.get_by_role("link", name="New plan").click()
    page.get_by_label("Plan name").fill("Growth")
    page.get_by_role("button", name="Create plan").click()
    expect(page.locator("#plan-form .error").first).to_contain_text("You already have a plan with this name.")
    screenshot(page, "partner-plan-form-errors")

    page.goto(f"{base}/partner/clients/harbor/")
    expect(page.get_by_test_id("health-usage")).to_contain_text("118,400")
    screenshot(page, "partner-client-health")

    page.get_by_role("link", name="Revenue").click()
    expect(page.get_by_test_id("statements")).to_contain_text("Harbor Legal")
    screenshot(page, "partner-revenue")
    page.get_by_test_id("statements").get_by_role("link", name="Harbor Legal").click()
    expect(page.get_by_test_id("statement-total")).to_have_text("$1,245.20")  # 1,190 + 18,400 over x 3.00/1,000
    screenshot(page, "partner-statement")

    page.goto(f"{base}/partner/domains/")
    page.get_by_label("Custom domain").fill("connect.lakeside.example")
    page.get_by_role("button", name="Add domain").click()
    expect(page.get_by_test_id("domain-connect.lakeside.example")).to_contain_text("Waiting for DNS")
    expect(page.locator("#domain-panel .callout-ok")).to_contain_text("connect.lakeside.example added")
    screenshot(page, "partner-domains")

    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{base}/partner/")
    screenshot(page, "partner-home-mobile")


def test_partner_admin_puts_a_new_client_on_a_two_flow_plan_and_its_third_flow_is_refused(page, chromium, lakeside):
    import importlib

    base = lakeside.base
    sign_in(page, base, "admin@lakeside.localhost")
    page.get_by_role("link", name="Plans").click()
    page.get_by_role("link", name="New plan").click()
    page.get_by_label("Plan name").fill("Pilot")
    page.get_by_label("Monthly price").fill("90")
    page.get_by_label("Connections").fill("3")
    page.get_by_label("Flows").fill("2")
    page.get_by_role("button", name="Create plan").click()
    expect(page.get_by_test_id("plan-cards")).to_contain_text("Pilot")

    page.get_by_role("link", name="Clients").click()
    page.get_by_role("link", name="New client").click()
    page.get_by_label("Client name").fill("Cedar Works")
    page.get_by_label("Plan").select_option(label="Pilot")
    page.get_by_label("Client admin's email").fill("owner@cedar.example")
    page.get_by_role("button", name="Create workspace and invite").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Cedar Works")

    (invitation,) = emails_to(lakeside.outbox, "owner@cedar.example")
    owner_context = chromium.new_context(viewport={"width": 1280, "height": 800})
    owner = owner_context.new_page()
    accept_invitation(owner, invitation)
    sign_in(owner, base, "owner@cedar.example", NEW_PASSWORD)
    assert owner.url == f"{base}/c/cedar-works/"

    # The client connects its PSA, ERP and HR (saved, not tested: no vendor is reached in this journey).
    kantata = importlib.import_module("connectors.kantata.sandbox").DEMO_CREDENTIALS
    netsuite = importlib.import_module("connectors.netsuite.sandbox").DEMO_CREDENTIALS
    bamboohr = importlib.import_module("connectors.bamboohr.sandbox").DEMO_CREDENTIALS
    forms = {
        "kantata": {"Base URL": "https://api.mavenlink.com", "OAuth access token": kantata["access_token"]},
        "netsuite": {
            "Base URL": "https://1234567.suitetalk.api.netsuite.com",
            "Account ID": netsuite["account_id"],
            "Client ID": netsuite["client_id"],
            "Certificate ID": netsuite["certificate_id"],
            "Certificate private key (PEM)": netsuite["private_key"],
        },
        "bamboohr": {
            "Base URL": "https://api.bamboohr.com",
            "Company domain": bamboohr["company_domain"],
            "API key": bamboohr["api_key"],
        },
    }
    for vendor, fields in forms.items():
        owner.goto(f"{base}/c/cedar-works/connections/new/{vendor}")
        for label, value in fields.items():
            owner.get_by_label(label).fill(value)
        owner.get_by_role("button", name="Save connection").click()
        expect(owner.get_by_test_id("connection-status")).to_have_text("Untested")

    owner.goto(f"{base}/c/cedar-works/flows/")
    owner.get_by_test_id("install-approved-time-to-invoice").click()
    owner.get_by_role("button", name="Install Approved time to invoice").click()
    expect(owner.get_by_role("heading", level=1)).to_have_text("Approved time to invoices")

    refusal = 'Your plan "Pilot" includes 2 flows; remove one or ask Lakeside Advisory to upgrade.'
    owner.goto(f"{base}/c/cedar-works/flows/")
    expect(owner.get_by_test_id("plan-allowance")).to_contain_text("2 of 2 flows on your “Pilot” plan")
    expect(owner.get_by_test_id("plan-full")).to_have_text(refusal)
    screenshot(owner, "workspace-flows-plan-full")
    owner.get_by_test_id("install-employee-to-resource").click()
    owner.get_by_role("button", name=re.compile("^Install ")).click()
    expect(owner.get_by_role("alert")).to_contain_text(refusal)
    screenshot(owner, "workspace-plan-limit-refused")
    owner.goto(f"{base}/c/cedar-works/flows/")
    expect(owner.get_by_test_id("flows").locator("tbody tr")).to_have_count(2)
    owner_context.close()
