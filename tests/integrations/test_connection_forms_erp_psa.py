"""The Sage Intacct, Acumatica, Certinia, Kimble and Float connection forms come from their connectors, save, and "Test" signs in to the
vendors' sandboxes through the workspace's HTTP policy."""

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
LABELS = {
    "intacct": ("Web Services sender ID", "Company ID", "Web Services user ID", "External ID custom field"),
    "acumatica": ("API user name", "Tenant (company)", "Endpoint version"),
    "certinia": ("Consumer key", "Integration user name", "Read approved timecards and expenses only"),
    "kimble": ("Consumer key", "Integration user name", "Read approved time and expenses only"),
    "float": ("API token", "Application name", "Contact email"),
}


@pytest.fixture(scope="module")
def running():
    sandboxes = {
        vendor: serve_in_thread(importlib.import_module(f"connectors.{vendor}.sandbox").create_app(Firm()))
        for vendor in LABELS
    }
    yield sandboxes
    for sandbox in sandboxes.values():
        sandbox.stop()


@pytest.mark.parametrize("vendor", sorted(LABELS))
def test_the_form_saves_and_test_signs_in(world, settings, running, vendor):
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

    assert all(label in form for label in LABELS[vendor])
    assert saved.status_code == 302
    assert 'class="check-result ok"' in tested and "Connected to" in tested
