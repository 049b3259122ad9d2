"""SAML 2.0 single sign-on's rules: the IdP's metadata is validated with plain errors, the portal's key stays
encrypted, and only a response signed by the saved certificate, answering the portal's own request, for a proven
domain, signs anyone in. The IdP is pysaml2's (tests/idp/saml_provider.py), run in-process here: the test client
carries its messages as a browser would."""

from __future__ import annotations

import base64
import re
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from saml2 import BINDING_HTTP_REDIRECT

from tenants.models import Membership, Role, SsoConnection, User
from tenants.sso_saml import SamlMetadataError, metadata_read
from tenants.sso_services import sso_connection_save, sso_domain_add, sso_domain_verify, sso_sp_private_key
from tests.idp import require_xmlsec1, saml_provider
from tests.support import NORTHWIND, browser_for, user_who_can_sign_in

pytestmark = pytest.mark.django_db

IDP_PORT = 18443  # named in the IdP's entity ID and URLs only: messages travel through the test client


@pytest.fixture
def idp_data(tmp_path) -> Path:
    require_xmlsec1()
    saml_provider.add_person(tmp_path, "ann@saml-contoso.example", "pw", "Ann Analyst", ["Finance"])
    saml_provider.add_person(tmp_path, "eve@elsewhere.example", "pw", "Eve Elsewhere", [])
    return tmp_path


def configure(world, idp_data, *, dns=None, domain="saml-contoso.example", partner_staff=False, **values):
    """Contoso's SAML sign-on (or, with partner_staff, Northwind's for its own team), registered at the IdP."""
    client = world.clients["contoso"]
    idp = metadata_read(saml_provider.metadata(idp_data, IDP_PORT))
    values = {
        "protocol": SsoConnection.Protocol.SAML,
        "name": "Contoso SAML",
        "saml_metadata_url": "",
        "saml_entity_id": idp.entity_id,
        "saml_sso_url": idp.sso_url,
        "saml_x509cert": idp.x509cert,
        "saml_email_attribute": "",
        "saml_name_attribute": "urn:oid:2.16.840.1.113730.3.1.241",
        "saml_groups_attribute": "groups",
        "default_role": Role.CLIENT_VIEWER,
        "group_roles": {"Finance": Role.CLIENT_FINANCE},
        "sso_required": False,
        "is_active": True,
        **values,
    }
    admin = world.user("admin@northwind.localhost")
    scope = None if partner_staff else client
    connection = sso_connection_save(partner=client.partner, client=scope, values=values, actor=admin)
    claimed = sso_domain_add(connection=connection, domain=domain, actor=admin)
    if dns is not None:
        dns.zone[claimed.txt_name] = [claimed.txt_value]
        assert sso_domain_verify(domain=claimed).verified
    # The IdP's administrator registers the portal from its metadata URL.
    sp_metadata = browser_for(host=NORTHWIND).get(f"/accounts/saml/{connection.provider_id}/metadata/")
    assert sp_metadata.status_code == 200, sp_metadata.content[:500]
    (idp_data / "sp-portal.xml").write_bytes(sp_metadata.content)
    return connection


def sign_in(connection, idp_data, email, *, tamper=None, sign=True):
    """The portal's request to the IdP, the IdP's answer for `email`, posted back to the portal's ACS."""
    browser = browser_for(host=NORTHWIND)
    start = browser.post(f"/accounts/saml/{connection.provider_id}/login/")
    assert start.status_code == 302, start.content[:500]
    query = parse_qs(urlparse(start["Location"]).query)
    idp = saml_provider.server(idp_data, IDP_PORT)
    request = idp.parse_authn_request(query["SAMLRequest"][0], BINDING_HTTP_REDIRECT)
    person = saml_provider._people(idp_data)[email]
    destination, xml = saml_provider.authn_response(idp, request, email, person, sign=sign)
    if tamper:
        xml = tamper(xml)
    acs = browser.post(
        urlparse(destination).path,
        {"SAMLResponse": base64.b64encode(xml.encode()).decode(), "RelayState": query.get("RelayState", [""])[0]},
    )
    assert acs.status_code == 302
    return browser, browser.get(acs["Location"])


def signed_in(browser) -> bool:
    return "_auth_user_id" in browser.session


def test_metadata_is_read_for_its_entity_id_sign_on_url_and_certificate(idp_data):
    idp = metadata_read(saml_provider.metadata(idp_data, IDP_PORT))
    assert idp.entity_id == f"http://127.0.0.1:{IDP_PORT}/metadata"
    assert idp.sso_url == f"http://127.0.0.1:{IDP_PORT}/sso/redirect"
    assert idp.x509cert and "\n" not in idp.x509cert


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda xml: xml[: len(xml) // 2], "This is not well-formed XML"),
        (lambda xml: re.sub(r"<ns0:KeyDescriptor.*?</ns0:KeyDescriptor>", "", xml, flags=re.S), "no signing cert"),
        (lambda xml: re.sub(r"<ns0:SingleSignOnService[^>]*/>", "", xml), "no single sign-on endpoint"),
        (lambda xml: xml.replace("IDPSSODescriptor", "SPSSODescriptor"), "describes no identity provider"),
        (lambda xml: '<!DOCTYPE x [<!ENTITY e "boom">]>' + xml, "cannot be read as SAML metadata"),
    ],
)
def test_unusable_metadata_is_refused_with_a_plain_reason(idp_data, change, message):
    with pytest.raises(SamlMetadataError, match=message):
        metadata_read(change(saml_provider.metadata(idp_data, IDP_PORT)))


