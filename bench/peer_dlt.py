"""The dlt peer: what a data engineer would write with dlt to land the same Kantata time entries in PostgreSQL.

Run by bench/approved_time.py with --dlt-python (a Python that has `dlt[postgres]`, kept out of the project's
dependencies), against the same sandbox in the same invocation:

    python3 -m venv /tmp/peers-venv && /tmp/peers-venv/bin/pip install "dlt[postgres]==1.31.*" requests
    PORTAL_ENV=dev .venv/bin/python bench/approved_time.py --dlt-python /tmp/peers-venv/bin/python

It reads every page of 200 (Kantata's cap) with requests, as dlt's REST examples do, and merges the rows on
their id into a table of its own (extract, normalise, load: dlt's whole pipeline). It maps nothing, validates
nothing and writes no invoices: read and store only. Prints one JSON line with its figures.
"""

from __future__ import annotations

import argparse
import json
import time

import dlt
import requests


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kantata", required=True, help="the sandbox's base URL")
    parser.add_argument("--token", required=True)
    parser.add_argument("--dsn", required=True, help="postgresql://user@host:port/database")
    options = parser.parse_args()
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {options.token}"
    calls = 0

    @dlt.resource(name="time_entries", write_disposition="merge", primary_key="id")
    def time_entries():
        nonlocal calls
        page = 1
        while True:
            answer = session.get(
                f"{options.kantata}/api/v1/time_entries",
                params={"per_page": 200, "page": page, "order": "updated_at:asc"},
                timeout=60,
            )
            answer.raise_for_status()
            calls += 1
            body = answer.json()
            yield list(body["time_entries"].values())
            if page >= body["meta"]["page_count"]:
                return
            page += 1

    pipeline = dlt.pipeline(
        pipeline_name=f"peer_dlt_{int(time.time())}",
        destination=dlt.destinations.postgres(credentials=options.dsn),
        dataset_name="peer_dlt",
        dev_mode=True,  # a fresh dataset each run: the merge is measured from empty, as the product's run is
    )
    started = time.perf_counter()
    info = pipeline.run(time_entries())
    seconds = time.perf_counter() - started
    rows = pipeline.last_trace.last_normalize_info.row_counts.get("time_entries", 0)
    with pipeline.sql_client() as client:
        client.execute_sql(f"DROP SCHEMA IF EXISTS {client.fully_qualified_dataset_name()} CASCADE")
    print(json.dumps({"rows": rows, "seconds": seconds, "calls": calls, "loads": len(info.loads_ids)}))


if __name__ == "__main__":
    main()
