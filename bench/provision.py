"""How long creating a client workspace takes: the product's recorded script (tenants.schema_script) beside
django-tenants' two ways, cloning the template schema and running every migration.

    python3 dev.py run   (once, so .venv and the database exist; stop it again), then
    PORTAL_ENV=dev .venv/bin/python bench/provision.py [--count 5]

Prints seconds per tenant for each; bench/scale.py shows how they grow with the number of clients.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("PORTAL_ENV", "dev")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402
from django.test import override_settings  # noqa: E402

from portal.database import database_ensure  # noqa: E402
from tenants import services  # noqa: E402
from tenants.models import Client, Partner  # noqa: E402
from tenants.provisioning import portal_migrate  # noqa: E402


def create_many(partner: Partner, prefix: str, count: int, *, django_tenants: bool = False) -> list[float]:
    """`count` clients made by the product (client_create), or with django-tenants' own create_schema."""
    from django_tenants.models import TenantMixin

    from tenants.services.clients import schema_name_for

    timings = []
    for index in range(count):
        started = time.perf_counter()
        if django_tenants:
            slug = f"{prefix}-{index}"
            client = Client(partner=partner, name=f"Bench {prefix} {index}", slug=slug,
                            schema_name=schema_name_for(partner, slug))  # fmt: skip
            client.auto_create_schema = False
            client.save()
            TenantMixin.create_schema(client, check_if_exists=True, verbosity=0)
        else:
            services.client_create(partner=partner, name=f"Bench {prefix} {index}", slug=f"{prefix}-{index}")
        timings.append(time.perf_counter() - started)
    return timings


def drop_bench_clients(partner: Partner) -> None:
    for client in Client.objects.filter(partner=partner):
        client.delete(force_drop=True)
    connection.set_schema_to_public()


def report(label: str, timings: list[float]) -> None:
    print(
        f"{label:<28} mean {statistics.mean(timings):6.3f} s   median {statistics.median(timings):6.3f} s   "
        f"max {max(timings):6.3f} s   ({len(timings)} tenants)"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=5)
    options = parser.parse_args()
    database_ensure()
    portal_migrate()
    partner, _ = Partner.objects.get_or_create(slug="bench-provision", defaults={"name": "Bench Provisioning"})
    drop_bench_clients(partner)
    try:
        from tenants import schema_script
        from tenants.models import SchemaScript

        # The recording is paid once per release (by migrate_portal): timed on its own.
        SchemaScript.objects.filter(key=schema_script.migrations_key()).delete()
        schema_script._memo.clear()
        started = time.perf_counter()
        schema_script.creation_script()
        recording = time.perf_counter() - started
        scripted = create_many(partner, "script", options.count)
        cloned = create_many(partner, "clone", options.count, django_tenants=True)
        with override_settings(TENANT_CREATION_FAKES_MIGRATIONS=False, TENANT_BASE_SCHEMA=None):
            migrated = create_many(partner, "migrate", options.count, django_tenants=True)
    finally:
        drop_bench_clients(partner)
        partner.delete()
    print("Client workspace creation, seconds per tenant")
    print(f"recording the script (once per set of migrations, by migrate_portal): {recording:.2f} s")
    report("recorded script (product)", scripted)
    report("clone template schema", cloned)
    report("run migrations", migrated)


if __name__ == "__main__":
    main()
