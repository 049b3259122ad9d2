from django.db import models


class Environment(models.TextChoices):
    """Where a connection points and a flow runs: flows are built and tested in Sandbox, then promoted."""

    SANDBOX = "sandbox", "Sandbox"
    PRODUCTION = "production", "Production"


class Connection(models.Model):
    """A client's account at one vendor. Credentials are encrypted (portal.crypto) and write-only."""

    class Status(models.TextChoices):
        UNTESTED = "untested", "Untested"
        OK = "ok", "Connected"
        FAILING = "failing", "Failing"

    name = models.CharField(max_length=120)
    vendor = models.CharField(max_length=40)  # a key of connectors.registry.CONNECTORS
    base_url = models.URLField(max_length=300)
    encrypted_credentials = models.BinaryField(default=bytes, editable=False)
    # Existing connections were production ones: the default keeps them so.
    environment = models.CharField(max_length=10, choices=Environment.choices, default=Environment.PRODUCTION)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.UNTESTED)
    last_error = models.CharField(max_length=500, blank=True)
    last_tested_at = models.DateTimeField(null=True, blank=True)
    credentials_rotated_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    @property
    def key(self) -> str:
        """Identifies this connection to the HTTP policy (rate budget, metrics) across processes."""
        from django.db import connection as db

        return f"{db.schema_name}:{self.pk}"
