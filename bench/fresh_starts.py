"""Start the demo from nothing, again and again, and check what a finance team would check each time.

    python bench/fresh_starts.py [--starts 10] [--port 8600] [--port-offset 500]

Each start is `python3 dev.py run` on an empty data folder (its own PostgreSQL, broker and cache), with the
demo's first runs queued in a different order (DEMO_FIRST_RUNS_SEED). Once the runs have settled, the
demo is read as its users see it (bench/demo_state.py: the queue, the dashboards, the records in the
sandboxes, through their APIs) and compared with the firm: no record twice in any system, exactly the
firm's deliberate faults in the queue (each once, with the records waiting on it), and non-zero
utilization and margin. Prints one line per start and exits non-zero if any start differs.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SETTLE_SECONDS = 15  # no run live and nothing waiting on a resolved exception, for this long
START_TIMEOUT = 900


def expected_faults() -> dict:
    """The demo's Contoso runs the four packaged flows; ticket time's faults add to the other three's."""
    from connectors.sandbox.firm import Firm
    from tests.integrations.firm_state import TicketTime, expect

    firm = Firm()
    faults = expect(firm, {"lead-to-project", "approved-time-to-invoice", "employee-to-resource"}).faults
    faults = {code: dict(subjects) for code, subjects in faults.items()}
    for code, subjects in TicketTime(firm).ticket_faults().items():
        for subject, waiting in subjects.items():
            faults.setdefault(code, {})
            faults[code][subject] = faults[code].get(subject, 0) + waiting
    return faults


def read_state(env: dict) -> dict:
    answer = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "demo_state.py"), "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return json.loads(answer.stdout.strip().splitlines()[-1])


def first_run_order(env: dict) -> list[str]:
    script = (
        "import sys; sys.path.insert(0, 'bench'); from demo_state import django_setup; django_setup();"
        "from django_tenants.utils import tenant_context; from tenants.models import Client;"
        "from integrations.models import SyncRun;"
        "c = Client.objects.get(slug='contoso');"
        "ctx = tenant_context(c); ctx.__enter__();"
        "runs = SyncRun.objects.filter(trigger='manual').exclude(started_at=None).order_by('started_at');"
        "print('|'.join(r.flow.name for r in runs))"
    )
    answer = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, cwd=ROOT)
    return [name for name in answer.stdout.strip().splitlines()[-1].split("|") if name] if answer.stdout else []


def healthy(port: int) -> bool:
    try:
        request = urllib.request.Request(f"http://127.0.0.1:{port}/healthz", headers={"Host": f"localhost:{port}"})
        urllib.request.urlopen(request, timeout=2)  # noqa: S310 - our own loopback server
        return True
    except OSError:
        return False


def one_start(number: int, args, expected: dict) -> dict:
    data = Path(tempfile.mkdtemp(prefix=f"fresh-start-{number}-"))
    env = {
        **os.environ,
        "PORTAL_DATA_DIR": str(data),
        "SANDBOX_PORT_OFFSET": str(args.port_offset),
        "DEMO_FIRST_RUNS_SEED": str(number),
        "PORTAL_ENV": "dev",
    }
    for name in ("DATABASE_URL", "CELERY_BROKER_URL", "CACHE_URL"):
        env.pop(name, None)
    log = open(data / "run.log", "w")  # noqa: SIM115 - closed when the start ends
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "dev.py"), "run", "--port", str(args.port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        while not healthy(args.port):
            if process.poll() is not None or time.monotonic() - started > START_TIMEOUT:
                raise RuntimeError(f"start {number} did not come up; see {data / 'run.log'}")
            time.sleep(2)
        settled_since = None
        state: dict = {}
        while time.monotonic() - started < START_TIMEOUT:
            state = read_state(env)
            done = state["runs"] and not state["live_runs"] and not state["parked_without_live_parent"]
            if done and sum(state["runs"].values()) >= 4:
                settled_since = settled_since or time.monotonic()
                if time.monotonic() - settled_since >= SETTLE_SECONDS:
                    break
            else:
                settled_since = None
            time.sleep(3)
        state["seconds"] = round(time.monotonic() - started)
        state["order"] = first_run_order(env)
        duplicated = {
            name: figures["duplicated"] for name, figures in state["systems"].items() if figures["duplicated"]
        }
        state["problems"] = []
        if duplicated:
            state["problems"].append(f"records twice: {duplicated}")
        if state["faults"] != expected:
            state["problems"].append(f"queue {state['faults']} != firm's faults {expected}")
        if not state["utilization_percent"] or not all(state["margin_percent"].values()):
            state["problems"].append("empty dashboards")
        return state
    finally:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        log.close()
        embedded_postgres_stop(data / "pg")


def embedded_postgres_stop(pgdata: Path) -> None:
    """The demo keeps its private PostgreSQL running between runs; a throwaway start's must not linger."""
    import pgserver

    pg_ctl = Path(pgserver.__file__).parent / "pginstall" / "bin" / "pg_ctl"
    if pgdata.exists():
        subprocess.run([str(pg_ctl), "-D", str(pgdata), "stop", "-m", "fast"], capture_output=True, check=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=10)
    parser.add_argument("--port", type=int, default=8600)
    parser.add_argument("--port-offset", type=int, default=500, help="sandboxes on 8101+offset...")
    args = parser.parse_args(argv)
    expected = expected_faults()
    waiting = sum(sum(subjects.values()) for subjects in expected.values())
    print(
        f"The firm's deliberate faults: {sum(len(s) for s in expected.values())} exceptions "
        f"({', '.join(f'{len(s)} {code}' for code, s in sorted(expected.items()))}), {waiting} records waiting on them"
    )
    failed = 0
    for number in range(1, args.starts + 1):
        state = one_start(number, args, expected)
        verdict = "ok" if not state["problems"] else "DIFFERS: " + "; ".join(state["problems"])
        margins = ", ".join(f"{c} {m}%" for c, m in sorted(state["margin_percent"].items()))
        order = " > ".join(name.split(" to ")[0] for name in state["order"])
        print(
            f"start {number:2d}: {state['seconds']:4d} s, first runs {order}; utilization "
            f"{state['utilization_percent']}%, margin {margins}; {verdict}",
            flush=True,
        )
        failed += bool(state["problems"])
    print(f"{args.starts - failed} of {args.starts} starts ended as the firm says.")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
