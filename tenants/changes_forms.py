"""The forms of change requests: a client's request, the partner's quote and delivery, a decision, a comment."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.core.exceptions import ValidationError

from tenants.models import ChangeRequest
from tenants.templatetags.console import money


class ChangeRequestForm(forms.Form):
    kind = forms.ChoiceField(label="What kind of change", choices=ChangeRequest.Kind.choices)
    title = forms.CharField(
        label="Title", max_length=120, help_text="A few words, e.g. “Send approved expenses to NetSuite”."
    )
    description = forms.CharField(
        label="What you need",
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 6}),
        help_text="What should happen, in which systems, and by when if it matters.",
    )

    def clean_title(self):
        return self.cleaned_data["title"].strip()


class QuoteForm(forms.Form):
    """Hours at the plan's hourly rate, or a fixed fee; a plan without a rate quotes fixed fees only."""

    basis = forms.ChoiceField(
        label="Price it as",
        choices=[("hours", "Hours at the plan's rate"), ("fee", "A fixed fee")],
        widget=forms.RadioSelect,
        initial="hours",
    )
    hours = forms.DecimalField(label="Hours", required=False, max_digits=7, decimal_places=2, min_value=Decimal("0.01"))
    fee = forms.DecimalField(label="Fixed fee", required=False, max_digits=12, decimal_places=2, min_value=0)
    note = forms.CharField(
        label="Note for the client",
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="What the price covers and when you can deliver.",
    )

    def __init__(self, *args, plan, **kwargs):
        super().__init__(*args, **kwargs)
        self.plan = plan
        currency = plan.currency if plan else ""
        self.fields["fee"].label = f"Fixed fee ({currency})" if currency else "Fixed fee"
        for name in ("hours", "fee"):
            self.fields[name].widget.attrs.update({"step": "0.01", "inputmode": "decimal", "min": "0"})
        if plan is None or plan.hourly_rate <= 0:
            # No hourly rate on the plan: a fixed fee is the only way to price a change.
            del self.fields["basis"]
            del self.fields["hours"]
        else:
            rate = money(plan.hourly_rate, currency)
            self.fields["hours"].help_text = f"At {rate} an hour, the {plan.name} plan's rate."

    @property
    def by_hours(self) -> bool:
        return "hours" in self.fields

    def clean(self):
        cleaned = super().clean()
        basis = cleaned.get("basis", "fee")
        if basis == "hours":
            if cleaned.get("hours") is None and "hours" not in self.errors:
                self.add_error("hours", "How many hours?")
            cleaned["fee"] = None
        else:
            if cleaned.get("fee") is None and "fee" not in self.errors:
                self.add_error("fee", "What is the fee?")
            cleaned["hours"] = None
        return cleaned


class DecisionForm(forms.Form):
    """Approve or decline: names the quote the client read, so a quote changed meanwhile is not decided blind."""

    quote_version = forms.IntegerField(widget=forms.HiddenInput, min_value=0)
    reason = forms.CharField(
        label="If you decline, why (optional)",
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )


class DeliverForm(forms.Form):
    note = forms.CharField(
        label="What was done (optional)", required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2})
    )


class CommentForm(forms.Form):
    body = forms.CharField(label="Message", max_length=4000, widget=forms.Textarea(attrs={"rows": 3}))

    def clean_body(self):
        body = self.cleaned_data["body"].strip()
        if not body:
            raise ValidationError("Write a message first.")
        return body
