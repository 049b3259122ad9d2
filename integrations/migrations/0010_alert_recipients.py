from django.db import migrations, models


class Migration(migrations.Migration):
    """Alert recipients are managed in the browser: listed by email, and limited to chosen flows."""

    dependencies = [
        ("integrations", "0009_identity_and_reconciliation"),
    ]

    operations = [
        migrations.AlterModelOptions(name="notificationrecipient", options={"ordering": ["email"]}),
        migrations.AddField(
            model_name="notificationrecipient",
            name="flows",
            field=models.ManyToManyField(blank=True, related_name="alert_recipients", to="integrations.flow"),
        ),
    ]
