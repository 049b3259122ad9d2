"""Flow forms: install a packaged template, build a flow by hand, add a step, set its schedule."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError

from connectors.registry import CONNECTORS
from integrations.catalog import Template
from integrations.engine.entities import ENTITIES
from integrations.forms import one_line
from integrations.models import Connection, Environment


class TemplateInstallForm(forms.Form):
    """One connection per role the template needs, of a vendor the role accepts."""

    def __init__(self, *args, template: Template, **kwargs):
        super().__init__(*args, **kwargs)
        self.template = template
        for role, (vendors, label) in template.connections.items():
            queryset = Connection.objects.filter(vendor__in=vendors).order_by("name")
            self.fields[role] = forms.ModelChoiceField(
                queryset=queryset,
                label=label,
                empty_label=None if queryset.exists() else "No connection yet",
                help_text=" or ".join(CONNECTORS[v].label if v in CONNECTORS else v for v in vendors),
            )
            self.fields[role].vendors = vendors

    def connections(self) -> dict[str, Connection]:
        return {role: self.cleaned_data[role] for role in self.template.connections}


SCHEDULES = [
    ("", "Only by hand or webhook"),
    ("15", "Every 15 minutes"),
    ("30", "Every 30 minutes"),
    ("60", "Every hour"),
    ("240", "Every 4 hours"),
    ("720", "Twice a day"),
    ("1440", "Every day"),
]


class ScheduleForm(forms.Form):
    schedule_minutes = forms.TypedChoiceField(
        choices=SCHEDULES, coerce=int, empty_value=None, required=False, label="Runs"
    )


TRIGGERS = [
    ("schedule", "On a schedule"),
    ("webhook", "When the source sends a webhook, and on the schedule"),
    ("manual", "Only when someone runs it"),
]


def object_choices(*, write: bool) -> list:
    """Each connection's readable (writable) objects as one optgroup, values "<connection id>:<object>"."""
    groups = []
    for connection in Connection.objects.order_by("-environment", "name"):
        cls = CONNECTORS.get(connection.vendor)
        if cls is None:
            continue
        where = " · Sandbox" if connection.environment == Environment.SANDBOX else ""
        options = [
            (f"{connection.pk}:{spec.name}", f"{spec.label} · {connection.name}{where}")
            for spec in cls.objects.values()
            if (spec.writable if write else spec.readable)
        ]
        if options:
            groups.append((f"{connection.name} ({cls.label}{where})", options))
    return groups


def _connection_object(value: str) -> tuple[Connection, str]:
    pk, _, object_name = (value or "").partition(":")
    connection = Connection.objects.filter(pk=int(pk)).first() if pk.isascii() and pk.isdigit() else None
    if connection is None or not object_name:
        raise ValidationError("Choose one of the listed connections and records.")
    return connection, object_name


class FlowBuildForm(forms.Form):
    """A flow built by hand: where records come from, what they become, where they go, when it runs."""

    name = forms.CharField(
        max_length=120,
        label="Flow name",
        validators=[one_line],
        widget=forms.TextInput(attrs={"placeholder": "e.g. HubSpot companies to NetSuite customers"}),
    )
    source = forms.ChoiceField(label="Read", help_text="The system and the records the flow reads, page by page.")
    entity = forms.ChoiceField(
        label="As",
        help_text="The shape each record takes in your workspace; its fields are what the mapping fills in.",
    )
    target = forms.ChoiceField(
        label="Write to",
        required=False,
        help_text="Optional: you can add targets later, or keep the records in your workspace only.",
    )
    trigger = forms.ChoiceField(choices=TRIGGERS, initial="schedule", label="Starts")
    schedule_minutes = forms.TypedChoiceField(
        choices=SCHEDULES, coerce=int, empty_value=None, required=False, initial="60", label="Runs"
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["source"].choices = [("", "Choose a connection and its records"), *object_choices(write=False)]
        self.fields["target"].choices = [("", "Nowhere yet"), *object_choices(write=True)]
        self.fields["entity"].choices = [("", "Choose a record type"), *((k, s.label) for k, s in ENTITIES.items())]

    def clean_source(self):
        return _connection_object(self.cleaned_data["source"])

    def clean_target(self):
        value = self.cleaned_data.get("target")
        return _connection_object(value) if value else (None, "")

    def clean(self):
        data = super().clean()
        if data.get("trigger") in ("schedule", "webhook") and not data.get("schedule_minutes"):
            self.add_error("schedule_minutes", "Choose how often it runs, or let it run only when someone runs it.")
        return data

    def flow_values(self) -> dict:
        """Keyword arguments for integrations.services.flows.flow_create."""
        data = self.cleaned_data
        (source, source_object), (target, target_object) = data["source"], data["target"]
        return {
            "name": data["name"],
            "source_connection": source,
            "source_object": source_object,
            "entity": data["entity"],
            "target_connection": target,
            "target_object": target_object,
            "trigger": data["trigger"],
            "schedule_minutes": data["schedule_minutes"] if data["trigger"] != "manual" else None,
        }


class FlowStepForm(forms.Form):
    """One more target for a flow: a connection's writable object, and which of the flow's records go there."""

    target = forms.ChoiceField(label="Write to")
    entity = forms.ChoiceField(label="Records")

    def __init__(self, *args, entities: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["target"].choices = [("", "Choose a connection and its records"), *object_choices(write=True)]
        self.fields["entity"].choices = [(e, ENTITIES[e].label) for e in entities if e in ENTITIES]

    def clean_target(self):
        return _connection_object(self.cleaned_data["target"])
