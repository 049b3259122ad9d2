"""Single sign-on's rules: proven domains only, roles only in the IdP's own scope, never another partner's
people, "SSO required" refusing the password form, discovery by email, and the secret kept write-only."""

import pytest

from tenants.models import Membership, Role, SsoConnection, SsoDomain, User
from tenants.sso_services import (
    SsoRefused,
    sso_connection_save,
    sso_domain_add,
    sso_domain_verify,
    sso_person_admit,
    sso_secret,
)
from tests.support import NORTHWIND, SUMMIT, browser_for, user_who_can_sign_in

pytestmark = pytest.mark.django_db

SECRET = "idp-client-secret-0123456789"


def configure(world, *, client=None, partner=None, domain="contoso.example", dns=None, **values):
    partner = partner or (client.partner if client else world.partners["northwind"])
    values = {
        "name": "Contoso Entra ID",
        "server_url": "https://login.contoso.example/v2.0",
        "oauth_client_id": "portal",
        "client_secret": SECRET,
        "default_role": Role.CLIENT_VIEWER if client else Role.PARTNER_STAFF,
        "group_roles": {},
        "sso_required": False,
        "is_active": True,
        **values,
    }
    connection = sso_connection_save(
        partner=partner, client=client, values=values, actor=world.user("admin@northwind.localhost")
    )
    claimed = sso_domain_add(connection=connection, domain=domain, actor=world.user("admin@northwind.localhost"))
    if dns is not None:
        dns.zone[claimed.txt_name] = [claimed.txt_value]
        assert sso_domain_verify(domain=claimed).verified
    return connection


def test_a_domain_is_proven_by_its_txt_record_and_only_once(world, dns_server):
    connection = configure(world, client=world.clients["contoso"])
    claimed = connection.domains.get()
    check = sso_domain_verify(domain=claimed)
    assert not check.verified and "No DNS record exists at _portal-sso.contoso.example" in check.message
    dns_server.zone[claimed.txt_name] = ["portal-sso-verify=someone-elses"]
    assert not sso_domain_verify(domain=claimed).verified
    dns_server.zone[claimed.txt_name] = [claimed.txt_value]
    assert sso_domain_verify(domain=claimed).verified

    # Another partner claims the same domain and publishes its own token beside it: it stays unproven.
    summit = configure(world, partner=world.partners["summit"], default_role=Role.PARTNER_STAFF)
    rival = summit.domains.get()
    dns_server.zone[rival.txt_name] = [claimed.txt_value, rival.txt_value]
    check = sso_domain_verify(domain=rival)
    assert not check.verified and "already proven for another organisation" in check.message


def test_an_unproven_domain_grants_nothing(world):
    connection = configure(world, client=world.clients["contoso"])
    with pytest.raises(SsoRefused, match="not proven"):
        sso_person_admit(connection=connection, email="new.person@contoso.example", name="New", groups=[])
    assert not User.objects.filter(email="new.person@contoso.example").exists()


def test_people_join_just_in_time_with_the_role_their_groups_map_to(world, dns_server):
    contoso = world.clients["contoso"]
    connection = configure(
        world, client=contoso, dns=dns_server, group_roles={"Finance": Role.CLIENT_FINANCE, "IT": Role.CLIENT_ADMIN}
    )
    first = sso_person_admit(connection=connection, email="Ann@Contoso.example", name="Ann", groups=["Finance"])
    assert first.email == "ann@contoso.example" and not first.has_usable_password()
    assert Membership.objects.get(user=first, client=contoso).role == Role.CLIENT_FINANCE
    assert first.emailaddress_set.get().verified
    plain = sso_person_admit(connection=connection, email="bo@contoso.example", name="Bo", groups=["Sales"])
    assert Membership.objects.get(user=plain, client=contoso).role == Role.CLIENT_VIEWER
    # The IdP's groups change: the role follows at the next sign-in, and the workspace's audit log says so.
    sso_person_admit(connection=connection, email="ann@contoso.example", name="Ann", groups=["IT"])
    assert Membership.objects.get(user=first, client=contoso).role == Role.CLIENT_ADMIN
    assert Membership.objects.filter(user=first).count() == 1
    from django_tenants.utils import tenant_context

    from integrations.models import AuditEvent

    with tenant_context(contoso):
        assert AuditEvent.objects.filter(action="member.role_changed", summary__contains="ann@contoso.example").exists()


def test_an_idp_never_opens_an_account_of_another_partner_or_the_operators(world, dns_server):
    contoso = configure(world, client=world.clients["contoso"], dns=dns_server, domain="fabrikam.localhost")
    # fabrikam.localhost is Summit's client's domain: proving it for Contoso's IdP still opens none of its people.
    with pytest.raises(SsoRefused, match="another organisation"):
        sso_person_admit(connection=contoso, email="admin@fabrikam.localhost", name="Fiona", groups=[])
    assert not Membership.objects.filter(user__email="admin@fabrikam.localhost", client=world.clients["contoso"])

    partner_idp = configure(
        world, partner=world.partners["northwind"], dns=dns_server, domain="sysgenpro.localhost", name="Northwind IdP"
    )
    with pytest.raises(SsoRefused, match="operators"):
        sso_person_admit(connection=partner_idp, email="operator@sysgenpro.localhost", name="Pat", groups=[])


