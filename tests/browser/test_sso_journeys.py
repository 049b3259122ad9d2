"""Single sign-on journeys through a real OpenID Connect provider (django-oauth-toolkit, tests/idp/) running on
loopback: a client admin sets it up in the browser and proves the domain, people sign in through it and join
just in time with the role their IdP groups map to, the password form refuses them once SSO is required, and
the partner's own staff sign in through their partner's IdP and keep it in the client's workspace."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import screenshot, sso_web_server
from tests.idp import OidcIdp
from tests.support import user_who_can_sign_in
from tests.tenants.test_partner_domains import LoopbackDns

pytestmark = [pytest.mark.django_db, pytest.mark.browser]

HOST = "basalt.localhost"
PASSWORD = "basalt-journey-2026"
IDP_PASSWORD = "idp-password-2026"
CLIENT_DOMAIN = "slate.example"
PARTNER_DOMAIN = "basalt.example"


@dataclass
class Basalt:
    base: str
    idp: OidcIdp
    dns: LoopbackDns


@pytest.fixture(scope="module")
def idp(tmp_path_factory):
    provider = OidcIdp(tmp_path_factory.mktemp("oidc-idp")).start()
    yield provider
    provider.stop()


@pytest.fixture(scope="module")
def web(world, idp, dns, tmp_path_factory):
    with sso_web_server(tmp_path_factory.mktemp("sso-web") / "web.log", idp, dns) as port:
        yield port


@pytest.fixture(scope="module")
def basalt(world, web, idp, dns, django_db_blocker) -> Basalt:
    with django_db_blocker.unblock():
        from tenants import services
        from tenants.models import Client, Membership, MfaPolicy, Partner, Role

        partner = Partner.objects.filter(slug="basalt").first() or services.partner_create(
            name="Basalt Partners", slug="basalt", domain=HOST, admin_email="admin@basalt.localhost"
        )
        services.partner_mfa_policy_set(partner=partner, policy=MfaPolicy.OPTIONAL)
        user_who_can_sign_in("admin@basalt.localhost", PASSWORD)
        slate = Client.objects.filter(partner=partner, slug="slate").first() or services.client_create(
            partner=partner, name="Slate Engineering", slug="slate", plan=partner.plans.first()
        )
        slate_admin = user_who_can_sign_in("admin@slate.localhost", PASSWORD, full_name="Sol Admin")
        Membership.objects.get_or_create(user=slate_admin, client=slate, defaults={"role": Role.CLIENT_ADMIN})
        # Someone at the firm who had a password before SSO: same account once they sign in through it.
        legacy = user_who_can_sign_in(f"lee@{CLIENT_DOMAIN}", PASSWORD, full_name="Lee Legacy")
        Membership.objects.get_or_create(user=legacy, client=slate, defaults={"role": Role.CLIENT_VIEWER})
    idp.add_person(f"ann@{CLIENT_DOMAIN}", IDP_PASSWORD, "Ann Analyst", ("Finance",))
    idp.add_person(f"bob@{CLIENT_DOMAIN}", IDP_PASSWORD, "Bob Builder", ())
    idp.add_person(f"lee@{CLIENT_DOMAIN}", IDP_PASSWORD, "Lee Legacy", ("Finance",))
    idp.add_person(f"pat@{PARTNER_DOMAIN}", IDP_PASSWORD, "Pat Partner", ("Consultants",))
    idp.add_person("admin@fabrikam.localhost", IDP_PASSWORD, "Not Fiona", ())
    return Basalt(base=f"http://{HOST}:{web}", idp=idp, dns=dns)


def password_sign_in(page, base: str, email: str, password: str = PASSWORD) -> None:
    page.goto(f"{base}/accounts/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state("networkidle")


def sso_sign_in(page, base: str, email: str, *, screenshot_as: str = "") -> None:
    """From the portal's login page, through the identity provider's own login page, and back."""
    page.goto(f"{base}/accounts/login/")
    page.get_by_role("link", name="Continue with single sign-on").click()
    page.get_by_label("Work email").fill(email)
    page.get_by_role("button", name="Continue").click()
    page.wait_for_load_state("networkidle")
    assert page.url.startswith("http://127.0.0.1:"), page.content()[-3000:]  # the IdP's own page, not ours
    if screenshot_as:
        screenshot(page, screenshot_as)
    page.get_by_label("Username").fill(email)
    page.get_by_label("Password").fill(IDP_PASSWORD)
    page.get_by_role("button", name="Sign in to the identity provider").click()
    page.wait_for_load_state("networkidle")


def set_up_sso(
    page,
    basalt: Basalt,
    path: str,
    *,
    client_id: str,
    name: str,
    default_role: str,
    rules: str,
    domain: str,
    required: bool,
) -> None:
    """An admin fills in the provider's settings, registers the portal at the IdP, and proves the domain."""
    page.goto(f"{basalt.base}{path}")
    page.get_by_label(re.compile(r"^Name\W*$")).fill(name)
    page.get_by_label("Issuer URL").fill(basalt.idp.issuer)
    page.get_by_label("Client ID").fill(client_id)
    page.get_by_label("Client secret").fill(f"{client_id}-secret-0123456789")
    page.get_by_label("Default role").select_option(label=default_role)
    page.get_by_label("Groups to roles").fill(rules)
    if required:
        page.get_by_label("Single sign-on required").check()
    page.get_by_role("button", name="Save single sign-on").click()
    expect(page.get_by_text(f"Single sign-on through {name} saved.")).to_be_visible()
    callback = page.get_by_test_id("sso-callback").inner_text()
    assert callback == f"{basalt.base}/accounts/oidc/{callback.split('/')[-4]}/login/callback/"
    basalt.idp.register_client(client_id, f"{client_id}-secret-0123456789", callback)

    page.get_by_role("textbox", name="Email domain").fill(domain)
    page.get_by_role("button", name="Add domain").click()
    txt_value = page.get_by_test_id("sso-txt-value").inner_text()
    page.get_by_role("button", name=f"Verify DNS now for {domain}").click()
    card = page.get_by_test_id(f"sso-domain-{domain}")
    expect(card.locator(".check-result")).to_contain_text(f"No DNS record exists at _portal-sso.{domain} yet")
    basalt.dns.zone[f"_portal-sso.{domain}"] = [txt_value]
    page.get_by_role("button", name=f"Verify DNS now for {domain}").click()
    expect(card.locator(".check-result")).to_contain_text(f"Verified: people at {domain} can now sign in")
    expect(card.get_by_text("Verified", exact=True)).to_be_visible()


