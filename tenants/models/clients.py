"""Client workspaces, the plans partners sell them and what each used a month."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django_tenants.models import TenantMixin

from tenants.models.partners import Partner, slug_validator


class Plan(models.Model):
    """What a partner sells a client: price, included volume, limits and SLA targets."""

    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="plans")
    name = models.CharField(max_length=80)
    monthly_price = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    currency = models.CharField(max_length=3, default="USD")
    included_records = models.PositiveIntegerField(default=10_000, help_text="Synced records included per month")
    overage_per_1000 = models.DecimalField(max_digits=10, decimal_places=2, default=0)

    class SandboxBilling(models.TextChoices):
        FREE = "free", "Not billed"
        SEPARATE = "separate", "Billed separately"

    # Records synced by Sandbox flows never count against the included records; a plan bills them on a
    # line of their own at `sandbox_per_1000`, or not at all.
    sandbox_billing = models.CharField(max_length=10, choices=SandboxBilling.choices, default=SandboxBilling.FREE)
    sandbox_per_1000 = models.DecimalField(max_digits=10, decimal_places=2, default=0)
    # What an hour of the partner's work on a change request costs this plan's clients. 0: change requests are
    # quoted as a fixed fee.
    hourly_rate = models.DecimalField(max_digits=10, decimal_places=2, default=0)
    max_connections = models.PositiveIntegerField(default=5)
    max_flows = models.PositiveIntegerField(default=5)
    min_sync_interval_minutes = models.PositiveIntegerField(default=15)
    sla_support_hours = models.PositiveIntegerField(default=24)
    sla_resolution_hours = models.PositiveIntegerField(default=48)
    sla_freshness_hours = models.PositiveIntegerField(default=24)
    # Which systems a client may connect, and how many connections of each: {vendor key: count}, counted per
    # environment as max_connections is. Empty: every system, within max_connections (what plans made before
    # entitlements allow, so their clients keep every connection they have).
    included_systems = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["monthly_price", "name"]
        constraints = [models.UniqueConstraint(fields=["partner", "name"], name="plan_name_per_partner")]

    def __str__(self):
        return self.name

    def clean(self):
        from tenants.plans import included_systems_errors

        problems = included_systems_errors(self.included_systems)
        if problems:
            raise ValidationError(problems)

    @property
    def limits_systems(self) -> bool:
        return bool(self.included_systems)

    @property
    def included_system_list(self) -> list[tuple[str, int]]:
        """(system's name, connections included) for each system the plan includes, by name."""
        from tenants.plans import system_label

        return sorted((system_label(vendor), count) for vendor, count in self.included_systems.items())


# What a partner sets on a plan: its form edits these, its audit rows compare them.
PLAN_FIELDS = (
    "name",
    "monthly_price",
    "currency",
    "included_records",
    "overage_per_1000",
    "sandbox_billing",
    "sandbox_per_1000",
    "hourly_rate",
    "max_connections",
    "max_flows",
    "min_sync_interval_minutes",
    "sla_support_hours",
    "sla_resolution_hours",
    "sla_freshness_hours",
    "included_systems",
)


class Client(TenantMixin):
    """A client workspace: a professional-services firm, with its own PostgreSQL schema."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        SUSPENDED = "suspended", "Suspended"

    partner = models.ForeignKey(Partner, on_delete=models.PROTECT, related_name="clients")
    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=40, validators=[slug_validator])
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, null=True, blank=True, related_name="clients")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.ACTIVE)
    # Set by the client's admin: everyone in the workspace signs in with a second factor, whatever the
    # partner's policy (which can only ask for more).
    requires_mfa = models.BooleanField("two-factor sign-in for everyone", default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    auto_create_schema = True
    auto_drop_schema = False

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["partner", "slug"], name="client_slug_per_partner")]

    def __str__(self):
        return self.name

    def create_schema(self, check_if_exists=False, sync_schema=True, verbosity=1):
        """The schema as the tenant migrations make it, from the recorded script (tenants.schema_script): tens of
        milliseconds however many clients there are, where django-tenants' clone grew with every one."""
        from django_tenants.utils import schema_exists

        from tenants.schema_script import client_schema_create

        if check_if_exists and schema_exists(self.schema_name):
            return False
        client_schema_create(self.schema_name)
        return True

    @property
    def is_suspended(self) -> bool:
        return self.status == self.Status.SUSPENDED

    @property
    def path(self) -> str:
        return f"/c/{self.slug}/"


class UsageRecord(models.Model):
    """What one client used in one month, rolled up from its schema into the public schema for billing.

    The roll-up task recomputes a month's totals from the client schema and *sets* them here
    (tenants.services.usage_record_upsert), so running it twice changes nothing.
    """

    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="usage_records")
    month = models.DateField(help_text="The first day of the month")
    records_synced = models.PositiveBigIntegerField(default=0)
    runs = models.PositiveIntegerField(default=0)
    # Sandbox runs, counted apart from the production figures above (Plan.sandbox_billing says what they cost).
    sandbox_records_synced = models.PositiveBigIntegerField(default=0)
    sandbox_runs = models.PositiveIntegerField(default=0)
    # Production connections by system ({vendor key: count}) when the roll-up last read the schema: what the
    # statement counts against the systems the plan includes.
    connections = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-month", "client__name"]
        constraints = [
            models.UniqueConstraint(fields=["client", "month"], name="one_usage_record_per_client_month"),
            models.CheckConstraint(condition=Q(month__day=1), name="usage_month_is_first_day"),
        ]

    def __str__(self):
        return f"{self.client} {self.month:%Y-%m}: {self.records_synced} records, {self.runs} runs"


class SchemaScript(models.Model):
    """The statements that make a client schema at one set of tenant migrations (tenants.schema_script), recorded
    once and kept here, where every web and worker process finds it and no cache clear or eviction drops it."""

    key = models.CharField(max_length=64, unique=True)  # schema_script.migrations_key()
    statements = models.TextField()
    recorded_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"{self.key} ({self.recorded_at:%Y-%m-%d %H:%M})"
