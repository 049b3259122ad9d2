"""Journeys against a deployed stack (deploy/compose.yaml with its demo profile), not the test database.

    DEPLOYED_PORT=18000 .venv/bin/python -m pytest tests/browser/test_deployed_journey.py

deploy/smoke.sh starts the containers and runs these; the suite skips them when no DEPLOYED_PORT is set. They sign
in on the partners' hosts as the demo's users would and check what only a working deployment shows: brand and
static files served, the first syncs run by the containerised worker against the sandboxes container (the
exception queue holds the firm's faults), the partner console listing its clients, every page passing axe.
"""

from __future__ import annotations

import os
import re
import time

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import screenshot, sign_in

PORT = os.environ.get("DEPLOYED_PORT", "")
pytestmark = pytest.mark.skipif(not PORT, reason="no deployed stack: deploy/smoke.sh sets DEPLOYED_PORT")


def test_finance_sees_the_first_syncs_exceptions_in_the_deployed_workspace(page):
    base = f"http://northwind.localhost:{PORT}"
    sign_in(page, base, "finance@contoso.localhost")
    assert page.url == f"{base}/c/contoso/"
    assert page.locator(".brand-name").inner_text() == "Northwind Connect"
    stylesheet = page.evaluate("() => [...document.styleSheets].filter(s => s.href).length")
    assert stylesheet >= 1  # whitenoise serves the collected static files
    # The demo's first runs go through the syncs worker; the queue fills as they finish.
    deadline = time.monotonic() + 240
    while True:
        page.goto(f"{base}/c/contoso/exceptions/")
        rows = page.locator("[data-testid=exception-row]")
        if rows.count() or time.monotonic() > deadline:
            break
        time.sleep(5)
    assert rows.count() > 0, "no exception reached the queue: did the worker run the first syncs?"
    expect(page.get_by_text(re.compile("has no cost rate", re.I)).first).to_be_visible()
    screenshot(page, "deployed-queue")
    page.goto(f"{base}/c/contoso/dashboards/sync-health")
    expect(page.get_by_test_id("dash-runs")).to_be_visible()
    screenshot(page, "deployed-sync-health")


def test_partner_admin_sees_its_clients_in_the_deployed_console(page):
    base = f"http://northwind.localhost:{PORT}"
    sign_in(page, base, "admin@northwind.localhost")
    page.goto(f"{base}/partner/")
    expect(page.get_by_role("link", name="Contoso Engineering").first).to_be_visible()
    screenshot(page, "deployed-partner-clients")
