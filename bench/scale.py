"""A thousand client workspaces: provisioning, a migration across all of them, and a sync round on a worker pool.

    PORTAL_ENV=dev .venv/bin/python bench/scale.py [--clients 1000] [--round-clients 1000] [--workers 2]

Uses the database of `dev.py run` (or DATABASE_URL) and the broker of CELERY_BROKER_URL (Redis db 14 by default);
creates the clients under a partner of its own ("Bench Scale") and drops them at the end (--keep keeps them).

1. Provisioning: every client created as the product creates one (schema cloned from the template, audit rows);
   seconds per client for the first and the last hundred, so growth with the number of schemas shows.
2. Migration: the latest integrations migration is unapplied from every client schema, then applied again the
   way `manage.py migrate_portal` does (tenants.schema_upgrade); beside it, Django's own per-schema
   `migrate_schemas` on a sample, what a partner would otherwise run.
3. Sync round: every client of the round gets the approved-time-to-invoice flow (Kantata -> NetSuite sandboxes)
   and all of them are due at once, as when beat fires a thousand schedules in the same minute; one client reads a
   large Kantata account (--big-entries) and is queued first, so a client stuck behind it would show. Worker
   processes (--workers, each a Celery worker of its own) take the runs; the bench prints the wait between a run
   being queued and starting (p50, p95, max), how long runs took, and how the small clients fared while the big
   run was going. The sandboxes are shared: every small client reads the same small Kantata account and writes
   its invoices to the same NetSuite account.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PORTAL_ENV", "dev")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/14")
os.environ.setdefault("CONNECTOR_RATE_PER_SECOND", "100000")
SMALL, BIG = 900, 910  # sandbox port offsets: small Kantata + NetSuite, and the big client's Kantata
os.environ.setdefault(
    "CONNECTOR_ALLOWED_HOSTS",
    ",".join(f"127.0.0.1:{port}" for port in (8103 + SMALL, 8104 + SMALL, 8103 + BIG, 8104 + BIG)),
)

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402
from django.db.models import Q  # noqa: E402
from django_celery_beat.models import PeriodicTask  # noqa: E402
from psycopg import sql  # noqa: E402

from connectors.kantata.sandbox import DEMO_CREDENTIALS as KANTATA  # noqa: E402
from connectors.netsuite.sandbox import DEMO_CREDENTIALS as NETSUITE  # noqa: E402
from portal.database import database_ensure  # noqa: E402
from tenants import services  # noqa: E402
from tenants.models import Client, Partner  # noqa: E402
from tenants.provisioning import portal_migrate  # noqa: E402
from tenants.schema_upgrade import clients_downgrade, clients_upgrade  # noqa: E402

LATEST = ("integrations", "0013_environment_books")


def percentiles(values: list[float]) -> str:
    ordered = sorted(values)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return f"p50 {at(0.5):7.3f} s   p95 {at(0.95):7.3f} s   max {ordered[-1]:7.3f} s"


def drop_clients(partner: Partner) -> None:
    for client in Client.objects.filter(partner=partner):
        client.delete(force_drop=True)
    connection.set_schema_to_public()


# -- 1. provisioning -------------------------------------------------------------------------------------------
def provision(partner: Partner, count: int) -> list[Client]:
    from tenants.models import Plan

    plan, _ = Plan.objects.get_or_create(partner=partner, name="Scale", defaults={"monthly_price": 250})
    clients, seconds = [], []
    started = time.perf_counter()
    for index in range(count):
        began = time.perf_counter()
        clients.append(
            services.client_create(partner=partner, name=f"Scale {index:04d}", slug=f"s{index:04d}", plan=plan)
        )
        seconds.append(time.perf_counter() - began)
        if (index + 1) % 100 == 0:
            print(f"    {index + 1:5,} workspaces, the last hundred at {statistics.mean(seconds[-100:]):.3f} s each",
                  flush=True)  # fmt: skip
    total = time.perf_counter() - started
    print(f"  provisioning   {count:,} workspaces in {total:,.0f} s")
    print(f"    first 100    {percentiles(seconds[:100])}")
    print(f"    last 100     {percentiles(seconds[-100:])}   (with {count - 100:,} schemas already there)")
    return clients


# -- 2. migration ----------------------------------------------------------------------------------------------
def migration(clients: list[Client], django_sample: int) -> None:
    schemas = [client.schema_name for client in clients]
    failed = clients_downgrade(app_label=LATEST[0], migration_name=LATEST[1], schema_names=schemas)
    if failed:
        raise SystemExit(f"could not unapply {LATEST[1]} from {len(failed)} schemas: {next(iter(failed.items()))}")
    last = [0.0]

    def progress(done: int, total: int) -> None:
        if done == total or time.monotonic() - last[0] > 5:
            last[0] = time.monotonic()
            print(f"    {done:5,} of {total:,} schemas upgraded", flush=True)

    upgrade = clients_upgrade(schema_names=schemas, on_progress=progress)
    if upgrade.failed:
        raise SystemExit(f"{len(upgrade.failed)} schemas failed: {next(iter(upgrade.failed.items()))}")
    print(
        f"  migration      {LATEST[1]} across {len(schemas):,} schemas in {upgrade.seconds:.1f} s "
        f"({upgrade.seconds / len(schemas) * 1000:.1f} ms a schema; migrate_portal's SQL-once upgrade)"
    )
    sample = schemas[:django_sample]
    if not sample:
        return
    clients_downgrade(app_label=LATEST[0], migration_name=LATEST[1], schema_names=sample)
    from django.core.management import call_command

    started = time.perf_counter()
    for schema in sample:
        call_command("migrate_schemas", schema_name=schema, tenant=True, interactive=False, verbosity=0)
    each = (time.perf_counter() - started) / len(sample)
    connection.set_schema_to_public()
    print(
        f"  Django migrate {each:.2f} s a schema on {len(sample)} schemas (migrate_schemas, one schema at a time): "
        f"{each * len(schemas) / 60:.0f} min for {len(schemas):,} in one process, "
        f"{each * len(schemas) / 120:.0f} min on both cores"
    )


# -- housekeeping ---------------------------------------------------------------------------------------------
def housekeeping(count: int) -> None:
    """Beat's periodic tasks that visit every client, timed once each at this many clients."""
    from integrations.housekeeping import runs_recover_all, sla_alerts, usage_rollup

    for name, task, every in (
        ("runs_recover", runs_recover_all, "every minute"),
        ("usage_rollup", usage_rollup, "every 15 minutes"),
        ("sla_alerts", sla_alerts, "every 15 minutes"),
    ):
        started = time.perf_counter()
        task()
        seconds = time.perf_counter() - started
        connection.set_schema_to_public()
        print(
            f"  {name:<14} {seconds:6.1f} s over {count:,} clients ({seconds / count * 1000:.1f} ms a client; {every})"
        )


