"""Signing in to NetSuite: the JWT client assertion, signed with the private key of the certificate mapped to the
integration."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from connectors.base import (
    AuthenticationFailed,
)

SCOPE = "rest_webservices"
ASSERTION_LIFETIME = 300  # seconds; NetSuite accepts at most 3,600 between iat and exp
_PEM_RE = re.compile(r"-----BEGIN ([A-Z ]+)-----(.*?)-----END \1-----", re.S)


def normalize_pem(text: str) -> str:
    """A PEM block rebuilt with its line breaks: a one-line form input or an escaped "\\n" would lose them."""
    text = text.replace("\\n", "\n").strip()
    match = _PEM_RE.search(text)
    if not match:
        return text
    label, body = match.group(1), re.sub(r"\s+", "", match.group(2))
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return "\n".join([f"-----BEGIN {label}-----", *lines, f"-----END {label}-----"]) + "\n"


def signing_algorithm(private_key: Any) -> str:
    """The JWT algorithm NetSuite accepts for this key: PS256 for RSA (PKCS#1 v1.5 is refused), ES* for EC."""
    if isinstance(private_key, rsa.RSAPrivateKey):
        return "PS256"
    if isinstance(private_key, ec.EllipticCurvePrivateKey):
        return {256: "ES256", 384: "ES384", 521: "ES512"}.get(private_key.curve.key_size, "ES256")
    raise AuthenticationFailed("The NetSuite certificate key must be an RSA or EC private key in PEM format.")


def client_assertion(credentials: Mapping[str, str], *, token_url: str) -> str:
    """The signed JWT that stands for the integration's client secret at `token_url`, valid a few minutes."""
    pem = normalize_pem(credentials.get("private_key", ""))
    try:
        key = load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError):
        raise AuthenticationFailed(
            "The NetSuite certificate private key could not be read: paste the whole PEM, "
            "including the BEGIN and END lines."
        ) from None
    now = int(time.time())
    claims = {
        "iss": credentials.get("client_id", ""),
        "scope": [SCOPE],
        "aud": token_url,
        "iat": now,
        "exp": now + ASSERTION_LIFETIME,
    }
    headers = {"typ": "JWT", "kid": credentials.get("certificate_id", "")}
    return jwt.encode(claims, key, algorithm=signing_algorithm(key), headers=headers)
