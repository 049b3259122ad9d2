"""Sandbox and Production in one workspace: what promoting a Sandbox flow would change, and the promotion.

A promotion is the partner-template path used inside one workspace: the Sandbox flow is captured as
template data (partner_templates.workspace.template_capture), its roles are bound to Production connections,
and the first promotion installs it (services.flows.template_install) while later ones upgrade the
Production flows in place (template_upgrade). There is no second copier.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import asdict, dataclass, field

from django.db import transaction

from connectors.registry import CONNECTORS
from integrations.catalog import Template
from integrations.models import Connection, Environment, Flow
from integrations.partner_templates.workspace import _flow_key, template_capture, template_upgrade
from integrations.services.audit import audit_record
from integrations.services.flows import FlowConfigurationError, flow_schedule_sync, template_install
from integrations.services.locks import workspace_lock
from integrations.templatetags.workspace import every as schedule_text


class PromotionRefused(FlowConfigurationError):
    """The promotion cannot go ahead as asked; the message says what to do (bind a connection, review again)."""


@dataclass
class Binding:
    """Which Production connection takes the place of one Sandbox connection the flow uses."""

    role: str
    label: str
    sandbox: Connection
    choices: list[Connection]  # Production connections of the same vendor
    chosen: Connection | None = None

    @property
    def vendor_label(self) -> str:
        cls = CONNECTORS.get(self.sandbox.vendor)
        return cls.label if cls else self.sandbox.vendor


@dataclass(frozen=True)
class Change:
    """One difference between the Sandbox flow and its Production copy."""

    where: str  # "Inbound mapping", "Target: Customer in NetSuite", "Schedule", "Value map …"
    what: str  # the rule's field, "Runs", an entry's source value
    kind: str  # "added", "removed" or "changed"
    before: str = ""
    after: str = ""


@dataclass
class Promotion:
    flow: Flow  # the Sandbox flow
    production: Flow | None  # its Production copy, once promoted
    bindings: list[Binding] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    spec: dict = field(default_factory=dict)

    @property
    def unbound(self) -> list[Binding]:
        return [binding for binding in self.bindings if binding.chosen is None]

    @property
    def fingerprint(self) -> str:
        """Names this exact diff: a confirmation of another diff is refused."""
        data = [asdict(change) for change in self.changes]
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:32]


# --- The diff ----------------------------------------------------------------------------------------


def _transform_text(transform: dict) -> str:
    name = transform.get("name", "")
    if name == "lookup":
        return f"lookup in “{transform.get('value_map', '')}”"
    extras = ", ".join(
        f"{key} {json.dumps(value, sort_keys=True)}" for key, value in transform.items() if key != "name"
    )
    return f"{name} ({extras})" if extras else name


def _rule_text(rule: dict) -> str:
    sources = " + ".join(rule["sources"]) or "no source"
    text = f"from {sources}"
    if rule["transforms"]:
        text += ", " + ", ".join(_transform_text(t) for t in rule["transforms"])
    if rule["required"]:
        text += ", required"
    return text


def _rules_diff(where: str, before: list[dict], after: list[dict]) -> list[Change]:
    old = {rule["target"]: rule for rule in before}
    new = {rule["target"]: rule for rule in after}
    changes = []
    for target in [*old, *(t for t in new if t not in old)]:
        was, now = old.get(target), new.get(target)
        what = (now or was).get("label") or target
        if was is None:
            changes.append(Change(where, what, "added", after=_rule_text(now)))
        elif now is None:
            changes.append(Change(where, what, "removed", before=_rule_text(was)))
        elif was != now:
            changes.append(Change(where, what, "changed", _rule_text(was), _rule_text(now)))
    return changes


def _schedule_text(flow: dict) -> str:
    if flow["trigger"] == Flow.Trigger.MANUAL or not flow.get("schedule_minutes"):
        return "only by hand" if flow["trigger"] != Flow.Trigger.WEBHOOK else "on webhooks"
    every = schedule_text(flow["schedule_minutes"]).lower()  # as the flow's page says it
    return f"on webhooks and {every}" if flow["trigger"] == Flow.Trigger.WEBHOOK else every


def _flow_diff(title: str, before: dict | None, after: dict) -> list[Change]:
    before = before or {"rules": [], "steps": [], "source_filter": {}, "trigger": "", "schedule_minutes": None}
    changes = _rules_diff(f"{title}: read into the workspace", before["rules"], after["rules"])
    if not before["trigger"]:
        changes.append(Change(f"{title}: schedule", "Runs", "added", after=_schedule_text(after)))
    elif _schedule_text(before) != _schedule_text(after):
        changes.append(Change(f"{title}: schedule", "Runs", "changed", _schedule_text(before), _schedule_text(after)))
    if (before["source_filter"] or {}) != (after["source_filter"] or {}):
        changes.append(
            Change(
                f"{title}: records read",
                "Filter",
                "changed",
                json.dumps(before["source_filter"] or {}, sort_keys=True),
                json.dumps(after["source_filter"] or {}, sort_keys=True),
            )
        )

    def step_key(step: dict) -> tuple:
        return (step["target"], step["object"], step["entity"], step["action"])

    old_steps = {step_key(step): step for step in before["steps"]}
    for step in after["steps"]:
        was = old_steps.pop(step_key(step), None)
        where = f"{title}: {step['name']}"
        if was is None:
            changes.append(Change(where, "Target", "added", after=f"writes {step['object']}"))
        changes.extend(_rules_diff(where, was["rules"] if was else [], step["rules"]))
    for step in old_steps.values():
        changes.append(Change(f"{title}: {step['name']}", "Target", "removed", before=f"writes {step['object']}"))
    return changes


def promotion_diff(*, sandbox_spec: dict, production_spec: dict | None, sandbox: Flow, production: Flow | None):
    """Every rule, target, schedule, filter, match key and value-map entry that promoting would change."""
    changes: list[Change] = []
    old_flows = {
        (flow["source"], flow["object"], flow["entity"]): flow for flow in (production_spec or {}).get("flows", [])
    }
    for flow in sandbox_spec["flows"]:
        was = old_flows.get((flow["source"], flow["object"], flow["entity"]))
        changes.extend(_flow_diff(flow["name"], was, flow))
    was_keys = (production.match_keys or {}) if production is not None else {}
    for entity in sorted(set(was_keys) | set(sandbox.match_keys or {})):
        old, new = was_keys.get(entity), (sandbox.match_keys or {}).get(entity)
        if old != new:
            changes.append(
                Change(
                    f"{sandbox.name}: matching",
                    entity.title(),
                    "changed" if old and new else ("added" if new else "removed"),
                    ", ".join(old or []) or "default keys",
                    ", ".join(new or []) or "default keys",
                )
            )
    old_maps = {vm["key"]: dict(map(tuple, vm["entries"])) for vm in (production_spec or {}).get("value_maps", [])}
    for vm in sandbox_spec["value_maps"]:
        old, new = old_maps.get(vm["key"], {}), dict(map(tuple, vm["entries"]))
        for source in [*old, *(s for s in new if s not in old)]:
            if old.get(source) != new.get(source):
                kind = "added" if source not in old else ("removed" if source not in new else "changed")
                changes.append(
                    Change(f"Value map “{vm['name']}”", source, kind, old.get(source, ""), new.get(source, ""))
                )
    return changes


# --- Preview and promotion ---------------------------------------------------------------------------


def _bindings(roles: dict[str, Connection], spec: dict, production: Flow | None, chosen: dict) -> list[Binding]:
    production_roles: dict[str, Connection] = {}
    if production is not None:
        template_capture(flow=production, roles_out=production_roles)
    bindings = []
    for role, sandbox in roles.items():
        choices = list(Connection.objects.filter(environment=Environment.PRODUCTION, vendor=sandbox.vendor))
        by_pk = {connection.pk: connection for connection in choices}
        pick = by_pk.get(chosen.get(role))
        if pick is None and production_roles.get(role) is not None:
            pick = by_pk.get(production_roles[role].pk)
        if pick is None and len(choices) == 1:
            pick = choices[0]
        bindings.append(Binding(role, spec["connections"][role]["label"], sandbox, choices, pick))
    return bindings


def promotion_preview(*, flow: Flow, chosen: dict[str, int] | None = None) -> Promotion:
    """What promoting the Sandbox `flow` would change in Production, and which Production connections it
    would use (`chosen` names one per role where the workspace has several)."""
    if flow.environment != Environment.SANDBOX:
        raise FlowConfigurationError(f"“{flow.name}” runs in Production already: flows are promoted from Sandbox.")
    roles: dict[str, Connection] = {}
    spec = template_capture(flow=flow, roles_out=roles)
    # Read afresh: a Flow loaded earlier may hold Production as it was before the last promotion.
    production = Flow.objects.filter(pk=flow.promoted_to_id).first() if flow.promoted_to_id else None
    production_spec = template_capture(flow=production) if production is not None else None
    return Promotion(
        flow=flow,
        production=production,
        bindings=_bindings(roles, spec, production, chosen or {}),
        changes=promotion_diff(sandbox_spec=spec, production_spec=production_spec, sandbox=flow, production=production),
        spec=spec,
    )


def _refuse_unbound(promotion: Promotion) -> None:
    missing = [binding for binding in promotion.unbound if not binding.choices]
    if missing:
        raise PromotionRefused(
            "; ".join(
                f"Production has no {binding.vendor_label} connection to take the place of “{binding.sandbox.name}”"
                for binding in missing
            )
            + ": add "
            + ("it" if len(missing) == 1 else "them")
            + " in Production, then promote."
        )
    for binding in promotion.unbound:
        raise PromotionRefused(
            f"Choose which Production {binding.vendor_label} connection takes the place of “{binding.sandbox.name}”."
        )


def _named_for_production(promotion: Promotion) -> dict:
    """The captured flow with its targets named after the Production connections they write to
    ("Customer in NetSuite", not "Customer in NetSuite test account"); the same bindings give the same names,
    which is how the next promotion's upgrade finds the steps it updates."""
    spec = copy.deepcopy(promotion.spec)
    bound = {binding.role: binding for binding in promotion.bindings}
    for flow in spec["flows"]:
        for step in flow["steps"]:
            binding = bound.get(step["target"])
            if binding is not None and binding.chosen is not None:
                step["name"] = step["name"].replace(binding.sandbox.name, binding.chosen.name)[:120]
    return spec


