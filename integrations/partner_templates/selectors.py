"""Reads for a partner's integration templates: the list, each version's contents, who runs which version."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db import DatabaseError
from django.db.models import Count, Max, QuerySet
from django_tenants.utils import tenant_context

from integrations.catalog import PARTNER_TEMPLATE_PREFIX, Template
from tenants.models import Client, IntegrationTemplate, IntegrationTemplateVersion, Partner, TemplateDeployment

logger = logging.getLogger(__name__)


def partner_templates(partner: Partner) -> QuerySet[IntegrationTemplate]:
    return IntegrationTemplate.objects.filter(partner=partner).annotate(
        latest=Max("versions__number"), deployed=Count("deployments", distinct=True)
    )


def install_key(template: IntegrationTemplate) -> str:
    """The template key its flows carry in a client schema: never one a packaged template uses."""
    return f"{PARTNER_TEMPLATE_PREFIX}{template.key}"


def template_for(version: IntegrationTemplateVersion) -> Template:
    """A saved version as an installable Template (integrations.services.flows.template_install)."""
    template = version.template
    return Template.from_spec(
        version.spec,
        key=install_key(template),
        name=template.name,
        summary=template.summary,
        version=version.number,
        publisher=template.partner.name,
    )


def templates_offered(client: Client) -> list[Template]:
    """The partner's templates deployed to `client`, at the version offered to it."""
    deployments = TemplateDeployment.objects.filter(client=client, template__partner_id=client.partner_id)
    return [
        template_for(deployment.version)
        for deployment in deployments.select_related("version__template__partner").order_by("template__name")
    ]


def templates_installable(client: Client) -> list[Template]:
    """The templates `client` may install: its partner's own offered to it, then the packaged ones."""
    from integrations.catalog import TEMPLATES

    return [*templates_offered(client), *TEMPLATES.values()]


# --- What a version holds and what changed -------------------------------------------------------


def _spec_rules(spec: dict) -> dict[tuple, dict]:
    rules = {}
    for flow in spec.get("flows", []):
        for rule in flow.get("rules", []):
            rules[(flow["key"], "", rule["target"])] = rule
        for step in flow.get("steps", []):
            for rule in step.get("rules", []):
                rules[(flow["key"], step["name"], rule["target"])] = rule
    return rules


def _spec_entries(spec: dict) -> set[tuple]:
    return {(vm["key"], entry[0], entry[1]) for vm in spec.get("value_maps", []) for entry in vm.get("entries", [])}


@dataclass
class VersionSummary:
    version: IntegrationTemplateVersion
    flows: list[str]
    main_flows: list[str]  # those that write to a system
    reference_flows: list[str]  # those that only read reference data for them
    rules: int
    entries: int
    empty_maps: list[str]  # value maps it carries without entries, for each client to fill in
    connections: list[str]
    rules_changed: int | None  # against the version before; None for the first
    entries_added: int | None
    flows_added: list[str]
    flows_removed: list[str]


def version_summaries(template: IntegrationTemplate) -> list[VersionSummary]:
    """Every version, newest first, with its contents' counts and what changed since the one before."""
    versions = list(template.versions.select_related("created_by", "source_client").order_by("number"))
    summaries = []
    previous = None
    for version in versions:
        spec = version.spec
        rules, entries = _spec_rules(spec), _spec_entries(spec)
        flows = {flow["key"]: flow["name"] for flow in spec.get("flows", [])}
        summary = VersionSummary(
            version=version,
            flows=list(flows.values()),
            main_flows=[flow["name"] for flow in spec.get("flows", []) if flow.get("steps")],
            reference_flows=[flow["name"] for flow in spec.get("flows", []) if not flow.get("steps")],
            rules=len(rules),
            entries=len(entries),
            empty_maps=[vm["name"] for vm in spec.get("value_maps", []) if not vm.get("entries")],
            connections=[value["label"] for value in spec.get("connections", {}).values()],
            rules_changed=None,
            entries_added=None,
            flows_added=[],
            flows_removed=[],
        )
        if previous is not None:
            old_rules, old_entries = _spec_rules(previous.spec), _spec_entries(previous.spec)
            old_flows = {flow["key"]: flow["name"] for flow in previous.spec.get("flows", [])}
            summary.rules_changed = sum(
                1 for key in rules.keys() | old_rules.keys() if rules.get(key) != old_rules.get(key)
            )
            summary.entries_added = len(entries - old_entries)
            summary.flows_added = [name for key, name in flows.items() if key not in old_flows]
            summary.flows_removed = [name for key, name in old_flows.items() if key not in flows]
        summaries.append(summary)
        previous = version
    return summaries[::-1]


# --- Which client runs which version ------------------------------------------------------------


@dataclass
class DeploymentRow:
    deployment: TemplateDeployment
    client: Client
    offered: int
    running: int | None  # None: the client has not installed it (connected its systems) yet
    unavailable: bool = False  # the client's schema could not be read

    @property
    def installed(self) -> bool:
        return self.running is not None

    def behind(self, latest: int) -> bool:
        return self.installed and self.running < latest

    @property
    def state(self) -> str:
        """What the client has of the template, in a few words: "runs v1", "runs v1 · offered v2", "offered v2"."""
        if not self.installed:
            return f"offered v{self.offered}"
        return f"runs v{self.running}" + (f" · offered v{self.offered}" if self.offered != self.running else "")


def deployment_rows(template: IntegrationTemplate, clients: QuerySet[Client]) -> list[DeploymentRow]:
    """For each client of `clients` the template is deployed to: the version offered and the one it runs."""
    from integrations.partner_templates.workspace import template_installed_version

    key = install_key(template)
    rows = []
    deployments = template.deployments.filter(client__in=clients).select_related("client", "version")
    for deployment in deployments.order_by("client__name"):
        row = DeploymentRow(
            deployment=deployment, client=deployment.client, offered=deployment.version.number, running=None
        )
        try:
            with tenant_context(deployment.client):
                row.running = template_installed_version(key=key)
        except DatabaseError:
            logger.exception("Could not read template versions of %s", deployment.client.schema_name)
            row.unavailable = True
        rows.append(row)
    return rows
