"""Outbound webhooks: subscriptions, the events the product emits, and signed deliveries retried with backoff.

A delivery is an HTTP POST of JSON with three headers:
    Webhook-Id: the event's id (the same on every retry: receivers drop repeats by it)
    Webhook-Timestamp: seconds since the epoch when this attempt was signed
    Webhook-Signature: v1=<hex HMAC-SHA256 of "<timestamp>.<body>" with the subscription's secret>
Receivers check the signature and refuse a timestamp more than five minutes old (replays).
Deliveries go out through the connectors' HTTP guard: no private or loopback address unless allow-listed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import time
import uuid
from datetime import timedelta

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from api.models import WEBHOOK_EVENTS, WebhookDelivery, WebhookSubscription
from tenants.models import Client, Partner, User

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 6
SIGNATURE_TOLERANCE_SECONDS = 300


class WebhookRefused(Exception):  # noqa: N818 - the domain's words; str() is the sentence to show
    pass


def _check_url(url: str) -> None:
    """Refuse at once an address that is not http(s) or resolves to a private or loopback address. A
    name that does not resolve yet is accepted: every delivery checks (and pins) its address again."""
    import socket
    from urllib.parse import urlsplit

    from connectors.base import DestinationRefused
    from connectors.http import check_destination

    host = urlsplit(url).hostname or ""
    try:
        socket.getaddrinfo(host, None)
    except (socket.gaierror, UnicodeError):
        if urlsplit(url).scheme in ("http", "https") and host:
            return
    try:
        check_destination(url, frozenset(settings.CONNECTOR_ALLOWED_HOSTS))
    except DestinationRefused as refused:
        raise WebhookRefused(str(refused)) from None


@transaction.atomic
def webhook_subscription_create(
    *, partner: Partner, url: str, events: list[str], actor: User, client: Client | None = None
) -> tuple[WebhookSubscription, str]:
    """A subscription and its signing secret, returned this once (only an encrypted copy is kept)."""
    from portal.crypto import credentials_encrypt

    if client is not None and client.partner_id != partner.pk:
        raise WebhookRefused("A client's subscription belongs to one of the partner's own clients.")
    unknown = sorted(set(events) - set(WEBHOOK_EVENTS))
    if unknown or not events:
        raise WebhookRefused("Choose at least one of the events offered.")
    _check_url(url)
    secret = f"whsec_{secrets.token_urlsafe(32)}"
    subscription = WebhookSubscription.objects.create(
        partner=partner,
        client=client,
        url=url,
        events=sorted(set(events)),
        encrypted_secret=credentials_encrypt({"secret": secret}),
        secret_prefix=secret[:12],
        created_by=actor,
    )
    if client is not None:
        from tenants.services import client_audit_record

        client_audit_record(
            client=client,
            actor=actor,
            action="webhook.subscribed",
            summary=f"Webhook to {url} for {', '.join(subscription.events)}",
            after={"url": url, "events": subscription.events},
        )
    return subscription, secret


@transaction.atomic
def webhook_subscription_delete(*, subscription: WebhookSubscription, actor: User) -> None:
    if subscription.client_id:
        from tenants.services import client_audit_record

        client_audit_record(
            client=subscription.client,
            actor=actor,
            action="webhook.removed",
            summary=f"Webhook to {subscription.url} removed",
            before={"url": subscription.url, "events": subscription.events},
        )
    subscription.delete()


def webhook_event(*, client: Client, event: str, data: dict) -> int:
    """Queue `event` about `client` for every active subscription that wants it (the client's own and
    its partner's); each is posted after the surrounding transaction commits."""
    subscriptions = WebhookSubscription.objects.filter(
        is_active=True, partner_id=client.partner_id, events__contains=[event]
    ).filter(Q(client_id=client.pk) | Q(client__isnull=True))
    created = []
    for subscription in subscriptions:
        event_id = f"evt_{uuid.uuid4().hex}"
        payload = {
            "id": event_id,
            "type": event,
            "created_at": timezone.now().isoformat(),
            "client": client.slug,
            "data": json.loads(json.dumps(data, cls=DjangoJSONEncoder)),
        }
        created.append(
            WebhookDelivery.objects.create(
                subscription=subscription, client=client, event=event, event_id=event_id, payload=payload
            )
        )
    for delivery in created:
        transaction.on_commit(lambda pk=delivery.pk: _enqueue(pk))
    return len(created)


def _enqueue(delivery_id: int, countdown: float = 0) -> None:
    from api.tasks import webhook_deliver

    webhook_deliver.apply_async(args=[delivery_id], countdown=countdown)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"v1={digest}"


def signature_valid(secret: str, headers: dict, body: bytes, now: float | None = None) -> bool:
    """What a receiver does (and the tests): the signature matches and the timestamp is recent."""
    try:
        timestamp = int(headers.get("Webhook-Timestamp", ""))
    except ValueError:
        return False
    if abs((now or time.time()) - timestamp) > SIGNATURE_TOLERANCE_SECONDS:
        return False
    return hmac.compare_digest(signature(secret, timestamp, body), headers.get("Webhook-Signature", ""))


def retry_delay(attempts: int) -> timedelta:
    """After the n-th failed attempt: base, 4x base, 16x base ... at most six hours."""
    return timedelta(seconds=min(settings.WEBHOOK_RETRY_BASE_SECONDS * 4 ** (attempts - 1), 6 * 3600))


def webhook_delivery_attempt(*, delivery_id: int) -> str:
    """Post one delivery, signed now. A 2xx is delivered; anything else is tried again later, with
    backoff, until MAX_ATTEMPTS, then it is given up (and shown so in the delivery log)."""
    from connectors.base import ConnectorError
    from connectors.http import HttpPolicy, VendorSession
    from portal.crypto import credentials_decrypt

    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.select_for_update()
            .select_related("subscription")
            .filter(pk=delivery_id, status=WebhookDelivery.Status.PENDING)
            .first()
        )
        if delivery is None:
            return "done"
        secret = credentials_decrypt(bytes(delivery.subscription.encrypted_secret))["secret"]
        body = json.dumps(delivery.payload, separators=(",", ":")).encode()
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "webhooks/1",
            "Webhook-Id": delivery.event_id,
            "Webhook-Timestamp": str(timestamp),
            "Webhook-Signature": signature(secret, timestamp, body),
        }
        policy = HttpPolicy(
            allowed_hosts=frozenset(settings.CONNECTOR_ALLOWED_HOSTS),
            max_retries=0,  # retries are this delivery's own, spread over hours
            connect_timeout=5,
            read_timeout=10,
        )
        session = VendorSession(policy=policy, vendor="webhook", secrets=[secret])
        session.final_answer_detector = lambda response: True  # a 5xx is the receiver's answer: logged, retried later
        delivery.attempts += 1
        try:
            response = session.post(delivery.subscription.url, data=body, headers=headers, allow_redirects=False)
            delivery.last_status_code = response.status_code
            delivery.last_error = "" if response.ok else f"The receiver answered {response.status_code}."
            ok = 200 <= response.status_code < 300
        except (ConnectorError, OSError, ValueError) as error:
            delivery.last_status_code = None
            delivery.last_error = session.redact(str(error))[:300] or type(error).__name__
            ok = False
        finally:
            session.close()
        if ok:
            delivery.status = WebhookDelivery.Status.DELIVERED
            delivery.delivered_at = timezone.now()
            delivery.next_attempt_at = None
        elif delivery.attempts >= MAX_ATTEMPTS:
            delivery.status = WebhookDelivery.Status.FAILED
            delivery.next_attempt_at = None
        else:
            delivery.next_attempt_at = timezone.now() + retry_delay(delivery.attempts)
        delivery.save()
        if delivery.status == WebhookDelivery.Status.PENDING:
            delay = (delivery.next_attempt_at - timezone.now()).total_seconds()
            transaction.on_commit(lambda: _enqueue(delivery.pk, countdown=max(0.0, delay)))
    return delivery.status


