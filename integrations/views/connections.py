"""Connections: the catalogue of connectors, a connector's own form, test, status, credential rotation."""

from __future__ import annotations

from collections import Counter

from django.conf import settings
from django.contrib import messages
from django.db import connection as db
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_POST, require_safe

from branding.selectors import brand_for_request
from connectors.registry import CONNECTORS, SANDBOX_PORTS
from connectors.sandbox.server import TLS_SANDBOXES
from integrations import selectors
from integrations.forms.connections import ConnectionForm, RenameConnectionForm, RotateCredentialsForm
from integrations.models import Connection, Environment, ExternalRef, Flow
from integrations.services.connections import (
    ConnectionInUse,
    connection_create,
    connection_credentials_rotate,
    connection_delete,
    connection_rename,
    connection_test,
)
from integrations.views.support import redirect_to, render_page, url, with_events
from portal.crypto import CredentialsUnreadable, credentials_decrypt
from tenants.decorators import WORKSPACE_ALL, WORKSPACE_EDITORS, workspace_role_required
from tenants.plans import (
    PlanLimitReached,
    SystemAllowance,
    plan_allowance,
    plan_for,
    plan_system_allowances,
)

CATEGORY_ORDER = ["crm", "erp", "psa", "hr", "ticketing"]


def connector_info(cls) -> dict | None:
    """What templates need of a connector class (templates would try to call the class itself)."""
    if cls is None:
        return None
    return {"vendor": cls.vendor, "label": cls.label, "category": cls.category, "objects": list(cls.objects.values())}


def catalogue(systems: dict[str, SystemAllowance] | None = None) -> list[dict]:
    """The connectors by kind; with `systems`, each carries what the client's plan allows of it."""
    systems = systems or {}
    groups = []
    for category in CATEGORY_ORDER:
        vendors = [
            {
                "vendor": vendor,
                "label": cls.label,
                "objects": [spec.label for spec in cls.objects.values()][:4],
                "allowance": systems.get(vendor),
            }
            for vendor, cls in CONNECTORS.items()
            if cls.category == category
        ]
        if vendors:
            groups.append({"category": category, "label": selectors.CATEGORY_LABELS[category], "vendors": vendors})
    return groups


@require_safe
@workspace_role_required(WORKSPACE_ALL)
def connection_list(request, client_slug):
    connections = selectors.connections_overview()
    production = [c for c in connections if c.environment == Environment.PRODUCTION]
    systems = _systems(request.client, production)
    context = {
        "connections": connections,
        "catalogue": catalogue({system.vendor: system for system in systems}),
        "allowance": plan_allowance(client=request.client, resource="connections", used=len(production)),
        "limited_systems": [system for system in systems if system.limit is not None and system.limit > 0],
        "section": "connections",
    }
    return render_page(request, "integrations/connections/list.html", context)


def _systems(client, connections) -> list[SystemAllowance]:
    """Each system against the client's plan: included or not, and `connections` of it against those included."""
    return plan_system_allowances(client=client, used=Counter(connection.vendor for connection in connections))


def _system_in(client, vendor: str, environment: str) -> SystemAllowance:
    used = Connection.objects.filter(vendor=vendor, environment=environment).count()
    return SystemAllowance(plan=plan_for(client), vendor=vendor, used=used)


def _sandbox_hint(vendor: str) -> str:
    """In a demo, where this vendor's local sandbox answers (only when connections may reach it)."""
    port = SANDBOX_PORTS.get(vendor)
    if port and f"127.0.0.1:{port}" in settings.CONNECTOR_ALLOWED_HOSTS:
        return f"{'https' if vendor in TLS_SANDBOXES else 'http'}://127.0.0.1:{port}"
    return ""


@workspace_role_required(WORKSPACE_EDITORS)
def connection_new(request, client_slug, vendor):
    if vendor not in CONNECTORS:
        raise Http404("No such connector")
    form = ConnectionForm(request.POST or None, vendor=vendor, product_name=brand_for_request(request).product_name)
    # What the plan allows of this system, per environment: the page says so before anyone types credentials
    # (connection_create refuses past it, whatever was posted).
    production = _system_in(request.client, vendor, Environment.PRODUCTION)
    sandbox = _system_in(request.client, vendor, Environment.SANDBOX)
    if request.method == "POST" and form.is_valid():
        try:
            created = connection_create(
                name=form.cleaned_data["name"],
                vendor=vendor,
                base_url=form.cleaned_data["base_url"],
                credentials=form.credentials(),
                environment=form.cleaned_data["environment"],
                actor=request.user,
            )
        except PlanLimitReached as refused:
            form.add_error(None, refused.message)
        else:
            selectors.queue_choices_forget()
            messages.success(request, f"“{created.name}” is saved. Test it to check that the credentials work.")
            return redirect_to(request, url(request, "connection_detail", created.pk))
    context = {
        "form": form,
        "vendor": vendor,
        "connector": connector_info(CONNECTORS[vendor]),
        "category": selectors.CATEGORY_LABELS.get(CONNECTORS[vendor].category, ""),
        "sandbox_url": _sandbox_hint(vendor),
        "system": production,
        "sandbox_system": sandbox,
        "refused": production.full and sandbox.full,
        "section": "connections",
    }
    status = 422 if form.is_bound and form.errors else 200
    return render_page(request, "integrations/connections/new.html", context, partial="connection_form", status=status)


