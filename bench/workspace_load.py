"""The client workspace under load: the exception queue and each dashboard, p50/p95/p99 per URL, with
1,000,000 exceptions and 1,000,000 time entries in one client schema and 16 concurrent users
against gunicorn over loopback.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/sgp_bench PORTAL_ENV=dev \\
    CACHE_URL=redis://127.0.0.1:6379/5 CELERY_BROKER_URL=redis://127.0.0.1:6379/6 \\
        .venv/bin/python bench/workspace_load.py [--exceptions 1000000] [--time-entries 1000000] \\
        [--users 16] [--seconds 60] [--workers 2] [--threads 4]

Rows are generated inside PostgreSQL (INSERT ... SELECT FROM generate_series), once: a second run
reuses them. Each simulated user has its own session and requests the URLs in turn for a bounded
time after a warm-up, first pausing 0.5–1.5 × --think seconds between requests (people reading what
they clicked), then flat out (the saturation point of the machine); latency is measured from send
to last byte. A Celery worker with beat runs beside gunicorn, as in production: it recomputes the
dashboards people look at once a minute, and that work shares the cores with the requests measured.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import defaultdict
from http.client import HTTPConnection, HTTPException
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PORTAL_ENV", "dev")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

import django  # noqa: E402

django.setup()

import requests  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402

from portal.database import database_ensure  # noqa: E402
from tenants import services  # noqa: E402
from tenants.models import Client, Membership, Partner, Plan, Role, User  # noqa: E402
from tenants.provisioning import portal_migrate  # noqa: E402

HOST = "bench.localhost"
SLUG = "loadtest"
PASSWORD = "bench-load-2026"  # noqa: S105 - a throwaway bench user on a local database


# --- The workspace and its rows ------------------------------------------------------------------


def workspace() -> Client:
    partner = Partner.objects.filter(slug="bench").first() or services.partner_create(
        name="Bench Partners", slug="bench", domain=HOST, admin_email="admin@bench.localhost"
    )
    plan, _ = Plan.objects.get_or_create(
        partner=partner, name="Bench", defaults={"max_connections": 20, "max_flows": 50, "sla_resolution_hours": 24}
    )
    client = Client.objects.filter(partner=partner, slug=SLUG).first() or services.client_create(
        partner=partner, name="Load Test Engineering", slug=SLUG, plan=plan
    )
    connection.set_schema_to_public()
    return client


def bench_user(index: int, client: Client) -> User:
    email = f"clerk{index}@bench.localhost"
    user = User.objects.filter(email=email).first()
    if user is None:
        user = User.objects.create_user(email, PASSWORD, full_name=f"Clerk {index}")
    Membership.objects.get_or_create(user=user, client=client, defaults={"role": Role.CLIENT_FINANCE})
    return user


def count(table: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {table}")  # noqa: S608 - a fixed table name
        return cursor.fetchone()[0]


def generate(client: Client, *, exceptions: int, time_entries: int) -> None:
    """Configuration through the services, then the bulk rows with generate_series."""
    from integrations.models import Flow
    from integrations.services.connections import connection_create
    from integrations.services.flows import template_install

    connection.set_tenant(client)
    if not Flow.objects.exists():
        kantata = connection_create(
            name="Kantata OX", vendor="kantata", base_url="http://127.0.0.1:9", credentials={"access_token": "x"}
        )
        netsuite = connection_create(
            name="NetSuite", vendor="netsuite", base_url="http://127.0.0.1:9", credentials={"account_id": "1"}
        )
        bamboo = connection_create(
            name="BambooHR", vendor="bamboohr", base_url="http://127.0.0.1:9", credentials={"api_key": "x"}
        )
        template_install(key="approved-time-to-invoice", connections={"psa": kantata, "erp": netsuite})
        template_install(key="employee-to-resource", connections={"hr": bamboo, "psa": kantata, "erp": netsuite})
    started = time.perf_counter()
    with connection.cursor() as cursor:
        if count("integrations_customer") == 0:
            cursor.execute(
                "INSERT INTO integrations_customer (name, domain, payment_terms, currency, billing_city,"
                " billing_country, updated_at)"
                " SELECT 'Customer ' || i, 'c' || i || '.example', 'Net 30', 'USD', 'Boston', 'US', now()"
                " FROM generate_series(1, 200) AS i"
            )
            cursor.execute(
                "INSERT INTO integrations_project (code, name, customer_id, status, billing_terms, budget, currency,"
                " updated_at)"
                " SELECT 'PRJ-' || (1000 + i), 'Project ' || i, (SELECT min(id) FROM integrations_customer) + i % 200,"
                " 'active', 'Time and materials', 100000, 'USD', now() FROM generate_series(1, 1000) AS i"
            )
            cursor.execute(
                "INSERT INTO integrations_resource (email, employee_number, first_name, last_name, department,"
                " practice, title, location, status, weekly_capacity_hours, updated_at)"
                " SELECT 'p' || i || '@bench.example', 'E' || i, 'Person', 'No. ' || i,"
                " (ARRAY['Strategy','Technology','Finance Advisory','Operations','Data & Analytics'])[1 + i % 5],"
                " (ARRAY['Strategy','Technology','Finance Advisory','Operations','Data & Analytics'])[1 + i % 5],"
                " 'Consultant', 'Boston', 'active', 40, now() FROM generate_series(1, 2000) AS i"
            )
        have = count("integrations_timeentry")
        if have < time_entries:
            # 2,000 people, each logging one entry a working day (weekends skipped), newest last.
            cursor.execute(
                "INSERT INTO integrations_timeentry (resource_id, project_id, date, hours, billable, approved, notes,"
                " bill_rate, cost_rate, currency, environment, updated_at)"
                " SELECT r.first + i %% 2000, p.first + (i * 7919) %% 1000,"
                "  d.day, 1 + (i %% 8), (i %% 5) <> 0, true, 'Client work', 150 + (i %% 7) * 25, 60 + (i %% 7) * 10,"
                "  'USD', 'production', now()"
                " FROM generate_series(%s::bigint, %s::bigint) AS i"
                " CROSS JOIN (SELECT min(id) AS first FROM integrations_resource) r"
                " CROSS JOIN (SELECT min(id) AS first FROM integrations_project) p"
                " CROSS JOIN LATERAL (SELECT (current_date - ((%s - i) / 2000 / 5 * 7 + ((%s - i) / 2000) %% 5)::int)"
                "  AS day) d",
                [have + 1, time_entries, time_entries, time_entries],
            )
        have = count("integrations_syncexception")
        if have < exceptions:
            # A quarter open, most resolved, some ignored; spread over six months, newest last.
            cursor.execute(
                "INSERT INTO integrations_syncexception (flow_id, source_system, target_system, object, external_id,"
                " payload, error_code, message, detail, fix_actions, status, occurrences, created_at, last_seen_at,"
                " resolved_at, assignee_id, assignee_email, ignored_reason)"
                " SELECT f.ids[1 + i %% array_length(f.ids, 1)],"
                "  (ARRAY['kantata','kantata','kantata','bamboohr'])[1 + i %% 4], 'netsuite', 'time_entries',"
                "  'te-' || i, jsonb_build_object('external_id', 'te-' || i, 'data',"
                "   jsonb_build_object('id', i, 'workspace_id', 'PRJ-' || (2000 + i %% 300), 'notes', 'Client work')),"
                "  c.code, 'Time entry ' || i || ' cannot be billed: ' || c.words, '',"
                "  CASE WHEN c.code = 'PROJECT_NOT_IN_TARGET' THEN jsonb_build_array(jsonb_build_object("
                "   'action', 'map_value', 'value_map', 'project-codes', 'value', 'PRJ-' || (2000 + i %% 300)))"
                "   ELSE '[]'::jsonb END,"
                "  CASE WHEN i %% 4 = 0 THEN 'open' WHEN i %% 10 = 1 THEN 'ignored' ELSE 'resolved' END, 1,"
                "  t.at, t.at, CASE WHEN i %% 4 = 0 THEN NULL ELSE t.at + interval '3 hours' END,"
                "  NULL, '', CASE WHEN i %% 10 = 1 AND i %% 4 <> 0 THEN 'Internal' ELSE '' END"
                " FROM generate_series(%s::bigint, %s::bigint) AS i"
                " CROSS JOIN (SELECT array_agg(id ORDER BY id) AS ids FROM integrations_flow) f"
                " CROSS JOIN LATERAL (SELECT now() - ((%s - i) * interval '15.5 seconds') AS at) t"
                " CROSS JOIN LATERAL (SELECT (ARRAY['PROJECT_NOT_IN_TARGET','PROJECT_NOT_IN_TARGET',"
                "  'MISSING_COST_RATE','REQUIRED_MISSING','VALUE_NOT_MAPPED','TARGET_REJECTED','FIELD_CONFLICT',"
                "  'BAD_DATE'])[1 + (i * 31) %% 8] AS code) k"
                " CROSS JOIN LATERAL (SELECT k.code, CASE k.code WHEN 'PROJECT_NOT_IN_TARGET' THEN"
                "  'project code not found in NetSuite' WHEN 'MISSING_COST_RATE' THEN 'no cost rate on that day'"
                "  ELSE 'a field needs attention' END AS words) c",
                [have + 1, exceptions, exceptions],
            )
        if count("integrations_syncrun") < 500:
            cursor.execute(
                "INSERT INTO integrations_syncrun (flow_id, trigger, status, read, created, updated, unchanged,"
                " failed, skipped, expected, vendor_calls, rate_limited, error, queued_at, started_at, finished_at)"
                " SELECT f.ids[1 + i % array_length(f.ids, 1)], 'schedule',"
                "  CASE WHEN i % 9 = 0 THEN 'failed' WHEN i % 3 = 0 THEN 'partial' ELSE 'succeeded' END,"
                "  500 + i % 700, 100, 50, 300, i % 20, 0, 500 + i % 700, 12, 0, '',"
                "  now() - i * interval '40 minutes', now() - i * interval '40 minutes' + interval '2 seconds',"
                "  now() - i * interval '40 minutes' + interval '9 seconds'"
                " FROM generate_series(1, 500) AS i"
                " CROSS JOIN (SELECT array_agg(id ORDER BY id) AS ids FROM integrations_flow) f"
            )
    with connection.cursor() as cursor:
        # A fresh bulk load has no visibility map yet: index-only scans would visit the heap until
        # autovacuum ran. A workspace that grew to a million rows over months has been vacuumed.
        for table in ("integrations_syncexception", "integrations_timeentry", "integrations_syncrun"):
            cursor.execute(f"VACUUM ANALYZE {table}")
    print(
        f"rows: {count('integrations_syncexception'):,} exceptions, {count('integrations_timeentry'):,} time entries"
        f" ({time.perf_counter() - started:.1f} s to generate what was missing)"
    )
    connection.set_schema_to_public()


# --- The load ------------------------------------------------------------------------------------


def session_cookie(user: User) -> str:
    from importlib import import_module

    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY

    store = import_module(settings.SESSION_ENGINE).SessionStore()
    store[SESSION_KEY] = str(user.pk)
    store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    store[HASH_SESSION_KEY] = user.get_session_auth_hash()
    store.create()
    return store.session_key


def start_gunicorn(port: int, workers: int, threads: int) -> subprocess.Popen:
    gunicorn = Path(sys.executable).parent / "gunicorn"
    process = subprocess.Popen(
        [
            str(gunicorn),
            "portal.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--threads",
            str(threads),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env={**os.environ, "LOG_LEVEL": "WARNING"},
        start_new_session=True,
    )
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return process
        except OSError:
            time.sleep(0.3)
    raise RuntimeError("gunicorn did not start")


def start_worker() -> subprocess.Popen:
    """The Celery worker with beat embedded: beat's dashboards_refresh keeps the dashboards fresh."""
    celery = Path(sys.executable).parent / "celery"
    return subprocess.Popen(
        [str(celery), "-A", "portal", "worker", "-B", "--pool", "solo", "--loglevel", "WARNING"],
        cwd=ROOT,
        env={**os.environ, "LOG_LEVEL": "WARNING"},
        start_new_session=True,
    )


