from django.db import migrations, models


class Migration(migrations.Migration):
    """Bulk jobs ignore as well as retry: the model is renamed and says which, and why for an ignore."""

    dependencies = [
        ("integrations", "0007_bulk_retry_progress_at"),
    ]

    operations = [
        migrations.RenameModel(old_name="BulkRetry", new_name="BulkAction"),
        migrations.AddField(
            model_name="bulkaction",
            name="action",
            field=models.CharField(
                choices=[("retry", "Retry"), ("ignore", "Ignore")], default="retry", max_length=10
            ),
        ),
        migrations.AddField(
            model_name="bulkaction",
            name="reason",
            field=models.CharField(blank=True, max_length=300),
        ),
    ]
