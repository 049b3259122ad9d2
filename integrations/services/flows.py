"""Flows: install a packaged template or build one by hand, pause, resume, schedule; changes are audited."""

from __future__ import annotations

from django.db import connection as db
from django.db import transaction
from django_tenants.utils import tenant_context

from connectors.base import Connector
from connectors.registry import CONNECTORS
from integrations.catalog import TEMPLATES, Template, reference_spec
from integrations.engine.entities import ENTITIES
from integrations.models import Connection, Flow, FlowStep, Mapping, MappingRule, ValueMap, ValueMapEntry
from integrations.selectors.workspace import flows_counted_by_plan
from integrations.services.audit import audit_record
from integrations.services.locks import workspace_lock
from tenants.services.schedules import client_periodic_task_disable, client_periodic_task_upsert


class FlowConfigurationError(Exception):
    """The flow cannot be set up as asked; the message says what to change."""


def _plan_check(resource: str, current: int) -> None:
    from tenants.plans import plan_limit_check

    client = getattr(db, "tenant", None)
    if client is not None and getattr(client, "pk", None):
        plan_limit_check(client=client, resource=resource, current_count=current)


def _rules_write(mapping: Mapping, rules: list) -> None:
    """Add `rules` (target, sources, transforms, required, label) to `mapping`, in order."""
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


def mapping_name(text: str) -> str:
    """`text` cut to fit Mapping.name: names built from a flow's and a connection's (120 characters
    each) would not fit otherwise, and the install would fail on the database's length check."""
    limit = Mapping._meta.get_field("name").max_length
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _mapping(name: str, rules: list) -> Mapping:
    mapping = Mapping.objects.create(name=mapping_name(name))
    _rules_write(mapping, rules)
    return mapping


def value_maps_merge(*, template: Template) -> None:
    """Create the template's value maps and add its entries, keeping every entry already there."""
    for value_map_key, name, description, entries in template.value_maps:
        value_map, _ = ValueMap.objects.get_or_create(
            key=value_map_key, defaults={"name": name, "description": description}
        )
        for source, target in entries:
            ValueMapEntry.objects.get_or_create(
                value_map=value_map, source_value=source, defaults={"target_value": target}
            )


@transaction.atomic
def template_install(
    *, connections: dict[str, Connection], key: str = "", template: Template | None = None, actor=None
) -> list[Flow]:
    """Create the template's value maps (keeping existing entries), flows, mappings and schedules.

    `key` names a packaged template; `template` is any Template, such as a version of a partner's
    own template (integrations.partner_templates.services) offered to this client.
    """
    template = template or TEMPLATES[key]
    # Two installs or upgrades of one template at once (a double-submitted form, two admins) would
    # both create its flows: the second waits here, then finds them installed.
    workspace_lock(f"template:{template.key}")
    for role, (vendors, label) in template.connections.items():
        connection = connections.get(role)
        if connection is None:
            raise FlowConfigurationError(f"Choose a connection for {label}.")
        if connection.vendor not in vendors:
            names = " or ".join(CONNECTORS[v].label if v in CONNECTORS else v for v in vendors)
            raise FlowConfigurationError(f"{label} must be a {names} connection, not {connection.vendor}.")
    environments = {connection.environment for connection in connections.values()}
    if len(environments) > 1:
        raise FlowConfigurationError("Choose connections of one environment: all Sandbox or all Production.")
    elsewhere = (
        Flow.objects.filter(template_key__startswith=f"{template.key}/").exclude(environment__in=environments).first()
    )
    if elsewhere is not None:
        # A template's flow keys are unique in the workspace: the other environment's copy reaches Production
        # by promotion, which shows what changes first.
        raise FlowConfigurationError(
            f"“{template.name}” is installed in {elsewhere.get_environment_display()} already:"
            " promote its flows from Sandbox instead."
        )
    # A packaged template names roles; the connections chosen say which vendors' mappings it installs.
    template = template.for_vendors({role: connection.vendor for role, connection in connections.items()})
    # Reference flows (no target steps) only read into the canonical store and are not counted.
    workspace_lock("flows")
    new_main = [
        spec
        for spec in template.flows
        if spec.steps and not Flow.objects.filter(template_key=f"{template.key}/{spec.key}").exists()
    ]
    if new_main:
        _plan_check("flows", flows_counted_by_plan(*environments) + len(new_main) - 1)
    value_maps_merge(template=template)
    installed: dict[str, Flow] = {}
    for spec in template.flows:
        existing = Flow.objects.filter(template_key=f"{template.key}/{spec.key}").first()
        if existing is None and not spec.steps:
            # A reference flow reading the same records is shared: two would read every record twice and
            # raise a duplicate in that system twice.
            existing = reference_flow_of(
                connection=connections[spec.source], object_name=spec.object, entity=spec.entity
            )
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
            environment=connections[spec.source].environment,
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
                template_step=step.name,
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


