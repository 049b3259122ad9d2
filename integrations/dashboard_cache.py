"""Dashboard figures from the shared cache, and their refresh: a request reads the cache and queues a
recompute when the figures are stale; beat's `dashboards_refresh` keeps the ones people look at fresh.
"""

from __future__ import annotations

import logging
import time as time_module
from datetime import date, datetime, timedelta

from django.core.cache import cache
from django.db import connection as db
from django.db.models import Max, Min
from django.utils import timezone

from integrations.models import Environment, TimeEntry
from integrations.selectors.counting import planner
from integrations.selectors.dashboards import (
    exceptions_dashboard,
    margin_dashboard,
    sync_health_dashboard,
    utilization_dashboard,
)
from portal.months import month_last_day

logger = logging.getLogger(__name__)


def dashboard_cached(key: str, compute, *, seconds: int = 60):
    """Figures read from a million rows, computed at most once a minute per workspace (the cache
    is shared by every process). The four dashboards go through `dashboard_figures` instead."""
    full_key = f"dash:{db.schema_name}:{key}"
    value = cache.get(full_key)
    if value is None:
        with planner():
            value = compute()
        value["computed_at"] = timezone.now()
        cache.set(full_key, value, seconds)
    return value


# A dashboard reads up to a million rows (100–500 ms). Beat recomputes the ones people look at
# once a minute (`dashboards_refresh`), so a request only reads the cache. Figures past the minute
# are served as they are, the page saying "as of HH:MM", while a worker recomputes them (stale
# while revalidate); only figures nobody refreshed for DASHBOARD_KEEP (no worker running, or a
# view nobody opened lately) are computed in the request. Every key names the client schema.

DASHBOARD_FRESH = 60
DASHBOARD_KEEP = 600
DASHBOARDS = {
    "exceptions": lambda sla_hours=None: exceptions_dashboard(sla_hours=sla_hours),
    "utilization": lambda weeks=8, end=None: utilization_dashboard(weeks=weeks, end=_day(end)),
    "margin": lambda months=3, end=None, currency="": margin_dashboard(months=months, end=_day(end), currency=currency),
    "sync": lambda days=14: sync_health_dashboard(days=days),
}


