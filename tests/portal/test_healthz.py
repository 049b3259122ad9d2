import pytest
from django.utils import timezone

from portal.models import WorkerHeartbeat
from tests.support import NORTHWIND, browser_for

pytestmark = pytest.mark.django_db


def test_healthz_reports_database_broker_and_worker(world):
    WorkerHeartbeat.objects.update_or_create(worker="test", defaults={"beat_at": timezone.now()})
    response = browser_for(host=NORTHWIND).get("/healthz")
    report = response.json()
    assert response.status_code == 200, report
    assert report["checks"]["database"]["ok"] and report["checks"]["broker"]["ok"] and report["checks"]["worker"]["ok"]


def test_healthz_is_unhealthy_without_a_recent_worker(world, caplog):
    WorkerHeartbeat.objects.all().delete()
    with caplog.at_level("INFO", logger="django.request"):
        response = browser_for(host="anything.example").get("/healthz")
    assert response.status_code == 503
    assert response.json()["checks"]["worker"] == {"ok": False, "error": "no heartbeat yet"}
    # Logged once, as a warning that names what is down, not as a server error.
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [("WARNING", "Health check: worker not healthy")]


def test_every_page_carries_a_csp_without_inline_script(world):
    for host, path in (("northwind.localhost", "/accounts/login/"), ("nobody.example", "/"), ("localhost", "/healthz")):
        policy = browser_for(host=host).get(path)["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy
        assert "frame-ancestors 'none'" in policy


def test_metrics_are_off_without_a_token_and_need_it_when_set(world, settings):
    settings.METRICS_TOKEN = ""
    for host in ("localhost", NORTHWIND, "nobody.example"):
        assert browser_for(host=host).get("/metrics").status_code == 404, host
    settings.METRICS_TOKEN = "s3cret"
    assert browser_for(host="localhost").get("/metrics").status_code == 403
    assert browser_for(host=NORTHWIND).get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    assert browser_for(host="localhost").get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret").status_code == 200


def test_metrics_are_exported_with_bounded_labels(world, settings):
    from types import SimpleNamespace

    from integrations.metrics import REQUEST_METRICS, run_finished

    settings.METRICS_TOKEN = "s3cret"
    REQUEST_METRICS.record(
        vendor="kantata", connection_key="c_any:1", method="GET", status=429, latency=0.2, retry=True, rate_limited=True
    )
    counts = dict(created=1, updated=0, unchanged=0, failed=0, skipped=0, status="succeeded", duration_seconds=1.0)
    run_finished(SimpleNamespace(flow=SimpleNamespace(template_key="p-secret-pricing-deal/time"), **counts))
    run_finished(SimpleNamespace(flow=SimpleNamespace(template_key="lead-to-project/won-deals"), **counts))
    body = browser_for(host="localhost").get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret").content.decode()
    assert 'sgp_vendor_requests_total{status_class="4xx",vendor="kantata"}' in body
    assert "sgp_vendor_rate_limited_total" in body
    assert "c_any" not in body  # no client or connection labels: the label set stays bounded
    assert 'template="partner"' in body and 'template="lead-to-project/won-deals"' in body
    assert "secret-pricing" not in body  # a partner's template keys are its own
