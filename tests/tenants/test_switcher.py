"""The MSP switcher lists exactly the workspaces a user may enter, and switching keeps the session."""

import re

import pytest

from tests.support import NORTHWIND, browser_for, switcher_entries

pytestmark = pytest.mark.django_db


def test_staff_switcher_lists_exactly_assigned_workspaces(world):
    page = browser_for(world.user("engineer@northwind.localhost"), host=NORTHWIND).get("/partner/").content.decode()
    assert switcher_entries(page) == ["Contoso Engineering", "Tailspin Consulting"]


def test_partner_admin_switcher_lists_every_client(world):
    page = browser_for(world.user("admin@northwind.localhost"), host=NORTHWIND).get("/partner/").content.decode()
    assert switcher_entries(page) == ["Contoso Engineering", "Tailspin Consulting", "Wingtip Partners"]


def test_client_user_switcher_lists_only_their_workspace(world):
    page = browser_for(world.user("finance@contoso.localhost"), host=NORTHWIND).get("/c/contoso/").content.decode()
    assert switcher_entries(page) == ["Contoso Engineering"]


def test_staff_switch_between_workspaces_without_logging_in_again(world):
    engineer = browser_for(world.user("engineer@northwind.localhost"), host=NORTHWIND)
    first = engineer.get("/c/contoso/").content.decode()
    second = engineer.get("/c/tailspin/").content.decode()
    assert "<h1>Contoso Engineering</h1>" in first
    assert "<h1>Tailspin Consulting</h1>" in second
    assert "finance@contoso.localhost" not in second


def test_a_workspace_page_reads_the_users_roles_once(world):
    """The role check, the partner console link and the switcher all come from one membership
    query: the shell asked for the partner role twice and for the switcher once more."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tenants.models import Membership, Role

    finance = world.user("finance@contoso.localhost")
    Membership.objects.create(user=finance, client=world.clients["tailspin"], role=Role.CLIENT_VIEWER)
    browser = browser_for(finance, host=NORTHWIND)
    browser.get("/c/contoso/")
    with CaptureQueriesContext(connection) as queries:
        page = browser.get("/c/tailspin/").content.decode()
    assert switcher_entries(page) == ["Contoso Engineering", "Tailspin Consulting"]
    assert "Partner console" not in page
    mine = f'"tenants_membership"."user_id" = {finance.pk}'
    assert len([q for q in queries if mine in q["sql"]]) == 1
    assert not [q for q in queries if q["sql"].startswith('SELECT DISTINCT "tenants_client"')]


def test_partner_people_reach_their_console_from_a_workspaces_switcher(world):
    page = browser_for(world.user("engineer@northwind.localhost"), host=NORTHWIND).get("/c/contoso/").content.decode()
    switcher = re.search(r'data-testid="switcher".*?</details>', page, re.S).group(0)
    assert 'class="switcher-console" href="/partner/">Partner console</a>' in switcher
    # The workspace's menu keeps its own sections only, so none of them is pushed out of sight.
    nav = re.search(r'<nav class="surface-nav".*?</nav>', page, re.S).group(0)
    assert "Partner console" not in nav
    assert 'aria-label="Contoso Engineering: switch client workspace"' in page
