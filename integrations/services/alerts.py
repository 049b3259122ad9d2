"""Who the workspace emails when something needs a person: add, change and remove alert recipients.

Every change writes its audit row in the same transaction. Emails are stored lower-case, so one
address is one recipient however it was typed.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction

from integrations.models import Flow, NotificationRecipient
from integrations.services.audit import audit_record

EVENTS = NotificationRecipient.EVENTS
# How audit rows name the events.
EVENT_NAMES = {
    "on_run_failed": "run failed",
    "on_connection_failed": "connection failing",
    "on_sla_breach": "exceptions past the SLA",
    "on_deal_won": "new won deals",
}


class AlertRecipientRefused(Exception):  # noqa: N818 - the domain's words, shown to the user
    pass


def _email_clean(email: str) -> str:
    email = (email or "").strip().lower()
    try:
        validate_email(email)
    except ValidationError as error:
        raise AlertRecipientRefused("Enter a valid email address, such as finance@example.com.") from error
    return email


def _events_clean(events: Iterable[str]) -> list[str]:
    chosen = set(events)
    unknown = chosen - set(EVENTS)
    if unknown:
        raise AlertRecipientRefused(f"Unknown alert: {', '.join(sorted(unknown))}.")
    if not chosen:
        raise AlertRecipientRefused("Choose at least one alert, or remove the recipient.")
    return [event for event in EVENTS if event in chosen]


def _view(recipient: NotificationRecipient) -> dict:
    """The recipient as its audit rows record it."""
    return {
        "email": recipient.email,
        "events": recipient.events(),
        "flows": sorted(recipient.flows.values_list("name", flat=True)),
    }


def _describe(view: dict) -> str:
    events = ", ".join(EVENT_NAMES[event] for event in view["events"])
    scope = f"for {', '.join(view['flows'])}" if view["flows"] else "for every flow"
    return f"{events} {scope}"


@transaction.atomic
def alert_recipient_add(
    *, email: str, events: Iterable[str], flows: Iterable[Flow] = (), actor=None
) -> NotificationRecipient:
    """Email `email` on `events`, for `flows` only (none: every flow). Refused for an address already listed."""
    email = _email_clean(email)
    events = _events_clean(events)
    refused = AlertRecipientRefused(f"{email} already gets alerts in this workspace: change their alerts instead.")
    if NotificationRecipient.objects.filter(email=email).exists():
        raise refused
    try:
        with transaction.atomic():  # a second save of the same address at the same moment
            recipient = NotificationRecipient.objects.create(
                email=email, **{event: event in events for event in EVENTS}
            )
    except IntegrityError as error:
        raise refused from error
    recipient.flows.set(flows)
    after = _view(recipient)
    audit_record(
        actor=actor,
        action="alert.recipient_added",
        target_type="alert_recipient",
        target_id=recipient.pk,
        summary=f"{email} is alerted on {_describe(after)}",
        after=after,
    )
    return recipient


@transaction.atomic
def alert_recipient_update(
    *, recipient: NotificationRecipient, events: Iterable[str], flows: Iterable[Flow] = (), actor=None
) -> NotificationRecipient:
    """Change which events reach a recipient and for which flows; nothing is recorded when nothing changed."""
    events = _events_clean(events)
    before = _view(recipient)
    for event in EVENTS:
        setattr(recipient, event, event in events)
    recipient.save(update_fields=list(EVENTS))
    recipient.flows.set(flows)
    after = _view(recipient)
    if after != before:
        audit_record(
            actor=actor,
            action="alert.recipient_changed",
            target_type="alert_recipient",
            target_id=recipient.pk,
            summary=f"{recipient.email} is now alerted on {_describe(after)}",
            before=before,
            after=after,
        )
    return recipient


@transaction.atomic
def alert_recipient_remove(*, recipient: NotificationRecipient, actor=None) -> None:
    before = _view(recipient)
    audit_record(
        actor=actor,
        action="alert.recipient_removed",
        target_type="alert_recipient",
        target_id=recipient.pk,
        summary=f"{recipient.email} no longer gets alerts",
        before=before,
    )
    recipient.delete()
