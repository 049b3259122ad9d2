"""Pages where people create and revoke API keys: partner keys in the partner console, client keys in
the workspace. A new key is shown once, on the page that answers its creation."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from api.forms import ApiKeyForm, WebhookForm
from api.models import ApiKey, PartnerApiCall, WebhookDelivery, WebhookSubscription
from api.selectors import client_keys, partner_keys
from api.services import ApiKeyRefused, api_key_create, api_key_revoke
from tenants.decorators import WORKSPACE_EDITORS, partner_role_required, workspace_role_required
from tenants.models import Role


def _partner_context(request, form=None, issued=None) -> dict:
    return {
        "keys": partner_keys(request.partner),
        "calls": PartnerApiCall.objects.filter(partner=request.partner)[:20],
        "form": form or ApiKeyForm(partner_key=True),
        "issued": issued,
        "section": "api",
    }


def _key_issue(request, form: ApiKeyForm, *, partner, client):
    """The key the form asks for (shown once by the caller), or None with the form saying why."""
    if not form.is_valid():
        return None
    try:
        return api_key_create(
            partner=partner,
            client=client,
            name=form.cleaned_data["name"],
            scopes=form.scopes(),
            expires_at=form.expires_at(),
            actor=request.user,
        )
    except ApiKeyRefused as refused:
        form.add_error(None, str(refused))
        return None


@partner_role_required(Role.PARTNER_ADMIN)
def partner_api_keys(request):
    if request.method != "POST":
        return render(request, "api/partner_keys.html", _partner_context(request))
    form = ApiKeyForm(request.POST, partner_key=True)
    issued = _key_issue(request, form, partner=request.partner, client=None)
    if issued is not None:
        return render(request, "api/partner_keys.html", _partner_context(request, issued=issued), status=201)
    return render(request, "api/partner_keys.html", _partner_context(request, form), status=422)


@require_POST
@partner_role_required(Role.PARTNER_ADMIN)
def partner_api_key_revoke(request, pk):
    key = get_object_or_404(ApiKey, partner=request.partner, client__isnull=True, pk=pk)
    api_key_revoke(key=key, actor=request.user)
    messages.success(request, f"“{key.name}” is revoked: programs using it are refused from now on.")
    return redirect(reverse("partner_api_keys"))


def _workspace_context(request, form=None, issued=None) -> dict:
    return {
        "keys": client_keys(request.client),
        "form": form or ApiKeyForm(partner_key=False),
        "issued": issued,
        "section": "api",
        "can_edit": True,  # only editors reach these pages; the People tabs show the link to them
    }


@workspace_role_required(WORKSPACE_EDITORS)
def workspace_api_keys(request, client_slug):
    if request.method != "POST":
        return render(request, "api/workspace_keys.html", _workspace_context(request))
    form = ApiKeyForm(request.POST, partner_key=False)
    issued = _key_issue(request, form, partner=request.client.partner, client=request.client)
    if issued is not None:
        return render(request, "api/workspace_keys.html", _workspace_context(request, issued=issued), status=201)
    return render(request, "api/workspace_keys.html", _workspace_context(request, form), status=422)


@require_POST
@workspace_role_required(WORKSPACE_EDITORS)
def workspace_api_key_revoke(request, client_slug, pk):
    key = get_object_or_404(ApiKey, client=request.client, pk=pk)
    api_key_revoke(key=key, actor=request.user)
    messages.success(request, f"“{key.name}” is revoked: programs using it are refused from now on.")
    return redirect(reverse("workspace_api_keys", args=[client_slug]))


# --- Webhooks ---------------------------------------------------------------------------------------


def _webhooks_context(subscriptions, form=None, issued=None, **extra) -> dict:
    return {
        "subscriptions": subscriptions,
        "deliveries": WebhookDelivery.objects.filter(subscription__in=subscriptions)
        .select_related("subscription", "client")
        .order_by("-created_at", "-id")[:50],
        "form": form or WebhookForm(),
        "issued": issued,
        **extra,
    }


def _webhook_create(request, *, client, template: str, subscriptions, extra: dict):
    from api.webhooks import WebhookRefused, webhook_subscription_create

    form = WebhookForm(request.POST)
    if form.is_valid():
        try:
            subscription, secret = webhook_subscription_create(
                partner=request.partner,
                client=client,
                url=form.cleaned_data["url"],
                events=form.cleaned_data["events"],
                actor=request.user,
            )
        except WebhookRefused as refused:
            form.add_error("url", str(refused))
        else:
            issued = {"subscription": subscription, "secret": secret}
            return render(request, template, _webhooks_context(subscriptions, issued=issued, **extra), status=201)
    return render(request, template, _webhooks_context(subscriptions, form, **extra), status=422)


@partner_role_required(Role.PARTNER_ADMIN)
def partner_webhooks(request):
    subscriptions = WebhookSubscription.objects.filter(partner=request.partner, client__isnull=True)
    extra = {"section": "api"}
    if request.method == "POST":
        return _webhook_create(
            request, client=None, template="api/partner_webhooks.html", subscriptions=subscriptions, extra=extra
        )
    return render(request, "api/partner_webhooks.html", _webhooks_context(subscriptions, **extra))


@require_POST
@partner_role_required(Role.PARTNER_ADMIN)
def partner_webhook_delete(request, pk):
    from api.webhooks import webhook_subscription_delete

    subscription = get_object_or_404(WebhookSubscription, partner=request.partner, client__isnull=True, pk=pk)
    webhook_subscription_delete(subscription=subscription, actor=request.user)
    messages.success(request, f"Events are no longer posted to {subscription.url}.")
    return redirect(reverse("partner_webhooks"))


@workspace_role_required(WORKSPACE_EDITORS)
def workspace_webhooks(request, client_slug):
    subscriptions = WebhookSubscription.objects.filter(client=request.client)
    extra = {"section": "webhooks", "can_edit": True}
    if request.method == "POST":
        return _webhook_create(
            request,
            client=request.client,
            template="api/workspace_webhooks.html",
            subscriptions=subscriptions,
            extra=extra,
        )
    return render(request, "api/workspace_webhooks.html", _webhooks_context(subscriptions, **extra))


@require_POST
@workspace_role_required(WORKSPACE_EDITORS)
def workspace_webhook_delete(request, client_slug, pk):
    from api.webhooks import webhook_subscription_delete

    subscription = get_object_or_404(WebhookSubscription, client=request.client, pk=pk)
    webhook_subscription_delete(subscription=subscription, actor=request.user)
    messages.success(request, f"Events are no longer posted to {subscription.url}.")
    return redirect(reverse("workspace_webhooks", args=[client_slug]))