def _connection(pk) -> Connection:
    return get_object_or_404(Connection, pk=pk)


def _current_settings(connection: Connection) -> dict[str, str]:
    try:
        stored = credentials_decrypt(connection.encrypted_credentials)
    except CredentialsUnreadable:
        return {}
    secret = {f.name for f in CONNECTORS[connection.vendor].form_fields() if f.secret}
    return {key: value for key, value in stored.items() if key not in secret}


def _detail_context(request, connection: Connection, **extra) -> dict:
    cls = CONNECTORS.get(connection.vendor)
    flows = Flow.objects.filter(source_connection=connection) | Flow.objects.filter(steps__target_connection=connection)
    context = {
        "connection": connection,
        "connector": connector_info(cls),
        "category": selectors.CATEGORY_LABELS.get(getattr(cls, "category", ""), ""),
        "settings_rows": selectors.connection_settings(connection),
        "flows": flows.distinct().order_by("name"),
        "objects": list(cls.objects.values()) if cls else [],
        "schema": db.schema_name,
        "section": "connections",
    }
    if request.workspace_role in WORKSPACE_EDITORS and cls is not None:
        context["rotate_form"] = RotateCredentialsForm(connection=connection, current=_current_settings(connection))
    if request.workspace_role in WORKSPACE_EDITORS:
        context["rename_form"] = RenameConnectionForm(initial={"name": connection.name})
        if not context["flows"]:  # only then is deleting offered; it forgets these id links
            context["linked_records"] = selectors.bounded_count(ExternalRef.objects.filter(connection=connection))
    context.update(extra)
    return context


@require_safe
@workspace_role_required(WORKSPACE_ALL)
def connection_detail(request, client_slug, pk):
    connection = _connection(pk)
    return render_page(request, "integrations/connections/detail.html", _detail_context(request, connection))


@require_POST
@workspace_role_required(WORKSPACE_EDITORS)
def connection_test_view(request, client_slug, pk):
    """A real authenticated call to the vendor; the result shows inline and the badge follows."""
    connection = _connection(pk)
    result = connection_test(connection=connection, actor=request.user)
    connection.refresh_from_db()
    context = _detail_context(request, connection, result=result)
    response = render_page(request, "integrations/connections/detail.html", context, partial="test_panel")
    if not request.htmx:
        (messages.success if result.ok else messages.error)(request, result.message)
        return redirect_to(request, url(request, "connection_detail", connection.pk))
    return with_events(response, "connection-tested")


@require_POST
@workspace_role_required(WORKSPACE_EDITORS)
def connection_rotate(request, client_slug, pk):
    connection = _connection(pk)
    if connection.vendor not in CONNECTORS:
        raise Http404("No such connector")
    form = RotateCredentialsForm(request.POST, connection=connection, current=_current_settings(connection))
    if form.is_valid():
        connection_credentials_rotate(connection=connection, credentials=form.credentials(), actor=request.user)
        messages.success(request, f"New credentials saved for “{connection.name}”. Test them now.")
        return redirect_to(request, url(request, "connection_detail", connection.pk))
    context = _detail_context(request, connection, rotate_form=form)
    return render_page(request, "integrations/connections/detail.html", context, partial="rotate_form", status=422)


@require_POST
@workspace_role_required(WORKSPACE_EDITORS)
def connection_rename_view(request, client_slug, pk):
    connection = _connection(pk)
    form = RenameConnectionForm(request.POST)
    if form.is_valid():
        before = connection.name
        connection_rename(connection=connection, name=form.cleaned_data["name"], actor=request.user)
        selectors.queue_choices_forget()
        if connection.name != before:
            messages.success(request, f"“{before}” is now called “{connection.name}”.")
        return redirect_to(request, url(request, "connection_detail", connection.pk))
    context = _detail_context(request, connection, rename_form=form)
    return render_page(request, "integrations/connections/detail.html", context, partial="rename_form", status=422)


@require_POST
@workspace_role_required(WORKSPACE_EDITORS)
def connection_delete_view(request, client_slug, pk):
    """Delete after the page's confirmation; refused, with the flows named, while any flow uses it."""
    connection = _connection(pk)
    name = connection.name
    try:
        connection_delete(connection=connection, actor=request.user)
    except ConnectionInUse as refused:
        messages.error(request, str(refused))
        return redirect_to(request, url(request, "connection_detail", pk))
    selectors.queue_choices_forget()
    messages.success(request, f"“{name}” is deleted, and its stored credentials with it.")
    return redirect_to(request, url(request, "connection_list"))
