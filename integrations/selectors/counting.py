"""Counting in a schema of a million rows without scanning them: counts that stop at a cap (the
planner estimates past it), distinct values by walking an index, and the planner settings reads run under.
"""

from __future__ import annotations

import hashlib
import json
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from django.core.cache import cache
from django.db import connection as db
from django.db import transaction

from integrations.models import SyncException

COUNT_CAP = 1_000


@dataclass(frozen=True)
class BoundedCount:
    """A count that is exact up to COUNT_CAP, and the planner's estimate above it."""

    value: int
    exact: bool = True

    def __int__(self):
        return self.value

    def __bool__(self):
        return self.value > 0


def bounded_count(queryset, cap: int = COUNT_CAP) -> BoundedCount:
    counted = queryset.order_by()[: cap + 1].count()
    if counted <= cap:
        return BoundedCount(counted)
    return count_estimate(queryset, cap)


def count_estimate(queryset, cap: int, *, key: str = "") -> BoundedCount:
    """The planner's row estimate, for a count past the cap. Approximate by nature, so it is kept a
    minute rather than planned again on every page."""
    key = key or _estimate_key(*queryset.order_by().query.sql_with_params())
    estimate = cache.get(key)
    if estimate is None:
        plan = json.loads(queryset.order_by().explain(format="json"))
        estimate = int(plan[0]["Plan"]["Plan Rows"])
        cache.set(key, estimate, 60)
    return BoundedCount(max(estimate, cap + 1), exact=False)


def _estimate_key(sql: str, params) -> str:
    # A cutoff such as "past the SLA" moves with the clock: to the minute in the key, or every
    # request would plan its estimate again.
    params = [p.replace(second=0, microsecond=0) if isinstance(p, datetime) else p for p in params]
    return f"estimate:{db.schema_name}:{hashlib.sha256(f'{sql}{params}'.encode()).hexdigest()}"


def bounded_counts(querysets: dict, cap: int = COUNT_CAP) -> dict[str, BoundedCount]:
    """Several bounded counts in one round trip (one scalar subquery each); the estimates of those
    past the cap in one more, keyed by the SQL already compiled for the count."""
    parts, params, keys = [], [], []
    for queryset in querysets.values():
        sql, values = queryset.order_by().values("pk")[: cap + 1].query.sql_with_params()
        parts.append(f"(SELECT count(*) FROM ({sql}) AS counted)")  # noqa: S608 - SQL compiled by the ORM
        params.extend(values)
        keys.append(_estimate_key(sql, values))
    with db.cursor() as cursor:
        cursor.execute("SELECT " + ", ".join(parts), params)  # noqa: S608 - SQL compiled by the ORM
        counted = cursor.fetchone()
    known = cache.get_many([key for key, value in zip(keys, counted, strict=True) if value > cap])
    tallies = {}
    for (name, queryset), value, key in zip(querysets.items(), counted, keys, strict=True):
        if value <= cap:
            tallies[name] = BoundedCount(value)
        elif key in known:
            tallies[name] = BoundedCount(max(known[key], cap + 1), exact=False)
        else:
            tallies[name] = count_estimate(queryset, cap, key=key)
    return tallies


def open_exceptions_by(column: str, values) -> dict:
    """Open exceptions per value of an indexed column, each a bounded count, in one statement."""
    live = SyncException.objects.filter(status=SyncException.Status.OPEN)
    values = list(values)
    if not values:
        return {}
    return bounded_counts({value: live.filter(**{column: value}) for value in values})


def distinct_values(model, column: str) -> list[str]:
    """Distinct values of an indexed column by walking the index (a loose index scan), not the table."""
    table = db.ops.quote_name(model._meta.db_table)
    col = db.ops.quote_name(column)
    sql = (
        f"WITH RECURSIVE walk AS ("  # noqa: S608 - table and column names come from the model, not the request
        f" (SELECT {col} AS v FROM {table} WHERE {col} IS NOT NULL ORDER BY {col} LIMIT 1)"
        f" UNION ALL SELECT (SELECT {col} FROM {table} WHERE {col} > walk.v ORDER BY {col} LIMIT 1)"
        f" FROM walk WHERE walk.v IS NOT NULL) SELECT v FROM walk WHERE v IS NOT NULL"
    )
    with db.cursor() as cursor:
        cursor.execute(sql)
        return [row[0] for row in cursor.fetchall() if row[0] != ""]


@contextmanager
def planner(**settings):
    """PostgreSQL planner settings for the queries inside, in a transaction of their own.

    JIT is off throughout: it compiles for tens of milliseconds to save a few on these queries.
    """
    with transaction.atomic(), db.cursor() as cursor:
        for name, value in {"jit": "off", **settings}.items():
            cursor.execute(f"SET LOCAL {name} = {value}")  # names and values from this module only
        yield
