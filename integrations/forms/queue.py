"""The exception queue's forms: its filters and each action on an exception (fix a value, map a code, ignore, assign, comment, set a cost rate)."""

from __future__ import annotations

import re
from decimal import Decimal

from django import forms
from django.core.exceptions import ValidationError

from integrations.forms import one_line
from integrations.models import ValueMap
from integrations.selectors.queue import QUEUE_AGES, QUEUE_SORTS, QUEUE_STATUSES, QueueQuery


class ExceptionFilterForm(forms.Form):
    """The queue's filters, read from the query string. Unknown values fall back to the defaults."""

    q = forms.CharField(required=False, max_length=120, label="Search")
    status = forms.ChoiceField(required=False, choices=list(QUEUE_STATUSES.items()))
    flow = forms.TypedChoiceField(required=False, coerce=int, empty_value=None, label="Flow")
    system = forms.ChoiceField(required=False, label="System")
    error_code = forms.ChoiceField(required=False, label="Error")
    age = forms.ChoiceField(required=False, choices=list(QUEUE_AGES.items()), label="Age")
    assignee = forms.ChoiceField(required=False, label="Assignee")
    sort = forms.ChoiceField(required=False, choices=list(QUEUE_SORTS.items()), label="Sort")

    def __init__(self, data, *, choices: dict, people: list[tuple[int, str]], sla_hours: int | None):
        super().__init__(data)
        self.fields["flow"].choices = [("", "All flows"), *choices["flows"]]
        self.fields["system"].choices = [("", "All systems"), *choices["systems"]]
        codes = choices["error_codes"]
        current = (data or {}).get("error_code")
        if current and current not in dict(codes):
            codes = [*codes, (current, current)]  # a code with no rows left still reads as chosen
        self.fields["error_code"].choices = [("", "All errors"), *codes]
        self.fields["assignee"].choices = [
            ("", "Anyone"),
            ("me", "Assigned to me"),
            ("none", "Unassigned"),
            *[(str(pk), email) for pk, email in people],
        ]
        if not sla_hours:
            self.fields["age"].choices = [c for c in self.fields["age"].choices if c[0] != "sla"]

    def query(self) -> QueueQuery:
        self.is_valid()  # a stale link (a removed flow) keeps its other, valid filters
        data = self.cleaned_data
        return QueueQuery(
            status=data.get("status") or "open",
            flow=data.get("flow") or None,
            system=data.get("system") or "",
            error_code=data.get("error_code") or "",
            age=data.get("age") or "",
            assignee=data.get("assignee") or "",
            q=(data.get("q") or "").strip(),
            sort=data.get("sort") or "oldest",
        )


class EditFieldForm(forms.Form):
    field = forms.CharField(max_length=200, label="Field", validators=[one_line])
    value = forms.CharField(max_length=500, required=False, label="Correct value", validators=[one_line])

    def clean_field(self):
        field = self.cleaned_data["field"].strip()
        if not re.fullmatch(r"[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)*", field):
            raise ValidationError("Name a field of the record, such as cost_rate_in_cents.")
        return field


class MapValueForm(forms.Form):
    value_map = forms.SlugField(max_length=60, widget=forms.HiddenInput)
    source_value = forms.CharField(max_length=200, widget=forms.HiddenInput)
    target_value = forms.CharField(max_length=200, label="Maps to", validators=[one_line])

    def clean_value_map(self):
        key = self.cleaned_data["value_map"]
        if not ValueMap.objects.filter(key=key).exists():
            raise ValidationError("This value map no longer exists.")
        return key

    def clean_target_value(self):
        value = self.cleaned_data["target_value"].strip()
        if not value:
            raise ValidationError("Say what this value stands for in the target system.")
        return value


class IgnoreForm(forms.Form):
    reason = forms.CharField(
        max_length=300,
        label="Why ignore it?",
        widget=forms.TextInput(attrs={"placeholder": "e.g. internal project, never billed"}),
        validators=[one_line],
    )


class AssignForm(forms.Form):
    assignee = forms.ChoiceField(label="Assign to", required=False)

    def __init__(self, *args, people: list[tuple[int, str]], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["assignee"].choices = [("", "Nobody"), *[(str(pk), email) for pk, email in people]]


class CommentForm(forms.Form):
    body = forms.CharField(max_length=2000, label="Comment", widget=forms.Textarea(attrs={"rows": 3}))


class CostRateForm(forms.Form):
    """A cost rate per hour set by hand for a person the HR system has none for."""

    amount = forms.DecimalField(
        label="Cost rate per hour", min_value=Decimal("0.01"), max_value=Decimal("999999"), decimal_places=2
    )
    currency = forms.RegexField(
        label="Currency",
        regex=r"^[A-Za-z]{3}$",
        initial="USD",
        max_length=3,
        error_messages={"invalid": "Give the currency as a three-letter code such as USD."},
    )
    effective_from = forms.DateField(
        label="From",
        required=False,
        help_text="Leave empty to use it from the person's hire date.",
        widget=forms.DateInput(attrs={"type": "date"}),
    )

    def clean_currency(self):
        return self.cleaned_data["currency"].upper()
