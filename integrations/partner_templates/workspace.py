"""A partner's own templates inside one client schema: capture a flow as template data, upgrade in place.

Both run in the current client schema; `partner_templates.services` chooses the schema and keeps the
public records (templates, versions, deployments). Promoting a sandbox flow to Production uses them too.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import Count, Max

from connectors.registry import CONNECTORS
from integrations.catalog import FlowSpec, StepSpec, Template
from integrations.models import (
    Connection,
    Flow,
    FlowStep,
    Mapping,
    MappingRule,
    SyncRun,
    ValueMap,
    ValueMapEntry,
)
from integrations.selectors.labels import CATEGORY_LABELS
from integrations.services.audit import audit_record
from integrations.services.flows import (
    FlowConfigurationError,
    _mapping,
    _rules_write,
    flow_schedule_sync,
    template_install,
    value_maps_merge,
)
from integrations.services.locks import workspace_lock


def template_flow_choices() -> list[Flow]:
    """Flows that can be saved as a template: those that write somewhere (reference flows come along)."""
    return list(
        Flow.objects.filter(steps__isnull=False).distinct().select_related("source_connection").order_by("name")
    )


def _rules(mapping: Mapping | None) -> list[tuple]:
    if mapping is None:
        return []
    return [
        (rule.target, list(rule.sources), list(rule.transforms), rule.required, rule.label)
        for rule in mapping.rules.all()
    ]


def _same_shape(rules: list) -> list[tuple]:
    """Rules as `_rules` reads them, so a template's rules compare equal to the ones installed from them."""
    return [
        (target, list(sources), list(transforms), bool(required), label or "")
        for target, sources, transforms, required, label in rules
    ]


def _flow_key(flow: Flow) -> str:
    # A flow installed from a template keeps that template's key, so saving again from any client
    # that runs it gives the same keys, and upgrades find the flows they replace.
    if flow.template_key and "/" in flow.template_key:
        return flow.template_key.rsplit("/", 1)[1]
    return f"flow-{flow.pk}"


def _with_prerequisites(flow: Flow) -> list[Flow]:
    """The flow after every flow it needs, each once, prerequisites first."""
    ordered: list[Flow] = []
    seen: set[int] = set()

    def visit(current: Flow) -> None:
        if current.pk in seen:
            return
        seen.add(current.pk)
        for prerequisite in current.prerequisites.select_related("source_connection", "inbound_mapping"):
            visit(prerequisite)
        ordered.append(current)

    visit(flow)
    return ordered


def template_capture(
    *, flow: Flow, without_entries: frozenset[str] | set[str] = frozenset(), roles_out: dict | None = None
) -> dict:
    """`flow`, the flows it needs, their rules and steps and the value maps they look up, as template data.

    One role per connection the flows use, accepting that connection's vendor. Connections and
    credentials are never part of it, nor step options (notification recipients are people of
    this client). The value maps keyed in `without_entries` come along empty: their entries are
    this client's data (its project codes, say), which every client installing the template would get.
    `roles_out`, when given, receives the connection that plays each role (a promotion binds them anew).
    """
    flows = _with_prerequisites(flow)
    roles: dict[int, str] = {}
    connections: dict[str, tuple] = {}

    def role_of(connection: Connection) -> str:
        if connection.pk not in roles:
            category = getattr(CONNECTORS.get(connection.vendor), "category", "") or connection.vendor
            role, number = category, 1
            while role in connections:
                number += 1
                role = f"{category}-{number}"
            label = CATEGORY_LABELS.get(category, category.title()) + (f" {number}" if number > 1 else "")
            roles[connection.pk] = role
            connections[role] = ((connection.vendor,), label)
            if roles_out is not None:
                roles_out[role] = connection
        return roles[connection.pk]

    keys = {current.pk: _flow_key(current) for current in flows}
    specs = []
    for current in flows:
        source = role_of(current.source_connection)
        steps = [
            StepSpec(
                name=step.name,
                entity=step.entity,
                target=role_of(step.target_connection) if step.target_connection else "",
                object=step.target_object,
                action=step.action,
                rules=_rules(step.outbound_mapping),
            )
            for step in current.steps.select_related("target_connection", "outbound_mapping")
        ]
        specs.append(
            FlowSpec(
                key=keys[current.pk],
                name=current.name,
                source=source,
                object=current.source_object,
                entity=current.entity,
                rules=_rules(current.inbound_mapping),
                steps=steps,
                source_filter=dict(current.source_filter or {}),
                schedule_minutes=current.schedule_minutes,
                trigger=current.trigger,
                prerequisites=tuple(keys[p.pk] for p in current.prerequisites.all() if p.pk in keys),
            )
        )
    looked_up = {
        transform.get("value_map")
        for spec in specs
        for rules in [spec.rules, *[step.rules for step in spec.steps]]
        for _, _, transforms, _, _ in rules
        for transform in transforms
        if transform.get("name") == "lookup"
    }
    value_maps = [
        (
            vm.key,
            vm.name,
            vm.description,
            [] if vm.key in without_entries else [(e.source_value, e.target_value) for e in vm.entries.all()],
        )
        for vm in ValueMap.objects.filter(key__in=looked_up).prefetch_related("entries").order_by("key")
    ]
    template = Template(
        key="capture",
        name=flow.name,
        summary="",
        version=0,
        connections=connections,
        value_maps=value_maps,
        flows=specs,
    )
    return template.to_spec()


