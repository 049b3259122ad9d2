"""Celery tasks of the API: posting webhook deliveries (public-schema rows, whatever schema queued them)."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="api.tasks.webhook_deliver", acks_late=True)
def webhook_deliver(delivery_id: int) -> str:
    from api.webhooks import webhook_delivery_attempt

    return webhook_delivery_attempt(delivery_id=delivery_id)


@shared_task(name="api.tasks.webhook_deliveries_recover")
def webhook_deliveries_recover() -> int:
    from api.webhooks import webhook_deliveries_recover as recover

    return recover()
