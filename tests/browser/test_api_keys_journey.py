"""API keys in the browser: a partner admin and a client admin each create a key, see it once, use it,
and revoke it. Chromium against the real web server, on a partner of its own (Maple Advisory,
maple.localhost), so the demo partners stay as seeded."""

from __future__ import annotations

import pytest
import requests
from playwright.sync_api import expect

from tenants.demo import DEMO_PASSWORD
from tests.browser.conftest import screenshot, sign_in
from tests.support import journey_partner, user_who_can_sign_in

pytestmark = [pytest.mark.django_db, pytest.mark.browser]

HOST = "maple.localhost"


@pytest.fixture(scope="module")
def maple(world, django_db_blocker):
    from tenants import services
    from tenants.models import Client, Membership, Role

    with django_db_blocker.unblock():
        partner = journey_partner(slug="maple", name="Maple Advisory", host=HOST)
        user_who_can_sign_in("admin@maple.localhost", DEMO_PASSWORD)
        client = Client.objects.filter(partner=partner, slug="spruce").first() or services.client_create(
            partner=partner, name="Spruce Engineering", slug="spruce", plan=partner.plans.first()
        )
        admin = user_who_can_sign_in("admin@spruce.localhost", DEMO_PASSWORD)
        Membership.objects.get_or_create(user=admin, client=client, defaults={"role": Role.CLIENT_ADMIN})
    return partner


def api_status(web: str, path: str, key: str) -> int:
    return requests.get(
        f"http://127.0.0.1:{web}/api/v1{path}", headers={"Host": HOST, "Authorization": f"Bearer {key}"}, timeout=30
    ).status_code


def test_a_partner_admin_creates_uses_and_revokes_a_key(page, web, maple):
    base = f"http://{HOST}:{web}"
    sign_in(page, base, "admin@maple.localhost")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="API").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("API keys")
    page.get_by_label("Name").fill("CRM onboarding")
    page.get_by_label("Clients, their keys and suspension").select_option("write")
    page.get_by_label("Plans").select_option("read")
    page.get_by_role("button", name="Create key").click()
    secret = page.get_by_test_id("issued-secret").input_value()
    assert secret.startswith("pk_")
    screenshot(page, "partner-api-key-issued")
    assert api_status(web, "/plans", secret) == 200

    page.goto(f"{base}/partner/api-keys/")
    assert secret not in page.content()  # shown once
    row = page.get_by_test_id(f"api-key-{secret[:10]}")
    expect(row).to_contain_text("clients:write, plans:read")
    page.on("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Revoke").click()
    expect(page.get_by_test_id(f"api-key-{secret[:10]}")).to_contain_text("Revoked")
    assert api_status(web, "/plans", secret) == 401


def test_a_client_admin_creates_a_key_for_the_service_desk(page, web, maple):
    base = f"http://{HOST}:{web}"
    sign_in(page, base, "admin@spruce.localhost")
    page.goto(f"{base}/c/spruce/")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="People").click()
    page.get_by_role("navigation", name="People").get_by_role("link", name="API keys").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("API keys")
    expect(page.get_by_label("Clients, their keys and suspension")).to_have_count(0)  # no partner scopes here
    page.get_by_label("Name").fill("Service desk")
    page.get_by_label("Exceptions").select_option("write")
    page.get_by_role("button", name="Create key").click()
    secret = page.get_by_test_id("issued-secret").input_value()
    assert secret.startswith("ck_")
    screenshot(page, "workspace-api-key-issued")
    assert api_status(web, "/clients/spruce/exceptions", secret) == 200
    assert api_status(web, "/clients/spruce/connections", secret) == 403  # not in its scopes


def test_a_client_admin_adds_a_webhook_and_reads_its_deliveries(page, web, maple, django_db_blocker):
    base = f"http://{HOST}:{web}"
    sign_in(page, base, "admin@spruce.localhost")
    page.goto(f"{base}/c/spruce/users/")
    page.get_by_role("navigation", name="People").get_by_role("link", name="Webhooks").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Webhooks")
    page.get_by_role("textbox", name="Address").fill("https://desk.spruce.example/hooks/portal")
    page.get_by_label("A run finished (succeeded, with exceptions, or failed)").check()
    page.get_by_label("A connection started failing").check()
    page.get_by_role("button", name="Add address").click()
    secret = page.get_by_test_id("issued-secret").input_value()
    assert secret.startswith("whsec_")
    expect(page.get_by_test_id("webhooks")).to_contain_text("run.finished")
    expect(page.get_by_test_id("deliveries")).to_contain_text("Nothing posted yet.")
    screenshot(page, "workspace-webhooks")
    page.goto(f"{base}/c/spruce/webhooks/")
    assert secret not in page.content()
    page.on("dialog", lambda dialog: dialog.accept())
    page.get_by_test_id("webhooks").get_by_role("button", name="Remove").click()
    expect(page.get_by_test_id("webhooks")).to_contain_text("No addresses yet.")
