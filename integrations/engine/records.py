"""A canonical record in memory, as the store plans it: planned_of works out what a source's values would do to a
record (a Planned, with the Conflicts it met), a new instance made cheaply, what Model.full_clean would refuse
(checked without it: too slow for every record of a page), its foreign keys once related rows have ids, and the
small value tests the planner shares."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from django.core import validators
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.base import ModelState

from integrations.engine.entities import ENTITIES, field_owner
from integrations.engine.keys import NORMALISERS, domain_key, name_key
from integrations.engine.mapping import Problem
from integrations.models import Customer


@dataclass
class Conflict:
    entity: str
    field: str
    owner: str
    current: Any
    proposed: Any


@dataclass
class Planned:
    """What the page will do to one canonical record."""

    entity: str
    record: models.Model
    new: bool = False
    changed: set = field(default_factory=set)
    how: str = ""  # found by "ref" (its own id), "alias", "key" (match keys), or "" (new)


def plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def prepare(record: models.Model) -> None:
    """What a model's save() would compute, for rows written in bulk (Customer's match keys)."""
    if isinstance(record, Customer):
        record.name_key = name_key(record.name)
        record.domain = domain_key(record.domain) or record.domain


@dataclass(frozen=True)
class Fields:
    """A canonical model's fields as planned_of needs them, worked out once per model."""

    model: type[models.Model]
    by_name: dict[str, tuple[models.Field, bool]]  # name -> (field, is a foreign key)
    checked: tuple[models.Field, ...]  # what Model.full_clean checks: every concrete field but the keys
    defaults: dict | None  # a new instance's attributes, when no default is computed per instance
    quick: dict[str, Callable[[Any], bool]]  # name -> a test that passes only values the field's validation passes
    exact: dict[str, type]  # name -> the type of value the field's to_python gives back as it is

    def new(self) -> models.Model:
        """An unsaved instance as Model() makes it: its defaults copied in, without Model.__init__'s work per
        field (a page makes hundreds)."""
        if self.defaults is None:
            return self.model()
        record = self.model.__new__(self.model)
        record.__dict__.update(self.defaults)
        record._state = ModelState()
        return record


_FIELDS: dict[type, Fields] = {}


def fields_of(model: type[models.Model]) -> Fields:
    if model not in _FIELDS:
        concrete = [f for f in model._meta.concrete_fields if not f.primary_key]
        computed = any(callable(f.default) for f in concrete if f.has_default())
        template = None if computed else {k: v for k, v in model().__dict__.items() if k != "_state"}
        _FIELDS[model] = Fields(
            model=model,
            by_name={f.name: (f, isinstance(f, models.ForeignKey)) for f in concrete},
            checked=tuple(f for f in concrete if not isinstance(f, models.ForeignKey)),
            defaults=template,
            quick={f.name: test for f in concrete if (test := _quick_test(f)) is not None},
            exact={f.name: kind for f in concrete if (kind := _exact_type(f)) is not None},
        )
    return _FIELDS[model]


def _exact_type(field: models.Field) -> type | None:
    """The type whose values `field.to_python` returns unchanged (a finite Decimal, for a DecimalField), so the
    planner need not call it for a value the mapping typed already. None where to_python may change any value."""
    if isinstance(field, models.ForeignKey):
        return None
    if type(field) in (models.CharField, models.TextField, models.EmailField, models.SlugField):
        return str
    if type(field) is models.DateField:
        return date
    if type(field) is models.BooleanField:
        return bool
    if type(field) is models.DecimalField:
        return Decimal
    return None


def _quick_test(field: models.Field) -> Callable[[Any], bool] | None:
    """A cheap test of a cleaned value that passes only what Field.validate and its validators pass (a value it
    fails goes through Django's own validation, for the message). None where the field needs Django's."""
    if field.choices or not field.editable:
        return None
    allowed = (validators.MaxLengthValidator, validators.DecimalValidator, validators.ProhibitNullCharactersValidator)
    if any(type(v) not in allowed for v in field.validators):
        return None
    if isinstance(field, models.CharField | models.TextField):
        limit = field.max_length or float("inf")
        return lambda v: type(v) is str and (v or field.blank) and len(v) <= limit and "\x00" not in v
    if isinstance(field, models.DecimalField):
        whole_limit = field.max_digits - field.decimal_places
        places = field.decimal_places

        def decimal_fits(v) -> bool:  # DecimalValidator's count of digits, without building its messages
            if type(v) is not Decimal or not v.is_finite():
                return False
            _, digits, exponent = v.as_tuple()
            if exponent >= 0:
                total, decimals = len(digits) + (exponent if digits != (0,) else 0), 0
            elif -exponent > len(digits):
                total = decimals = -exponent
            else:
                total, decimals = len(digits), -exponent
            return total <= field.max_digits and decimals <= places and total - decimals <= whole_limit

        return decimal_fits
    if type(field) is models.DateField:
        return lambda v: type(v) is date
    if isinstance(field, models.BooleanField):
        return lambda v: type(v) is bool
    return None


