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

from integrations.engine.entities import ENTITIES, ORDER, field_owner, match_keys_for
from integrations.engine.keys import NORMALISERS
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
    linked: set[str] = field(default_factory=set)  # found by match keys and linked to this system's record
    skipped: set[str] = field(default_factory=set)  # mapped, but left out for want of what they require
    problems: list[Problem] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)


@dataclass
class Found:
    """What looking for a record found: by this system's id (`how` "ref", or "alias" for a record a person
    said is the same as another), by match keys ("key"), nothing, or several candidates."""

    record: models.Model | None = None
    how: str = ""
    candidates: list = field(default_factory=list)


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
        match_keys: dict[str, list[str]] | None = None,
    ):
        # The keys this flow recognises records by, per entity (Flow.match_keys; defaults otherwise).
        self.match_keys = match_keys or {}
        self.value_maps = value_maps or {}
        self.source = source_connection
        self.category = category
        # target field ("time_entry.project") -> value map key that a clerk can extend to fix a miss
        self.lookup_maps = lookup_maps or {}
        self.owners = {(o.entity, o.field): o.owner for o in FieldOwnership.objects.all()}
        # Per-run caches: related records (projects, people) are few and read again and again.
        self._refs: dict[tuple[str, str], int | None] = {}
        self._records: dict[tuple[str, int], models.Model] = {}
        self._natural: dict[tuple[str, Any], models.Model | None] = {}
        self._primary_refs: dict[tuple[str, str], int] = {}
        self._aliases: set[tuple[str, str]] = set()
        self._prefetched: set[tuple[str, str]] = set()
        self._linked_before: set[tuple[str, str]] = set()
        # A record a person decided should not be matched to any other (two customers that only look alike).
        self.unmatched: set[tuple[str, str]] = set()

    def prefetch_primary(self, object_name: str, external_ids: list[str]) -> None:
        """One query for the source refs of a whole page, instead of one per record."""
        self._prefetched = {(object_name, external_id) for external_id in external_ids}
        self._primary_refs = {}
        self._aliases = set()
        for external_id, record_id, alias in ExternalRef.objects.filter(
            connection=self.source, object=object_name, external_id__in=external_ids
        ).values_list("external_id", "record_id", "alias"):
            self._primary_refs[(object_name, external_id)] = record_id
            if alias:
                self._aliases.add((object_name, external_id))
        self._linked_before = set(self._primary_refs)

    def forget(self, object_name: str, external_id: str) -> None:
        """A record's writes were rolled back: forget the link it made, which names a row that is gone."""
        key = (object_name, external_id)
        if key not in self._linked_before:
            self._primary_refs.pop(key, None)
            self._refs.pop(key, None)

    def _ref(self, object_name: str, external_id: str) -> int | None:
        key = (object_name, external_id)
        if key not in self._refs:
            self._refs[key] = (
                ExternalRef.objects.filter(connection=self.source, object=object_name, external_id=external_id)
                .values_list("record_id", flat=True)
                .first()
            )
        return self._refs[key]

    def _record(self, entity: str, pk: int | None) -> models.Model | None:
        if pk is None:
            return None
        key = (entity, pk)
        if key not in self._records:
            found = ENTITIES[entity].model.objects.filter(pk=pk).first()
            if found is None:
                return None
            self._records[key] = found
        return self._records[key]

    def _by_natural_key(self, entity: str, value: Any) -> models.Model | None:
        key = (entity, value)
        if key not in self._natural:
            spec = ENTITIES[entity]
            self._natural[key] = spec.model.objects.filter(**{spec.natural_key: value}).first()
        return self._natural[key]

    # relations -------------------------------------------------------------------------------
    def resolve(self, entity: str, value: Any, produced: dict[str, models.Model], alias_map: str | None = None):
        spec = ENTITIES[entity]
        if isinstance(value, models.Model):
            return value
        if isinstance(value, Ref):
            record = self._record(entity, self._ref(value.object, value.external_id))
            if record is not None and alias_map and spec.natural_key:
                # A clerk may have mapped this system's code onto another (PSA "PRJ-104X" -> ERP "PRJ-104").
                alias = self.value_maps.get(alias_map, {}).get(str(getattr(record, spec.natural_key)))
                if alias:
                    return self._by_natural_key(entity, alias)
            return record
        if isinstance(value, str) and value.startswith("@"):
            return produced.get(value[1:])
        if spec.natural_key and not _blank(value):
            return self._by_natural_key(entity, value)
        return None

    def find_existing(
        self, entity: str, values: dict, primary_ref: tuple[str, str] | None, *, match: bool = True
    ) -> Found:
        """The record `values` describe: by this system's id first, then by the flow's match keys."""
        spec = ENTITIES[entity]
        if primary_ref:
            record_id = self._primary_refs.get(primary_ref)
            if record_id is None and primary_ref not in self._prefetched:
                record_id = self._ref(*primary_ref)
            if record_id is not None:
                found = spec.model.objects.filter(pk=record_id).first()
                if found:
                    return Found(found, "alias" if primary_ref in self._aliases else "ref")
        if match:
            candidates: dict[int, models.Model] = {}
            for key in match_keys_for(entity, self.match_keys):
                value = NORMALISERS[key.kind](values.get(key.field))
                if value:
                    for record in spec.model.objects.filter(**{key.lookup: value}).order_by("pk")[:5]:
                        candidates.setdefault(record.pk, record)
            if len(candidates) == 1:
                return Found(next(iter(candidates.values())), "key")
            if len(candidates) > 1:
                return Found(None, "ambiguous", list(candidates.values()))
        if spec.natural_key and not spec.match_keys and not _blank(values.get(spec.natural_key)):
            found = spec.model.objects.filter(**{spec.natural_key: values[spec.natural_key]}).first()
            return Found(found, "key" if found else "")
        if spec.identity and all(values.get(f) is not None for f in spec.identity):
            found = spec.model.objects.filter(**{f: values[f] for f in spec.identity}).first()
            return Found(found, "key" if found else "")
        return Found()

    # the upsert ------------------------------------------------------------------------------
    def upsert(self, *, entities: dict[str, dict], primary: str, object_name: str, external_id: str) -> StoreResult:
        result = StoreResult()
        for entity in [name for name in ORDER if name in entities]:
            values = dict(entities[entity])
            spec = ENTITIES[entity]
            if entity != primary and spec.requires and all(_blank(values.get(name)) for name in spec.requires):
                result.skipped.add(entity)  # e.g. a person's cost rate, when the source has none
                continue
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
                    # The Ref itself is the problem's value: the orchestrator parks the record behind that
                    # record's own exception when it has one, instead of calling it "not found".
                    result.problems.append(
                        Problem(
                            f"{entity}.{relation}",
                            f"{related_entity.upper()}_NOT_FOUND",
                            f"{ENTITIES[related_entity].label} {shown} was not found",
                            fix,
                            raw,
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
            found = self.find_existing(
                entity, values, primary_ref, match=(object_name, external_id) not in self.unmatched or not primary_ref
            )
            if found.how == "ambiguous":
                result.problems.append(
                    Problem(
                        entity,
                        "AMBIGUOUS_MATCH",
                        f"{ENTITIES[entity].label} matches {len(found.candidates)} records here: "
                        + " and ".join(f"“{_natural(c)}”" for c in found.candidates),
                        {"action": "pick"},
                        [c.pk for c in found.candidates],
                    )
                )
                return result
            if entity == primary and found.how == "key":
                twin = (
                    ExternalRef.objects.filter(
                        connection=self.source,
                        object=object_name,
                        entity=entity,
                        record_id=found.record.pk,
                        alias=False,
                    )
                    .exclude(external_id=external_id)
                    .values_list("external_id", flat=True)
                    .first()
                )
                if twin is not None:
                    # Two records of one system are the same thing here (same name, domain, code or email).
                    result.problems.append(
                        Problem(
                            entity,
                            "DUPLICATE_IN_SOURCE",
                            f"{ENTITIES[entity].label} “{_natural(found.record)}” is twice in this system",
                            {"action": "same"},
                            {"twin": twin, "record": found.record.pk},
                        )
                    )
                    return result
            if found.how == "alias":
                # A second record a person said is the same as another: it points at the record, it does
                # not rewrite it (the first record's system values stand).
                result.records[entity] = found.record
                continue
            self._upsert_one(entity, values, found.record, result)
            if found.how == "key" and entity in result.records and entity not in result.created:
                result.linked.add(entity)
            if entity == primary and entity in result.records:
                self._primary_link(object_name, external_id, entity, result.records[entity].pk)
        return result

    def _primary_link(self, object_name: str, external_id: str, entity: str, record_id: int) -> None:
        """This system's record now stands for `record_id`: remember it (ExternalRef)."""
        key = (object_name, external_id)
        if key in self._prefetched and key not in self._primary_refs:
            ExternalRef.objects.create(
                connection=self.source, object=object_name, external_id=external_id, entity=entity, record_id=record_id
            )
        elif self._primary_refs.get(key) != record_id:
            ExternalRef.objects.update_or_create(
                connection=self.source,
                object=object_name,
                external_id=external_id,
                defaults={"entity": entity, "record_id": record_id},
            )
        else:
            return
        self._primary_refs[key] = record_id
        self._refs[key] = record_id

    def _upsert_one(self, entity: str, values: dict, existing, result: StoreResult) -> None:
        spec = ENTITIES[entity]
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
                if existing is not None or model_field.has_default():
                    continue
                if isinstance(model_field, models.CharField | models.TextField):
                    proposed = ""  # a blank text field, as a person leaves it empty (a deal with no terms)
            if isinstance(model_field, models.ForeignKey):
                current = getattr(record, model_field.attname)
                if existing is not None and current == getattr(proposed, "pk", None):
                    continue
            else:
                current = getattr(record, name)
                if existing is not None and (current == proposed or _same_key(spec, name, current, proposed)):
                    continue
            owner = field_owner(entity, name, self.owners)
            if existing is not None and owner and owner != self.category and not _blank(current):
                result.conflicts.append(Conflict(entity, name, owner, _plain(current), _plain(proposed)))
                continue
            setattr(record, name, proposed)
            changed = True
        if existing is None or changed:
            try:
                # Relations were resolved above; skip Django's one-query-per-foreign-key check.
                foreign_keys = [f.name for f in spec.model._meta.concrete_fields if isinstance(f, models.ForeignKey)]
                record.full_clean(exclude=foreign_keys, validate_unique=False, validate_constraints=False)
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


def _same_key(spec, name: str, current, proposed) -> bool:
    """Two spellings a match key takes for one ("PIPER HEALTH" and "Piper Health"): not a change to make or
    a conflict to raise, since the systems agree on what they name."""
    for key in spec.match_keys.values():
        if key.field == name:
            normalise = NORMALISERS[key.kind]
            return bool(normalise(current)) and normalise(current) == normalise(proposed)
    return False


def _natural(record) -> str:
    spec = next((spec for spec in ENTITIES.values() if isinstance(record, spec.model)), None)
    if spec is not None and spec.natural_key:
        return str(getattr(record, spec.natural_key))
    return str(record)


def cost_rate_on(resource, on: date) -> Rate | None:
    return (
        Rate.objects.filter(resource=resource, kind=Rate.Kind.COST, effective_from__lte=on)
        .filter(models.Q(effective_to__isnull=True) | models.Q(effective_to__gte=on))
        .order_by("-effective_from")
        .first()
    )