def template_value_maps(*, flow: Flow) -> list[ValueMap]:
    """The value maps a template saved from `flow` carries, each with `entry_count`, by key."""
    keys = [value_map["key"] for value_map in template_capture(flow=flow)["value_maps"]]
    return list(ValueMap.objects.filter(key__in=keys).annotate(entry_count=Count("entries")).order_by("key"))


def template_installed_version(*, key: str) -> int | None:
    """The version of template `key` this client runs, or None when it has not installed it."""
    return Flow.objects.filter(template_key__startswith=f"{key}/").aggregate(v=Max("template_version"))["v"]


@dataclass
class UpgradeResult:
    from_version: int | None
    to_version: int
    flows_updated: list[str] = field(default_factory=list)
    flows_added: list[str] = field(default_factory=list)
    flows_detached: list[str] = field(default_factory=list)
    rules_changed: int = 0
    entries_added: int = 0
    kept: list[str] = field(default_factory=list)  # mappings the client changed, left as the client made them
    replaced: list[dict] = field(default_factory=list)  # the rules the upgrade took out, for the audit row

    @property
    def summary(self) -> str:
        parts = [f"{self.rules_changed} rule{'s' if self.rules_changed != 1 else ''} changed"]
        if self.kept:
            parts.append("kept your changes to " + ", ".join(f"“{name}”" for name in self.kept))
        if self.flows_added:
            parts.append(f"{len(self.flows_added)} flow{'s' if len(self.flows_added) != 1 else ''} added")
        if self.flows_detached:
            parts.append(f"{len(self.flows_detached)} flow{'s' if len(self.flows_detached) != 1 else ''} kept as own")
        if self.entries_added:
            parts.append(f"{self.entries_added} value-map entr{'ies' if self.entries_added != 1 else 'y'} added")
        return ", ".join(parts)


def _rules_upgrade(mapping: Mapping, *, installed: list | None, rules: list, result: UpgradeResult) -> bool:
    """Give `mapping` the version's `rules`, unless the client changed it since it was installed.

    `installed` holds the rules of the version the client installed (None when that version is not
    known: then the version's rules win). A mapping the client changed keeps the client's rules,
    and is reported when the version would have changed it too. Rules taken out go to `result.replaced`.
    Returns False when the client's rules stay.
    """
    current, rules = _rules(mapping), _same_shape(rules)
    if current == rules:
        return True
    if installed is not None and current != _same_shape(installed):
        if rules != _same_shape(installed):
            result.kept.append(mapping.name)
        return False
    before, after = {rule[0]: rule for rule in current}, {rule[0]: rule for rule in rules}
    result.rules_changed += sum(1 for target in before.keys() | after.keys() if before.get(target) != after.get(target))
    result.replaced.append(
        {"mapping": mapping.name, "mapping_id": mapping.pk, "rules": [list(rule) for rule in current]}
    )
    MappingRule.objects.filter(mapping=mapping).delete()
    _rules_write(mapping, rules)
    return True