def reference_flow_of(*, connection: Connection, object_name: str, entity: str) -> Flow | None:
    """The flow that reads `object_name` of `connection` into `entity` records and writes nowhere, if any."""
    return (
        Flow.objects.filter(source_connection=connection, source_object=object_name, entity=entity, steps__isnull=True)
        .order_by("pk")
        .first()
    )


def reference_flow_ensure(*, connection: Connection, object_name: str, entity: str) -> Flow | None:
    """The reference flow reading what `connection` holds of `object_name`, installed now if a profile knows
    how and none exists: before a flow creates records somewhere, it links the ones already there."""
    existing = reference_flow_of(connection=connection, object_name=object_name, entity=entity)
    if existing is not None:
        return existing
    spec = reference_spec(vendor=connection.vendor, object_name=object_name, entity=entity)
    if spec is None:
        return None
    return Flow.objects.create(
        name=spec.name,
        source_connection=connection,
        source_object=spec.object,
        source_filter=spec.source_filter,
        entity=spec.entity,
        inbound_mapping=_mapping(f"{spec.name}: {connection.name} → canonical"[:120], spec.rules),
        trigger=Flow.Trigger.MANUAL,
        environment=connection.environment,
    )


def flow_schedule_sync(*, flow: Flow) -> None:
    """Keep the flow's beat entry in step with its schedule and state (runs in the client's schema)."""
    client = getattr(db, "tenant", None)
    if client is None or not getattr(client, "pk", None):
        return
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
        client_periodic_task_disable(client=client, name=name)


def flows_schedules_restore(sender, *, client, **_) -> None:
    """Receives tenants' `client_resumed`: each flow's beat entry back on or off by the flow's own state."""
    with tenant_context(client):
        for flow in Flow.objects.all():
            flow_schedule_sync(flow=flow)


@transaction.atomic
def flow_match_keys_set(*, flow: Flow, chosen: dict[str, list[str]], actor=None) -> Flow:
    """How the flow recognises records other systems hold already, per entity (audited).

    At least one key per entity: a flow that matched on nothing would create every record again.
    """
    from integrations.engine.entities import match_keys_for

    cleaned: dict[str, list[str]] = {}
    for entity, names in chosen.items():
        spec = ENTITIES.get(entity)
        if spec is None or not spec.match_keys:
            continue
        names = [name for name in names if name in spec.match_keys]
        if not names:
            raise FlowConfigurationError(
                f"Choose at least one way to recognise a {spec.label.lower()}: without one, every "
                f"{spec.label.lower()} would be created again in the other systems."
            )
        cleaned[entity] = names
    before = {entity: [k.field for k in match_keys_for(entity, flow.match_keys)] for entity in cleaned}
    flow.match_keys = {**(flow.match_keys or {}), **cleaned}
    flow.save(update_fields=["match_keys"])
    audit_record(
        actor=actor,
        action="flow.match_keys_set",
        target_type="flow",
        target_id=flow.pk,
        summary=f"“{flow.name}” recognises "
        + "; ".join(
            f"{ENTITIES[entity].label.lower()}s by {', '.join(ENTITIES[entity].match_keys[n].label.lower() for n in names)}"
            for entity, names in cleaned.items()
        ),
        before=before,
        after=cleaned,
    )
    return flow


