"""The canonical store: resolve relations, respect field ownership, validate, and upsert.

One source record becomes one or more canonical records (a won deal: customer, opportunity,
project). Problems come back as mapping.Problem values; nothing raises for bad data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models

from integrations.engine.entities import ENTITIES, ORDER, field_owner
from integrations.engine.mapping import Problem, Ref
from integrations.models import ExternalRef, FieldOwnership, Rate


@dataclass
class Conflict:
    entity: str
    field: str
    owner: str
    current: Any
    proposed: Any


@dataclass
class StoreResult:
    records: dict[str, models.Model] = field(default_factory=dict)
    created: set[str] = field(default_factory=set)
    changed: set[str] = field(default_factory=set)
    problems: list[Problem] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


class CanonicalStore:
    """Upserts for one flow run. `source` is the flow's source connection; `category` its kind of system."""

    def __init__(
        self,
        *,
        source_connection,
        category: str,
        lookup_maps: dict[str, str] | None = None,
        value_maps: dict[str, dict[str, str]] | None = None,
    ):
        self.value_maps = value_maps or {}
        self.source = source_connection
        self.category = category
        # target field ("time_entry.project") -> value map key that a clerk can extend to fix a miss
        self.lookup_maps = lookup_maps or {}
        self.owners = {(o.entity, o.field): o.owner for o in FieldOwnership.objects.all()}

    # relations -------------------------------------------------------------------------------
    def resolve(self, entity: str, value: Any, produced: dict[str, models.Model], alias_map: str | None = None):
        spec = ENTITIES[entity]
        if isinstance(value, models.Model):
            return value
        if isinstance(value, Ref):
            ref = ExternalRef.objects.filter(
                connection=self.source, object=value.object, external_id=value.external_id
            ).first()
            record = spec.model.objects.filter(pk=ref.record_id).first() if ref else None
            if record is not None and alias_map and spec.natural_key:
                # A clerk may have mapped this system's code onto another (PSA "PRJ-104X" -> ERP "PRJ-104").
                alias = self.value_maps.get(alias_map, {}).get(str(getattr(record, spec.natural_key)))
                if alias:
                    return spec.model.objects.filter(**{spec.natural_key: alias}).first()
            return record
        if isinstance(value, str) and value.startswith("@"):
            return produced.get(value[1:])
        if spec.natural_key and not _blank(value):
            return spec.model.objects.filter(**{spec.natural_key: value}).first()
        return None

    def find_existing(self, entity: str, values: dict, primary_ref: tuple[str, str] | None) -> models.Model | None:
        spec = ENTITIES[entity]
        if primary_ref:
            ref = ExternalRef.objects.filter(
                connection=self.source, object=primary_ref[0], external_id=primary_ref[1]
            ).first()
            if ref:
                found = spec.model.objects.filter(pk=ref.record_id).first()
                if found:
                    return found
        if spec.natural_key and not _blank(values.get(spec.natural_key)):
            return spec.model.objects.filter(**{spec.natural_key: values[spec.natural_key]}).first()
        return None

    # the upsert ------------------------------------------------------------------------------
    def upsert(self, *, entities: dict[str, dict], primary: str, object_name: str, external_id: str) -> StoreResult:
        result = StoreResult()
        for entity in [name for name in ORDER if name in entities]:
            values = dict(entities[entity])
            spec = ENTITIES[entity]
            missing_relation = False
            for relation, related_entity in spec.relations.items():
                if relation not in values:
                    continue
                raw = values.pop(relation)
                alias_map = self.lookup_maps.get(f"{entity}.{relation}")
                target = self.resolve(related_entity, raw, result.records, alias_map)
                if target is None and not _blank(raw):
                    shown = f"{raw.object} {raw.external_id}" if isinstance(raw, Ref) else raw
                    fix = None
                    if f"{entity}.{relation}" in self.lookup_maps:
                        fix = {
                            "action": "map_value",
                            "value_map": self.lookup_maps[f"{entity}.{relation}"],
                            "value": shown,
                        }
                    result.problems.append(
                        Problem(
                            f"{entity}.{relation}",
                            f"{related_entity.upper()}_NOT_FOUND",
                            f"{ENTITIES[related_entity].label} {shown} was not found",
                            fix,
                            shown,
                        )
                    )
                    missing_relation = True
                values[relation] = target
                if target is not None:
                    # Later steps may write the related record too (the deal's customer to the ERP).
                    result.records.setdefault(related_entity, target)
            if missing_relation:
                continue
            primary_ref = (object_name, external_id) if entity == primary else None
            self._upsert_one(entity, values, primary_ref, result)
            if entity == primary and entity in result.records:
                ExternalRef.objects.update_or_create(
                    connection=self.source,
                    object=object_name,
                    external_id=external_id,
                    defaults={"entity": entity, "record_id": result.records[entity].pk},
                )
        return result

    def _upsert_one(self, entity: str, values: dict, primary_ref, result: StoreResult) -> None:
        spec = ENTITIES[entity]
        existing = self.find_existing(entity, values, primary_ref)
        record = existing or spec.model()
        changed = False
        for name, proposed in values.items():
            model_field = spec.model._meta.get_field(name)
            try:
                proposed = (
                    model_field.to_python(proposed) if not isinstance(model_field, models.ForeignKey) else proposed
                )
            except ValidationError:
                result.problems.append(
                    Problem(f"{entity}.{name}", "BAD_VALUE", f"{model_field.verbose_name} “{proposed}” is not valid")
                )
                return
            if proposed is None and not model_field.null and not isinstance(model_field, models.ForeignKey):
                if existing is None and model_field.has_default():
                    continue
                if existing is not None:
                    continue
            if isinstance(model_field, models.ForeignKey):
                current = getattr(record, model_field.attname)
                if existing is not None and current == getattr(proposed, "pk", None):
                    continue
            else:
                current = getattr(record, name)
                if existing is not None and current == proposed:
                    continue
            owner = field_owner(entity, name, self.owners)
            if existing is not None and owner and owner != self.category and not _blank(current):
                result.conflicts.append(Conflict(entity, name, owner, _plain(current), _plain(proposed)))
                continue
            setattr(record, name, proposed)
            changed = True
        if existing is None or changed:
            try:
                record.full_clean(validate_unique=False, validate_constraints=False)
            except ValidationError as error:
                detail = "; ".join(f"{k}: {' '.join(v)}" for k, v in error.message_dict.items())
                result.problems.append(Problem(entity, "INVALID_RECORD", f"{spec.label} is incomplete ({detail})"))
                return
            record.save()
        result.records[entity] = record
        if existing is None:
            result.created.add(entity)
        elif changed:
            result.changed.add(entity)


def cost_rate_on(resource, on: date) -> Rate | None:
    return (
        Rate.objects.filter(resource=resource, kind=Rate.Kind.COST, effective_from__lte=on)
        .filter(models.Q(effective_to__isnull=True) | models.Q(effective_to__gte=on))
        .order_by("-effective_from")
        .first()
    )
