"""The ticketing systems' connection forms come from their connectors, save, and "Test" signs in to the vendors'
sandboxes through the workspace's HTTP policy; the secret in each is stored encrypted and never shown again."""

from __future__ import annotations

import pytest

from tests.integrations.connection_forms import connection_form_pass, sandboxes_fixture
from tests.integrations.workspace_fixtures import demo_credentials

pytestmark = pytest.mark.django_db

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


running = sandboxes_fixture(FORMS)


@pytest.mark.parametrize("vendor", sorted(FORMS))
def test_the_form_saves_and_test_signs_in(world, settings, running, vendor):
    labels, greeting, secret_name = FORMS[vendor]

    seen = connection_form_pass(world, settings, running[vendor], vendor)

    assert all(label in seen.form for label in labels)
    assert seen.saved.status_code == 302
    assert 'class="check-result ok"' in seen.tested and greeting in seen.tested, seen.tested[:3000]
    assert demo_credentials(vendor)[secret_name] not in seen.detail  # secrets are write-only
