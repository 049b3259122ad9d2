"""Forms of the platform operator console and the partner console."""

from __future__ import annotations

import re
from decimal import Decimal

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.utils.text import slugify

from branding.forms import single_line
from connectors.registry import CONNECTORS
from portal.audit_log import AuditFilterForm
from tenants.models import (
    PLAN_FIELDS,
    Client,
    Membership,
    MfaPolicy,
    Partner,
    PartnerDomain,
    Plan,
    Role,
    slug_validator,
)
from tenants.plans import system_label


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


# --- Partner console ---------------------------------------------------------------------------

CURRENCIES = [
    ("USD", "USD · US dollar"),
    ("EUR", "EUR · Euro"),
    ("GBP", "GBP · Pound sterling"),
    ("CAD", "CAD · Canadian dollar"),
    ("AUD", "AUD · Australian dollar"),
    ("NZD", "NZD · New Zealand dollar"),
    ("CHF", "CHF · Swiss franc"),
    ("SEK", "SEK · Swedish krona"),
    ("NOK", "NOK · Norwegian krone"),
    ("DKK", "DKK · Danish krone"),
    ("SGD", "SGD · Singapore dollar"),
    ("INR", "INR · Indian rupee"),
    ("ZAR", "ZAR · South African rand"),
]


class PlanForm(forms.ModelForm):
    currency = forms.ChoiceField(choices=CURRENCIES, initial="USD")
    systems_scope = forms.ChoiceField(
        label="Systems clients may connect",
        choices=[
            ("every", "Every system, within the connection limit"),
            ("chosen", "Only the systems ticked below, with how many of each"),
        ],
        widget=forms.RadioSelect,
        required=False,
    )

    class Meta:
        model = Plan
        # included_systems is edited as a tick and a number per system (clean() puts it together).
        fields = [name for name in PLAN_FIELDS if name != "included_systems"]
        labels = {
            "name": "Plan name",
            "monthly_price": "Monthly price",
            "included_records": "Synced records included per month",
            "overage_per_1000": "Overage price per 1,000 records",
            "sandbox_billing": "Records synced in Sandbox",
            "sandbox_per_1000": "Sandbox price per 1,000 records",
            "hourly_rate": "Hourly rate for change requests",
            "max_connections": "Connections",
            "max_flows": "Flows",
            "min_sync_interval_minutes": "Shortest sync interval (minutes)",
            "sla_support_hours": "Support response (hours)",
            "sla_resolution_hours": "Exception resolution (hours)",
            "sla_freshness_hours": "Data freshness (hours)",
        }
        help_texts = {
            "name": "What clients see, e.g. “Essentials”.",
            "included_records": "Records above this are billed as overage.",
            "overage_per_1000": "Charged pro rata per record above the included volume.",
            "sandbox_billing": "Sandbox runs never use the included records; bill them on a line of their own, or not.",
            "sandbox_per_1000": "Used only when Sandbox records are billed separately.",
            "hourly_rate": "Change requests are quoted in hours at this rate; 0: each as a fixed fee.",
            "max_connections": "Most connected systems a client may have.",
            "max_flows": "Most flows a client may have.",
            "min_sync_interval_minutes": "Schedules cannot run more often than this.",
            "sla_support_hours": "How fast your team answers a support request.",
            "sla_resolution_hours": "How long an open exception may wait before it breaches the SLA.",
            "sla_freshness_hours": "How old the last successful sync may be before data counts as stale.",
        }

    FIELDSETS = [
        ("Price", ["name", "monthly_price", "currency", "included_records", "overage_per_1000", "hourly_rate"]),
        ("Sandbox", ["sandbox_billing", "sandbox_per_1000"]),
        ("Limits", ["max_connections", "max_flows", "min_sync_interval_minutes"]),
        ("Service levels", ["sla_support_hours", "sla_resolution_hours", "sla_freshness_hours"]),
    ]

    def __init__(self, *args, partner, **kwargs):
        self.partner = partner
        super().__init__(*args, **kwargs)
        for name in ("monthly_price", "overage_per_1000", "sandbox_per_1000", "hourly_rate"):
            self.fields[name].min_value = 0
            self.fields[name].widget.attrs.update({"min": "0", "step": "0.01", "inputmode": "decimal"})
        # Left out of a submission (a plan saved before Sandbox billing existed): not billed, at no price.
        self.fields["sandbox_billing"].required = False
        self.fields["sandbox_per_1000"].required = False
        self.fields["hourly_rate"].required = False  # left out (an older form): fixed fees
        for name in ("min_sync_interval_minutes", "sla_support_hours", "sla_resolution_hours", "sla_freshness_hours"):
            self.fields[name].validators.append(MinValueValidator(1))
            self.fields[name].widget.attrs["min"] = "1"
        if self.instance.pk is None and not self.is_bound:
            self.initial.setdefault("currency", "USD")
        included = self.instance.included_systems or {}
        self.initial.setdefault("systems_scope", "chosen" if included else "every")
        for vendor in CONNECTORS:
            tick = forms.BooleanField(required=False, label=system_label(vendor))
            count = forms.IntegerField(required=False, min_value=1, max_value=999, label="Connections")
            count.widget.attrs.update({"min": "1", "max": "999", "class": "input-count"})
            self.fields[f"system_{vendor}"] = tick
            self.fields[f"system_{vendor}_count"] = count
            self.initial.setdefault(f"system_{vendor}", vendor in included)
            self.initial.setdefault(f"system_{vendor}_count", included.get(vendor, 1))

    @property
    def fieldsets(self):
        return [(legend, [self[name] for name in names]) for legend, names in self.FIELDSETS]

    @property
    def system_groups(self):
        """The systems by kind (CRM, ERP...), each with its tick and its number of connections."""
        groups: dict[str, list] = {}
        for vendor, cls in CONNECTORS.items():
            groups.setdefault(cls.category, []).append(
                {"vendor": vendor, "tick": self[f"system_{vendor}"], "count": self[f"system_{vendor}_count"]}
            )
        return [(SYSTEM_KINDS.get(kind, kind), groups[kind]) for kind in SYSTEM_KINDS if kind in groups]

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("systems_scope") != "chosen":  # left out (an older form): every system, as before
            cleaned["included_systems"] = {}
            return cleaned
        included = {}
        for vendor in CONNECTORS:
            if not cleaned.get(f"system_{vendor}"):
                continue
            count = cleaned.get(f"system_{vendor}_count")
            if count is None:
                if f"system_{vendor}_count" not in self.errors:
                    self.add_error(f"system_{vendor}_count", f"How many {system_label(vendor)} connections?")
                continue
            included[vendor] = count
        if not included and not any(name.startswith("system_") for name in self.errors):
            self.add_error("systems_scope", "Tick at least one system, or let clients connect every system.")
        cleaned["included_systems"] = included
        return cleaned

    def clean_name(self):
        name = single_line(self.cleaned_data["name"].strip())
        taken = Plan.objects.filter(partner=self.partner, name__iexact=name).exclude(pk=self.instance.pk)
        if taken.exists():
            raise ValidationError("You already have a plan with this name.")
        return name

    def clean_monthly_price(self):
        price = self.cleaned_data["monthly_price"]
        if price < 0:
            raise ValidationError("A price cannot be negative.")
        return price

    def clean_overage_per_1000(self):
        price = self.cleaned_data["overage_per_1000"]
        if price < 0:
            raise ValidationError("A price cannot be negative.")
        return price

    def clean_sandbox_billing(self):
        return self.cleaned_data.get("sandbox_billing") or Plan.SandboxBilling.FREE

    def clean_sandbox_per_1000(self):
        price = self.cleaned_data.get("sandbox_per_1000")
        if price is None:
            return Decimal("0.00")
        if price < 0:
            raise ValidationError("A price cannot be negative.")
        return price

    def clean_hourly_rate(self):
        rate = self.cleaned_data.get("hourly_rate")
        if rate is None:
            return Decimal("0.00")
        if rate < 0:
            raise ValidationError("A rate cannot be negative.")
        return rate


