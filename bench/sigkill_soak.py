"""Kill the worker mid-run again and again: every record must still land exactly once.

    python bench/sigkill_soak.py [--rounds 20] [--entries 10000]

Each round runs the suite's SIGKILL test (tests/integrations/test_worker_runs.py) in a fresh pytest
process with the kill at a different point of the run (after 200 records read up to half the run, from a fixed
seed so a failing round can be replayed), against the database named by DATABASE_URL (or the
test default). The test starts a real Celery worker, SIGKILLs it mid-page, starts another, recovers
the stale run and checks every time entry once in the canonical store and every invoice once in
the ERP. Prints one line per round and exits non-zero if any round failed.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEST = "tests/integrations/test_worker_runs.py::test_sigkilled_worker_resumes_and_writes_every_record_once"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=2026)
    options = parser.parse_args()
    points = random.Random(options.seed)
    failures = 0
    for round_number in range(1, options.rounds + 1):
        kill_after = points.randint(200, options.entries // 2)
        env = {
            **os.environ,
            "PORTAL_ENV": "test",
            "SIGKILL_AFTER_RECORDS": str(kill_after),
            "SIGKILL_TEST_ENTRIES": str(options.entries),
        }
        started = time.perf_counter()
        answer = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", TEST],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        seconds = time.perf_counter() - started
        ok = answer.returncode == 0
        failures += not ok
        print(
            f"round {round_number:2}: killed after {kill_after:5,} records, {seconds:5.1f} s, {'ok' if ok else 'FAILED'}"
        )
        if not ok:
            print(answer.stdout[-3000:], answer.stderr[-2000:], sep="\n")
    print(f"{options.rounds - failures} of {options.rounds} rounds wrote every record once")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
