"""Partners: who rebrands and runs the portal, the host names that serve it, and the log of changes to its own
settings."""

from __future__ import annotations

import secrets

from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q

from portal.models import AuditEntry

slug_validator = RegexValidator(
    r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$", "Use 1-40 lowercase letters, digits or dashes."
)


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


class PartnerAuditEvent(AuditEntry):
    """A change to a partner's own settings (brand, domains, plans, team, sign-on, clients): who did it, when,
    and the values before and after. Written by the service with the change, in one transaction; never a secret.

    Its client workspaces keep their own log (integrations.AuditEvent, in each client's schema); this is the
    partner console's, in the public schema, read only by the partner's admins.
    """

    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="audit_events")
    at = models.DateTimeField(auto_now_add=True)
    # The actor's email (kept by AuditEntry) stays beside the link so the row still reads well once the user is gone.
    actor = models.ForeignKey("tenants.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    action = models.CharField(max_length=80)

    class Meta(AuditEntry.Meta):
        indexes = [
            models.Index(fields=["partner", "-at", "-id"], name="partner_audit_newest"),
            models.Index(fields=["partner", "action"], name="partner_audit_action"),
        ]
