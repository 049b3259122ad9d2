"""Canonical records as plain dicts for outbound mappings, with their ids in the target system."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from django.db import models
from django.utils import timezone

from integrations.engine.entities import ENTITIES
from integrations.models import ExternalRef


def record_key(entity: str, pk: int) -> str:
    """Our stable id for a canonical record, used as the external id in every target system.

    Named after the workspace ("contoso-customer-12"): unique among the workspaces that share a system,
    and never the platform's name, which a partner's client must not see.
    """
    from django.db import connection

    workspace = getattr(getattr(connection, "tenant", None), "slug", "") or connection.schema_name
    return f"{workspace}-{entity.replace('_', '-')}-{pk}"


def _value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def target_ref(connection, entity: str, pk: int | None) -> str | None:
    if pk is None:
        return None
    return (
        ExternalRef.objects.filter(connection=connection, entity=entity, record_id=pk, alias=False)
        .values_list("external_id", flat=True)
        .first()
    )


def target_refs(connection, records: dict[str, set[int]]) -> dict[tuple[str, int], str]:
    """Ids in `connection` of many canonical records ({entity: {pk}}), one query per entity."""
    found: dict[tuple[str, int], str] = {}
    for entity, pks in records.items():
        pks = {pk for pk in pks if pk is not None}
        if not pks:
            continue
        for external_id, record_id in ExternalRef.objects.filter(
            connection=connection, entity=entity, record_id__in=pks, alias=False
        ).values_list("external_id", "record_id"):
            found[(entity, record_id)] = external_id
    return found


def canonical_view(
    entity: str, record: models.Model, connection, refs: dict[tuple[str, int], str] | None = None
) -> dict[str, Any]:
    """The record's fields, its key, its id in `connection`, and the same for each related record.

    `refs` are ids in `connection` read beforehand for a whole batch (target_refs); without it, a query each.
    """
    spec = ENTITIES[entity]

    def ref(of: str, pk: int | None) -> str | None:
        if refs is not None:
            return refs.get((of, pk))
        return target_ref(connection, of, pk)

    data: dict[str, Any] = {"key": record_key(entity, record.pk), "ref": ref(entity, record.pk)}
    for model_field in record._meta.concrete_fields:
        if isinstance(model_field, models.ForeignKey):
            continue
        data[model_field.name] = _value(getattr(record, model_field.attname))
    for relation, related_entity in spec.relations.items():
        related = getattr(record, relation, None)
        if related is None:
            data[relation] = None
            continue
        related_data = {
            f.name: _value(getattr(related, f.attname))
            for f in related._meta.concrete_fields
            if not isinstance(f, models.ForeignKey)
        }
        related_data["key"] = record_key(related_entity, related.pk)
        related_data["ref"] = ref(related_entity, related.pk)
        data[relation] = related_data
    if entity == "resource":
        from integrations.engine.validation import cost_rate_on

        rate = cost_rate_on(record, timezone.now().date())
        data["cost_rate"] = _value(rate.amount) if rate else None
        data["cost_currency"] = rate.currency if rate else None
    if entity == "invoice":
        data["lines"] = [
            {
                "description": line.description,
                "quantity": _value(line.quantity),
                "rate": _value(line.rate),
                "amount": _value(line.amount),
                "kind": line.kind,
            }
            for line in getattr(record, "prepared_lines", None) or record.lines.all()
        ]
    return data
