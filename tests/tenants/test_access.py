"""Every role lands on its own surface, and nobody reaches another client's or partner's data."""

import pytest
from django.urls import URLPattern, URLResolver

from tests.support import NORTHWIND, PLATFORM, SUMMIT, browser_for

pytestmark = pytest.mark.django_db

LANDINGS = [
    ("operator@sysgenpro.localhost", PLATFORM, "/platform/"),
    ("admin@northwind.localhost", NORTHWIND, "/partner/"),
    ("engineer@northwind.localhost", NORTHWIND, "/partner/"),
    ("admin@contoso.localhost", NORTHWIND, "/c/contoso/"),
    ("finance@contoso.localhost", NORTHWIND, "/c/contoso/"),
    ("viewer@contoso.localhost", NORTHWIND, "/c/contoso/"),
    ("admin@summit.localhost", SUMMIT, "/partner/"),
    ("admin@fabrikam.localhost", SUMMIT, "/c/fabrikam/"),
]


@pytest.mark.parametrize(("email", "host", "surface"), LANDINGS)
def test_each_role_lands_on_its_surface(world, email, host, surface):
    browser = browser_for(world.user(email), host=host)
    response = browser.get("/")
    assert response.status_code == 302
    assert response["Location"] == surface
    assert browser.get(surface).status_code == 200


def workspace_paths(slug: str) -> list[str]:
    """Every URL of the workspace URL map, with sample values for its parameters."""
    from portal import urls_workspace

    def walk(patterns, prefix=""):
        for entry in patterns:
            route = prefix + str(entry.pattern)
            if isinstance(entry, URLResolver):
                yield from walk(entry.url_patterns, route)
            elif isinstance(entry, URLPattern):
                yield route

    paths = []
    for route in walk(urls_workspace.urlpatterns):
        for converter in ("<int:pk>", "<int:id>", "<str:pk>", "<slug:slug>", "<uuid:pk>"):
            route = route.replace(converter, "1")
        paths.append(f"/c/{slug}/{route}")
    return paths


@pytest.mark.parametrize("email", ["admin@contoso.localhost", "finance@contoso.localhost", "viewer@contoso.localhost"])
def test_client_a_user_gets_nothing_of_client_b(world, email):
    browser = browser_for(world.user(email), host=NORTHWIND)
    for path in workspace_paths("tailspin") + workspace_paths("wingtip"):
        for method in (browser.get, browser.post):
            assert method(path).status_code in (403, 404), path


def test_client_users_cannot_open_the_partner_console(world):
    for email in ("admin@contoso.localhost", "finance@contoso.localhost", "viewer@contoso.localhost"):
        assert browser_for(world.user(email), host=NORTHWIND).get("/partner/").status_code == 403


def test_partner_staff_reach_only_assigned_clients(world):
    engineer = browser_for(world.user("engineer@northwind.localhost"), host=NORTHWIND)
    assert engineer.get("/c/contoso/").status_code == 200
    assert engineer.get("/c/tailspin/").status_code == 200
    assert engineer.get("/c/wingtip/").status_code == 404


def test_partner_admin_reaches_every_client_of_the_partner(world):
    admin = browser_for(world.user("admin@northwind.localhost"), host=NORTHWIND)
    for slug in ("contoso", "tailspin", "wingtip"):
        assert admin.get(f"/c/{slug}/").status_code == 200


def test_staff_of_one_partner_cannot_list_or_enter_anothers_clients(world):
    engineer = world.user("engineer@northwind.localhost")
    on_summit = browser_for(engineer, host=SUMMIT)
    assert on_summit.get("/partner/").status_code == 403
    assert on_summit.get("/c/fabrikam/").status_code == 404
    listing = browser_for(engineer, host=NORTHWIND).get("/partner/").content.decode()
    assert "Fabrikam" not in listing
    summit_admin = browser_for(world.user("admin@summit.localhost"), host=NORTHWIND)
    assert summit_admin.get("/partner/").status_code == 403
    assert summit_admin.get("/c/contoso/").status_code == 404


def test_partner_console_lists_exactly_the_staffs_clients(world):
    listing = browser_for(world.user("engineer@northwind.localhost"), host=NORTHWIND).get("/partner/").content.decode()
    assert "Contoso Engineering" in listing and "Tailspin Consulting" in listing
    assert "Wingtip Partners" not in listing


def test_only_platform_admins_open_the_operator_console(world):
    assert browser_for(world.user("operator@sysgenpro.localhost"), host=PLATFORM).get("/platform/").status_code == 200
    for email in ("admin@northwind.localhost", "admin@contoso.localhost"):
        assert browser_for(world.user(email), host=PLATFORM).get("/platform/").status_code == 403


def test_workspace_home_lists_only_its_own_members(world):
    page = browser_for(world.user("admin@contoso.localhost"), host=NORTHWIND).get("/c/contoso/").content.decode()
    assert "finance@contoso.localhost" in page and "viewer@contoso.localhost" in page
    assert "admin@tailspin.localhost" not in page


def test_user_without_workspace_on_this_host_sees_a_clear_page(world):
    response = browser_for(world.user("admin@fabrikam.localhost"), host=NORTHWIND).get("/")
    assert response.status_code == 403
    assert "No workspace for you here yet" in response.content.decode()
