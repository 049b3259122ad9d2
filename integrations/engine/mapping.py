"""Mapping rules as data: source paths -> target field, through a fixed library of transforms.

Nothing here evaluates user text: a rule names transforms from TRANSFORMS with literal
parameters, and a path is a dotted walk through dicts and lists. Pure Python, no Django.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

MISSING = object()


@dataclass(frozen=True)
class Ref:
    """A pointer to another record by the source system's id, resolved by the canonical store."""

    entity: str
    object: str
    external_id: str


@dataclass(frozen=True)
class Rule:
    target: str
    sources: tuple[str, ...]
    transforms: tuple[Mapping[str, Any], ...] = ()
    required: bool = False
    label: str = ""


@dataclass(frozen=True)
class Problem:
    """Why a field could not be mapped, in words a finance clerk understands, and how to fix it."""

    target: str
    code: str
    message: str
    fix: Mapping[str, Any] | None = None
    value: Any = None


class TransformError(Exception):
    def __init__(self, code: str, message: str, fix: Mapping[str, Any] | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.fix = fix


@dataclass
class MappingResult:
    values: dict[str, Any] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def get_path(record: Any, path: str) -> Any:
    """Walk "a.b.0.c" through dicts and lists; MISSING when any step is absent."""
    if "." not in path and isinstance(record, dict):  # most paths: one field of a JSON object
        return record.get(path, MISSING)
    current = record
    for part in path.split("."):
        if isinstance(current, Mapping):
            if part not in current:
                return MISSING
            current = current[part]
        elif isinstance(current, list | tuple) and part.lstrip("-").isdigit():
            index = int(part)
            if not -len(current) <= index < len(current):
                return MISSING
            current = current[index]
        else:
            return MISSING
    return current


def _blank(value: Any) -> bool:
    return value is None or value is MISSING or (isinstance(value, str) and not value.strip())


def _text(value: Any) -> str:
    return "" if _blank(value) else str(value)


def _decimal(value: Any, params: Mapping[str, Any]) -> Decimal | None:
    if _blank(value):
        return None
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int | float):
        return Decimal(str(value))
    text = str(value).strip()
    thousands = params.get("thousands", ",")
    decimal_mark = params.get("decimal", ".")
    text = text.replace(thousands, "").replace(decimal_mark, ".") if thousands else text.replace(decimal_mark, ".")
    text = text.replace(" ", "").lstrip("$€£")
    try:
        return Decimal(text)
    except InvalidOperation as error:
        raise TransformError("BAD_NUMBER", f"“{value}” is not a number") from error


def t_trim(value, params, ctx):
    return value.strip() if isinstance(value, str) else value


def t_upper(value, params, ctx):
    return value.upper() if isinstance(value, str) else value


def t_lower(value, params, ctx):
    return value.lower() if isinstance(value, str) else value


def t_date(value, params, ctx):
    """Parse a date (ISO by default, or params["format"] such as "%m/%d/%Y") into a date."""
    if _blank(value):
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = str(value).strip()
    try:
        if params.get("format"):
            return datetime.strptime(text, params["format"]).date()
        if params.get("epoch_ms") or (text.isdigit() and len(text) >= 12):
            return datetime.fromtimestamp(int(text) / 1000, tz=ZoneInfo("UTC")).date()
        return date.fromisoformat(text[:10])
    except ValueError as error:
        raise TransformError("BAD_DATE", f"“{value}” is not a date") from error


def t_datetime(value, params, ctx):
    """Parse a datetime; naive values are read in params["from_tz"] (default UTC), output in params["tz"]."""
    if _blank(value):
        return None
    try:
        if isinstance(value, datetime):
            parsed = value
        elif params.get("format"):
            parsed = datetime.strptime(str(value).strip(), params["format"])
        else:
            parsed = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=ZoneInfo(params.get("from_tz", "UTC")))
        return parsed.astimezone(ZoneInfo(params.get("tz", "UTC")))
    except (ValueError, ZoneInfoNotFoundError) as error:
        raise TransformError("BAD_DATE", f"“{value}” is not a date and time") from error


def t_format_date(value, params, ctx):
    if _blank(value):
        return None
    if not isinstance(value, date):
        value = t_date(value, {}, ctx)
    return value.strftime(params.get("format", "%Y-%m-%d"))


def t_number(value, params, ctx):
    number = _decimal(value, params)
    if number is None:
        return None
    if "places" in params:
        number = number.quantize(Decimal(1).scaleb(-int(params["places"])), rounding=ROUND_HALF_UP)
    return number