def urls(base: str, cookie: str) -> dict[str, str]:
    """The measured pages; the queue's second page and one exception come from the first page."""
    queue = f"{base}/c/{SLUG}/exceptions/"
    first = requests.get(queue, headers={"Host": HOST}, cookies={"sessionid": cookie}, timeout=30).text
    after = re.search(r'rel="next" href="\?after=([0-9.]+)"', first)
    exception = re.search(r"/exceptions/(\d+)/", first)
    return {
        "queue (open, oldest first)": queue,
        "queue page 2 (keyset)": f"{queue}?after={after.group(1) if after else ''}",
        "queue filtered (error + system)": f"{queue}?error_code=MISSING_COST_RATE&system=from:kantata",
        "queue newest, assigned to nobody": f"{queue}?assignee=none&sort=newest",
        "queue search": f"{queue}?q=te-123457",
        "queue counters (HTMX)": f"{base}/c/{SLUG}/exceptions/counters",
        "exception detail": f"{base}/c/{SLUG}/exceptions/{exception.group(1) if exception else 1}/",
        "dashboard: exceptions": f"{base}/c/{SLUG}/dashboards/",
        "dashboard: utilization": f"{base}/c/{SLUG}/dashboards/utilization",
        "dashboard: margin": f"{base}/c/{SLUG}/dashboards/margin",
        "dashboard: sync health": f"{base}/c/{SLUG}/dashboards/sync-health",
    }