@transaction.atomic
def flow_webhook_rotate(*, flow: Flow, actor=None) -> Flow:
    """Give the flow a new webhook address; the old one is refused from now on."""
    import secrets

    flow.webhook_token = secrets.token_urlsafe()
    flow.save(update_fields=["webhook_token"])
    audit_record(
        actor=actor,
        action="flow.webhook_rotated",
        target_type="flow",
        target_id=flow.pk,
        summary=f"Gave “{flow.name}” a new webhook address",
    )
    return flow


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


# --- Flows built by hand -----------------------------------------------------------------------------


def _object_of(connection: Connection, object_name: str, *, write: bool):
    """The connector class and object spec, or why the connection cannot read (write) that object."""
    cls = CONNECTORS.get(connection.vendor)
    if cls is None:
        raise FlowConfigurationError(f"“{connection.name}” has no connector in this portal.")
    spec = cls.objects.get(object_name)
    if spec is None or not (spec.writable if write else spec.readable):
        usable = [s.label.lower() for s in cls.objects.values() if (s.writable if write else s.readable)]
        verb = "write" if write else "read"
        raise FlowConfigurationError(
            f"{cls.label} cannot {verb} “{object_name}”"
            + (f"; it can {verb} {', '.join(usable)}." if usable else f"; it {verb}s nothing.")
        )
    return cls, spec


def _same_environment(source: Connection, target: Connection) -> None:
    """A Sandbox flow writes only to Sandbox systems, a Production flow only to Production ones."""
    if target.environment != source.environment:
        raise FlowConfigurationError(
            f"“{target.name}” is a {target.get_environment_display()} connection and this flow runs in"
            f" {source.get_environment_display()}: choose a {source.get_environment_display()} connection."
        )


def sends_webhooks(cls) -> bool:
    """Whether the vendor's connector verifies inbound webhooks (so a flow can be started by them)."""
    return getattr(cls.verify_webhook, "__func__", None) is not getattr(Connector.verify_webhook, "__func__", None)


def _min_interval_check(schedule_minutes: int) -> None:
    client = getattr(db, "tenant", None)
    if client is None or not getattr(client, "pk", None):
        return
    from tenants.plans import PlanLimitReached, plan_min_interval_check

    try:
        plan_min_interval_check(client=client, interval_minutes=schedule_minutes)
    except PlanLimitReached as refused:
        raise FlowConfigurationError(refused.message) from refused


def _step_create(*, flow: Flow, target_connection: Connection, target_object: str, entity: str) -> FlowStep:
    cls, spec = _object_of(target_connection, target_object, write=True)
    name = f"{ENTITIES[entity].label} in {target_connection.name}"
    last = flow.steps.order_by("-order").values_list("order", flat=True).first()
    reference = reference_flow_ensure(connection=target_connection, object_name=target_object, entity=entity)
    if reference is not None and reference.pk != flow.pk:
        flow.prerequisites.add(reference)
    return FlowStep.objects.create(
        flow=flow,
        order=0 if last is None else last + 1,
        name=name[:120],
        action=FlowStep.Action.WRITE,
        entity=entity,
        target_connection=target_connection,
        target_object=target_object,
        outbound_mapping=Mapping.objects.create(name=mapping_name(f"{flow.name}: {name}")),
    )


