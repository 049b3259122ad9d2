"""A new client's schema, created by replaying the statements Django's migrations ran in a scratch schema.

django-tenants offers two ways to create a tenant's schema: run every migration (about a second: Django loads the
migration graph and renders every model), or clone a template schema with its clone_schema PL/pgSQL function and
then fake the migrations. The clone reads the catalog through information_schema, which holds every schema's
tables: with 100 clients a clone took 2-3 s, and it grows with each client (docs/benchmarks.md), far from a
workspace created in half a second at a thousand clients. It also left unique constraints under PostgreSQL's own
names instead of Django's (tenants.schema_upgrade.constraint_names_align).

So the schema is made the way migrations make it, without paying for the migrations each time: once per set of
migrations, a scratch schema is migrated from nothing while every statement Django sends is written down (DDL,
the migration rows, the content types post_migrate adds), each with its parameters bound in (psycopg's client-side
binding); the script is kept in the public schema (SchemaScript) under the migrations' leaf nodes, recorded by
migrate_portal; each new client's schema is then that script, sent in one round trip. Reads Django made along the way (introspection) are left out: they
change nothing.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from contextlib import contextmanager

from django.core.management import call_command
from django.db import connection
from django.db.migrations.loader import MigrationLoader
from psycopg import ClientCursor, sql

from tenants.models import SchemaScript
from tenants.schema_upgrade import tenant_app_labels

logger = logging.getLogger(__name__)

SCRATCH_SCHEMA = "tenant_script_recording"
RECORDING_LOCK = 72_114_001  # an advisory lock key of this module's own
_READS = ("SELECT", "SHOW", "SET ", "EXPLAIN")
# Statements that begin like a read but change the schema: Django drops a foreign key with
# "SET CONSTRAINTS <name> IMMEDIATE; ALTER TABLE ... DROP CONSTRAINT <name>".
_KEPT = ("SET CONSTRAINTS",)
_memo: dict[str, str] = {}


@functools.cache
def migrations_key() -> str:
    """Names the tenant apps' migrations as they stand: a new migration is a new script (and a new process: the
    migration files are read once per process)."""
    apps = tenant_app_labels()
    loader = MigrationLoader(None, ignore_no_migrations=True)
    leaves = sorted(f"{app}.{name}" for app, name in loader.graph.leaf_nodes() if app in apps)
    return "schema-script:" + hashlib.sha256("|".join(leaves).encode()).hexdigest()[:24]


def creation_script() -> str:
    """The SQL that creates a client schema's contents at the latest migrations (recorded if need be: migrate_portal
    records it, so no one creating a workspace waits the seconds a recording takes)."""
    key = migrations_key()
    if key not in _memo:
        stored = SchemaScript.objects.filter(key=key).values_list("statements", flat=True).first()
        if stored is None:
            with recording_lock():  # two processes creating their first client at once record it once
                stored = SchemaScript.objects.filter(key=key).values_list("statements", flat=True).first()
                if stored is None:
                    stored = record()
                    SchemaScript.objects.create(key=key, statements=stored)
        _memo[key] = stored
    return _memo[key]


@contextmanager
def recording_lock():
    """A PostgreSQL advisory lock held while the scratch schema is migrated: there is one scratch schema."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s)", [RECORDING_LOCK])
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [RECORDING_LOCK])


def record() -> str:
    """Migrate a scratch schema from nothing and keep every statement that changed something, values bound in."""
    statements = []
    binder = None  # a client-side cursor binds values as literals; it sends nothing

    def keep(execute, sql_text, params, many, context):
        nonlocal binder
        opening = sql_text.lstrip().upper()
        if opening.startswith(_KEPT) or not opening.startswith(_READS):
            binder = binder or ClientCursor(connection.connection)
            if params is None:
                statements.append(sql_text)
            else:
                statements.extend(binder.mogrify(sql_text, one) for one in (params if many else [params]))
        return execute(sql_text, params, many, context)

    with connection.cursor() as cursor:
        cursor.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(SCRATCH_SCHEMA)).as_string())
        cursor.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(SCRATCH_SCHEMA)).as_string())
    try:
        with connection.execute_wrapper(keep):
            call_command("migrate_schemas", schema_name=SCRATCH_SCHEMA, tenant=True, interactive=False, verbosity=0)
    finally:
        connection.set_schema_to_public()
        with connection.cursor() as cursor:
            cursor.execute(
                sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(SCRATCH_SCHEMA)).as_string()
            )
    logger.info("Recorded the creation of a client schema: %s statements", len(statements))
    return ";\n".join(statement.rstrip().rstrip(";") for statement in statements) + ";"


def client_schema_create(schema_name: str) -> None:
    """Create `schema_name` and everything the tenant migrations put in it, as Django's own migrate would."""
    script = creation_script()
    with connection.cursor() as cursor:
        cursor.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema_name)).as_string())
    connection.set_schema(schema_name, include_public=False)
    try:
        with connection.cursor() as cursor:
            cursor.execute(script)
    finally:
        connection.set_schema_to_public()
