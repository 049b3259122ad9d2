"""Client schemas one migration behind are upgraded by the migration's SQL, each wholly or not at all, and end
exactly like the template, migrated by Django itself."""

from __future__ import annotations

import psycopg
import pytest
from django.conf import settings
from django.db import connection
from psycopg import sql

from tenants import schema_upgrade, services
from tenants.provisioning import SchemasBehind, portal_migrate
from tenants.schema_upgrade import clients_downgrade, clients_upgrade

LATEST = ("integrations", "0013_environment_books")


@pytest.fixture
def behind(world, django_db_blocker):
    """Three committed client schemas with the latest integrations migration unapplied; dropped afterwards."""
    with django_db_blocker.unblock():
        clients = [
            services.client_create(partner=world.partners["summit"], name=f"Upgrade {n}", slug=f"upgrade-{n}")
            for n in range(3)
        ]
        schemas = [client.schema_name for client in clients]
        assert clients_downgrade(app_label=LATEST[0], migration_name=LATEST[1], schema_names=schemas) == {}
        yield schemas
        connection.set_schema_to_public()
        for client in clients:
            client.delete(force_drop=True)


def shape(schema: str) -> set:
    """Columns, constraints and indexes of a schema, by name: what a migration changes."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name, column_name, data_type, character_maximum_length, is_nullable"
            " FROM information_schema.columns WHERE table_schema = %s ORDER BY 1, 2",
            [schema],
        )
        columns = cursor.fetchall()
        cursor.execute(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid, false) FROM pg_constraint"
            " WHERE connamespace = %s::regnamespace ORDER BY 2",
            [schema],
        )
        constraints = [
            (table.split(".")[-1], name, definition.replace(f"{schema}.", ""))
            for table, name, definition in cursor.fetchall()
        ]
        cursor.execute("SELECT tablename, indexname FROM pg_indexes WHERE schemaname = %s ORDER BY 2", [schema])
        indexes = cursor.fetchall()
    return (
        {("column", *c) for c in columns} | {("constraint", *c) for c in constraints} | {("index", *i) for i in indexes}
    )


def applied(schema: str) -> bool:
    with connection.cursor() as cursor:
        table = sql.Identifier(schema, "django_migrations")
        cursor.execute(sql.SQL("SELECT 1 FROM {} WHERE app = %s AND name = %s").format(table).as_string(), list(LATEST))
        return cursor.fetchone() is not None


def invoices_read(schema: str) -> sql.Composed:
    return sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, "integrations_invoice"))


def test_schemas_behind_are_upgraded_to_the_templates_shape(behind, django_db_blocker):
    template = shape(settings.TENANT_BASE_SCHEMA)
    with django_db_blocker.unblock():
        assert shape(behind[0]) != template  # really behind: the environment columns are gone
        assert not any(applied(schema) for schema in behind)
        seen = []
        upgrade = clients_upgrade(schema_names=behind, on_progress=lambda done, total: seen.append((done, total)))
        assert sorted(upgrade.upgraded) == sorted(behind) and not upgrade.failed and not upgrade.migrated
        assert seen[-1] == (3, 3)
        for schema in behind:
            assert shape(schema) ^ template == set()
            assert applied(schema)
        # A second call finds nothing to do.
        assert clients_upgrade(schema_names=behind).count == 0


def test_a_schema_whose_table_is_held_is_left_behind_and_taken_up_by_the_next_call(
    behind, django_db_blocker, monkeypatch
):
    monkeypatch.setattr(schema_upgrade, "LOCK_TIMEOUT", "300ms")
    params = {k: v for k, v in connection.get_connection_params().items() if k not in ("cursor_factory", "context")}
    with django_db_blocker.unblock():
        with psycopg.connect(**params) as holder:  # a long sync reading the invoices of the second client
            holder.execute(invoices_read(behind[1]))
            upgrade = clients_upgrade(schema_names=behind)
        assert sorted(upgrade.upgraded) == sorted([behind[0], behind[2]])
        assert list(upgrade.failed) == [behind[1]] and "lock timeout" in upgrade.failed[behind[1]]
        assert not applied(behind[1])
        assert shape(behind[1]) != shape(settings.TENANT_BASE_SCHEMA)  # nothing half done
        upgrade = clients_upgrade(schema_names=behind)
        assert upgrade.upgraded == [behind[1]]
        assert shape(behind[1]) == shape(settings.TENANT_BASE_SCHEMA)


def test_migrate_portal_names_the_schemas_it_could_not_upgrade(behind, django_db_blocker, monkeypatch):
    monkeypatch.setattr(schema_upgrade, "LOCK_TIMEOUT", "300ms")
    params = {k: v for k, v in connection.get_connection_params().items() if k not in ("cursor_factory", "context")}
    with django_db_blocker.unblock():
        with psycopg.connect(**params) as holder:
            holder.execute(invoices_read(behind[2]))
            with pytest.raises(SchemasBehind, match=f"1 client schema.*{behind[2]}: .*lock timeout"):
                portal_migrate()
        assert portal_migrate().upgraded == [behind[2]]


@pytest.mark.django_db
def test_a_new_client_schema_is_the_template_down_to_its_constraint_names(world):
    # clone_schema leaves unique constraints with PostgreSQL's names; a migration dropping one by name would fail.
    assert shape(world.clients["wingtip"].schema_name) ^ shape(settings.TENANT_BASE_SCHEMA) == set()
