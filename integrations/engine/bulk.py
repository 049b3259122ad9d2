"""Set-based writes for a page of records: a few statements however many rows.

New rows get their ids from the table's sequence in one statement and go in with COPY, so the engine knows
every id without a round trip per row; changed rows go in with one UPDATE ... FROM unnest(one array per column). Text, numbers,
dates and ids pass as they are (the model field cleaned them when the record was planned); other values are
prepared by their field, as Django would for a save, so what lands is what `save()` would have written.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal

from django.db import connection, models
from django.utils import timezone


def _columns(model: type[models.Model], fields: Sequence[str] | None = None) -> list[models.Field]:
    concrete = [f for f in model._meta.concrete_fields if not f.primary_key]
    if fields is None:
        return concrete
    wanted = set(fields)
    return [f for f in concrete if f.name in wanted or f.attname in wanted]


# Fields whose database value is the Python value itself once the model field has cleaned it (psycopg adapts
# str, int, bool, Decimal and date as they are). Others (JSON, datetimes, custom types) are prepared by the field.
_PLAIN_FIELDS = (
    models.CharField,
    models.TextField,
    models.BooleanField,
    models.IntegerField,
    models.DecimalField,
    models.ForeignKey,
)
_PLAIN_VALUES = (str, int, bool, Decimal, date, type(None))


def _plain(field: models.Field) -> bool:
    if isinstance(field, models.DateField):
        return type(field) is models.DateField  # not DateTimeField: naive datetimes are made aware by the field
    return isinstance(field, _PLAIN_FIELDS)


_PLAIN, _MOMENT, _JSON, _OTHER = "plain", "moment", "json", "other"


def _kind(field: models.Field) -> str:
    """How _copy passes a column's values: as they are, as aware datetimes, as JSON text, or through the field."""
    if _plain(field):
        return _PLAIN
    if type(field) is models.DateTimeField:
        return _MOMENT
    if type(field) is models.JSONField:
        return _JSON
    return _OTHER


def _prepared(field: models.Field, plain: bool, value):
    # Exact types: a datetime is a date and a choice is a str, and those the field prepares.
    if plain and type(value) in _PLAIN_VALUES:
        return value
    return field.get_db_prep_save(value, connection)


def ids_reserve(model: type[models.Model], count: int) -> list[int]:
    """`count` fresh primary keys from the table's own sequence, in one statement."""
    if count <= 0:
        return []
    table, pk = model._meta.db_table, model._meta.pk.column
    with connection.cursor() as cursor:
        cursor.execute("SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)", [table, pk, count])
        return [row[0] for row in cursor.fetchall()]


def insert(instances: list[models.Model]) -> None:
    """INSERT the unsaved instances (one model) with COPY; each gets its id first. Auto-now fields are set."""
    if not instances:
        return
    model = type(instances[0])
    for instance, pk in zip(instances, ids_reserve(model, len(instances)), strict=True):
        instance.pk = pk
    columns = _columns(model)
    for field in columns:
        if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            for instance in instances:
                field.pre_save(instance, add=True)
    _copy(model, [model._meta.pk, *columns], [instance.__dict__ for instance in instances], [model._meta.pk.attname])
    for instance in instances:
        instance._state.adding = False
        instance._state.db = connection.alias


