"""Outbound webhooks: subscribed in the browser, signed with a timestamp, retried with backoff, logged, and
never crossing tenants. A real receiver listens on loopback; deliveries are real HTTP posts to it."""

import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.db import connection
from django.utils import timezone
from django_tenants.utils import tenant_context

from api.models import WebhookDelivery, WebhookSubscription
from api.webhooks import (
    MAX_ATTEMPTS,
    connection_failing_emit,
    run_finished_emit,
    signature_valid,
    webhook_delivery_attempt,
    webhook_subscription_create,
)
from tests.integrations.workspace_fixtures import seed_workspace
from tests.support import NORTHWIND, browser_for

pytestmark = pytest.mark.django_db


class Receiver:
    """An HTTP server that records what is posted to it and answers `status`."""

    def __init__(self):
        self.received = []
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.received.append((dict(self.headers), body))
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks"

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(settings):
    running = Receiver()
    settings.CONNECTOR_ALLOWED_HOSTS = [f"127.0.0.1:{running.server.server_port}"]
    settings.WEBHOOK_RETRY_BASE_SECONDS = 30
    yield running
    running.stop()


def subscribe(world, url, events, client="contoso"):
    return webhook_subscription_create(
        partner=world.partners["northwind"],
        client=world.clients[client] if client else None,
        url=url,
        events=events,
        actor=world.user("admin@northwind.localhost"),
    )


def test_a_client_admin_subscribes_in_the_browser_and_sees_the_secret_once(world, receiver):
    from integrations.models import AuditEvent

    admin = browser_for(world.user("admin@contoso.localhost"), host=NORTHWIND)
    created = admin.post(
        "/c/contoso/webhooks/", {"url": receiver.url, "events": ["run.finished", "connection.failing"]}
    )
    assert created.status_code == 201
    page = created.content.decode()
    subscription = WebhookSubscription.objects.get(client=world.clients["contoso"])
    assert subscription.secret_prefix in page and "whsec_" in page
    assert "whsec_" not in admin.get("/c/contoso/webhooks/").content.decode().replace(subscription.secret_prefix, "")
    assert b"whsec_" not in bytes(subscription.encrypted_secret)  # stored encrypted
    with tenant_context(world.clients["contoso"]):
        assert AuditEvent.objects.filter(action="webhook.subscribed").exists()
    assert (
        browser_for(world.user("finance@contoso.localhost"), host=NORTHWIND).get("/c/contoso/webhooks/").status_code
        == 403
    )


def test_a_private_address_is_refused(world, receiver):
    admin = browser_for(world.user("admin@contoso.localhost"), host=NORTHWIND)
    refused = admin.post("/c/contoso/webhooks/", {"url": "http://10.0.0.7/hooks", "events": ["run.finished"]})
    assert refused.status_code == 422 and "Refused to connect" in refused.content.decode()
    loopback = admin.post("/c/contoso/webhooks/", {"url": "http://localhost:8000/hooks", "events": ["run.finished"]})
    assert loopback.status_code == 422
    assert not WebhookSubscription.objects.exists()


def test_a_name_that_does_not_resolve_yet_is_accepted_and_each_delivery_checks_it_again(world, receiver):
    subscription, _ = subscribe(world, "https://hooks.not-yet-live.invalid/portal", ["connection.failing"])
    contoso = world.clients["contoso"]
    connection.set_tenant(contoso)
    seeded = seed_workspace()
    connection_failing_emit(seeded.netsuite)
    connection.set_schema_to_public()
    delivery = WebhookDelivery.objects.get(subscription=subscription)
    assert webhook_delivery_attempt(delivery_id=delivery.pk) == "pending"
    delivery.refresh_from_db()
    assert "does not resolve" in delivery.last_error and delivery.last_status_code is None


