"""Test setup: one platform built once per session in the real PostgreSQL test database.

The world is the demo platform (two partners, their brands and users) plus a third Northwind
client, Wingtip, that the Northwind engineer is *not* assigned to. It is committed, so real
worker and web server processes started by tests see it too.
"""

from __future__ import annotations

import pytest

from tests.support import World, build_world


@pytest.fixture(scope="session")
def world(django_db_setup, django_db_blocker) -> World:
    with django_db_blocker.unblock():
        built = build_world()
    yield built
    # Web and worker processes started by tests are gone by now, but PostgreSQL may not have
    # noticed yet; end their sessions so the test database can be dropped.
    with django_db_blocker.unblock():
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )


@pytest.fixture(autouse=True)
def _public_schema_after_each_test(request):
    """A test that enters a client schema must not leave the next test inside it."""
    yield
    if request.node.get_closest_marker("django_db") is None:
        return  # connector tests run without Django's database
    from django.db import connection

    connection.set_schema_to_public()
