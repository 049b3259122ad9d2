"""The workspace's reads: bounded counts, keyset pages, search, and each dashboard's figures checked
against the rows they come from."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.db.models import F, Sum
from django.utils import timezone

from integrations import selectors
from integrations.dashboard_cache import dashboard_cached
from integrations.models import SyncException, SyncRun, TimeEntry
from integrations.selectors.counting import BoundedCount
from integrations.selectors.queue import QueueQuery
from tests.integrations.workspace_fixtures import seed_workspace

pytestmark = pytest.mark.django_db


@pytest.fixture
def seeded(in_workspace):
    cache.clear()  # dashboards and counts are cached per schema; every test starts cold
    yield seed_workspace()
    cache.clear()


def test_bounded_counts_are_exact_under_the_cap_and_estimated_above(seeded):
    live = SyncException.objects.filter(status="open")
    assert selectors.bounded_count(live) == BoundedCount(7)
    above = selectors.bounded_count(live, cap=3)
    assert not above.exact and above.value >= 4
    both = selectors.bounded_counts({"open": live, "cost": live.filter(error_code="MISSING_COST_RATE")})
    assert both == {"open": BoundedCount(7), "cost": BoundedCount(1)}


def test_queue_pages_newest_first_and_back(seeded):
    query = QueueQuery(sort="newest")
    first = selectors.exception_queue(query, user_id=None, sla_hours=24, size=4)
    second = selectors.exception_queue(query, user_id=None, sla_hours=24, size=4, after=first.next_cursor)
    assert [r.created_at for r in first.rows + second.rows] == sorted(
        (r.created_at for r in first.rows + second.rows), reverse=True
    )
    assert len({r.pk for r in first.rows + second.rows}) == 7
    back = selectors.exception_queue(query, user_id=None, sla_hours=24, size=4, before=second.prev_cursor)
    assert [r.pk for r in back.rows] == [r.pk for r in first.rows]
    assert selectors.exception_queue(query, user_id=None, sla_hours=24, after="not-a-cursor").rows


def test_search_finds_rare_and_common_text_in_age_order(seeded, monkeypatch):
    rare = selectors.exception_queue(QueueQuery(q="PRJ-LEGACY"), user_id=None, sla_hours=24)
    assert rare.matching == BoundedCount(3) and {r.external_id for r in rare.rows} == {"te-1", "te-3", "te-5"}
    by_record = selectors.exception_queue(QueueQuery(q="te-cost"), user_id=None, sla_hours=24)
    assert [r.external_id for r in by_record.rows] == ["te-cost"]
    monkeypatch.setattr("integrations.selectors.queue.SEARCH_CANDIDATES", 2)  # "common": more hits than candidates
    common = selectors.exception_queue(QueueQuery(q="cannot be billed"), user_id=None, sla_hours=24)
    created = [r.created_at for r in common.rows]
    assert len(created) == 7 and created == sorted(created)


def test_filters_by_system_direction_age_and_assignee(seeded, world):
    def count(**filters):
        query = QueueQuery(**filters)
        return len(
            selectors.exception_queue(query, user_id=world.user("finance@contoso.localhost").pk, sla_hours=24).rows
        )

    assert count(system="from:kantata") == 7
    assert count(system="to:netsuite") == 6
    assert count(age="1d") == 2 and count(age="sla") == 5
    SyncException.objects.filter(pk=seeded.cost_rate_exception.pk).update(
        assignee_id=world.user("finance@contoso.localhost").pk
    )
    assert count(assignee="me") == 1 and count(assignee="none") == 6


def test_exceptions_dashboard_counts_by_kind_age_and_week(seeded):
    now = timezone.now()
    SyncException.objects.filter(pk=seeded.project_code_exceptions[0].pk).update(status="resolved", resolved_at=now)
    data = selectors.exceptions_dashboard(sla_hours=24)
    assert data["open_total"] == 6
    assert {row["code"]: row["count"] for row in data["by_error"]} == {
        "PROJECT_NOT_IN_TARGET": 5,
        "MISSING_COST_RATE": 1,
    }
    # open for 15 h | 28, 41 h | 54, 67 and 72 h, against a 24 h SLA
    assert [row["count"] for row in data["ages"]] == [0, 1, 2, 3]
    this_week = data["trend"][-1]
    assert this_week["resolved"] == 1
    assert sum(row["opened"] for row in data["trend"]) == 7


def test_utilization_is_billable_hours_over_weekly_capacity(seeded):
    data = selectors.utilization_dashboard(weeks=4, end=date(2023, 2, 24))
    period = TimeEntry.objects.filter(date__gte=data["start"], date__lte=data["end"])
    billable = period.filter(billable=True).aggregate(h=Sum("hours"))["h"]
    weeks_with_time = len({entry.date - timedelta(days=entry.date.weekday()) for entry in period})
    assert data["billable"] == billable
    assert data["capacity"] == Decimal(40) * data["people_count"] * weeks_with_time
    assert data["utilization"] == round(float(billable) * 100 / float(data["capacity"]), 1)
    assert {row["practice"] for row in data["by_practice"]} == {"Strategy", "Technology", "Finance Advisory"}
    assert sum(row["billable"] for row in data["by_week"]) == billable


def test_margin_is_revenue_at_bill_rates_minus_cost_at_cost_rates(seeded):
    data = selectors.margin_dashboard(months=3, end=date(2023, 2, 24))
    entries = TimeEntry.objects.filter(date__gte=data["start"], date__lte=data["end"])
    revenue = entries.filter(billable=True).aggregate(v=Sum(F("hours") * F("bill_rate")))["v"]
    cost = entries.aggregate(v=Sum(F("hours") * F("cost_rate")))["v"]
    assert data["revenue"] == revenue and data["cost"] == cost and data["margin"] == revenue - cost
    assert {row["customer"] for row in data["by_customer"]} == {"Acme Industries", "Globex Health"}
    assert sum(row["revenue"] for row in data["by_month"]) == revenue


def test_sync_health_reports_throughput_failures_and_open_exceptions(seeded):
    now = timezone.now()
    SyncRun.objects.create(
        flow=seeded.flow, status="failed", read=0, queued_at=now, started_at=now, finished_at=now, error="refused"
    )
    data = selectors.sync_health_dashboard(days=14)
    row = next(r for r in data["flows"] if r["flow"].pk == seeded.flow.pk)
    assert row["runs"] == 2 and row["failed_runs"] == 1
    assert row["records_per_second"] == 1.0  # 120 records in 120 seconds
    assert row["open_exceptions"] == BoundedCount(7)


def test_dashboards_are_computed_once_a_minute_per_workspace(seeded):
    calls = []
    first = dashboard_cached("probe", lambda: calls.append(1) or {"n": 1})
    again = dashboard_cached("probe", lambda: calls.append(1) or {"n": 2})
    assert calls == [1] and first["n"] == again["n"] == 1 and "computed_at" in again
