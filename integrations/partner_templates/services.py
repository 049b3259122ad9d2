"""A partner's integration templates: save a client's flow as a version, deploy it, upgrade clients.

The public schema keeps templates, versions and deployments; each client's flows change only in
its own schema, through `workspace` (capture, upgrade) and integrations.services.flows (install),
audited there.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.text import slugify
from django_tenants.utils import tenant_context

from integrations.catalog import PARTNER_TEMPLATE_PREFIX
from integrations.partner_templates.selectors import install_key, template_for
from integrations.partner_templates.workspace import UpgradeResult, template_capture, template_installed_version
from integrations.partner_templates.workspace import template_upgrade as schema_template_upgrade
from integrations.services.audit import audit_record
from integrations.services.flows import FlowConfigurationError, template_install
from tenants.models import (
    Client,
    IntegrationTemplate,
    IntegrationTemplateVersion,
    Partner,
    TemplateDeployment,
    TemplateRollout,
    User,
)
from tenants.plans import PlanLimitReached


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
    without_entries: frozenset[str] | set[str] = frozenset(),
) -> IntegrationTemplateVersion:
    """Save `client`'s flow (with the flows it needs, mappings and looked-up value maps) as a version.

    A new template starts at version 1; saving into an existing one adds the next version.
    Connections and credentials stay in the client's schema. The value maps keyed in
    `without_entries` are saved empty, so `client`'s entries are not offered to every client.
    """
    if client.partner_id != partner.pk or (template is not None and template.partner_id != partner.pk):
        raise TemplateRefused("Save templates from your own clients' flows only.")
    from integrations.models import Flow

    with transaction.atomic(), tenant_context(client):
        flow = Flow.objects.filter(pk=flow_id, steps__isnull=False).distinct().first()
        if flow is None:
            raise TemplateRefused(f"{client.name} has no such flow that writes to a system.")
        spec = template_capture(flow=flow, without_entries=frozenset(without_entries))
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
                after={
                    "flows": [f["name"] for f in spec["flows"]],
                    "value_maps_without_entries": sorted(
                        vm["key"] for vm in spec["value_maps"] if vm["key"] in without_entries
                    ),
                },
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
                _offered_audit(template, version, actor)
    return deployments


def _offered_audit(template: IntegrationTemplate, version: IntegrationTemplateVersion, actor: User) -> None:
    """Tell the current client's audit log it is offered `version`."""
    audit_record(
        actor=actor,
        action="template.offered",
        target_type="template",
        target_id=install_key(template),
        summary=f"{template.partner.name} offered “{template.name}” v{version.number}",
        after={"version": version.number},
    )


def deployment_install(*, client: Client, key: str, connections: dict, actor: User) -> list:
    """`client` installs the partner template offered to it under `key`, at the version offered now.

    The offer stays locked until the flows exist: a withdrawal or deletion at the same instant
    waits and then finds the template installed (and refuses), or goes first and this is refused.
    """
    with transaction.atomic():
        deployment = (
            TemplateDeployment.objects.select_for_update(of=("self",))
            .select_related("version__template__partner")
            .filter(
                client=client,
                template__partner_id=client.partner_id,
                template__key=key.removeprefix(PARTNER_TEMPLATE_PREFIX),
            )
            .first()
        )
        if deployment is None:
            raise FlowConfigurationError("This template is no longer offered to this workspace.")
        with tenant_context(client):
            return template_install(template=template_for(deployment.version), connections=connections, actor=actor)