def test_a_client_admin_sets_up_sso_and_people_join_with_their_groups_role(page, basalt, django_db_blocker):
    from tenants.models import Membership, Role

    password_sign_in(page, basalt.base, "admin@slate.localhost")
    page.goto(f"{basalt.base}/c/slate/")
    page.get_by_role("link", name="People").first.click()
    page.get_by_role("link", name="Sign-in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign-in")
    set_up_sso(
        page,
        basalt,
        "/c/slate/security/",
        client_id="slate-portal",
        name="Slate Okta",
        default_role="Client viewer",
        rules="Finance = Client finance",
        domain=CLIENT_DOMAIN,
        required=True,
    )
    expect(page.get_by_test_id("secret-saved")).to_be_visible()
    assert "slate-portal-secret" not in page.content()
    screenshot(page, "sso-workspace-settings")

    # Ann is new to the portal: her IdP's Finance group makes her a finance user of Slate, just in time.
    page.context.clear_cookies()
    sso_sign_in(page, basalt.base, f"ann@{CLIENT_DOMAIN}", screenshot_as="sso-idp-login")
    assert page.url == f"{basalt.base}/c/slate/", page.url
    expect(page.get_by_role("heading", level=1)).to_have_text("Slate Engineering")
    screenshot(page, "sso-jit-landing")
    with django_db_blocker.unblock():
        assert Membership.objects.get(user__email=f"ann@{CLIENT_DOMAIN}").role == Role.CLIENT_FINANCE

    # Bob is in no mapped group: the default role.
    page.context.clear_cookies()
    sso_sign_in(page, basalt.base, f"bob@{CLIENT_DOMAIN}")
    assert page.url == f"{basalt.base}/c/slate/"
    with django_db_blocker.unblock():
        assert Membership.objects.get(user__email=f"bob@{CLIENT_DOMAIN}").role == Role.CLIENT_VIEWER

    # Lee had a password: SSO is required now, so the password form refuses him and points at SSO ...
    page.context.clear_cookies()
    password_sign_in(page, basalt.base, f"lee@{CLIENT_DOMAIN}")
    assert "/accounts/login/" in page.url
    expect(page.get_by_role("alert")).to_contain_text(
        f"People at {CLIENT_DOMAIN} sign in with single sign-on through Slate Okta, not a password"
    )
    screenshot(page, "sso-required-password-refused")
    # ... and signing in through it opens his own account, with the role his groups give.
    sso_sign_in(page, basalt.base, f"lee@{CLIENT_DOMAIN}")
    assert page.url == f"{basalt.base}/c/slate/"
    with django_db_blocker.unblock():
        assert Membership.objects.filter(user__email=f"lee@{CLIENT_DOMAIN}").count() == 1
        assert Membership.objects.get(user__email=f"lee@{CLIENT_DOMAIN}").role == Role.CLIENT_FINANCE

    # The admin's People page lists those who joined through SSO as members, not as invitations pending.
    page.context.clear_cookies()
    password_sign_in(page, basalt.base, "admin@slate.localhost")
    page.goto(f"{basalt.base}/c/slate/users/")
    ann = page.get_by_role("row").filter(has_text=f"ann@{CLIENT_DOMAIN}")
    expect(ann.get_by_label("Role of Ann Analyst")).to_have_value("client_finance")
    expect(ann).not_to_contain_text("invited")