def test_an_uploaded_metadata_file_configures_saml_in_the_browser_and_bad_files_say_why(world, idp_data):
    from django.core.files.uploadedfile import SimpleUploadedFile

    admin = browser_for(world.user("admin@contoso.localhost"), host=NORTHWIND)
    form = {
        "protocol": "saml",
        "name": "Contoso SAML",
        "default_role": Role.CLIENT_VIEWER,
        "saml_groups_attribute": "groups",
        "group_rules": "Finance = Client finance",
        "is_active": "on",
    }
    metadata = saml_provider.metadata(idp_data, IDP_PORT)
    bad = admin.post(
        "/c/contoso/security/",
        {**form, "saml_metadata_file": SimpleUploadedFile("idp.xml", metadata.replace("KeyDescriptor", "X").encode())},
    )
    assert bad.status_code == 422 and "no signing certificate" in bad.content.decode()
    by_hand = admin.post(
        "/c/contoso/security/",
        {
            **form,
            "saml_entity_id": "https://idp.example/",
            "saml_sso_url": "https://idp.example/sso",
            "saml_x509cert": "nope",
        },
    )
    assert by_hand.status_code == 422 and "That is not an X.509 certificate" in by_hand.content.decode()
    assert not SsoConnection.objects.filter(client=world.clients["contoso"]).exists()

    good = admin.post(
        "/c/contoso/security/", {**form, "saml_metadata_file": SimpleUploadedFile("idp.xml", metadata.encode())}
    )
    assert good.status_code == 302
    connection = SsoConnection.objects.get(client=world.clients["contoso"])
    assert connection.is_saml and connection.saml_sso_url == f"http://127.0.0.1:{IDP_PORT}/sso/redirect"
    assert connection.group_roles == {"Finance": Role.CLIENT_FINANCE}
    page = admin.get("/c/contoso/security/").content.decode()
    assert f"/accounts/saml/{connection.provider_id}/acs/" in page
    assert f"/accounts/saml/{connection.provider_id}/metadata/" in page


def test_the_portals_saml_key_is_encrypted_and_never_shown(world, idp_data):
    connection = configure(world, idp_data)
    key = sso_sp_private_key(connection)
    assert key.startswith("-----BEGIN PRIVATE KEY-----")
    body = "".join(key.splitlines()[1:-1])
    assert body[:40].encode() not in bytes(SsoConnection.objects.get(pk=connection.pk).encrypted_secret)
    sp_metadata = browser_for(host=NORTHWIND).get(f"/accounts/saml/{connection.provider_id}/metadata/").content
    assert connection.saml_sp_x509cert.encode() in sp_metadata and body[:40].encode() not in sp_metadata
    page = browser_for(world.user("admin@contoso.localhost"), host=NORTHWIND).get("/c/contoso/security/")
    assert body[:40] not in page.content.decode()
    # Saving again keeps the same key: the IdP's copy of the portal's certificate stays valid.
    sso_connection_save(
        partner=connection.partner,
        client=connection.client,
        values={**_values(connection), "name": "Contoso SAML 2"},
        actor=world.user("admin@contoso.localhost"),
        connection=connection,
    )
    assert sso_sp_private_key(connection) == key


def _values(connection) -> dict:
    return {
        field: getattr(connection, field)
        for field in (
            "protocol",
            "name",
            "saml_metadata_url",
            "saml_entity_id",
            "saml_sso_url",
            "saml_x509cert",
            "saml_email_attribute",
            "saml_name_attribute",
            "saml_groups_attribute",
            "default_role",
            "group_roles",
            "sso_required",
            "is_active",
        )
    }


def test_a_signed_response_admits_just_in_time_with_the_groups_role(world, idp_data, dns_server):
    connection = configure(world, idp_data, dns=dns_server)
    browser, landing = sign_in(connection, idp_data, "ann@saml-contoso.example")
    assert signed_in(browser), landing.content.decode()[-1500:]
    ann = User.objects.get(email="ann@saml-contoso.example")
    assert ann.full_name == "Ann Analyst" and not ann.has_usable_password()
    assert Membership.objects.get(user=ann, client=world.clients["contoso"]).role == Role.CLIENT_FINANCE


