"""Celery tasks of a client workspace. Each runs in the schema of the tenant that queued it."""

from __future__ import annotations

from celery import shared_task
from django.db import connection

from integrations.services import audit_record


@shared_task(name="integrations.tasks.workspace_note")
def workspace_note(summary: str) -> dict:
    """Record a system note in the audit log of the workspace the task was queued from."""
    event = audit_record(actor=None, action="system.note", summary=summary)
    return {"schema": connection.schema_name, "audit_event_id": event.pk}
