"""Emails to the people a client names, in the partner's brand, when something needs them."""

from __future__ import annotations

from django.db import connection as db

from integrations.models import NotificationRecipient
from portal.emails import branded_email_send


def _send(flag: str, *, subject: str, template: str, context: dict) -> int:
    client = getattr(db, "tenant", None)
    partner = getattr(client, "partner", None)
    recipients = list(NotificationRecipient.objects.filter(**{flag: True}).values_list("email", flat=True))
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
        return _send("on_run_failed", subject=f"Sync failed: {run.flow.name}", template="run_failed", context=context)
    if kind == "connection_failed":
        connection = context["connection"]
        return _send(
            "on_connection_failed",
            subject=f"Connection failing: {connection.name}",
            template="connection_failed",
            context=context,
        )
    if kind == "sla_breach":
        return _send(
            "on_sla_breach", subject="Exceptions past their resolution target", template="sla_breach", context=context
        )
    return 0


def notify_step(*, step, items) -> int:
    """A flow's notify step (lead-to-project): tell delivery leadership about newly won work."""
    projects = [item.records["project"] for item in items if "project" in item.records]
    if not projects:
        return 0
    return _send(
        "on_deal_won",
        subject=f"New project{'s' if len(projects) > 1 else ''} to staff",
        template="deal_won",
        context={"projects": projects, "step": step},
    )


def engine_notify(*, kind: str | None = None, step=None, items=None, **context) -> int:
    if step is not None:
        return notify_step(step=step, items=items or [])
    return notify(kind=kind, **context)
