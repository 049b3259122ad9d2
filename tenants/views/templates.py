"""The partner's integration templates: save a client's flow as a version, deploy it, upgrade clients,
rename, withdraw an offer, delete.

Partner admins do all of it; partner staff read the templates and the versions of the clients
assigned to them.
"""

from __future__ import annotations

from datetime import timedelta

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.template.defaultfilters import pluralize
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST, require_safe

from integrations.partner_templates import selectors, services
from integrations.partner_templates.forms import TemplateDeployForm, TemplateEditForm, TemplateSaveForm
from tenants.decorators import partner_role_required
from tenants.models import IntegrationTemplate, Role, TemplateRollout
from tenants.selectors.access import workspaces_for
from tenants.views.support import is_partner_admin, redirect_to, refusal_said, render_page, wants_partial


def _template(request, pk) -> IntegrationTemplate:
    """One of this partner's templates, else 404 (another partner's id reveals nothing)."""
    return get_object_or_404(IntegrationTemplate.objects.select_related("partner"), partner=request.partner, pk=pk)


@require_safe
@partner_role_required(Role.PARTNER_ADMIN, Role.PARTNER_STAFF)
def template_list(request):
    context = {
        "templates": selectors.partner_templates(request.partner),
        "is_admin": is_partner_admin(request),
        "section": "templates",
    }
    return render_page(request, "tenants/templates.html", context)


@partner_role_required(Role.PARTNER_ADMIN)
def template_new(request):
    return _save_form(request, None)


@partner_role_required(Role.PARTNER_ADMIN)
def template_version_new(request, pk):
    return _save_form(request, _template(request, pk))


def _save_form(request, template: IntegrationTemplate | None):
    """GET shows the form (with ?client= it lists that client's flows, with &flow= the value maps that one
    carries); POST saves the version."""
    if request.method == "POST":
        form = TemplateSaveForm(request.POST, partner=request.partner, template=template)
    else:
        form = TemplateSaveForm(
            initial={"client": request.GET.get("client"), "flow": request.GET.get("flow")},
            partner=request.partner,
            template=template,
        )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            version = services.template_version_save(
                partner=request.partner,
                client=data["client"],
                flow_id=data["flow"],
                actor=request.user,
                template=template,
                name=data.get("name", ""),
                summary=data.get("summary", ""),
                notes=data.get("notes", ""),
                without_entries=form.without_entries,
            )
        except services.TemplateRefused as refused:
            form.add_error("flow", str(refused))
        else:
            saved = version.template
            if version.number == 1:
                messages.success(request, f"“{saved.name}” v1 saved. Deploy it to the clients who should run it.")
            else:
                messages.success(request, f"“{saved.name}” v{version.number} saved. Upgrade the clients below.")
            return redirect_to(request, reverse("partner_template", args=[saved.pk]))
    context = {"form": form, "template": template, "section": "templates"}
    status = 422 if form.is_bound and form.errors else 200
    return render_page(request, "tenants/template_save.html", context, partial="save_form", status=status)


def _rollout_shown(template: IntegrationTemplate) -> TemplateRollout | None:
    """The latest “Upgrade all”, while it runs and for a day after (its refusals are worth reading)."""
    rollout = template.rollouts.select_related("version").first()
    if rollout is None or (not rollout.running and rollout.finished_at < timezone.now() - timedelta(days=1)):
        return None
    return rollout


def _detail_context(request, template: IntegrationTemplate, deploy_form=None, edit_form=None) -> dict:
    admin = is_partner_admin(request)
    summaries = selectors.version_summaries(template)
    latest = summaries[0].version if summaries else None
    rows = selectors.deployment_rows(template, workspaces_for(request.user, request.partner))
    for row in rows:
        row.upgradable = latest is not None and (row.offered < latest.number or row.behind(latest.number))
    context = {
        "template": template,
        "rollout": _rollout_shown(template),
        "summaries": summaries,
        "latest": latest,
        "current": summaries[0] if summaries else None,
        "rows": rows,
        "behind": [row for row in rows if row.upgradable],
        # An unreadable schema may hold installed flows: deleting waits for it like for a client that runs it.
        "running": [row for row in rows if row.installed or row.unavailable],
        "is_admin": admin,
        "section": "templates",
    }
    if admin and latest is not None:
        states = {row.client.pk: row.state for row in rows}
        if deploy_form is not None:
            deploy_form.states = states
        context["deploy_form"] = deploy_form or TemplateDeployForm(
            template=template, states=states, initial={"version": latest.pk}
        )
    if admin:
        context["edit_form"] = edit_form or TemplateEditForm(
            initial={"name": template.name, "summary": template.summary}
        )
    return context


@require_safe
@partner_role_required(Role.PARTNER_ADMIN, Role.PARTNER_STAFF)
def template_detail(request, pk):
    template = _template(request, pk)
    return render_page(request, "tenants/template_detail.html", _detail_context(request, template))


