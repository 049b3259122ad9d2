"""What the connection-form tests share: the vendors' sandboxes served for a module, and one pass through a vendor's
form in the Contoso workspace: open it, save it with the sandbox's demo credentials, press "Test", open the page."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from django.db import connection

from integrations.models import Connection
from tests.integrations.workspace_fixtures import demo_credentials
from tests.support import NORTHWIND, browser_for, vendor_sandboxes

HTMX = {"HTTP_HX_REQUEST": "true"}


def sandboxes_fixture(vendors):
    """A module-scoped `running` fixture: each vendor's sandbox, by vendor, served over real HTTP on loopback."""

    @pytest.fixture(scope="module")
    def running():
        with vendor_sandboxes(vendors) as sandboxes:
            yield sandboxes

    return running


@dataclass(frozen=True)
class FormPass:
    form: str  # the empty form
    saved: Any  # the answer to saving it
    tested: str  # what "Test" answered
    detail: str  # the connection's page afterwards


def connection_form_pass(world, settings, sandbox, vendor: str) -> FormPass:
    """Contoso's admin fills the vendor's form with its sandbox's demo credentials, saves it and tests it."""
    settings.CONNECTOR_ALLOWED_HOSTS = [sandbox.host]
    admin = browser_for(world.user("admin@contoso.localhost"), host=NORTHWIND)
    credentials = demo_credentials(vendor)

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
    return FormPass(form=form, saved=saved, tested=tested, detail=detail)
