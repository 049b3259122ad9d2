"""Inbound webhooks: a per-client URL per flow, the vendor's signature verified, replays refused.

    POST https://<partner host>/hooks/<client slug>/<flow webhook token>

A verified delivery starts the flow's run (the run reads changes since its cursor, so a webhook
is a nudge, not a payload we trust blindly); polling on the flow's schedule is the safety net.
"""

from __future__ import annotations

import hashlib
import json
import logging

from django.db import IntegrityError, connection, transaction
from django.http import Http404, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from connectors.base import WebhookRejected
from connectors.registry import get_connector_class
from integrations.models import Flow, WebhookDelivery
from integrations.services.runs import SyncNotAllowed, run_start
from portal.crypto import credentials_decrypt
from tenants.models import Client

logger = logging.getLogger(__name__)


def delivery_id(body: bytes, headers) -> str:
    """The vendor's event ids when it sends them, else the body's digest: either identifies a replay."""
    try:
        events = json.loads(body)
        ids = (
            [str(e["eventId"]) for e in events if isinstance(e, dict) and "eventId" in e]
            if isinstance(events, list)
            else []
        )
    except (ValueError, TypeError, KeyError):
        ids = []
    return "events:" + ",".join(sorted(ids)) if ids else "sha256:" + hashlib.sha256(body).hexdigest()


# What a vendor's verifier may raise on hostile input it cannot parse (a 10,000-deep JSON array, bytes that are
# not UTF-8, a timestamp of 400 nines): the sender is refused, never answered with a 500.
UNREADABLE = (ValueError, TypeError, OverflowError, UnicodeError, RecursionError, KeyError, IndexError, AttributeError)


@csrf_exempt
@require_POST
def flow_webhook(request, client_slug: str, token: str):
    if request.partner is None:
        raise Http404
    client = Client.objects.filter(partner=request.partner, slug=client_slug).first()
    if client is None:
        raise Http404
    connection.set_tenant(client)
    flow = Flow.objects.select_related("source_connection").filter(webhook_token=token).first()
    if flow is None:
        raise Http404
    source = flow.source_connection
    connector_class = get_connector_class(source.vendor)
    try:
        handshake = connector_class.webhook_handshake(
            method=request.method, url=request.build_absolute_uri(), headers=request.headers, body=request.body
        )
    except UNREADABLE:
        logger.warning("Unreadable %s webhook handshake for flow %s refused", source.vendor, flow.pk, exc_info=True)
        return JsonResponse({"accepted": False, "reason": "The webhook could not be read."}, status=400)
    if handshake is not None:  # e.g. Business Central's validationToken echo when a subscription is made or renewed
        status, content_type, answer = handshake
        return HttpResponse(answer, status=status, content_type=content_type)
    secret = credentials_decrypt(source.encrypted_credentials).get("webhook_secret", "")
    try:
        connector_class.verify_webhook(
            secret=secret,
            method=request.method,
            url=request.build_absolute_uri(),
            headers=request.headers,
            body=request.body,
        )
    except WebhookRejected as rejected:
        return JsonResponse({"accepted": False, "reason": str(rejected)}, status=401)
    except UNREADABLE:
        # Anyone can post here: headers or a body a verifier could not even read are a refusal, never a 500.
        logger.warning("Unreadable %s webhook for flow %s refused", source.vendor, flow.pk, exc_info=True)
        return JsonResponse(
            {"accepted": False, "reason": "The webhook's signature headers are unreadable."}, status=401
        )
    try:
        with transaction.atomic():
            WebhookDelivery.objects.create(flow=flow, delivery_id=delivery_id(request.body, request.headers)[:200])
    except IntegrityError:
        return JsonResponse({"accepted": False, "reason": "This delivery was already received."}, status=409)
    try:
        run = run_start(flow=flow, trigger="webhook")
    except SyncNotAllowed as refused:
        return JsonResponse({"accepted": False, "reason": str(refused)}, status=423)
    return JsonResponse({"accepted": True, "run": run.pk}, status=202)