@transaction.atomic
def flow_create(
    *,
    name: str,
    source_connection: Connection,
    source_object: str,
    entity: str,
    target_connection: Connection | None = None,
    target_object: str = "",
    schedule_minutes: int | None = None,
    trigger: str | None = None,
    actor=None,
) -> Flow:
    """A flow built by hand: empty inbound (and outbound) mappings whose rules the mapping editor adds.

    Raises FlowConfigurationError for a choice that cannot work, PlanLimitReached past the plan's flows.
    """
    name = (name or "").strip()
    if not name:
        raise FlowConfigurationError("Name the flow.")
    # A flow runs where its source is: built on a Sandbox connection, it is a Sandbox flow.
    environment = source_connection.environment
    if Flow.objects.filter(name__iexact=name, environment=environment).exists():
        raise FlowConfigurationError(f"A flow named “{name}” already exists; choose another name.")
    source_cls, source_spec = _object_of(source_connection, source_object, write=False)
    if entity not in ENTITIES:
        raise FlowConfigurationError("Choose what the records become in your workspace.")
    if target_connection is None and target_object:
        raise FlowConfigurationError(f"Choose the connection to write {target_object} to.")
    if target_connection is not None:
        _object_of(target_connection, target_object, write=True)
        _same_environment(source_connection, target_connection)
    trigger = trigger or (Flow.Trigger.SCHEDULE if schedule_minutes else Flow.Trigger.MANUAL)
    if trigger not in Flow.Trigger.values:
        raise FlowConfigurationError("Choose how the flow starts.")
    if trigger == Flow.Trigger.MANUAL:
        schedule_minutes = None
    elif trigger == Flow.Trigger.SCHEDULE and not schedule_minutes:
        raise FlowConfigurationError("Choose how often it runs, or let it run only by hand.")
    elif trigger == Flow.Trigger.WEBHOOK and not sends_webhooks(source_cls):
        raise FlowConfigurationError(f"{source_cls.label} sends no webhooks: run the flow on a schedule or by hand.")
    if schedule_minutes:
        _min_interval_check(schedule_minutes)
    workspace_lock("flows")
    _plan_check("flows", flows_counted_by_plan(environment))
    flow = Flow.objects.create(
        name=name,
        source_connection=source_connection,
        source_object=source_object,
        entity=entity,
        inbound_mapping=Mapping.objects.create(name=mapping_name(f"{name}: {source_connection.name} → canonical")),
        trigger=trigger,
        schedule_minutes=schedule_minutes,
        environment=environment,
    )
    step = None
    if target_connection is not None:
        step = _step_create(flow=flow, target_connection=target_connection, target_object=target_object, entity=entity)
    flow_schedule_sync(flow=flow)
    audit_record(
        actor=actor,
        action="flow.created",
        target_type="flow",
        target_id=flow.pk,
        summary=f"Built “{name}”: {source_connection.name} {source_spec.label.lower()} → {ENTITIES[entity].label}"
        + (f" → {target_connection.name} {target_object}" if step else ""),
        after={
            "source": {"connection": source_connection.name, "object": source_object},
            "entity": entity,
            "target": {"connection": target_connection.name, "object": target_object} if step else None,
            "trigger": trigger,
            "schedule_minutes": schedule_minutes,
            "environment": environment,
        },
    )
    return flow


@transaction.atomic
def flow_step_add(
    *, flow: Flow, target_connection: Connection, target_object: str, entity: str | None = None, actor=None
) -> FlowStep:
    """One more target for a flow's records, with an empty outbound mapping to fill in (runs skip
    the target until that mapping has rules).

    Raises PlanLimitReached when the target makes a template's reference flow count past the plan's flows.
    """
    entity = entity or flow.entity
    if entity not in ENTITIES:
        raise FlowConfigurationError("Choose which records to write.")
    _same_environment(flow.source_connection, target_connection)
    if flow.steps.filter(target_connection=target_connection, target_object=target_object, entity=entity).exists():
        raise FlowConfigurationError(f"“{flow.name}” already writes to {target_connection.name} {target_object}.")
    workspace_lock("flows")
    if flow.template_key and not flow.steps.exists():
        # A template's reference flow is free while it only reads; with a target it counts.
        _plan_check("flows", flows_counted_by_plan(flow.environment))
    step = _step_create(flow=flow, target_connection=target_connection, target_object=target_object, entity=entity)
    audit_record(
        actor=actor,
        action="flow.step_added",
        target_type="flow",
        target_id=flow.pk,
        summary=f"“{flow.name}” now writes {ENTITIES[entity].label.lower()} records to "
        f"{target_connection.name} {target_object}",
        after={"step": step.name, "connection": target_connection.name, "object": target_object, "entity": entity},
    )
    return step