def test_a_failing_connection_is_posted_signed_to_the_client_and_its_partner_only(world, receiver):
    _, secret = subscribe(world, receiver.url, ["connection.failing"])
    _, partner_secret = subscribe(world, receiver.url + "/partner", ["connection.failing"], client=None)
    subscribe(world, receiver.url + "/tailspin", ["connection.failing"], client="tailspin")
    webhook_subscription_create(
        partner=world.partners["summit"],
        url=receiver.url + "/summit",
        events=["connection.failing"],
        actor=world.user("admin@summit.localhost"),
    )
    contoso = world.clients["contoso"]
    connection.set_tenant(contoso)
    seeded = seed_workspace()
    connection_failing_emit(seeded.netsuite)
    connection.set_schema_to_public()

    deliveries = list(WebhookDelivery.objects.filter(event="connection.failing"))
    assert sorted(d.subscription.url for d in deliveries) == [receiver.url, receiver.url + "/partner"]
    for delivery in deliveries:
        assert webhook_delivery_attempt(delivery_id=delivery.pk) == "delivered"
    assert len(receiver.received) == 2
    for headers, body in receiver.received:
        payload = json.loads(body)
        assert payload["type"] == "connection.failing" and payload["client"] == "contoso"
        assert payload["data"]["name"] == "NetSuite" and "credentials" not in body.decode()
        assert headers["Webhook-Id"] == payload["id"]
        assert signature_valid(secret, headers, body) or signature_valid(partner_secret, headers, body)
        assert not signature_valid("whsec_wrong", headers, body)
    stale_headers = {
        **receiver.received[0][0],
        "Webhook-Timestamp": str(int(receiver.received[0][0]["Webhook-Timestamp"]) - 600),
    }
    assert not signature_valid(secret, stale_headers, receiver.received[0][1])


def test_a_refused_delivery_is_retried_with_backoff_then_given_up(world, receiver):
    subscribe(world, receiver.url, ["run.finished", "exceptions.opened"])
    contoso = world.clients["contoso"]
    connection.set_tenant(contoso)
    seeded = seed_workspace()
    run_finished_emit(seeded.run)
    connection.set_schema_to_public()
    finished = WebhookDelivery.objects.get(event="run.finished")
    opened = WebhookDelivery.objects.get(event="exceptions.opened")
    assert finished.payload["data"]["read"] == 120 and opened.payload["data"]["count"] == 7

    receiver.status = 500
    waits = []
    for attempt in range(1, MAX_ATTEMPTS + 1):
        before = timezone.now()
        status = webhook_delivery_attempt(delivery_id=finished.pk)
        finished.refresh_from_db()
        assert finished.attempts == attempt and finished.last_status_code == 500
        if attempt < MAX_ATTEMPTS:
            assert status == "pending"
            waits.append((finished.next_attempt_at - before).total_seconds())
        else:
            assert status == "failed" and finished.next_attempt_at is None
    assert [round(w / 30) for w in waits] == [1, 4, 16, 64, 256]  # 30 s, then four times longer each time
    assert webhook_delivery_attempt(delivery_id=finished.pk) == "done"  # given up: never posted again
    assert len(receiver.received) == MAX_ATTEMPTS
    # Every retry carries the same event id, so the receiver can drop repeats.
    assert {headers["Webhook-Id"] for headers, _ in receiver.received} == {finished.event_id}

    receiver.status = 204
    assert webhook_delivery_attempt(delivery_id=opened.pk) == "delivered"


def test_the_delivery_log_shows_the_workspaces_deliveries_only(world, receiver):
    subscribe(world, receiver.url, ["connection.failing"])
    subscribe(world, receiver.url + "/partner-crm", ["connection.failing"], client=None)
    contoso = world.clients["contoso"]
    connection.set_tenant(contoso)
    seeded = seed_workspace()
    connection_failing_emit(seeded.kantata)
    connection.set_schema_to_public()
    receiver.status = 503
    for delivery in WebhookDelivery.objects.all():
        webhook_delivery_attempt(delivery_id=delivery.pk)
    page = (
        browser_for(world.user("admin@contoso.localhost"), host=NORTHWIND).get("/c/contoso/webhooks/").content.decode()
    )
    assert "connection.failing" in page and "503" in page and "Retrying" in page
    assert "partner-crm" not in page  # the partner's own address is not the client's to see
    partner_page = browser_for(world.user("admin@northwind.localhost"), host=NORTHWIND).get("/partner/webhooks/")
    assert partner_page.status_code == 200 and "partner-crm" in partner_page.content.decode()
    assert WebhookDelivery.objects.filter(next_attempt_at__gt=timezone.now() + timedelta(seconds=20)).count() == 2


def test_deliveries_whose_message_was_lost_are_queued_again(world, receiver):
    from api.webhooks import webhook_deliveries_recover

    subscribe(world, receiver.url, ["connection.failing"])
    contoso = world.clients["contoso"]
    connection.set_tenant(contoso)
    seeded = seed_workspace()
    connection_failing_emit(seeded.netsuite)
    connection.set_schema_to_public()
    delivery = WebhookDelivery.objects.get()
    assert webhook_deliveries_recover() == 0  # just created: its own message is on its way
    WebhookDelivery.objects.filter(pk=delivery.pk).update(created_at=timezone.now() - timedelta(minutes=10))
    assert webhook_deliveries_recover() == 1
    WebhookDelivery.objects.filter(pk=delivery.pk).update(status=WebhookDelivery.Status.DELIVERED)
    assert webhook_deliveries_recover() == 0
