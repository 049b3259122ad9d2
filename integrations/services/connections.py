"""Connections: create, rename, delete, rotate credentials, test. Credentials are encrypted and never read back out."""

from __future__ import annotations

from functools import lru_cache

from django.conf import settings
from django.db import connection as db
from django.db import transaction
from django.db.models import ProtectedError
from django.utils import timezone

from connectors.base import Connector
from connectors.http import DEFAULT_BUDGET, HttpPolicy
from connectors.registry import get_connector_class
from integrations.metrics import REQUEST_METRICS
from integrations.models import Connection, Environment
from integrations.services.audit import audit_record
from integrations.services.locks import workspace_lock
from portal.crypto import credentials_decrypt, credentials_encrypt

# Requests per second a connection may send, per vendor (their published limits, with headroom).
VENDOR_RATES = {
    "salesforce": 20.0,
    "hubspot": 9.0,
    "dynamics365": 18.0,
    "netsuite": 8.0,
    "businesscentral": 18.0,
    "intacct": 5.0,
    "kantata": 10.0,
    "certinia": 20.0,
    "bamboohr": 5.0,
    "workday": 5.0,
    "adp": 5.0,
    "jira": 10.0,
    "acumatica": 5.0,
    "kimble": 20.0,  # the Salesforce platform's allowance, as for Certinia
    "float": 3.0,  # 200 GET a minute per company  # the licence's requests per minute are shared by every API user of the tenant
}


@lru_cache(maxsize=1)
def shared_budget():
    """Redis-backed when the broker is Redis, so every worker shares each connection's budget."""
    if settings.CELERY_BROKER_URL.startswith("redis"):
        from integrations.ratebudget import RedisTokenBucket

        return RedisTokenBucket(settings.CELERY_BROKER_URL)
    return DEFAULT_BUDGET


def connection_policy(connection: Connection) -> HttpPolicy:
    return HttpPolicy(
        allowed_hosts=frozenset(settings.CONNECTOR_ALLOWED_HOSTS),
        rate_per_second=settings.CONNECTOR_RATE_PER_SECOND or VENDOR_RATES.get(connection.vendor),
        burst=10,
        budget=shared_budget(),
        metrics=REQUEST_METRICS,
    )


def connector_for(connection: Connection) -> Connector:
    cls = get_connector_class(connection.vendor)
    return cls(
        base_url=connection.base_url,
        credentials=credentials_decrypt(connection.encrypted_credentials),
        policy=connection_policy(connection),
        connection_key=connection.key,
    )


def _public_view(connection: Connection) -> dict:
    return {
        "name": connection.name,
        "vendor": connection.vendor,
        "base_url": connection.base_url,
        "environment": connection.environment,
    }


def _plan_allows_one_more(environment: str, vendor: str) -> None:
    """PlanLimitReached when the workspace already has as many connections in `environment` as its plan
    includes, or the plan leaves `vendor` out or includes no more of its connections (Sandbox mirrors
    Production, so each environment has the plan's allowance)."""
    client = getattr(db, "tenant", None)
    if client is None or not getattr(client, "pk", None):
        return  # the public schema (no workspace, no plan): nothing to count against
    from tenants.plans import plan_limit_check, plan_system_check

    workspace_lock("connection_create")  # two saves at once must not both see room for one more
    in_environment = Connection.objects.filter(environment=environment)
    plan_system_check(client=client, vendor=vendor, current_count=in_environment.filter(vendor=vendor).count())
    plan_limit_check(client=client, resource="connections", current_count=in_environment.count())


@transaction.atomic
def connection_create(
    *, name: str, vendor: str, base_url: str, credentials: dict, environment: str = "production", actor=None
) -> Connection:
    """Store a new connection in `environment` (Sandbox or Production); PlanLimitReached (its message is for
    the user) past the plan's limit."""
    get_connector_class(vendor)  # KeyError for an unknown vendor, before anything is stored
    if environment not in Environment.values:
        raise ValueError("Choose Sandbox or Production.")
    _plan_allows_one_more(environment, vendor)
    connection = Connection.objects.create(
        name=name,
        vendor=vendor,
        base_url=base_url,
        environment=environment,
        encrypted_credentials=credentials_encrypt(credentials),
    )
    audit_record(
        actor=actor,
        action="connection.created",
        target_type="connection",
        target_id=connection.pk,
        summary=f"Added {vendor} connection “{name}”",
        after=_public_view(connection),
    )
    return connection


