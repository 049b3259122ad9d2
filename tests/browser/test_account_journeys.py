"""Account security journeys in Chromium, against the real gunicorn writing emails to files (the inbox):
an invitation cannot be hijacked by claiming the address, a reset link never points at another
partner's host, and an admin of a partner that requires it sets up a second factor.

They run on a partner of their own, Granite Advisory (granite.localhost, client Quarry Works), on the
default two-factor policy; the attacker is a viewer of Summit's Fabrikam.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value, yield_hotp_counters_from_time
from playwright.sync_api import expect

from tests.browser.conftest import screenshot
from tests.browser.conftest import sign_in as sign_in_with_password
from tests.browser.test_partner_console import emails_to
from tests.support import user_who_can_sign_in, web_server

pytestmark = [pytest.mark.django_db, pytest.mark.browser]

HOST = "granite.localhost"
PASSWORD = "granite-journey-2026"
QUARRY_ADMIN_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
MALLORY = "mallory@fabrikam.localhost"
HIRE = "pending-hire@quarry.localhost"


@dataclass
class Granite:
    base: str
    summit: str
    outbox: Path


@pytest.fixture(scope="module")
def outbox(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("account-outbox")


@pytest.fixture(scope="module")
def web(world, outbox, tmp_path_factory):
    env = {"EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend", "EMAIL_FILE_PATH": str(outbox)}
    with web_server(tmp_path_factory.mktemp("account-web") / "web.log", **env) as port:
        yield f"{port}"


@pytest.fixture(scope="module")
def granite(world, web, outbox, django_db_blocker) -> Granite:
    with django_db_blocker.unblock():
        from allauth.mfa.totp.internal.auth import TOTP

        from branding.models import Brand
        from tenants import services
        from tenants.models import Client, Membership, Partner, Role

        partner = Partner.objects.filter(slug="granite").first()
        if partner is None:
            partner = services.partner_create(
                name="Granite Advisory", slug="granite", domain=HOST, admin_email="admin@granite.localhost"
            )
            Brand.objects.filter(partner=partner).update(
                product_name="Granite Connect", email_sender_name="Granite Advisory", primary_color="#334155"
            )
        user_who_can_sign_in("admin@granite.localhost", PASSWORD)
        quarry = Client.objects.filter(partner=partner, slug="quarry").first() or services.client_create(
            partner=partner, name="Quarry Works", slug="quarry", plan=partner.plans.first()
        )
        # A client admin under the default policy: signs in with a second factor already set up.
        quarry_admin = user_who_can_sign_in("admin@quarry.localhost", PASSWORD, full_name="Quinn Quarry")
        Membership.objects.get_or_create(user=quarry_admin, client=quarry, defaults={"role": Role.CLIENT_ADMIN})
        if not quarry_admin.authenticator_set.exists():
            TOTP.activate(quarry_admin, QUARRY_ADMIN_SECRET)
        target = user_who_can_sign_in("reset.target@quarry.localhost", PASSWORD)
        Membership.objects.get_or_create(user=target, client=quarry, defaults={"role": Role.CLIENT_VIEWER})
        mallory = user_who_can_sign_in(MALLORY, PASSWORD, full_name="Mallory")
        Membership.objects.get_or_create(
            user=mallory, client=world.clients["fabrikam"], defaults={"role": Role.CLIENT_VIEWER}
        )
    return Granite(base=f"http://{HOST}:{web}", summit=f"http://summit.localhost:{web}", outbox=outbox)


def code_for(secret: str) -> str:
    return format_hotp_value(hotp_value(secret, next(yield_hotp_counters_from_time())))


def sign_in(page, base: str, email_address: str, password: str = PASSWORD, totp_secret: str = "") -> None:
    """Sign in, then give the second factor's code when `totp_secret` is set."""
    sign_in_with_password(page, base, email_address, password)
    if totp_secret:
        assert "/accounts/2fa/authenticate/" in page.url
        page.locator("input[name=code]").fill(code_for(totp_secret))
        page.locator("form button[type=submit]").first.click()
        page.wait_for_load_state("networkidle")


def link_in(message, fragment: str) -> str:
    return re.search(rf"http://\S+{re.escape(fragment)}\S*", message.get_body(("plain",)).get_content()).group(0)


def invitations_to(outbox: Path, address: str, timeout: float = 10) -> list:
    return [m for m in emails_to(outbox, address, timeout) if m["Subject"].startswith("You are invited")]


