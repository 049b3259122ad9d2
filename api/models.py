"""Public-schema records of the API: the keys partners and clients create, and the calls not tied to one client."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone

from tenants.models import Client, Partner, User

# A scope is "<family>:read" or "<family>:write"; write includes read.
PARTNER_FAMILIES = ("clients", "plans", "templates", "billing")
CLIENT_FAMILIES = ("connections", "flows", "exceptions", "audit")
FAMILY_LABELS = {
    "clients": "Clients, their keys and suspension",
    "plans": "Plans",
    "templates": "Integration templates and deployments",
    "billing": "Usage and statements",
    "connections": "Connections (metadata and status, never secrets)",
    "flows": "Flows, runs and reconciliation",
    "exceptions": "Exceptions",
    "audit": "Audit events",
}


class ApiKey(models.Model):
    """A key a program presents as `Authorization: Bearer <key>`.

    A partner key (client is empty) reaches the partner's own resources and its clients'; a client
    key only its client's workspace. The key acts for the person who created it and never with more
    than that person's role today: a key whose creator has lost the role stops working. Only a
    SHA-256 of the key is stored (the key is 256 random bits, so a slow hash adds nothing); it is
    shown once, when created.
    """

    class Kind(models.TextChoices):
        PARTNER = "partner", "Partner key"
        CLIENT = "client", "Client key"

    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="api_keys")
    client = models.ForeignKey(Client, on_delete=models.CASCADE, null=True, blank=True, related_name="api_keys")
    name = models.CharField(max_length=80)
    prefix = models.CharField(max_length=16, help_text="The key's first characters, to recognise it by")
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    scopes = models.JSONField(default=list)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_keys")
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["partner", "client"])]

    def __str__(self):
        return f"{self.name} ({self.prefix}…)"

    @property
    def kind(self) -> str:
        return self.Kind.CLIENT if self.client_id else self.Kind.PARTNER

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > timezone.now())

    @property
    def state(self) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= timezone.now():
            return "expired"
        return "active"

    def allows(self, family: str, write: bool) -> bool:
        return f"{family}:write" in self.scopes or (not write and f"{family}:read" in self.scopes)


class PartnerApiCall(models.Model):
    """A call by a partner key that touched no single client (lists of clients, plans, statements).

    Calls that touch a client are audited in that client's own audit log, beside the pages' actions.
    """

    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="api_calls")
    key = models.ForeignKey(ApiKey, on_delete=models.SET_NULL, null=True, related_name="calls")
    key_prefix = models.CharField(max_length=16)
    at = models.DateTimeField(auto_now_add=True, db_index=True)
    action = models.CharField(max_length=80)
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=300)
    target = models.CharField(max_length=120, blank=True)
    status = models.PositiveSmallIntegerField()

    class Meta:
        ordering = ["-at", "-id"]
        constraints = [models.CheckConstraint(condition=~Q(key_prefix=""), name="api_call_names_its_key")]

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M} {self.key_prefix} {self.method} {self.path} {self.status}"


# --- Outbound webhooks ----------------------------------------------------------------------------

WEBHOOK_EVENTS = {
    "run.finished": "A run finished (succeeded, with exceptions, or failed)",
    "exceptions.opened": "A run opened exceptions",
    "exceptions.past_sla": "Open exceptions passed the plan's resolution target",
    "connection.failing": "A connection started failing",
}


class WebhookSubscription(models.Model):
    """An address a partner or client wants events posted to, signed with a secret only it holds.

    A client's subscription hears that client's events; a partner's (client empty) every client's.
    """

    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="webhook_subscriptions")
    client = models.ForeignKey(
        Client, on_delete=models.CASCADE, null=True, blank=True, related_name="webhook_subscriptions"
    )
    url = models.URLField(max_length=500)
    events = models.JSONField(default=list)
    encrypted_secret = models.BinaryField(editable=False)  # portal.crypto; shown once, when created
    secret_prefix = models.CharField(max_length=16)
    is_active = models.BooleanField(default=True)
    created_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.url} ({', '.join(self.events)})"


class WebhookDelivery(models.Model):
    """One event posted (or being posted) to one subscription: the delivery log people read."""

    class Status(models.TextChoices):
        PENDING = "pending", "Retrying"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Gave up"

    subscription = models.ForeignKey(WebhookSubscription, on_delete=models.CASCADE, related_name="deliveries")
    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="+")
    event = models.CharField(max_length=40)
    event_id = models.CharField(max_length=40, unique=True)
    payload = models.JSONField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["subscription", "-created_at"])]

    def __str__(self):
        return f"{self.event} → {self.subscription.url}: {self.status}"
