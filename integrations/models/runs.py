"""Runs, the exception queue, webhook deliveries and who gets told when something breaks."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class SyncRun(models.Model):
    # The error of a scheduled run that could not start: kept in the history, never counted as usage.
    REFUSED = "Did not start: "

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        PARTIAL = "partial", "Finished with exceptions"
        FAILED = "failed", "Failed"

    # A run waiting for a worker or on one; a run that read its source to the end (exceptions or not).
    LIVE = (Status.QUEUED, Status.RUNNING)
    FINISHED = (Status.SUCCEEDED, Status.PARTIAL)

    flow = models.ForeignKey("integrations.Flow", on_delete=models.CASCADE, related_name="runs")
    trigger = models.CharField(max_length=10, default="manual")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED, db_index=True)
    # Where the records read went; they add up to `read` (a RunRecord row each says which).
    read = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0)
    linked = models.PositiveIntegerField(default=0)  # found already there (by id or match keys) and linked
    updated = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    parked = models.PositiveIntegerField(default=0)  # waiting behind another exception
    failed = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    expected = models.PositiveIntegerField(null=True, blank=True)  # for the progress bar, when known
    vendor_calls = models.PositiveIntegerField(default=0)
    rate_limited = models.PositiveIntegerField(default=0)
    error = models.CharField(max_length=500, blank=True)
    queued_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-queued_at", "-id"]
        indexes = [models.Index(fields=["flow", "-queued_at"])]

    @property
    def duration_seconds(self) -> float | None:
        if not self.started_at:
            return None
        return ((self.finished_at or timezone.now()) - self.started_at).total_seconds()

    @property
    def records_per_second(self) -> float | None:
        seconds = self.duration_seconds
        return round(self.read / seconds, 1) if seconds else None

    @property
    def progress_percent(self) -> int | None:
        if self.status in {self.Status.SUCCEEDED, self.Status.PARTIAL, self.Status.FAILED}:
            return 100
        if not self.expected:
            return None
        return min(99, int(100 * self.read / self.expected))


class SyncException(models.Model):
    """One record that could not be synced, with what a person needs to fix it. Never dropped.

    Some exceptions are about a cause rather than one record ("project PRJ-112B is not in NetSuite",
    "Aisha Patel has no cost rate"): `cause` names it, and the records held up by it are PARKED
    behind it (`waiting_on`), so a clerk sees one exception with what waits on it, and fixing it
    releases them.
    """

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        RETRYING = "retrying", "Retrying"
        PARKED = "parked", "Waiting on another exception"
        RESOLVED = "resolved", "Resolved"
        IGNORED = "ignored", "Ignored"

    # An exception a person still has to act on (a retry under way included); parked ones wait on such a one.
    LIVE = (Status.OPEN, Status.RETRYING)

    class ErrorCode(models.TextChoices):
        """Why a record could not sync, with the words pages use for it."""

        PROJECT_NOT_IN_TARGET = "PROJECT_NOT_IN_TARGET", "Project code not found"
        PROJECT_NOT_FOUND = "PROJECT_NOT_FOUND", "Project code not found"
        CUSTOMER_NOT_FOUND = "CUSTOMER_NOT_FOUND", "Customer not found"
        OPPORTUNITY_NOT_FOUND = "OPPORTUNITY_NOT_FOUND", "Deal not found"
        RESOURCE_NOT_FOUND = "RESOURCE_NOT_FOUND", "Person not found"
        RATE_CARD_NOT_FOUND = "RATE_CARD_NOT_FOUND", "Rate card not found"
        VALUE_NOT_MAPPED = "VALUE_NOT_MAPPED", "Value not mapped"
        REQUIRED_MISSING = "REQUIRED_MISSING", "Required field missing"
        MISSING_COST_RATE = "MISSING_COST_RATE", "No cost rate"
        AWAITING_FIRST_SYNC = "AWAITING_FIRST_SYNC", "Waiting for a first sync"
        FIELD_CONFLICT = "FIELD_CONFLICT", "Field owned by another system"
        DUPLICATE_IN_SOURCE = "DUPLICATE_IN_SOURCE", "Entered twice"
        AMBIGUOUS_MATCH = "AMBIGUOUS_MATCH", "Matches several records"
        LEAVER_WITH_OPEN_WORK = "LEAVER_WITH_OPEN_WORK", "Leaver with work booked"
        TARGET_UNAVAILABLE = "TARGET_UNAVAILABLE", "Target system unavailable"
        TARGET_REJECTED = "TARGET_REJECTED", "Rejected by the target"
        MALFORMED_RECORD = "MALFORMED_RECORD", "Unreadable record"
        INVALID_RECORD = "INVALID_RECORD", "Incomplete record"
        BAD_VALUE = "BAD_VALUE", "Not a valid value"
        BAD_DATE = "BAD_DATE", "Not a date"
        BAD_NUMBER = "BAD_NUMBER", "Not a number"
        BAD_CURRENCY = "BAD_CURRENCY", "Not a currency"
        NO_CRM_ACCOUNT = "NO_CRM_ACCOUNT", "No CRM account"
        CRM_ACCOUNT_GONE = "CRM_ACCOUNT_GONE", "CRM account gone"
        CRM_REFUSED = "CRM_REFUSED", "Refused by the CRM"
        WAITING_ON = "WAITING_ON", "Waiting on another exception"

    # flow and error_code are indexed by the composite indexes below that lead with them.
    flow = models.ForeignKey("integrations.Flow", on_delete=models.CASCADE, related_name="exceptions", db_index=False)
    step = models.ForeignKey("integrations.FlowStep", null=True, blank=True, on_delete=models.SET_NULL)
    first_run = models.ForeignKey(SyncRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    last_run = models.ForeignKey(SyncRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    source_system = models.CharField(max_length=40)
    target_system = models.CharField(max_length=40, blank=True)
    object = models.CharField(max_length=60)
    external_id = models.CharField(max_length=200, blank=True)
    payload = models.JSONField(default=dict)
    # What the exception is about, as a person names it ("PRJ-112B", "aisha.patel@…", "Piper Health Ltd.").
    subject = models.CharField(max_length=200, blank=True)
    # For an exception about a cause: its key ("not_in_target:3:project:12"), one live exception per key.
    cause = models.CharField(max_length=200, blank=True, db_index=True)
    error_code = models.CharField(max_length=60, choices=ErrorCode.choices)
    message = models.CharField(max_length=500)  # a sentence a finance clerk understands
    detail = models.TextField(blank=True)  # the vendor's words, secrets removed
    fix_actions = models.JSONField(default=list)  # [{"action": "map_value", "value_map": "...", "value": "..."}]
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    waiting_on = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="parked")
    assignee_id = models.BigIntegerField(null=True, blank=True)
    assignee_email = models.EmailField(blank=True)
    ignored_reason = models.CharField(max_length=300, blank=True)
    occurrences = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["status", "-created_at", "-id"]),
            models.Index(fields=["flow", "status", "-created_at"]),
            models.Index(fields=["error_code", "status"]),
            models.Index(fields=["source_system", "status"]),
            models.Index(fields=["assignee_id", "status"]),
        ]
        constraints = [
            # A record has at most one live exception per flow step; repeats bump `occurrences`.
            models.UniqueConstraint(
                fields=["flow", "object", "external_id", "error_code"],
                condition=models.Q(status__in=["open", "retrying", "parked"]),
                name="one_live_exception_per_record_and_error",
            ),
            models.UniqueConstraint(
                fields=["cause"],
                condition=models.Q(status__in=["open", "retrying"]) & ~models.Q(cause=""),
                name="one_live_exception_per_cause",
            ),
        ]

    def __str__(self):
        return self.message

    @property
    def is_live(self) -> bool:
        return self.status in {self.Status.OPEN, self.Status.RETRYING}


class RunRecord(models.Model):
    """Where one source record went in one run: the reconciliation a partner shows its client."""

    class Outcome(models.TextChoices):
        CREATED = "created", "Created"
        LINKED = "linked", "Linked to existing"
        UPDATED = "updated", "Updated"
        UNCHANGED = "unchanged", "Unchanged"
        PARKED = "parked", "Waiting on an exception"
        EXCEPTION = "exception", "Exception"
        SKIPPED = "skipped", "Skipped by the flow's filter"

    # A run writes a row here for every record it reads, so the table carries no database-side foreign keys
    # (each cost a check per row at every page's commit, more than the row's own insert) and no index its
    # composite indexes already lead with. Deleting a run, flow or exception still cascades through Django.
    run = models.ForeignKey(
        SyncRun, on_delete=models.CASCADE, related_name="records", db_constraint=False, db_index=False
    )
    flow = models.ForeignKey(
        "integrations.Flow", on_delete=models.CASCADE, related_name="+", db_constraint=False, db_index=False
    )
    object = models.CharField(max_length=60)
    external_id = models.CharField(max_length=200, blank=True)
    description = models.CharField(max_length=200, blank=True)
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    exception = models.ForeignKey(
        SyncException, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_constraint=False
    )
    entity = models.CharField(max_length=30, blank=True)
    record_id = models.BigIntegerField(null=True, blank=True)
    # What happened in each target: [{"system": "NetSuite", "object": "job", "action": "linked", "id": "123"}]
    targets = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["run", "outcome"]),
            models.Index(fields=["flow", "object", "external_id", "-id"]),
        ]


class SyncExceptionComment(models.Model):
    exception = models.ForeignKey(SyncException, on_delete=models.CASCADE, related_name="comments")
    author_id = models.BigIntegerField(null=True, blank=True)
    author_email = models.EmailField(blank=True)
    body = models.TextField(max_length=2000)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]


class WebhookDelivery(models.Model):
    """Deliveries already accepted, so a replayed webhook is refused instead of syncing twice."""

    flow = models.ForeignKey("integrations.Flow", on_delete=models.CASCADE, related_name="deliveries")
    delivery_id = models.CharField(max_length=200)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["flow", "delivery_id"], name="one_delivery_per_flow")]


class NotificationRecipient(models.Model):
    """Someone the workspace emails when something needs a person, for the events they chose.

    `flows` limits run failures, failing connections and won deals to those flows (a connection
    counts for every flow that uses it); none chosen means every flow. SLA mails are about the
    whole queue and go to everyone who asked for them.
    """

    email = models.EmailField(unique=True)  # stored lower-case (integrations.services.alerts)
    on_run_failed = models.BooleanField(default=True)
    on_connection_failed = models.BooleanField(default=True)
    on_sla_breach = models.BooleanField(default=True)
    on_deal_won = models.BooleanField(default=False)  # delivery leadership, for lead-to-project
    flows = models.ManyToManyField("integrations.Flow", blank=True, related_name="alert_recipients")

    # The events, in the order pages and audit rows name them.
    EVENTS = ("on_run_failed", "on_connection_failed", "on_sla_breach", "on_deal_won")

    class Meta:
        ordering = ["email"]

    def __str__(self):
        return self.email

    def events(self) -> list[str]:
        return [event for event in self.EVENTS if getattr(self, event)]


class BulkAction(models.Model):
    """A retry or an ignore of more exceptions than one request should handle, run by a worker in batches.

    It keeps the queue's filters as they were asked (and when), so the worker acts on the
    exceptions the person saw, not ones raised after they clicked.
    """

    class Action(models.TextChoices):
        RETRY = "retry", "Retry"
        IGNORE = "ignore", "Ignore"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    action = models.CharField(max_length=10, choices=Action.choices, default=Action.RETRY)
    reason = models.CharField(max_length=300, blank=True)  # why they are ignored; each exception keeps it
    query = models.JSONField(default=dict)  # selectors.QueueQuery's fields
    sla_hours = models.PositiveIntegerField(null=True, blank=True)
    up_to = models.DateTimeField(default=timezone.now)
    actor_id = models.IntegerField(null=True, blank=True)  # a public-schema user
    actor_email = models.CharField(max_length=254, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    resolved = models.PositiveIntegerField(default=0)
    still_open = models.PositiveIntegerField(default=0)
    cursor = models.JSONField(null=True, blank=True)  # (created_at, id) of the last exception handled
    error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    # When a worker last recorded a batch (or the job was queued or requeued): housekeeping requeues
    # a live job that has not moved for a while and whose worker holds no lock on it.
    progress_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    @property
    def live(self) -> bool:
        return self.status in (self.Status.QUEUED, self.Status.RUNNING)

    @property
    def doing(self) -> str:
        """What the job does, as its progress box says it: "Retrying", "Ignoring"."""
        return {self.Action.RETRY: "Retrying", self.Action.IGNORE: "Ignoring"}[self.action]

    @property
    def done_verb(self) -> str:
        return {self.Action.RETRY: "retried", self.Action.IGNORE: "ignored"}[self.action]

    @property
    def percent(self) -> int:
        if not self.live:
            return 100
        return min(99, int(100 * self.done / self.total)) if self.total else 0
