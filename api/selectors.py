"""Reads on API keys: find the key a request presents, decide whether it may act, list keys for the pages."""

from __future__ import annotations

from allauth.mfa.utils import is_mfa_enabled
from django.db.models import QuerySet

from api.models import ApiKey
from api.services import api_key_hash
from tenants.decorators import WORKSPACE_ALL
from tenants.models import Client, Partner, Role
from tenants.selectors.access import mfa_required, partner_membership, workspace_role


def api_key_for_secret(secret: str) -> ApiKey | None:
    if not secret or len(secret) > 200:
        return None
    return (
        ApiKey.objects.select_related("partner", "client", "client__plan", "created_by")
        .filter(key_hash=api_key_hash(secret))
        .first()
    )


def api_key_refusal(key: ApiKey, partner: Partner) -> str:
    """Why `key` may not be used on `partner`'s host now, or "" when it may."""
    if key.partner_id != partner.pk:
        return "This key is not valid here."  # same words as an unknown key: no probing across partners
    if key.revoked_at is not None:
        return "This key was revoked."
    if not key.is_active:
        return "This key has expired."
    if not key.created_by.is_active:
        return "The person who created this key can no longer sign in; create a new key."
    if key.client_id is None:
        membership = partner_membership(key.created_by, partner)
        if membership is None or membership.role != Role.PARTNER_ADMIN:
            return "The person who created this key is no longer a partner admin; create a new key."
    elif acting_role(key, key.client) not in WORKSPACE_ALL:
        return "The person who created this key no longer works in this workspace; create a new key."
    if mfa_required(key.created_by) and not is_mfa_enabled(key.created_by):
        # A key must not be a way around the second factor the policy asks of its creator.
        return (
            "The person who created this key has not set up two-factor sign-in, which their organisation requires: "
            "they must set it up before their keys work."
        )
    return ""


def acting_role(key: ApiKey, client: Client) -> str | None:
    """The role the key acts with in `client`: its creator's role there today (the pages' own rule)."""
    return workspace_role(key.created_by, client)


def partner_keys(partner: Partner) -> QuerySet[ApiKey]:
    return ApiKey.objects.filter(partner=partner, client__isnull=True).select_related("created_by", "revoked_by")


def client_keys(client: Client) -> QuerySet[ApiKey]:
    return ApiKey.objects.filter(client=client).select_related("created_by", "revoked_by")
