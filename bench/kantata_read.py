"""Read 100,000 Kantata time entries through the connector and report throughput and memory.

    .venv/bin/python bench/kantata_read.py                      # sandbox in this process (shares the GIL)
    .venv/bin/python -m connectors.sandbox --only kantata &     # or a sandbox in its own process...
    .venv/bin/python bench/kantata_read.py --url http://127.0.0.1:8104

The sandbox is seeded to --count entries through /_sandbox/seed; the connector reads them all in pages of
--page-size (Kantata's maximum is 200) and the script checks that every entry arrived exactly once.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from connectors.http import HttpPolicy, InMemoryMetrics, InMemoryTokenBucket  # noqa: E402
from connectors.kantata.client import KantataConnector  # noqa: E402
from connectors.kantata.sandbox import DEMO_CREDENTIALS, TIME_ENTRY_BASE, create_app  # noqa: E402
from connectors.sandbox import serve_in_thread  # noqa: E402


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports kilobytes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running Kantata sandbox; default: start one in this process")
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--page-size", type=int, default=200)
    args = parser.parse_args(argv)

    running = None
    url = args.url
    if url is None:
        running = serve_in_thread(create_app())
        url = running.url
    url = url.rstrip("/")
    requests.post(f"{url}/_sandbox/reset", json={}, timeout=30).raise_for_status()
    requests.post(f"{url}/_sandbox/seed", json={"time_entries": args.count}, timeout=30).raise_for_status()
    rss_before = peak_rss_mb()

    connector = KantataConnector(
        base_url=url,
        credentials={"access_token": DEMO_CREDENTIALS["access_token"], "approved_only": "no"},
        policy=HttpPolicy.for_sandbox(url, budget=InMemoryTokenBucket(), metrics=InMemoryMetrics()),
    )
    records = rejects = pages = id_sum = 0
    started = time.perf_counter()
    for page in connector.read("time_entries", page_size=args.page_size):
        pages += 1
        records += len(page.records)
        rejects += len(page.rejects)
        id_sum += sum(int(r.external_id) - TIME_ENTRY_BASE for r in page.records)
    wall = time.perf_counter() - started
    connector.close()
    calls = requests.get(f"{url}/_sandbox/stats", timeout=30).json()["calls"]
    if running is not None:
        running.stop()

    expected_sum = args.count * (args.count + 1) // 2  # ids are base + 1 .. base + count, each once
    print(f"sandbox        {'in this process' if args.url is None else url}")
    print(f"records        {records:,} (rejects {rejects}, every id once: {id_sum == expected_sum})")
    print(f"pages          {pages:,} ({calls:,} HTTP calls, page size {args.page_size})")
    print(f"wall seconds   {wall:.2f}")
    print(f"records/s      {records / wall:,.0f}")
    print(f"peak RSS       {peak_rss_mb():.0f} MB (before reading: {rss_before:.0f} MB)")
    return 0 if records == args.count and id_sum == expected_sum else 1


if __name__ == "__main__":
    sys.exit(main())
