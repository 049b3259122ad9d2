"""Flows and mappings. Mapping rules are data interpreted by integrations.engine.mapping; never code."""

from __future__ import annotations

import secrets

from django.db import models

from integrations.models.connections import Environment


class ValueMap(models.Model):
    """A lookup table a mapping rule can use: payment terms, project codes, departments -> practices."""

    key = models.SlugField(max_length=60, unique=True)
    name = models.CharField(max_length=120)
    description = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def as_dict(self) -> dict[str, str]:
        return {entry.source_value: entry.target_value for entry in self.entries.all()}


class ValueMapEntry(models.Model):
    value_map = models.ForeignKey(ValueMap, on_delete=models.CASCADE, related_name="entries")
    source_value = models.CharField(max_length=200)
    target_value = models.CharField(max_length=200)

    class Meta:
        ordering = ["source_value"]
        constraints = [models.UniqueConstraint(fields=["value_map", "source_value"], name="one_entry_per_source_value")]


class Mapping(models.Model):
    """An ordered set of rules turning one record shape into another."""

    name = models.CharField(max_length=120)

    def __str__(self):
        return self.name


class MappingRule(models.Model):
    mapping = models.ForeignKey(Mapping, on_delete=models.CASCADE, related_name="rules")
    order = models.PositiveIntegerField(default=0)
    target = models.CharField(max_length=120)  # "project.code" (inbound) or "companyname" (outbound)
    sources = models.JSONField(default=list)  # dotted paths into the input record
    transforms = models.JSONField(default=list)  # [{"name": "trim"}, {"name": "lookup", "value_map": "terms"}]
    required = models.BooleanField(default=False)
    label = models.CharField(max_length=120, blank=True)  # how a clerk calls this field

    class Meta:
        ordering = ["order", "id"]


class Flow(models.Model):
    class Trigger(models.TextChoices):
        SCHEDULE = "schedule", "Schedule"
        WEBHOOK = "webhook", "Webhook"
        MANUAL = "manual", "By hand"

    name = models.CharField(max_length=120)
    template_key = models.CharField(max_length=60, blank=True)
    template_version = models.PositiveIntegerField(null=True, blank=True)
    source_connection = models.ForeignKey(
        "integrations.Connection", on_delete=models.PROTECT, related_name="source_flows"
    )
    source_object = models.CharField(max_length=60)
    source_filter = models.JSONField(default=dict, blank=True)  # {"path": "dealstage", "in": ["closedwon"]}
    entity = models.CharField(max_length=30)  # the canonical entity the source produces
    inbound_mapping = models.ForeignKey(Mapping, on_delete=models.PROTECT, related_name="inbound_flows")
    trigger = models.CharField(max_length=10, choices=Trigger.choices, default=Trigger.SCHEDULE)
    schedule_minutes = models.PositiveIntegerField(null=True, blank=True)
    webhook_token = models.CharField(max_length=64, unique=True, default=secrets.token_urlsafe)
    enabled = models.BooleanField(default=True)
    # A flow runs in its source connection's environment and writes only to connections of that one.
    environment = models.CharField(max_length=10, choices=Environment.choices, default=Environment.PRODUCTION)
    # On a Sandbox flow: the Production flow its promotions create and then update.
    promoted_to = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="promoted_from"
    )
    # Reference flows run first in the same run (e.g. projects and people before time entries).
    prerequisites = models.ManyToManyField("self", symmetrical=False, blank=True, related_name="dependents")
    # How records are recognised in the other systems before anything is created, by entity:
    # {"customer": ["name", "domain"]}; an entity not named here uses its default keys (engine.entities).
    match_keys = models.JSONField(default=dict, blank=True)
    cursor = models.CharField(max_length=100, blank=True)
    cursor_updated_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            # Two installs or upgrades at once must not both create the template's flow.
            models.UniqueConstraint(
                fields=["template_key"], condition=~models.Q(template_key=""), name="one_flow_per_template_key"
            )
        ]

    def __str__(self):
        return self.name


class FlowStep(models.Model):
    """One target write of a flow, in dependency order (customer before project before invoice)."""

    class Action(models.TextChoices):
        WRITE = "write", "Write records"
        INVOICE = "invoice", "Build invoices per project and period"
        NOTIFY = "notify", "Email people"

    flow = models.ForeignKey(Flow, on_delete=models.CASCADE, related_name="steps")
    order = models.PositiveIntegerField(default=0)
    name = models.CharField(max_length=120)
    action = models.CharField(max_length=10, choices=Action.choices, default=Action.WRITE)
    entity = models.CharField(max_length=30)
    target_connection = models.ForeignKey(
        "integrations.Connection", null=True, blank=True, on_delete=models.PROTECT, related_name="target_steps"
    )
    target_object = models.CharField(max_length=60, blank=True)
    outbound_mapping = models.ForeignKey(
        Mapping, null=True, blank=True, on_delete=models.PROTECT, related_name="outbound_steps"
    )
    options = models.JSONField(default=dict, blank=True)  # e.g. {"recipients": [...]} for notify
    # The template step this one is (its name in the template), so an upgrade changes only those and
    # leaves the targets the client added itself; blank for those.
    template_step = models.CharField(max_length=120, blank=True)

    class Meta:
        ordering = ["order", "id"]

    def __str__(self):
        return self.name