def invalid(record: models.Model, fields: Fields, changed: set[str], *, new: bool) -> dict[str, list[str]]:
    """What Model.full_clean would refuse (relations were resolved already, so keys are not looked up again).

    A value the source set is cleaned as full_clean cleans it (type, length, choices, validators). A value it
    did not set is the model's default or what the database holds, so only its presence is checked: a required
    field left empty (full_clean's "cannot be null" and "cannot be blank")."""
    errors: dict[str, list[str]] = {}
    for model_field in fields.checked:
        value = getattr(record, model_field.attname)
        if model_field.blank and value in model_field.empty_values:
            continue  # as full_clean: an empty value a field allows is not checked further
        if model_field.name in changed:
            quick = fields.quick.get(model_field.name)
            if quick is not None and quick(value):
                continue  # plainly valid: what Django's validators would accept, checked without them
            try:  # Field.clean less its to_python, which planned_of applied already
                model_field.validate(value, record)
                model_field.run_validators(value)
            except ValidationError as error:
                errors[model_field.name] = error.messages
        elif new and value is None and not model_field.null:
            errors[model_field.name] = [str(model_field.error_messages["null"])]
        elif new and value in model_field.empty_values:
            errors[model_field.name] = [str(model_field.error_messages["blank"])]
    if not errors:
        try:
            record.clean()
        except ValidationError as error:
            errors = error.message_dict if hasattr(error, "error_dict") else {"record": error.messages}
    return errors


def sync_foreign_keys(record: models.Model) -> None:
    """A related record created earlier in the page has its id now: copy it to the foreign key column."""
    for model_field in record._meta.concrete_fields:
        if isinstance(model_field, models.ForeignKey) and model_field.is_cached(record):
            related = model_field.get_cached_value(record)
            setattr(record, model_field.attname, related.pk if related is not None else None)


def same_key(spec, name: str, current, proposed) -> bool:
    """Two spellings a match key takes for one ("PIPER HEALTH" and "Piper Health"): not a change to make or
    a conflict to raise, since the systems agree on what they name."""
    for key in spec.match_keys.values():
        if key.field == name:
            normalise = NORMALISERS[key.kind]
            return bool(normalise(current)) and normalise(current) == normalise(proposed)
    return False


def natural(record) -> str:
    spec = next((spec for spec in ENTITIES.values() if isinstance(record, spec.model)), None)
    if spec is not None and spec.natural_key:
        return str(getattr(record, spec.natural_key))
    return str(record)


# Time and expenses are booked in the environment of the system they are read from.
BOOKED_BY_ENVIRONMENT = ("time_entry", "expense")


def planned_of(
    entity: str, values: dict, existing, item, *, owners: dict, category: str, environment: str
) -> Planned | None:
    """The record as the source's values would leave it: changed fields, conflicts (fields `owners` gives to a
    system other than `category`, the source's kind), problems on `item`; nothing written. A new time entry or
    expense is booked in `environment`."""
    spec = ENTITIES[entity]
    fields = fields_of(spec.model)
    # A copy: the cached record stays as the database has it until this plan is applied.
    record = copy.copy(existing) if existing is not None else fields.new()
    if existing is None and entity in BOOKED_BY_ENVIRONMENT:
        record.environment = environment
    changed = set()
    for name, proposed in values.items():
        model_field, foreign = fields.by_name[name]
        exact = fields.exact.get(name)
        try:
            if not foreign and not (type(proposed) is exact and (exact is not Decimal or proposed.is_finite())):
                proposed = model_field.to_python(proposed)
        except ValidationError:
            item.problems.append(
                Problem(f"{entity}.{name}", "BAD_VALUE", f"{model_field.verbose_name} “{proposed}” is not valid")
            )
            return None
        if proposed is None and not model_field.null and not foreign:
            if existing is not None or model_field.has_default():
                continue
            if isinstance(model_field, models.CharField | models.TextField):
                proposed = ""  # a blank text field, as a person leaves it empty (a deal with no terms)
        if foreign:
            current = getattr(record, model_field.attname)
            if existing is not None and proposed is not None and current == proposed.pk and proposed.pk:
                continue
            if existing is not None and proposed is None and current is None:
                continue
        else:
            current = getattr(record, name)
            if existing is not None and (current == proposed or same_key(spec, name, current, proposed)):
                continue
        owner = field_owner(entity, name, owners)
        if existing is not None and owner and owner != category and not blank(current):
            item.conflicts.append(Conflict(entity, name, owner, plain(current), plain(proposed)))
            continue
        if foreign:
            # What the descriptor does, less its checks (the store resolved `proposed` from this database).
            setattr(record, model_field.attname, proposed.pk if proposed is not None else None)
            model_field.set_cached_value(record, proposed)
        else:
            setattr(record, name, proposed)
        changed.add(name)
    if existing is None or changed:
        errors = invalid(record, fields, changed, new=existing is None)
        if errors:
            detail = "; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items())
            item.problems.append(Problem(entity, "INVALID_RECORD", f"{spec.label} is incomplete ({detail})"))
            return None
    return Planned(entity, record, new=existing is None, changed=changed)
