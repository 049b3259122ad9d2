"""Public-schema records: who the partners and clients are, who the users are, and who may do what."""

from __future__ import annotations

import secrets
from datetime import timedelta

from django.contrib.auth.models import AbstractUser, BaseUserManager
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django_tenants.models import TenantMixin

from portal.models import AuditEntry

slug_validator = RegexValidator(
    r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$", "Use 1-40 lowercase letters, digits or dashes."
)


class UserManager(BaseUserManager):
    use_in_migrations = True

    def _create_user(self, email, password, **extra):
        if not email:
            raise ValueError("Users need an email address")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email, password=None, **extra):
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra)

    def create_superuser(self, email, password=None, **extra):
        extra.update(is_staff=True, is_superuser=True)
        return self._create_user(email, password, **extra)


class User(AbstractUser):
    """A person, once for the whole platform. What they may reach comes from Memberships."""

    username = None
    email = models.EmailField("email address", unique=True)
    full_name = models.CharField(max_length=150, blank=True)

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []
    objects = UserManager()

    def __str__(self):
        return self.full_name or self.email

    @property
    def display_name(self) -> str:
        return self.full_name or self.email

    @property
    def has_not_joined(self) -> bool:
        """Invited, and has neither chosen a password nor signed in (someone who signs in through single
        sign-on has no password, and has joined)."""
        return self.last_login is None and not self.has_usable_password()


class MfaPolicy(models.TextChoices):
    """Who of a partner's people, and of its clients' people, must sign in with a second factor."""

    ADMINS = "admins", "Required for partner admins and client admins"
    EVERYONE = "everyone", "Required for everyone"
    OPTIONAL = "optional", "Not required (each person may turn it on)"


class Partner(models.Model):
    """An ERP partner, MSP or integrator that rebrands the portal and runs it for its clients."""

    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=40, unique=True, validators=[slug_validator])
    is_active = models.BooleanField(default=True)
    mfa_policy = models.CharField(
        "two-factor sign-in", max_length=12, choices=MfaPolicy.choices, default=MfaPolicy.ADMINS
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


def domain_verification_token() -> str:
    return secrets.token_hex(16)


class PartnerDomainQuerySet(models.QuerySet):
    def serving(self):
        """Domains that may serve the portal: operator-provisioned ones, and partner-added ones once verified."""
        return self.filter(Q(requires_verification=False) | Q(verified_at__isnull=False))


class PartnerDomain(models.Model):
    """A host name that serves one partner's portal (e.g. northwind.localhost, connect.northwind.com).

    Hosts the platform operator provisions (when creating a partner) serve at once. A custom
    domain a partner adds serves nothing until a TXT record holding `verification_token` proves
    the partner controls its DNS: until then HostRoutingMiddleware answers the brand-neutral 404,
    as for any unknown host. Otherwise anyone could point a look-alike (or someone else's) domain
    at the platform and have it serve a partner's branded login page.
    """

    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="domains")
    domain = models.CharField(max_length=253, unique=True)
    is_primary = models.BooleanField(default=False)
    verified_at = models.DateTimeField(null=True, blank=True)
    requires_verification = models.BooleanField(
        default=False, help_text="Added by the partner: serves only once its DNS TXT record is verified."
    )
    verification_token = models.CharField(max_length=64, default=domain_verification_token, editable=False)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    last_check_message = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, null=True)

    objects = PartnerDomainQuerySet.as_manager()

    # Brand-neutral: partners show these records to their own DNS people, who must not meet the
    # platform's name. Records published under the names used before still verify (legacy_txt_*).
    TXT_PREFIX = "_portal-challenge"
    TXT_VALUE_PREFIX = "portal-verify="
    LEGACY_TXT_PREFIX = "_sysgenpro-challenge"
    LEGACY_TXT_VALUE_PREFIX = "sysgenpro-verify="

    class Meta:
        ordering = ["-is_primary", "domain"]
        constraints = [
            models.UniqueConstraint(fields=["partner"], condition=Q(is_primary=True), name="one_primary_domain"),
        ]

    def __str__(self):
        return self.domain

    @property
    def is_serving(self) -> bool:
        return not self.requires_verification or self.verified_at is not None

    @property
    def txt_name(self) -> str:
        return f"{self.TXT_PREFIX}.{self.domain}"

    @property
    def txt_value(self) -> str:
        return f"{self.TXT_VALUE_PREFIX}{self.verification_token}"

    @property
    def legacy_txt_name(self) -> str:
        return f"{self.LEGACY_TXT_PREFIX}.{self.domain}"

    @property
    def legacy_txt_value(self) -> str:
        return f"{self.LEGACY_TXT_VALUE_PREFIX}{self.verification_token}"


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


