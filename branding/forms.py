"""The brand editor's form: every field a partner types, validated before it can reach a page or an email."""

from __future__ import annotations

import re

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator

from branding.images import FAVICON_RULES, LOGO_RULES, ImageRefused, image_check
from branding.models import BRAND_TEXT_FIELDS, Brand
from branding.selectors import HEX_COLOUR, contrast_checks, darker_shade

# Control characters would let a name break an email header or a CSV row.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
LINE_BREAKS = re.compile(r"[\r\n]")


def single_line(value: str) -> str:
    if CONTROL_CHARACTERS.search(value) or LINE_BREAKS.search(value):
        raise ValidationError("Use a single line of text.")
    return value


def no_control_characters(value: str) -> str:
    if CONTROL_CHARACTERS.search(value):
        raise ValidationError("Remove the invisible control characters from this text.")
    return value


class ColourInput(forms.TextInput):
    input_type = "color"


class BrandForm(forms.ModelForm):
    logo = forms.FileField(
        required=False,
        label="Logo",
        help_text="Shown in the top bar, on the login page and in emails. " + LOGO_RULES.help_text,
        widget=forms.FileInput(attrs={"accept": "image/png,image/jpeg,image/webp"}),
    )
    favicon = forms.FileField(
        required=False,
        label="Favicon",
        help_text="The browser tab icon; the logo is used when there is none. " + FAVICON_RULES.help_text,
        widget=forms.FileInput(attrs={"accept": "image/png,image/jpeg,image/webp"}),
    )
    support_url = forms.URLField(
        required=False,
        max_length=200,
        assume_scheme="https",
        label="Support page",
        help_text="A page on your site where clients get help (https://…).",
    )
    logo_clear = forms.BooleanField(required=False, label="Remove the logo")
    favicon_clear = forms.BooleanField(required=False, label="Remove the favicon")

    class Meta:
        model = Brand
        fields = list(BRAND_TEXT_FIELDS)
        labels = {
            "product_name": "Product name",
            "primary_color": "Primary colour",
            "accent_color": "Accent colour",
            "support_email": "Support email",
            "support_url": "Support page",
            "login_message": "Login message",
            "email_sender_name": "Email sender name",
            "email_footer": "Email footer",
        }
        help_texts = {
            "product_name": "What your clients call the portal, e.g. “Northwind Connect”.",
            "primary_color": "Top bar, buttons and links. Must reach 4.5:1 contrast on white.",
            "accent_color": "Avatars and highlights.",
            "support_email": "Shown on every page and used as the reply-to address of emails.",
            "support_url": "A page on your site where clients get help (https://…).",
            "login_message": "One or two sentences above the sign-in form.",
            "email_sender_name": "The name emails come from; the product name when empty.",
            "email_footer": "Closing lines of every email: your company, address, a note.",
        }
        widgets = {
            "primary_color": ColourInput(),
            "accent_color": ColourInput(),
            "login_message": forms.Textarea(attrs={"rows": 2}),
            "email_footer": forms.Textarea(attrs={"rows": 3}),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.typed_colours: dict[str, str] = {}
        url_field = self.fields["support_url"]
        url_field.validators = [v for v in url_field.validators if not isinstance(v, URLValidator)]
        url_field.validators.append(URLValidator(schemes=["https", "http"]))
        self.fields["support_url"].widget.attrs["placeholder"] = "https://"
        self.fields["support_email"].widget.attrs["placeholder"] = "support@yourcompany.com"

    def clean_product_name(self):
        return single_line(self.cleaned_data["product_name"].strip())

    def clean_email_sender_name(self):
        return single_line(self.cleaned_data["email_sender_name"].strip())

    def clean_login_message(self):
        return single_line(self.cleaned_data["login_message"].strip())

    def clean_email_footer(self):
        return no_control_characters(self.cleaned_data["email_footer"].strip())

    def _clean_colour(self, name: str) -> str:
        value = (self.cleaned_data.get(name) or "").strip()
        if not HEX_COLOUR.match(value):
            raise ValidationError("Use a colour such as #1F6FEB.")
        # Kept for the preview even if the contrast check refuses it: the partner sees why.
        self.typed_colours[name] = value.upper()
        return value.upper()

    def clean_primary_color(self):
        return self._clean_colour("primary_color")

    def clean_accent_color(self):
        return self._clean_colour("accent_color")

    def _clean_image(self, name: str, rules):
        upload = self.cleaned_data.get(name)
        if not upload or not hasattr(upload, "read"):
            return None
        try:
            return image_check(upload, rules)
        except ImageRefused as refused:
            raise ValidationError(refused.message) from refused

    def clean_logo(self):
        return self._clean_image("logo", LOGO_RULES)

    def clean_favicon(self):
        return self._clean_image("favicon", FAVICON_RULES)

    def clean(self):
        cleaned = super().clean()
        primary, accent = cleaned.get("primary_color"), cleaned.get("accent_color")
        if primary and accent:
            for check in contrast_checks(primary, accent):
                if check.blocking:
                    message = f"{check.label}: {check.ratio_label}, below the {check.minimum:g}:1 WCAG AA asks for."
                    if check.field == "primary_color":
                        message += f" A darker shade such as {darker_shade(primary)} keeps your hue and reads well."
                    self.add_error(check.field, message)
        return cleaned

    def preview_brand(self) -> Brand:
        """The brand as it would look with this form's values: valid ones applied, invalid ones as saved."""
        brand = Brand(**{field: getattr(self.instance, field) for field in self.Meta.fields})
        brand.partner_id = self.instance.partner_id
        brand.logo = self.instance.logo
        brand.favicon = self.instance.favicon
        brand.updated_at = self.instance.updated_at
        cleaned = getattr(self, "cleaned_data", {})
        for field in self.Meta.fields:
            if field in cleaned and field not in self.errors:
                setattr(brand, field, cleaned[field])
        for field, colour in self.typed_colours.items():
            setattr(brand, field, colour)
        return brand
