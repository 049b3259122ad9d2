"""Writes on API keys: create (the key is returned once), revoke, and note a use."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from api.models import CLIENT_FAMILIES, PARTNER_FAMILIES, ApiKey
from tenants.models import Client, Partner, User
from tenants.services import client_audit_record

KEY_PREFIXES = {ApiKey.Kind.PARTNER: "pk", ApiKey.Kind.CLIENT: "ck"}
# last_used_at is written at most this often per key: a busy integration would otherwise update
# the same row on every call.
LAST_USED_RESOLUTION = timedelta(seconds=60)


class ApiKeyRefused(Exception):  # noqa: N818 - the domain's words; str() is the sentence to show
    pass


@dataclass(frozen=True)
class IssuedKey:
    key: ApiKey
    secret: str  # the whole key, shown once and never again


def api_key_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def scopes_valid(*, scopes: list[str], kind: str) -> list[str]:
    families = CLIENT_FAMILIES if kind == ApiKey.Kind.CLIENT else PARTNER_FAMILIES + CLIENT_FAMILIES
    allowed = {f"{family}:{level}" for family in families for level in ("read", "write")}
    unknown = sorted(set(scopes) - allowed)
    if unknown:
        raise ApiKeyRefused(f"Unknown scopes for a {kind} key: {', '.join(unknown)}.")
    if not scopes:
        raise ApiKeyRefused("Choose at least one scope.")
    return sorted(set(scopes))


@transaction.atomic
def api_key_create(
    *,
    partner: Partner,
    name: str,
    scopes: list[str],
    actor: User,
    client: Client | None = None,
    expires_at: datetime | None = None,
) -> IssuedKey:
    """A new key for `partner` (or its `client`); the secret in the answer is the only copy anywhere."""
    if client is not None and client.partner_id != partner.pk:
        raise ApiKeyRefused("A client key belongs to one of the partner's own clients.")
    kind = ApiKey.Kind.CLIENT if client is not None else ApiKey.Kind.PARTNER
    name = " ".join(name.split())
    if not name:
        raise ApiKeyRefused("Name the key after the program that will use it.")
    if expires_at is not None and expires_at <= timezone.now():
        raise ApiKeyRefused("The expiry must be in the future.")
    scopes = scopes_valid(scopes=scopes, kind=kind)
    secret = f"{KEY_PREFIXES[kind]}_{secrets.token_urlsafe(32)}"
    key = ApiKey.objects.create(
        partner=partner,
        client=client,
        name=name[:80],
        prefix=secret[:10],
        key_hash=api_key_hash(secret),
        scopes=scopes,
        expires_at=expires_at,
        created_by=actor,
    )
    if client is not None:
        client_audit_record(
            client=client,
            actor=actor,
            action="api_key.created",
            summary=f"API key “{key.name}” ({key.prefix}…) created with {', '.join(scopes)}",
            after={"key": key.prefix, "scopes": scopes, "expires_at": expires_at.isoformat() if expires_at else None},
        )
    return IssuedKey(key=key, secret=secret)


@transaction.atomic
def api_key_revoke(*, key: ApiKey, actor: User) -> ApiKey:
    """Stop a key at once; it stays listed, revoked, so its calls in the audit log still name it."""
    if key.revoked_at is not None:
        return key
    key.revoked_at = timezone.now()
    key.revoked_by = actor
    key.save(update_fields=["revoked_at", "revoked_by"])
    if key.client_id:
        client_audit_record(
            client=key.client,
            actor=actor,
            action="api_key.revoked",
            summary=f"API key “{key.name}” ({key.prefix}…) revoked",
            before={"key": key.prefix},
        )
    return key


def api_key_used(*, key: ApiKey) -> None:
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
