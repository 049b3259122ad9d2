"""One set of figures: every number the partner console shows about its clients (home, client health,
revenue, statements, the CSV) equals the same number counted in the clients' own schemas, for a partner
whose clients are busy (runs this month and last, a run that could not start, over a thousand open
exceptions). Usage is the roll-up's and says when it was rolled up; exception counts are live and exact.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import timedelta
from html.parser import HTMLParser

import pytest
from django.db import connection
from django.db.models import Q, Sum
from django.utils import timezone
from django_tenants.utils import tenant_context

from integrations.housekeeping import usage_rollup
from integrations.models import Flow, SyncException, SyncRun
from integrations.services.connections import connection_create
from integrations.services.flows import template_install
from tests.integrations.workspace_fixtures import UNREACHABLE, demo_credentials
from tests.support import NORTHWIND, browser_for

pytestmark = pytest.mark.django_db


class ByTestId(HTMLParser):
    """The text inside each element carrying a data-testid (nested ones included)."""

    def __init__(self):
        super().__init__()
        self.texts: dict[str, str] = {}
        self.open: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag, attrs):
        testid = dict(attrs).get("data-testid")
        if tag not in ("br", "img", "input", "meta", "link"):
            self.open.append((tag, testid))
        if testid:
            self.texts[testid] = ""

    def handle_endtag(self, tag):
        while self.open:
            opened, _ = self.open.pop()
            if opened == tag:
                break

    def handle_data(self, data):
        for _, testid in self.open:
            if testid:
                self.texts[testid] += data


def figures(html: str) -> dict[str, str]:
    parser = ByTestId()
    parser.feed(html)
    return {key: " ".join(value.split()) for key, value in parser.texts.items()}


def first_number(text: str) -> int:
    return int(re.search(r"\d[\d,]*", text).group(0).replace(",", ""))


@dataclass
class Counted:
    """What a client's schema says, counted here without the product's selectors."""

    records: dict  # month -> records synced (created + updated of runs that finished in it)
    runs: dict  # month -> runs finished in it, not counting those that could not start
    open_exceptions: int


def counted_in_schema(client, months) -> Counted:
    with tenant_context(client):
        records, runs = {}, {}
        for month in months:
            end = (month + timedelta(days=32)).replace(day=1)
            finished = SyncRun.objects.filter(finished_at__date__gte=month, finished_at__date__lt=end).exclude(
                error__startswith=SyncRun.REFUSED
            )
            sums = finished.aggregate(created=Sum("created"), updated=Sum("updated"))
            records[month] = (sums["created"] or 0) + (sums["updated"] or 0)
            runs[month] = finished.count()
        live = Q(status=SyncException.Status.OPEN) | Q(status=SyncException.Status.RETRYING)
        return Counted(records, runs, SyncException.objects.filter(live).count())


def make_busy(client, *, runs_now: int, runs_before: int, exceptions: int) -> None:
    """Runs finished this month and last, a scheduled run that could not start, and open exceptions."""
    with tenant_context(client):
        flow = Flow.objects.order_by("pk").first()
        if flow is None:
            made = {
                vendor: connection_create(
                    name=vendor, vendor=vendor, base_url=UNREACHABLE, credentials=demo_credentials(vendor)
                )
                for vendor in ("kantata", "netsuite")
            }
            flow = template_install(
                key="approved-time-to-invoice", connections={"psa": made["kantata"], "erp": made["netsuite"]}
            )[0]
        now = timezone.now()
        start_of_month = timezone.localtime(now).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        finished = [now - timedelta(minutes=5 + i) for i in range(runs_now)]
        finished += [start_of_month - timedelta(hours=1 + 7 * i) for i in range(runs_before)]
        for index, at in enumerate(finished):
            SyncRun.objects.create(
                flow=flow,
                trigger="schedule",
                status=SyncRun.Status.PARTIAL,
                read=300 + index,
                created=200 + 13 * index,
                updated=40 + index,
                unchanged=10,
                failed=3,
                queued_at=at - timedelta(minutes=2),
                started_at=at - timedelta(minutes=2),
                finished_at=at,
            )
        SyncRun.objects.create(
            flow=flow,
            trigger="schedule",
            status=SyncRun.Status.FAILED,
            error=f"{SyncRun.REFUSED}the workspace is suspended",
            queued_at=now,
            finished_at=now,
        )
        run = SyncRun.objects.order_by("-pk").first()
        SyncException.objects.bulk_create(
            SyncException(
                flow=flow,
                first_run=run,
                last_run=run,
                source_system="kantata",
                target_system="netsuite",
                object="time_entries",
                external_id=f"busy-{index}",
                payload={},
                error_code="PROJECT_NOT_IN_TARGET",
                message="Time entry cannot be billed: project code not found in NetSuite",
                created_at=now - timedelta(hours=index % 20),
            )
            for index in range(exceptions)
        )
    connection.set_schema_to_public()


def test_every_figure_the_partner_sees_is_the_one_counted_in_the_clients_schemas(world):
    northwind = world.partners["northwind"]
    northwind.clients.update(created_at=timezone.now() - timedelta(days=70))  # clients for months already
    clients = list(northwind.clients.order_by("name"))
    assert len(clients) >= 3
    for index, client in enumerate(clients):
        # Over the exact-count cap of the workspace queue (1,000) in the first one.
        make_busy(client, runs_now=4 + index, runs_before=2 + index, exceptions=1_204 if index == 0 else 17 * index)
    today = timezone.localdate()
    this_month = today.replace(day=1)
    last_month = (this_month - timedelta(days=1)).replace(day=1)
    usage_rollup()  # the periodic roll-up, as a worker runs it
    counted = {client.slug: counted_in_schema(client, (this_month, last_month)) for client in clients}
    assert counted[clients[0].slug].open_exceptions > 1_000

    admin = browser_for(world.user("admin@northwind.localhost"), host=NORTHWIND)

    home_html = admin.get("/partner/").content.decode()
    home = figures(home_html)
    for client in clients:
        facts = counted[client.slug]
        assert first_number(home[f"open-exceptions-{client.slug}"]) == facts.open_exceptions, client.slug
        assert first_number(home[f"usage-{client.slug}"]) == facts.records[this_month], client.slug
    assert first_number(home["kpi-records"]) == sum(c.records[this_month] for c in counted.values())
    assert first_number(home["kpi-open-exceptions"]) == sum(c.open_exceptions for c in counted.values())
    assert home["as-of"].startswith("as of ")

    for client in clients:
        facts = counted[client.slug]
        health = figures(admin.get(f"/partner/clients/{client.slug}/").content.decode())
        assert first_number(health["health-open-exceptions"]) == facts.open_exceptions, client.slug
        assert first_number(health["health-records"]) == facts.records[this_month], client.slug
        assert first_number(health["health-runs"]) == facts.runs[this_month], client.slug
        assert health["as-of"].startswith("as of ")

    for month in (this_month, last_month):
        query = f"?month={month:%Y-%m}"
        revenue_html = admin.get(f"/partner/revenue/{query}").content.decode()
        revenue = figures(revenue_html)
        assert first_number(revenue["revenue-records"]) == sum(c.records[month] for c in counted.values())
        assert first_number(revenue["revenue-runs"]) == sum(c.runs[month] for c in counted.values())
        assert revenue["as-of"].startswith("as of ")
        rows = {
            row["workspace"]: row
            for row in csv.DictReader(
                io.StringIO(admin.get(f"/partner/revenue/statements.csv{query}").content.decode())
            )
        }
        for client in clients:
            facts = counted[client.slug]
            assert first_number(revenue[f"usage-{client.slug}"]) == facts.records[month], (month, client.slug)
            statement = figures(admin.get(f"/partner/revenue/{client.slug}/{query}").content.decode())
            assert first_number(statement["statement-records"]) == facts.records[month], (month, client.slug)
            assert first_number(statement["statement-runs"]) == facts.runs[month], (month, client.slug)
            assert statement["as-of"].startswith("as of ")
            assert int(rows[client.slug]["records_synced"]) == facts.records[month]
            assert int(rows[client.slug]["runs"]) == facts.runs[month]
        assert "≈" not in revenue_html
    assert "≈" not in home_html


def test_a_run_after_the_roll_up_changes_every_page_together(world):
    contoso = world.clients["contoso"]
    make_busy(contoso, runs_now=2, runs_before=0, exceptions=0)
    usage_rollup()
    admin = browser_for(world.user("admin@northwind.localhost"), host=NORTHWIND)

    def shown() -> tuple[int, int, int, int]:
        home = figures(admin.get("/partner/").content.decode())
        health = figures(admin.get("/partner/clients/contoso/").content.decode())
        revenue = figures(admin.get("/partner/revenue/").content.decode())
        statement = figures(admin.get("/partner/revenue/contoso/").content.decode())
        return tuple(
            first_number(text)
            for text in (
                home["usage-contoso"],
                health["health-records"],
                revenue["usage-contoso"],
                statement["statement-records"],
            )
        )

    before = shown()
    assert len(set(before)) == 1
    make_busy(contoso, runs_now=1, runs_before=0, exceptions=0)
    assert shown() == before  # not rolled up yet: every page still shows the same figure, as of then
    usage_rollup()
    after = shown()
    assert len(set(after)) == 1 and after[0] > before[0]
