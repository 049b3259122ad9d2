"""Client workspaces: create (a cloned schema), change plan, suspend and resume, record monthly usage."""

from __future__ import annotations

import re
from datetime import date

from django.db import connection, transaction

from portal.months import this_month
from tenants.models import (
    Client,
    Partner,
    Plan,
    Role,
    UsageRecord,
    User,
)
from tenants.services.audit import client_audit_record, partner_audit_record
from tenants.services.invitations import user_invite
from tenants.services.schedules import client_periodic_tasks_disable, client_periodic_tasks_enable
from tenants.signals import client_resumed


def schema_name_for(partner: Partner, slug: str) -> str:
    """Schema names are unique across partners, so they carry the partner's slug too."""
    name = f"c_{partner.slug}_{slug}".replace("-", "_")
    return re.sub(r"[^a-z0-9_]", "", name)[:63]


def client_create(
    *,
    partner: Partner,
    name: str,
    slug: str,
    plan: Plan | None = None,
    admin_email: str = "",
    admin_name: str = "",
    actor: User | None = None,
) -> Client:
    """A new client workspace: its registry row, its own schema and the audit rows, all or nothing."""
    client = Client(partner=partner, name=name, slug=slug, plan=plan, schema_name=schema_name_for(partner, slug))
    with transaction.atomic():
        client.save(verbosity=0)  # creates the schema (Client.create_schema): PostgreSQL's DDL is transactional
        connection.set_schema_to_public()
        partner_audit_record(
            partner=partner,
            actor=actor,
            action="client.created",
            target_type="client",
            target_id=client.pk,
            summary=f"{name} workspace created on plan {plan.name if plan else 'none'}",
            after={"name": name, "slug": slug, "plan": plan.name if plan else None},
        )
        if actor is not None:
            client_audit_record(
                client=client,
                actor=actor,
                action="workspace.created",
                summary=f"Workspace created on plan {plan.name if plan else 'none'}",
                after={"plan": plan.name if plan else None},
            )
    if admin_email:
        user_invite(email=admin_email, role=Role.CLIENT_ADMIN, client=client, full_name=admin_name)
    return client


@transaction.atomic
def client_plan_change(*, client: Client, plan: Plan, actor: User) -> Client:
    """Put a client on another plan of its partner; limits and the next statement follow at once."""
    if plan.partner_id != client.partner_id:
        raise ValueError("A client can only be put on its own partner's plans.")
    before = client.plan.name if client.plan_id else None
    client.plan = plan
    client.save(update_fields=["plan"])
    partner_audit_record(
        partner=client.partner,
        actor=actor,
        action="client.plan_changed",
        target_type="client",
        target_id=client.pk,
        summary=f"{client.name} moved from plan {before or 'none'} to {plan.name}",
        before={"plan": before},
        after={"plan": plan.name},
    )
    client_audit_record(
        client=client,
        actor=actor,
        action="workspace.plan_changed",
        summary=f"Plan changed from {before or 'none'} to {plan.name}",
        before={"plan": before},
        after={"plan": plan.name},
    )
    return client


@transaction.atomic
def client_suspend(*, client: Client, actor: User) -> Client:
    """Stop a client: its syncs stop (the engine checks `client.is_suspended`) and its users see a notice."""
    if client.is_suspended:
        return client
    _status_set(client, Client.Status.SUSPENDED, actor=actor, done="suspended", syncs="syncs stopped")
    client_periodic_tasks_disable(client)  # beat stops sending its syncs at all
    return client


@transaction.atomic
def client_resume(*, client: Client, actor: User) -> Client:
    if not client.is_suspended:
        return client
    _status_set(client, Client.Status.ACTIVE, actor=actor, done="resumed", syncs="syncs run again")
    client_periodic_tasks_enable(client)
    client_resumed.send(sender=Client, client=client)  # each flow's beat entry follows the flow's own state
    return client


def _status_set(client: Client, status: str, *, actor: User, done: str, syncs: str) -> None:
    """Save the client's new status and say so in both audit logs, the partner's and the workspace's."""
    before, after = {"status": str(client.status)}, {"status": str(status)}
    client.status = status
    client.save(update_fields=["status"])
    partner_audit_record(
        partner=client.partner,
        actor=actor,
        action=f"client.{done}",
        target_type="client",
        target_id=client.pk,
        summary=f"{client.name} {done}: its {syncs}",
        before=before,
        after=after,
    )
    client_audit_record(
        client=client,
        actor=actor,
        action=f"workspace.{done}",
        summary=f"Workspace {done}: {syncs}",
        before=before,
        after=after,
    )


@transaction.atomic
def usage_record_upsert(
    *,
    client: Client,
    month: date,
    records_synced: int,
    runs: int,
    sandbox_records_synced: int = 0,
    sandbox_runs: int = 0,
    connections: dict[str, int] | None = None,
) -> UsageRecord:
    """Set a client's usage for a month (any day of it), as recomputed from its schema by the roll-up.

    The figures replace the stored ones rather than adding to them, so a roll-up that runs twice,
    or retries after a crash, counts nothing twice.
    """
    if min(records_synced, runs, sandbox_records_synced, sandbox_runs, *(connections or {}).values()) < 0:
        raise ValueError("Usage figures cannot be negative.")
    values = {
        "records_synced": records_synced,
        "runs": runs,
        "sandbox_records_synced": sandbox_records_synced,
        "sandbox_runs": sandbox_runs,
    }
    if connections is not None:  # left as they were when the caller did not count them
        values["connections"] = {vendor: count for vendor, count in sorted(connections.items()) if count}
    record, _ = UsageRecord.objects.update_or_create(client=client, month=this_month(month), defaults=values)
    return record
