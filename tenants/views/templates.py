"""The partner's integration templates: save a client's flow as a version, deploy it, upgrade clients.

Partner admins do all of it; partner staff read the templates and the versions of the clients
assigned to them.
"""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.views.decorators.http import require_POST, require_safe

from tenants import template_selectors as selectors
from tenants import template_services as services
from tenants.decorators import partner_role_required
from tenants.forms import TemplateDeployForm, TemplateSaveForm
from tenants.models import IntegrationTemplate, Role
from tenants.selectors import workspaces_for
from tenants.views.support import is_partner_admin, redirect_to, render_page


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
    """GET shows the form (with ?client= it lists that client's flows); POST saves the version."""
    if request.method == "POST":
        form = TemplateSaveForm(request.POST, partner=request.partner, template=template)
    else:
        form = TemplateSaveForm(
            initial={"client": request.GET.get("client")}, partner=request.partner, template=template
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


def _detail_context(request, template: IntegrationTemplate, deploy_form=None) -> dict:
    admin = is_partner_admin(request)
    summaries = selectors.version_summaries(template)
    latest = summaries[0].version if summaries else None
    rows = selectors.deployment_rows(template, workspaces_for(request.user, request.partner))
    for row in rows:
        row.upgradable = latest is not None and (row.offered < latest.number or row.behind(latest.number))
    context = {
        "template": template,
        "summaries": summaries,
        "latest": latest,
        "current": summaries[0] if summaries else None,
        "rows": rows,
        "behind": [row for row in rows if row.upgradable],
        "is_admin": admin,
        "section": "templates",
    }
    if admin and latest is not None:
        context["deploy_form"] = deploy_form or TemplateDeployForm(template=template, initial={"version": latest.pk})
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
    outcomes = services.deployments_upgrade(template=template, version=latest, actor=request.user)
    if not outcomes:
        messages.success(request, f"Every client is already on v{latest.number}.")
    for outcome in outcomes:
        (messages.error if outcome.refused else messages.success)(request, outcome.message)
    return redirect_to(request, reverse("partner_template", args=[template.pk]))
