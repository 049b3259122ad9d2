"""Prometheus metrics for runs and vendor calls. Labels stay bounded: vendor, flow template, outcome,
status class; never a client, a flow id or a URL.

With PROMETHEUS_MULTIPROC_DIR set (dev.py run sets it), web and worker processes share one view.
"""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, multiprocess

from connectors.http import DEFAULT_METRICS
from integrations.catalog import PARTNER_TEMPLATE_PREFIX

VENDOR_CALLS = Counter("sgp_vendor_requests_total", "HTTP requests to vendors", ["vendor", "status_class"])
VENDOR_RATE_LIMITED = Counter("sgp_vendor_rate_limited_total", "Vendor answers that said slow down", ["vendor"])
VENDOR_LATENCY = Histogram(
    "sgp_vendor_request_seconds",
    "Latency of vendor requests",
    ["vendor"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
RUNS = Counter("sgp_sync_runs_total", "Finished sync runs", ["template", "status"])
RUN_RECORDS = Counter("sgp_sync_records_total", "Records handled by sync runs", ["template", "outcome"])
RUN_SECONDS = Histogram(
    "sgp_sync_run_seconds", "Duration of sync runs", ["template"], buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600)
)


logger = logging.getLogger(__name__)


@contextmanager
def never_in_the_way():
    """Metrics are for watching the product, never a reason for a sync to fail: with PROMETHEUS_MULTIPROC_DIR
    pointing at a folder that is gone or full, the sample is dropped and said in the log, and the run goes on."""
    try:
        yield
    except OSError as error:
        logger.warning("A metric was not recorded: %s", error)


class PrometheusRequestMetrics:
    """A connectors.http RequestMetrics sink: keeps the in-process stats and exports to Prometheus."""

    def record(self, *, vendor, connection_key, method, status, latency, retry, rate_limited) -> None:
        DEFAULT_METRICS.record(
            vendor=vendor,
            connection_key=connection_key,
            method=method,
            status=status,
            latency=latency,
            retry=retry,
            rate_limited=rate_limited,
        )
        status_class = f"{status // 100}xx" if status else "network_error"
        with never_in_the_way():
            VENDOR_CALLS.labels(vendor=vendor, status_class=status_class).inc()
            VENDOR_LATENCY.labels(vendor=vendor).observe(latency)
            if rate_limited:
                VENDOR_RATE_LIMITED.labels(vendor=vendor).inc()


REQUEST_METRICS = PrometheusRequestMetrics()


def template_label(template_key: str) -> str:
    """The `template` label of a flow: a packaged template's key, or "partner" / "custom". A partner's
    own template keys are its business (and would grow the label set), so they never reach /metrics."""
    if not template_key:
        return "custom"
    if template_key.startswith(PARTNER_TEMPLATE_PREFIX):
        return "partner"
    return template_key


def run_finished(run) -> None:
    template = template_label(run.flow.template_key)
    with never_in_the_way():
        RUNS.labels(template=template, status=run.status).inc()
        for outcome in ("created", "updated", "unchanged", "failed", "skipped"):
            RUN_RECORDS.labels(template=template, outcome=outcome).inc(getattr(run, outcome))
        if run.duration_seconds is not None:
            RUN_SECONDS.labels(template=template).observe(run.duration_seconds)


def exposition() -> bytes:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest()
