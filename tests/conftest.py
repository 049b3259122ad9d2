"""Test setup: one platform built once per session in the real PostgreSQL test database.

The world is the demo platform (two partners, their brands and users) plus a third Northwind
client, Wingtip, that the Northwind engineer is *not* assigned to. It is committed, so real
worker and web server processes started by tests see it too.
"""

from __future__ import annotations

import pytest

from tests.support import World, build_world


@pytest.fixture(scope="session")
def django_db_setup(request, django_test_environment, django_db_blocker):
    """Always build the test database, even when only tests that commit for real (worker tests,
    which carry no django_db mark so nothing wraps them in a transaction) are selected."""
    from django.test.utils import setup_databases, teardown_databases

    with django_db_blocker.unblock():
        config = setup_databases(verbosity=request.config.option.verbose, interactive=False, aliases={"default"})
    yield
    with django_db_blocker.unblock():
        try:
            teardown_databases(config, verbosity=request.config.option.verbose)
        except Exception as error:  # noqa: BLE001 - a leftover session must not fail a green run
            import warnings

            warnings.warn(f"Could not drop the test database: {error}", stacklevel=1)


@pytest.fixture(scope="session")
def world(django_db_setup, django_db_blocker) -> World:
    # Messages left in this session's queue by an interrupted earlier session would name run ids
    # that mean other runs in the schemas rebuilt now: start from an empty queue.
    from portal.celery import app

    app.control.purge()
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
