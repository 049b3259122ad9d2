"""The Sage Intacct, Acumatica, Certinia, Kimble and Float connection forms come from their connectors, save, and "Test" signs in to the
vendors' sandboxes through the workspace's HTTP policy."""

from __future__ import annotations

import pytest

from tests.integrations.connection_forms import connection_form_pass, sandboxes_fixture

pytestmark = pytest.mark.django_db

LABELS = {
    "intacct": ("Web Services sender ID", "Company ID", "Web Services user ID", "External ID custom field"),
    "acumatica": ("API user name", "Tenant (company)", "Endpoint version"),
    "certinia": ("Consumer key", "Integration user name", "Read approved timecards and expenses only"),
    "kimble": ("Consumer key", "Integration user name", "Read approved time and expenses only"),
    "float": ("API token", "Application name", "Contact email"),
}


running = sandboxes_fixture(LABELS)


@pytest.mark.parametrize("vendor", sorted(LABELS))
def test_the_form_saves_and_test_signs_in(world, settings, running, vendor):
    seen = connection_form_pass(world, settings, running[vendor], vendor)

    assert all(label in seen.form for label in LABELS[vendor])
    assert seen.saved.status_code == 302
    assert 'class="check-result ok"' in seen.tested and "Connected to" in seen.tested
