"""Emails to the people a client names, in the partner's brand, when something needs them.

A recipient limited to some flows hears about those flows only: their failed runs, the
connections they use, their won deals. Exceptions past the SLA concern the whole queue.
"""

from __future__ import annotations

from django.db import connection as db
from django.db.models import Q

from integrations.models import Flow, NotificationRecipient
from portal.emails import branded_email_send


def alert_emails(flag: str, *, flows=None) -> list[str]:
    """Who gets the event `flag`: everyone who asked, or (flows given) those of every flow or of one of them."""
    recipients = NotificationRecipient.objects.filter(**{flag: True})
    if flows is not None:
        recipients = recipients.filter(Q(flows__isnull=True) | Q(flows__in=flows))
    return sorted(set(recipients.values_list("email", flat=True)))


def flows_using(connection) -> list[int]:
    """Ids of the flows a failing connection stops: those that read from or write to it, and the
    flows that run one of those first as reference data."""
    direct = Flow.objects.filter(Q(source_connection=connection) | Q(steps__target_connection=connection))
    found = set(direct.values_list("pk", flat=True))
    frontier = set(found)
    while frontier:  # prerequisites are shallow; this stops when no new dependent appears
        frontier = set(Flow.objects.filter(prerequisites__in=frontier).values_list("pk", flat=True)) - found
        found |= frontier
    return sorted(found)


def _send(flag: str, *, subject: str, template: str, context: dict, flows=None) -> int:
    client = getattr(db, "tenant", None)
    partner = getattr(client, "partner", None)
    recipients = alert_emails(flag, flows=flows)
    if not recipients or partner is None:
        return 0
    branded_email_send(
        partner=partner, to=recipients, subject=subject, template=template, context={"client": client, **context}
    )
    return len(recipients)


def notify(*, kind: str, **context) -> int:
    """The engine's notify hook: kind is run_failed, connection_failed, sla_breach or deal_won."""
    if kind == "run_failed":
        run = context["run"]
        return _send(
            "on_run_failed",
            subject=f"Sync failed: {run.flow.name}",
            template="run_failed",
            context=context,
            flows=[run.flow_id],
        )
    if kind == "connection_failed":
        connection = context["connection"]
        return _send(
            "on_connection_failed",
            subject=f"Connection failing: {connection.name}",
            template="connection_failed",
            context=context,
            flows=flows_using(connection),
        )
    if kind == "sla_breach":
        return _send(
            "on_sla_breach", subject="Exceptions past their resolution target", template="sla_breach", context=context
        )
    return 0


def notify_step(*, step, items) -> int:
    """A flow's notify step (lead-to-project): tell delivery leadership about newly won work.

    Without a step (won work announced outside a flow) everyone who asked for won work is told."""
    projects = [item.records["project"] for item in items if "project" in item.records]
    if not projects:
        return 0
    return _send(
        "on_deal_won",
        subject=f"New project{'s' if len(projects) > 1 else ''} to staff",
        template="deal_won",
        context={"projects": projects, "step": step},
        flows=[step.flow_id] if step is not None else None,
    )


def engine_notify(*, kind: str | None = None, step=None, items=None, **context) -> int:
    if step is not None:
        return notify_step(step=step, items=items or [])
    return notify(kind=kind, **context)
