"""How each client workspace is doing against its plan, as the partner console lists its clients: read in
each client's schema (one visit each), beside the usage the roll-up left in the public schema."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import DatabaseError, transaction
from django.utils import timezone
from django_tenants.utils import tenant_context

from integrations.models import AuditEvent
from integrations.selectors.workspace import workspace_health
from tenants.models import Client, Plan
from tenants.selectors.usage import Usage, usage_rolled_up

logger = logging.getLogger(__name__)


@dataclass
class ClientHealth:
    """What a partner needs to know about one client at a glance, against the client's plan."""

    client: Client
    plan: Plan | None
    now: datetime
    engine: bool = False  # the sync engine reported figures for this workspace
    unavailable: bool = False  # the workspace's schema could not be read
    last_success_at: datetime | None = None
    failing_connections: int = 0
    failing_connection_details: list = field(default_factory=list)
    open_exceptions: int = 0
    oldest_open_exception_at: datetime | None = None
    usage: Usage = field(default_factory=Usage)  # this month's, from the roll-up
    recent_activity: list = field(default_factory=list)

    @property
    def records_this_month(self) -> int:
        return self.usage.records

    @property
    def runs_this_month(self) -> int:
        return self.usage.runs

    @property
    def oldest_open_exception_age(self) -> timedelta | None:
        return self.now - self.oldest_open_exception_at if self.oldest_open_exception_at else None

    @property
    def resolution_sla_breached(self) -> bool:
        age = self.oldest_open_exception_age
        return bool(self.plan and age is not None and age > timedelta(hours=self.plan.sla_resolution_hours))

    @property
    def data_age(self) -> timedelta | None:
        return self.now - self.last_success_at if self.last_success_at else None

    @property
    def freshness_sla_breached(self) -> bool:
        age = self.data_age
        return bool(self.plan and age is not None and age > timedelta(hours=self.plan.sla_freshness_hours))

    @property
    def included_records(self) -> int | None:
        return self.plan.included_records if self.plan else None

    @property
    def usage_percent(self) -> int | None:
        if not self.plan or not self.plan.included_records:
            return None
        return round(100 * self.records_this_month / self.plan.included_records)

    @property
    def usage_bar_percent(self) -> int:
        """The usage bar's fill, in steps of 5 so a stylesheet class can draw it (no inline styles)."""
        percent = self.usage_percent or 0
        return min(100, 5 * round(percent / 5))

    @property
    def over_included(self) -> bool:
        return bool(self.plan and self.records_this_month > self.plan.included_records)

    @property
    def needs_attention(self) -> bool:
        return (
            self.client.is_suspended
            or self.unavailable
            or self.failing_connections > 0
            or self.resolution_sla_breached
            or self.freshness_sla_breached
        )


def client_health(
    client: Client, *, with_activity: bool = False, now: datetime | None = None, usage: Usage | None = None
) -> ClientHealth:
    """Health of one client: the engine's figures read live from the client's schema (exact: people act
    on them), usage from the public roll-up (`usage` when the caller read it for many clients at once).

    A workspace whose figures cannot be read is marked unavailable, not shown as healthy.
    """
    now = now or timezone.now()
    plan = Plan.objects.filter(pk=client.plan_id).first() if client.plan_id else None
    if usage is None:
        usage = usage_rolled_up(clients=[client], month=now.date()).get(client.pk, Usage())
    health = ClientHealth(client=client, plan=plan, now=now, usage=usage)
    try:
        # A savepoint, so a broken workspace cannot poison a surrounding transaction either.
        with transaction.atomic(), tenant_context(client):
            figures = workspace_health() or {}
            health.engine = True
            health.last_success_at = figures.get("last_success_at")
            failing = figures.get("failing_connections") or 0
            if isinstance(failing, int):
                health.failing_connections = failing
            else:  # the engine may list them: [{"name", "vendor", "last_error"}, ...]
                health.failing_connection_details = [dict(item) for item in failing]
                health.failing_connections = len(health.failing_connection_details)
            health.open_exceptions = int(figures.get("open_exceptions") or 0)
            health.oldest_open_exception_at = figures.get("oldest_open_exception_at")
            if with_activity:
                health.recent_activity = list(AuditEvent.objects.order_by("-at", "-id")[:8])
    except DatabaseError:
        # One broken workspace must not take the partner's whole console down with it.
        logger.exception("Could not read the health of workspace %s", client.schema_name)
        health.unavailable = True
    return health


def clients_health(clients) -> list[ClientHealth]:
    """Health for a list of clients (one schema visit each; the list pages show a partner's clients)."""
    now = timezone.now()
    clients = list(clients)
    usage = usage_rolled_up(clients=clients, month=now.date())
    return [client_health(client, now=now, usage=usage.get(client.pk, Usage())) for client in clients]
