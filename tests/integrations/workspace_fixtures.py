"""A populated client workspace for the workspace screens' tests: connections, an installed packaged
flow, runs, exceptions the way the engine records them, and canonical time for the dashboards.

Built through the services where they exist; rows the engine would write (runs, exceptions,
canonical records) are written directly, so these tests need no sandbox.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from django.utils import timezone

from integrations.models import (
    Customer,
    Flow,
    Project,
    Resource,
    SyncException,
    SyncExceptionComment,
    SyncRun,
    TimeEntry,
    ValueMap,
)
from integrations.services.connections import connection_create
from integrations.services.flows import template_install
from tests.support import vendor_sandbox

UNREACHABLE = "http://127.0.0.1:9"  # refused by the HTTP policy before any packet is sent


@dataclass
class Seeded:
    kantata: object
    netsuite: object
    flow: Flow
    run: SyncRun
    exceptions: list = field(default_factory=list)
    project_code_exceptions: list = field(default_factory=list)
    cost_rate_exception: SyncException | None = None


def demo_credentials(vendor: str) -> dict:
    return dict(vendor_sandbox(vendor).DEMO_CREDENTIALS)


def time_entry_payload(index: int, workspace: str, *, notes: str = "Client workshop") -> dict:
    return {
        "external_id": f"te-{index}",
        "updated_at": "2023-01-09T10:00:00Z",
        "data": {
            "id": f"te-{index}",
            "workspace_id": workspace,
            "user_id": "u-7",
            "date_performed": "2023-01-09",
            "time_in_minutes": 240,
            "billable": True,
            "approved": True,
            "notes": notes,
            "rate_in_cents": 17500,
            "cost_rate_in_cents": None,
            "currency": "USD",
        },
    }


def seed_workspace(*, base_url: str = UNREACHABLE, exceptions: int = 6, notes: str = "Client workshop") -> Seeded:
    kantata = connection_create(
        name="Kantata OX", vendor="kantata", base_url=base_url, credentials=demo_credentials("kantata")
    )
    netsuite = connection_create(
        name="NetSuite", vendor="netsuite", base_url=base_url, credentials=demo_credentials("netsuite")
    )
    flows = template_install(key="approved-time-to-invoice", connections={"psa": kantata, "erp": netsuite})
    flow = next(f for f in flows if f.template_key.endswith("/approved-time"))
    now = timezone.now()
    run = SyncRun.objects.create(
        flow=flow,
        trigger="manual",
        status=SyncRun.Status.PARTIAL,
        read=120,
        created=100,
        updated=5,
        unchanged=5,
        failed=exceptions + 1,
        expected=120,
        queued_at=now - timedelta(minutes=12),
        started_at=now - timedelta(minutes=12),
        finished_at=now - timedelta(minutes=10),
    )
    seeded = Seeded(kantata=kantata, netsuite=netsuite, flow=flow, run=run)
    for index in range(exceptions):
        code = "PRJ-OLD" if index % 2 == 0 else "PRJ-LEGACY"
        exception = SyncException.objects.create(
            flow=flow,
            first_run=run,
            last_run=run,
            source_system="kantata",
            target_system="netsuite",
            object="time_entries",
            external_id=f"te-{index}",
            payload=time_entry_payload(index, code, notes=notes),
            error_code="PROJECT_NOT_IN_TARGET",
            message=f"Time entry of 9 Jan on project {code} cannot be billed: project code not found in NetSuite",
            fix_actions=[{"action": "map_value", "value_map": "project-codes", "value": code}, {"action": "retry"}],
            created_at=now - timedelta(hours=2 + index * 13),
        )
        seeded.project_code_exceptions.append(exception)
    seeded.cost_rate_exception = SyncException.objects.create(
        flow=flow,
        first_run=run,
        last_run=run,
        source_system="kantata",
        target_system="",
        object="time_entries",
        external_id="te-cost",
        payload=time_entry_payload(99, "PRJ-101", notes=notes),
        error_code="MISSING_COST_RATE",
        message="Time entry of 9 Jan on project PRJ-101 cannot be billed: Ana Costa has no cost rate on 9 Jan 2023",
        detail="Ana Costa has no cost rate on 9 Jan 2023",
        fix_actions=[{"action": "edit_field", "field": "cost_rate_in_cents"}, {"action": "retry"}],
        created_at=now - timedelta(days=3),
    )
    seeded.exceptions = [*seeded.project_code_exceptions, seeded.cost_rate_exception]
    SyncExceptionComment.objects.create(
        exception=seeded.cost_rate_exception, author_email="finance@contoso.localhost", body="Asked HR for the rate."
    )
    seed_canonical_time()
    return seeded


def seed_canonical_time(*, people: int = 6, weeks: int = 4, end: date = date(2023, 2, 24)) -> None:
    """A few people logging time on two customers' projects, with bill and cost rates."""
    acme = Customer.objects.create(name="Acme Industries")
    globex = Customer.objects.create(name="Globex Health")
    projects = [
        Project.objects.create(code="PRJ-101", name="ERP Selection", customer=acme),
        Project.objects.create(code="PRJ-102", name="Cloud Migration", customer=globex),
    ]
    practices = ["Strategy", "Technology", "Finance Advisory"]
    resources = [
        Resource.objects.create(
            email=f"person{index}@haldenrowe.example",
            first_name=f"Person{index}",
            last_name="Example",
            practice=practices[index % len(practices)],
            weekly_capacity_hours=Decimal(40),
        )
        for index in range(people)
    ]
    start = end - timedelta(weeks=weeks)
    entries = []
    day = start
    while day <= end:
        if day.weekday() < 5:
            for index, resource in enumerate(resources):
                entries.append(
                    TimeEntry(
                        resource=resource,
                        project=projects[index % 2],
                        date=day,
                        hours=Decimal(6 + index % 3),
                        billable=index % 4 != 3,
                        approved=True,
                        bill_rate=Decimal("175.00"),
                        cost_rate=Decimal("68.00"),
                        currency="USD",
                    )
                )
        day += timedelta(days=1)
    TimeEntry.objects.bulk_create(entries)


def project_codes_map() -> ValueMap:
    return ValueMap.objects.get(key="project-codes")
