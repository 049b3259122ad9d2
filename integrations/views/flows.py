"""Flows: install a packaged template, a flow's steps and rules, schedule, pause, run now, run history."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_POST, require_safe

from connectors.registry import CONNECTORS
from integrations import selectors
from integrations.catalog import Template
from integrations.engine.entities import ENTITIES
from integrations.engine.orchestrator import steps_skipped_note
from integrations.forms.flows import FlowBuildForm, FlowStepForm, ScheduleForm, TemplateInstallForm
from integrations.models import Connection, Flow, SyncRun
from integrations.services.account_health import ACCOUNT_HEALTH
from integrations.services.configuration import flow_schedule_set
from integrations.services.flows import (
    FlowConfigurationError,
    flow_create,
    flow_set_enabled,
    flow_step_add,
)
from integrations.services.runs import SyncNotAllowed, flow_steps_unmapped, flow_unmapped, run_start
from integrations.views.support import (
    redirect_to,
    refusal_said,
    render_page,
    render_partial,
    url,
    wants_partial,
    with_events,
)
from tenants.decorators import WORKSPACE_ALL, WORKSPACE_EDITORS, workspace_role_required
from tenants.plans import plan_allowance


def _catalogue(client) -> list[Template]:
    from integrations.partner_templates.selectors import templates_installable

    return templates_installable(client)


def _templates(client) -> list[dict]:
    installed = dict(Flow.objects.exclude(template_key="").values_list("template_key", "template_version"))
    vendors = set(Connection.objects.values_list("vendor", flat=True))
    rows = []
    for template in _catalogue(client):
        roles = [
            {
                "label": label,
                "vendors": [CONNECTORS[v].label if v in CONNECTORS else v for v in choices],
                "ready": any(v in vendors for v in choices),
                "vendor_keys": choices,
            }
            for choices, label in template.connections.values()
        ]
        running = [version or 0 for key, version in installed.items() if key.startswith(f"{template.key}/")]
        rows.append(
            {
                "template": template,
                "installed": bool(running),
                "running": max(running, default=None),
                "roles": roles,
                "ready": all(role["ready"] for role in roles),
            }
        )
    return rows


@require_safe
@workspace_role_required(WORKSPACE_ALL)
def flow_list(request, client_slug):
    flows = selectors.flows_overview()
    context = {
        "flows": [f for f in flows if not f.is_reference],
        "reference_flows": [f for f in flows if f.is_reference],
        "templates": _templates(request.client),
        "allowance": plan_allowance(client=request.client, resource="flows", used=selectors.flows_counted_by_plan()),
        "section": "flows",
        "tab": "flows",
    }
    return render_page(request, "integrations/flows/list.html", context)


@workspace_role_required(WORKSPACE_EDITORS)
def template_install_view(request, client_slug, key):
    template = next((t for t in _catalogue(request.client) if t.key == key), None)
    if template is None:
        raise Http404("No such template")
    form = TemplateInstallForm(request.POST or None, template=template)
    if request.method == "POST" and form.is_valid():
        from integrations.partner_templates.services import template_install_in
        from tenants.plans import PlanLimitReached

        try:
            flows = template_install_in(
                client=request.client, key=template.key, connections=form.connections(), actor=request.user
            )
        except (FlowConfigurationError, PlanLimitReached) as refused:
            form.add_error(None, getattr(refused, "message", None) or str(refused))
        else:
            selectors.queue_choices_forget()
            main = next((f for f in flows if "(reference)" not in f.name), flows[-1])
            messages.success(request, f"“{template.name}” is installed. Run it now, or let its schedule run it.")
            return redirect_to(request, url(request, "flow_detail", main.pk))
    missing = [
        (role, vendors, label)
        for role, (vendors, label) in template.connections.items()
        if not Connection.objects.filter(vendor__in=vendors).exists()
    ]
    context = {
        "template": template,
        "form": form,
        "missing": [
            {"label": label, "vendor": vendors[0], "vendor_label": CONNECTORS[vendors[0]].label}
            for _, vendors, label in missing
            if vendors[0] in CONNECTORS
        ],
        "flow_specs": template.flows,
        "section": "flows",
    }
    status = 422 if form.is_bound and form.errors else 200
    return render_page(request, "integrations/flows/install.html", context, status=status)


def _flow(pk) -> Flow:
    return get_object_or_404(
        Flow.objects.select_related("source_connection", "inbound_mapping", "promoted_to").prefetch_related(
            "prerequisites"
        ),
        pk=pk,
    )


def _rules_with_owners(flow: Flow) -> list[dict]:
    category = getattr(CONNECTORS.get(flow.source_connection.vendor), "category", "")
    owners_by_entity: dict[str, dict] = {}
    rows = []
    for rule in flow.inbound_mapping.rules.all():
        entity, _, name = rule.target.partition(".")
        owners = owners_by_entity.setdefault(entity, selectors.field_owners(entity))
        owner = owners.get(name)
        rows.append({"rule": rule, "owner": owner, "writes": owner is None or owner == category})
    return rows


def _flow_context(request, flow: Flow, **extra) -> dict:
    runs = selectors.flow_runs(flow)
    live = next((run for run in runs if run.status in SyncRun.LIVE), None)
    category = getattr(CONNECTORS.get(flow.source_connection.vendor), "category", "")
    context = {
        "flow": flow,
        "entity": ENTITIES.get(flow.entity),
        "source_category": selectors.CATEGORY_LABELS.get(category, ""),
        "steps": list(flow.steps.select_related("target_connection", "outbound_mapping")),
        "rules": _rules_with_owners(flow),
        "prerequisites": list(flow.prerequisites.all()),
        "dependents": list(flow.dependents.all()),
        "runs": runs,
        "run": live or (runs[0] if runs else None),
        "schedule_form": ScheduleForm(initial={"schedule_minutes": flow.schedule_minutes or ""}),
        "open_exceptions": selectors.bounded_count(flow.exceptions.filter(status="open")),
        "promoted_from": Flow.objects.filter(promoted_to=flow).first(),
        "unmapped": flow_unmapped(flow) or steps_skipped_note(flow_steps_unmapped(flow)),
        "section": "flows",
        "account_health": flow.entity == ACCOUNT_HEALTH,
    }
    if request.workspace_role in WORKSPACE_EDITORS and flow.entity != ACCOUNT_HEALTH:
        context["step_form"] = FlowStepForm(entities=_flow_entities(flow), initial={"entity": flow.entity})
    source_filter = flow.source_filter or {}
    if source_filter.get("path"):
        values = list(dict.fromkeys(str(v).lower() for v in source_filter.get("in", [source_filter.get("equals")])))
        context["filter_text"] = f"where {source_filter['path'].replace('_', ' ')} is {' or '.join(values)}"
    # A flow that writes delivery figures runs on its schedule: the CRM's events are other flows' business.
    context["webhook"] = None if flow.entity == ACCOUNT_HEALTH else _webhook(request, flow)
    context.update(extra)
    shown = context["run"]
    context["outcomes"] = selectors.run_outcomes(shown) if shown is not None and shown.read else []
    context["reference_runs"] = _reference_runs(shown, context["prerequisites"])
    return context


def _reference_runs(run: SyncRun | None, prerequisites: list[Flow]) -> list[dict]:
    """The reference flows a run brought up to date, one line each: a flow read before the run and again
    before creating records (to link what appeared meanwhile) shows its reads summed and its worst status."""
    if run is None or not run.started_at or not prerequisites:
        return []
    rank = {SyncRun.Status.FAILED: 3, SyncRun.Status.PARTIAL: 2, SyncRun.Status.RUNNING: 1}
    lines: dict[int, dict] = {}
    for ref in SyncRun.objects.filter(
        flow__in=prerequisites, trigger="reference", queued_at__gte=run.started_at
    ).select_related("flow"):
        line = lines.setdefault(ref.flow_id, {"flow": ref.flow, "read": 0, "run": ref})
        line["read"] += ref.read
        if rank.get(ref.status, 0) > rank.get(line["run"].status, 0):
            line["run"] = ref
    return sorted(lines.values(), key=lambda line: line["flow"].name)


def _webhook(request, flow: Flow) -> dict | None:
    """Where the source system delivers events for this flow, and how they are signed, when it sends any."""
    from django.urls import reverse

    from integrations.services.flows import sends_webhooks

    cls = CONNECTORS.get(flow.source_connection.vendor)
    if cls is None or not sends_webhooks(cls):
        return None
    path = reverse("flow_webhook", args=[request.client.slug, flow.webhook_token])
    return {
        "url": request.build_absolute_uri(path),
        "vendor": cls.label,
        "listening": flow.trigger == Flow.Trigger.WEBHOOK,
    }


@require_POST
@workspace_role_required(WORKSPACE_EDITORS)
def flow_webhook_rotate(request, client_slug, pk):
    """A new webhook address: the old one stops working at once (give the new one to the vendor)."""
    from integrations.services.flows import flow_webhook_rotate as rotate

    flow = _flow(pk)
    rotate(flow=flow, actor=request.user)
    messages.success(request, f"“{flow.name}” has a new webhook address; the old one no longer works.")
    return redirect_to(request, url(request, "flow_detail", flow.pk))


@require_safe
@workspace_role_required(WORKSPACE_ALL)
def flow_detail(request, client_slug, pk):
    flow = _flow(pk)
    return render_page(request, "integrations/flows/detail.html", _flow_context(request, flow))


@require_POST
@workspace_role_required(WORKSPACE_EDITORS)
def flow_run(request, client_slug, pk):
    """Run now: queue a run (or show the one already running) and poll its progress."""
    flow = _flow(pk)
    try:
        run = run_start(flow=flow, trigger="manual", actor=request.user)
    except SyncNotAllowed as refused:
        if wants_partial(request):
            context = _flow_context(request, flow, run_error=str(refused))
            response = render_page(request, "integrations/flows/detail.html", context, partial="run_panel")
            return with_events(response, toast=str(refused), level="error")
        messages.error(request, str(refused))
        return redirect_to(request, url(request, "flow_detail", flow.pk))
    if wants_partial(request):
        context = _flow_context(request, flow, run=run)
        response = render_page(request, "integrations/flows/detail.html", context, partial="run_panel")
        return with_events(response, "runs-changed", toast=f"“{flow.name}” is running.")
    messages.success(request, f"“{flow.name}” is running.")
    return redirect_to(request, url(request, "flow_detail", flow.pk))


@require_safe
@workspace_role_required(WORKSPACE_ALL)
def run_progress(request, client_slug, pk):
    """One run's progress: polled by the page every second while the run is queued or running."""
    run = get_object_or_404(SyncRun.objects.select_related("flow"), pk=pk)
    flow = _flow(run.flow_id)
    context = _flow_context(request, flow, run=run)
    if not wants_partial(request):
        return redirect_to(request, url(request, "flow_detail", flow.pk))
    response = render_page(request, "integrations/flows/detail.html", context, partial="run_panel")
    # The flow's open-exception count follows the run as it fails records.
    box = render_partial(request, "integrations/flows/detail.html", "exceptions_box", {**context, "oob": True})
    response.content += box.content
    if run.status not in SyncRun.LIVE and request.GET.get("polling"):
        # The poll that sees the end refreshes the history and the queue's counters.
        return with_events(response, "runs-changed", "exceptions-changed")
    return response


