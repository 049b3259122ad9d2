"""Forms of single sign-on and sign-in security: the password form that sends SSO domains to their IdP,
email discovery, an identity provider's settings, its domains, and a workspace's two-factor rule."""

from __future__ import annotations

import re

from allauth.account.forms import LoginForm as AllauthLoginForm
from django import forms
from django.core.exceptions import ValidationError

from tenants.forms import HOSTNAME
from tenants.models import Role, SsoConnection
from tenants.sso_saml import SamlMetadataError, certificate_body, metadata_fetch, metadata_read
from tenants.sso_selectors import sso_required_for_email
from tenants.sso_services import roles_for_scope, sso_secret

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
    protocol = forms.ChoiceField(
        label="Protocol",
        required=False,  # absent: the saved protocol, else OpenID Connect (forms from before SAML)
        choices=SsoConnection.Protocol.choices,
        initial=SsoConnection.Protocol.OIDC,
        widget=forms.RadioSelect,
        help_text="Whichever your identity provider offers for a custom app: both sign people in the same way here.",
    )
    server_url = forms.URLField(
        label="Issuer URL",
        required=False,
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
    saml_metadata_url = forms.URLField(
        label="IdP metadata URL",
        required=False,
        max_length=500,
        assume_scheme="https",
        help_text="Read now, when you save (and again at each save), never at sign-in. Or upload the file below.",
    )
    saml_metadata_file = forms.FileField(
        label="IdP metadata file",
        required=False,
        help_text="The federation metadata XML your identity provider lets you download.",
    )
    saml_entity_id = forms.CharField(
        label="IdP entity ID",
        required=False,
        max_length=500,
        help_text="Without metadata: the identity provider's entity ID (its Issuer).",
    )
    saml_sso_url = forms.URLField(
        label="IdP sign-on URL",
        required=False,
        max_length=500,
        assume_scheme="https",
        help_text="Without metadata: where sign-in requests go (HTTP-Redirect binding).",
    )
    saml_x509cert = forms.CharField(
        label="IdP signing certificate",
        required=False,
        max_length=20000,
        widget=forms.Textarea(attrs={"rows": 4, "placeholder": "-----BEGIN CERTIFICATE-----"}),
        help_text="Without metadata: the certificate the identity provider signs its assertions with (PEM).",
    )
    group_rules = forms.CharField(
        label="Groups to roles",
        required=False,
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 4, "placeholder": "Finance = Client finance"}),
        help_text="One per line: a group your identity provider sends (OpenID Connect: the “groups” claim; SAML: "
        "the groups attribute above), “=”, then a role. People in none of these groups get the default role.",
    )

    class Meta:
        model = SsoConnection
        fields = [
            "name",
            "server_url",
            "oauth_client_id",
            "saml_email_attribute",
            "saml_name_attribute",
            "saml_groups_attribute",
            "default_role",
            "sso_required",
            "is_active",
        ]
        labels = {"is_active": "Offer this sign-on"}
        help_texts = {
            "saml_email_attribute": "The attribute carrying the person's email, e.g. "
            "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress. Blank: the usual names, then an "
            "email-format NameID.",
            "saml_name_attribute": "Optional: the attribute with the person's display name.",
            "saml_groups_attribute": "The attribute listing the person's groups, e.g. "
            "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups.",
        }

    def __init__(self, *args, client=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.roles = roles_for_scope(client)
        self.fields["default_role"].choices = [(role.value, role.label) for role in self.roles]
        self.fields["default_role"].help_text = "The role of someone who signs in for the first time."
        self.fields["oauth_client_id"].required = False
        if self.instance.pk:
            self.fields["protocol"].initial = self.instance.protocol
            self.fields["saml_metadata_url"].initial = self.instance.saml_metadata_url
            self.fields["saml_entity_id"].initial = self.instance.saml_entity_id
            self.fields["saml_sso_url"].initial = self.instance.saml_sso_url
            if self.instance.saml_x509cert:
                self.fields["saml_x509cert"].initial = _pem(self.instance.saml_x509cert)
            self.fields["group_rules"].initial = "\n".join(
                f"{group} = {Role(role).label}" for group, role in self.instance.group_roles.items()
            )
        else:
            self.fields["client_secret"].help_text = "Stored encrypted and never shown again."
        self.has_secret = bool(self.instance.pk and sso_secret(self.instance))

    def clean_server_url(self):
        url = self.cleaned_data["server_url"].strip()
        if url and not url.startswith(("https://", "http://")):
            raise ValidationError("Enter the issuer's address, starting with https://.")
        return url.removesuffix("/.well-known/openid-configuration").rstrip("/")

    def clean_protocol(self):
        return self.cleaned_data["protocol"] or self.instance.protocol or SsoConnection.Protocol.OIDC

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("protocol") == SsoConnection.Protocol.SAML:
            self._clean_saml(cleaned)
        else:
            self._clean_oidc(cleaned)
        return cleaned

    def _clean_oidc(self, cleaned):
        for field, message in (
            ("server_url", "Enter the issuer URL."),
            ("oauth_client_id", "Enter the client ID your identity provider gave the portal."),
        ):
            if not cleaned.get(field) and field not in self.errors:
                self.add_error(field, message)
        if not cleaned.get("client_secret") and not self.has_secret:
            self.add_error("client_secret", "Enter the client secret your identity provider gave the portal.")

    def _clean_saml(self, cleaned):
        """The IdP from its metadata (a file first, else its URL), or from the three values typed by hand."""
        upload = cleaned.get("saml_metadata_file")
        url = cleaned.get("saml_metadata_url")
        try:
            if upload:
                idp = metadata_read(upload.read())
                cleaned["saml_metadata_url"] = ""
            elif url:
                idp = metadata_fetch(url)
            else:
                idp = None
        except SamlMetadataError as error:
            self.add_error("saml_metadata_file" if upload else "saml_metadata_url", str(error))
            return
        if idp is not None:
            cleaned.update(saml_entity_id=idp.entity_id, saml_sso_url=idp.sso_url, saml_x509cert=idp.x509cert)
        else:
            if not cleaned.get("saml_entity_id") and "saml_entity_id" not in self.errors:
                self.add_error(
                    "saml_entity_id", "Enter the identity provider's entity ID, or give its metadata URL or file."
                )
            if not cleaned.get("saml_sso_url") and "saml_sso_url" not in self.errors:
                self.add_error("saml_sso_url", "Enter the identity provider's sign-on URL, or give its metadata.")
            try:
                cleaned["saml_x509cert"] = certificate_body(cleaned.get("saml_x509cert") or "")
            except SamlMetadataError as error:
                self.add_error("saml_x509cert", str(error))
        if cleaned.get("group_rules") and not cleaned.get("saml_groups_attribute"):
            self.add_error("saml_groups_attribute", "Name the attribute that lists groups, to map them to roles.")

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


def _pem(body: str) -> str:
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return "\n".join(["-----BEGIN CERTIFICATE-----", *lines, "-----END CERTIFICATE-----"])


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
