"""Forms of single sign-on and sign-in security: the password form that sends SSO domains to their IdP,
email discovery, an identity provider's settings, its domains, and a workspace's two-factor rule."""

from __future__ import annotations

import re

from allauth.account.forms import LoginForm as AllauthLoginForm
from django import forms
from django.core.exceptions import ValidationError

from tenants.forms import HOSTNAME
from tenants.models import Role, SsoConnection
from tenants.sso_selectors import sso_required_for_email
from tenants.sso_services import roles_for_scope

MAX_GROUP_RULES = 50


class LoginForm(AllauthLoginForm):
    def clean(self):
        connection = sso_required_for_email(self.cleaned_data.get("login") or "")
        if connection is not None:
            # Refused before the password is even checked: it counts against nobody's rate limit.
            domain = self.cleaned_data["login"].rpartition("@")[2]
            raise ValidationError(
                f"People at {domain} sign in with single sign-on through {connection.name}, not a password: "
                "use “Continue with single sign-on” below the form."
            )
        return super().clean()


class SsoDiscoverForm(forms.Form):
    email = forms.EmailField(label="Work email", max_length=254)


class SsoConnectionForm(forms.ModelForm):
    server_url = forms.URLField(
        label="Issuer URL",
        max_length=300,
        assume_scheme="https",
        help_text="The issuer, e.g. https://login.microsoftonline.com/<tenant>/v2.0: its "
        "/.well-known/openid-configuration is read from there.",
    )
    client_secret = forms.CharField(
        label="Client secret",
        required=False,
        max_length=500,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Stored encrypted and never shown again. Leave blank to keep the one saved.",
    )
    group_rules = forms.CharField(
        label="Groups to roles",
        required=False,
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 4, "placeholder": "Finance = Client finance"}),
        help_text="One per line: a group your identity provider sends in its “groups” claim, “=”, then a role. "
        "People in none of these groups get the default role.",
    )

    class Meta:
        model = SsoConnection
        fields = ["name", "server_url", "oauth_client_id", "default_role", "sso_required", "is_active"]
        labels = {"is_active": "Offer this sign-on"}

    def __init__(self, *args, client=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.roles = roles_for_scope(client)
        self.fields["default_role"].choices = [(role.value, role.label) for role in self.roles]
        self.fields["default_role"].help_text = "The role of someone who signs in for the first time."
        if self.instance.pk:
            self.fields["group_rules"].initial = "\n".join(
                f"{group} = {Role(role).label}" for group, role in self.instance.group_roles.items()
            )
        else:
            self.fields["client_secret"].required = True
            self.fields["client_secret"].help_text = "Stored encrypted and never shown again."

    def clean_server_url(self):
        url = self.cleaned_data["server_url"].strip()
        if not url.startswith(("https://", "http://")):
            raise ValidationError("Enter the issuer's address, starting with https://.")
        return url.removesuffix("/.well-known/openid-configuration").rstrip("/")

    def clean_group_rules(self):
        by_label = {role.label.lower(): role.value for role in self.roles} | {
            role.value: role.value for role in self.roles
        }
        mapping: dict[str, str] = {}
        lines = [line.strip() for line in self.cleaned_data["group_rules"].splitlines() if line.strip()]
        if len(lines) > MAX_GROUP_RULES:
            raise ValidationError(f"Up to {MAX_GROUP_RULES} groups can be mapped.")
        for number, line in enumerate(lines, start=1):
            group, sep, role = (part.strip() for part in line.partition("="))
            if not sep or not group or not role:
                raise ValidationError(f"Line {number} (“{line[:60]}”) needs a group, “=”, then a role.")
            if role.lower() not in by_label:
                names = ", ".join(role.label for role in self.roles)
                raise ValidationError(f"Line {number}: “{role[:40]}” is not a role here. Choose one of: {names}.")
            mapping[group[:200]] = by_label[role.lower()]
        return mapping


class SsoDomainForm(forms.Form):
    domain = forms.CharField(
        max_length=253,
        label="Email domain",
        help_text="The part of your people's addresses after the @, e.g. contoso.com.",
        widget=forms.TextInput(attrs={"placeholder": "contoso.com", "autocomplete": "off"}),
    )

    def clean_domain(self):
        domain = re.sub(r"^.*@", "", self.cleaned_data["domain"].strip().lower()).rstrip(".")
        if not HOSTNAME.match(domain):
            raise ValidationError("Enter just the domain of your email addresses, such as contoso.com.")
        return domain


class WorkspaceMfaForm(forms.Form):
    requires_mfa = forms.BooleanField(
        label="Everyone in this workspace signs in with a second factor",
        required=False,
        help_text="Applies from each person's next sign-in. Your partner may ask it of admins already.",
    )