def test_claiming_an_address_collects_no_invitation_and_the_owner_joins_through_the_link(chromium, granite):
    # A Fabrikam viewer (Summit) asks to change her address to the one Quarry is about to invite.
    mallory = chromium.new_context().new_page()
    sign_in(mallory, granite.summit, MALLORY)
    mallory.goto(f"{granite.summit}/accounts/email/")
    mallory.locator("input[name=email]").first.fill(HIRE)
    mallory.get_by_role("button", name="Change Email").click()
    expect(mallory.get_by_text("pending verification")).to_be_visible()
    expect(mallory.locator("body")).to_contain_text(MALLORY)  # still her address
    screenshot(mallory, "account-email-change-pending")

    # Quarry's admin (second factor set up) invites the new hire as finance.
    admin = chromium.new_context().new_page()
    sign_in(admin, granite.base, "admin@quarry.localhost", totp_secret=QUARRY_ADMIN_SECRET)
    admin.goto(f"{granite.base}/c/quarry/users/")
    invite = admin.locator("#invite-form")
    invite.get_by_label("Email").fill(HIRE)
    invite.get_by_label("Name").fill("Pat Hire")
    invite.get_by_label("Role").select_option("client_finance")
    invite.get_by_role("button", name="Send invitation").click()
    expect(admin.locator(".toast")).to_contain_text(f"Invitation sent to {HIRE}")

    (invitation,) = invitations_to(granite.outbox, HIRE)
    assert invitation["From"].startswith("Granite Advisory <")
    assert not invitations_to(granite.outbox, MALLORY, timeout=0)  # the hire's came: none was sent her too
    sign_in(mallory, granite.base, MALLORY)
    assert mallory.goto(f"{granite.base}/c/quarry/exceptions/export.csv").status == 404

    # The hire follows the link sent to their address, chooses a password and is in.
    hire = chromium.new_context().new_page()
    hire.goto(link_in(invitation, "/accounts/password/reset/key/"))
    hire.locator("input[name=password1]").fill("pat-hire-password-2026")
    hire.locator("input[name=password2]").fill("pat-hire-password-2026")
    hire.locator("form button[type=submit]").first.click()
    hire.wait_for_load_state("networkidle")
    sign_in(hire, granite.base, HIRE, "pat-hire-password-2026")
    assert hire.url == f"{granite.base}/c/quarry/"
    expect(hire.get_by_role("heading", level=1)).to_have_text("Quarry Works")

    # Invited under her own address, Mallory has an account: nothing until she accepts the link.
    admin.goto(f"{granite.base}/c/quarry/users/")
    invite = admin.locator("#invite-form")
    invite.get_by_label("Email").fill(MALLORY)
    invite.get_by_label("Role").select_option("client_viewer")
    invite.get_by_role("button", name="Send invitation").click()
    expect(admin.locator(".toast")).to_contain_text(f"Invitation sent to {MALLORY}")
    admin.reload()
    expect(admin.get_by_test_id(f"invitation-{MALLORY}")).to_contain_text("joins on accepting")
    assert mallory.goto(f"{granite.base}/c/quarry/").status == 404
    (offer,) = invitations_to(granite.outbox, MALLORY)
    mallory.goto(link_in(offer, "/accounts/invitations/"))
    expect(mallory.get_by_test_id("invitation-offer")).to_contain_text("Quarry Works workspace as Client viewer")
    screenshot(mallory, "account-invitation-offer")
    mallory.get_by_role("button", name="Accept and join").click()
    mallory.wait_for_load_state("networkidle")
    assert mallory.url == f"{granite.base}/c/quarry/"
    for context in (mallory.context, admin.context, hire.context):
        context.close()


def test_a_reset_asked_on_another_partners_host_is_mailed_for_the_accounts_own_host(page, granite):
    page.goto(f"{granite.summit}/accounts/login/")
    page.get_by_role("link", name="Forgot your password?").click()
    page.locator("input[name=email]").fill("reset.target@quarry.localhost")
    page.locator("form button[type=submit]").first.click()
    page.wait_for_load_state("networkidle")

    (message,) = emails_to(granite.outbox, "reset.target@quarry.localhost")
    assert message["From"].startswith("Granite Advisory <") and "Granite Connect" in message["Subject"]
    assert "summit" not in message.get_body(("plain",)).get_content().lower()
    link = link_in(message, "/accounts/password/reset/key/")
    assert link.startswith(f"{granite.base}/")

    page.goto(link.replace(granite.base, granite.summit))  # the key shown to Summit's host
    expect(page.get_by_role("heading", level=1)).to_have_text("Bad Token")
    assert page.locator("input[name=password1]").count() == 0

    page.goto(link)
    page.locator("input[name=password1]").fill("reset-target-new-2026")
    page.locator("input[name=password2]").fill("reset-target-new-2026")
    page.locator("form button[type=submit]").first.click()
    page.wait_for_load_state("networkidle")
    sign_in(page, granite.base, "reset.target@quarry.localhost", "reset-target-new-2026")
    assert page.url == f"{granite.base}/c/quarry/"


def test_a_partner_admin_sets_up_the_second_factor_their_partner_requires(page, granite):
    base = granite.base
    sign_in(page, base, "admin@granite.localhost")
    # allauth asks for the password once more before a second factor is added
    assert "/accounts/reauthenticate/" in page.url
    page.locator("input[name=password]").fill(PASSWORD)
    page.get_by_role("button", name="Confirm").click()
    page.wait_for_load_state("networkidle")
    assert page.url == f"{base}/accounts/2fa/totp/activate/"
    page.goto(f"{base}/partner/")
    assert page.url == f"{base}/accounts/2fa/totp/activate/"  # nothing else until it is set up
    screenshot(page, "account-totp-activate")

    secret = page.locator("#authenticator_secret").input_value()
    page.locator("input[name=code]").fill(code_for(secret))
    page.get_by_role("button", name="Activate").click()
    page.wait_for_load_state("networkidle")
    page.goto(f"{base}/partner/team/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Team")
    expect(page.get_by_label("Required for partner admins and client admins")).to_be_checked()

    page.context.clear_cookies()
    sign_in(page, base, "admin@granite.localhost", totp_secret=secret)
    assert page.url == f"{base}/partner/"
