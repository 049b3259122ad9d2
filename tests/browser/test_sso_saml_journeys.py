"""Single sign-on journeys through a real SAML 2.0 identity provider (pysaml2's, tests/idp/saml_provider.py) on
loopback: a client admin sets it up in the browser from the IdP's metadata URL, hands the IdP the portal's
metadata and proves the domain; people sign in through it and join just in time with the role their IdP groups
map to, the password form refuses them once SSO is required, and an assertion for an unproven domain is refused."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import screenshot, sso_web_server
from tests.idp import SamlIdp, require_xmlsec1
from tests.support import user_who_can_sign_in
from tests.tenants.test_partner_domains import LoopbackDns

pytestmark = [pytest.mark.django_db, pytest.mark.browser]

HOST = "gneiss.localhost"
PASSWORD = "gneiss-journey-2026"
IDP_PASSWORD = "saml-idp-password-2026"
DOMAIN = "quartz-saml.example"


@dataclass
class Gneiss:
    base: str
    idp: SamlIdp
    dns: LoopbackDns


@pytest.fixture(scope="module")
def idp(tmp_path_factory):
    require_xmlsec1()
    provider = SamlIdp(tmp_path_factory.mktemp("saml-idp")).start()
    yield provider
    provider.stop()


@pytest.fixture(scope="module")
def web(world, idp, dns, tmp_path_factory):
    with sso_web_server(tmp_path_factory.mktemp("saml-web") / "web.log", idp, dns) as port:
        yield port


@pytest.fixture(scope="module")
def gneiss(world, web, idp, dns, django_db_blocker) -> Gneiss:
    with django_db_blocker.unblock():
        from tenants import services
        from tenants.models import Client, Membership, MfaPolicy, Partner, Role

        partner = Partner.objects.filter(slug="gneiss").first() or services.partner_create(
            name="Gneiss Partners", slug="gneiss", domain=HOST, admin_email="admin@gneiss.localhost"
        )
        services.partner_mfa_policy_set(partner=partner, policy=MfaPolicy.OPTIONAL)
        quartz = Client.objects.filter(partner=partner, slug="quartz").first() or services.client_create(
            partner=partner, name="Quartz Surveying", slug="quartz", plan=partner.plans.first()
        )
        admin = user_who_can_sign_in("admin@quartz.gneiss.localhost", PASSWORD, full_name="Quinn Admin")
        Membership.objects.get_or_create(user=admin, client=quartz, defaults={"role": Role.CLIENT_ADMIN})
        legacy = user_who_can_sign_in(f"lee@{DOMAIN}", PASSWORD, full_name="Lee Legacy")
        Membership.objects.get_or_create(user=legacy, client=quartz, defaults={"role": Role.CLIENT_VIEWER})
    idp.add_person(f"ann@{DOMAIN}", IDP_PASSWORD, "Ann Analyst", ("Finance", "Everyone"))
    idp.add_person(f"lee@{DOMAIN}", IDP_PASSWORD, "Lee Legacy", ("Everyone",))
    idp.add_person("eve@unproven-saml.example", IDP_PASSWORD, "Eve Elsewhere", ("Finance",))
    return Gneiss(base=f"http://{HOST}:{web}", idp=idp, dns=dns)


def saml_sign_in(page, base: str, email: str, *, as_person: str = "") -> None:
    """Discovery by email, the IdP's own login page, its signed answer posted back to the portal."""
    page.goto(f"{base}/accounts/sso/")
    page.get_by_label("Work email").fill(email)
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(re.compile(r"^http://127\.0\.0\.1:\d+/sso/redirect"))
    page.get_by_label("Username").fill(as_person or email)
    page.get_by_label("Password").fill(IDP_PASSWORD)
    page.get_by_role("button", name="Sign in to the SAML identity provider").click()
    page.wait_for_url(re.compile(rf"^{re.escape(base)}/(?!.*/acs/$)"))  # past the ACS: signed in, or refused


