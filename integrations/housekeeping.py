"""Periodic work across every client workspace: usage roll-ups, SLA alerts, recovering runs.

Each function runs in the public schema and enters one client schema at a time with
django-tenants' tenant_context; nothing crosses schemas except the explicit roll-up into the
public UsageRecord table.
"""

from __future__ import annotations

from django.db import connection
from django.utils import timezone
from django_tenants.utils import tenant_context

from integrations.models import AuditEvent  # noqa: I001
from integrations.notifications import notify
from integrations.selectors.workspace import connections_by_system, exceptions_past, usage_for_month
from integrations.services.audit import audit_record
from integrations.services.bulk import bulk_actions_recover_stale
from integrations.services.runs import runs_recover_stale
from tenants.models import Client
from tenants.services import usage_record_upsert


def usage_rollup(*, month=None) -> int:
    """Recompute a month's records synced and runs for every client into the public table: by default this
    month and the one before, so runs that finish in a month's last minutes still reach its statement."""
    if month is None:
        today = timezone.now().date()
        months = [today, today.replace(day=1) - timezone.timedelta(days=1)]
    else:
        months = [month]
    this_month = timezone.now().date().replace(day=1)
    count = 0
    for client in Client.objects.all():
        created = timezone.localtime(client.created_at).date().replace(day=1) if client.created_at else None
        with tenant_context(client):
            usages = [(each, usage_for_month(each)) for each in months if created is None or each >= created]
            connections = connections_by_system()
        for each, usage in usages:
            usage_record_upsert(
                client=client,
                month=each,
                records_synced=usage["records"],
                runs=usage["runs"],
                sandbox_records_synced=usage["sandbox_records"],
                sandbox_runs=usage["sandbox_runs"],
                # Connections are counted as they are now: a past month keeps what it had when it was last read.
                connections=connections if each.replace(day=1) == this_month else None,
            )
        count += 1
    return count


def sla_alerts() -> int:
    """Email each client's named people, at most once a day, when open exceptions pass the plan's target."""
    sent = 0
    for client in Client.objects.select_related("plan", "partner").filter(status=Client.Status.ACTIVE):
        if client.plan is None:
            continue
        hours = client.plan.sla_resolution_hours
        with tenant_context(client):
            late = exceptions_past(hours)
            if not late["count"]:
                continue
            from api.webhooks import past_sla_emit

            past_sla_emit(client=client, count=late["count"], oldest=late["oldest"], hours=hours)  # its own once-a-day
            recently = AuditEvent.objects.filter(
                action="notification.sla_breach", at__gte=timezone.now() - timezone.timedelta(hours=24)
            ).exists()
            if recently:
                continue
            if notify(kind="sla_breach", count=late["count"], oldest=late["oldest"], hours=hours):
                audit_record(
                    actor=None,
                    action="notification.sla_breach",
                    summary=f"{late['count']} exceptions past {hours} h: people notified",
                )
                sent += 1
    return sent


def runs_recover_all(*, older_than_seconds: int = 120) -> int:
    """Requeue, in every workspace, the runs and bulk retries a dead worker (or a lost message) left live."""
    recovered = 0
    for client in Client.objects.all():
        with tenant_context(client):
            recovered += runs_recover_stale(older_than_seconds=older_than_seconds)
            recovered += bulk_actions_recover_stale()
    connection.set_schema_to_public()
    return recovered
