"""Encryption at rest for connection credentials (Fernet keys from settings, rotatable)."""

from __future__ import annotations

import base64
import hashlib
import json

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


class CredentialsUnreadable(Exception):
    """The stored credentials cannot be decrypted with any configured key."""


def _fernet() -> MultiFernet:
    keys = list(settings.CREDENTIALS_KEYS)
    if not keys:
        # Development only (settings refuse this elsewhere): a key derived from the dev secret key.
        digest = hashlib.sha256(f"credentials:{settings.SECRET_KEY}".encode()).digest()
        keys = [base64.urlsafe_b64encode(digest).decode()]
    return MultiFernet([Fernet(key.encode() if isinstance(key, str) else key) for key in keys])


def credentials_encrypt(credentials: dict[str, str]) -> bytes:
    return _fernet().encrypt(json.dumps(credentials, sort_keys=True).encode())


def credentials_decrypt(token: bytes) -> dict[str, str]:
    if not token:
        return {}
    try:
        return json.loads(_fernet().decrypt(bytes(token)))
    except InvalidToken as error:
        raise CredentialsUnreadable("Stored credentials cannot be decrypted with the configured keys.") from error


def credentials_reencrypt(token: bytes) -> bytes:
    """Re-encrypt with the first (newest) key."""
    return _fernet().rotate(bytes(token))