# The kinds of system, in the order the catalogue shows them.
SYSTEM_KINDS = {
    "crm": "CRM",
    "erp": "ERP",
    "psa": "PSA",
    "hr": "HR and payroll",
    "ticketing": "Collaboration and ticketing",
}


class ClientCreateForm(forms.Form):
    name = forms.CharField(max_length=120, label="Client name", help_text="The firm's name, e.g. Contoso Engineering.")
    slug = forms.CharField(
        max_length=40,
        required=False,
        label="Workspace address",
        help_text="Lowercase letters, digits and dashes; the workspace lives at /c/<address>/. From the name if empty.",
    )
    plan = forms.ModelChoiceField(queryset=Plan.objects.none(), empty_label=None)
    admin_email = forms.EmailField(
        label="Client admin's email", help_text="They get an invitation in your brand to set a password."
    )
    admin_name = forms.CharField(max_length=150, required=False, label="Client admin's name")

    def __init__(self, *args, partner, **kwargs):
        self.partner = partner
        super().__init__(*args, **kwargs)
        self.fields["plan"].queryset = Plan.objects.filter(partner=partner).order_by("monthly_price", "name")
        self.fields["slug"].widget.attrs.update({"pattern": "[a-z0-9-]{1,40}", "autocomplete": "off"})

    def clean_name(self):
        return single_line(self.cleaned_data["name"].strip())

    def clean_admin_name(self):
        return single_line(self.cleaned_data["admin_name"].strip())

    def clean(self):
        cleaned = super().clean()
        if "name" not in cleaned or "slug" in self.errors:
            return cleaned
        slug = (cleaned.get("slug") or "").strip().lower() or slugify(cleaned["name"])[:40].strip("-")
        try:
            slug_validator(slug)
        except ValidationError:
            self.add_error("slug", "Use 1-40 lowercase letters, digits or dashes (not starting or ending with one).")
            return cleaned
        from tenants.services import schema_name_for

        if Client.objects.filter(partner=self.partner, slug=slug).exists():
            self.add_error("slug", f"Another client already uses /c/{slug}/; choose another address.")
        elif Client.objects.filter(schema_name=schema_name_for(self.partner, slug)).exists():
            self.add_error("slug", "This address is too close to an existing workspace's; choose another.")
        cleaned["slug"] = slug
        return cleaned


