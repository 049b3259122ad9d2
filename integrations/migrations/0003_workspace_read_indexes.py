"""Indexes for the workspace's screens at a million rows (docs/benchmarks.md, "Client workspace").

Plain SQL rather than Meta.indexes: they serve the queue's keyset pages, the dashboards'
index-only scans and the search box, not the model; INCLUDE columns and operator classes from
an extension are also beyond what Meta.indexes says portably. The trigram index is created only
where the pg_trgm extension is available; the search works without it, more slowly.
"""

from django.db import migrations

INDEXES = [
    # Exception queue: each filter with the keyset order (created_at, id).
    (
        "sgp_exc_status_code_created",
        "integrations_syncexception (status, error_code, created_at, id) INCLUDE (source_system)",
    ),
    ("sgp_exc_status_source_created", "integrations_syncexception (status, source_system, created_at, id)"),
    ("sgp_exc_status_target_created", "integrations_syncexception (status, target_system, created_at, id)"),
    ("sgp_exc_status_assignee_created", "integrations_syncexception (status, assignee_id, created_at, id)"),
    # Weekly trend of opened and resolved exceptions, across statuses.
    ("sgp_exc_created", "integrations_syncexception (created_at)"),
    ("sgp_exc_resolved", "integrations_syncexception (resolved_at) WHERE resolved_at IS NOT NULL"),
    # "Which live exceptions does this value-map entry fix?" (fix_actions @> [...]).
    ("sgp_exc_fix_actions", "integrations_syncexception USING gin (fix_actions jsonb_path_ops)"),
    # Utilization and margin dashboards read the period's time entries from the index alone.
    (
        "sgp_time_date_covering",
        "integrations_timeentry (date) INCLUDE (resource_id, project_id, hours, billable, bill_rate, cost_rate, currency)",
    ),
    # An exception's history on its page.
    ("sgp_audit_target", "integrations_auditevent (target_type, target_id, at)"),
]


def trigram_index(apps, schema_editor):
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace"
            " WHERE e.extname = 'pg_trgm'"
        )
        row = cursor.fetchone()
        if row is None:
            cursor.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'")
            if cursor.fetchone() is None:
                return
            cursor.execute("SAVEPOINT sgp_trgm")
            try:
                cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public")
            except Exception:  # noqa: BLE001 - no right to create extensions: search stays unindexed
                cursor.execute("ROLLBACK TO SAVEPOINT sgp_trgm")
                return
            cursor.execute("RELEASE SAVEPOINT sgp_trgm")
            schema = "public"
        else:
            schema = row[0]
        opclass = f"{connection.ops.quote_name(schema)}.gin_trgm_ops"
        cursor.execute(
            "CREATE INDEX IF NOT EXISTS sgp_exc_message_trgm ON integrations_syncexception"
            f" USING gin (message {opclass})"
        )


def trigram_index_drop(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("DROP INDEX IF EXISTS sgp_exc_message_trgm")


class Migration(migrations.Migration):
    dependencies = [
        ("integrations", "0002_connection_customer_mapping_notificationrecipient_and_more"),
    ]

    operations = [
        *(
            migrations.RunSQL(f"CREATE INDEX IF NOT EXISTS {name} ON {definition}", f"DROP INDEX IF EXISTS {name}")
            for name, definition in INDEXES
        ),
        migrations.RunPython(trigram_index, trigram_index_drop),
    ]
