"""Schemas: migrating the public schema, the template every new client is cloned from, and all clients.

New client schemas are cloned from `settings.TENANT_BASE_SCHEMA` (django-tenants' clone_schema)
rather than migrated one by one: docs/benchmarks.md shows why.
"""

from __future__ import annotations

from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django_tenants.utils import schema_exists

from tenants.models import Client


def template_schema_migrate(verbosity: int = 0) -> None:
    """Create the template schema if missing and bring it to the latest migrations."""
    template = settings.TENANT_BASE_SCHEMA
    if not schema_exists(template):
        with connection.cursor() as cursor:
            cursor.execute(f'CREATE SCHEMA "{template}"')
    call_command("migrate_schemas", schema_name=template, tenant=True, interactive=False, verbosity=verbosity)
    connection.set_schema_to_public()


def portal_migrate(verbosity: int = 0, parallel: bool = False) -> None:
    """Public schema, then the template, then every client (in parallel processes when asked)."""
    call_command("migrate_schemas", shared=True, interactive=False, verbosity=verbosity)
    template_schema_migrate(verbosity=verbosity)
    if Client.objects.exists():
        options = {"executor": "multiprocessing"} if parallel else {}
        call_command("migrate_schemas", tenant=True, interactive=False, verbosity=verbosity, **options)
    connection.set_schema_to_public()
