"""API keys: shown once and stored hashed, scopes, expiry, revocation, last use, and every call audited."""

from datetime import timedelta

import pytest
from django.utils import timezone
from django_tenants.utils import tenant_context

from api.models import ApiKey, PartnerApiCall
from api.services import api_key_hash, api_key_revoke
from tests.api.conftest import Api, make_key
from tests.support import NORTHWIND, SUMMIT

pytestmark = pytest.mark.django_db


def test_a_key_is_stored_only_as_a_hash_and_shown_once(world, northwind_key):
    stored = ApiKey.objects.get(pk=northwind_key.key.pk)
    assert northwind_key.secret.startswith("pk_") and len(northwind_key.secret) > 40
    assert stored.key_hash == api_key_hash(northwind_key.secret)
    assert northwind_key.secret not in str(ApiKey.objects.filter(pk=stored.pk).values().first())
    assert Api(northwind_key.secret).get("/plans").status_code == 200


def test_calls_without_a_valid_key_are_refused_as_problems(world, northwind_key):
    for secret in (None, "pk_not-a-key", northwind_key.secret[:-2]):
        response = Api(secret).get("/plans")
        assert response.status_code == 401
        assert response["Content-Type"] == "application/problem+json"
        assert response.json()["status"] == 401 and response["WWW-Authenticate"] == "Bearer"
    # A key works only on its own partner's host: elsewhere it is as unknown as any other string.
    elsewhere = Api(northwind_key.secret, host=SUMMIT).get("/plans")
    assert elsewhere.status_code == 401 and elsewhere.json()["detail"] == "This key is not valid here."


def test_revoked_and_expired_keys_stop_at_once(world, northwind_key):
    admin = world.user("admin@northwind.localhost")
    api_key_revoke(key=northwind_key.key, actor=admin)
    response = Api(northwind_key.secret).get("/plans")
    assert response.status_code == 401 and response.json()["detail"] == "This key was revoked."

    expiring = make_key(admin, world.partners["northwind"], expires_at=timezone.now() + timedelta(minutes=1))
    assert Api(expiring.secret).get("/plans").status_code == 200
    ApiKey.objects.filter(pk=expiring.key.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert Api(expiring.secret).get("/plans").json()["detail"] == "This key has expired."


def test_a_key_never_acts_with_more_than_its_creators_role_today(world):
    from tenants.models import Membership

    contoso = world.clients["contoso"]
    issued = make_key(world.user("finance@contoso.localhost"), world.partners["northwind"], client=contoso)
    api = Api(issued.secret)
    assert api.get("/clients/contoso/exceptions").status_code == 200
    # Finance may work the queue but not change connections, whatever the key's scopes say.
    refused = api.post("/clients/contoso/connections", {"name": "X", "vendor": "kantata", "base_url": "https://x"})
    assert refused.status_code == 403
    Membership.objects.filter(user__email="finance@contoso.localhost", client=contoso).delete()
    gone = api.get("/clients/contoso/exceptions")
    assert gone.status_code == 401 and "no longer works in this workspace" in gone.json()["detail"]


def test_scopes_limit_a_key_to_its_resource_families(world):
    contoso = world.clients["contoso"]
    reader = make_key(
        world.user("admin@contoso.localhost"), world.partners["northwind"], client=contoso, scopes=["exceptions:read"]
    )
    api = Api(reader.secret)
    assert api.get("/clients/contoso/exceptions").status_code == 200
    assert api.get("/clients/contoso/connections").status_code == 403
    refused = api.post("/clients/contoso/exceptions/1/ignore", {"reason": "nope"})
    assert refused.status_code == 403 and "exceptions:write" in refused.json()["detail"]
    # A client key is never a partner key, whatever it asks for.
    assert api.get("/clients").status_code == 403


def test_every_call_is_audited_with_its_key_action_and_object(world, contoso_key, northwind_key):
    from integrations.models import AuditEvent

    contoso = world.clients["contoso"]
    Api(contoso_key.secret).get("/clients/contoso/exceptions/999999")
    with tenant_context(contoso):
        row = AuditEvent.objects.filter(action="api.exceptions.get").latest("id")
    assert row.target_id == "999999" and row.after["key"] == contoso_key.key.prefix and row.after["status"] == 404
    assert row.actor_email == "admin@contoso.localhost"
    assert contoso_key.key.prefix in row.summary and contoso_key.secret not in row.summary

    Api(northwind_key.secret).get("/plans")
    call = PartnerApiCall.objects.filter(key=northwind_key.key).latest("id")
    assert (call.action, call.status, call.key_prefix) == ("api.plans.list", 200, northwind_key.key.prefix)
    assert ApiKey.objects.get(pk=northwind_key.key.pk).last_used_at is not None


def test_the_openapi_document_and_docs_are_served_on_the_partner_host(world):
    from django.test import Client as HttpClient

    http = HttpClient(HTTP_HOST=NORTHWIND)
    document = http.get("/api/v1/openapi.json").json()
    assert document["openapi"].startswith("3.") and "/api/v1/clients/{client}/exceptions" in document["paths"]
    assert "SysGenPro" not in str(document)
    docs = http.get("/api/v1/docs")
    assert docs.status_code == 200 and b"swagger-ui-bundle.js" in docs.content and b"cdn." not in docs.content


def test_keys_of_an_admin_who_never_set_up_the_second_factor_the_policy_asks_for_are_refused(world):
    from allauth.mfa.totp.internal.auth import TOTP

    from tenants.models import MfaPolicy, Partner

    northwind = world.partners["northwind"]
    admin = world.user("admin@northwind.localhost")
    issued = make_key(admin, northwind)
    assert Api(issued.secret).get("/plans").status_code == 200  # the demo's policy asks nobody
    Partner.objects.filter(pk=northwind.pk).update(mfa_policy=MfaPolicy.ADMINS)
    refused = Api(issued.secret).get("/plans")
    assert refused.status_code == 401 and refused["Content-Type"] == "application/problem+json"
    assert "has not set up two-factor sign-in" in refused.json()["detail"]
    TOTP.activate(admin, "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")
    assert Api(issued.secret).get("/plans").status_code == 200