@require_safe
@workspace_role_required(WORKSPACE_ALL)
def run_history(request, client_slug, pk):
    flow = _flow(pk)
    return render_partial(request, "integrations/flows/detail.html", "history", _flow_context(request, flow))


@require_POST
@workspace_role_required(WORKSPACE_EDITORS)
def flow_enabled(request, client_slug, pk):
    flow = _flow(pk)
    enable = request.POST.get("enabled") == "1"
    flow_set_enabled(flow=flow, enabled=enable, actor=request.user)
    messages.success(
        request,
        f"“{flow.name}” is running on schedule again." if enable else f"“{flow.name}” is paused: it runs only by hand.",
    )
    return redirect_to(request, url(request, "flow_detail", flow.pk))


@require_POST
@workspace_role_required(WORKSPACE_EDITORS)
def flow_schedule(request, client_slug, pk):
    flow = _flow(pk)
    form = ScheduleForm(request.POST)
    if form.is_valid():
        with refusal_said(request, FlowConfigurationError):
            flow_schedule_set(flow=flow, schedule_minutes=form.cleaned_data["schedule_minutes"], actor=request.user)
            messages.success(request, "Schedule saved.")
    else:
        messages.error(request, "Choose one of the schedules.")
    return redirect_to(request, url(request, "flow_detail", flow.pk))