def test_partner_staff_join_their_partners_team_through_its_saml_idp(world, idp_data, dns_server):
    connection = configure(
        world,
        idp_data,
        dns=dns_server,
        partner_staff=True,
        default_role=Role.PARTNER_STAFF,
        group_roles={"Finance": Role.PARTNER_ADMIN},
    )
    browser, _ = sign_in(connection, idp_data, "ann@saml-contoso.example")
    assert signed_in(browser)
    membership = Membership.objects.get(user__email="ann@saml-contoso.example")
    assert membership.partner == world.partners["northwind"] and membership.role == Role.PARTNER_ADMIN


def test_an_unsigned_response_is_refused(world, idp_data, dns_server):
    connection = configure(world, idp_data, dns=dns_server)
    browser, page = sign_in(connection, idp_data, "ann@saml-contoso.example", sign=False)
    assert page.status_code == 403 and "could not be trusted" in page.content.decode()
    assert not signed_in(browser) and not User.objects.filter(email="ann@saml-contoso.example").exists()


def test_a_tampered_response_is_refused(world, idp_data, dns_server):
    connection = configure(world, idp_data, dns=dns_server, group_roles={"Finance": Role.CLIENT_ADMIN})
    # The assertion was signed for Ann; someone edits the address (or the groups) on the way.
    browser, page = sign_in(
        connection,
        idp_data,
        "ann@saml-contoso.example",
        tamper=lambda xml: xml.replace("ann@saml-contoso.example", "mallory@saml-contoso.example"),
    )
    assert page.status_code == 403 and "could not be trusted" in page.content.decode()
    assert not signed_in(browser) and not User.objects.filter(email="mallory@saml-contoso.example").exists()


def test_a_response_signed_by_another_idp_is_refused(world, idp_data, dns_server, tmp_path_factory):
    connection = configure(world, idp_data, dns=dns_server)
    impostor = tmp_path_factory.mktemp("impostor-idp")
    saml_provider.add_person(impostor, "ann@saml-contoso.example", "pw", "Ann", ["Finance"])
    (impostor / "sp-portal.xml").write_bytes((idp_data / "sp-portal.xml").read_bytes())
    # Same entity ID and URLs (same port), its own key: only the saved certificate is trusted.
    browser, page = sign_in(connection, impostor, "ann@saml-contoso.example")
    assert page.status_code == 403 and not signed_in(browser)


def test_an_assertion_for_an_unproven_domain_is_refused(world, idp_data, dns_server):
    connection = configure(world, idp_data, dns=dns_server)
    browser, page = sign_in(connection, idp_data, "eve@elsewhere.example")
    assert page.status_code == 403
    assert "elsewhere.example: that domain is not proven" in page.content.decode()
    assert not signed_in(browser) and not User.objects.filter(email="eve@elsewhere.example").exists()


def test_sso_required_refuses_the_password_form_for_a_saml_domain(world, idp_data, dns_server):
    configure(world, idp_data, dns=dns_server, domain="saml-required.example", sso_required=True)
    user_who_can_sign_in("lee@saml-required.example", "a-long-passphrase-7")
    response = browser_for(host=NORTHWIND).post(
        "/accounts/login/", {"login": "lee@saml-required.example", "password": "a-long-passphrase-7"}
    )
    assert "sign in with single sign-on through Contoso SAML" in response.content.decode()


def test_garbage_at_the_acs_is_refused_not_a_crash(world, idp_data):
    connection = configure(world, idp_data)
    acs = f"/accounts/saml/{connection.provider_id}/acs/"
    for body in ({"SAMLResponse": "not base64 !"}, {"SAMLResponse": base64.b64encode(b"<x/>").decode()}, {}):
        browser = browser_for(host=NORTHWIND)
        answer = browser.post(acs, body)
        assert answer.status_code == 302
        assert browser.get(answer["Location"]).status_code in (400, 403)
    assert browser_for(host=NORTHWIND).get(f"/accounts/saml/{connection.provider_id}/acs/finish/").status_code < 500
    assert browser_for(host=NORTHWIND).post("/accounts/saml/sso999999/acs/finish/").status_code == 404


def test_the_saml_key_survives_a_key_rotation(world, idp_data, settings):
    import io

    from cryptography.fernet import Fernet
    from django.core.management import call_command

    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.CREDENTIALS_KEYS = [old_key]
    connection = configure(world, idp_data)
    key = sso_sp_private_key(connection)
    settings.CREDENTIALS_KEYS = [new_key, old_key]
    call_command("credentials_rotate", stdout=io.StringIO(), stderr=io.StringIO())
    settings.CREDENTIALS_KEYS = [new_key]  # the old key is retired
    assert sso_sp_private_key(SsoConnection.objects.get(pk=connection.pk)) == key


def test_a_metadata_url_on_a_private_address_is_refused_with_the_reason(world):
    admin = browser_for(world.user("admin@contoso.localhost"), host=NORTHWIND)
    form = {
        "protocol": "saml",
        "name": "Contoso SAML",
        "default_role": Role.CLIENT_VIEWER,
        "saml_metadata_url": "http://10.0.0.1/metadata",
        "is_active": "on",
    }
    response = admin.post("/c/contoso/security/", form)
    assert response.status_code == 422
    assert "The metadata URL could not be read: Refused to connect" in response.content.decode()