def _connections_by_role(template: Template, installed: dict[str, Flow]) -> dict[str, Connection]:
    """The connection that plays each role: the one the client chose when it installed the flows."""
    chosen: dict[str, Connection] = {}
    for spec in template.flows:
        flow = installed.get(spec.key)
        if flow is None:
            continue
        chosen.setdefault(spec.source, flow.source_connection)
        steps: dict[str, FlowStep] = {}
        for step in flow.steps.select_related("target_connection"):
            if step.template_step:
                steps[step.template_step] = step
            else:  # installed before steps were marked; a marked step of the same name wins
                steps.setdefault(step.name, step)
        for step in spec.steps:
            existing = steps.get(step.name)
            if step.target and existing is not None and existing.target_connection is not None:
                chosen.setdefault(step.target, existing.target_connection)
    for role, (vendors, label) in template.connections.items():
        if role in chosen:
            continue
        # A role new in this version: the client's only connection of that vendor, if it has exactly one.
        candidates = list(Connection.objects.filter(vendor__in=vendors)[:2])
        if len(candidates) != 1:
            vendor_names = " or ".join(CONNECTORS[v].label if v in CONNECTORS else v for v in vendors)
            raise FlowConfigurationError(
                f"Version {template.version} also needs {label} ({vendor_names}): connect one in this workspace first."
            )
        chosen[role] = candidates[0]
    return chosen


@transaction.atomic
def template_upgrade(*, template: Template, versions: dict[int, Template] | None = None, actor=None) -> UpgradeResult:
    """Move this client's installed flows of `template` to its version, in place.

    `versions` are the template's versions by number: a mapping the client changed since the
    version it installed keeps the client's rules (and the result says so); the others take the
    version's, and the rules they lose are kept in the audit row. Steps the template brought follow
    the version but keep the client's chosen connections (and a notify step's recipients); targets
    the client added itself stay as they are. Value maps gain the version's new entries and keep
    the client's own; cursors, schedules, pause state and run history stay. Flows the version no
    longer has are kept as the client's own flows. An upgrade to the version the flows run already
    changes nothing.
    """
    versions = versions or {}
    prefix = f"{template.key}/"
    # A second upgrade or install of the template at once waits here, then finds this one's work done.
    workspace_lock(f"template:{template.key}")
    # run_start locks the flow before it queues a run: with the flows locked, none is queued
    # between the check below and the rewrite.
    installed = {
        flow.template_key.removeprefix(prefix): flow
        for flow in Flow.objects.select_for_update(of=("self",))
        .filter(template_key__startswith=prefix)
        .select_related("source_connection", "inbound_mapping")
    }
    if not installed:
        raise FlowConfigurationError(f"“{template.name}” is not installed in this workspace yet.")
    # Reference flows are shared between templates (flows.reference_flow_of): one another template
    # installed first counts as this template's too.
    for flow in list(installed.values()):
        for prerequisite in flow.prerequisites.select_related("source_connection", "inbound_mapping"):
            installed.setdefault(_flow_key(prerequisite), prerequisite)
    result = UpgradeResult(
        from_version=max((flow.template_version or 0) for flow in installed.values()), to_version=template.version
    )
    if all(flow.template_version == template.version for flow in installed.values()) and all(
        spec.key in installed for spec in template.flows
    ):
        return result
    # A run reads its flow's rules slice by slice; rewriting them mid-run would map one run two ways.
    live = SyncRun.objects.filter(flow__in=installed.values(), status__in=SyncRun.LIVE).select_related("flow").first()
    if live is not None:
        raise FlowConfigurationError(f"“{live.flow.name}” is syncing now; upgrade it when the run has finished.")
    connections = _connections_by_role(template, installed)
    for role, (vendors, label) in template.connections.items():
        if connections[role].vendor not in vendors:
            raise FlowConfigurationError(
                f"Version {template.version} needs {label} to be a {' or '.join(vendors)} connection;"
                f" this workspace uses {connections[role].vendor}."
            )
    before_entries = ValueMapEntry.objects.count()
    if any(spec.key not in installed for spec in template.flows):
        # New flows install the way a first install does: plan limit, value maps, schedules, audit.
        created = template_install(template=template, connections=connections, actor=actor)
        result.flows_added = [flow.name for flow in created if flow.template_key.removeprefix(prefix) not in installed]
    else:
        value_maps_merge(template=template)
    result.entries_added = ValueMapEntry.objects.count() - before_entries
    by_key = {
        flow.template_key.removeprefix(prefix): flow for flow in Flow.objects.filter(template_key__startswith=prefix)
    }
    for key, flow in installed.items():
        by_key.setdefault(key, flow)
    for spec in template.flows:
        flow = installed.get(spec.key)
        if flow is None:
            continue
        was = versions.get(flow.template_version)
        was_spec = next((f for f in was.flows if f.key == spec.key), None) if was is not None else None
        _rules_upgrade(
            flow.inbound_mapping, installed=was_spec.rules if was_spec else None, rules=spec.rules, result=result
        )
        if flow.source_object != spec.object:
            flow.cursor, flow.cursor_updated_at = "", None  # a cursor of another object means nothing here
        flow.name, flow.source_object, flow.entity = spec.name, spec.object, spec.entity
        flow.source_filter = spec.source_filter
        flow.template_version = template.version
        flow.save(
            update_fields=[
                "name",
                "source_object",
                "entity",
                "source_filter",
                "template_version",
                "cursor",
                "cursor_updated_at",
            ]
        )
        _steps_upgrade(flow, spec, was_spec, connections, result)
        flow.prerequisites.set([by_key[key] for key in spec.prerequisites if key in by_key])
        result.flows_updated.append(flow.name)
    for key, flow in installed.items():
        if key not in {spec.key for spec in template.flows}:
            flow.template_key, flow.template_version = "", None
            flow.save(update_fields=["template_key", "template_version"])
            result.flows_detached.append(flow.name)
    for flow in Flow.objects.filter(pk__in=[flow.pk for flow in installed.values()]):
        flow_schedule_sync(flow=flow)
    audit_record(
        actor=actor,
        action="template.upgraded",
        target_type="template",
        target_id=template.key,
        summary=f"Upgraded “{template.name}” from v{result.from_version} to v{template.version}"
        + (f" ({template.publisher})" if template.publisher else "")
        + f": {result.summary}",
        before={"version": result.from_version, "rules": result.replaced},
        after={
            "version": template.version,
            "flows_updated": result.flows_updated,
            "flows_added": result.flows_added,
            "flows_kept_as_own": result.flows_detached,
            "rules_changed": result.rules_changed,
            "kept_client_changes": result.kept,
            "value_map_entries_added": result.entries_added,
        },
    )
    return result


