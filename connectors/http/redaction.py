"""Secrets kept out of log lines and exception text: a session's own, Authorization values and token-looking
query parameters, in our messages and in those third-party libraries log."""

from __future__ import annotations

import logging
import re
import threading
from collections import Counter
from collections.abc import Iterable

REDACTED = "***"

# Query parameters whose values are credentials whatever the vendor calls them.
_TOKEN_PARAM = re.compile(
    r"(?i)([?&;](?:access_token|refresh_token|id_token|token|api_?key|apikey|key|password|passwd|secret|"
    r"client_secret|signature|sig|code|session_?id|auth)=)[^&;#\s\"']+"
)
# Authorization-style values that may turn up inside text (a header dump, a vendor echoing the request).
_AUTH_VALUE = re.compile(r"(?i)\b(Bearer|Basic|Token|OAuth)\s+[A-Za-z0-9._~+/=\-]{8,}")


_live_secrets: Counter[str] = Counter()
_live_secrets_lock = threading.Lock()


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Remove known secrets, Authorization values and token-looking query parameters from `text`."""
    if not text:
        return text
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    text = _AUTH_VALUE.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    return _TOKEN_PARAM.sub(lambda m: m.group(1) + REDACTED, text)


class _RedactingFilter(logging.Filter):
    """Rewrites records of third-party loggers that print request lines (urllib3 logs full URLs at DEBUG)."""

    def filter(self, record: logging.LogRecord) -> bool:
        with _live_secrets_lock:
            secrets = list(_live_secrets)
        message = record.getMessage()
        cleaned = redact(message, secrets)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True


_redacting_filter = _RedactingFilter()
for _name in ("urllib3.connectionpool", "urllib3.util.retry", "requests_oauthlib.oauth2_session"):
    logging.getLogger(_name).addFilter(_redacting_filter)


def secrets_register(secrets: Iterable[str]) -> None:
    """Hide these secrets from third-party log lines too, until they are released."""
    with _live_secrets_lock:
        _live_secrets.update(secrets)


def secrets_release(secrets: Iterable[str]) -> None:
    with _live_secrets_lock:
        _live_secrets.subtract(secrets)
        for secret in secrets:
            if _live_secrets[secret] <= 0:
                del _live_secrets[secret]
