"""The partner console's template forms: save a client's flow as a template or a version, rename, deploy."""

from __future__ import annotations

from django import forms
from django_tenants.utils import tenant_context

from branding.forms import no_control_characters, single_line
from integrations.partner_templates.workspace import template_flow_choices, template_value_maps
from tenants.forms import ClientChoiceField
from tenants.models import Client, IntegrationTemplate, IntegrationTemplateVersion, Partner


class AnyKeys(forms.MultipleChoiceField):
    """Keys the caller checks against what it knows, rather than a fixed list of choices."""

    def valid_value(self, value) -> bool:
        return True


class TemplateEditForm(forms.Form):
    """A template's name and what it says it does; clients read both on their Flows page."""

    name = forms.CharField(max_length=120, label="Template name")
    summary = forms.CharField(
        max_length=300,
        required=False,
        label="What it does",
        help_text="Clients read this beside the Install button.",
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    def clean_name(self):
        return single_line(self.cleaned_data["name"].strip())

    def clean_summary(self):
        return " ".join(no_control_characters(self.cleaned_data["summary"]).split())


class TemplateSaveForm(TemplateEditForm):
    """Which client's flow to save: as a new template (name, summary) or as the next version of `template`.

    Once a flow is chosen, `value_maps` are the value maps the version carries (each with
    `entry_count`); a map shown but not ticked in `include_entries` is saved without its entries.
    """

    client = forms.ModelChoiceField(queryset=Client.objects.none(), label="Client", empty_label="Choose a client")
    flow = forms.TypedChoiceField(coerce=int, choices=[], label="Flow")
    notes = forms.CharField(
        max_length=300,
        required=False,
        label="What changed",
        help_text="Shown in the version history, e.g. “Invoices carry the PO number”.",
    )
    # The maps the page showed, so a map not ticked is told from a form that never listed it
    # (which keeps every map's entries, as saving did before the choice existed). A key that is
    # not one of the chosen flow's maps (a page from before the flow changed) is ignored, not refused.
    value_maps_shown = AnyKeys(required=False, widget=forms.MultipleHiddenInput)
    include_entries = AnyKeys(required=False, label="Value maps it carries")
    field_order = ["client", "flow", "name", "summary", "notes", "value_maps_shown", "include_entries"]

    def __init__(self, *args, partner: Partner, template: IntegrationTemplate | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.partner = partner
        self.template = template
        self.fields["client"].queryset = Client.objects.filter(partner=partner).order_by("name")
        if template is not None:
            del self.fields["name"], self.fields["summary"]
        else:
            del self.fields["notes"]
        self.chosen_client = self._chosen_client()
        self.chosen_flow: int | None = None
        self.value_maps: list = []
        self.fields["flow"].choices = self._flow_choices()
        self.fields["include_entries"].initial = [value_map.key for value_map in self.value_maps]

    def _chosen_client(self) -> Client | None:
        raw = self.data.get("client") if self.is_bound else self.initial.get("client")
        try:
            return self.fields["client"].queryset.filter(pk=int(getattr(raw, "pk", raw))).first() if raw else None
        except (TypeError, ValueError):
            return None

    def _flow_choices(self) -> list[tuple]:
        """The client's flows; also picks the chosen one (the first, as the select shows it, if none) and its maps."""
        if self.chosen_client is None:
            return []
        raw = self.data.get("flow") if self.is_bound else self.initial.get("flow")
        with tenant_context(self.chosen_client):
            flows = template_flow_choices()
            chosen = next((flow for flow in flows if str(flow.pk) == str(raw)), flows[0] if flows else None)
            if chosen is not None:
                self.chosen_flow = chosen.pk
                self.value_maps = template_value_maps(flow=chosen)
            return [(flow.pk, f"{flow.name} · reads {flow.source_connection.name}") for flow in flows]

    @property
    def included_keys(self) -> set[str]:
        """Keys of the maps whose entries are ticked: all of them until the form is submitted."""
        return set(self["include_entries"].value() or [])

    @property
    def without_entries(self) -> set[str]:
        """The chosen flow's value maps to save empty: shown on the page and not ticked."""
        data, current = self.cleaned_data, {value_map.key for value_map in self.value_maps}
        return (set(data.get("value_maps_shown") or []) & current) - set(data.get("include_entries") or [])

    def clean_notes(self):
        return single_line(self.cleaned_data["notes"].strip())


class TemplateDeployForm(forms.Form):
    version = forms.ModelChoiceField(
        queryset=IntegrationTemplateVersion.objects.none(), empty_label=None, label="Version"
    )
    clients = ClientChoiceField(queryset=Client.objects.none(), label="Clients")

    def __init__(self, *args, template: IntegrationTemplate, states: dict[int, str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.states = states or {}
        self.fields["version"].queryset = template.versions.order_by("-number")
        self.fields["version"].label_from_instance = lambda version: (
            f"v{version.number}" + (f" · {version.notes}" if version.notes else "")
        )
        self.fields["clients"].queryset = Client.objects.filter(partner=template.partner_id).order_by("name")

    def client_choices(self) -> list[tuple]:
        """Each client checkbox with what the client has of this template now ("runs v1", "offered v2" or "")."""
        return [(choice, self.states.get(choice.data["value"].value, "")) for choice in self["clients"]]