def _flow_entities(flow: Flow) -> list[str]:
    """The canonical records a flow produces: its own entity, and those its inbound rules fill in."""
    found = [flow.entity]
    for target in flow.inbound_mapping.rules.values_list("target", flat=True):
        entity = target.partition(".")[0]
        if entity in ENTITIES and entity not in found:
            found.append(entity)
    return found


@workspace_role_required(WORKSPACE_EDITORS)
def flow_build(request, client_slug):
    """Build a flow by hand: source, canonical entity, an optional first target, schedule; then map it."""
    from tenants.plans import PlanLimitReached

    form = FlowBuildForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            flow = flow_create(**form.flow_values(), actor=request.user)
        except (FlowConfigurationError, PlanLimitReached) as refused:
            form.add_error(None, getattr(refused, "message", None) or str(refused))
        else:
            selectors.queue_choices_forget()
            messages.success(request, f"“{flow.name}” is built. Map its fields from a live record, then run it.")
            return redirect_to(request, url(request, "flow_detail", flow.pk))
    context = {
        "form": form,
        "has_connections": Connection.objects.exists(),
        "section": "flows",
    }
    status = 422 if form.is_bound and form.errors else 200
    return render_page(request, "integrations/flows/build.html", context, partial="build_form", status=status)


@require_POST
@workspace_role_required(WORKSPACE_EDITORS)
def flow_step_add_view(request, client_slug, pk):
    """Add a target to a flow; its outbound mapping opens next, to say which fields go where."""
    from tenants.plans import PlanLimitReached

    flow = _flow(pk)
    form = FlowStepForm(request.POST, entities=_flow_entities(flow))
    if form.is_valid():
        connection, object_name = form.cleaned_data["target"]
        try:
            step = flow_step_add(
                flow=flow,
                target_connection=connection,
                target_object=object_name,
                entity=form.cleaned_data["entity"],
                actor=request.user,
            )
        except (FlowConfigurationError, PlanLimitReached) as refused:
            form.add_error(None, getattr(refused, "message", None) or str(refused))
        else:
            messages.success(request, f"“{step.name}” is added. Choose which fields it writes.")
            return redirect_to(request, url(request, "mapping_editor", step.outbound_mapping_id))
    context = _flow_context(request, flow, step_form=form)
    return render_page(request, "integrations/flows/detail.html", context, partial="step_form", status=422)