@require_POST
@partner_role_required(Role.PARTNER_ADMIN)
def template_deploy(request, pk):
    template = _template(request, pk)
    form = TemplateDeployForm(request.POST, template=template)
    if not form.is_valid():
        context = _detail_context(request, template, deploy_form=form)
        return render_page(request, "tenants/template_detail.html", context, partial="deploy_form", status=422)
    version, clients = form.cleaned_data["version"], list(form.cleaned_data["clients"])
    services.template_deploy(template=template, version=version, clients=clients, actor=request.user)
    names = ", ".join(client.name for client in clients)
    messages.success(
        request, f"v{version.number} offered to {names}. Each installs it with its own connections from its Flows page."
    )
    return redirect_to(request, reverse("partner_template", args=[template.pk]))


def _latest(template: IntegrationTemplate):
    return template.versions.order_by("-number").first()


@require_POST
@partner_role_required(Role.PARTNER_ADMIN)
def template_upgrade(request, pk, deployment):
    template = _template(request, pk)
    target = get_object_or_404(template.deployments.select_related("client", "template__partner"), pk=deployment)
    outcome = services.deployment_upgrade(deployment=target, version=_latest(template), actor=request.user)
    (messages.error if outcome.refused else messages.success)(request, outcome.message)
    return redirect_to(request, reverse("partner_template", args=[template.pk]))


@require_POST
@partner_role_required(Role.PARTNER_ADMIN)
def template_upgrade_all(request, pk):
    template = _template(request, pk)
    latest = _latest(template)
    try:
        rollout = services.rollout_start(template=template, version=latest, actor=request.user)
    except services.TemplateRefused as refused:
        messages.error(request, str(refused))
    else:
        messages.success(
            request,
            f"Moving {rollout.total} client{pluralize(rollout.total)} to v{latest.number}, one at a time: "
            "this page shows how far it has gone.",
        )
    return redirect_to(request, reverse("partner_template", args=[template.pk]))


@require_safe
@partner_role_required(Role.PARTNER_ADMIN, Role.PARTNER_STAFF)
def template_rollout(request, pk):
    """The “Upgrade all” panel, polled while it runs; once it has finished, the whole page again (each client's
    version changed under it)."""
    template = _template(request, pk)
    rollout = _rollout_shown(template)
    if wants_partial(request) and rollout is not None and not rollout.running:
        response = HttpResponse(status=204)
        response["HX-Refresh"] = "true"
        return response
    return render_page(
        request, "tenants/template_detail.html", {"template": template, "rollout": rollout}, partial="rollout"
    )


@require_POST
@partner_role_required(Role.PARTNER_ADMIN)
def template_edit(request, pk):
    template = _template(request, pk)
    form = TemplateEditForm(request.POST)
    if form.is_valid():
        before = template.name
        try:
            template = services.template_update(
                template=template,
                name=form.cleaned_data["name"],
                summary=form.cleaned_data["summary"],
                actor=request.user,
            )
        except services.TemplateRefused as refused:
            form.add_error("name", str(refused))
        else:
            if template.name != before:
                messages.success(request, f"“{before}” is now called “{template.name}”. Clients see the new name.")
            else:
                messages.success(request, f"“{template.name}” is saved.")
            return redirect_to(request, reverse("partner_template", args=[template.pk]))
    context = _detail_context(request, template, edit_form=form)
    return render_page(request, "tenants/template_detail.html", context, partial="edit_form", status=422)


@require_POST
@partner_role_required(Role.PARTNER_ADMIN)
def template_withdraw(request, pk, deployment):
    """Withdraw the offer from a client that has not installed it, after the page's confirmation."""
    template = _template(request, pk)
    target = get_object_or_404(template.deployments.select_related("client"), pk=deployment)
    with refusal_said(request, services.TemplateRefused):
        services.deployment_withdraw(deployment=target, actor=request.user)
        messages.success(
            request, f"“{template.name}” is withdrawn from {target.client.name}: its Flows page no longer offers it."
        )
    return redirect_to(request, reverse("partner_template", args=[template.pk]))


@require_POST
@partner_role_required(Role.PARTNER_ADMIN)
def template_delete(request, pk):
    """Delete after the page's confirmation; refused, with the clients named, while any client runs it."""
    template = _template(request, pk)
    name = template.name
    try:
        withdrawn = services.template_delete(template=template, actor=request.user)
    except services.TemplateRefused as refused:
        messages.error(request, str(refused))
        return redirect_to(request, reverse("partner_template", args=[template.pk]))
    offers = f" and its offer to {len(withdrawn)} client{'s' if len(withdrawn) != 1 else ''}" if withdrawn else ""
    messages.success(request, f"“{name}” is deleted, with its versions{offers}.")
    return redirect_to(request, reverse("partner_templates"))