# -- 3. sync round ---------------------------------------------------------------------------------------------
def start_sandboxes(offset: int, entries: int, only: tuple[str, ...]) -> subprocess.Popen:
    import requests

    process = subprocess.Popen(
        [sys.executable, "-m", "connectors.sandbox", "--only", *only, "--port-offset", str(offset)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    for _ in range(len(only)):
        process.stdout.readline()
    requests.post(f"http://127.0.0.1:{8104 + offset}/_sandbox/seed", json={"time_entries": entries}, timeout=120)
    return process


def flow_install(client: Client, kantata_offset: int):
    from integrations.services.connections import connection_create
    from integrations.services.flows import template_install

    connection.set_tenant(client)
    kantata = connection_create(
        name="Kantata", vendor="kantata", base_url=f"http://127.0.0.1:{8104 + kantata_offset}", credentials=KANTATA
    )
    netsuite = connection_create(
        name="NetSuite", vendor="netsuite", base_url=f"http://127.0.0.1:{8103 + SMALL}", credentials=NETSUITE
    )
    flows = template_install(key="approved-time-to-invoice", connections={"psa": kantata, "erp": netsuite})
    flow = next(f for f in flows if f.template_key.endswith("/approved-time"))
    connection.set_schema_to_public()
    return flow


def beat_read() -> None:
    """What beat does with every schedule in PostgreSQL: read them all (at start and whenever one changes) and ask
    each whether it is due (every tick). Nothing is sent."""
    from django_celery_beat.schedulers import DatabaseScheduler

    from portal.celery import app

    scheduler = DatabaseScheduler(app=app, lazy=True)
    started = time.perf_counter()
    schedule = scheduler.all_as_schedule()
    read = time.perf_counter() - started
    started = time.perf_counter()
    due = sum(1 for entry in schedule.values() if entry.is_due().is_due)
    asked = time.perf_counter() - started
    print(f"  beat           read {len(schedule):,} schedules in {read:.2f} s; asked each if due in {asked:.2f} s "
          f"({due:,} due)")  # fmt: skip


def start_workers(count: int, log_dir: Path) -> list[subprocess.Popen]:
    from portal.celery import app

    app.control.purge()
    workers = []
    for number in range(count):
        log = open(log_dir / f"scale-worker-{number}.log", "wb")  # noqa: SIM115 - closed with the process
        workers.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "portal",
                    "worker",
                    "--pool",
                    "solo",
                    "--loglevel",
                    "WARNING",
                    "--hostname",
                    f"scale-{number}@%h",
                    "--without-heartbeat",
                    "--without-mingle",
                    "--without-gossip",
                ],
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=os.environ.copy(),
            )  # fmt: skip
        )
    return workers


