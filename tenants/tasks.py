"""The partner side's periodic work: subscriptions renewed at their renewal date, and their reminders."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone


@shared_task(name="tenants.tasks.renewals_run")
def renewals_run() -> dict[str, int]:
    """Run by beat every hour (each step does only what is due, so running it again changes nothing): roll over
    the subscriptions whose renewal date has come, then send the reminders that are due, each once."""
    from tenants.services.subscriptions import renewal_reminders_send, subscriptions_renew

    today = timezone.localdate()
    return {"renewed": subscriptions_renew(today=today), "reminded": renewal_reminders_send(today=today)}
