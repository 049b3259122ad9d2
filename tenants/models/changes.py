"""Change requests on a partner's retainer: a client asks for a change, the partner quotes it against the client's
plan, the client approves or declines it, the partner delivers it; both sides talk on its thread."""

from __future__ import annotations

from django.db import models
from django.db.models import Q


class ChangeRequest(models.Model):
    """One change a client asked its partner for, with the partner's quote and what became of it.

    The quote is frozen on the row (hours, the rate they were priced at, the amount, the currency), so changing the
    plan's hourly rate later never changes a price the client saw. An approved request is billed on the statement of
    the month it was approved in (`approved_at`), whether or not it is delivered yet.
    """

    class Kind(models.TextChoices):
        NEW_FLOW = "new_flow", "New flow"
        MAPPING = "mapping", "Mapping change"
        NEW_SYSTEM = "new_system", "New system"
        OTHER = "other", "Other"

    class Status(models.TextChoices):
        REQUESTED = "requested", "Requested"
        QUOTED = "quoted", "Quoted"
        APPROVED = "approved", "Approved"
        DECLINED = "declined", "Declined"
        DELIVERED = "delivered", "Delivered"
        WITHDRAWN = "withdrawn", "Withdrawn"

    client = models.ForeignKey("tenants.Client", on_delete=models.CASCADE, related_name="change_requests")
    number = models.PositiveIntegerField()  # the client's own sequence: #1, #2... in its workspace
    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.OTHER)
    title = models.CharField(max_length=120)
    description = models.TextField(max_length=4000)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.REQUESTED)
    requested_by = models.ForeignKey("tenants.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    requested_at = models.DateTimeField(auto_now_add=True)
    # The quote: hours at the plan's hourly rate, or a fixed fee (hours and rate empty). `quote_version` counts the
    # quotes given, so an approval names the one the client read.
    quote_hours = models.DecimalField(max_digits=7, decimal_places=2, null=True, blank=True)
    quote_rate = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True)
    quote_amount = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    quote_note = models.TextField(max_length=2000, blank=True)
    quote_version = models.PositiveIntegerField(default=0)
    quoted_by = models.ForeignKey("tenants.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    quoted_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey("tenants.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    approved_at = models.DateTimeField(null=True, blank=True)
    declined_at = models.DateTimeField(null=True, blank=True)
    withdrawn_at = models.DateTimeField(null=True, blank=True)
    delivered_by = models.ForeignKey("tenants.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    delivered_at = models.DateTimeField(null=True, blank=True)
    delivery_note = models.TextField(max_length=2000, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-requested_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["client", "number"], name="one_change_request_number_per_client"),
            models.CheckConstraint(condition=Q(quote_amount__gte=0), name="change_request_amount_not_negative"),
            # Approved and delivered requests are billed: they carry their quote and the moment of approval.
            models.CheckConstraint(
                condition=~Q(status__in=["approved", "delivered"])
                | Q(quote_amount__isnull=False, approved_at__isnull=False),
                name="billed_change_request_has_quote",
            ),
        ]
        indexes = [models.Index(fields=["client", "approved_at"], name="change_request_billing")]

    def __str__(self):
        return f"{self.client} #{self.number} {self.title}"

    @property
    def label(self) -> str:
        return f"#{self.number} “{self.title}”"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def is_fixed_fee(self) -> bool:
        return self.quote_amount is not None and self.quote_hours is None


OPEN_STATUSES = (ChangeRequest.Status.REQUESTED, ChangeRequest.Status.QUOTED, ChangeRequest.Status.APPROVED)
BILLED_STATUSES = (ChangeRequest.Status.APPROVED, ChangeRequest.Status.DELIVERED)


class ChangeRequestComment(models.Model):
    """A message on a change request's thread, which the client's people and the partner's people both read."""

    class Side(models.TextChoices):
        CLIENT = "client", "Client"
        PARTNER = "partner", "Partner"

    change_request = models.ForeignKey(ChangeRequest, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey("tenants.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    author_name = models.CharField(max_length=150, blank=True)  # kept so the thread reads well once the user is gone
    side = models.CharField(max_length=8, choices=Side.choices)
    body = models.TextField(max_length=4000)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self):
        return f"{self.change_request} · {self.author_name} ({self.side})"