def _day(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


# How many of a workspace's dashboard variants beat keeps fresh, and how many it remembers. Every
# distinct set of parameters is a variant read from up to a million rows: without a bound, anyone
# in the workspace could have beat recompute hundreds of them every minute, and fill the shared
# cache with them. The ones over the bound are still served, and recomputed when someone opens
# them stale; only beat's every-minute refresh is kept for these.
DASHBOARD_REFRESHED = 8
DASHBOARD_DEFAULTS = {
    "utilization": {"weeks": 8, "end": None},
    "margin": {"months": 3, "end": None, "currency": ""},
    "sync": {"days": 14},
}


def time_entries_span() -> tuple[date, date] | None:
    """The first and last day with time in the current schema (two index lookups), kept a minute."""
    key = f"dash:{db.schema_name}:time-span"
    span = cache.get(key)
    if span is None:
        found = TimeEntry.objects.filter(environment=Environment.PRODUCTION).aggregate(
            first=Min("date"), latest=Max("date")
        )
        span = (found["first"], found["latest"]) if found["latest"] else ()
        cache.set(key, span, DASHBOARD_FRESH)
    return span or None


def dashboard_end(value: date | None, *, period: str) -> str | None:
    """The `end` a utilization ("week") or margin ("month") dashboard asks for, as the variant it
    is kept under: the last day of its week or month, within the days that have time; None (the
    latest period, the default page) from the latest period of the data on. Figures depend on the
    period only, so any day of it is the same variant, and there are as many as periods of data."""
    if value is None:
        return None
    span = time_entries_span()
    if span is None:
        return None

    def closing(day: date) -> date:
        if period == "week":
            return day + timedelta(days=6 - day.weekday())
        return month_last_day(day)

    first, latest = span
    value = closing(min(max(value, first), latest))
    return None if value >= closing(latest) else value.isoformat()


def dashboard_key(name: str, params: dict, *, schema: str | None = None) -> str:
    """Params are JSON values (dates as ISO strings): a refresh task carries them as they are."""
    variant = "&".join(f"{k}={params[k]}" for k in sorted(params))
    return f"dash:{schema or db.schema_name}:{name}:{variant}"


def _demand_key(schema: str) -> str:
    return f"dash-demand:{schema}"


def dashboard_peek(name: str, params: dict, *keys: str) -> tuple[datetime | None, dict]:
    """When the figures were computed, and other cached values kept beside them (a rendered page),
    in one round trip without loading the figures. Stale figures are queued for recomputing; a
    view nobody asked for lately is put back on beat's list."""
    key = dashboard_key(name, params)
    found = cache.get_many([f"{key}:at", f"{key}:seen", *keys])
    computed_at = found.get(f"{key}:at")
    if f"{key}:seen" not in found:
        _dashboard_wanted(name, params)
    if computed_at is not None and (timezone.now() - computed_at).total_seconds() > DASHBOARD_FRESH + 15:
        if cache.add(f"{key}:queued", 1, DASHBOARD_FRESH):
            from integrations.tasks import dashboards_refresh

            try:
                dashboards_refresh.delay([[name, params]])
            except Exception:  # noqa: BLE001 - a broker down must not take the page down with it
                logger.warning("Could not queue a dashboard refresh for %s", key, exc_info=True)
    return computed_at, {k: found[k] for k in keys if k in found}


def dashboard_figures(name: str, params: dict) -> dict:
    """The figures from the cache, or computed now when there are none (once: others wait for it)."""
    key = dashboard_key(name, params)
    data = cache.get(key)
    if data is not None:
        return data
    if not cache.add(f"{key}:computing", 1, 30):
        for _ in range(100):  # another process is computing them: wait up to 10 s
            time_module.sleep(0.1)
            data = cache.get(key)
            if data is not None:
                return data
    try:
        return dashboard_compute(name, params)
    finally:
        cache.delete(f"{key}:computing")


def dashboard_compute(name: str, params: dict) -> dict:
    """Compute and store one dashboard of the current schema (beat's refresh, or a cold request)."""
    with planner():
        data = DASHBOARDS[name](**params)
    data["computed_at"] = timezone.now()
    key = dashboard_key(name, params)
    cache.set_many({key: data, f"{key}:at": data["computed_at"]}, DASHBOARD_KEEP)
    return data


def _dashboard_wanted(name: str, params: dict) -> None:
    """Someone is looking at this dashboard: beat keeps it fresh for the next ten minutes, if it is
    a default page or among the DASHBOARD_REFRESHED asked for last."""
    key = dashboard_key(name, params)
    now = time_module.time()
    cache.set(f"{key}:seen", now, DASHBOARD_KEEP)
    demand = cache.get(_demand_key(db.schema_name)) or {}
    demand[key] = [name, params, now]
    if len(demand) > 4 * DASHBOARD_REFRESHED:  # the list itself stays small: forget the oldest
        demand = dict(sorted(demand.items(), key=_demand_rank)[: 2 * DASHBOARD_REFRESHED])
    cache.set(_demand_key(db.schema_name), demand, None)


def _demand_rank(item) -> tuple:
    """Default pages first, then the latest asked for."""
    _key, (name, params, *asked) = item
    return (params != DASHBOARD_DEFAULTS.get(name, params), -(asked[0] if asked else 0))


def dashboards_wanted(schema: str) -> list[list]:
    """The dashboards of `schema` beat refreshes: of those someone looked at in the last
    DASHBOARD_KEEP seconds, the default pages and the latest asked for, DASHBOARD_REFRESHED at most.
    Others leave the list."""
    demand = cache.get(_demand_key(schema)) or {}
    if not demand:
        return []
    seen = cache.get_many([f"{key}:seen" for key in demand])
    wanted = {key: entry for key, entry in demand.items() if f"{key}:seen" in seen}
    if len(wanted) != len(demand):
        cache.set(_demand_key(schema), wanted, None)
    ranked = sorted(wanted.items(), key=_demand_rank)[:DASHBOARD_REFRESHED]
    return [[name, params] for _key, (name, params, *_asked) in ranked]
