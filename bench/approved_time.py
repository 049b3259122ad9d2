"""approved-time-to-invoice at volume: Kantata sandbox -> engine -> NetSuite sandbox, beside a naive
one-record-at-a-time loop and PostgreSQL's own COPY of the same rows (the ceiling), in one run.

    PORTAL_ENV=dev .venv/bin/python bench/approved_time.py [--entries 100000] [--naive-sample 1000]

Uses the database of `dev.py run` (or DATABASE_URL); creates a throwaway client workspace and drops
it at the end. The sandboxes run in a separate process, as they would be a network away.
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PORTAL_ENV", "dev")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
os.environ.setdefault("CONNECTOR_RATE_PER_SECOND", "100000")  # local sandboxes: measure the engine, not pacing
OFFSET = 700  # sandboxes on 8803/8804 so a running demo (8101..) is not disturbed
os.environ.setdefault("CONNECTOR_ALLOWED_HOSTS", f"127.0.0.1:{8103 + OFFSET},127.0.0.1:{8104 + OFFSET}")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402

from connectors.kantata.sandbox import DEMO_CREDENTIALS as KANTATA  # noqa: E402
from connectors.netsuite.sandbox import DEMO_CREDENTIALS as NETSUITE  # noqa: E402
from connectors.sandbox.server import RunningSandbox  # noqa: E402,F401
from integrations.models import Invoice, SyncRun  # noqa: E402
from integrations.services.connections import connection_create, connector_for  # noqa: E402
from integrations.services.flows import template_install  # noqa: E402
from integrations.services.runs import run_slice, run_start  # noqa: E402
from portal.database import database_ensure  # noqa: E402
from tenants import services  # noqa: E402
from tenants.models import Client, Partner  # noqa: E402
from tenants.provisioning import portal_migrate  # noqa: E402


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def start_sandboxes(entries: int) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-m", "connectors.sandbox", "--only", "kantata", "netsuite", "--port-offset", str(OFFSET)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    for _ in range(2):
        process.stdout.readline()
    import requests

    requests.post(f"http://127.0.0.1:{8104 + OFFSET}/_sandbox/seed", json={"time_entries": entries}, timeout=60)
    return process


def workspace(slug: str) -> Client:
    partner, _ = Partner.objects.get_or_create(slug="bench-engine", defaults={"name": "Bench Engine"})
    for old in Client.objects.filter(partner=partner, slug=slug):
        old.delete(force_drop=True)
    connection.set_schema_to_public()
    client = services.client_create(partner=partner, name=f"Bench {slug}", slug=slug)
    connection.set_tenant(client)
    return client


def install():
    kantata = connection_create(
        name="Kantata",
        vendor="kantata",
        base_url=f"http://127.0.0.1:{8104 + OFFSET}",
        credentials={**KANTATA, "approved_only": "no"},
    )
    netsuite = connection_create(
        name="NetSuite", vendor="netsuite", base_url=f"http://127.0.0.1:{8103 + OFFSET}", credentials=NETSUITE
    )
    flows = template_install(key="approved-time-to-invoice", connections={"psa": kantata, "erp": netsuite})
    flow = next(f for f in flows if f.template_key.endswith("/approved-time"))
    flow.source_filter = {}  # every entry, approved or not: the benchmark moves all of them
    flow.save(update_fields=["source_filter"])
    return flow


def pipeline() -> dict:
    flow = install()
    started = time.perf_counter()
    run = run_start(flow=flow, enqueue=False)
    while run_slice(run_id=run.pk, slice_seconds=3600) == "continue":
        pass
    seconds = time.perf_counter() - started
    run.refresh_from_db()
    return {"run": run, "seconds": seconds}


def naive(sample: int) -> tuple[int, float]:
    """The same work one record at a time: read one entry per HTTP call, handle it, write its invoice."""
    flow = install()
    run = run_start(flow=flow, enqueue=False)
    from integrations.engine.orchestrator import FlowRunner
    from integrations.services.runs import _run_prerequisites

    _run_prerequisites(flow, None)
    runner = FlowRunner(flow, run, connector_for=connector_for)
    started = time.perf_counter()
    done = 0
    for page in runner.source.read("time_entries", page_size=1):
        runner.process(page.records, page.rejects)
        runner.flush()
        done += len(page.records) + len(page.rejects)
        if done >= sample:
            break
    return done, time.perf_counter() - started


def copy_ceiling(rows: int) -> float:
    """PostgreSQL's COPY of `rows` time-entry-shaped rows into a scratch table: the ceiling."""
    buffer = io.StringIO()
    for i in range(rows):
        buffer.write(
            f"{i}\t{i % 200}\t{i % 80}\t2024-01-{1 + i % 28:02d}\t{Decimal(i % 9) / 2}\tt\tt\tnotes {i}\t150.00\t90.00\tUSD\n"
        )
    data = buffer.getvalue()
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE bench_copy (source_id bigint, resource_id int, project_id int, date date, hours numeric,"
            " billable bool, approved bool, notes text, bill_rate numeric, cost_rate numeric, currency text)"
        )
        started = time.perf_counter()
        with cursor.copy("COPY bench_copy FROM STDIN") as copy:
            copy.write(data)
        seconds = time.perf_counter() - started
        cursor.execute("DROP TABLE bench_copy")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--naive-sample", type=int, default=1000)
    options = parser.parse_args()
    database_ensure()
    portal_migrate()
    sandboxes = start_sandboxes(options.entries)
    clients = []
    try:
        clients.append(workspace("naive"))
        naive_done, naive_seconds = naive(options.naive_sample)
        clients.append(workspace("pipeline"))
        rss_before = peak_rss_mb()
        result = pipeline()
        run: SyncRun = result["run"]
        copy_seconds = copy_ceiling(run.read)
        print(
            f"approved-time-to-invoice, {run.read:,} time entries (database: {settings.DATABASES['default']['NAME']})"
        )
        print(
            f"  pipeline   {run.read / result['seconds']:10,.0f} records/s  {result['seconds']:8.1f} s   "
            f"created {run.created:,}  failed {run.failed:,}  invoices {Invoice.objects.count():,}  "
            f"vendor calls {run.vendor_calls:,}"
        )
        print(
            f"  naive      {naive_done / naive_seconds:10,.0f} records/s  (one record per read, per transaction and per "
            f"ERP write; {naive_done:,} records sampled in {naive_seconds:.1f} s)"
        )
        print(
            f"  COPY       {run.read / copy_seconds:10,.0f} records/s  {copy_seconds:8.2f} s   (ceiling: rows into PostgreSQL, no HTTP)"
        )
        print(f"  peak RSS   {peak_rss_mb():.0f} MB (before the run: {rss_before:.0f} MB)")
    finally:
        connection.set_schema_to_public()
        for client in clients:
            client.delete(force_drop=True)
        os.killpg(sandboxes.pid, signal.SIGTERM)


if __name__ == "__main__":
    main()
