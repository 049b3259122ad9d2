"""The form that creates a key in the partner console or a workspace."""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.utils import timezone

from api.models import CLIENT_FAMILIES, FAMILY_LABELS, PARTNER_FAMILIES, WEBHOOK_EVENTS

EXPIRIES = [("30", "In 30 days"), ("90", "In 90 days"), ("365", "In a year"), ("", "Never")]
LEVELS = [("", "No access"), ("read", "Read"), ("write", "Read and write")]


class ApiKeyForm(forms.Form):
    name = forms.CharField(
        max_length=80, label="Name", help_text="The program that will use it, e.g. “CRM onboarding” or “Service desk”."
    )
    expires = forms.ChoiceField(choices=EXPIRIES, initial="90", label="Expires", required=False)

    def __init__(self, *args, partner_key: bool, **kwargs):
        super().__init__(*args, **kwargs)
        self.families = (PARTNER_FAMILIES + CLIENT_FAMILIES) if partner_key else CLIENT_FAMILIES
        for family in self.families:
            self.fields[f"scope_{family}"] = forms.ChoiceField(
                choices=LEVELS, required=False, label=FAMILY_LABELS[family], initial=""
            )

    def clean_name(self):
        name = " ".join(self.cleaned_data["name"].replace("\x00", "").split())
        if not name:
            raise forms.ValidationError("Name the key after the program that will use it.")
        return name

    def clean(self):
        cleaned = super().clean()
        if not self.scopes():
            raise forms.ValidationError("Give the key access to at least one kind of resource.")
        return cleaned

    def scopes(self) -> list[str]:
        return [
            f"{family}:{self.cleaned_data[f'scope_{family}']}"
            for family in self.families
            if self.cleaned_data.get(f"scope_{family}")
        ]

    def scope_fields(self):
        return [self[f"scope_{family}"] for family in self.families]

    def expires_at(self):
        days = self.cleaned_data.get("expires")
        return timezone.now() + timedelta(days=int(days)) if days else None


class WebhookForm(forms.Form):
    url = forms.URLField(
        max_length=500,
        label="Address",
        assume_scheme="https",
        help_text="Where events are posted, e.g. https://desk.example.com/hooks/portal",
    )
    events = forms.MultipleChoiceField(
        choices=list(WEBHOOK_EVENTS.items()), widget=forms.CheckboxSelectMultiple, label="Events"
    )
