"""Mapping forms: one rule (its sources, transforms and their parameters) and a value map's entries."""

from __future__ import annotations

import re

from django import forms
from django.core.exceptions import ValidationError

from integrations.engine.entities import ENTITIES
from integrations.engine.mapping import TRANSFORM_LABELS
from integrations.forms import one_line
from integrations.models import MappingRule, ValueMap

# Parameters a person may set per transform: (name, label, kind). Transforms not listed here
# (references, invoice lines, vendor id wrappers) are set by templates and shown read-only.
TRANSFORM_PARAMS: dict[str, list[tuple[str, str, str]]] = {
    "trim": [],
    "upper": [],
    "lower": [],
    "boolean": [],
    "cents_to_amount": [],
    "amount_to_cents": [],
    "minutes_to_hours": [],
    "hours_to_minutes": [],
    "date": [("format", "Format (blank: ISO 8601)", "text")],
    "datetime": [("format", "Format (blank: ISO 8601)", "text"), ("tz", "Time zone", "text")],
    "format_date": [("format", "Format", "text")],
    "number": [("places", "Decimal places", "int")],
    "currency": [("default", "Default currency", "text")],
    "split": [
        ("separator", "Separator", "text"),
        ("index", "Part (0 first, -1 last)", "int"),
        ("rest", "With every part after it", "bool"),
    ],
    "default": [("value", "Value when blank", "text")],
    "lookup": [("value_map", "Value map", "value_map"), ("fallback", "Keep values not in the map", "bool")],
    "prefix": [("value", "Prefix", "text")],
    "concat": [("separator", "Separator", "text")],
}


TRANSFORM_SLOTS = 4


def transforms_editable(transforms: list[dict]) -> bool:
    for transform in transforms:
        params = TRANSFORM_PARAMS.get(transform.get("name"))
        if params is None:
            return False
        names = {name for name, _, _ in params}
        for key, value in transform.items():
            if key == "name":
                continue
            if key not in names or isinstance(value, dict | list):
                return False
    return True


class RuleForm(forms.Form):
    """One mapping rule; the transform slots grow their parameter fields from the chosen transform."""

    label = forms.CharField(max_length=120, required=False, label="Label", validators=[one_line])
    target = forms.CharField(max_length=120, label="Target field", validators=[one_line])
    sources = forms.CharField(
        max_length=400,
        required=False,
        label="Source field",
        help_text="A path into the source record, e.g. date_performed or parent.id; several, comma-separated, are joined.",
        validators=[one_line],
    )
    required = forms.BooleanField(required=False, label="Required: a record without it becomes an exception")

    def __init__(self, *args, rule: MappingRule | None = None, inbound: bool = True, **kwargs):
        self.rule = rule
        self.inbound = inbound
        transforms = list(rule.transforms) if rule else []
        self.locked = rule is not None and not transforms_editable(transforms)
        # The rule as stored, then what the person has typed so far (a redraw after a transform change).
        typed = kwargs.pop("initial", {}) or {}
        initial: dict = {}
        if rule is not None:
            initial.update(
                label=rule.label, target=rule.target, sources=", ".join(rule.sources), required=rule.required
            )
            if not self.locked:
                for index, transform in enumerate(transforms[:TRANSFORM_SLOTS]):
                    initial[f"t{index}_name"] = transform["name"]
                    for key, value in transform.items():
                        if key != "name":
                            initial[f"t{index}_{key}"] = bool(value) if key == "fallback" else value
        if typed:
            initial = {key: value for key, value in initial.items() if not key.startswith("t") or key == "target"}
            initial.update(typed)
            initial["required"] = typed.get("required") in ("on", "true", "1", True)
        super().__init__(*args, initial=initial, **kwargs)
        if rule is not None:
            self.fields["target"].disabled = True
        self.slots = []
        if self.locked:
            return
        choices = [("", "—")] + sorted(
            ((name, TRANSFORM_LABELS.get(name, name)) for name in TRANSFORM_PARAMS), key=lambda c: c[1]
        )
        value_maps = [("", "Choose a value map"), *ValueMap.objects.values_list("key", "name")]
        for index in range(TRANSFORM_SLOTS):
            name_field = f"t{index}_name"
            self.fields[name_field] = forms.ChoiceField(choices=choices, required=False, label=f"Step {index + 1}")
            chosen = self.data.get(name_field) if self.is_bound else self.initial.get(name_field)
            params = []
            for param, label, kind in TRANSFORM_PARAMS.get(chosen or "", []):
                key = f"t{index}_{param}"
                if kind == "int":
                    field = forms.IntegerField(required=False, label=label, min_value=-20, max_value=20)
                elif kind == "bool":
                    field = forms.BooleanField(required=False, label=label)
                elif kind == "value_map":
                    field = forms.ChoiceField(choices=value_maps, required=True, label=label)
                else:
                    field = forms.CharField(required=False, max_length=120, label=label, strip=False)
                    field.validators.append(one_line)
                self.fields[key] = field
                params.append(key)
            self.slots.append((name_field, params))

    def slot_fields(self):
        return [(self[name], [self[p] for p in params]) for name, params in self.slots]

    def clean_target(self):
        target = self.cleaned_data["target"].strip()
        if self.inbound:
            entity, _, name = target.partition(".")
            spec = ENTITIES.get(entity)
            if spec is None or not name:
                raise ValidationError("Name a canonical field as entity.field, e.g. time_entry.notes.")
            fields = {f.name for f in spec.model._meta.concrete_fields}
            if name not in fields:
                raise ValidationError(f"{spec.label} has no field “{name}”.")
        elif not re.fullmatch(r"[A-Za-z0-9_.\-]+", target):
            raise ValidationError("Name the target system's field, e.g. memo.")
        return target

    def clean_sources(self):
        raw = self.cleaned_data.get("sources") or ""
        paths = [part.strip() for part in raw.split(",") if part.strip()]
        for path in paths:
            if not re.fullmatch(r"[A-Za-z0-9_\-@]+(\.[A-Za-z0-9_\-@]+)*", path):
                raise ValidationError(f"“{path}” is not a field path such as parent.id.")
        return paths

    def values(self) -> dict:
        """The rule as the engine stores it (sources list, transforms list of dicts)."""
        data = self.cleaned_data
        if self.locked:
            transforms = list(self.rule.transforms)
        else:
            transforms = []
            for name_field, params in self.slots:
                name = data.get(name_field)
                if not name:
                    continue
                transform = {"name": name}
                for key in params:
                    param = key.split("_", 1)[1]
                    value = data.get(key)
                    if param == "fallback":
                        if value:
                            transform["fallback"] = "keep"
                    elif value not in (None, ""):
                        transform[param] = value
                transforms.append(transform)
        target = self.rule.target if self.rule is not None else data["target"]
        return {
            "target": target,
            "sources": data.get("sources") or [],
            "transforms": transforms,
            "required": bool(data.get("required")),
            "label": (data.get("label") or "").strip(),
        }


class ValueMapEntryForm(forms.Form):
    source_value = forms.CharField(max_length=200, label="When the source says", validators=[one_line])
    target_value = forms.CharField(max_length=200, label="Write", validators=[one_line])
