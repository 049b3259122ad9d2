"""The host names the partner; /c/<slug>/ names the client; unknown hosts get a neutral 404."""

import pytest

from tests.support import NORTHWIND, PLATFORM, SUMMIT, browser_for

pytestmark = pytest.mark.django_db


def test_unknown_host_gets_brand_neutral_404(world):
    response = browser_for(host="nobody.example").get("/")
    assert response.status_code == 404
    body = response.content.decode()
    assert "There is no portal at this address" in body
    assert "Northwind" not in body and "Summit" not in body and "SysGenPro" not in body


def test_unknown_host_with_hostile_name_is_escaped(world):
    response = browser_for(host="x<script>.example").get("/")
    assert response.status_code == 404
    assert "<script>" not in response.content.decode()


@pytest.mark.parametrize(
    ("host", "product"), [(NORTHWIND, "Northwind Connect"), (SUMMIT, "Summit Sync"), (PLATFORM, "SysGenPro Connect")]
)
def test_login_page_carries_the_hosts_brand(world, host, product):
    response = browser_for(host=host).get("/accounts/login/")
    assert response.status_code == 200
    assert product in response.content.decode()


def test_partner_host_does_not_serve_the_operator_console(world):
    operator = world.user("operator@sysgenpro.localhost")
    assert browser_for(operator, host=NORTHWIND).get("/platform/").status_code == 404


def test_platform_host_does_not_serve_workspaces(world):
    admin = world.user("admin@contoso.localhost")
    assert browser_for(admin, host=PLATFORM).get("/c/contoso/").status_code == 404


def test_workspace_of_another_partner_is_not_found_on_this_host(world):
    summit_admin = world.user("admin@summit.localhost")
    assert browser_for(summit_admin, host=NORTHWIND).get("/c/fabrikam/").status_code == 404


def test_anonymous_visitor_of_a_workspace_is_sent_to_login(world):
    response = browser_for(host=NORTHWIND).get("/c/contoso/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize("path", ["/c/contoso/", "/c/no-such-client/", "/c/fabrikam/exceptions/export.csv"])
def test_anonymous_visitors_cannot_tell_existing_workspaces_from_missing_ones(world, path):
    response = browser_for(host=NORTHWIND).get(path)
    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={path}"


def test_workspace_requests_run_in_the_clients_schema(world):
    from django.db import connection

    from integrations.models import AuditEvent
    from integrations.services.audit import audit_record
    from tenants.models import Client

    contoso = Client.objects.get(slug="contoso")
    connection.set_tenant(contoso)
    audit_record(actor=None, action="test.marker", summary="only in contoso")
    connection.set_schema_to_public()
    tailspin = Client.objects.get(slug="tailspin")
    connection.set_tenant(tailspin)
    assert not AuditEvent.objects.filter(action="test.marker").exists()
    connection.set_tenant(contoso)
    assert AuditEvent.objects.filter(action="test.marker").exists()
