"""What the workspace screens' tests share: a seeded Contoso workspace, its finance clerk and admin signed in on
the partner's host, and each test starting with a cold cache."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.db import connection

from tests.integrations.workspace_fixtures import seed_workspace
from tests.support import NORTHWIND, browser_for

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture(autouse=True)
def cold_cache():
    """Counts, filter choices and dashboards are cached per schema; each test starts without them."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def contoso(world):
    return within(world, seed_workspace)


def within(world, fn):
    connection.set_tenant(world.clients["contoso"])
    try:
        return fn()
    finally:
        connection.set_schema_to_public()


@pytest.fixture
def finance(world):
    return browser_for(world.user("finance@contoso.localhost"), host=NORTHWIND)


@pytest.fixture
def admin(world):
    return browser_for(world.user("admin@contoso.localhost"), host=NORTHWIND)
