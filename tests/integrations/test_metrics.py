"""Metrics never stand in a sync's way: a metrics folder that is gone drops the sample, not the run."""

from __future__ import annotations

import subprocess
import sys

from tests.support import ROOT, child_env

RECORD = """
import django
django.setup()
from types import SimpleNamespace
from integrations.metrics import REQUEST_METRICS, run_finished
REQUEST_METRICS.record(vendor="kantata", connection_key="k", method="GET", status=200, latency=0.1, retry=False,
                       rate_limited=True)
run = SimpleNamespace(flow=SimpleNamespace(template_key=""), status="succeeded", created=1, updated=0, unchanged=0,
                      failed=0, skipped=0, duration_seconds=1.0)
run_finished(run)
print("recorded")
"""


def test_a_missing_metrics_folder_drops_the_sample_and_says_so(tmp_path):
    gone = tmp_path / "prometheus-was-here"
    answer = subprocess.run(
        [sys.executable, "-c", RECORD],
        cwd=ROOT,
        env=child_env(PROMETHEUS_MULTIPROC_DIR=str(gone)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert answer.returncode == 0, answer.stderr[-2000:]
    assert answer.stdout.strip().endswith("recorded")
    assert "A metric was not recorded" in answer.stderr