def test_an_idp_cannot_open_an_account_outside_its_proven_domains(page, basalt):
    # The IdP has a person claiming another partner's client's address: Slate's IdP never proved that domain,
    # and discovery does not even send them there.
    page.goto(f"{basalt.base}/accounts/sso/")
    page.get_by_label("Work email").fill("admin@fabrikam.localhost")
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("alert")).to_contain_text("No single sign-on is set up for fabrikam.localhost here")
    # Going to the IdP directly and coming back as that person is refused too.
    page.goto(f"{basalt.base}/accounts/sso/")
    page.get_by_label("Work email").fill(f"bob@{CLIENT_DOMAIN}")
    page.get_by_role("button", name="Continue").click()
    page.wait_for_load_state("networkidle")
    page.get_by_label("Username").fill("admin@fabrikam.localhost")
    page.get_by_label("Password").fill(IDP_PASSWORD)
    page.get_by_role("button", name="Sign in to the identity provider").click()
    page.wait_for_load_state("networkidle")
    expect(page.get_by_test_id("sso-refused")).to_contain_text("fabrikam.localhost: that domain is not proven")
    screenshot(page, "sso-refused")


def test_partner_staff_sign_in_through_their_partners_idp_and_keep_it_in_a_client_workspace(
    page, basalt, django_db_blocker
):
    from tenants.models import Membership, Role

    password_sign_in(page, basalt.base, "admin@basalt.localhost")
    page.goto(f"{basalt.base}/partner/team/")
    page.get_by_role("link", name="Single sign-on").click()
    set_up_sso(
        page,
        basalt,
        "/partner/team/sign-on/",
        client_id="basalt-staff",
        name="Basalt Entra ID",
        default_role="Partner staff",
        rules="Consultants = Partner admin",
        domain=PARTNER_DOMAIN,
        required=False,
    )
    page.context.clear_cookies()
    sso_sign_in(page, basalt.base, f"pat@{PARTNER_DOMAIN}")
    assert page.url == f"{basalt.base}/partner/", page.url
    with django_db_blocker.unblock():
        assert Membership.objects.get(user__email=f"pat@{PARTNER_DOMAIN}").role == Role.PARTNER_ADMIN
    # Slate requires its own SSO for its people; the partner's admin walks in with the partner's sign-on.
    page.goto(f"{basalt.base}/c/slate/")
    assert page.url == f"{basalt.base}/c/slate/"
    expect(page.get_by_role("heading", level=1)).to_have_text("Slate Engineering")