def test_a_client_admin_sets_up_saml_and_people_join_with_their_groups_role(page, gneiss, django_db_blocker):
    from tenants.models import Membership, Role

    page.goto(f"{gneiss.base}/accounts/login/")
    page.get_by_label("Email").fill("admin@quartz.gneiss.localhost")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.goto(f"{gneiss.base}/c/quartz/security/")
    page.get_by_label(re.compile(r"^Name\W*$")).fill("Quartz SAML")
    page.get_by_label("SAML 2.0").check()
    expect(page.get_by_label("Issuer URL")).to_be_hidden()  # only the chosen protocol's fields show
    page.get_by_label("IdP metadata URL").fill(f"{gneiss.idp.base}/nothing-here")
    page.get_by_label("Groups attribute").fill("groups")
    page.get_by_label("Name attribute").fill("urn:oid:2.16.840.1.113730.3.1.241")
    page.get_by_label("Default role").select_option(label="Client viewer")
    page.get_by_label("Groups to roles").fill("Finance = Client finance")
    page.get_by_label("Single sign-on required").check()
    page.get_by_role("button", name="Save single sign-on").click()
    expect(page.get_by_text("The metadata URL answered HTTP 404, not the metadata.")).to_be_visible()
    page.get_by_label("IdP metadata URL").fill(gneiss.idp.metadata_url)
    page.get_by_role("button", name="Save single sign-on").click()
    expect(page.get_by_text("Single sign-on through Quartz SAML saved.")).to_be_visible()

    # What the IdP's administrator needs is on the page; the IdP reads the portal's metadata from its URL.
    sp_metadata = page.get_by_test_id("saml-sp-metadata").inner_text()
    assert re.fullmatch(rf"{re.escape(gneiss.base)}/accounts/saml/sso\d+/metadata/", sp_metadata)
    assert page.get_by_test_id("saml-sp-entity-id").inner_text() == sp_metadata
    assert page.get_by_test_id("saml-acs").inner_text() == sp_metadata.replace("/metadata/", "/acs/")
    expect(page.get_by_test_id("saml-idp-cert")).to_contain_text("CN=Test SAML IdP")
    gneiss.idp.register_sp(sp_metadata)

    page.get_by_role("textbox", name="Email domain").fill(DOMAIN)
    page.get_by_role("button", name="Add domain").click()
    gneiss.dns.zone[f"_portal-sso.{DOMAIN}"] = [page.get_by_test_id("sso-txt-value").inner_text()]
    page.get_by_role("button", name=f"Verify DNS now for {DOMAIN}").click()
    expect(page.get_by_test_id(f"sso-domain-{DOMAIN}").locator(".check-result")).to_contain_text("Verified")
    screenshot(page, "sso-saml-settings")

    # Ann is new: the IdP's Finance group makes her a finance user of Quartz, just in time.
    page.context.clear_cookies()
    saml_sign_in(page, gneiss.base, f"ann@{DOMAIN}")
    assert page.url == f"{gneiss.base}/c/quartz/", page.url
    expect(page.get_by_role("heading", level=1)).to_have_text("Quartz Surveying")
    with django_db_blocker.unblock():
        membership = Membership.objects.select_related("user").get(user__email=f"ann@{DOMAIN}")
        assert membership.role == Role.CLIENT_FINANCE and membership.user.full_name == "Ann Analyst"


def test_saml_required_refuses_the_password_form_and_an_unproven_domain(page, gneiss, django_db_blocker):
    from tenants.models import Membership, Role, User

    # Lee had a password: SSO is required for his domain now, so the password form points him at SSO ...
    page.goto(f"{gneiss.base}/accounts/login/")
    page.get_by_label("Email").fill(f"lee@{DOMAIN}")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text(
        f"People at {DOMAIN} sign in with single sign-on through Quartz SAML, not a password"
    )
    # ... and the IdP opens his own account, with the default role (no mapped group).
    saml_sign_in(page, gneiss.base, f"lee@{DOMAIN}")
    assert page.url == f"{gneiss.base}/c/quartz/", page.url
    with django_db_blocker.unblock():
        assert Membership.objects.get(user__email=f"lee@{DOMAIN}").role == Role.CLIENT_VIEWER

    # The IdP signs an assertion for someone at a domain Quartz never proved: refused, no account made.
    page.context.clear_cookies()
    saml_sign_in(page, gneiss.base, f"ann@{DOMAIN}", as_person="eve@unproven-saml.example")
    expect(page.get_by_test_id("sso-refused")).to_contain_text("unproven-saml.example: that domain is not proven")
    screenshot(page, "sso-saml-refused")
    with django_db_blocker.unblock():
        assert not User.objects.filter(email="eve@unproven-saml.example").exists()