class Role(models.TextChoices):
    PLATFORM_ADMIN = "platform_admin", "Platform admin"
    PARTNER_ADMIN = "partner_admin", "Partner admin"
    PARTNER_STAFF = "partner_staff", "Partner staff"
    CLIENT_ADMIN = "client_admin", "Client admin"
    CLIENT_FINANCE = "client_finance", "Client finance"
    CLIENT_VIEWER = "client_viewer", "Client viewer"


PARTNER_ROLES = {Role.PARTNER_ADMIN, Role.PARTNER_STAFF}
CLIENT_ROLES = {Role.CLIENT_ADMIN, Role.CLIENT_FINANCE, Role.CLIENT_VIEWER}


class Membership(models.Model):
    """A role for a user: on the platform (no scope), on a partner, or on one client workspace.

    Partner staff reach only the clients in `assigned_clients`; partner admins reach all
    of their partner's clients.
    """

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices)
    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, null=True, blank=True, related_name="memberships")
    client = models.ForeignKey(Client, on_delete=models.CASCADE, null=True, blank=True, related_name="memberships")
    assigned_clients = models.ManyToManyField(Client, blank=True, related_name="assigned_staff")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                name="membership_scope_matches_role",
                condition=(
                    Q(role="platform_admin", partner__isnull=True, client__isnull=True)
                    | Q(role__in=["partner_admin", "partner_staff"], partner__isnull=False, client__isnull=True)
                    | Q(
                        role__in=["client_admin", "client_finance", "client_viewer"],
                        partner__isnull=True,
                        client__isnull=False,
                    )
                ),
            ),
            models.UniqueConstraint(
                fields=["user", "partner"], condition=Q(partner__isnull=False), name="one_partner_role"
            ),
            models.UniqueConstraint(
                fields=["user", "client"], condition=Q(client__isnull=False), name="one_client_role"
            ),
        ]

    def __str__(self):
        scope = self.client or self.partner or "platform"
        return f"{self.user} · {self.get_role_display()} · {scope}"


INVITATION_DAYS = 14


def invitation_expiry():
    return timezone.now() + timedelta(days=INVITATION_DAYS)


class Invitation(models.Model):
    """A role offered to someone who already has an account. Nothing is granted until they accept it
    through the link emailed to the address, signed in as the account that owns it: an address a
    person merely typed into their profile grants nothing.

    (A person new to the portal gets their membership at once, with a link to choose a password:
    nobody can sign in to it without that link either.)
    """

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.CharField(max_length=20, choices=Role.choices)
    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, null=True, blank=True, related_name="invitations")
    client = models.ForeignKey(Client, on_delete=models.CASCADE, null=True, blank=True, related_name="invitations")
    assigned_clients = models.ManyToManyField(Client, blank=True, related_name="+")
    invited_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(default=invitation_expiry)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                name="invitation_scope_matches_role",
                condition=(
                    Q(role__in=["partner_admin", "partner_staff"], partner__isnull=False, client__isnull=True)
                    | Q(
                        role__in=["client_admin", "client_finance", "client_viewer"],
                        partner__isnull=True,
                        client__isnull=False,
                    )
                ),
            ),
        ]

    def __str__(self):
        return f"{self.email} · {self.get_role_display()} · {self.client or self.partner}"

    @property
    def home_partner(self) -> Partner:
        """The partner whose host and brand the invitation comes from."""
        return self.client.partner if self.client_id else self.partner


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


