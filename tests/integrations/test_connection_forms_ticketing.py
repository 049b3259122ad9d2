"""The ticketing systems' connection forms come from their connectors, save, and "Test" signs in to the vendors'
sandboxes through the workspace's HTTP policy; the secret in each is stored encrypted and never shown again."""

from __future__ import annotations

import importlib

import pytest
from django.db import connection

from connectors.sandbox.firm import Firm
from connectors.sandbox.server import serve_in_thread
from integrations.models import Connection
from tests.support import NORTHWIND, browser_for

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}
# vendor -> (labels the form shows, what "Test" says, the credential that is secret)
FORMS = {
    "asana": (
        ("Personal access token", "Workspace gid"),
        "Connected to Asana workspace Halden &amp; Rowe",
        "access_token",
    ),
    "monday": (
        ("API token", "Board ids"),
        "Connected to monday.com account Halden &amp; Rowe as integration@haldenrowe.example; 10 boards visible.",
        "api_token",
    ),
}


@pytest.fixture(scope="module")
def running():
    sandboxes = {
        vendor: serve_in_thread(importlib.import_module(f"connectors.{vendor}.sandbox").create_app(Firm()))
        for vendor in FORMS
    }
    yield sandboxes
    for sandbox in sandboxes.values():
        sandbox.stop()


@pytest.mark.parametrize("vendor", sorted(FORMS))
def test_the_form_saves_and_test_signs_in(world, settings, running, vendor):
    labels, greeting, secret_name = FORMS[vendor]
    sandbox = running[vendor]
    settings.CONNECTOR_ALLOWED_HOSTS = [sandbox.host]
    admin = browser_for(world.user("admin@contoso.localhost"), host=NORTHWIND)
    credentials = importlib.import_module(f"connectors.{vendor}.sandbox").DEMO_CREDENTIALS

    form = admin.get(f"/c/contoso/connections/new/{vendor}").content.decode()
    saved = admin.post(
        f"/c/contoso/connections/new/{vendor}",
        {"name": f"{vendor} sandbox", "base_url": sandbox.url, **{f"cred_{k}": v for k, v in credentials.items()}},
    )
    connection.set_tenant(world.clients["contoso"])
    try:
        created = Connection.objects.get(name=f"{vendor} sandbox")
    finally:
        connection.set_schema_to_public()
    tested = admin.post(f"/c/contoso/connections/{created.pk}/test", **HTMX).content.decode()
    detail = admin.get(f"/c/contoso/connections/{created.pk}/").content.decode()

    assert all(label in form for label in labels)
    assert saved.status_code == 302
    assert 'class="check-result ok"' in tested and greeting in tested, tested[:3000]
    assert credentials[secret_name] not in detail  # secrets are write-only
