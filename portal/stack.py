"""`python3 dev.py run`: the whole product on one machine, on embedded defaults.

Starts (or reuses) the private PostgreSQL when DATABASE_URL is unset, migrates every schema,
seeds the demo, then runs the web server, a Celery worker, Celery beat and the vendor
sandboxes as child processes with their output prefixed, and prints the demo URLs and logins.
Ctrl-C stops them all.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COLOURS = {"web": "36", "worker": "33", "beat": "35", "sandboxes": "32"}


def prefixed(name: str, stream) -> None:
    colour = COLOURS.get(name, "0")
    tty = sys.stdout.isatty()
    for raw in iter(stream.readline, b""):
        line = raw.decode(errors="replace").rstrip()
        label = f"\033[{colour}m{name:>9}\033[0m" if tty else f"{name:>9}"
        print(f"{label} | {line}", flush=True)


def start(name: str, args: list[str], env: dict) -> subprocess.Popen:
    process = subprocess.Popen(
        args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    threading.Thread(target=prefixed, args=(name, process.stdout), daemon=True).start()
    return process


def wait_for_web(port: int, timeout: float = 60) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            request = urllib.request.Request(f"http://127.0.0.1:{port}/healthz", headers={"Host": f"localhost:{port}"})
            urllib.request.urlopen(request, timeout=2)  # noqa: S310 - our own loopback server
            return True
        except urllib.error.HTTPError:
            return True  # it answers (503 while the worker warms up)
        except OSError:
            time.sleep(0.5)
    return False


def banner(port: int) -> str:
    from tenants.demo import DEMO_PASSWORD, PARTNERS, USERS

    hosts = {spec["slug"]: spec["domain"] for spec in PARTNERS}
    lines = ["", "SysGenPro Connect is running.", ""]
    lines.append(f"  Platform console     http://localhost:{port}/")
    for spec in PARTNERS:
        lines.append(f"  {spec['name']:<20} http://{spec['domain']}:{port}/")
    lines.append(f"  Health               http://localhost:{port}/healthz")
    lines += ["", f"  Demo logins (password for all: {DEMO_PASSWORD})", ""]
    for user in USERS:
        where = f"http://{hosts[user.partner]}:{port}/" if user.partner else ""
        if user.client:
            partner = next(s for s in PARTNERS if any(slug == user.client for slug, _ in s["clients"]))
            where = f"http://{partner['domain']}:{port}/c/{user.client}/"
        if not where:
            where = f"http://localhost:{port}/"
        lines.append(f"  {user.role.label:<15} {user.email:<32} {where}")
    lines += [
        "",
        "  Browsers resolve *.localhost to this machine; for curl use",
        f"  curl --resolve northwind.localhost:{port}:127.0.0.1 http://northwind.localhost:{port}/healthz",
        "",
    ]
    return "\n".join(lines)


def stop_all(processes: dict[str, subprocess.Popen]) -> None:
    for process in processes.values():
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    for process in processes.values():
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    parser.add_argument("--no-sandboxes", action="store_true", help="Do not start the vendor sandboxes")
    options = parser.parse_args()

    env = {**os.environ, "PORTAL_ENV": os.environ.get("PORTAL_ENV", "dev"), "PUBLIC_PORT": str(options.port)}
    env.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    # Web, worker and beat share one Prometheus view of the metrics through this folder.
    metrics_dir = ROOT / "data" / "prometheus"
    if metrics_dir.exists():
        for stale in metrics_dir.glob("*.db"):
            stale.unlink()
    metrics_dir.mkdir(parents=True, exist_ok=True)
    env.setdefault("PROMETHEUS_MULTIPROC_DIR", str(metrics_dir))
    if not env.get("DATABASE_URL"):
        from portal.embedded import embedded_postgres_url

        env["DATABASE_URL"] = embedded_postgres_url(stop_at_exit=True)  # Ctrl-C stops the database too
        print("Database: embedded PostgreSQL under data/pg", flush=True)
    else:
        print("Database: DATABASE_URL", flush=True)
    print(
        "Broker:   " + ("CELERY_BROKER_URL" if env.get("CELERY_BROKER_URL") else "filesystem queue under data/broker"),
        flush=True,
    )
    os.environ.update(env)

    import django

    django.setup()
    from django.core.management import call_command

    from portal.database import database_ensure

    database_ensure()
    call_command("migrate_portal")

    processes: dict[str, subprocess.Popen] = {}
    if not options.no_sandboxes:
        # First, so the demo's connections answer as soon as the worker runs their flows.
        processes["sandboxes"] = start("sandboxes", [sys.executable, "-m", "connectors.sandbox"], env)
    try:
        call_command("seed_demo", first_runs=not options.no_sandboxes)
    except BaseException:
        stop_all(processes)  # never leave the sandboxes holding their ports behind a failed start
        raise

    python = sys.executable
    bin_dir = Path(python).parent
    processes |= {
        "web": start(
            "web",
            [
                str(bin_dir / "gunicorn"),
                "portal.wsgi",
                "--bind",
                f"127.0.0.1:{options.port}",
                "--workers",
                "2",
                "--threads",
                "4",
                "--access-logfile",
                "-",
                "--timeout",
                "60",
            ],
            env,
        ),
        "worker": start(
            "worker",
            [
                python,
                "-m",
                "celery",
                "-A",
                "portal",
                "worker",
                "--loglevel",
                "INFO",
                "--concurrency",
                "2",
                "--hostname",
                "worker@%h",
            ],
            env,
        ),
        "beat": start(
            "beat", [python, "-m", "celery", "-A", "portal", "beat", "--loglevel", "INFO", "--pidfile", ""], env
        ),
    }

    stopping = False

    def stop(*_):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    if wait_for_web(options.port):
        print(banner(options.port), flush=True)
    try:
        while not stopping:
            for name, process in processes.items():
                if process.poll() is not None:
                    print(f"{name} exited with status {process.returncode}; stopping everything.", flush=True)
                    stopping = True
                    break
            time.sleep(0.5)
    finally:
        stop_all(processes)
        print("Stopped.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
