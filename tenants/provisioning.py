"""Schemas: migrating the public schema, the template schema (what a client schema must look like), and all clients.

New client schemas are made by replaying the statements the migrations ran once (tenants.schema_script), and
existing ones are upgraded by tenants.schema_upgrade (each pending migration's SQL written once, run in every
schema): docs/benchmarks.md shows why. The template schema (`settings.TENANT_BASE_SCHEMA`) is what a client schema
should look like, migrated by Django itself: tests compare new and upgraded schemas with it.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django_tenants.utils import schema_exists

from tenants.schema_script import creation_script
from tenants.schema_upgrade import Upgrade, client_schema_names, clients_constraint_names_align, clients_upgrade


def template_schema_migrate(verbosity: int = 0) -> None:
    """Create the template schema if missing and bring it to the latest migrations."""
    template = settings.TENANT_BASE_SCHEMA
    if not schema_exists(template):
        with connection.cursor() as cursor:
            cursor.execute(f'CREATE SCHEMA "{template}"')
    call_command("migrate_schemas", schema_name=template, tenant=True, interactive=False, verbosity=verbosity)
    connection.set_schema_to_public()


class SchemasBehind(Exception):
    """Some client schemas could not be upgraded (a lock held too long, a failing statement); the rest were."""

    def __init__(self, failed: dict[str, str]):
        self.failed = failed
        listed = "; ".join(f"{schema}: {error}" for schema, error in sorted(failed.items())[:5])
        more = f" (and {len(failed) - 5} more)" if len(failed) > 5 else ""
        super().__init__(f"{len(failed)} client schema(s) are still behind, run again to retry them: {listed}{more}")


def portal_migrate(verbosity: int = 0, on_progress: Callable[[int, int], None] | None = None) -> Upgrade:
    """Public schema, then the template, then every client; raises SchemasBehind naming any client left behind."""
    call_command("migrate_schemas", shared=True, interactive=False, verbosity=verbosity)
    clients = client_schema_names()
    if schema_exists(settings.TENANT_BASE_SCHEMA):  # clones named as the template, before the template moves on
        misnamed = clients_constraint_names_align(schema_names=clients)
        if misnamed:
            raise SchemasBehind(misnamed)
    template_schema_migrate(verbosity=verbosity)
    creation_script()  # recorded now, once per set of migrations, rather than by the next person creating a client
    upgrade = clients_upgrade(schema_names=clients, on_progress=on_progress)
    connection.set_schema_to_public()
    if upgrade.failed:
        raise SchemasBehind(upgrade.failed)
    return upgrade
