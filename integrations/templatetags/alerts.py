"""The flow page's Alerts panel reads who hears about the flow itself, so it can be included anywhere."""

from __future__ import annotations

from django import template

from integrations import selectors
from integrations.forms.alerts import alert_event_choices

register = template.Library()

EVENT_LABELS = dict(alert_event_choices(None))


@register.simple_tag
def flow_alert_recipients(flow) -> list:
    return selectors.flow_alert_recipients(flow)


@register.filter
def alert_event_label(event: str) -> str:
    return EVENT_LABELS.get(event, event)
