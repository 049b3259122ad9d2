"""Forms of the client workspace: queue filters and actions, connections, flows, mappings, people."""

from __future__ import annotations

import re
from decimal import Decimal

from django import forms
from django.core.exceptions import ValidationError

from connectors.base import FormField
from connectors.registry import CONNECTORS
from integrations.catalog import Template
from integrations.engine.entities import ENTITIES
from integrations.engine.mapping import TRANSFORM_LABELS
from integrations.models import Connection, Environment, Flow, MappingRule, ValueMap
from integrations.selectors.queue import QUEUE_AGES, QUEUE_SORTS, QUEUE_STATUSES, QueueQuery
from portal.audit_log import AuditFilterForm
from tenants.models import Role

LINE_BREAKS = re.compile(r"[\r\n\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def one_line(value: str) -> str:
    if LINE_BREAKS.search(value or ""):
        raise ValidationError("Use a single line of text.")
    return value


# --- Exception queue ----------------------------------------------------------------------------


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


# --- Connections ----------------------------------------------------------------------------------


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


# --- Flows ------------------------------------------------------------------------------------------


class TemplateInstallForm(forms.Form):
    """One connection per role the template needs, of a vendor the role accepts."""

    def __init__(self, *args, template: Template, **kwargs):
        super().__init__(*args, **kwargs)
        self.template = template
        for role, (vendors, label) in template.connections.items():
            queryset = Connection.objects.filter(vendor__in=vendors).order_by("name")
            self.fields[role] = forms.ModelChoiceField(
                queryset=queryset,
                label=label,
                empty_label=None if queryset.exists() else "No connection yet",
                help_text=" or ".join(CONNECTORS[v].label if v in CONNECTORS else v for v in vendors),
            )
            self.fields[role].vendors = vendors

    def connections(self) -> dict[str, Connection]:
        return {role: self.cleaned_data[role] for role in self.template.connections}


SCHEDULES = [
    ("", "Only by hand or webhook"),
    ("15", "Every 15 minutes"),
    ("30", "Every 30 minutes"),
    ("60", "Every hour"),
    ("240", "Every 4 hours"),
    ("720", "Twice a day"),
    ("1440", "Every day"),
]


class ScheduleForm(forms.Form):
    schedule_minutes = forms.TypedChoiceField(
        choices=SCHEDULES, coerce=int, empty_value=None, required=False, label="Runs"
    )


TRIGGERS = [
    ("schedule", "On a schedule"),
    ("webhook", "When the source sends a webhook, and on the schedule"),
    ("manual", "Only when someone runs it"),
]


def object_choices(*, write: bool) -> list:
    """Each connection's readable (writable) objects as one optgroup, values "<connection id>:<object>"."""
    groups = []
    for connection in Connection.objects.order_by("-environment", "name"):
        cls = CONNECTORS.get(connection.vendor)
        if cls is None:
            continue
        where = " · Sandbox" if connection.environment == Environment.SANDBOX else ""
        options = [
            (f"{connection.pk}:{spec.name}", f"{spec.label} · {connection.name}{where}")
            for spec in cls.objects.values()
            if (spec.writable if write else spec.readable)
        ]
        if options:
            groups.append((f"{connection.name} ({cls.label}{where})", options))
    return groups


def _connection_object(value: str) -> tuple[Connection, str]:
    pk, _, object_name = (value or "").partition(":")
    connection = Connection.objects.filter(pk=int(pk)).first() if pk.isascii() and pk.isdigit() else None
    if connection is None or not object_name:
        raise ValidationError("Choose one of the listed connections and records.")
    return connection, object_name


class FlowBuildForm(forms.Form):
    """A flow built by hand: where records come from, what they become, where they go, when it runs."""

    name = forms.CharField(
        max_length=120,
        label="Flow name",
        validators=[one_line],
        widget=forms.TextInput(attrs={"placeholder": "e.g. HubSpot companies to NetSuite customers"}),
    )
    source = forms.ChoiceField(label="Read", help_text="The system and the records the flow reads, page by page.")
    entity = forms.ChoiceField(
        label="As",
        help_text="The shape each record takes in your workspace; its fields are what the mapping fills in.",
    )
    target = forms.ChoiceField(
        label="Write to",
        required=False,
        help_text="Optional: you can add targets later, or keep the records in your workspace only.",
    )
    trigger = forms.ChoiceField(choices=TRIGGERS, initial="schedule", label="Starts")
    schedule_minutes = forms.TypedChoiceField(
        choices=SCHEDULES, coerce=int, empty_value=None, required=False, initial="60", label="Runs"
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["source"].choices = [("", "Choose a connection and its records"), *object_choices(write=False)]
        self.fields["target"].choices = [("", "Nowhere yet"), *object_choices(write=True)]
        self.fields["entity"].choices = [("", "Choose a record type"), *((k, s.label) for k, s in ENTITIES.items())]

    def clean_source(self):
        return _connection_object(self.cleaned_data["source"])

    def clean_target(self):
        value = self.cleaned_data.get("target")
        return _connection_object(value) if value else (None, "")

    def clean(self):
        data = super().clean()
        if data.get("trigger") in ("schedule", "webhook") and not data.get("schedule_minutes"):
            self.add_error("schedule_minutes", "Choose how often it runs, or let it run only when someone runs it.")
        return data

    def flow_values(self) -> dict:
        """Keyword arguments for integrations.services.flows.flow_create."""
        data = self.cleaned_data
        (source, source_object), (target, target_object) = data["source"], data["target"]
        return {
            "name": data["name"],
            "source_connection": source,
            "source_object": source_object,
            "entity": data["entity"],
            "target_connection": target,
            "target_object": target_object,
            "trigger": data["trigger"],
            "schedule_minutes": data["schedule_minutes"] if data["trigger"] != "manual" else None,
        }


class FlowStepForm(forms.Form):
    """One more target for a flow: a connection's writable object, and which of the flow's records go there."""

    target = forms.ChoiceField(label="Write to")
    entity = forms.ChoiceField(label="Records")

    def __init__(self, *args, entities: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["target"].choices = [("", "Choose a connection and its records"), *object_choices(write=True)]
        self.fields["entity"].choices = [(e, ENTITIES[e].label) for e in entities if e in ENTITIES]

    def clean_target(self):
        return _connection_object(self.cleaned_data["target"])


# --- Mapping rules ----------------------------------------------------------------------------------

# Parameters a person may set per transform: (name, label, kind). Transforms not listed here
# (references, invoice lines, vendor id wrappers) are set by templates and shown read-only.
TRANSFORM_PARAMS: dict[str, list[tuple[str, str, str]]] = {
    "trim": [],
    "upper": [],
    "lower": [],
    "boolean": [],
    "cents_to_amount": [],
    "amount_to_cents": [],
    "minutes_to_hours": [],
    "hours_to_minutes": [],
    "date": [("format", "Format (blank: ISO 8601)", "text")],
    "datetime": [("format", "Format (blank: ISO 8601)", "text"), ("tz", "Time zone", "text")],
    "format_date": [("format", "Format", "text")],
    "number": [("places", "Decimal places", "int")],
    "currency": [("default", "Default currency", "text")],
    "split": [
        ("separator", "Separator", "text"),
        ("index", "Part (0 first, -1 last)", "int"),
        ("rest", "With every part after it", "bool"),
    ],
    "default": [("value", "Value when blank", "text")],
    "lookup": [("value_map", "Value map", "value_map"), ("fallback", "Keep values not in the map", "bool")],
    "prefix": [("value", "Prefix", "text")],
    "concat": [("separator", "Separator", "text")],
}
TRANSFORM_SLOTS = 4


def transforms_editable(transforms: list[dict]) -> bool:
    for transform in transforms:
        params = TRANSFORM_PARAMS.get(transform.get("name"))
        if params is None:
            return False
        names = {name for name, _, _ in params}
        for key, value in transform.items():
            if key == "name":
                continue
            if key not in names or isinstance(value, dict | list):
                return False
    return True


class RuleForm(forms.Form):
    """One mapping rule; the transform slots grow their parameter fields from the chosen transform."""

    label = forms.CharField(max_length=120, required=False, label="Label", validators=[one_line])
    target = forms.CharField(max_length=120, label="Target field", validators=[one_line])
    sources = forms.CharField(
        max_length=400,
        required=False,
        label="Source field",
        help_text="A path into the source record, e.g. date_performed or parent.id; several, comma-separated, are joined.",
        validators=[one_line],
    )
    required = forms.BooleanField(required=False, label="Required: a record without it becomes an exception")

    def __init__(self, *args, rule: MappingRule | None = None, inbound: bool = True, **kwargs):
        self.rule = rule
        self.inbound = inbound
        transforms = list(rule.transforms) if rule else []
        self.locked = rule is not None and not transforms_editable(transforms)
        # The rule as stored, then what the person has typed so far (a redraw after a transform change).
        typed = kwargs.pop("initial", {}) or {}
        initial: dict = {}
        if rule is not None:
            initial.update(
                label=rule.label, target=rule.target, sources=", ".join(rule.sources), required=rule.required
            )
            if not self.locked:
                for index, transform in enumerate(transforms[:TRANSFORM_SLOTS]):
                    initial[f"t{index}_name"] = transform["name"]
                    for key, value in transform.items():
                        if key != "name":
                            initial[f"t{index}_{key}"] = bool(value) if key == "fallback" else value
        if typed:
            initial = {key: value for key, value in initial.items() if not key.startswith("t") or key == "target"}
            initial.update(typed)
            initial["required"] = typed.get("required") in ("on", "true", "1", True)
        super().__init__(*args, initial=initial, **kwargs)
        if rule is not None:
            self.fields["target"].disabled = True
        self.slots = []
        if self.locked:
            return
        choices = [("", "—")] + sorted(
            ((name, TRANSFORM_LABELS.get(name, name)) for name in TRANSFORM_PARAMS), key=lambda c: c[1]
        )
        value_maps = [("", "Choose a value map"), *ValueMap.objects.values_list("key", "name")]
        for index in range(TRANSFORM_SLOTS):
            name_field = f"t{index}_name"
            self.fields[name_field] = forms.ChoiceField(choices=choices, required=False, label=f"Step {index + 1}")
            chosen = self.data.get(name_field) if self.is_bound else self.initial.get(name_field)
            params = []
            for param, label, kind in TRANSFORM_PARAMS.get(chosen or "", []):
                key = f"t{index}_{param}"
                if kind == "int":
                    field = forms.IntegerField(required=False, label=label, min_value=-20, max_value=20)
                elif kind == "bool":
                    field = forms.BooleanField(required=False, label=label)
                elif kind == "value_map":
                    field = forms.ChoiceField(choices=value_maps, required=True, label=label)
                else:
                    field = forms.CharField(required=False, max_length=120, label=label, strip=False)
                    field.validators.append(one_line)
                self.fields[key] = field
                params.append(key)
            self.slots.append((name_field, params))

    def slot_fields(self):
        return [(self[name], [self[p] for p in params]) for name, params in self.slots]

    def clean_target(self):
        target = self.cleaned_data["target"].strip()
        if self.inbound:
            entity, _, name = target.partition(".")
            spec = ENTITIES.get(entity)
            if spec is None or not name:
                raise ValidationError("Name a canonical field as entity.field, e.g. time_entry.notes.")
            fields = {f.name for f in spec.model._meta.concrete_fields}
            if name not in fields:
                raise ValidationError(f"{spec.label} has no field “{name}”.")
        elif not re.fullmatch(r"[A-Za-z0-9_.\-]+", target):
            raise ValidationError("Name the target system's field, e.g. memo.")
        return target

    def clean_sources(self):
        raw = self.cleaned_data.get("sources") or ""
        paths = [part.strip() for part in raw.split(",") if part.strip()]
        for path in paths:
            if not re.fullmatch(r"[A-Za-z0-9_\-@]+(\.[A-Za-z0-9_\-@]+)*", path):
                raise ValidationError(f"“{path}” is not a field path such as parent.id.")
        return paths

    def values(self) -> dict:
        """The rule as the engine stores it (sources list, transforms list of dicts)."""
        data = self.cleaned_data
        if self.locked:
            transforms = list(self.rule.transforms)
        else:
            transforms = []
            for name_field, params in self.slots:
                name = data.get(name_field)
                if not name:
                    continue
                transform = {"name": name}
                for key in params:
                    param = key.split("_", 1)[1]
                    value = data.get(key)
                    if param == "fallback":
                        if value:
                            transform["fallback"] = "keep"
                    elif value not in (None, ""):
                        transform[param] = value
                transforms.append(transform)
        target = self.rule.target if self.rule is not None else data["target"]
        return {
            "target": target,
            "sources": data.get("sources") or [],
            "transforms": transforms,
            "required": bool(data.get("required")),
            "label": (data.get("label") or "").strip(),
        }


class ValueMapEntryForm(forms.Form):
    source_value = forms.CharField(max_length=200, label="When the source says", validators=[one_line])
    target_value = forms.CharField(max_length=200, label="Write", validators=[one_line])


# --- People and the audit log ---------------------------------------------------------------------

CLIENT_ROLE_CHOICES = [
    (Role.CLIENT_ADMIN, "Client admin · connections, flows, people"),
    (Role.CLIENT_FINANCE, "Finance · works the exception queue"),
    (Role.CLIENT_VIEWER, "Viewer · reads dashboards and lists"),
]


class InviteForm(forms.Form):
    email = forms.EmailField(label="Email")
    full_name = forms.CharField(max_length=150, required=False, label="Name", validators=[one_line])
    role = forms.ChoiceField(choices=CLIENT_ROLE_CHOICES, initial=Role.CLIENT_FINANCE, label="Role")


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=[(value, label.split(" · ")[0]) for value, label in CLIENT_ROLE_CHOICES])


class WorkspaceAuditFilterForm(AuditFilterForm):
    """The workspace audit log's filters."""

    LABELS = {
        "alert": "Alerts",
        "connection": "Connections",
        "exception": "Exceptions",
        "flow": "Flows",
        "mapping": "Mappings",
        "member": "People",
        "template": "Templates",
        "value_map": "Value maps",
        "workspace": "Workspace",
        "system": "System",
    }


# --- Alerts -------------------------------------------------------------------------------------


def alert_event_choices(sla_hours: int | None) -> list[tuple[str, str]]:
    """The events a recipient can choose, worded for this workspace's plan."""
    if sla_hours:
        sla = f"Exceptions past the plan's SLA ({sla_hours} h)"
    else:
        sla = "Exceptions past the plan's SLA (no plan yet, so none is sent)"
    return [
        ("on_run_failed", "Run failed"),
        ("on_connection_failed", "Connection failing"),
        ("on_sla_breach", sla),
        ("on_deal_won", "New won deal to staff"),
    ]


class AlertEventsForm(forms.Form):
    """Which events reach a recipient, and for which flows (none ticked: every flow)."""

    events = forms.MultipleChoiceField(
        widget=forms.CheckboxSelectMultiple,
        label="Email when",
        error_messages={"required": "Choose at least one alert, or remove the recipient."},
    )
    flows = forms.ModelMultipleChoiceField(
        queryset=Flow.objects.none(), required=False, widget=forms.CheckboxSelectMultiple, label="For"
    )

    def __init__(self, *args, flows: list[Flow], sla_hours: int | None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["events"].choices = alert_event_choices(sla_hours)
        self.fields["flows"].queryset = Flow.objects.filter(pk__in=[flow.pk for flow in flows]).order_by("name")


class AlertRecipientForm(AlertEventsForm):
    email = forms.EmailField(
        label="Email",
        max_length=254,
        error_messages={"invalid": "Enter a valid email address, such as finance@example.com."},
    )

    field_order = ["email", "events", "flows"]


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