def runs_of(schemas: list[str]) -> list[tuple]:
    """(schema, status, queued_at, started_at, finished_at, read) of every schedule-triggered run, in one query."""
    union = sql.SQL(" UNION ALL ").join(
        sql.SQL(
            "SELECT {name}::text, status, queued_at, started_at, finished_at, read FROM {table} WHERE trigger = 'schedule'"
        ).format(name=sql.Literal(schema), table=sql.Identifier(schema, "integrations_syncrun"))
        for schema in schemas
    )
    with connection.cursor() as cursor:
        cursor.execute(union.as_string(None))
        return cursor.fetchall()


def sync_round(clients: list[Client], *, workers: int, small_entries: int, big_entries: int, timeout: float) -> None:
    from integrations.services.runs import run_start

    sandboxes = [
        start_sandboxes(SMALL, small_entries, ("kantata", "netsuite")),
        start_sandboxes(BIG, big_entries, ("kantata",)),
    ]
    pool = []
    try:
        started = time.perf_counter()
        flows = [(clients[0], flow_install(clients[0], BIG))]
        flows += [(client, flow_install(client, SMALL)) for client in clients[1:]]
        print(f"  flows          {len(flows):,} installed in {time.perf_counter() - started:.0f} s; "
              f"beat holds {PeriodicTask.objects.count():,} schedules")  # fmt: skip
        beat_read()
        pool = start_workers(workers, ROOT / "data")
        time.sleep(3)  # the workers connect to the broker
        round_started = time.perf_counter()
        for client, flow in flows:  # all due at once, the big client first
            connection.set_tenant(client)
            run_start(flow=flow, trigger="schedule")
        connection.set_schema_to_public()
        schemas = [client.schema_name for client, _ in flows]
        while time.perf_counter() - round_started < timeout:
            rows = runs_of(schemas)
            done = [row for row in rows if row[1] not in ("queued", "running")]
            if len(done) == len(schemas):
                break
            time.sleep(2)
        seconds = time.perf_counter() - round_started
        rows = runs_of(schemas)
        report_round(rows, schemas[0], seconds, workers)
    finally:
        connection.set_schema_to_public()
        for worker in pool:
            os.killpg(worker.pid, signal.SIGTERM)
        for process in sandboxes:
            os.killpg(process.pid, signal.SIGTERM)


def report_round(rows: list[tuple], big_schema: str, seconds: float, workers: int) -> None:
    finished = [row for row in rows if row[4] is not None and row[3] is not None]
    waits = [(row[3] - row[2]).total_seconds() for row in finished]
    durations = [(row[4] - row[3]).total_seconds() for row in finished]
    statuses = {}
    for row in rows:
        statuses[row[1]] = statuses.get(row[1], 0) + 1
    print(f"  sync round     {len(rows):,} runs in {seconds:.0f} s on {workers} worker processes: "
          + ", ".join(f"{n:,} {status}" for status, n in sorted(statuses.items())))  # fmt: skip
    if not finished:
        return
    print(f"    wait before start   {percentiles(waits)}")
    print(f"    run duration        {percentiles(durations)}")
    big = next((row for row in rows if row[0] == big_schema), None)
    if big and big[3] and big[4]:
        small = [row for row in finished if row[0] != big_schema]
        during = [row for row in small if big[3] <= row[3] <= big[4]]
        print(
            f"    big client         {big[5]:,} entries read in {(big[4] - big[3]).total_seconds():.0f} s; "
            f"{len(during):,} of {len(small):,} small clients' runs started while it ran"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument(
        "--round-clients", type=int, default=None, help="clients in the sync round (all by default; 0: no round)"
    )
    parser.add_argument("--workers", type=int, default=2, help="Celery worker processes for the sync round")
    parser.add_argument("--small-entries", type=int, default=200)
    parser.add_argument("--big-entries", type=int, default=100_000)
    parser.add_argument("--django-sample", type=int, default=10)
    parser.add_argument("--round-timeout", type=float, default=3600)
    parser.add_argument("--keep", action="store_true", help="keep the clients afterwards")
    options = parser.parse_args()
    database_ensure()
    portal_migrate()
    partner, _ = Partner.objects.get_or_create(slug="bench-scale", defaults={"name": "Bench Scale"})
    drop_clients(partner)
    print(f"scale: {options.clients:,} client workspaces ({datetime.now():%Y-%m-%d %H:%M})", flush=True)
    try:
        clients = provision(partner, options.clients)
        migration(clients, options.django_sample)
        housekeeping(len(Client.objects.all()))
        round_clients = clients[: len(clients) if options.round_clients is None else options.round_clients]
        if round_clients:
            sync_round(
                round_clients,
                workers=options.workers,
                small_entries=options.small_entries,
                big_entries=options.big_entries,
                timeout=options.round_timeout,
            )
    finally:
        if not options.keep:
            started = time.perf_counter()
            drop_clients(partner)
            print(f"  dropped the bench's workspaces in {time.perf_counter() - started:.0f} s")
        PeriodicTask.objects.filter(Q(name__startswith="c_bench_scale_")).delete()


if __name__ == "__main__":
    main()
