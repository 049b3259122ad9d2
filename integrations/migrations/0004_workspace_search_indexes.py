"""The queue's search box at a million rows: Django's icontains compares UPPER(message), so the
trigram index must be on that expression (0003's was on the bare column and went unused), and a
record's own id is looked up exactly."""

from django.db import migrations


def trigram_index(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("DROP INDEX IF EXISTS sgp_exc_message_trgm")
        cursor.execute(
            "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace"
            " WHERE e.extname = 'pg_trgm'"
        )
        row = cursor.fetchone()
        if row is None:
            return  # 0003 could not create the extension here: the search works, unindexed
        opclass = f"{schema_editor.connection.ops.quote_name(row[0])}.gin_trgm_ops"
        cursor.execute(
            "CREATE INDEX IF NOT EXISTS sgp_exc_message_upper_trgm ON integrations_syncexception"
            f" USING gin ((UPPER(message::text)) {opclass})"
        )


def trigram_index_drop(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("DROP INDEX IF EXISTS sgp_exc_message_upper_trgm")


class Migration(migrations.Migration):
    dependencies = [("integrations", "0003_workspace_read_indexes")]

    operations = [
        migrations.RunPython(trigram_index, trigram_index_drop),
        migrations.RunSQL(
            "CREATE INDEX IF NOT EXISTS sgp_exc_external_id ON integrations_syncexception (external_id)",
            "DROP INDEX IF EXISTS sgp_exc_external_id",
        ),
    ]
