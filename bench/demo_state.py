"""What a running demo holds, read as its users would see it: Contoso's runs and exception queue, its
dashboards, and the records in the ERP, PSA and ticketing sandboxes (read through their APIs); with
`--client tailspin`, the same for Tailspin on Business Central and Certinia.

    python bench/demo_state.py [--client contoso] [--json]

Run it with the demo's environment (PORTAL_DATA_DIR, SANDBOX_PORT_OFFSET) so it reaches that demo.
Used by bench/fresh_starts.py after each start.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def django_setup() -> None:
    os.environ.setdefault("PORTAL_ENV", "dev")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    if not os.environ.get("DATABASE_URL"):
        from portal.embedded import embedded_postgres_url

        os.environ["DATABASE_URL"] = embedded_postgres_url()
    import django

    django.setup()


def read_all(connection, object_name: str) -> list[dict]:
    from integrations.services.connections import connector_for

    connector = connector_for(connection)
    try:
        return [dict(record.data) for page in connector.read(object_name) for record in page.records]
    finally:
        connector.close()


def state(slug: str) -> dict:
    from django.db.models import Count, Q
    from django_tenants.utils import tenant_context

    from integrations import selectors
    from integrations.models import Connection, SyncException, SyncRun
    from tenants.models import Client

    client = Client.objects.get(slug=slug)
    with tenant_context(client):
        runs = Counter(SyncRun.objects.values_list("status", flat=True))
        live_runs = SyncRun.objects.filter(status__in=["queued", "running"]).count()
        faults: dict[str, dict[str, int]] = {}
        for exception in SyncException.objects.filter(status="open").annotate(
            waiting=Count("parked", filter=Q(parked__status="parked"))
        ):
            faults.setdefault(exception.error_code, {})[exception.subject or exception.external_id] = exception.waiting
        parked_without_parent = SyncException.objects.filter(status="parked").exclude(
            waiting_on__status__in=["open", "retrying"]
        )
        utilization = selectors.utilization_dashboard(weeks=12)
        margins = {
            currency: selectors.margin_dashboard(months=3, currency=currency)
            for currency in selectors.margin_dashboard(months=3)["currencies"]
        }
        systems = {}
        for vendor, object_name, name_field in (
            ("netsuite", "customer", "companyName"),
            ("netsuite", "job", "entityId"),
            ("netsuite", "employee", "email"),
            ("kantata", "workspaces", "title"),
            ("kantata", "users", "email_address"),
            # Tailspin's systems (Microsoft's ERP, Certinia), read the same way when the workspace has them.
            ("businesscentral", "customers", "displayName"),
            ("businesscentral", "projects", "number"),
            ("businesscentral", "employees", "email"),
            ("certinia", "pse__Proj__c", "pse__Project_ID__c"),
            ("certinia", "Contact", "Email"),
        ):
            connection = Connection.objects.filter(vendor=vendor).first()
            if connection is None:
                continue
            names = Counter(
                str(record.get(name_field) or "").split(" ", 1)[0]
                if object_name == "workspaces"
                else str(record.get(name_field) or "").lower()
                for record in read_all(connection, object_name)
            )
            systems[f"{vendor}.{object_name}"] = {
                "records": sum(names.values()),
                "duplicated": sorted(name for name, count in names.items() if count > 1 and name),
            }
        return {
            "client": slug,
            "runs": dict(runs),
            "live_runs": live_runs,
            "faults": faults,
            "parked_without_live_parent": parked_without_parent.count(),
            "utilization_percent": utilization["utilization"],
            "margin_percent": {currency: figures["margin_percent"] for currency, figures in margins.items()},
            "systems": systems,
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--client", default="contoso")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    django_setup()
    found = state(args.client)
    if args.json:
        print(json.dumps(found, default=str))
        return 0
    print(f"{found['client']}: runs {found['runs']} ({found['live_runs']} live)")
    for code, subjects in sorted(found["faults"].items()):
        waiting = sum(subjects.values())
        print(f"  {code}: {len(subjects)} open" + (f", {waiting} records waiting on them" if waiting else ""))
        for subject, count in sorted(subjects.items()):
            print(f"      {subject}" + (f"  ({count} waiting)" if count else ""))
    print(f"  parked behind nothing live: {found['parked_without_live_parent']}")
    print(f"  utilization {found['utilization_percent']}%, margin {found['margin_percent']}")
    for name, figures in found["systems"].items():
        print(f"  {name}: {figures['records']} records, duplicated: {figures['duplicated'] or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
