"""The workspace's people: invite, change a role, filter the audit log."""

from __future__ import annotations

from django import forms

from integrations.forms import one_line
from portal.audit_log import AuditFilterForm
from tenants.models import Role

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
        "change_request": "Change requests",
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
