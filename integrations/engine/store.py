"""The canonical store, a page at a time: find every record a page describes, decide what changes, then write.

`plan(items)` reads (a few queries per kind of record for the whole page, whatever its size) and decides,
writing nothing: which records exist already (by the system's own id, else by the flow's match keys), which
are new, which fields change, which changes another system owns (conflicts), and each item's problems.
`apply(items)` writes what was planned for the items still going: new rows by COPY, changed rows in one
UPDATE per kind, the page's ExternalRefs. Nothing here raises for bad data: problems are mapping.Problem
values on the items.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django.db import models

from integrations.engine import bulk
from integrations.engine.entities import ENTITIES, ORDER, match_keys_for
from integrations.engine.keys import NORMALISERS
from integrations.engine.mapping import Problem, Ref
from integrations.engine.records import (
    Planned,
    blank,
    natural,
    planned_of,
    prepare,
    sync_foreign_keys,
)
from integrations.models import Environment, ExternalRef, FieldOwnership


class CanonicalStore:
    """Reads and writes of one flow run. `source_connection` is the flow's source; `category` its kind of system."""

    def __init__(
        self,
        *,
        source_connection,
        category: str,
        lookup_maps: dict[str, str] | None = None,
        value_maps: dict[str, dict[str, str]] | None = None,
        match_keys: dict[str, list[str]] | None = None,
    ):
        self.source = source_connection
        # Time and expenses are booked in the environment of the system they are read from.
        self.environment = source_connection.environment if source_connection else Environment.PRODUCTION
        self.category = category
        # target field ("time_entry.project") -> value map key that a clerk can extend to fix a miss
        self.lookup_maps = lookup_maps or {}
        self.value_maps = value_maps or {}
        self.match_keys = match_keys or {}
        self._keys_of = {entity: match_keys_for(entity, self.match_keys) for entity in ENTITIES}
        self.owners = {(o.entity, o.field): o.owner for o in FieldOwnership.objects.all()}
        # Per-run caches: related records (projects, people) are few and read again and again.
        self._refs: dict[tuple[str, str], int | None] = {}
        self._records: dict[tuple[str, int], models.Model] = {}
        self._natural: dict[tuple[str, Any], models.Model | None] = {}
        # A record a person decided should not be matched to any other (two customers that only look alike).
        self.unmatched: set[tuple[str, str]] = set()
        self._twins_known: dict[tuple[str, int], str] = {}

    def forget(self) -> None:
        """Drop what the run has read: after a rolled-back page, the cached rows may hold what never landed."""
        self._refs.clear()
        self._records.clear()
        self._natural.clear()

    # -- batched reads -------------------------------------------------------------------------
    def refs(self, keys: set[tuple[str, str]]) -> dict[tuple[str, str], int | None]:
        """This system's records (object, external id) -> canonical record id, one query for the unknown ones."""
        known = self._refs
        missing = {key for key in keys if key not in known}
        if not missing:
            return {key: known[key] for key in keys}
        by_object: dict[str, list[str]] = defaultdict(list)
        for object_name, external_id in missing:
            by_object[object_name].append(external_id)
        for object_name, external_ids in by_object.items():
            found = dict(
                ExternalRef.objects.filter(
                    connection=self.source, object=object_name, external_id__any=external_ids
                ).values_list("external_id", "record_id")
            )
            for external_id in external_ids:
                self._refs[(object_name, external_id)] = found.get(external_id)
        return {key: self._refs.get(key) for key in keys}

    def records(self, entity: str, pks: set[int]) -> dict[int, models.Model]:
        missing = {pk for pk in pks if pk is not None and (entity, pk) not in self._records}
        if missing:
            for record in ENTITIES[entity].model.objects.filter(pk__any=missing):
                self._records[(entity, record.pk)] = record
        return {pk: self._records[(entity, pk)] for pk in pks if (entity, pk) in self._records}

    def by_natural_key(self, entity: str, values: set) -> dict[Any, models.Model]:
        spec = ENTITIES[entity]
        missing = {value for value in values if (entity, value) not in self._natural}
        if missing:
            found = {
                getattr(r, spec.natural_key): r
                for r in spec.model.objects.filter(**{f"{spec.natural_key}__any": missing})
            }
            for value in missing:
                self._natural[(entity, value)] = found.get(value)
        return {value: self._natural[(entity, value)] for value in values if self._natural.get((entity, value))}

    # -- planning ------------------------------------------------------------------------------
    def plan(self, items: list, *, primary: str, object_name: str) -> None:
        """Decide, for every item still going, what happens to each canonical record it describes."""
        page = [item for item in items if not item.problems and not item.skipped]
        primary_refs = self._primary_refs(object_name, [item.source.external_id for item in page])
        pending: dict[tuple[str, str, str], Any] = {}  # (entity, key, value) -> item that creates it (this page)
        claimed: dict[tuple[str, int], Any] = {}  # (entity, record id) -> item linked to it by key (this page)
        for entity in [name for name in ORDER if any(name in item.entities for item in page)]:
            spec = ENTITIES[entity]
            rows = []
            for item in page:
                if item.problems or entity not in item.entities:
                    continue
                values = dict(item.entities[entity])
                if entity != primary and spec.requires and all(blank(values.get(n)) for n in spec.requires):
                    item.skipped_entities.add(entity)  # e.g. a person's cost rate, when the source has none
                    continue
                rows.append((item, values))
            self._plan_relations(entity, rows)
            rows = [(item, values) for item, values in rows if not item.problems]
            found = self._find(entity, rows, primary, object_name, primary_refs)
            if entity == primary:
                self.twins_prefetch(entity, object_name, {record.pk for record, how, _ in found if how == "key"})
            for (item, values), (record, how, candidates) in zip(rows, found, strict=True):
                if how == "" and (creator := self._pending(entity, values, pending, item)) is not None:
                    record, how = creator, "pending"  # an item earlier in this page creates it
                if how == "ambiguous":
                    item.problems.append(
                        Problem(
                            entity,
                            "AMBIGUOUS_MATCH",
                            f"{spec.label} matches {len(candidates)} records here: "
                            + " and ".join(f"“{natural(c)}”" for c in candidates),
                            {"action": "pick"},
                            [c.pk for c in candidates],
                        )
                    )
                    continue
                if entity == primary and how in ("key", "pending"):
                    twin = self._twin(entity, record, item, how, object_name, claimed)
                    if twin is not None:
                        # When the twin is new on this page, the record its item will create (no pk until applied).
                        shared = record
                        if how == "pending":
                            shared = record.plan[entity].record if entity in record.plan else None
                        item.problems.append(
                            Problem(
                                entity,
                                "DUPLICATE_IN_SOURCE",
                                f"{spec.label} “{natural(shared) if shared else twin}” is twice in this system",
                                {"action": "same"},
                                {"twin": twin, "record": shared},
                            )
                        )
                        continue
                if how == "pending":
                    # Another item of this page creates it (a twin was reported above for the primary record):
                    # this one points at the same row, written once.
                    if entity in record.plan:
                        item.plan[entity] = Planned(entity, record.plan[entity].record, how="pending")
                    continue
                if how == "alias":
                    # A second record a person said is the same as another: it points at the record, it does
                    # not rewrite it (the first record's values stand).
                    item.plan[entity] = Planned(entity, record, how="alias")
                    continue
                planned = planned_of(
                    entity,
                    values,
                    record,
                    item,
                    owners=self.owners,
                    category=self.category,
                    environment=self.environment,
                )
                if planned is None:
                    continue
                planned.how = how if record is not None else ""
                item.plan[entity] = planned
                if planned.new:
                    for key in self._keys_of[entity]:
                        value = NORMALISERS[key.kind](values.get(key.field))
                        if value:
                            pending.setdefault((entity, key.field, value), item)
                    if spec.natural_key and not spec.match_keys and not blank(values.get(spec.natural_key)):
                        pending.setdefault((entity, spec.natural_key, values[spec.natural_key]), item)
                elif how == "key" and entity == primary:
                    claimed[(entity, record.pk)] = item
        for item in page:
            if item.problems:
                item.plan = {}

    def _primary_refs(self, object_name: str, external_ids: list[str]) -> dict[str, tuple[int, bool]]:
        found = {
            external_id: (record_id, alias)
            for external_id, record_id, alias in ExternalRef.objects.filter(
                connection=self.source, object=object_name, external_id__any=external_ids
            ).values_list("external_id", "record_id", "alias")
        }
        for external_id in external_ids:
            self._refs[(object_name, external_id)] = found.get(external_id, (None,))[0]
        return found

    def _plan_relations(self, entity: str, rows: list) -> None:
        """Resolve every relation of the page's records at once: references by the system's ids, "@entity"
        (a record the same item produces), natural keys."""
        spec = ENTITIES[entity]
        refs = {
            (raw.object, raw.external_id)
            for _, values in rows
            for relation in spec.relations
            if isinstance(raw := values.get(relation), Ref)
        }
        ids = self.refs(refs)
        by_entity: dict[str, set[int]] = defaultdict(set)
        for _, values in rows:
            for relation, related in spec.relations.items():
                raw = values.get(relation)
                if isinstance(raw, Ref) and ids.get((raw.object, raw.external_id)) is not None:
                    by_entity[related].add(ids[(raw.object, raw.external_id)])
        loaded = {related: self.records(related, pks) for related, pks in by_entity.items()}
        # A clerk may have mapped this system's code onto another (PSA "PRJ-104X" -> ERP "PRJ-104").
        aliases: dict[str, set] = defaultdict(set)
        naturals: dict[str, set] = defaultdict(set)
        for _, values in rows:
            for relation, related in spec.relations.items():
                raw = values.get(relation)
                related_spec = ENTITIES[related]
                alias_map = self.lookup_maps.get(f"{entity}.{relation}")
                if isinstance(raw, Ref):
                    record = loaded.get(related, {}).get(ids.get((raw.object, raw.external_id)))
                    if record is not None and alias_map and related_spec.natural_key:
                        alias = self.value_maps.get(alias_map, {}).get(str(getattr(record, related_spec.natural_key)))
                        if alias:
                            aliases[related].add(alias)
                elif isinstance(raw, str) and not raw.startswith("@") and related_spec.natural_key and not blank(raw):
                    naturals[related].add(raw)
        natural = {
            related: self.by_natural_key(related, aliases.get(related, set()) | naturals.get(related, set()))
            for related in set(aliases) | set(naturals)
        }
        for item, values in rows:
            for relation, related in spec.relations.items():
                if relation not in values:
                    continue
                raw = values[relation]
                related_spec = ENTITIES[related]
                alias_map = self.lookup_maps.get(f"{entity}.{relation}")
                target = None
                if isinstance(raw, models.Model):
                    target = raw
                elif isinstance(raw, Ref):
                    target = loaded.get(related, {}).get(ids.get((raw.object, raw.external_id)))
                    if target is not None and alias_map and related_spec.natural_key:
                        alias = self.value_maps.get(alias_map, {}).get(str(getattr(target, related_spec.natural_key)))
                        if alias:
                            target = natural.get(related, {}).get(alias)
                elif isinstance(raw, str) and raw.startswith("@"):
                    produced = item.plan.get(raw[1:])
                    target = produced.record if produced is not None else None
                elif related_spec.natural_key and not blank(raw):
                    target = natural.get(related, {}).get(raw)
                if target is None and not blank(raw):
                    shown = f"{raw.object} {raw.external_id}" if isinstance(raw, Ref) else raw
                    fix = None
                    if alias_map:
                        fix = {"action": "map_value", "value_map": alias_map, "value": shown}
                    # The Ref itself is the problem's value: the orchestrator parks the record behind that
                    # record's own exception when it has one, instead of calling it "not found".
                    item.problems.append(
                        Problem(
                            f"{entity}.{relation}",
                            f"{related.upper()}_NOT_FOUND",
                            f"{related_spec.label} {shown} was not found",
                            fix,
                            raw,
                        )
                    )
                    continue
                values[relation] = target
                if target is not None:
                    # Later steps may write the related record too (the deal's customer to the ERP).
                    item.records.setdefault(related, target)

    def _find(self, entity: str, rows: list, primary: str, object_name: str, primary_refs: dict):
        """(record, how, candidates) for each row: by its own id first, then by the flow's match keys."""
        spec = ENTITIES[entity]
        results: list = [(None, "", [])] * len(rows)
        if entity == primary:
            own = {primary_refs[i.source.external_id][0] for i, _ in rows if i.source.external_id in primary_refs}
            loaded = self.records(entity, own)
            for index, (item, _) in enumerate(rows):
                ref = primary_refs.get(item.source.external_id)
                if ref is not None and ref[0] in loaded:
                    results[index] = (loaded[ref[0]], "alias" if ref[1] else "ref", [])
        keys = self._keys_of[entity]
        open_rows = [
            index
            for index, (item, _) in enumerate(rows)
            if results[index][1] == ""
            and not (entity == primary and (object_name, item.source.external_id) in self.unmatched)
        ]
        if keys and open_rows:
            candidates: dict[int, dict[int, models.Model]] = defaultdict(dict)
            for key in keys:
                wanted = defaultdict(list)
                for index in open_rows:
                    value = NORMALISERS[key.kind](rows[index][1].get(key.field))
                    if value:
                        wanted[value].append(index)
                if wanted:
                    for record in spec.model.objects.filter(**{f"{key.lookup}__any": list(wanted)}).order_by("pk"):
                        for index in wanted.get(getattr(record, key.lookup), []):
                            candidates[index].setdefault(record.pk, record)
            for index in open_rows:
                found = list(candidates[index].values())
                if len(found) > 1:
                    results[index] = (None, "ambiguous", found)
                elif found:
                    results[index] = (found[0], "key", [])
        elif spec.natural_key and not spec.match_keys:
            values = {rows[i][1].get(spec.natural_key) for i in open_rows} - {None, ""}
            found = self.by_natural_key(entity, values)
            for index in open_rows:
                record = found.get(rows[index][1].get(spec.natural_key))
                if record is not None:
                    results[index] = (record, "key", [])
        elif spec.identity:
            results = self._find_by_identity(entity, rows, open_rows, results)
        return results

    def _pending(self, entity: str, values: dict, pending: dict, item):
        """The item earlier in this page that creates the record these values name (same match key), or None."""
        spec = ENTITIES[entity]
        for key in self._keys_of[entity]:
            value = NORMALISERS[key.kind](values.get(key.field))
            creator = pending.get((entity, key.field, value)) if value else None
            if creator is not None and creator is not item:
                return creator
        if spec.natural_key and not spec.match_keys and not blank(values.get(spec.natural_key)):
            creator = pending.get((entity, spec.natural_key, values[spec.natural_key]))
            if creator is not None and creator is not item:
                return creator
        return None

    def _find_by_identity(self, entity: str, rows: list, open_rows: list, results: list) -> list:
        """Records identified by several fields (a rate: person, kind, date), one query for the page."""
        spec = ENTITIES[entity]
        wanted = {}
        for index in open_rows:
            values = rows[index][1]
            parts = [values.get(name) for name in spec.identity]
            if any(part is None or (isinstance(part, models.Model) and part.pk is None) for part in parts):
                continue
            key = tuple(part.pk if isinstance(part, models.Model) else part for part in parts)
            wanted[index] = key
        if not wanted:
            return results
        filters = {}
        for position, name in enumerate(spec.identity):
            model_field = spec.model._meta.get_field(name)
            lookup = model_field.attname if isinstance(model_field, models.ForeignKey) else name
            filters[f"{lookup}__any"] = {key[position] for key in wanted.values()}
        found = {}
        for record in spec.model.objects.filter(**filters):
            key = tuple(getattr(record, spec.model._meta.get_field(name).attname) for name in spec.identity)
            found.setdefault(key, record)
        results = list(results)
        for index, key in wanted.items():
            record = found.get(key)
            if record is not None:
                results[index] = (record, "key", [])
        return results

    def _twin(self, entity: str, record, item, how: str, object_name: str, claimed: dict) -> str | None:
        """The source's other record this one duplicates, when the canonical record it matched already stands
        for one (linked before, or by another item of this page)."""
        if how == "pending":
            return record.source.external_id  # `record` is the item of this page that creates it
        other = claimed.get((entity, record.pk))
        if other is not None and other is not item:
            return other.source.external_id
        known = self._twins_known.get((entity, record.pk))
        return known if known is not None and known != item.source.external_id else None

    def twins_prefetch(self, entity: str, object_name: str, record_ids: set[int]) -> None:
        """Which of these records this system's records already stand for (one query), for _twin."""
        if not record_ids:
            self._twins_known = {}
            return
        self._twins_known = {
            (entity, record_id): external_id
            for external_id, record_id in ExternalRef.objects.filter(
                connection=self.source, object=object_name, entity=entity, record_id__any=record_ids, alias=False
            ).values_list("external_id", "record_id")
        }

    # -- writing -------------------------------------------------------------------------------
    def apply(self, items: list, *, primary: str, object_name: str) -> None:
        """Write what `plan` decided for the items still going, a few statements per kind of record."""
        going = [item for item in items if item.plan and not item.failed]
        for entity in ORDER:
            planned = [item.plan[entity] for item in going if entity in item.plan]
            # New rows once each (items of a page may share one), whichever item planned them is still going.
            new = list({id(p.record): p.record for p in planned if p.record.pk is None}.values())
            changed = [p for p in planned if p.record.pk is not None and p.changed]
            for record in new + [p.record for p in changed]:
                sync_foreign_keys(record)
                prepare(record)
            bulk.insert(new)
            if changed:
                fields = set().union(*(p.changed for p in changed))
                if entity == "customer":
                    fields |= {"name_key", "domain"}
                bulk.update([p.record for p in changed], fields)
            for p in planned:
                self._records[(entity, p.record.pk)] = p.record
        links, moved = [], []
        for item in going:
            planned = item.plan.get(primary)
            if planned is None:
                continue
            key = (object_name, item.source.external_id)
            known = self._refs.get(key)
            if known == planned.record.pk:
                continue
            if known is None:
                links.append(
                    {
                        "connection_id": self.source.pk,
                        "object": object_name,
                        "external_id": item.source.external_id,
                        "entity": primary,
                        "record_id": planned.record.pk,
                    }
                )
            else:
                moved.append((item.source.external_id, planned.record.pk))
            self._refs[key] = planned.record.pk
        bulk.copy_in(ExternalRef, links)
        for external_id, record_id in moved:  # rare: a record this id stood for was replaced
            ExternalRef.objects.filter(connection=self.source, object=object_name, external_id=external_id).update(
                entity=primary, record_id=record_id, alias=False
            )
