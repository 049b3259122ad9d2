"""Vendor sandboxes over real HTTP on loopback, and connections to them in a client workspace."""

from __future__ import annotations

from contextlib import contextmanager

import psycopg
import pytest
from django.db import connection

from tests.support import vendor_sandbox, vendor_sandboxes

# A smaller firm than the demo's, so packaged flows run in seconds: every system still agrees.
TEST_FIRM = dict(time_entries=500, expenses=60)


@pytest.fixture(scope="session")
def sandboxes():
    """One running sandbox per vendor for the whole session; tests reset the ones they change."""
    vendors = (
        "kantata",
        "netsuite",
        "bamboohr",
        "hubspot",
        "salesforce",
        "jira",
        "dynamics365",
        "businesscentral",
        "intacct",
        "certinia",
        "workday",
        "adp",
        "acumatica",
        "kimble",
        "float",
        "asana",
        "monday",
        "servicenow",
    )
    with vendor_sandboxes(vendors, **TEST_FIRM) as running:
        yield running


@pytest.fixture
def allow_sandboxes(settings, sandboxes):
    settings.CONNECTOR_ALLOWED_HOSTS = [f"127.0.0.1:{s.port}" for s in sandboxes.values()]
    settings.CONNECTOR_RATE_PER_SECOND = 500.0  # the sandboxes are local; vendor pacing has its own tests
    return sandboxes


@pytest.fixture
def systems(allow_sandboxes):
    """Every sandbox back to the firm's seeded state, before the test and after it (the sandboxes are shared
    with the session's other tests, which expect the firm as seeded, not a customer added twice here). Reset
    through each sandbox's own client, which trusts ADP's demo certificate authority."""

    def reset():
        for sandbox in allow_sandboxes.values():
            sandbox.reset()

    reset()
    yield allow_sandboxes
    reset()


@pytest.fixture
def in_workspace(world):
    """Run the test inside a fresh-enough client schema (Wingtip: no other test syncs into it)."""
    client = world.clients["wingtip"]
    connection.set_tenant(client)
    yield client
    connection.set_schema_to_public()


def make_connection(vendor: str, sandbox, name: str | None = None):
    from integrations.services.connections import connection_create

    credentials = dict(vendor_sandbox(vendor).DEMO_CREDENTIALS)
    if vendor in ("dynamics365", "businesscentral"):
        credentials["authority"] = sandbox.url  # the Microsoft sandboxes sign in like Entra, at their own address
    return connection_create(name=name or vendor.title(), vendor=vendor, base_url=sandbox.url, credentials=credentials)


@contextmanager
def lock_held_elsewhere(name: str):
    """Another database session holds the workspace lock `name` (integrations.services.locks), and
    this one stops waiting for it after 200 ms: a service that takes the lock raises OperationalError."""
    from tests.support import database_url_for_children

    other = psycopg.connect(database_url_for_children())
    try:
        # Locks held by this test's own transaction are only released when the test ends: take this
        # one before the test's session does, or the other session waits here.
        other.execute("SET lock_timeout = '5s'")
        other.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"{connection.schema_name}:{name}"])
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL lock_timeout = '200ms'")
        try:
            yield
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL lock_timeout = 0")
    finally:
        other.rollback()
        other.close()
