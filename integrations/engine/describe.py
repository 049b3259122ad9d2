"""How a record is named to a person: in an exception's sentence, a reconciliation row, a waiting list."""

from __future__ import annotations

import json
from datetime import date

from integrations.engine.entities import ENTITIES
from integrations.engine.mapping import MISSING, Ref, Rule, get_path
from integrations.engine.views import record_key


def jsonable(value):
    try:
        json.dumps(value)
        return value
    except TypeError:
        return repr(value)


def original_value(rules: list[Rule], target: str, data) -> str | None:
    """The value as the source system spelled it, before any lookup: what a clerk maps."""
    for rule in rules:
        if rule.target == target and rule.sources:
            value = get_path(data, rule.sources[0])
            return None if value is MISSING or value is None else str(value).strip()
    return None


def describe_record(entity: str, record) -> str:
    """“Time entry of 6 Mar on project PRJ-104”, “Customer Piper Health”, from a canonical record."""
    spec = ENTITIES[entity]
    if entity in ("time_entry", "expense"):
        return f"{spec.label} of {record.date:%-d %b} on project {record.project.code}"
    values = {f.name: getattr(record, f.name, "") for f in record._meta.concrete_fields}
    try:
        return (
            spec.describe.format(**values).strip().capitalize()
            if spec.describe != "{pk}"
            else f"{spec.label} {record.pk}"
        )
    except (KeyError, ValueError):
        return f"{spec.label} {record_key(entity, record.pk)}"


def describe_item(flow, item, store=None, rules: list[Rule] | None = None) -> str:
    """A source record as far as the mapping got: “Time entry of 6 Mar on project PRJ-104”, “Person Ana Costa”."""
    data = item.source.data
    entity = flow.entity
    label = ENTITIES[entity].label if entity in ENTITIES else flow.source_object
    mapped = item.entities.get(entity, {}) if item.entities else {}
    if entity in ("time_entry", "expense"):
        day = mapped.get("date") or _date_guess(data)
        record = item.records.get(entity) or (item.plan[entity].record if entity in item.plan else None)
        code = (
            record.project.code
            if record is not None and record.project_id
            else _project_code(item, entity, store, rules)
        )
        when = f" of {day:%-d %b}" if isinstance(day, date) else ""
        return f"{label}{when}" + (f" on project {code}" if code else "")
    # A person whose email is what is missing is named by name, not by the source system's id for them.
    person = " ".join(str(mapped.get(part) or "") for part in ("first_name", "last_name")).strip()
    name = (
        mapped.get("name")
        or mapped.get("code")
        or mapped.get("email")
        or person
        or (data.get("name") if hasattr(data, "get") else None)
        or (data.get("displayName") if hasattr(data, "get") else None)
    )
    return f"{label} {name}" if name else f"{label} {item.source.external_id}"


def subject_of(item, entity: str) -> str:
    """What a person calls the record: its code, name or email as mapped, else the person's name, else nothing."""
    mapped = item.entities.get(entity, {}) if item.entities else {}
    for name in ("code", "name", "email", "number"):
        value = mapped.get(name)
        if value not in (None, ""):
            return str(value)[:200]
    person = " ".join(str(mapped.get(name) or "") for name in ("first_name", "last_name")).strip()
    return person[:200]


def _date_guess(data) -> date | None:
    for key in ("date_performed", "date", "Date"):
        value = data.get(key) if hasattr(data, "get") else None
        if value:
            try:
                return date.fromisoformat(str(value)[:10])
            except ValueError:
                return None
    return None


def _project_code(item, entity: str, store, rules: list[Rule] | None) -> str | None:
    """The project's code as the source names it; a reference by id is resolved through the store's links."""
    raw = (item.entities or {}).get(entity, {}).get("project")
    if isinstance(raw, Ref) and store is not None:
        record_id = store.refs({(raw.object, raw.external_id)}).get((raw.object, raw.external_id))
        project = store.records("project", {record_id}).get(record_id) if record_id else None
        return project.code if project else None
    for rule in rules or []:
        if rule.target.endswith(".project") and rule.sources:
            value = get_path(item.source.data, rule.sources[0])
            if value is MISSING or value is None:
                return None
            if any(t.get("name") == "ref" for t in rule.transforms):
                return None  # an id the store could not resolve: not a code a person knows
            return str(value)
    return None
