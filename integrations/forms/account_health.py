"""Which CRM account field each delivery figure is written to (integrations.services.account_health)."""

from __future__ import annotations

from django import forms

from connectors.account_fields import AccountField
from integrations.services.account_health import FIGURES

LEAVE_OUT = "-"  # the choice that writes a figure nowhere


class AccountFieldsForm(forms.Form):
    """One choice per figure: the field the flow creates for it, a field of the same kind the CRM has, or none."""

    def __init__(
        self,
        *args,
        defaults: dict[str, str],
        mapped: dict[str, str],
        crm_fields: dict[str, AccountField],
        system: str,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.defaults = defaults
        for figure in FIGURES:
            default = defaults[figure.key]
            choices = [(default, f"{default} (the flow's own field)")]
            choices += sorted(
                (
                    (name, f"{field.label} ({name})")
                    for name, field in crm_fields.items()
                    if field.kind == figure.kind and name != default
                ),
                key=lambda choice: choice[1].lower(),
            )
            current = mapped.get(figure.key, default)
            if current and current not in {value for value, _ in choices}:
                choices.append((current, f"{current} (not in {system} now)"))
            choices.append((LEAVE_OUT, "Don't write this figure"))
            self.fields[figure.key] = forms.ChoiceField(
                label=figure.label,
                choices=choices,
                initial=current or LEAVE_OUT,
                help_text=figure.description,
            )

    def mapping(self) -> dict[str, str]:
        """Figure key -> field name ("" for left out), keeping only the figures not on their default field."""
        chosen = {}
        for figure in FIGURES:
            value = self.cleaned_data[figure.key]
            name = "" if value == LEAVE_OUT else value
            if name != self.defaults[figure.key]:
                chosen[figure.key] = name
        return chosen
