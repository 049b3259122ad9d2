"""Two-factor sign-in as a partner policy (admins by default) and for platform admins."""

import pytest
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value, yield_hotp_counters_from_time

from tenants.models import Membership, MfaPolicy, Partner, Role
from tenants.selectors.access import mfa_required
from tests.support import NORTHWIND, PLATFORM, browser_for, user_who_can_sign_in

pytestmark = pytest.mark.django_db

PASSWORD = "a-long-passphrase-7"
ACTIVATE = "/accounts/2fa/totp/activate/"


def sign_in(email: str, host: str = NORTHWIND):
    browser = browser_for(host=host)
    response = browser.post("/accounts/login/", {"login": email, "password": PASSWORD})
    return browser, response


def current_code(secret: str) -> str:
    return format_hotp_value(hotp_value(secret, next(yield_hotp_counters_from_time())))


@pytest.fixture
def northwind_requires_admins(world):
    Partner.objects.filter(pk=world.partners["northwind"].pk).update(mfa_policy=MfaPolicy.ADMINS)
    return world.partners["northwind"]


def test_new_partners_require_a_second_factor_of_their_admins():
    assert Partner().mfa_policy == MfaPolicy.ADMINS


def test_a_partner_admin_is_kept_on_the_set_up_page_until_a_second_factor_is_active(world, northwind_requires_admins):
    admin = user_who_can_sign_in("second.admin@northwind.localhost", PASSWORD)
    Membership.objects.create(user=admin, partner=northwind_requires_admins, role=Role.PARTNER_ADMIN)
    browser, response = sign_in(admin.email)
    assert response["Location"] == ACTIVATE
    for path in ("/partner/", "/c/contoso/", "/partner/team/"):
        assert browser.get(path)["Location"] == ACTIVATE, path
    assert browser.get("/partner/", HTTP_HX_REQUEST="true")["HX-Redirect"] == ACTIVATE

    # allauth asks for the password again before adding a second factor
    assert browser.get(ACTIVATE)["Location"].startswith("/accounts/reauthenticate/")
    assert browser.post(f"/accounts/reauthenticate/?next={ACTIVATE}", {"password": PASSWORD})["Location"] == ACTIVATE
    assert browser.get(ACTIVATE).status_code == 200
    secret = browser.session["mfa.totp.secret"]
    assert browser.post(ACTIVATE, {"code": current_code(secret)}).status_code == 302
    assert browser.get("/partner/").status_code == 200
    # and it cannot be switched off while the policy asks for it
    totp = Authenticator.objects.get(user=admin, type=Authenticator.Type.TOTP)
    browser.post("/accounts/2fa/totp/deactivate/", {})
    assert Authenticator.objects.filter(pk=totp.pk).exists()


def test_client_admins_are_asked_too_and_viewers_are_not(world, northwind_requires_admins):
    admin = user_who_can_sign_in("second.admin@contoso.localhost", PASSWORD)
    Membership.objects.create(user=admin, client=world.clients["contoso"], role=Role.CLIENT_ADMIN)
    viewer = user_who_can_sign_in("second.viewer@contoso.localhost", PASSWORD)
    Membership.objects.create(user=viewer, client=world.clients["contoso"], role=Role.CLIENT_VIEWER)
    assert sign_in(admin.email)[1]["Location"] == ACTIVATE
    assert sign_in(viewer.email)[1]["Location"] == "/"
    Partner.objects.filter(pk=northwind_requires_admins.pk).update(mfa_policy=MfaPolicy.EVERYONE)
    assert sign_in(viewer.email)[1]["Location"] == ACTIVATE


def test_platform_admins_must_use_a_second_factor_outside_the_demo(world, settings):
    operator = world.user("operator@sysgenpro.localhost")
    settings.PLATFORM_ADMINS_REQUIRE_MFA = True
    assert mfa_required(operator)
    operator = user_who_can_sign_in(operator.email, PASSWORD)
    assert sign_in(operator.email, host=PLATFORM)[1]["Location"] == ACTIVATE
    settings.PLATFORM_ADMINS_REQUIRE_MFA = False
    assert not mfa_required(operator)
    console = browser_for(operator, host=PLATFORM).get("/platform/")
    assert 'data-testid="platform-mfa-off"' in console.content.decode(), console


def test_the_demo_partners_say_on_their_team_page_that_they_do_not_require_it(world):
    assert Partner.objects.get(slug="northwind").mfa_policy == MfaPolicy.OPTIONAL
    team = browser_for(world.user("admin@northwind.localhost"), host=NORTHWIND).get("/partner/team/")
    assert "Not required on this portal" in team.content.decode()


def test_a_partner_admin_sets_the_policy_and_staff_cannot(world):
    admin = browser_for(world.user("admin@northwind.localhost"), host=NORTHWIND)
    response = admin.post("/partner/team/two-factor", {"mfa_policy": MfaPolicy.EVERYONE}, follow=True)
    assert "Two-factor sign-in: required for everyone" in response.content.decode()
    assert Partner.objects.get(slug="northwind").mfa_policy == MfaPolicy.EVERYONE
    assert mfa_required(world.user("viewer@contoso.localhost"))
    staff = browser_for(world.user("engineer@northwind.localhost"), host=NORTHWIND)
    assert staff.post("/partner/team/two-factor", {"mfa_policy": MfaPolicy.OPTIONAL}).status_code == 403
    assert Partner.objects.get(slug="northwind").mfa_policy == MfaPolicy.EVERYONE


def test_a_client_admin_requires_a_second_factor_of_everyone_in_the_workspace_audited(world):
    from django_tenants.utils import tenant_context

    from integrations.models import AuditEvent
    from tenants.models import Client

    contoso = world.clients["contoso"]
    viewer = user_who_can_sign_in("third.viewer@contoso.localhost", PASSWORD)
    Membership.objects.create(user=viewer, client=contoso, role=Role.CLIENT_VIEWER)
    assert not mfa_required(viewer)  # the demo partner asks nobody
    admin = browser_for(world.user("admin@contoso.localhost"))
    assert admin.post("/c/contoso/security/two-factor", {"requires_mfa": "on"}).status_code == 302
    assert Client.objects.get(pk=contoso.pk).requires_mfa
    assert mfa_required(viewer)
    assert sign_in(viewer.email)[1]["Location"] == ACTIVATE
    with tenant_context(contoso):
        event = AuditEvent.objects.filter(action="security.mfa_required").latest("pk")
        assert event.actor_email == "admin@contoso.localhost" and event.after == {"requires_mfa": True}
    # a finance user cannot change it; the admin can switch it back off
    finance = browser_for(world.user("finance@contoso.localhost"))
    assert finance.post("/c/contoso/security/two-factor", {}).status_code == 403
    assert admin.post("/c/contoso/security/two-factor", {}).status_code == 302
    assert not mfa_required(viewer)
    with tenant_context(contoso):
        assert AuditEvent.objects.filter(action="security.mfa_optional").exists()
