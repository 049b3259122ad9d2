"""One API call from end to end, around the operation: who is calling (the key), throttling per key,
idempotent replays of POSTs, the key's last use, and the audit row every call leaves.

Per-client throttling happens where an operation enters a client (api.access.client_for), since
only the operation knows which client it reaches.
"""

from __future__ import annotations

import hashlib
import logging
import time

from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError, transaction
from django.http import HttpResponse
from django_tenants.utils import tenant_context

from api.models import PartnerApiCall
from api.problems import ApiProblem, problem_for
from api.selectors import api_key_for_secret, api_key_refusal
from api.services import api_key_used

logger = logging.getLogger(__name__)

API_PREFIX = "/api/v1/"
IDEMPOTENCY_SECONDS = 24 * 3600
IDEMPOTENCY_PENDING_SECONDS = 120
RATE_WINDOW_SECONDS = 60


def throttle(bucket: str, limit: int) -> None:
    """Count one call in `bucket`'s current minute (a Redis counter shared by every web process);
    past `limit`, ApiProblem 429 with Retry-After: the seconds until the window turns."""
    now = time.time()
    window = int(now // RATE_WINDOW_SECONDS)
    key = f"api:rate:{bucket}:{window}"
    cache.add(key, 0, timeout=RATE_WINDOW_SECONDS * 2)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr: this call starts the window
        cache.set(key, 1, timeout=RATE_WINDOW_SECONDS * 2)
        count = 1
    if count > limit:
        retry_after = max(1, int((window + 1) * RATE_WINDOW_SECONDS - now + 0.999))
        raise ApiProblem(
            429,
            f"More than {limit} calls a minute {bucket_words(bucket)}; try again in {retry_after} s.",
            headers={"Retry-After": str(retry_after)},
        )


def bucket_words(bucket: str) -> str:
    return "with this key" if bucket.startswith("key:") else "for this client"


def bearer_secret(request) -> str:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, secret = header.partition(" ")
    return secret.strip() if scheme.lower() == "bearer" else ""


class ApiCallMiddleware:
    """Runs after authentication and workspace routing, for /api/v1/ on a partner's host only."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.partner is None or not request.path_info.startswith(API_PREFIX):
            return self.get_response(request)
        request.api_key = None
        request.api_refusal = ""
        request.api_client = None
        request.api_action = ""
        request.api_target = ""
        secret = bearer_secret(request)
        if secret:
            key = api_key_for_secret(secret)
            refusal = "This key is not valid here." if key is None else api_key_refusal(key, request.partner)
            if refusal:
                request.api_refusal = refusal
            else:
                request.api_key = key
        if request.api_key is None:
            return self.get_response(request)  # the operation's auth answers 401 (or the docs are public)
        key = request.api_key
        try:
            throttle(f"key:{key.pk}", settings.API_KEY_RATE_PER_MINUTE)
            response = self._idempotent(request)
        except ApiProblem as problem:
            response = problem_for(problem, instance=request.path)
        api_key_used(key=key)
        self._audit(request, response.status_code)
        return response

    def _idempotent(self, request) -> HttpResponse:
        """A POST carrying Idempotency-Key answers a repeat with the first answer, stored for a day."""
        token = request.headers.get("Idempotency-Key")
        if request.method != "POST" or token is None:
            return self.get_response(request)
        if not token or len(token) > 255 or not all("!" <= char <= "~" for char in token):
            raise ApiProblem(400, "An Idempotency-Key is 1-255 visible ASCII characters (no spaces).")
        fingerprint = hashlib.sha256(
            b"\n".join([request.method.encode(), request.get_full_path().encode(), request.body])
        ).hexdigest()
        slot = f"api:idem:{request.api_key.pk}:{hashlib.sha256(token.encode()).hexdigest()}"
        stored = cache.get(slot)
        if stored is None and not cache.add(
            slot, {"pending": True, "fingerprint": fingerprint}, timeout=IDEMPOTENCY_PENDING_SECONDS
        ):
            stored = cache.get(slot) or {"pending": True, "fingerprint": fingerprint}
        if stored is not None:
            if stored["fingerprint"] != fingerprint:
                raise ApiProblem(422, "This Idempotency-Key was used with a different request; use a new key.")
            if stored.get("pending"):
                raise ApiProblem(409, "A request with this Idempotency-Key is still being answered; retry shortly.")
            replay = HttpResponse(stored["body"], status=stored["status"], content_type=stored["content_type"])
            for name, value in stored["headers"].items():
                replay[name] = value
            replay["Idempotent-Replayed"] = "true"
            request.api_action = request.api_action or "api.replayed"
            return replay
        try:
            response = self.get_response(request)
        except BaseException:
            cache.delete(slot)
            raise
        if response.status_code >= 500 or response.status_code == 429 or getattr(response, "streaming", False):
            cache.delete(slot)  # not an answer: the request may be tried again with the same key
            return response
        kept = {name: response[name] for name in ("Location", "ETag") if response.has_header(name)}
        cache.set(
            slot,
            {
                "fingerprint": fingerprint,
                "status": response.status_code,
                "content_type": response.get("Content-Type", "application/json"),
                "headers": kept,
                "body": response.content.decode(),
            },
            timeout=IDEMPOTENCY_SECONDS,
        )
        return response

    def _audit(self, request, status: int) -> None:
        """One row per call: the key, the action and the object, with the answer's status. A client's
        calls land in that client's own audit log, beside what people did in the pages."""
        key = request.api_key
        action = request.api_action or f"api.{request.method.lower()}"
        target = str(request.api_target or "")
        summary = f"API key “{key.name}” ({key.prefix}…): {request.method} {request.path} → {status}"
        details = {
            "key": key.prefix,
            "key_id": key.pk,
            "method": request.method,
            "path": request.path[:300],
            "status": status,
        }
        client = request.api_client or key.client
        try:
            if client is not None:
                from integrations.models import AuditEvent

                with tenant_context(client), transaction.atomic():
                    AuditEvent.objects.create(
                        actor_id=key.created_by_id,
                        actor_email=key.created_by.email,
                        action=action,
                        target_type=action.split(".")[1] if action.count(".") >= 2 else "api",
                        target_id=target[:120],
                        summary=summary[:300],
                        after=details,
                    )
            else:
                PartnerApiCall.objects.create(
                    partner=key.partner,
                    key=key,
                    key_prefix=key.prefix,
                    action=action[:80],
                    method=request.method[:8],
                    path=request.path[:300],
                    target=target[:120],
                    status=status,
                )
        except DatabaseError:
            # The answer is already decided (and any change committed); say so loudly rather than
            # turn a done action into an error the caller would retry.
            logger.exception("API call could not be audited: %s %s", request.method, request.path)
