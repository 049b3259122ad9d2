"""Forms of the client workspace, one module a page: queue (filters and actions on exceptions), connections,
flows, mappings, people, alerts. The check every one-line text field shares is here."""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError

LINE_BREAKS = re.compile(r"[\r\n\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def one_line(value: str) -> str:
    if LINE_BREAKS.search(value or ""):
        raise ValidationError("Use a single line of text.")
    return value
