"""Connection forms: one field per credential the vendor's connector asks for, rename, rotate credentials."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError

from connectors.base import FormField
from connectors.registry import CONNECTORS
from integrations.forms import one_line
from integrations.models import Connection, Environment


def _multiline_widget() -> forms.Textarea:
    return forms.Textarea(attrs={"rows": 4, "autocomplete": "off", "spellcheck": "false", "class": "mono"})


def _credential_field(spec: FormField, *, rotating: bool) -> forms.Field:
    help_text = spec.help
    if spec.secret:
        widget = (
            _multiline_widget()
            if spec.multiline
            else forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"})
        )
        if rotating:
            help_text = (help_text + " " if help_text else "") + "Leave blank to keep the stored value."
        return forms.CharField(
            label=spec.label, required=spec.required and not rotating, widget=widget, help_text=help_text, strip=True
        )
    if spec.multiline:  # e.g. a PEM certificate that is not secret: shown again when credentials are rotated
        return forms.CharField(
            label=spec.label, required=spec.required, widget=_multiline_widget(), help_text=help_text, strip=True
        )
    field_class = {"url": forms.URLField, "email": forms.EmailField}.get(spec.kind, forms.CharField)
    options = {"assume_scheme": "https"} if spec.kind == "url" else {}
    field = field_class(label=spec.label, required=spec.required and not rotating, help_text=help_text, **options)
    field.validators.append(one_line)
    return field


class ConnectionForm(forms.Form):
    """A connector's own fields (connectors.*.form_fields) under a name and base URL."""

    name = forms.CharField(max_length=120, label="Connection name", validators=[one_line])
    base_url = forms.URLField(max_length=300, label="Base URL", assume_scheme="https")
    environment = forms.ChoiceField(
        choices=Environment.choices,
        initial=Environment.PRODUCTION,
        required=False,  # left out, a connection is a Production one, as every connection was before
        label="Environment",
        help_text="Sandbox connections are for building and testing flows; Production ones for the real books.",
    )

    def __init__(self, *args, vendor: str, product_name: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        self.vendor = vendor
        self.connector = CONNECTORS[vendor]
        self.specs = self.connector.form_fields()
        self.fields["name"].initial = self.connector.label
        for spec in self.specs:
            self.fields[f"cred_{spec.name}"] = _credential_field(spec, rotating=False)
            if spec.initial:
                # What the portal calls itself (the partner's brand), never the platform behind it.
                self.fields[f"cred_{spec.name}"].initial = spec.initial.replace("{product_name}", product_name)

    def clean_environment(self):
        return self.cleaned_data.get("environment") or Environment.PRODUCTION

    def credentials(self) -> dict[str, str]:
        return {spec.name: self.cleaned_data.get(f"cred_{spec.name}") or "" for spec in self.specs}

    def credential_fields(self):
        return [self[f"cred_{spec.name}"] for spec in self.specs]


class RenameConnectionForm(forms.Form):
    name = forms.CharField(max_length=120, label="Connection name", validators=[one_line])


class RotateCredentialsForm(forms.Form):
    """New credentials for an existing connection: blank secret fields keep what is stored."""

    def __init__(self, *args, connection: Connection, current: dict[str, str], **kwargs):
        super().__init__(*args, **kwargs)
        self.specs = CONNECTORS[connection.vendor].form_fields()
        for spec in self.specs:
            field = _credential_field(spec, rotating=True)
            if not spec.secret:
                field.initial = current.get(spec.name, "")
            self.fields[f"cred_{spec.name}"] = field

    def credentials(self) -> dict[str, str]:
        return {spec.name: self.cleaned_data.get(f"cred_{spec.name}") or "" for spec in self.specs}

    def clean(self):
        data = super().clean()
        if not any(data.get(f"cred_{spec.name}") for spec in self.specs if spec.secret):
            secret = next((spec for spec in self.specs if spec.secret), None)
            if secret is not None:
                raise ValidationError(f"Enter the new {secret.label.lower()} to rotate the credentials.")
        return data
