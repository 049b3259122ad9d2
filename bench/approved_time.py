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
from integrations.services.connections import connection_create  # noqa: E402
from integrations.services.flows import template_install  # noqa: E402
from integrations.services.runs import run_slice, run_start  # noqa: E402
from portal.database import database_ensure  # noqa: E402
from tenants import services  # noqa: E402
from tenants.models import Client, Partner  # noqa: E402
from tenants.provisioning import portal_migrate  # noqa: E402


def cpu_seconds_of(pid: int) -> float:
    """A process's CPU time so far (user and system), as Linux counts it: for PostgreSQL's backend and the
    sandboxes' process, which the worker's own clock does not see."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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


def pipeline(sandboxes_pid: int) -> dict:
    flow = install()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    others = {"database": backend, "sandboxes": sandboxes_pid}
    others_before = {name: cpu_seconds_of(pid) for name, pid in others.items()}
    started, cpu_started = time.perf_counter(), time.process_time()
    run = run_start(flow=flow, enqueue=False)
    while run_slice(run_id=run.pk, slice_seconds=3600) == "continue":
        pass
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    others_cpu = {name: cpu_seconds_of(pid) - others_before[name] for name, pid in others.items()}
    run.refresh_from_db()
    return {"run": run, "seconds": seconds, "cpu_seconds": cpu_seconds, "others_cpu": others_cpu}


def naive(sample: int) -> tuple[int, float, int]:
    """What an integrator would write instead: requests + psycopg, no engine. One time entry per HTTP call and
    per transaction into a staging table, then one grouped query and one NetSuite call per invoice (a line per
    rate, as the product writes them). Projects and customers are looked up once, as any script would.

    Only NetSuite's OAuth token comes from the connector's signer (a script would sign the same JWT)."""
    import psycopg
    import requests

    from connectors.http import HttpPolicy
    from connectors.netsuite.client import NetSuiteConnector

    kantata = f"http://127.0.0.1:{8104 + OFFSET}/api/v1"
    netsuite = f"http://127.0.0.1:{8103 + OFFSET}"
    policy = HttpPolicy(allowed_hosts=frozenset(settings.CONNECTOR_ALLOWED_HOSTS))
    token = NetSuiteConnector(base_url=netsuite, credentials=NETSUITE, policy=policy)._token()
    http = requests.Session()
    k_auth = {"Authorization": f"Bearer {KANTATA['access_token']}"}
    n_auth = {"Authorization": f"Bearer {token}", "Prefer": "transient"}
    calls = 0
    started = time.perf_counter()

    workspaces, page = {}, 1
    while True:
        body = http.get(f"{kantata}/workspaces", params={"per_page": 200, "page": page}, headers=k_auth).json()
        calls += 1
        for workspace in body["workspaces"].values():
            workspaces[workspace["id"]] = workspace["title"].split(" ", 1)[0].upper()
        if page >= body["meta"]["page_count"]:
            break
        page += 1
    jobs, offset = {}, 0
    while True:
        answer = http.post(
            f"{netsuite}/services/rest/query/v1/suiteql?limit=1000&offset={offset}",
            json={"q": "SELECT id, entityid, parent FROM job"},
            headers=n_auth,
        ).json()
        calls += 1
        for row in answer["items"]:
            jobs[str(row["entityid"]).upper()] = (row["id"], row["parent"])
        if not answer.get("hasMore"):
            break
        offset += 1000

    dsn = connection.settings_dict
    conninfo = psycopg.conninfo.make_conninfo(
        dbname=dsn["NAME"], user=dsn["USER"], password=dsn["PASSWORD"], host=dsn["HOST"], port=dsn["PORT"] or None
    )
    with psycopg.connect(conninfo, autocommit=True) as db:
        db.execute("DROP TABLE IF EXISTS public.naive_time_entry")
        db.execute(
            "CREATE TABLE public.naive_time_entry (id text PRIMARY KEY, project text, day date, hours numeric,"
            " rate numeric, billable bool, approved bool)"
        )
        for number in range(1, sample + 1):
            body = http.get(
                f"{kantata}/time_entries",
                params={"per_page": 1, "page": number, "order": "updated_at:asc"},
                headers=k_auth,
            ).json()
            calls += 1
            for entry in body["time_entries"].values():
                with db.transaction():
                    db.execute(
                        "INSERT INTO public.naive_time_entry VALUES (%s, %s, %s, %s, %s, %s, %s)"
                        " ON CONFLICT (id) DO UPDATE SET project = excluded.project, day = excluded.day,"
                        " hours = excluded.hours, rate = excluded.rate, billable = excluded.billable,"
                        " approved = excluded.approved",
                        (
                            entry["id"],
                            workspaces.get(entry["workspace_id"]),
                            entry["date_performed"],
                            Decimal(entry["time_in_minutes"]) / 60,
                            Decimal(entry["rate_in_cents"]) / 100,
                            entry["billable"],
                            entry["approved"],
                        ),
                    )
        groups = db.execute(
            "SELECT project, date_trunc('month', day)::date, rate, sum(hours) FROM public.naive_time_entry"
            " WHERE billable GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
        ).fetchall()
        db.execute("DROP TABLE public.naive_time_entry")
    invoices: dict[tuple, list] = {}
    for project, month, rate, hours in groups:
        if project in jobs:  # time on a project the ERP lacks waits, as in the product
            invoices.setdefault((project, month), []).append((rate, hours))
    for (project, month), lines in invoices.items():
        job, customer = jobs[project]
        http.put(
            f"{netsuite}/services/rest/record/v1/invoice/eid:NAIVE-{project}-{month:%Y-%m}",
            json={
                "entity": {"id": str(customer)},
                "tranDate": month.isoformat(),
                "memo": f"{project} {month:%B %Y}",
                "item": {
                    "items": [
                        {
                            "item": {"id": "1"},
                            "quantity": float(hours),
                            "rate": float(rate),
                            "amount": float((hours * rate).quantize(Decimal("0.01"))),
                            "description": f"Professional services {month:%B %Y} at {rate}/h",
                            "job": {"id": str(job)},
                        }
                        for rate, hours in lines
                    ]
                },
            },
            headers=n_auth,
        ).raise_for_status()
        calls += 1
    return sample, time.perf_counter() - started, calls


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


def dlt_peer(python: str) -> dict:
    """The dlt peer (bench/peer_dlt.py) in its own Python, against the same Kantata sandbox and database."""
    import json

    dsn = settings.DATABASES["default"]
    # dlt refuses credentials without a password; with trust authentication PostgreSQL ignores the one it sends.
    url = f"postgresql://{dsn['USER']}:{dsn['PASSWORD'] or 'unused'}@{dsn['HOST'] or '127.0.0.1'}"
    url += f":{dsn['PORT'] or 5432}/{dsn['NAME']}"
    answer = subprocess.run(
        [python, str(ROOT / "bench" / "peer_dlt.py"), "--kantata", f"http://127.0.0.1:{8104 + OFFSET}",
         "--token", KANTATA["access_token"], "--dsn", url],
        capture_output=True, text=True,
    )  # fmt: skip
    if answer.returncode:
        raise SystemExit(f"the dlt peer failed:\n{answer.stderr[-3000:]}")
    return json.loads(answer.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--naive-sample", type=int, default=1000)
    parser.add_argument("--profile", action="store_true", help="profile the pipeline (cProfile, top 40 by own time)")
    parser.add_argument("--dlt-python", help="a Python with dlt[postgres]: run the dlt peer (bench/peer_dlt.py) too")
    options = parser.parse_args()
    database_ensure()
    portal_migrate()
    sandboxes = start_sandboxes(options.entries)
    clients = []
    try:
        naive_done, naive_seconds, naive_calls = naive(options.naive_sample)
        clients.append(workspace("pipeline"))
        rss_before = peak_rss_mb()
        if options.profile:
            import cProfile
            import pstats

            profiler = cProfile.Profile()
            result = profiler.runcall(pipeline, sandboxes.pid)
            stats = pstats.Stats(profiler)
            stats.sort_stats("tottime").print_stats(40)
            stats.sort_stats("cumulative").print_stats("integrations/engine|integrations/services|connectors/", 40)
        else:
            result = pipeline(sandboxes.pid)
        run: SyncRun = result["run"]
        copy_seconds = copy_ceiling(run.read)
        print(
            f"approved-time-to-invoice, {run.read:,} time entries (database: {settings.DATABASES['default']['NAME']})"
        )
        print(
            f"  pipeline   {run.read / result['seconds']:10,.0f} records/s  {result['seconds']:8.1f} s   "
            f"created {run.created:,}  parked {run.parked:,}  failed {run.failed:,}  invoices {Invoice.objects.count():,}  "
            f"vendor calls {run.vendor_calls:,}"
        )
        # The worker's own CPU (its threads included; not PostgreSQL's or the sandboxes'): steadier than the
        # wall clock on a busy machine, and what a second worker core would have to share.
        print(
            f"  worker CPU {result['cpu_seconds']:10.1f} s   ({run.read / result['cpu_seconds']:,.0f} records per CPU second)"
        )
        others = result["others_cpu"]
        print(
            f"  other CPU  {others['database']:10.1f} s database backend, {others['sandboxes']:.1f} s sandboxes "
            f"({os.cpu_count()} cores; the pipeline's wall clock {result['seconds']:.1f} s)"
        )
        print(
            f"  naive      {naive_done / naive_seconds:10,.0f} records/s  (requests + psycopg: one record per read and per "
            f"transaction, an invoice per call; {naive_done:,} records in {naive_seconds:.1f} s, {naive_calls:,} vendor calls)"
        )
        print(
            f"  COPY       {run.read / copy_seconds:10,.0f} records/s  {copy_seconds:8.2f} s   (ceiling: rows into PostgreSQL, no HTTP)"
        )
        print(f"  peak RSS   {peak_rss_mb():.0f} MB (before the run: {rss_before:.0f} MB)")
        if options.dlt_python:
            peer = dlt_peer(options.dlt_python)
            print(
                f"  dlt        {peer['rows'] / peer['seconds']:10,.0f} records/s  {peer['seconds']:8.1f} s   "
                f"(read and merge into PostgreSQL only: no mapping, no invoices; {peer['calls']:,} vendor calls)"
            )
    finally:
        connection.set_schema_to_public()
        for client in clients:
            client.delete(force_drop=True)
        os.killpg(sandboxes.pid, signal.SIGTERM)


if __name__ == "__main__":
    main()
