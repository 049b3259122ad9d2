"""The Workday and ADP connection forms come from their connectors, save, and "Test" signs in to the vendors'
sandboxes through the workspace's HTTP policy: Workday with its integration user over SOAP, ADP with the client
certificate pasted into the form (mutual TLS), whose secrets are stored encrypted and never shown again."""

from __future__ import annotations

import pytest

from tests.integrations.connection_forms import connection_form_pass, sandboxes_fixture
from tests.integrations.workspace_fixtures import demo_credentials

pytestmark = pytest.mark.django_db

LABELS = {
    "workday": ("Tenant", "Web service version", "Integration system user", "ISU password"),
    "adp": ("Client ID", "Client certificate (PEM)", "Client private key (PEM)", "Trusted CA certificate (PEM)"),
}
GREETINGS = {"workday": "Connected to Workday", "adp": "Connected to ADP Workforce Now with a client certificate"}


running = sandboxes_fixture(LABELS)


@pytest.mark.parametrize("vendor", sorted(LABELS))
def test_the_form_saves_and_test_signs_in(world, settings, running, vendor):
    seen = connection_form_pass(world, settings, running[vendor], vendor)
    credentials = demo_credentials(vendor)

    assert all(label in seen.form for label in LABELS[vendor])
    assert seen.saved.status_code == 302
    assert 'class="check-result ok"' in seen.tested and GREETINGS[vendor] in seen.tested, seen.tested[:3000]
    # Secrets are write-only: the connection's page never shows one back (a PEM key by any of its lines).
    secrets = [credentials[k] for k in ("password", "client_secret", "client_private_key") if credentials.get(k)]
    shown = [
        line
        for secret in secrets
        for line in secret.strip().splitlines()
        if not line.startswith("-----") and line in seen.detail
    ]
    assert secrets and not shown
