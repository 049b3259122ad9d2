"""Dashboards served from the shared cache: keys that name the schema, figures kept until recomputed, and beat
refreshing the pages people look at."""

from __future__ import annotations

import pytest
from django.db import connection

from integrations.models import (
    SyncException,
)
from tests.integrations.workspace_views import admin, cold_cache, contoso, finance, within  # noqa: F401 -- fixtures
from tests.support import NORTHWIND, browser_for

pytestmark = pytest.mark.django_db


# --- Dashboards from the shared cache ---------------------------------------------------------


def test_two_workspaces_never_see_each_others_cached_dashboards(world, contoso):
    """The cache is shared by every process and every workspace: its keys must name the schema."""
    open_in = {
        slug: within_schema(world.clients[slug], lambda: SyncException.objects.filter(status="open").count())
        for slug in ("contoso", "wingtip")
    }
    assert open_in["contoso"] == 7 and open_in["wingtip"] != 7  # seed_workspace filled Contoso only
    partner_admin = browser_for(world.user("admin@northwind.localhost"), host=NORTHWIND)
    for slug in ("contoso", "wingtip", "contoso"):  # each cached in turn; each reads its own
        page = partner_admin.get(f"/c/{slug}/dashboards/").content.decode()
        assert f'data-testid="dash-open">{open_in[slug]}<' in page
        # Same parameters in both workspaces (the SLA above may differ by plan): only the schema
        # in the key keeps them apart.
        health = partner_admin.get(f"/c/{slug}/dashboards/sync-health").content.decode()
        other = "wingtip" if slug == "contoso" else "contoso"
        assert f"{world.clients[slug].name} · Dashboards" in health
        assert f"{world.clients[other].name} · Dashboards" not in health


def test_a_dashboard_is_served_from_the_cache_until_its_figures_are_recomputed(world, finance, contoso):
    from integrations import dashboard_cache

    first = finance.get("/c/contoso/dashboards/").content.decode()
    assert 'data-testid="dash-open">7<' in first
    within(world, lambda: SyncException.objects.filter(status="open").update(status="resolved"))
    # Still the cached figures (the page says as of when) until beat's refresh recomputes them...
    assert 'data-testid="dash-open">7<' in finance.get("/c/contoso/dashboards/").content.decode()
    hours = world.clients["contoso"].plan.sla_resolution_hours
    within(world, lambda: dashboard_cache.dashboard_compute("exceptions", {"sla_hours": hours}))
    # ...and then the new ones, without the request computing anything.
    assert 'data-testid="dash-open">0<' in finance.get("/c/contoso/dashboards/").content.decode()


def test_beat_refreshes_the_dashboards_people_look_at_in_each_workspace(world, finance, contoso, monkeypatch):
    from integrations import dashboard_cache, tasks
    from portal.tasks import dashboards_refresh

    finance.get("/c/contoso/dashboards/")
    finance.get("/c/contoso/dashboards/sync-health?days=7")
    queued = []
    monkeypatch.setattr(
        tasks.dashboards_refresh, "delay", lambda variants: queued.append((connection.schema_name, variants))
    )
    assert dashboards_refresh() == 1
    schema = world.clients["contoso"].schema_name
    hours = world.clients["contoso"].plan.sla_resolution_hours
    assert queued == [(schema, [["exceptions", {"sla_hours": hours}], ["sync", {"days": 7}]])]
    within(world, lambda: SyncException.objects.filter(status="open").update(status="resolved"))
    assert within(world, lambda: tasks.dashboards_refresh(queued[0][1])) == 2
    assert 'data-testid="dash-open">0<' in finance.get("/c/contoso/dashboards/").content.decode()
    assert dashboard_cache.dashboards_wanted("c_nobody_looked") == []


def test_a_dashboard_end_is_the_last_day_of_its_period_within_the_data(world, finance, contoso):
    """Any ISO date was a variant of its own that beat recomputed every minute: now a day stands
    for its week (utilization) or month (margin), clamped to the days with time, and the latest
    period is the default page. Canonical time runs from Fri 27 Jan to Fri 24 Feb 2023."""
    from integrations import dashboard_cache

    schema = world.clients["contoso"].schema_name
    for end in ("", "2023-02-20", "2023-02-24", "2023-02-26", "2031-06-01"):  # the latest week
        assert finance.get(f"/c/contoso/dashboards/utilization?end={end}").status_code == 200
    for end in ("2023-02-08", "2023-02-12"):  # Wednesday and Sunday of one week
        finance.get(f"/c/contoso/dashboards/utilization?end={end}")
    for end in ("1999-01-01", "2023-01-27"):  # before the data: its first week
        finance.get(f"/c/contoso/dashboards/utilization?end={end}")
    for end in ("2023-01-03", "2023-01-31", "1970-01-01"):  # January
        finance.get(f"/c/contoso/dashboards/margin?end={end}")
    for query in ("end=2023-02-03", "currency=XYZ", "currency=USD", "currency=usd&end=2023-02-24"):
        finance.get(f"/c/contoso/dashboards/margin?{query}")  # the default page: February, in USD
    wanted = sorted(f"{name} {params}" for name, params in dashboard_cache.dashboards_wanted(schema))
    assert wanted == [
        "margin {'months': 3, 'end': '2023-01-31', 'currency': ''}",
        "margin {'months': 3, 'end': None, 'currency': ''}",
        "utilization {'weeks': 8, 'end': '2023-01-29'}",
        "utilization {'weeks': 8, 'end': '2023-02-12'}",
        "utilization {'weeks': 8, 'end': None}",
    ]
    page = finance.get("/c/contoso/dashboards/utilization?weeks=4&end=2023-02-08").content.decode()
    assert "<strong>16 Jan 2023 – 12 Feb 2023</strong>" in page  # four weeks to the Sunday after the 8th
    unknown = finance.get("/c/contoso/dashboards/utilization?practice=Nobody%20here").content.decode()
    assert "Nobody here" not in unknown  # every practice's people listed, as without one
    assert unknown.count('class="num"') == finance.get("/c/contoso/dashboards/utilization").content.decode().count(
        'class="num"'
    )


def test_beat_refreshes_the_default_pages_and_the_few_latest_variants(world, finance, contoso, monkeypatch):
    """A workspace user asking for many variants must not multiply what beat reads every minute."""
    from integrations import dashboard_cache

    schema = world.clients["contoso"].schema_name
    finance.get("/c/contoso/dashboards/")
    finance.get("/c/contoso/dashboards/margin")
    asked = [
        f"/c/contoso/dashboards/utilization?weeks={weeks}&end={end}"
        for end in ("2023-01-27", "2023-02-01", "2023-02-08", "2023-02-15")
        for weeks in (4, 8, 12, 26)
    ]
    for path in asked:
        assert finance.get(path).status_code == 200
    finance.get("/c/contoso/dashboards/sync-health")
    wanted = dashboard_cache.dashboards_wanted(schema)
    assert len(wanted) == dashboard_cache.DASHBOARD_REFRESHED
    defaults = [["exceptions", {"sla_hours": world.clients["contoso"].plan.sla_resolution_hours}]] + [
        [name, params] for name, params in dashboard_cache.DASHBOARD_DEFAULTS.items() if name != "utilization"
    ]
    assert all(default in wanted for default in defaults)
    latest = [["utilization", {"weeks": weeks, "end": "2023-02-19"}] for weeks in (26, 12, 8, 4)]
    assert wanted[len(defaults) : len(defaults) + 4] == latest


def within_schema(client, fn):
    connection.set_tenant(client)
    try:
        return fn()
    finally:
        connection.set_schema_to_public()