@transaction.atomic
def flow_promote(*, flow: Flow, chosen: dict[str, int] | None = None, fingerprint: str = "", actor=None) -> Promotion:
    """Make Production run what the Sandbox `flow` holds (rules, targets, schedule, filter, match keys,
    value-map entries), on the Production connections bound to its roles; audited with every change.

    `fingerprint` is the one of the diff the person confirmed: if Sandbox or Production changed since, the
    promotion is refused rather than applying changes nobody saw.
    """
    workspace_lock(f"promote:{flow.pk}")
    flow = Flow.objects.select_related("promoted_to").get(pk=flow.pk)
    promotion = promotion_preview(flow=flow, chosen=chosen)
    if fingerprint and fingerprint != promotion.fingerprint:
        raise PromotionRefused("Sandbox or Production changed since this diff was shown: review the changes again.")
    _refuse_unbound(promotion)
    if promotion.production is not None and not promotion.changes:
        raise PromotionRefused(f"Production already runs “{flow.name}” as Sandbox has it: nothing to promote.")
    key = f"env-{flow.pk}"
    production = promotion.production
    template = Template.from_spec(
        _named_for_production(promotion),
        key=key,
        name=flow.name,
        summary="Promoted from Sandbox",
        version=((production.template_version or 0) if production else 0) + 1,
    )
    connections = {binding.role: binding.chosen for binding in promotion.bindings}
    if production is None:
        template_install(template=template, connections=connections, actor=actor)
        production = Flow.objects.get(template_key=f"{key}/{_flow_key(flow)}")
        flow.promoted_to = production
        flow.save(update_fields=["promoted_to"])
    else:
        # versions={}: Production takes Sandbox's rules even where someone changed them in Production;
        # the rules it loses are in the upgrade's audit row, and the diff showed each of them.
        template_upgrade(template=template, versions={}, actor=actor)
    main = next(spec for spec in template.flows if spec.key == _flow_key(flow))
    production.refresh_from_db()
    production.trigger, production.schedule_minutes = main.trigger, main.schedule_minutes
    production.match_keys = dict(flow.match_keys or {})
    production.save(update_fields=["trigger", "schedule_minutes", "match_keys"])
    flow_schedule_sync(flow=production)
    audit_record(
        actor=actor,
        action="flow.promoted",
        target_type="flow",
        target_id=production.pk,
        summary=f"Promoted “{flow.name}” from Sandbox to Production: "
        + f"{len(promotion.changes)} change{'s' if len(promotion.changes) != 1 else ''}",
        before={"sandbox_flow": flow.pk, "version": template.version - 1},
        after={
            "version": template.version,
            "connections": {
                b.role: {"sandbox": b.sandbox.name, "production": b.chosen.name} for b in promotion.bindings
            },
            "changes": [asdict(change) for change in promotion.changes],
        },
    )
    promotion.production = production
    return promotion
