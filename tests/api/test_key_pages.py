"""Keys are created and revoked in the browser: partner keys in the partner console, client keys in the workspace."""

import re

import pytest
from django_tenants.utils import tenant_context

from api.models import ApiKey
from api.services import api_key_hash
from tests.api.conftest import Api
from tests.support import NORTHWIND, browser_for

pytestmark = pytest.mark.django_db


def issued_secret(response) -> str:
    match = re.search(r'id="issued-secret"[^>]*value="([^"]+)"', response.content.decode())
    assert match, response.content.decode()[:2000]
    return match.group(1)


def test_partner_admin_creates_a_key_sees_it_once_and_revokes_it(world):
    admin = browser_for(world.user("admin@northwind.localhost"), host=NORTHWIND)
    assert admin.get("/partner/api-keys/").status_code == 200
    created = admin.post(
        "/partner/api-keys/",
        {"name": "CRM onboarding", "scope_clients": "write", "scope_plans": "read", "expires": "90"},
    )
    assert created.status_code == 201
    secret = issued_secret(created)
    key = ApiKey.objects.get(key_hash=api_key_hash(secret))
    assert key.scopes == ["clients:write", "plans:read"] and key.client is None and key.expires_at is not None
    assert secret not in admin.get("/partner/api-keys/").content.decode()  # shown once
    assert Api(secret).get("/plans").status_code == 200

    assert admin.post(f"/partner/api-keys/{key.pk}/revoke").status_code == 302
    assert Api(secret).get("/plans").status_code == 401


def test_a_key_needs_a_name_and_a_scope(world):
    admin = browser_for(world.user("admin@northwind.localhost"), host=NORTHWIND)
    refused = admin.post("/partner/api-keys/", {"name": "  ", "expires": ""})
    page = refused.content.decode()
    assert refused.status_code == 422 and "at least one kind of resource" in page and "This field is required" in page
    assert 'id="issued-secret"' not in page


def test_only_partner_admins_manage_partner_keys(world, northwind_key):
    engineer = browser_for(world.user("engineer@northwind.localhost"), host=NORTHWIND)
    assert engineer.get("/partner/api-keys/").status_code == 403
    assert engineer.post(f"/partner/api-keys/{northwind_key.key.pk}/revoke").status_code == 403
    summit = world.partners["summit"]
    from tests.api.conftest import make_key

    theirs = make_key(world.user("admin@summit.localhost"), summit)
    admin = browser_for(world.user("admin@northwind.localhost"), host=NORTHWIND)
    assert admin.post(f"/partner/api-keys/{theirs.key.pk}/revoke").status_code == 404


def test_client_admin_creates_a_client_key_in_the_workspace_and_it_is_audited(world):
    from integrations.models import AuditEvent

    admin = browser_for(world.user("admin@contoso.localhost"), host=NORTHWIND)
    created = admin.post("/c/contoso/api-keys/", {"name": "Service desk", "scope_exceptions": "write", "expires": "30"})
    assert created.status_code == 201
    secret = issued_secret(created)
    assert secret.startswith("ck_")
    key = ApiKey.objects.get(key_hash=api_key_hash(secret))
    assert key.client == world.clients["contoso"] and key.scopes == ["exceptions:write"]
    assert (
        "clients" not in created.content.decode().split("New key")[1].split("</form>")[0]
    )  # no partner scopes offered
    with tenant_context(world.clients["contoso"]):
        assert AuditEvent.objects.filter(action="api_key.created", actor_email="admin@contoso.localhost").exists()
    assert Api(secret).get("/clients/contoso/exceptions").status_code == 200
    assert admin.post(f"/c/contoso/api-keys/{key.pk}/revoke").status_code == 302
    assert Api(secret).get("/clients/contoso/exceptions").status_code == 401


def test_finance_and_viewers_cannot_create_client_keys(world, contoso_key):
    for email in ("finance@contoso.localhost", "viewer@contoso.localhost"):
        person = browser_for(world.user(email), host=NORTHWIND)
        assert person.get("/c/contoso/api-keys/").status_code == 403
        assert person.post(f"/c/contoso/api-keys/{contoso_key.key.pk}/revoke").status_code == 403
    # Another workspace's admin does not even see this one.
    tailspin = browser_for(world.user("admin@tailspin.localhost"), host=NORTHWIND)
    assert tailspin.post(f"/c/contoso/api-keys/{contoso_key.key.pk}/revoke").status_code == 404