def template_install_in(*, client: Client, key: str, connections: dict, actor: User) -> list:
    """`client` installs the template `key` it may install (a partner's, at the version offered, or a
    packaged one) with its own connections. FlowConfigurationError when `key` is not one of them."""
    from integrations.partner_templates.selectors import templates_installable

    template = next((t for t in templates_installable(client) if t.key == key), None)
    if template is None:
        raise FlowConfigurationError("This workspace is not offered a template with that key.")
    if template.key.startswith(PARTNER_TEMPLATE_PREFIX):  # installed at the version offered, offer locked
        return deployment_install(client=client, key=template.key, connections=connections, actor=actor)
    with tenant_context(client):
        return template_install(template=template, connections=connections, actor=actor)


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
    client, template = deployment.client, deployment.template
    outcome = UpgradeOutcome(client=client)
    try:
        with transaction.atomic(), tenant_context(client):
            # Locked as an install locks it: a withdrawal at the same instant waits for this.
            if not TemplateDeployment.objects.select_for_update().filter(pk=deployment.pk).first():
                raise TemplateRefused(f"“{template.name}” is no longer offered to {client.name}.")
            if template_installed_version(key=install_key(template)) is not None:
                # Every version, so the upgrade tells the client's own edits from what it installed.
                versions = {
                    each.number: template_for(each) for each in template.versions.select_related("template__partner")
                }
                outcome.result = schema_template_upgrade(template=template_for(version), versions=versions, actor=actor)
            else:
                _offered_audit(template, version, actor)
            deployment.version = version
            deployment.save(update_fields=["version", "updated_at"])
    except (FlowConfigurationError, PlanLimitReached, TemplateRefused) as refused:
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


# --- Upgrade every client, a worker task a client ----------------------------------------------------


def rollout_start(
    *, template: IntegrationTemplate, version: IntegrationTemplateVersion, actor: User
) -> TemplateRollout:
    """“Upgrade all” for a partner with hundreds of clients: a TemplateRollout and, once it is committed, a task
    for each client offered `template` (on the bulk queue). Each task upgrades its client as `deployment_upgrade`
    does, or finds it already there; the rollout counts them and keeps each refusal's words.

    Refused while another rollout of the same template is still going: two would race client by client.
    """
    if version.template_id != template.pk:
        raise TemplateRefused("That version belongs to another template.")
    with transaction.atomic():
        IntegrationTemplate.objects.select_for_update().filter(pk=template.pk).first()
        going = template.rollouts.filter(finished_at=None).select_related("version").first()
        if going is not None:
            raise TemplateRefused(
                f"Every client is already being moved to v{going.version.number} ({going.done} of {going.total} "
                "done): wait for it to finish."
            )
        deployments = list(template.deployments.values_list("pk", flat=True))
        rollout = TemplateRollout.objects.create(
            template=template, version=version, actor=actor, total=len(deployments),
            finished_at=timezone.now() if not deployments else None,
        )  # fmt: skip
        transaction.on_commit(lambda: _rollout_enqueue(rollout.pk, deployments))
    return rollout


def _rollout_enqueue(rollout_id: int, deployments: list[int]) -> None:
    from integrations.tasks import template_rollout_client

    for deployment_id in deployments:
        template_rollout_client.delay(rollout_id, deployment_id)


def rollout_client_upgrade(*, rollout_id: int, deployment_id: int) -> None:
    """One client of a rollout (the task's body): upgraded unless already at the version, then counted once."""
    rollout = TemplateRollout.objects.select_related("template__partner", "version", "actor").get(pk=rollout_id)
    if deployment_id in rollout.handled:
        return  # delivered twice (a worker lost after doing it): already counted
    deployment = (
        TemplateDeployment.objects.select_related("client", "template__partner", "version")
        .filter(pk=deployment_id, template=rollout.template)
        .first()
    )
    upgraded, refusal = False, ""
    if deployment is not None:
        with tenant_context(deployment.client):
            running = template_installed_version(key=install_key(rollout.template))
        behind = deployment.version_id != rollout.version_id or running not in (None, rollout.version.number)
        if behind:
            outcome = deployment_upgrade(deployment=deployment, version=rollout.version, actor=rollout.actor)
            upgraded, refusal = not outcome.refused, outcome.message if outcome.refused else ""
    with transaction.atomic():
        rollout = TemplateRollout.objects.select_for_update().get(pk=rollout_id)
        if deployment_id in rollout.handled:
            return
        rollout.handled.append(deployment_id)
        rollout.upgraded += upgraded
        if refusal:
            rollout.refusals.append(refusal)
        if rollout.done >= rollout.total:
            rollout.finished_at = timezone.now()
        rollout.save(update_fields=["handled", "upgraded", "refusals", "finished_at"])


# --- Rename, withdraw, delete --------------------------------------------------------------------