def webhook_deliveries_recover(*, overdue_seconds: int = 300) -> int:
    """Queue again the deliveries still waiting well past their time (a lost message, a worker that
    died): beat runs this every few minutes. Never queued at all, or due more than `overdue_seconds` ago."""
    cutoff = timezone.now() - timedelta(seconds=overdue_seconds)
    overdue = WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PENDING).filter(
        Q(next_attempt_at__lt=cutoff) | Q(next_attempt_at__isnull=True, created_at__lt=cutoff)
    )
    ids = list(overdue.values_list("pk", flat=True)[:1000])
    for delivery_id in ids:
        _enqueue(delivery_id)
    return len(ids)


# --- What the product emits -----------------------------------------------------------------------


def _current_client() -> Client | None:
    from django.db import connection

    client = getattr(connection, "tenant", None)
    return client if isinstance(client, Client) and client.pk else None


def run_finished_emit(run) -> None:
    """run.finished for every finished run, and exceptions.opened when the run opened some."""
    client = _current_client()
    if client is None:
        return
    from integrations.models import SyncException

    counts = {name: getattr(run, name) for name in ("read", "created", "linked", "updated", "unchanged", "failed")}
    webhook_event(
        client=client,
        event="run.finished",
        data={"run_id": run.pk, "flow_id": run.flow_id, "flow": run.flow.name, "status": run.status, **counts},
    )
    opened = list(SyncException.objects.filter(first_run=run).values_list("pk", flat=True)[:101])
    if opened:
        webhook_event(
            client=client,
            event="exceptions.opened",
            data={"run_id": run.pk, "flow_id": run.flow_id, "count": len(opened[:100]), "exception_ids": opened[:100]},
        )


def connection_failing_emit(connection) -> None:
    client = _current_client()
    if client is not None:
        webhook_event(
            client=client,
            event="connection.failing",
            data={"connection_id": connection.pk, "name": connection.name, "vendor": connection.vendor},
        )


def past_sla_emit(*, client: Client, count: int, oldest, hours: int) -> None:
    """Once a day at most per client, like the emails."""
    recently = WebhookDelivery.objects.filter(
        client=client, event="exceptions.past_sla", created_at__gte=timezone.now() - timedelta(hours=24)
    ).exists()
    if not recently:
        webhook_event(
            client=client,
            event="exceptions.past_sla",
            data={"count": count, "oldest_created_at": oldest, "sla_hours": hours},
        )