def _copy(
    model: type[models.Model],
    columns: list[models.Field],
    rows: list[dict],
    keys: list[str] | None = None,
    constants: dict | None = None,
):
    """COPY `rows` (dicts) into the model's table: column i takes row[keys[i]] (the field's attname by default),
    or, for a key in `constants`, the value every row shares (a default), prepared once for all of them."""
    keys = [*(keys or []), *(field.attname for field in columns[len(keys or []) :])]
    constants = constants or {}
    varying = [(key, field) for key, field in zip(keys, columns, strict=True) if key not in constants]
    shared = [(key, field) for key, field in zip(keys, columns, strict=True) if key in constants]
    names = ", ".join(connection.ops.quote_name(f.column) for _, f in [*varying, *shared])
    row_keys = [key for key, _ in varying]
    # A plain column's value goes as it is when its type is plain, an aware datetime as it is, JSON as its text
    # (COPY reads a jsonb column from text); anything else is prepared by its field, as a save would.
    prepared = [(_kind(field), field) for _, field in varying]
    fixed = [field.get_db_prep_save(constants[key], connection) for key, field in shared]
    plain_types, dumps = _PLAIN_VALUES, json.dumps
    # psycopg's copy() is reached past Django's cursor wrapper: its errors are made Django's here, so a refused
    # row is an IntegrityError or DataError the page's fallback knows, as an INSERT's would be.
    with connection.cursor() as cursor, connection.wrap_database_errors:
        copy_sql = f"COPY {connection.ops.quote_name(model._meta.db_table)} ({names}) FROM STDIN"
        with cursor.copy(copy_sql) as copy:
            for row in rows:
                values = [
                    value
                    if kind is _PLAIN and type(value) in plain_types
                    else dumps(value, cls=field.encoder)
                    if kind is _JSON and value is not None
                    else value
                    if kind is _MOMENT and type(value) is datetime and value.tzinfo is not None
                    else field.get_db_prep_save(value, connection)
                    for value, (kind, field) in zip(map(row.__getitem__, row_keys), prepared, strict=True)
                ]
                values += fixed
                copy.write_row(values)


def update(instances: list[models.Model], fields: Iterable[str]) -> None:
    """UPDATE the instances' `fields` (and their auto-now field) in one statement."""
    if not instances:
        return
    model = type(instances[0])
    columns = _columns(model, list(fields))
    for field in _columns(model):
        if getattr(field, "auto_now", False) and field not in columns:
            columns.append(field)
    for field in columns:
        if getattr(field, "auto_now", False):
            for instance in instances:
                field.pre_save(instance, add=False)
    if not columns:
        return
    pk = model._meta.pk
    table = connection.ops.quote_name(model._meta.db_table)
    plain = [(field, field.attname, _plain(field)) for field in columns]
    # One array per column, unnested into rows: a short statement whatever the number of rows, so neither Django
    # nor psycopg spells out a placeholder per value.
    arrays = [[instance.pk for instance in instances]]
    arrays += [
        [_prepared(field, is_plain, getattr(instance, attname)) for instance in instances]
        for field, attname, is_plain in plain
    ]
    types = [pk.db_type(connection), *(field.db_type(connection) for field in columns)]
    unnest = ", ".join(f"%s::{db_type}[]" for db_type in types)
    aliases = ", ".join(["_pk", *[f"c{index}" for index in range(len(columns))]])
    assignments = ", ".join(
        f"{connection.ops.quote_name(field.column)} = v.c{index}" for index, field in enumerate(columns)
    )
    # Table and column names come from the model's metadata, never from input; values are parameters.
    where = f"t.{connection.ops.quote_name(pk.column)} = v._pk"
    sql = f"UPDATE {table} AS t SET {assignments} FROM unnest({unnest}) AS v({aliases}) WHERE {where}"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, arrays)


def _default(field: models.Field):
    if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
        return timezone.now()
    return field.get_default()


def copy_in(model: type[models.Model], rows: list[dict], *, with_ids: bool = False) -> list[int]:
    """COPY plain rows (dicts of field name or attname -> value) into a model's table, without building
    instances; a field a row leaves out takes the model's default. With `with_ids`, the rows' new ids come
    from the table's sequence first and are returned in row order."""
    if not rows:
        return []
    columns = _columns(model)
    first = rows[0]
    keys = [field.name if field.name in first else field.attname for field in columns]
    missing = {key: _default(field) for key, field in zip(keys, columns, strict=True) if key not in first}
    ids = []
    if with_ids:
        ids = ids_reserve(model, len(rows))
        for row, pk in zip(rows, ids, strict=True):
            row["_pk"] = pk
        columns, keys = [model._meta.pk, *columns], ["_pk", *keys]
    _copy(model, columns, rows, keys, constants=missing)
    return ids


def statistics_refresh(models_grown: Iterable[type[models.Model]]) -> None:
    """ANALYZE the tables a run is filling, so the planner's row counts keep up with them (outside a transaction,
    between pages: ANALYZE takes only a lock that writers do not wait on)."""
    with connection.cursor() as cursor:
        for model in models_grown:
            cursor.execute(f"ANALYZE {connection.ops.quote_name(model._meta.db_table)}")