class ConnectionInUse(Exception):
    """Flows read from or write to the connection (PROTECT): the message names them."""


@transaction.atomic
def connection_rename(*, connection: Connection, name: str, actor=None) -> Connection:
    name = (name or "").strip()
    if not name:
        raise ValueError("Name the connection.")
    before = connection.name
    if name == before:
        return connection
    connection.name = name
    connection.save(update_fields=["name"])
    audit_record(
        actor=actor,
        action="connection.renamed",
        target_type="connection",
        target_id=connection.pk,
        summary=f"Renamed connection “{before}” to “{name}”",
        before={"name": before},
        after={"name": name},
    )
    return connection


def connection_users(connection: Connection) -> list[str]:
    """Names of the flows that read from or write to `connection`."""
    from integrations.models import Flow

    flows = Flow.objects.filter(source_connection=connection) | Flow.objects.filter(steps__target_connection=connection)
    return list(flows.distinct().order_by("name").values_list("name", flat=True))


@transaction.atomic
def connection_delete(*, connection: Connection, actor=None) -> None:
    """Delete a connection nothing uses; its encrypted credentials and its external ids go with it."""
    used_by = connection_users(connection)
    if used_by:
        names = ", ".join(f"“{name}”" for name in used_by[:5]) + (
            f" and {len(used_by) - 5} more" if len(used_by) > 5 else ""
        )
        raise ConnectionInUse(
            f"“{connection.name}” cannot be deleted while {'a flow uses' if len(used_by) == 1 else 'flows use'} it: "
            f"{names}. Remove it from {'that flow' if len(used_by) == 1 else 'those flows'} first."
        )
    audit_record(
        actor=actor,
        action="connection.deleted",
        target_type="connection",
        target_id=connection.pk,
        summary=f"Deleted {connection.vendor} connection “{connection.name}”",
        before=_public_view(connection),
    )
    try:
        connection.delete()
    except ProtectedError as error:  # a flow started using it since the check above
        raise ConnectionInUse(f"“{connection.name}” is in use by a flow; remove it from that flow first.") from error


@transaction.atomic
def connection_credentials_rotate(*, connection: Connection, credentials: dict, actor=None) -> Connection:
    """Replace the credentials; blank secret fields keep their stored value (forms never show them)."""
    current = credentials_decrypt(connection.encrypted_credentials)
    merged = {**current, **{k: v for k, v in credentials.items() if v not in (None, "")}}
    connection.encrypted_credentials = credentials_encrypt(merged)
    connection.credentials_rotated_at = timezone.now()
    connection.status = Connection.Status.UNTESTED
    connection.save(update_fields=["encrypted_credentials", "credentials_rotated_at", "status"])
    changed = sorted(k for k in credentials if credentials.get(k))
    audit_record(
        actor=actor,
        action="connection.credentials_rotated",
        target_type="connection",
        target_id=connection.pk,
        summary=f"Rotated credentials of “{connection.name}” ({', '.join(changed)})",
    )
    return connection


def connection_test(*, connection: Connection, actor=None):
    """A real authenticated call; stores the result on the connection and returns it."""
    try:
        connector = connector_for(connection)
        result = connector.test_connection()
    except Exception as error:  # noqa: BLE001 - the result is shown to the user, not raised
        from connectors.base import ConnectionTestResult

        result = ConnectionTestResult(ok=False, message=str(error) or type(error).__name__)
    connection_status_set(connection=connection, ok=result.ok, error=result.message if not result.ok else "")
    with transaction.atomic():
        audit_record(
            actor=actor,
            action="connection.tested",
            target_type="connection",
            target_id=connection.pk,
            summary=f"Tested “{connection.name}”: {'ok' if result.ok else 'failing'}",
        )
    return result


def connection_status_set(*, connection: Connection, ok: bool, error: str = "") -> bool:
    """Record the connection's health; True when it has just started failing (worth an alert)."""
    was_failing = connection.status == Connection.Status.FAILING
    connection.status = Connection.Status.OK if ok else Connection.Status.FAILING
    connection.last_error = "" if ok else error[:500]
    connection.last_tested_at = timezone.now()
    connection.save(update_fields=["status", "last_error", "last_tested_at"])
    started_failing = not ok and not was_failing
    if started_failing:
        from api.webhooks import connection_failing_emit

        connection_failing_emit(connection)
    return started_failing
