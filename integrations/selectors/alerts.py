"""Who the workspace emails, and about which flows."""

from __future__ import annotations

from django.db.models import Q

from integrations.models import Flow, FlowStep, NotificationRecipient


def alert_recipients() -> list[NotificationRecipient]:
    """Everyone the workspace emails, with the flows each is limited to (none: every flow)."""
    return list(NotificationRecipient.objects.prefetch_related("flows").order_by("email"))


def alert_flows(*, chosen=()) -> list[Flow]:
    """Flows a recipient can be limited to: the main flows (a reference flow fails inside the flow that
    runs it), and any already chosen."""
    flows = Flow.objects.filter(Q(dependents__isnull=True) | Q(pk__in=[flow.pk for flow in chosen]))
    return list(flows.distinct().order_by("name"))


def flow_alert_recipients(flow: Flow) -> list[NotificationRecipient]:
    """Who hears about `flow`: recipients of every flow and those limited to it, each with
    `flow_events`, their events that concern it (won deals only if the flow announces them)."""
    events = ["on_run_failed", "on_connection_failed"]
    if flow.steps.filter(action=FlowStep.Action.NOTIFY).exists():
        events.append("on_deal_won")
    recipients = NotificationRecipient.objects.filter(Q(flows__isnull=True) | Q(flows=flow)).distinct()
    found = []
    for recipient in recipients.prefetch_related("flows").order_by("email"):
        recipient.flow_events = [event for event in events if getattr(recipient, event)]
        if recipient.flow_events:
            found.append(recipient)
    return found
