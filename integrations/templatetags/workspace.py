"""Formatting for the client workspace: counts, money, hours, percentages, ages, vendors."""

from __future__ import annotations

import functools
from datetime import datetime, timedelta
from decimal import Decimal

from django import template
from django.contrib.humanize.templatetags.humanize import intcomma
from django.contrib.staticfiles import finders
from django.templatetags.static import static
from django.utils import timezone

from integrations.selectors.counting import BoundedCount
from integrations.selectors.labels import error_label, vendor_label
from portal.money import money_text

register = template.Library()


@register.filter
def tally(value) -> str:
    """An exact count as 1,234; an estimated one (past the counting cap) as ≈ 250k."""
    if value is None:
        return "—"
    if isinstance(value, BoundedCount) and not value.exact:
        number = value.value
        if number >= 1_000_000:
            return f"≈ {number / 1_000_000:.1f}M"
        return f"≈ {round(number / 1000):,}k"
    return intcomma(int(value))


@register.filter
def money(amount, currency: str = "") -> str:
    """Whole units, as dashboards show money: 1290.4 + "USD" -> "$1,290"."""
    return money_text(amount, currency, places=0)


@register.filter
def hours(value) -> str:
    if value is None:
        return "—"
    return f"{Decimal(value).quantize(Decimal('0.1')):,} h"


@register.filter
def percent(value) -> str:
    if value is None:
        return "—"
    return f"{float(value):.1f}%"


@register.filter
def age(value) -> str:
    """A datetime's age (or a timedelta) the way people say it: 25 min, 3 h, 2 d 4 h."""
    if value is None:
        return "—"
    delta = timezone.now() - value if isinstance(value, datetime) else value
    if not isinstance(delta, timedelta):
        return "—"
    minutes = int(delta.total_seconds() // 60)
    if minutes < 1:
        return "just now"
    if minutes < 60:
        return f"{minutes} min"
    hours_, minutes = divmod(minutes, 60)
    if hours_ < 24:
        return f"{hours_} h"
    days, hours_ = divmod(hours_, 24)
    return f"{days} d {hours_} h" if hours_ and days < 7 else f"{days} d"


@register.filter
def ago(value) -> str:
    """ "just now", "5 min ago", "2 d 4 h ago"."""
    if value is None:
        return "—"
    text = age(value)
    return text if text == "just now" else f"{text} ago"


@register.filter
def duration(seconds) -> str:
    if seconds is None:
        return "—"
    seconds = max(0.0, float(seconds))
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest} s"
    hours_, minutes = divmod(minutes, 60)
    return f"{hours_} h {minutes} min"


@register.filter
def rate(value) -> str:
    return "—" if value is None else f"{float(value):,.1f}/s"


@register.filter
def error_name(code: str) -> str:
    return error_label(code or "")


@register.filter
def vendor_name(vendor: str) -> str:
    return vendor_label(vendor or "") if vendor else "—"


@functools.cache
def _has_mark(vendor: str) -> bool:
    return vendor.isalnum() and finders.find(f"img/vendors/{vendor}.svg") is not None


@register.filter
def vendor_logo(vendor: str) -> str:
    """The vendor's mark under static/img/vendors/, or the generic one for a vendor that has none yet."""
    return static(f"img/vendors/{vendor if vendor and _has_mark(vendor) else 'generic'}.svg")


@register.filter
def sla_state(created_at, sla_hours) -> str:
    """ok, warn (past half the SLA) or bad (past it): how an exception's age reads against the plan."""
    if not created_at or not sla_hours:
        return "ok"
    elapsed = (timezone.now() - created_at).total_seconds() / 3600
    if elapsed >= sla_hours:
        return "bad"
    return "warn" if elapsed >= sla_hours / 2 else "ok"


@register.filter
def every(minutes) -> str:
    """A schedule in minutes as people say it: every 15 min, every hour, every day."""
    if not minutes:
        return "By hand"
    minutes = int(minutes)
    if minutes % 1440 == 0:
        days = minutes // 1440
        return "Every day" if days == 1 else f"Every {days} days"
    if minutes % 60 == 0:
        hours_ = minutes // 60
        return "Every hour" if hours_ == 1 else f"Every {hours_} h"
    return f"Every {minutes} min"


@register.filter
def get_item(mapping, key):
    return mapping.get(key) if hasattr(mapping, "get") else None


@register.simple_tag(takes_context=True)
def query(context, **changes) -> str:
    """This page's query string with some parameters changed (None or "" removes one)."""
    params = context["request"].GET.copy()
    for key, value in changes.items():
        if value in (None, ""):
            params.pop(key, None)
        else:
            params[key] = value
    encoded = params.urlencode()
    return f"?{encoded}" if encoded else "?"
