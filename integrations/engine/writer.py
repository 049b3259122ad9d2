"""Writing canonical records to a target system: one step of a flow, a batch at a time.

Records the target has (an ExternalRef) are updated by its id. The others are first looked for again:
`link_before_create` locks that system for every workspace and reads its records (its reference flows), so
what is already there is linked; the rest are upserted by our key, so a retry after a crash finds what the
first attempt created. Every outcome is said per record (created, linked, updated, unchanged), and a record
the target refused is a failure the caller records.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from connectors.base import AuthenticationFailed, ConnectorError, DestinationRefused, OutboundRecord
from integrations.engine.entities import ENTITIES
from integrations.engine.mapping import MappingContext, Problem, apply_mapping
from integrations.engine.views import canonical_view, target_refs
from integrations.models import ExternalRef


@dataclass
class Written:
    """What a step did to one group of items (those that share a canonical record)."""

    items: list
    record: object
    action: str = ""  # created, linked, updated, unchanged
    target_id: str = ""
    problems: list[Problem] = field(default_factory=list)  # the outbound mapping could not be applied
    refused: tuple[str, str] | None = None  # (code, message) from the target
    existed: bool = False  # the target's record was linked before this step ran


def _related(entity: str, records: list) -> dict[str, set[int]]:
    wanted: dict[str, set[int]] = defaultdict(set)
    spec = ENTITIES[entity]
    for record in records:
        wanted[entity].add(record.pk)
        for relation, related_entity in spec.relations.items():
            pk = getattr(record, f"{relation}_id", None)
            if pk is not None:
                wanted[related_entity].add(pk)
    return wanted


class StepWriter:
    def __init__(self, *, step, target, rules: list, context: MappingContext, link_before_create: Callable):
        self.step, self.target, self.rules, self.context = step, target, rules, context
        self.link_before_create = link_before_create

    def write(self, groups: list[tuple[list, object]], *, always: bool = False) -> list[Written]:
        """Write each (items, record) group; `always` writes even unchanged records (a rebuilt invoice)."""
        connection, entity = self.step.target_connection, self.step.entity
        refs = target_refs(connection, _related(entity, [record for _, record in groups]))
        results, updates, unlinked = [], [], []
        for items, record in groups:
            written = Written(items, record)
            results.append(written)
            ref = refs.get((entity, record.pk))
            written.existed = bool(ref)
            changed = always or any(entity in item.changed_entities for item in items)
            if ref and not changed:
                written.action, written.target_id = "unchanged", ref
                continue
            if ref is None and not always:
                unlinked.append(written)
                continue
            outbound = self._outbound(written, canonical_view(entity, record, connection, refs))
            if outbound is not None:
                updates.append((outbound, written))
        if unlinked:
            with self.link_before_create(connection, self.step.target_object):
                refs.update(target_refs(connection, _related(entity, [w.record for w in unlinked])))
                creates = []
                for written in unlinked:
                    ref = refs.get((entity, written.record.pk))
                    if ref and not any(entity in item.changed_entities for item in written.items):
                        written.action, written.target_id = "linked", ref
                        continue
                    view = canonical_view(entity, written.record, connection, refs)
                    outbound = self._outbound(written, view)
                    if outbound is not None:
                        creates.append((outbound, written))
                self._send(creates)
        self._send(updates)
        return results

    def _outbound(self, written: Written, view: dict) -> OutboundRecord | None:
        mapped = apply_mapping(self.rules, view, self.context)
        if not mapped.ok:
            written.problems = mapped.problems
            return None
        return OutboundRecord(external_id=view["key"], fields=mapped.values, target_id=view["ref"])

    def _send(self, outbound: list[tuple[OutboundRecord, Written]]) -> None:
        """Updates by the target's id, upserts by our key, in the vendor's batch size; the refs they give back
        are stored in one statement per batch."""
        size = max(1, self.target.batch_size(self.step.target_object))
        for mode in ("update", "upsert"):
            entries = [entry for entry in outbound if bool(entry[0].target_id) == (mode == "update")]
            for start in range(0, len(entries), size):
                self._send_batch(entries[start : start + size], mode)

    def _send_batch(self, batch: list[tuple[OutboundRecord, Written]], mode: str) -> None:
        step = self.step
        try:
            results = self.target.write(step.target_object, [record for record, _ in batch], mode=mode)
        except (AuthenticationFailed, DestinationRefused):
            raise
        except ConnectorError as error:
            label = ENTITIES[step.entity].label.lower()
            for _, written in batch:
                written.refused = ("TARGET_UNAVAILABLE", f"{self.target.label} did not accept the {label}: {error}")
            return
        new_refs, moved = [], []
        for (record, written), result in zip(batch, results, strict=True):
            if result.outcome == "failed":
                written.refused = (result.error_code or "TARGET_REJECTED", result.error_message or "refused")
                continue
            written.action, written.target_id = result.outcome, str(result.target_id or record.target_id or "")
            if result.target_id and str(result.target_id) != str(record.target_id or ""):
                (moved if record.target_id else new_refs).append((written.record.pk, str(result.target_id)))
        # Refs the target gave back, in one statement; an id another record holds already is left to it.
        ExternalRef.objects.bulk_create(
            [
                ExternalRef(
                    connection=step.target_connection,
                    object=step.target_object,
                    entity=step.entity,
                    record_id=pk,
                    external_id=target_id,
                )
                for pk, target_id in new_refs
            ],
            ignore_conflicts=True,
        )
        for pk, target_id in moved:
            ExternalRef.objects.filter(
                connection=step.target_connection,
                object=step.target_object,
                entity=step.entity,
                record_id=pk,
                alias=False,
            ).update(external_id=target_id)