def test_partner_staff_keep_their_partners_sign_on_not_a_clients(world, dns_server):
    contoso = configure(world, client=world.clients["contoso"], dns=dns_server, domain="northwind.localhost")
    with pytest.raises(SsoRefused, match="Northwind"):
        sso_person_admit(connection=contoso, email="engineer@northwind.localhost", name="Erik", groups=[])
    assert Membership.objects.get(user__email="engineer@northwind.localhost").role == Role.PARTNER_STAFF


def test_an_idp_grants_only_roles_of_its_own_scope(world):
    with pytest.raises(ValueError, match="its own scope"):
        configure(world, client=world.clients["contoso"], default_role=Role.PARTNER_ADMIN)
    with pytest.raises(ValueError, match="its own scope"):
        configure(world, default_role=Role.PARTNER_STAFF, group_roles={"x": Role.CLIENT_ADMIN})


def test_sso_required_refuses_the_password_form_with_a_sentence_pointing_at_sso(world, dns_server):
    configure(world, client=world.clients["contoso"], dns=dns_server, domain="contoso.localhost", sso_required=True)
    user_who_can_sign_in("viewer@contoso.localhost", "a-long-passphrase-7")
    response = browser_for(host=NORTHWIND).post(
        "/accounts/login/", {"login": "viewer@contoso.localhost", "password": "a-long-passphrase-7"}
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "People at contoso.localhost sign in with single sign-on through Contoso Entra ID" in page
    assert "_auth_user_id" not in browser_for(host=NORTHWIND).session
    # Other domains still sign in with their password.
    user_who_can_sign_in("admin@tailspin.localhost", "a-long-passphrase-7")
    other = browser_for(host=NORTHWIND).post(
        "/accounts/login/", {"login": "admin@tailspin.localhost", "password": "a-long-passphrase-7"}
    )
    assert other.status_code == 302


def test_discovery_names_no_provider_for_an_unknown_or_unproven_domain(world):
    configure(world, client=world.clients["contoso"], domain="contoso.localhost")  # claimed, never proven
    for email in ("admin@contoso.localhost", "someone@elsewhere.example"):
        response = browser_for(host=NORTHWIND).post("/accounts/sso/", {"email": email})
        assert response.status_code == 422
        assert "No single sign-on is set up for" in response.content.decode()


def test_discovery_is_per_host(world, dns_server):
    configure(world, client=world.clients["contoso"], dns=dns_server, domain="contoso.localhost")
    response = browser_for(host=SUMMIT).post("/accounts/sso/", {"email": "admin@contoso.localhost"})
    assert response.status_code == 422  # Northwind's client's IdP is not offered on Summit's host


def test_the_client_secret_is_encrypted_and_never_shown(world):
    connection = configure(world, client=world.clients["contoso"])
    stored = bytes(SsoConnection.objects.get(pk=connection.pk).encrypted_secret)
    assert SECRET.encode() not in stored and sso_secret(connection) == SECRET
    admin = browser_for(world.user("admin@contoso.localhost"), host=NORTHWIND)
    page = admin.get("/c/contoso/security/").content.decode()
    assert SECRET not in page and 'data-testid="secret-saved"' in page
    # Saving without typing a secret keeps the stored one.
    form = {
        "name": "Contoso Okta",
        "server_url": "https://contoso.okta.example",
        "oauth_client_id": "portal",
        "client_secret": "",
        "default_role": Role.CLIENT_VIEWER,
        "group_rules": "Finance = Client finance",
        "is_active": "on",
    }
    assert admin.post("/c/contoso/security/", form).status_code == 302
    connection.refresh_from_db()
    assert connection.name == "Contoso Okta" and sso_secret(connection) == SECRET
    assert connection.group_roles == {"Finance": Role.CLIENT_FINANCE}


def test_bad_group_rules_are_refused_with_the_line_and_lose_nothing(world):
    admin = browser_for(world.user("admin@contoso.localhost"), host=NORTHWIND)
    form = {
        "name": "Contoso Okta",
        "server_url": "https://contoso.okta.example",
        "oauth_client_id": "portal",
        "client_secret": SECRET,
        "default_role": Role.CLIENT_VIEWER,
        "group_rules": "Finance = Client finance\nIT = Partner admin",
        "is_active": "on",
    }
    response = admin.post("/c/contoso/security/", form)
    assert response.status_code == 422
    page = response.content.decode()
    assert "Line 2: “Partner admin” is not a role here" in page and "Contoso Okta" in page
    assert not SsoConnection.objects.filter(client=world.clients["contoso"]).exists()


def test_only_admins_configure_sign_in(world):
    for email in ("finance@contoso.localhost", "engineer@northwind.localhost"):
        assert browser_for(world.user(email), host=NORTHWIND).get("/c/contoso/security/").status_code == 403
    assert (
        browser_for(world.user("admin@northwind.localhost"), host=NORTHWIND).get("/c/contoso/security/").status_code
        == 200
    )
    assert (
        browser_for(world.user("engineer@northwind.localhost"), host=NORTHWIND)
        .get("/partner/team/sign-on/")
        .status_code
        == 403
    )
    # another partner's client is as missing as any
    assert (
        browser_for(world.user("admin@summit.localhost"), host=NORTHWIND).get("/c/contoso/security/").status_code == 404
    )


def test_sso_domains_are_scoped_to_their_connection(world, dns_server):
    connection = configure(world, client=world.clients["contoso"], dns=dns_server)
    domain = connection.domains.get()
    tailspin_admin = browser_for(world.user("admin@tailspin.localhost"), host=NORTHWIND)
    assert tailspin_admin.post(f"/c/tailspin/security/domains/{domain.pk}/remove").status_code == 404
    assert SsoDomain.objects.filter(pk=domain.pk).exists()
