"""A partner's own integration templates: their versions, the clients they are offered to and "upgrade all"."""

from __future__ import annotations

from django.db import models

from tenants.models.accounts import User
from tenants.models.clients import Client
from tenants.models.partners import Partner, slug_validator


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