def t_currency(value, params, ctx):
    code = _text(value).strip().upper() or params.get("default", "")
    if not code:
        return None
    if len(code) != 3 or not code.isalpha():
        raise TransformError("BAD_CURRENCY", f"“{value}” is not a currency code such as USD")
    return code


def t_cents_to_amount(value, params, ctx):
    number = _decimal(value, params)
    return None if number is None else (number / 100).quantize(Decimal("0.01"))


def t_amount_to_cents(value, params, ctx):
    number = _decimal(value, params)
    return None if number is None else int((number * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def t_minutes_to_hours(value, params, ctx):
    number = _decimal(value, params)
    return None if number is None else (number / 60).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def t_hours_to_minutes(value, params, ctx):
    number = _decimal(value, params)
    return None if number is None else int((number * 60).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def t_split(value, params, ctx):
    """One part of the value; with `rest`, that part and every one after it ("PRJ-101 Acme ERP"
    split on spaces: part 0 is the code, part 1 with the rest is the name)."""
    if _blank(value):
        return None
    separator = params.get("separator", " ")
    parts = str(value).split(separator)
    index = int(params.get("index", 0))
    if not -len(parts) <= index < len(parts):
        return None
    if params.get("rest"):
        return separator.join(parts[index:]).strip() or None
    return parts[index].strip()


def t_default(value, params, ctx):
    return params.get("value") if _blank(value) else value


def t_boolean(value, params, ctx):
    """Yes or no; with "yes" and "no" words, the word instead (a "terminated" flag as a status)."""
    if value is None:
        return None
    yes = value if isinstance(value, bool) else str(value).strip().lower() in {"1", "true", "yes", "y", "on", "active"}
    if "yes" in params or "no" in params:
        return params.get("yes") if yes else params.get("no")
    return yes


def t_lookup(value, params, ctx):
    """Translate through a value map; an unknown value is a problem with a "map it" fix."""
    if _blank(value):
        return None
    if isinstance(value, Ref):
        return value  # the canonical store applies the map to the record the reference points at
    key = params["value_map"]
    table = ctx.value_maps.get(key, {})
    text = str(value).strip()
    if text in table:
        return table[text]
    if params.get("fallback") == "keep":
        return text
    raise TransformError(
        "VALUE_NOT_MAPPED",
        f"“{text}” has no entry in the value map “{ctx.value_map_names.get(key, key)}”",
        fix={"action": "map_value", "value_map": key, "value": text},
    )


def t_sublist(value, params, ctx):
    """Reshape a list of line dicts: {"key": "items", "fields": {"amount": "amount"}, "constants": {...}}."""
    if not value:
        return None
    lines = []
    for line in value:
        shaped = dict(params.get("constants", {}))
        for target, source in params.get("fields", {}).items():
            item = get_path(line, source)
            shaped[target] = None if item is MISSING else (str(item) if isinstance(item, Decimal) else item)
        lines.append(shaped)
    return {params["key"]: lines} if params.get("key") else lines


def t_prefix(value, params, ctx):
    """{"value": "PRJ-D"}: 1234 -> "PRJ-D1234"."""
    return None if _blank(value) else f"{params.get('value', '')}{value}"


def t_wrap(value, params, ctx):
    """{"key": "id"}: 42 -> {"id": 42}, for vendors' reference fields."""
    return None if _blank(value) else {params.get("key", "id"): value}


def t_domain(value, params, ctx):
    """A web address or email as a domain: "https://www.Acme.example/" -> "acme.example"."""
    from integrations.engine.keys import domain_key

    return None if _blank(value) else (domain_key(value) or None)


def t_list(value, params, ctx):
    """The value as a list, with constants after it: {"append": ["staffing"]}: "PRJ-101" -> ["PRJ-101", "staffing"]."""
    items = [] if _blank(value) else (list(value) if isinstance(value, list | tuple) else [value])
    return items + [item for item in params.get("append", []) if item not in items]


def t_fallback(value, params, ctx, record=None):
    """When the value is blank, another field with a prefix: {"source": "id", "prefix": "PRJ-D"}."""
    if not _blank(value) or record is None:
        return value
    other = get_path(record, params.get("source", ""))
    return None if _blank(other) else f"{params.get('prefix', '')}{other}"


def t_ref(value, params, ctx):
    if _blank(value):
        return None
    return Ref(entity=params["entity"], object=params["object"], external_id=str(value))


Transform = Callable[[Any, Mapping[str, Any], "MappingContext"], Any]
TRANSFORMS: dict[str, Transform] = {
    "trim": t_trim,
    "upper": t_upper,
    "lower": t_lower,
    "date": t_date,
    "datetime": t_datetime,
    "format_date": t_format_date,
    "number": t_number,
    "currency": t_currency,
    "cents_to_amount": t_cents_to_amount,
    "amount_to_cents": t_amount_to_cents,
    "minutes_to_hours": t_minutes_to_hours,
    "hours_to_minutes": t_hours_to_minutes,
    "split": t_split,
    "default": t_default,
    "boolean": t_boolean,
    "lookup": t_lookup,
    "ref": t_ref,
    "sublist": t_sublist,
    "wrap": t_wrap,
    "prefix": t_prefix,
    "domain": t_domain,
    "list": t_list,
    "fallback": t_fallback,
}
TRANSFORM_LABELS = {
    "trim": "Trim spaces",
    "upper": "Upper case",
    "lower": "Lower case",
    "date": "Date",
    "datetime": "Date and time",
    "format_date": "Format date",
    "number": "Number",
    "currency": "Currency code",
    "cents_to_amount": "Cents → amount",
    "amount_to_cents": "Amount → cents",
    "minutes_to_hours": "Minutes → hours",
    "hours_to_minutes": "Hours → minutes",
    "split": "Split",
    "default": "Default value",
    "boolean": "Yes / no",
    "lookup": "Look up in value map",
    "ref": "Reference to another record",
    "sublist": "Lines",
    "wrap": "Vendor reference",
    "prefix": "Prefix",
    "domain": "Web domain",
    "list": "List with constants",
    "fallback": "Another field when blank",
}


@dataclass
class MappingContext:
    value_maps: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    value_map_names: Mapping[str, str] = field(default_factory=dict)


def validate_rule(rule: Rule) -> list[str]:
    """Configuration errors of one rule (unknown transform, missing parameter), for forms."""
    errors = []
    for transform in rule.transforms:
        name = transform.get("name")
        if name not in TRANSFORMS:
            errors.append(f"Unknown transform “{name}”.")
        elif name == "lookup" and not transform.get("value_map"):
            errors.append("A lookup needs a value map.")
        elif name == "ref" and not (transform.get("entity") and transform.get("object")):
            errors.append("A reference needs an entity and an object.")
        elif name == "fallback" and not transform.get("source"):
            errors.append("“Another field when blank” needs the field to take.")
    if not rule.sources and not any(t.get("name") == "default" for t in rule.transforms):
        errors.append(f"{rule.label or rule.target}: pick a source field or a default value.")
    return errors


def apply_rule(rule: Rule, record: Mapping[str, Any], ctx: MappingContext) -> Any:
    values = [get_path(record, path) for path in rule.sources]
    if len(values) > 1 or (rule.transforms and rule.transforms[0].get("name") == "concat"):
        concat = rule.transforms[0] if rule.transforms and rule.transforms[0].get("name") == "concat" else {}
        separator = concat.get("separator", " ")
        value: Any = separator.join(_text(v).strip() for v in values if not _blank(v)) or None
        transforms = rule.transforms[1:] if concat else rule.transforms
    else:
        value = values[0] if values else None
        transforms = rule.transforms
    if value is MISSING:
        value = None
    for transform in transforms:
        if transform["name"] == "fallback":  # the one transform that reads another field of the record
            value = t_fallback(value, transform, ctx, record)
        else:
            value = TRANSFORMS[transform["name"]](value, transform, ctx)
    return value


TRANSFORMS["concat"] = lambda value, params, ctx: value  # handled in apply_rule: joins several sources
TRANSFORM_LABELS["concat"] = "Join fields"


def apply_mapping(rules: list[Rule], record: Mapping[str, Any], ctx: MappingContext) -> MappingResult:
    """Map one record. Every rule runs, so one pass reports every problem of the record."""
    result = MappingResult()
    for rule in rules:
        try:
            value = apply_rule(rule, record, ctx)
        except TransformError as error:
            result.problems.append(
                Problem(rule.target, error.code, f"{rule.label or rule.target}: {error.message}", error.fix)
            )
            continue
        if rule.required and _blank(value):
            result.problems.append(
                Problem(
                    rule.target,
                    "REQUIRED_MISSING",
                    f"{rule.label or rule.target} is missing",
                    {"action": "edit_field", "field": rule.sources[0] if rule.sources else rule.target},
                )
            )
            continue
        result.values[rule.target] = value
    return result


def split_entities(values: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """{"project.code": "P1", "customer.name": "Acme"} -> {"project": {"code": "P1"}, "customer": {"name": "Acme"}}."""
    entities: dict[str, dict[str, Any]] = {}
    for target, value in values.items():
        entity, _, name = target.partition(".")
        entities.setdefault(entity, {})[name] = value
    return entities
