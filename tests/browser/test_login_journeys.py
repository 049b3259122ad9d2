"""Each demo user signs in on their partner's host and lands on their surface, in their brand."""

import pytest

from tests.browser.conftest import loaded_width, screenshot, sign_in

pytestmark = [pytest.mark.django_db, pytest.mark.browser]

JOURNEYS = [
    ("operator@sysgenpro.localhost", "localhost", "/platform/", "SysGenPro Connect", "rgb(31, 79, 216)"),
    ("admin@northwind.localhost", "northwind.localhost", "/partner/", "Northwind Connect", "rgb(11, 92, 173)"),
    ("engineer@northwind.localhost", "northwind.localhost", "/partner/", "Northwind Connect", "rgb(11, 92, 173)"),
    ("admin@contoso.localhost", "northwind.localhost", "/c/contoso/", "Northwind Connect", "rgb(11, 92, 173)"),
    ("finance@contoso.localhost", "northwind.localhost", "/c/contoso/", "Northwind Connect", "rgb(11, 92, 173)"),
    ("viewer@contoso.localhost", "northwind.localhost", "/c/contoso/", "Northwind Connect", "rgb(11, 92, 173)"),
    ("admin@summit.localhost", "summit.localhost", "/partner/", "Summit Sync", "rgb(124, 58, 237)"),
    ("admin@fabrikam.localhost", "summit.localhost", "/c/fabrikam/", "Summit Sync", "rgb(124, 58, 237)"),
]


@pytest.mark.parametrize(("email", "host", "surface", "product", "colour"), JOURNEYS)
def test_demo_user_lands_on_their_surface_in_their_brand(page, web, world, email, host, surface, product, colour):
    base = f"http://{host}:{web}"
    sign_in(page, base, email)
    assert page.url == f"{base}{surface}"
    assert page.locator(".brand-name").inner_text() == product
    top_border = page.locator(".topbar").evaluate("el => getComputedStyle(el).borderTopColor")
    assert top_border == colour
    screenshot(page, f"landing-{email.split('@')[0]}-{host.split('.')[0]}")


def test_login_page_shows_partner_logo_and_message(page, web, world):
    page.goto(f"http://northwind.localhost:{web}/accounts/login/")
    assert page.get_by_test_id("login-message").inner_text().startswith("Welcome to Northwind Connect")
    assert loaded_width(page.locator("img.entrance-logo")) == 256
    screenshot(page, "login-northwind")


def test_msp_engineer_switches_between_assigned_workspaces(page, web, world):
    base = f"http://northwind.localhost:{web}"
    sign_in(page, base, "engineer@northwind.localhost")
    page.get_by_label("Switch client workspace").click()
    items = page.locator(".switcher-item")
    assert items.all_inner_texts() == ["Contoso Engineering", "Tailspin Consulting"]
    screenshot(page, "switcher-open")
    page.get_by_role("menuitem", name="Tailspin Consulting").click()
    assert page.url == f"{base}/c/tailspin/"
    assert page.get_by_role("heading", level=1).inner_text() == "Tailspin Consulting"
    page.get_by_label("Switch client workspace").click()
    page.get_by_role("menuitem", name="Contoso Engineering").click()
    assert page.url == f"{base}/c/contoso/"
    assert "finance@contoso.localhost" in page.get_by_test_id("member-list").inner_text()


def test_unknown_host_shows_neutral_page(page, web, world):
    page.goto(f"http://nobody.localhost:{web}/")
    assert page.get_by_role("heading", level=1).inner_text() == "There is no portal at this address"