class IntegrationTemplate(models.Model):
    """A partner's own template: a client's flow with its mappings and value maps, saved to deploy to others.

    Its contents live in versions; clients install it under the flow template key `p-<key>/<flow>`.
    """

    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="integration_templates")
    key = models.SlugField(max_length=30, validators=[slug_validator])
    name = models.CharField(max_length=120)
    summary = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["partner", "key"], name="template_key_per_partner")]

    def __str__(self):
        return self.name


class IntegrationTemplateVersion(models.Model):
    """One saved state of a template, never changed after it is written: upgrades move clients between these."""

    template = models.ForeignKey(IntegrationTemplate, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    spec = models.JSONField()  # integrations.catalog.Template.to_spec(): roles, value maps, flows, rules
    notes = models.CharField(max_length=300, blank=True)
    source_client = models.ForeignKey(Client, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    source_flow_name = models.CharField(max_length=120, blank=True)
    created_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["template", "-number"]
        constraints = [models.UniqueConstraint(fields=["template", "number"], name="one_template_version_number")]

    def __str__(self):
        return f"{self.template} v{self.number}"


class TemplateDeployment(models.Model):
    """A template offered to one client at one version; the client installs it with its own connections."""

    template = models.ForeignKey(IntegrationTemplate, on_delete=models.CASCADE, related_name="deployments")
    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="template_deployments")
    version = models.ForeignKey(IntegrationTemplateVersion, on_delete=models.PROTECT, related_name="deployments")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["client__name"]
        constraints = [models.UniqueConstraint(fields=["template", "client"], name="one_deployment_per_client")]

    def __str__(self):
        return f"{self.template} → {self.client} (v{self.version.number})"


class TemplateRollout(models.Model):
    """“Upgrade all”: every client offered a template moved to one version, a worker task a client, counted here
    as each finishes so the template's page shows how far it has gone and which clients refused."""

    template = models.ForeignKey(IntegrationTemplate, on_delete=models.CASCADE, related_name="rollouts")
    version = models.ForeignKey(IntegrationTemplateVersion, on_delete=models.CASCADE, related_name="+")
    actor = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    total = models.PositiveIntegerField()
    handled = models.JSONField(default=list)  # deployment ids done: a task delivered twice counts once
    upgraded = models.PositiveIntegerField(default=0)
    refusals = models.JSONField(default=list)  # ["Cove Consulting: …", …], one a client that refused
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self):
        return f"{self.template} → v{self.version.number}: {self.done} of {self.total}"

    @property
    def done(self) -> int:
        return len(self.handled)

    @property
    def running(self) -> bool:
        return self.finished_at is None

    @property
    def percent(self) -> int:
        return 100 if not self.total else round(100 * self.done / self.total)


class PartnerAuditEvent(AuditEntry):
    """A change to a partner's own settings (brand, domains, plans, team, sign-on, clients): who did it, when,
    and the values before and after. Written by the service with the change, in one transaction; never a secret.

    Its client workspaces keep their own log (integrations.AuditEvent, in each client's schema); this is the
    partner console's, in the public schema, read only by the partner's admins.
    """

    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="audit_events")
    at = models.DateTimeField(auto_now_add=True)
    # The actor's email (kept by AuditEntry) stays beside the link so the row still reads well once the user is gone.
    actor = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    action = models.CharField(max_length=80)

    class Meta(AuditEntry.Meta):
        indexes = [
            models.Index(fields=["partner", "-at", "-id"], name="partner_audit_newest"),
            models.Index(fields=["partner", "action"], name="partner_audit_action"),
        ]


# Single sign-on, subscriptions and change requests, in modules of their own; imported here so Django finds the models in this app.
from tenants.models.changes import ChangeRequest, ChangeRequestComment  # noqa: E402, F401
from tenants.models.sso import SsoConnection, SsoDomain  # noqa: E402, F401
from tenants.models.subscriptions import RenewalReminder, Subscription, SubscriptionTerm  # noqa: E402, F401
