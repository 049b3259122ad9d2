from django import forms
from django.core.exceptions import ValidationError

from tenants.models import Partner, PartnerDomain, slug_validator


class PartnerCreateForm(forms.Form):
    name = forms.CharField(max_length=120, label="Partner name")
    slug = forms.CharField(max_length=40, validators=[slug_validator], help_text="Short id, e.g. northwind")
    domain = forms.CharField(max_length=253, label="Portal host", help_text="e.g. connect.northwind.com")
    admin_email = forms.EmailField(label="First partner admin's email")

    def clean_slug(self):
        slug = self.cleaned_data["slug"]
        if Partner.objects.filter(slug=slug).exists():
            raise ValidationError("A partner already uses this id.")
        return slug

    def clean_domain(self):
        domain = self.cleaned_data["domain"].strip().lower()
        if PartnerDomain.objects.filter(domain=domain).exists():
            raise ValidationError("This host already serves a partner.")
        return domain
