"""Every client schema brought to the latest migrations, fast enough for a thousand clients.

Django's `migrate`, run once per schema, loads the migration graph and renders every model again for each
schema: about a second a schema, so twenty minutes for a thousand clients on two cores. Client schemas are
created at the latest migrations and upgraded together, so they stand at the same migrations and a pending
migration runs the same SQL in each of them. So that SQL is written once, by Django's own schema editor in collect-SQL mode
(what `sqlmigrate` prints), against the first schema of each group still at the same place; then it runs in
every schema of the group, a few schemas at a time on connections of their own:

- one transaction a schema, its DDL and its `django_migrations` rows together: a schema is upgraded wholly or not
  at all, and a second call (after a crash, a timeout, Ctrl-C) picks up exactly the schemas still behind;
- `lock_timeout` and `statement_timeout` on each: a schema whose tables a long sync holds is reported and left
  behind, not waited on while the others queue;
- progress as it goes (`on_progress(done, total)`).

A migration that cannot be written as SQL (RunPython, or one that is not atomic) goes through Django's own
`migrate` for the schemas that need it, one after the other: slower, but nothing is guessed.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.db.migrations.loader import MigrationLoader
from psycopg import sql

from tenants.models import Client

LOCK_TIMEOUT = "5s"
STATEMENT_TIMEOUT = "120s"
WORKERS = 4  # connections applying SQL at once: the work is PostgreSQL's, so a few more than the cores


@dataclass
class Upgrade:
    """What a call did: schemas upgraded by SQL, through Django's migrate, and the ones left behind (and why)."""

    upgraded: list[str] = field(default_factory=list)
    migrated: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def count(self) -> int:
        return len(self.upgraded) + len(self.migrated)


@dataclass(frozen=True)
class Step:
    """Pending migrations shared by a group of schemas, and the SQL that applies them (None: Django must)."""

    migrations: tuple[tuple[str, str], ...]
    statements: tuple[str, ...] | None


def client_schema_names() -> list[str]:
    """Every client's schema that exists: a client being deleted (its schema dropped, its row not yet) is passed."""
    clients = set(Client.objects.exclude(schema_name=settings.PUBLIC_SCHEMA_NAME).values_list("schema_name", flat=True))
    with connection.cursor() as cursor:
        cursor.execute("SELECT nspname FROM pg_namespace")
        existing = {name for (name,) in cursor.fetchall()}
    return sorted(clients & existing)


def tenant_app_labels() -> set[str]:
    return {app.rsplit(".", 1)[-1] for app in settings.TENANT_APPS}


def tenant_plan(loader: MigrationLoader) -> list[tuple[str, str]]:
    """Every migration of the tenant apps, in the order Django applies them."""
    apps = tenant_app_labels()
    plan = []
    for leaf in (node for node in loader.graph.leaf_nodes() if node[0] in apps):
        plan += [node for node in loader.graph.forwards_plan(leaf) if node[0] in apps and node not in plan]
    return plan


def schemas_applied(schema_names: list[str]) -> dict[str, set[tuple[str, str]]]:
    """Each schema's applied migrations, read in one statement for all of them."""
    if not schema_names:
        return {}
    union = sql.SQL(" UNION ALL ").join(
        sql.SQL("SELECT {name}::text, app, name FROM {table}").format(
            name=sql.Literal(schema), table=sql.Identifier(schema, "django_migrations")
        )
        for schema in schema_names
    )
    applied: dict[str, set[tuple[str, str]]] = {schema: set() for schema in schema_names}
    with psycopg.connect(**_connection_params()) as conn:
        for schema, app, name in conn.execute(union):
            applied[schema].add((app, name))
    return applied


