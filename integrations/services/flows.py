"""Flows: install a packaged template, pause, resume, schedule. Configuration changes are audited."""

from __future__ import annotations

from django.db import connection as db
from django.db import transaction

from integrations.catalog import TEMPLATES, Template
from integrations.models import Connection, Flow, FlowStep, Mapping, MappingRule, ValueMap, ValueMapEntry
from integrations.services.audit import audit_record


class FlowConfigurationError(Exception):
    """The flow cannot be set up as asked; the message says what to change."""


def _plan_check(resource: str, current: int) -> None:
    client = getattr(db, "tenant", None)
    try:
        from tenants.plans import plan_limit_check
    except ImportError:  # plans arrive with the partner console
        return
    if client is not None and getattr(client, "pk", None):
        plan_limit_check(client=client, resource=resource, current_count=current)


def _mapping(name: str, rules: list) -> Mapping:
    mapping = Mapping.objects.create(name=name)
    MappingRule.objects.bulk_create(
        MappingRule(
            mapping=mapping,
            order=index,
            target=target,
            sources=list(sources),
            transforms=list(transforms),
            required=required,
            label=label,
        )
        for index, (target, sources, transforms, required, label) in enumerate(rules)
    )
    return mapping


@transaction.atomic
def template_install(
    *, connections: dict[str, Connection], key: str = "", template: Template | None = None, actor=None
) -> list[Flow]:
    """Create the template's value maps (keeping existing entries), flows, mappings and schedules.

    `key` names a packaged template; `template` is any Template, such as a version of a partner's
    own template (tenants.template_services) offered to this client.
    """
    template = template or TEMPLATES[key]
    for role, (vendors, label) in template.connections.items():
        connection = connections.get(role)
        if connection is None:
            raise FlowConfigurationError(f"Choose a connection for {label}.")
        if connection.vendor not in vendors:
            raise FlowConfigurationError(
                f"{label} must be a {' or '.join(vendors)} connection, not {connection.vendor}."
            )
    # Reference flows (no target steps) only read into the canonical store and are not counted.
    new_main = [
        spec
        for spec in template.flows
        if spec.steps and not Flow.objects.filter(template_key=f"{template.key}/{spec.key}").exists()
    ]
    if new_main:
        _plan_check("flows", Flow.objects.filter(steps__isnull=False).distinct().count() + len(new_main) - 1)
    for value_map_key, name, description, entries in template.value_maps:
        value_map, _ = ValueMap.objects.get_or_create(
            key=value_map_key, defaults={"name": name, "description": description}
        )
        for source, target in entries:
            ValueMapEntry.objects.get_or_create(
                value_map=value_map, source_value=source, defaults={"target_value": target}
            )
    installed: dict[str, Flow] = {}
    for spec in template.flows:
        existing = Flow.objects.filter(template_key=f"{template.key}/{spec.key}").first()
        if existing:
            installed[spec.key] = existing
            continue
        flow = Flow.objects.create(
            name=spec.name,
            template_key=f"{template.key}/{spec.key}",
            template_version=template.version,
            source_connection=connections[spec.source],
            source_object=spec.object,
            source_filter=spec.source_filter,
            entity=spec.entity,
            inbound_mapping=_mapping(f"{spec.name}: {connections[spec.source].name} → canonical", spec.rules),
            trigger=spec.trigger,
            schedule_minutes=spec.schedule_minutes,
        )
        for order, step in enumerate(spec.steps):
            target = connections.get(step.target) if step.target else None
            FlowStep.objects.create(
                flow=flow,
                order=order,
                name=step.name,
                action=step.action,
                entity=step.entity,
                target_connection=target,
                target_object=step.object,
                outbound_mapping=_mapping(f"{spec.name}: {step.name}", step.rules) if step.rules else None,
            )
        flow.prerequisites.set([installed[key] for key in spec.prerequisites])
        installed[spec.key] = flow
        flow_schedule_sync(flow=flow)
    audit_record(
        actor=actor,
        action="template.installed",
        target_type="template",
        target_id=template.key,
        summary=f"Installed “{template.name}” v{template.version}"
        + (f" from {template.publisher}" if template.publisher else ""),
        after={
            "flows": [f.name for f in installed.values()],
            "connections": {role: c.name for role, c in connections.items()},
        },
    )
    return list(installed.values())


def flow_schedule_sync(*, flow: Flow) -> None:
    """Keep the flow's beat entry in step with its schedule and state (runs in the client's schema)."""
    client = getattr(db, "tenant", None)
    if client is None or not getattr(client, "pk", None):
        return
    from django_celery_beat.models import PeriodicTask

    from tenants.services import client_periodic_task_upsert

    name = f"flow-{flow.pk}"
    if flow.schedule_minutes and flow.enabled and not flow.dependents.exists():
        client_periodic_task_upsert(
            client=client,
            name=name,
            task="integrations.tasks.flow_scheduled",
            every_seconds=flow.schedule_minutes * 60,
            kwargs={"flow_id": flow.pk},
        )
    else:
        PeriodicTask.objects.filter(name=f"{client.schema_name}:{name}").update(enabled=False)


@transaction.atomic
def flow_set_enabled(*, flow: Flow, enabled: bool, actor=None) -> Flow:
    before = {"enabled": flow.enabled}
    flow.enabled = enabled
    flow.save(update_fields=["enabled"])
    flow_schedule_sync(flow=flow)
    audit_record(
        actor=actor,
        action="flow.resumed" if enabled else "flow.paused",
        target_type="flow",
        target_id=flow.pk,
        summary=f"{'Resumed' if enabled else 'Paused'} “{flow.name}”",
        before=before,
        after={"enabled": enabled},
    )
    return flow