class ClientPlanForm(forms.Form):
    plan = forms.ModelChoiceField(queryset=Plan.objects.none(), empty_label=None, label="Plan")

    def __init__(self, *args, partner, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["plan"].queryset = Plan.objects.filter(partner=partner).order_by("monthly_price", "name")


class ClientChoiceField(forms.ModelMultipleChoiceField):
    widget = forms.CheckboxSelectMultiple

    def label_from_instance(self, obj):
        return obj.name


class StaffInviteForm(forms.Form):
    email = forms.EmailField(label="Email")
    full_name = forms.CharField(max_length=150, required=False, label="Name")
    role = forms.ChoiceField(
        choices=[
            (Role.PARTNER_STAFF, "Partner staff: works on the clients assigned below"),
            (Role.PARTNER_ADMIN, "Partner admin: everything, every client"),
        ],
        initial=Role.PARTNER_STAFF,
        widget=forms.RadioSelect,
    )
    clients = ClientChoiceField(queryset=Client.objects.none(), required=False, label="Assigned clients")

    def __init__(self, *args, partner, **kwargs):
        self.partner = partner
        super().__init__(*args, **kwargs)
        self.fields["clients"].queryset = Client.objects.filter(partner=partner).order_by("name")

    def clean_email(self):
        email = self.cleaned_data["email"].strip().lower()
        if Membership.objects.filter(partner=self.partner, user__email__iexact=email).exists():
            raise ValidationError("This person is already on your team; change their clients in the list.")
        return email

    def clean_full_name(self):
        return single_line(self.cleaned_data["full_name"].strip())


class MfaPolicyForm(forms.Form):
    mfa_policy = forms.ChoiceField(choices=MfaPolicy.choices, widget=forms.RadioSelect, label="Two-factor sign-in")


class StaffAssignForm(forms.Form):
    clients = ClientChoiceField(queryset=Client.objects.none(), required=False, label="Assigned clients")

    def __init__(self, *args, partner, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["clients"].queryset = Client.objects.filter(partner=partner).order_by("name")


HOSTNAME = re.compile(r"^(?=.{4,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]$")
MAX_DOMAINS_PER_PARTNER = 10


class DomainAddForm(forms.Form):
    domain = forms.CharField(
        max_length=253,
        label="Custom domain",
        help_text="A host name you control, e.g. connect.yourcompany.com.",
        widget=forms.TextInput(attrs={"placeholder": "connect.yourcompany.com", "autocomplete": "off"}),
    )

    def __init__(self, *args, partner, **kwargs):
        self.partner = partner
        super().__init__(*args, **kwargs)

    def clean_domain(self):
        raw = self.cleaned_data["domain"].strip().lower()
        domain = re.sub(r"^https?://", "", raw).rstrip("/").rstrip(".")
        if not HOSTNAME.match(domain):
            raise ValidationError("Enter just a host name such as connect.yourcompany.com: no https://, port or path.")
        if domain in settings.PLATFORM_HOSTS:
            raise ValidationError("This host belongs to the platform.")
        if PartnerDomain.objects.filter(domain=domain).exists():
            raise ValidationError("This domain is already in use.")
        if PartnerDomain.objects.filter(partner=self.partner).count() >= MAX_DOMAINS_PER_PARTNER:
            raise ValidationError(f"A partner can have up to {MAX_DOMAINS_PER_PARTNER} domains; remove one first.")
        return domain


class PartnerAuditFilterForm(AuditFilterForm):
    """The partner audit log's filters."""

    LABELS = {
        "brand": "Brand",
        "change_request": "Change requests",
        "client": "Clients",
        "domain": "Domains",
        "partner": "Partner",
        "plan": "Plans",
        "security": "Two-factor sign-in",
        "sso": "Single sign-on",
        "team": "Team",
    }


TERMS = [(1, "1 month"), (3, "3 months"), (6, "6 months"), (12, "12 months"), (24, "24 months"), (36, "36 months")]


class SubscriptionForm(forms.Form):
    """A client's subscription: its current term and price, and what happens at the renewal."""

    starts_on = forms.DateField(
        label="Current term starts", widget=forms.DateInput(attrs={"type": "date"}), help_text="The first day billed."
    )
    term_months = forms.TypedChoiceField(
        label="Term", choices=TERMS, coerce=int, initial=12, help_text="The renewal date is the term's end."
    )
    monthly_price = forms.DecimalField(
        label="Monthly price", max_digits=12, decimal_places=2, min_value=0, help_text="The price of the current term."
    )
    auto_renew = forms.BooleanField(
        label="Renews automatically",
        required=False,
        initial=True,
        help_text="Unticked, the subscription ends at the renewal date and is no longer billed.",
    )
    renewal_price = forms.DecimalField(
        label="Price from the renewal",
        max_digits=12,
        decimal_places=2,
        min_value=0,
        required=False,
        help_text="A price change for the next term. Empty: the same price.",
    )
    reminder_days = forms.IntegerField(
        label="Remind (days before renewal)",
        min_value=0,
        max_value=365,
        initial=30,
        help_text="Your admins and the client's admins get one email this many days before (0: no reminder).",
    )

    FIELDSETS = [
        ("Current term", ["starts_on", "term_months", "monthly_price"]),
        ("Renewal", ["auto_renew", "renewal_price", "reminder_days"]),
    ]

    def __init__(self, *args, currency: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        for name in ("monthly_price", "renewal_price"):
            self.fields[name].widget.attrs.update({"min": "0", "step": "0.01", "inputmode": "decimal"})
            if currency:
                self.fields[name].label = f"{self.fields[name].label} ({currency})"

    @property
    def fieldsets(self):
        return [(legend, [self[name] for name in names]) for legend, names in self.FIELDSETS]
