"""Health of the pieces a running portal needs: database, broker, and a worker that is alive."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.db import connection
from django.utils import timezone

from portal.celery import app
from portal.models import WorkerHeartbeat


def check_database() -> dict:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return {"ok": True}
    except Exception as error:  # noqa: BLE001 - a health check reports, it does not raise
        return {"ok": False, "error": type(error).__name__}


def check_broker() -> dict:
    url = settings.CELERY_BROKER_URL
    if url == "filesystem://":
        folder = Path(settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"])
        ok = folder.is_dir()
        return (
            {"ok": ok, "transport": "filesystem"}
            if ok
            else {"ok": False, "transport": "filesystem", "error": "queue folder missing"}
        )
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        return {"ok": True, "transport": conn.transport_cls}
    except Exception as error:  # noqa: BLE001
        return {"ok": False, "error": type(error).__name__}


def check_worker() -> dict:
    latest = WorkerHeartbeat.objects.order_by("-beat_at").first()
    if latest is None:
        return {"ok": False, "error": "no heartbeat yet"}
    age = (timezone.now() - latest.beat_at).total_seconds()
    return {"ok": age <= settings.WORKER_HEARTBEAT_STALE_SECONDS, "last_heartbeat_seconds": round(age, 1)}


def health_report() -> dict:
    connection.set_schema_to_public()
    checks = {"database": check_database(), "broker": check_broker()}
    checks["worker"] = check_worker() if checks["database"]["ok"] else {"ok": False, "error": "database down"}
    return {"ok": all(check["ok"] for check in checks.values()), "checks": checks}
