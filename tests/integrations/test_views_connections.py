"""The connection screens through the test client: forms built from the connector, secrets never shown again,
PEM text for mutual TLS, and a test that says why it failed."""

from __future__ import annotations

import pytest

from connectors.sandbox.server import SANDBOX_PORTS
from integrations.models import (
    Connection,
)
from portal.crypto import credentials_decrypt
from tests.integrations.workspace_fixtures import demo_credentials
from tests.integrations.workspace_views import HTMX, admin, cold_cache, contoso, within  # noqa: F401 -- fixtures

pytestmark = pytest.mark.django_db


# --- Connections ------------------------------------------------------------------------------


def test_a_connection_form_comes_from_the_connector_and_never_shows_secrets_again(world, admin):
    form = admin.get("/c/contoso/connections/new/netsuite").content.decode()
    for label in ("Account ID", "Client ID", "Certificate ID", "Certificate private key (PEM)"):
        assert label in form
    creds = demo_credentials("kantata")
    response = admin.post(
        "/c/contoso/connections/new/kantata",
        {
            "name": "Kantata OX",
            "base_url": "http://127.0.0.1:9",
            "cred_access_token": creds["access_token"],
            "cred_service_name": "SysGenPro",
            "cred_approved_only": "yes",
        },
    )
    assert response.status_code == 302
    created = within(world, lambda: Connection.objects.get(vendor="kantata"))
    page = admin.get(response["Location"]).content.decode()
    assert creds["access_token"] not in page
    assert "SysGenPro" in page  # non-secret settings are shown

    # Rotating with the secret left blank keeps it; a new one replaces it.
    refused = admin.post(f"/c/contoso/connections/{created.pk}/rotate", {"cred_service_name": "Renamed"})
    assert refused.status_code == 422
    admin.post(
        f"/c/contoso/connections/{created.pk}/rotate", {"cred_access_token": "new-token", "cred_service_name": ""}
    )
    stored = within(world, lambda: credentials_decrypt(Connection.objects.get(pk=created.pk).encrypted_credentials))
    assert stored["access_token"] == "new-token" and stored["service_name"] == "SysGenPro"


@pytest.fixture
def hr_sandboxes(settings):
    """Workday (SOAP) and ADP (mutual TLS) sandboxes this workspace may reach."""
    from connectors.adp.sandbox import create_app as adp_app
    from connectors.sandbox.firm import Firm
    from connectors.sandbox.server import serve_in_thread
    from connectors.workday.sandbox import create_app as workday_app

    running = {"workday": serve_in_thread(workday_app(Firm())), "adp": serve_in_thread(adp_app(Firm()))}
    settings.CONNECTOR_ALLOWED_HOSTS = [s.host for s in running.values()]
    yield running
    for sandbox in running.values():
        sandbox.stop()


def test_an_adp_connection_takes_pem_text_in_text_areas_and_tests_over_mutual_tls(world, admin, hr_sandboxes, settings):
    adp_port = SANDBOX_PORTS["adp"]  # where the demo's ADP sandbox listens (moved by SANDBOX_PORT_OFFSET)
    settings.CONNECTOR_ALLOWED_HOSTS = [*settings.CONNECTOR_ALLOWED_HOSTS, f"127.0.0.1:{adp_port}"]
    form = admin.get("/c/contoso/connections/new/adp").content.decode()
    assert f"<code>https://127.0.0.1:{adp_port}</code>" in form  # the ADP sandbox speaks TLS only
    for name in ("cred_client_certificate", "cred_client_private_key", "cred_ca_certificate"):
        assert f'<textarea name="{name}"' in form
    assert '<input type="password" name="cred_client_secret"' in form

    creds = demo_credentials("adp")
    response = admin.post(
        "/c/contoso/connections/new/adp",
        {
            "name": "ADP Workforce Now",
            "base_url": hr_sandboxes["adp"].url,
            **{f"cred_{key}": value for key, value in creds.items()},
        },
    )
    assert response.status_code == 302, response.content.decode()
    created = within(world, lambda: Connection.objects.get(vendor="adp"))
    stored = within(world, lambda: credentials_decrypt(created.encrypted_credentials))
    assert stored["client_private_key"] == creds["client_private_key"].strip()  # lines kept, stored encrypted
    page = admin.get(response["Location"]).content.decode()
    assert creds["client_private_key"].splitlines()[1] not in page
    assert "-----BEGIN CERTIFICATE----- … (" in page  # the CA shown by its first line, not in full

    tested = admin.post(f"/c/contoso/connections/{created.pk}/test", **HTMX).content.decode()
    assert "check-result ok" in tested and "with a client certificate; 200 workers visible" in tested


def test_a_workday_connection_form_tests_the_integration_system_user(world, admin, hr_sandboxes):
    creds = demo_credentials("workday")
    response = admin.post(
        "/c/contoso/connections/new/workday",
        {"name": "Workday", "base_url": hr_sandboxes["workday"].url, **{f"cred_{k}": v for k, v in creds.items()}},
    )
    assert response.status_code == 302, response.content.decode()
    created = within(world, lambda: Connection.objects.get(vendor="workday"))
    tested = admin.post(f"/c/contoso/connections/{created.pk}/test", **HTMX).content.decode()
    assert "check-result ok" in tested and "as integration system user ISU_Integrations" in tested


def test_testing_an_unreachable_connection_shows_why_inline(world, admin, contoso):
    response = admin.post(f"/c/contoso/connections/{contoso.kantata.pk}/test", **HTMX)
    body = response.content.decode()
    assert 'data-testid="test-result"' in body and "check-result bad" in body
    assert within(world, lambda: Connection.objects.get(pk=contoso.kantata.pk).status) == "failing"