def run_load(
    targets: dict[str, str], cookies: list[str], seconds: float, think: float = 0.0
) -> tuple[dict, dict, float]:
    timings: dict[str, list[float]] = defaultdict(list)
    errors: dict[str, int] = defaultdict(int)
    stop = time.monotonic() + seconds
    names = list(targets)

    def user(index: int) -> None:
        # http.client on one kept-alive connection per user, not requests: the load generator shares
        # the cores with the server, and requests spent about 2 ms of CPU per request (16% of a core
        # at 86 requests/s; http.client about 0.5 ms) that the server then did not have.
        pacing = random.Random(index)
        parsed = urlsplit(next(iter(targets.values())))
        http = HTTPConnection(parsed.hostname, parsed.port, timeout=60)
        headers = {"Host": HOST, "Cookie": f"sessionid={cookies[index]}"}
        turn = index  # users start on different pages
        while time.monotonic() < stop:
            name = names[turn % len(names)]
            turn += 1
            target = urlsplit(targets[name])
            started = time.perf_counter()
            try:
                http.request("GET", f"{target.path}?{target.query}" if target.query else target.path, headers=headers)
                response = http.getresponse()
                response.read()  # to the last byte
                ok = response.status == 200
                if response.getheader("Connection", "").lower() == "close":
                    http.close()
            except (OSError, HTTPException):
                http.close()
                ok = False
            elapsed = time.perf_counter() - started
            if ok:
                timings[name].append(elapsed)
            else:
                errors[name] += 1
            if think:
                time.sleep(pacing.uniform(0.5, 1.5) * think)

    began = time.monotonic()
    threads = [threading.Thread(target=user, args=(i,)) for i in range(len(cookies))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return timings, errors, time.monotonic() - began


def cpu_seconds() -> dict:
    """CPU seconds used so far (Linux /proc) by the machine and by each process of gunicorn, the
    Celery worker and PostgreSQL, and by this load generator."""
    tick = os.sysconf("SC_CLK_TCK")
    with open("/proc/stat") as stat:
        fields = [int(value) for value in stat.readline().split()[1:]]
    used = {"machine": (sum(fields) - fields[3] - fields[4]) / tick, "load generator": sum(os.times()[:2])}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                raw = stat.read()
            with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                command = cmdline.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        name = raw[raw.index("(") + 1 : raw.rindex(")")]
        times = raw[raw.rindex(")") + 2 :].split()
        if name == "postgres":
            kind = "postgres"
        elif "gunicorn" in command and "portal.wsgi" in command:
            kind = "gunicorn"
        elif "celery" in command and "-A portal worker -B" in command:
            kind = "celery"
        else:
            continue
        used[(kind, entry)] = (int(times[11]) + int(times[12])) / tick
    return used


def cpu_report(before: dict, after: dict, wall: float, requests_done: int) -> None:
    """Where the machine's CPU went during a run; a process that exited (another test suite's
    database session) counts under "everything else"."""
    spent = {"gunicorn": 0.0, "postgres": 0.0, "celery": 0.0}
    for key, value in after.items():
        if isinstance(key, tuple):
            spent[key[0]] += value - before.get(key, 0.0)
    spent["load generator"] = after["load generator"] - before["load generator"]
    machine = after["machine"] - before["machine"]
    others = machine - sum(spent.values())
    parts = [f"{name} {spent[name] / wall * 100:.0f}%" for name in ("gunicorn", "postgres", "load generator", "celery")]
    print(
        f"CPU, % of one core over the run: machine {machine / wall * 100:.0f}% of {os.cpu_count() * 100}%"
        f" ({', '.join(parts)}, everything else {max(others, 0) / wall * 100:.0f}%);"
        f" gunicorn {spent['gunicorn'] / max(requests_done, 1) * 1000:.1f} ms of CPU per request"
    )


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def report(timings: dict, errors: dict, wall: float, targets: dict[str, str]) -> None:
    total = sum(len(v) for v in timings.values())
    print(f"\n{total:,} requests in {wall:.1f} s ({total / wall:.0f}/s), {sum(errors.values())} errors")
    print(f"{'URL':<36} {'n':>6} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for name in targets:
        values = timings.get(name, [])
        if not values:
            print(f"{name:<36} {'0':>6}   (errors: {errors.get(name, 0)})")
            continue
        row = [percentile(values, q) * 1000 for q in (0.5, 0.95, 0.99)] + [max(values) * 1000]
        print(f"{name:<36} {len(values):>6} " + " ".join(f"{value:>8.0f}" for value in row))


def uncached_dashboards(client: Client, repeat: int = 3) -> None:
    """What a cache miss costs: each dashboard's selector alone, in this process, median of `repeat`."""
    from integrations import selectors

    connection.set_tenant(client)
    print("\nDashboard figures computed without the cache (median of 3, in-process):")
    for name, compute in (
        ("exceptions", lambda: selectors.exceptions_dashboard(sla_hours=24)),
        ("utilization", lambda: selectors.utilization_dashboard(weeks=8)),
        ("margin", lambda: selectors.margin_dashboard(months=3)),
        ("sync health", lambda: selectors.sync_health_dashboard(days=14)),
    ):
        spent = []
        for _ in range(repeat):
            started = time.perf_counter()
            compute()
            spent.append(time.perf_counter() - started)
        print(f"  {name:<12} {statistics.median(spent) * 1000:7.0f} ms")
    connection.set_schema_to_public()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--exceptions", type=int, default=1_000_000)
    parser.add_argument("--time-entries", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--think", type=float, default=1.0, help="mean seconds a user waits between requests")
    parser.add_argument("--warmup", type=float, default=15)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--port", type=int, default=8790)
    options = parser.parse_args()

    database_ensure()
    portal_migrate()
    client = workspace()
    generate(client, exceptions=options.exceptions, time_entries=options.time_entries)
    users = [bench_user(index, client) for index in range(options.users)]
    cookies = [session_cookie(user) for user in users]
    uncached_dashboards(client)

    print(f"\ngunicorn: {options.workers} workers × {options.threads} threads; {options.users} users")
    print(f"database: {settings.DATABASES['default']['NAME']} · cores: {os.cpu_count()}")
    print(f"cache: {settings.CACHES['default']['BACKEND'].rsplit('.', 1)[-1]} · broker: {settings.CELERY_BROKER_URL}")
    worker = start_worker()
    server = start_gunicorn(options.port, options.workers, options.threads)
    try:
        base = f"http://127.0.0.1:{options.port}"
        targets = urls(base, cookies[0])
        run_load(targets, cookies, options.warmup)  # fills each worker's dashboard cache and warms PostgreSQL
        print(
            f"\n== {options.users} users, each waiting {options.think * 0.5:.1f}–{options.think * 1.5:.1f} s between clicks"
        )
        before = cpu_seconds()
        timings, errors, wall = run_load(targets, cookies, options.seconds, think=options.think)
        report(timings, errors, wall, targets)
        cpu_report(before, cpu_seconds(), wall, sum(len(v) for v in timings.values()))
        print(f"\n== {options.users} users flat out, no think time (the server saturated: throughput and queueing)")
        before = cpu_seconds()
        timings, errors, wall = run_load(targets, cookies, options.seconds)
        report(timings, errors, wall, targets)
        cpu_report(before, cpu_seconds(), wall, sum(len(v) for v in timings.values()))
        page = requests.get(targets["dashboard: exceptions"], headers={"Host": HOST}, cookies={"sessionid": cookies[0]})
        as_of = re.search(r"as of (\d\d:\d\d)", page.text)
        print(f"\nexceptions dashboard at the end: figures as of {as_of.group(1) if as_of else '?'} UTC,", end=" ")
        print(f"now {time.strftime('%H:%M', time.gmtime())} UTC")
    finally:
        for process in (server, worker):
            os.killpg(process.pid, signal.SIGTERM)
        for process in (server, worker):
            process.wait(timeout=30)


if __name__ == "__main__":
    main()
