"""Alert forms: which events a flow's people are told of, and who."""

from __future__ import annotations

from django import forms

from integrations.models import Flow


def alert_event_choices(sla_hours: int | None) -> list[tuple[str, str]]:
    """The events a recipient can choose, worded for this workspace's plan."""
    if sla_hours:
        sla = f"Exceptions past the plan's SLA ({sla_hours} h)"
    else:
        sla = "Exceptions past the plan's SLA (no plan yet, so none is sent)"
    return [
        ("on_run_failed", "Run failed"),
        ("on_connection_failed", "Connection failing"),
        ("on_sla_breach", sla),
        ("on_deal_won", "New won deal to staff"),
    ]


class AlertEventsForm(forms.Form):
    """Which events reach a recipient, and for which flows (none ticked: every flow)."""

    events = forms.MultipleChoiceField(
        widget=forms.CheckboxSelectMultiple,
        label="Email when",
        error_messages={"required": "Choose at least one alert, or remove the recipient."},
    )
    flows = forms.ModelMultipleChoiceField(
        queryset=Flow.objects.none(), required=False, widget=forms.CheckboxSelectMultiple, label="For"
    )

    def __init__(self, *args, flows: list[Flow], sla_hours: int | None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["events"].choices = alert_event_choices(sla_hours)
        self.fields["flows"].queryset = Flow.objects.filter(pk__in=[flow.pk for flow in flows]).order_by("name")


class AlertRecipientForm(AlertEventsForm):
    email = forms.EmailField(
        label="Email",
        max_length=254,
        error_messages={"invalid": "Enter a valid email address, such as finance@example.com."},
    )

    field_order = ["email", "events", "flows"]
