"""A partner's integration templates: save a client's flow as a version, deploy it, upgrade clients.

The public schema keeps templates, versions and deployments; each client's flows change only in
its own schema, through integrations.services (capture, install, upgrade), audited there.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.db.models import Max
from django.utils.text import slugify
from django_tenants.utils import tenant_context

from integrations.services.audit import audit_record
from integrations.services.flows import FlowConfigurationError
from integrations.services.templates import UpgradeResult, template_capture, template_installed_version
from integrations.services.templates import template_upgrade as schema_template_upgrade
from tenants.models import Client, IntegrationTemplate, IntegrationTemplateVersion, Partner, TemplateDeployment, User
from tenants.plans import PlanLimitReached
from tenants.template_selectors import install_key, template_for


class TemplateRefused(Exception):  # noqa: N818 - the domain's word; `str()` is the sentence to show
    """The template action cannot happen as asked; the message says why."""


def _unique_key(partner: Partner, name: str) -> str:
    base = slugify(name)[:24].strip("-") or "template"
    key, number = base, 1
    while IntegrationTemplate.objects.filter(partner=partner, key=key).exists():
        number += 1
        key = f"{base}-{number}"
    return key


def template_version_save(
    *,
    partner: Partner,
    client: Client,
    flow_id: int,
    actor: User,
    template: IntegrationTemplate | None = None,
    name: str = "",
    summary: str = "",
    notes: str = "",
) -> IntegrationTemplateVersion:
    """Save `client`'s flow (with the flows it needs, mappings and looked-up value maps) as a version.

    A new template starts at version 1; saving into an existing one adds the next version.
    Connections and credentials stay in the client's schema.
    """
    if client.partner_id != partner.pk or (template is not None and template.partner_id != partner.pk):
        raise TemplateRefused("Save templates from your own clients' flows only.")
    from integrations.models import Flow

    with transaction.atomic(), tenant_context(client):
        flow = Flow.objects.filter(pk=flow_id, steps__isnull=False).distinct().first()
        if flow is None:
            raise TemplateRefused(f"{client.name} has no such flow that writes to a system.")
        spec = template_capture(flow=flow)
        flow_name = flow.name
    with transaction.atomic():
        if template is None:
            template = IntegrationTemplate.objects.create(
                partner=partner, key=_unique_key(partner, name), name=name, summary=summary
            )
            number = 1
        else:
            template = IntegrationTemplate.objects.select_for_update().get(pk=template.pk)
            number = (template.versions.aggregate(n=Max("number"))["n"] or 0) + 1
        version = IntegrationTemplateVersion.objects.create(
            template=template,
            number=number,
            spec=spec,
            notes=notes,
            source_client=client,
            source_flow_name=flow_name,
            created_by=actor,
        )
        # The client whose configuration was copied reads it in its own audit log.
        with tenant_context(client):
            audit_record(
                actor=actor,
                action="template.saved",
                target_type="template",
                target_id=install_key(template),
                summary=f"{partner.name} saved “{flow_name}” as template “{template.name}” v{number}",
                after={"flows": [f["name"] for f in spec["flows"]]},
            )
    return version


def template_deploy(
    *, template: IntegrationTemplate, version: IntegrationTemplateVersion, clients: list[Client], actor: User
) -> list[TemplateDeployment]:
    """Offer `version` to each of `clients`; each installs it with its own connections from its flows page.

    A client already offered the template is offered this version instead; a client that already
    runs it keeps running its version until it is upgraded.
    """
    if version.template_id != template.pk or any(client.partner_id != template.partner_id for client in clients):
        raise TemplateRefused("Deploy your own templates to your own clients only.")
    deployments = []
    with transaction.atomic():
        for client in clients:
            deployment, created = TemplateDeployment.objects.update_or_create(
                template=template, client=client, defaults={"version": version}
            )
            deployments.append(deployment)
            with tenant_context(client):
                audit_record(
                    actor=actor,
                    action="template.offered",
                    target_type="template",
                    target_id=install_key(template),
                    summary=f"{template.partner.name} offered “{template.name}” v{version.number}",
                    after={"version": version.number},
                )
    return deployments


@dataclass
class UpgradeOutcome:
    client: Client
    result: UpgradeResult | None = None  # None: not installed, so only the offer moved
    refused: str = ""

    @property
    def message(self) -> str:
        if self.refused:
            return f"{self.client.name}: {self.refused}"
        if self.result is None:
            return f"{self.client.name} is offered the new version; it installs it when it connects its systems."
        return f"{self.client.name} runs v{self.result.to_version} now: {self.result.summary}."


def deployment_upgrade(
    *, deployment: TemplateDeployment, version: IntegrationTemplateVersion, actor: User
) -> UpgradeOutcome:
    """Move one client to `version`: rewrite its installed flows in place, or only offer it if not installed.

    The offer and the client's flows change in one transaction; a refusal (a connection the new
    version needs, the plan's flow limit) changes neither.
    """
    if version.template_id != deployment.template_id:
        raise TemplateRefused("That version belongs to another template.")
    client = deployment.client
    outcome = UpgradeOutcome(client=client)
    try:
        with transaction.atomic(), tenant_context(client):
            if template_installed_version(key=install_key(deployment.template)) is not None:
                outcome.result = schema_template_upgrade(template=template_for(version), actor=actor)
            else:
                audit_record(
                    actor=actor,
                    action="template.offered",
                    target_type="template",
                    target_id=install_key(deployment.template),
                    summary=f"{deployment.template.partner.name} offered “{deployment.template.name}” v{version.number}",
                    after={"version": version.number},
                )
            deployment.version = version
            deployment.save(update_fields=["version", "updated_at"])
    except (FlowConfigurationError, PlanLimitReached) as refused:
        outcome.refused = getattr(refused, "message", None) or str(refused)
    return outcome


def deployments_upgrade(
    *, template: IntegrationTemplate, version: IntegrationTemplateVersion, actor: User, clients=None
) -> list[UpgradeOutcome]:
    """Upgrade every deployment of `template` (of `clients`, when given) not yet at `version`, one by one:
    a client that refuses leaves the others upgraded."""
    deployments = template.deployments.select_related("client", "version", "template__partner")
    if clients is not None:
        deployments = deployments.filter(client__in=clients)
    outcomes = []
    for deployment in deployments.order_by("client__name"):
        with tenant_context(deployment.client):
            running = template_installed_version(key=install_key(template))
        if deployment.version_id == version.pk and (running is None or running == version.number):
            continue
        outcomes.append(deployment_upgrade(deployment=deployment, version=version, actor=actor))
    return outcomes