def _steps_upgrade(
    flow: Flow, spec: FlowSpec, was: FlowSpec | None, connections: dict[str, Connection], result: UpgradeResult
) -> None:
    """Make the steps the template brought the version's; the targets the client added stay, after them.

    `was` is the flow as the version the client installed had it (None when not known).
    """
    steps = list(flow.steps.select_related("outbound_mapping"))
    if not any(step.template_step for step in steps):
        # Installed before steps were marked: the template's are those named as in the version installed.
        names = {step_spec.name for step_spec in (was or spec).steps}
        for step in steps:
            if step.name in names:
                step.template_step = step.name
                names.discard(step.name)
    ours = {step.template_step: step for step in steps if step.template_step}
    installed_rules = {step_spec.name: step_spec.rules for step_spec in was.steps} if was is not None else {}
    for order, step_spec in enumerate(spec.steps):
        step = ours.pop(step_spec.name, None) or FlowStep(flow=flow, template_step=step_spec.name)
        step.order, step.name, step.action, step.entity = order, step_spec.name, step_spec.action, step_spec.entity
        step.target_connection = connections.get(step_spec.target) if step_spec.target else None
        step.target_object = step_spec.object
        installed = installed_rules.get(step_spec.name)
        if step_spec.rules and step.outbound_mapping is None:
            step.outbound_mapping = _mapping(f"{spec.name}: {step_spec.name}", step_spec.rules)
            result.rules_changed += len(step_spec.rules)
        elif step.outbound_mapping is not None:
            keeps_own = not _rules_upgrade(
                step.outbound_mapping, installed=installed, rules=step_spec.rules, result=result
            )
            if not step_spec.rules and not keeps_own:
                old, step.outbound_mapping = step.outbound_mapping, None
                step.save()
                old.delete()
        step.save()
    for step in ours.values():  # the version no longer has it
        mapping = step.outbound_mapping
        if mapping is not None and not _rules_upgrade(
            mapping, installed=installed_rules.get(step.template_step), rules=[], result=result
        ):
            step.template_step = ""  # the client changed what it writes: it stays, as the client's own
            step.save(update_fields=["template_step"])
            continue
        step.delete()
        if mapping is not None:
            mapping.delete()
    next_order = len(spec.steps)
    for step in flow.steps.filter(template_step="").order_by("order", "pk"):
        if step.order < next_order:
            step.order = next_order
            step.save(update_fields=["order"])
        next_order = step.order + 1