def _clients_to_tell(template: IntegrationTemplate) -> list[Client]:
    """Clients whose audit log hears of a change to `template`: those offered it and those it was saved from."""
    ids = set(template.deployments.values_list("client_id", flat=True))
    ids |= set(template.versions.exclude(source_client=None).values_list("source_client_id", flat=True))
    return list(Client.objects.filter(pk__in=ids, partner_id=template.partner_id).order_by("name"))


def _audit_in(clients: list[Client], **record) -> None:
    for client in clients:
        with tenant_context(client):
            audit_record(target_type="template", **record)


def template_update(*, template: IntegrationTemplate, name: str, summary: str, actor: User) -> IntegrationTemplate:
    """Rename a template or change what it says it does; clients see the new words on their Flows page at once.

    Installed flows keep their own names: only the template's name and summary change.
    """
    name, summary = (name or "").strip(), (summary or "").strip()
    if not name:
        raise TemplateRefused("Name the template.")
    with transaction.atomic():
        template = IntegrationTemplate.objects.select_related("partner").select_for_update().get(pk=template.pk)
        before = {"name": template.name, "summary": template.summary}
        after = {"name": name, "summary": summary}
        if before == after:
            return template
        template.name, template.summary = name, summary
        template.save(update_fields=["name", "summary"])
        if before["name"] != name:
            summary_line = f"{template.partner.name} renamed template “{before['name']}” to “{name}”"
        else:
            summary_line = f"{template.partner.name} changed what template “{name}” says it does"
        _audit_in(
            _clients_to_tell(template),
            actor=actor,
            action="template.updated",
            target_id=install_key(template),
            summary=summary_line,
            before=before,
            after=after,
        )
    return template


def _installed(deployments) -> list[Client]:
    """The clients of `deployments` (rows locked by the caller) that run the template's flows."""
    running = []
    for deployment in deployments:
        with tenant_context(deployment.client):
            if template_installed_version(key=install_key(deployment.template)) is not None:
                running.append(deployment.client)
    return running


def _names(clients: list[Client]) -> str:
    names = [client.name for client in clients]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def deployment_withdraw(*, deployment: TemplateDeployment, actor: User) -> None:
    """Stop offering a template to a client that has not installed it: its Flows page no longer lists it.

    A client that installed it is refused: those flows run in its workspace as its own, and stay.
    """
    with transaction.atomic():
        deployment = (
            TemplateDeployment.objects.select_for_update()
            .select_related("client", "template__partner", "version")
            .get(pk=deployment.pk)
        )
        template, client = deployment.template, deployment.client
        if _installed([deployment]):
            raise TemplateRefused(
                f"{client.name} has installed “{template.name}”: its flows are its own now and stay."
                " You can upgrade it, not withdraw it."
            )
        deployment.delete()
        _audit_in(
            [client],
            actor=actor,
            action="template.withdrawn",
            target_id=install_key(template),
            summary=f"{template.partner.name} withdrew its offer of “{template.name}” v{deployment.version.number}",
            before={"version": deployment.version.number},
        )


def template_delete(*, template: IntegrationTemplate, actor: User) -> list[Client]:
    """Delete a template no client runs, with its versions and its offers; returns the clients whose offer went.

    Refused, naming them, while any client has it installed.
    """
    with transaction.atomic():
        template = IntegrationTemplate.objects.select_related("partner").select_for_update().get(pk=template.pk)
        deployments = list(
            TemplateDeployment.objects.select_for_update()
            .filter(template=template)
            .select_related("client", "template")
            .order_by("client__name")
        )
        running = _installed(deployments)
        if running:
            raise TemplateRefused(
                f"“{template.name}” cannot be deleted while {_names(running)}"
                f" {'runs' if len(running) == 1 else 'run'} it. Their flows are their own;"
                " once no client runs it, you can delete it."
            )
        told = _clients_to_tell(template)
        offered = [deployment.client for deployment in deployments]
        key, name, partner = install_key(template), template.name, template.partner.name
        TemplateDeployment.objects.filter(pk__in=[deployment.pk for deployment in deployments]).delete()
        template.delete()  # its versions go with it
        for client in told:
            _audit_in(
                [client],
                actor=actor,
                action="template.deleted",
                target_id=key,
                summary=f"{partner} deleted template “{name}”"
                + ("; it is no longer offered here" if client in offered else ""),
            )
    return offered
