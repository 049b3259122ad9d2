"""What the mapping editor shows beside the rules: which side of its flow a mapping sits on, a live sample record
from that side, and the sample mapped by the rules as they stand or with one drafted rule."""

from __future__ import annotations

import logging
from datetime import date
from decimal import Decimal

from django.core.cache import cache
from django.db import connection as db
from django.http import Http404

from connectors.base import ConnectorError
from connectors.registry import CONNECTORS
from integrations import selectors
from integrations.catalog.templates import ACCOUNT_HEALTH_ENTITY
from integrations.engine.entities import ENTITIES
from integrations.engine.mapping import MappingContext, Ref, Rule, apply_mapping
from integrations.engine.views import canonical_view
from integrations.models import Mapping, MappingRule, ValueMap
from integrations.services.connections import connector_for

logger = logging.getLogger("integrations.views")


SAMPLE_SECONDS = 600


class Side:
    """Which side of a flow a mapping sits on, and so where its sample record comes from."""

    def __init__(self, mapping: Mapping):
        self.mapping = mapping
        self.flow = mapping.inbound_flows.select_related("source_connection").first()
        self.step = None
        if self.flow is None:
            self.step = mapping.outbound_steps.select_related("flow", "target_connection").first()
            if self.step is None:
                raise Http404("This mapping belongs to no flow")
            self.flow = self.step.flow
        if self.flow.entity == ACCOUNT_HEALTH_ENTITY:
            # Its figures go to CRM fields chosen on the flow's CRM fields page; it has no rules to edit.
            raise Http404("This flow has no field mapping")
        self.inbound = self.step is None

    @property
    def entities(self) -> list[str]:
        found = {self.flow.entity}
        if self.inbound:
            found |= {rule.target.split(".", 1)[0] for rule in self.mapping.rules.all()}
        return sorted(e for e in found if e in ENTITIES)

    def owner_of(self, target: str) -> str | None:
        if not self.inbound:
            return None
        entity, _, name = target.partition(".")
        return selectors.field_owners(entity).get(name)

    @property
    def source_category(self) -> str:
        return getattr(CONNECTORS.get(self.flow.source_connection.vendor), "category", "")

    def target_suggestions(self) -> list[str]:
        if self.inbound:
            return [
                f"{entity}.{f.name}"
                for entity in self.entities
                for f in ENTITIES[entity].model._meta.concrete_fields
                if f.name not in ("id", "updated_at")
            ]
        connector = CONNECTORS.get(self.step.target_connection.vendor) if self.step.target_connection else None
        spec = connector.objects.get(self.step.target_object) if connector else None
        return list(spec.fields) if spec else []


def sample_record(side: Side, *, refresh: bool = False) -> dict:
    """A live record to map: read through the source connector (inbound), or the latest canonical
    record as the engine hands it to the target (outbound). Cached a few minutes per workspace."""
    if side.inbound:
        connection = side.flow.source_connection
        key = f"sample:{db.schema_name}:{connection.pk}:{side.flow.source_object}"
        cached = None if refresh else cache.get(key)
        if cached is not None:
            return cached
        label = CONNECTORS[connection.vendor].label if connection.vendor in CONNECTORS else connection.vendor
        sample = {"data": None, "origin": f"{label} · {side.flow.source_object}", "error": "", "id": ""}
        try:
            connector = connector_for(connection)
            try:
                for page in connector.read(side.flow.source_object, page_size=1):
                    if page.records:
                        sample["data"] = dict(page.records[0].data)
                        sample["id"] = page.records[0].external_id
                    break
            finally:
                connector.close()
        except (ConnectorError, OSError, ValueError) as error:
            sample["error"] = f"{label} did not return a sample: {error}"
        except Exception as error:  # noqa: BLE001 - shown to the editor, not raised: the page still works
            logger.exception("sample read failed")
            sample["error"] = f"{label} did not return a sample ({type(error).__name__})."
        if sample["data"] is None and not sample["error"]:
            sample["error"] = f"{label} has no {side.flow.source_object} to show yet."
        if not sample["error"]:
            cache.set(key, sample, SAMPLE_SECONDS)
        return sample
    spec = ENTITIES[side.step.entity]
    record = spec.model.objects.order_by("-pk").first()
    if side.step.entity == "invoice":
        record = spec.model.objects.exclude(lines=None).order_by("-pk").first() or record
    if record is None:
        return {
            "data": None,
            "origin": f"canonical {spec.label.lower()}",
            "error": f"No {spec.label.lower()} in this workspace yet: run the flow once to get a sample.",
            "id": "",
        }
    return {
        "data": canonical_view(side.step.entity, record, side.step.target_connection),
        "origin": f"canonical {spec.label.lower()} #{record.pk}",
        "error": "",
        "id": str(record.pk),
    }


def _shown(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, Ref):
        return f"→ {value.entity.replace('_', ' ')} {value.external_id} ({value.object})"
    if isinstance(value, Decimal | date):
        return str(value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)[:300]


def preview(side: Side, sample: dict, *, draft: dict | None = None, draft_rule: MappingRule | None = None) -> dict:
    """The sample record through the mapping (with one rule replaced or added by the draft)."""
    stored = list(side.mapping.rules.all())
    rules = []
    edited_target = None
    for rule in stored:
        if draft is not None and draft_rule is not None and rule.pk == draft_rule.pk:
            rules.append(
                Rule(
                    draft["target"],
                    tuple(draft["sources"]),
                    tuple(draft["transforms"]),
                    draft["required"],
                    draft["label"],
                )
            )
            edited_target = draft["target"]
        else:
            rules.append(Rule(rule.target, tuple(rule.sources), tuple(rule.transforms), rule.required, rule.label))
    if draft is not None and draft_rule is None:
        rules.append(
            Rule(
                draft["target"], tuple(draft["sources"]), tuple(draft["transforms"]), draft["required"], draft["label"]
            )
        )
        edited_target = draft["target"]
    rows = []
    problems = []
    if sample.get("data") is not None:
        maps = list(ValueMap.objects.prefetch_related("entries"))
        context = MappingContext(
            value_maps={m.key: m.as_dict() for m in maps}, value_map_names={m.key: m.name for m in maps}
        )
        try:
            result = apply_mapping(rules, sample["data"], context)
        except (KeyError, TypeError, ValueError) as error:  # a half-typed draft (a lookup with no map yet)
            return {"rows": [], "problems": [f"This rule cannot run yet: {error}"], "edited": edited_target}
        failing = {problem.target: problem for problem in result.problems}
        for rule in rules:
            problem = failing.get(rule.target)
            rows.append(
                {
                    "target": rule.target,
                    "label": rule.label or rule.target,
                    "value": _shown(result.values.get(rule.target)) if problem is None else "",
                    "problem": problem.message if problem else "",
                    "edited": rule.target == edited_target,
                    "owner": side.owner_of(rule.target),
                }
            )
        problems = [p.message for p in result.problems]
    return {"rows": rows, "problems": problems, "edited": edited_target}
