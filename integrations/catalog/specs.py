"""What a template is made of, as data: flows, their steps and rules, the transforms rules name, and the
JSON shape a partner's saved template stores.

Rules are (target, sources, transforms, required, label). Every transform is from the fixed
library in integrations.engine.mapping; nothing here is code a client could change.
"""

from __future__ import annotations

from dataclasses import dataclass, field

TRIM = {"name": "trim"}
UPPER = {"name": "upper"}
LOWER = {"name": "lower"}
DATE = {"name": "date"}
NUMBER2 = {"name": "number", "places": 2}
CENTS = {"name": "cents_to_amount"}
MINUTES = {"name": "minutes_to_hours"}
BOOL = {"name": "boolean"}
WRAP = {"name": "wrap", "key": "id"}


def ref(entity: str, object_name: str) -> dict:
    return {"name": "ref", "entity": entity, "object": object_name}


def lookup(value_map: str, keep: bool = False) -> dict:
    return {"name": "lookup", "value_map": value_map, **({"fallback": "keep"} if keep else {})}


def default(value) -> dict:
    return {"name": "default", "value": value}


DOMAIN = {"name": "domain"}
FIRST_WORD = {"name": "split", "separator": " ", "index": 0}


@dataclass(frozen=True)
class StepSpec:
    name: str
    entity: str
    target: str  # role of the target connection in the template ("erp", "psa", ...)
    object: str
    rules: list = field(default_factory=list)
    action: str = "write"


@dataclass(frozen=True)
class FlowSpec:
    key: str
    name: str
    source: str
    object: str
    entity: str
    rules: list
    steps: list = field(default_factory=list)
    source_filter: dict = field(default_factory=dict)
    schedule_minutes: int | None = 60
    trigger: str = "schedule"
    prerequisites: tuple = ()


@dataclass(frozen=True)
class Template:
    key: str
    name: str
    summary: str
    version: int
    connections: dict  # role -> (vendor choices, label)
    value_maps: list  # (key, name, description, [(source, target), ...])
    flows: list
    publisher: str = ""  # who offers it: blank for packaged templates, the partner's name otherwise

    def for_vendors(self, vendors: dict[str, str]) -> Template:
        """The template as it installs with these vendors: a saved template is for the vendors it names."""
        return self

    def to_spec(self) -> dict:
        """The template's contents as JSON data, the shape a partner's saved template version stores."""
        return {
            "connections": {
                role: {"vendors": list(vendors), "label": label} for role, (vendors, label) in self.connections.items()
            },
            "value_maps": [
                {"key": key, "name": name, "description": description, "entries": [list(entry) for entry in entries]}
                for key, name, description, entries in self.value_maps
            ],
            "flows": [
                {
                    "key": flow.key,
                    "name": flow.name,
                    "source": flow.source,
                    "object": flow.object,
                    "entity": flow.entity,
                    "rules": _rules_to_spec(flow.rules),
                    "steps": [
                        {
                            "name": step.name,
                            "entity": step.entity,
                            "target": step.target,
                            "object": step.object,
                            "action": step.action,
                            "rules": _rules_to_spec(step.rules),
                        }
                        for step in flow.steps
                    ],
                    "source_filter": dict(flow.source_filter),
                    "schedule_minutes": flow.schedule_minutes,
                    "trigger": flow.trigger,
                    "prerequisites": list(flow.prerequisites),
                }
                for flow in self.flows
            ],
        }

    @classmethod
    def from_spec(cls, spec: dict, *, key: str, name: str, summary: str, version: int, publisher: str = "") -> Template:
        """A template from JSON data written by `to_spec`, installable like a packaged one."""
        return cls(
            key=key,
            name=name,
            summary=summary,
            version=version,
            publisher=publisher,
            connections={
                role: (tuple(value["vendors"]), value["label"]) for role, value in spec["connections"].items()
            },
            value_maps=[
                (vm["key"], vm["name"], vm.get("description", ""), [tuple(entry) for entry in vm["entries"]])
                for vm in spec["value_maps"]
            ],
            flows=[
                FlowSpec(
                    key=flow["key"],
                    name=flow["name"],
                    source=flow["source"],
                    object=flow["object"],
                    entity=flow["entity"],
                    rules=_rules_from_spec(flow["rules"]),
                    steps=[
                        StepSpec(
                            name=step["name"],
                            entity=step["entity"],
                            target=step["target"],
                            object=step["object"],
                            action=step.get("action", "write"),
                            rules=_rules_from_spec(step["rules"]),
                        )
                        for step in flow["steps"]
                    ],
                    source_filter=dict(flow.get("source_filter") or {}),
                    schedule_minutes=flow.get("schedule_minutes"),
                    trigger=flow.get("trigger", "schedule"),
                    prerequisites=tuple(flow.get("prerequisites", ())),
                )
                for flow in spec["flows"]
            ],
        )


def _rules_to_spec(rules: list) -> list[dict]:
    return [
        {
            "target": target,
            "sources": list(sources),
            "transforms": list(transforms),
            "required": required,
            "label": label,
        }
        for target, sources, transforms, required, label in rules
    ]


def _rules_from_spec(rules: list[dict]) -> list[tuple]:
    return [
        (rule["target"], list(rule["sources"]), list(rule["transforms"]), bool(rule["required"]), rule.get("label", ""))
        for rule in rules
    ]
