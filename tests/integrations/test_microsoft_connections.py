"""Dynamics 365 and Business Central in the workspace: their connection forms come from form_fields(), "Test"
reaches the sandbox, and the webhook URL answers Business Central's subscription handshake before verifying."""

from __future__ import annotations

import json

import pytest
from django.db import connection

from connectors.businesscentral.sandbox import DEMO_CREDENTIALS as BC_CREDENTIALS
from connectors.businesscentral.sandbox import create_app as businesscentral_app
from connectors.dynamics365.sandbox import DEMO_CREDENTIALS as D365_CREDENTIALS
from connectors.dynamics365.sandbox import create_app as dynamics365_app
from connectors.sandbox.server import serve_in_thread
from integrations.models import Connection, Flow, Mapping, MappingRule
from tests.support import NORTHWIND, browser_for

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture(scope="module")
def microsoft_sandboxes():
    running = {
        "dynamics365": serve_in_thread(dynamics365_app()),
        "businesscentral": serve_in_thread(businesscentral_app()),
    }
    yield running
    for sandbox in running.values():
        sandbox.stop()


@pytest.fixture
def admin(world, settings, microsoft_sandboxes):
    settings.CONNECTOR_ALLOWED_HOSTS = [f"127.0.0.1:{s.port}" for s in microsoft_sandboxes.values()]
    return browser_for(world.user("admin@contoso.localhost"), host=NORTHWIND)


@pytest.mark.parametrize(
    ("vendor", "credentials", "greeting"),
    [
        ("dynamics365", D365_CREDENTIALS, "Connected to Dynamics 365 at 127.0.0.1:"),
        ("businesscentral", BC_CREDENTIALS, "Connected to Business Central environment production"),
    ],
)
def test_the_form_renders_saves_and_tests_against_the_sandbox(
    world, admin, microsoft_sandboxes, vendor, credentials, greeting
):
    sandbox = microsoft_sandboxes[vendor]
    form = admin.get(f"/c/contoso/connections/new/{vendor}").content.decode()
    for name in ("tenant_id", "client_id", "client_secret", "authority"):
        assert f'name="cred_{name}"' in form
    posted = {"name": f"{vendor} sandbox", "base_url": sandbox.url}
    posted.update({f"cred_{k}": v for k, v in credentials.items()})
    posted["cred_authority"] = sandbox.url
    saved = admin.post(f"/c/contoso/connections/new/{vendor}", posted)
    assert saved.status_code == 302, saved.content.decode()[:2000]
    connection.set_tenant(world.clients["contoso"])
    made = Connection.objects.get(vendor=vendor)
    connection.set_schema_to_public()

    result = admin.post(f"/c/contoso/connections/{made.pk}/test", **HTMX).content.decode()
    assert "check-result ok" in result and greeting in result
    connection.set_tenant(world.clients["contoso"])
    assert Connection.objects.get(pk=made.pk).status != "failing"


def test_a_url_typed_without_a_scheme_is_taken_as_https():
    from integrations.forms.connections import ConnectionForm

    data = {"name": "D365", "base_url": "https://haldenrowe.crm.dynamics.com"}
    data.update({f"cred_{k}": v for k, v in D365_CREDENTIALS.items()}, cred_authority="login.microsoftonline.us")
    form = ConnectionForm(data, vendor="dynamics365")
    assert form.is_valid(), form.errors
    assert form.credentials()["authority"] == "https://login.microsoftonline.us"


def test_the_webhook_url_answers_the_handshake_then_checks_the_client_state(world, microsoft_sandboxes):
    from integrations.services.connections import connection_create

    client = world.clients["contoso"]
    connection.set_tenant(client)
    source = connection_create(
        name="Business Central",
        vendor="businesscentral",
        base_url=microsoft_sandboxes["businesscentral"].url,
        credentials={**BC_CREDENTIALS, "authority": microsoft_sandboxes["businesscentral"].url},
    )
    mapping = Mapping.objects.create(name="BC customers")
    MappingRule.objects.create(mapping=mapping, target="customer.name", sources=["displayName"])
    flow = Flow.objects.create(
        name="Customers from Business Central",
        source_connection=source,
        source_object="customers",
        entity="customer",
        inbound_mapping=mapping,
        trigger=Flow.Trigger.WEBHOOK,
    )
    connection.set_schema_to_public()
    hook = browser_for(host=NORTHWIND)
    path = f"/hooks/{client.slug}/{flow.webhook_token}"

    handshake = hook.post(f"{path}?validationToken=tok-123", data=b"", content_type="application/json")
    assert handshake.status_code == 200 and handshake.content == b"tok-123"
    assert handshake["Content-Type"].startswith("text/plain")

    def notification(state: str) -> bytes:
        return json.dumps({"value": [{"subscriptionId": "s1", "clientState": state, "changeType": "updated"}]}).encode()

    forged = hook.post(path, data=notification("guess"), content_type="application/json")
    assert forged.status_code == 401 and "clientState" in forged.json()["reason"]
    accepted = hook.post(path, data=notification(BC_CREDENTIALS["webhook_secret"]), content_type="application/json")
    assert accepted.status_code == 202, accepted.content
