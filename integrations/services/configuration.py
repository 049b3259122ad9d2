"""Flow configuration people change in the browser: mapping rules, schedules, value-map entries.

Additive to integrations.services.flows (same conventions: keyword-only, one transaction, audited).
"""

from __future__ import annotations

from django.db import connection as db
from django.db import transaction

from integrations.engine.mapping import Rule, validate_rule
from integrations.models import Flow, Mapping, MappingRule, ValueMapEntry
from integrations.services.audit import audit_record
from integrations.services.flows import FlowConfigurationError, flow_schedule_sync


def _rule_view(rule: MappingRule) -> dict:
    return {
        "target": rule.target,
        "sources": list(rule.sources),
        "transforms": list(rule.transforms),
        "required": rule.required,
        "label": rule.label,
    }


def _check(values: dict) -> None:
    errors = validate_rule(
        Rule(
            target=values["target"],
            sources=tuple(values["sources"]),
            transforms=tuple(values["transforms"]),
            required=values["required"],
            label=values["label"],
        )
    )
    if errors:
        raise FlowConfigurationError(" ".join(errors))


@transaction.atomic
def mapping_rule_update(*, rule: MappingRule, values: dict, actor=None) -> MappingRule:
    """Change one rule (target, sources, transforms, required, label); validated as the engine reads it."""
    _check(values)
    before = _rule_view(rule)
    for name in ("target", "sources", "transforms", "required", "label"):
        setattr(rule, name, values[name])
    rule.save()
    audit_record(
        actor=actor,
        action="mapping.rule_changed",
        target_type="mapping",
        target_id=rule.mapping_id,
        summary=f"{rule.mapping.name}: changed “{rule.label or rule.target}”",
        before=before,
        after=_rule_view(rule),
    )
    return rule


@transaction.atomic
def mapping_rule_add(*, mapping: Mapping, values: dict, actor=None) -> MappingRule:
    _check(values)
    last = mapping.rules.order_by("-order").values_list("order", flat=True).first()
    rule = MappingRule.objects.create(mapping=mapping, order=(last or 0) + 1, **values)
    audit_record(
        actor=actor,
        action="mapping.rule_added",
        target_type="mapping",
        target_id=mapping.pk,
        summary=f"{mapping.name}: added “{rule.label or rule.target}”",
        after=_rule_view(rule),
    )
    return rule


@transaction.atomic
def mapping_rule_remove(*, rule: MappingRule, actor=None) -> None:
    before = _rule_view(rule)
    mapping = rule.mapping
    rule.delete()
    audit_record(
        actor=actor,
        action="mapping.rule_removed",
        target_type="mapping",
        target_id=mapping.pk,
        summary=f"{mapping.name}: removed “{before['label'] or before['target']}”",
        before=before,
    )


@transaction.atomic
def flow_schedule_set(*, flow: Flow, schedule_minutes: int | None, actor=None) -> Flow:
    """Run `flow` every `schedule_minutes` (None: only by hand or webhook), within the plan's minimum."""
    client = getattr(db, "tenant", None)
    if schedule_minutes and client is not None and getattr(client, "pk", None):
        from tenants.plans import PlanLimitReached, plan_min_interval_check

        try:
            plan_min_interval_check(client=client, interval_minutes=schedule_minutes)
        except PlanLimitReached as refused:
            raise FlowConfigurationError(refused.message) from refused
    before = {"schedule_minutes": flow.schedule_minutes}
    flow.schedule_minutes = schedule_minutes
    flow.save(update_fields=["schedule_minutes"])
    flow_schedule_sync(flow=flow)
    audit_record(
        actor=actor,
        action="flow.schedule_changed",
        target_type="flow",
        target_id=flow.pk,
        summary=f"“{flow.name}” runs "
        + (f"every {schedule_minutes} min" if schedule_minutes else "only by hand or webhook"),
        before=before,
        after={"schedule_minutes": schedule_minutes},
    )
    return flow


@transaction.atomic
def value_map_entry_remove(*, entry: ValueMapEntry, actor=None) -> None:
    value_map = entry.value_map
    before = {"source_value": entry.source_value, "target_value": entry.target_value}
    entry.delete()
    audit_record(
        actor=actor,
        action="value_map.entry_removed",
        target_type="value_map",
        target_id=value_map.pk,
        summary=f"{value_map.name}: removed “{before['source_value']}” → “{before['target_value']}”",
        before=before,
    )