def step_for(loader: MigrationLoader, migrations: tuple[tuple[str, str], ...], schema_name: str) -> Step:
    """The SQL of `migrations` as Django would run it in `schema_name` (which stands just before them)."""
    nodes = [loader.graph.nodes[key] for key in migrations]
    if any(not m.atomic or any(not op.reduces_to_sql for op in m.operations) for m in nodes):
        return Step(migrations, None)
    connection.set_schema(schema_name, include_public=False)
    try:
        # The schema editor reads constraint names from the schema it stands in: one still before the migrations.
        statements = loader.collect_sql([(migration, False) for migration in nodes])
    finally:
        connection.set_schema_to_public()
    return Step(migrations, tuple(s for s in statements if not _comment_only(s)))


def clients_upgrade(
    *,
    schema_names: list[str] | None = None,
    workers: int = WORKERS,
    on_progress: Callable[[int, int], None] | None = None,
) -> Upgrade:
    """Bring every client schema (or those named) to the latest tenant migrations; see the module's docstring."""
    started = time.perf_counter()
    if schema_names is None:
        schema_names = client_schema_names()
    loader = MigrationLoader(connection, ignore_no_migrations=True)
    plan = tenant_plan(loader)
    groups: dict[tuple, list[str]] = defaultdict(list)
    for schema, applied in schemas_applied(schema_names).items():
        pending = tuple(node for node in plan if node not in applied)
        if pending:
            groups[pending].append(schema)
    result = Upgrade()
    total = sum(len(schemas) for schemas in groups.values())
    progress = _Progress(total, on_progress)
    for migrations, schemas in groups.items():
        step = step_for(loader, migrations, schemas[0])
        if step.statements is None:
            for schema in schemas:
                _django_migrate(schema, result)
                progress.advance()
            continue
        for schema, error in _apply_all(step, schemas, workers=workers, on_done=progress.advance).items():
            if error:
                result.failed[schema] = error
            else:
                result.upgraded.append(schema)
    result.seconds = time.perf_counter() - started
    return result


def clients_downgrade(*, app_label: str, migration_name: str, schema_names: list[str], workers: int = WORKERS):
    """Unapply one migration (the app's latest) from the schemas named, by its reverse SQL; for benchmarks and
    tests that need schemas one migration behind."""
    loader = MigrationLoader(connection, ignore_no_migrations=True)
    migration = loader.graph.nodes[(app_label, migration_name)]
    connection.set_schema(schema_names[0], include_public=False)
    try:
        statements = [s for s in loader.collect_sql([(migration, True)]) if not _comment_only(s)]
    finally:
        connection.set_schema_to_public()
    step = Step(((app_label, migration_name),), tuple(statements))
    outcome = _apply_all(step, schema_names, workers=workers, backwards=True)
    return {schema: error for schema, error in outcome.items() if error}


# -- constraint names ----------------------------------------------------------------------------------------
# django-tenants' clone_schema creates a clone's tables with CREATE TABLE ... (LIKE template INCLUDING ALL) and
# renames their indexes back, but not their unique constraints: those keep PostgreSQL's own names
# (`integrations_invoice_number_environment_key`) instead of the ones Django's migrations gave them in the template
# (`one_invoice_number_per_environment`). A later migration that drops or changes such a constraint names it, and
# would fail in every cloned schema; so a clone's unique constraints are renamed to the template's, matched by table
# and definition (right after cloning, and for older clones before the template moves on).
MISNAMED = """
    SELECT t.relname, c.conname, tc.conname
      FROM pg_constraint c
      JOIN pg_class t ON t.oid = c.conrelid
      JOIN pg_class tt ON tt.relname = t.relname AND tt.relnamespace = %(template)s::regnamespace
      JOIN pg_constraint tc ON tc.conrelid = tt.oid AND tc.contype = c.contype
                           AND pg_get_constraintdef(tc.oid) = pg_get_constraintdef(c.oid)
     WHERE c.connamespace = %(schema)s::regnamespace AND c.contype = 'u' AND c.conname <> tc.conname
"""


def constraint_names_align(cursor, schema: str) -> int:
    """Rename `schema`'s unique constraints to the template's names (see above); how many were renamed."""
    cursor.execute(MISNAMED, {"template": settings.TENANT_BASE_SCHEMA, "schema": schema})
    renames = cursor.fetchall()
    for table, name, wanted in renames:
        cursor.execute(
            sql.SQL("ALTER TABLE {} RENAME CONSTRAINT {} TO {}")
            .format(sql.Identifier(schema, table), sql.Identifier(name), sql.Identifier(wanted))
            .as_string(None)
        )
    return len(renames)


def clients_constraint_names_align(*, schema_names: list[str], workers: int = WORKERS) -> dict[str, str]:
    """Align every schema named with the template (one transaction each); each schema's error, if any."""

    def align(conn: psycopg.Connection, schema: str) -> str:
        try:
            with conn.transaction():
                constraint_names_align(conn.cursor(), schema)
        except psycopg.Error as error:
            return str(error).splitlines()[0] or type(error).__name__
        return ""

    return {schema: error for schema, error in _each_schema(align, schema_names, workers).items() if error}


# -- applying ------------------------------------------------------------------------------------------------
def _apply_all(
    step: Step, schemas: list[str], *, workers: int, backwards: bool = False, on_done: Callable | None = None
) -> dict[str, str]:
    """Run the step in every schema, `workers` connections at once; each schema's error, "" where it went well."""
    return _each_schema(lambda conn, schema: _apply(conn, step, schema, backwards=backwards), schemas, workers, on_done)


def _each_schema(
    work: Callable[[psycopg.Connection, str], str], schemas: list[str], workers: int, on_done: Callable | None = None
) -> dict[str, str]:
    waiting = queue.SimpleQueue()
    for schema in schemas:
        waiting.put(schema)
    outcome: dict[str, str] = {}

    def worker() -> None:
        with psycopg.connect(**_connection_params(), autocommit=True) as conn:
            while True:
                try:
                    schema = waiting.get_nowait()
                except queue.Empty:
                    return
                outcome[schema] = work(conn, schema)
                if on_done:
                    on_done()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(min(workers, len(schemas)))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcome


def _apply(conn: psycopg.Connection, step: Step, schema: str, *, backwards: bool = False) -> str:
    """Run the step's SQL in one schema, in one transaction with its migration rows; "" or what went wrong."""
    try:
        with conn.transaction():
            conn.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(LOCK_TIMEOUT)))
            conn.execute(sql.SQL("SET LOCAL statement_timeout = {}").format(sql.Literal(STATEMENT_TIMEOUT)))
            conn.execute(sql.SQL("SET LOCAL search_path = {}, public").format(sql.Identifier(schema)))
            for statement in step.statements:
                conn.execute(statement)
            for app, name in step.migrations:
                if backwards:
                    conn.execute("DELETE FROM django_migrations WHERE app = %s AND name = %s", (app, name))
                else:
                    conn.execute(
                        "INSERT INTO django_migrations (app, name, applied) VALUES (%s, %s, now())", (app, name)
                    )
    except psycopg.Error as error:
        return str(error).splitlines()[0] or type(error).__name__
    return ""


def _connection_params() -> dict:
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    return params


def _django_migrate(schema: str, result: Upgrade) -> None:
    try:
        call_command("migrate_schemas", schema_name=schema, tenant=True, interactive=False, verbosity=0)
    except Exception as error:  # noqa: BLE001 - reported per schema, the others go on
        result.failed[schema] = str(error).splitlines()[0] if str(error) else type(error).__name__
    else:
        result.migrated.append(schema)
    finally:
        connection.set_schema_to_public()


def _comment_only(statement: str) -> bool:
    return all(not line.strip() or line.strip().startswith("--") for line in statement.splitlines())


class _Progress:
    def __init__(self, total: int, callback: Callable[[int, int], None] | None):
        self.total, self.done, self.callback, self._lock = total, 0, callback, threading.Lock()

    def advance(self) -> None:
        with self._lock:
            self.done += 1
            if self.callback:
                self.callback(self.done, self.total)
