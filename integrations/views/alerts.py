"""Alerts: who the workspace emails when a run fails, a connection fails, exceptions pass the SLA."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_POST, require_safe

from integrations import selectors
from integrations.forms.alerts import AlertEventsForm, AlertRecipientForm, alert_event_choices
from integrations.models import NotificationRecipient
from integrations.services.alerts import (
    AlertRecipientRefused,
    alert_recipient_add,
    alert_recipient_remove,
    alert_recipient_update,
)
from integrations.views.support import redirect_to, render_page, sla_hours, url, wants_partial, with_events
from tenants.decorators import WORKSPACE_ALL, WORKSPACE_EDITORS, workspace_role_required

TEMPLATE = "integrations/alerts/list.html"
NEW_RECIPIENT_EVENTS = ["on_run_failed", "on_connection_failed", "on_sla_breach"]
EVENT_HINTS = {
    "on_run_failed": "A sync stopped before it finished.",
    "on_connection_failed": "A system refused the credentials or could not be reached: once, when it starts failing.",
    "on_sla_breach": "At most once a day, about the whole exception queue.",
    "on_deal_won": "Projects created from won deals, for delivery leadership.",
}


def _edit_form(request, recipient: NotificationRecipient, flows: list, data=None) -> AlertEventsForm:
    return AlertEventsForm(
        data,
        prefix=f"r{recipient.pk}",
        flows=flows,
        sla_hours=sla_hours(request),
        initial={"events": recipient.events(), "flows": list(recipient.flows.all())},
    )


def _add_form(request, flows: list, data=None) -> AlertRecipientForm:
    return AlertRecipientForm(data, flows=flows, sla_hours=sla_hours(request), initial={"events": NEW_RECIPIENT_EVENTS})


def _flows(recipients) -> list:
    """The flows the forms offer: the main flows, and any a recipient is limited to already."""
    return selectors.alert_flows(chosen=[flow for recipient in recipients for flow in recipient.flows.all()])


def _context(request, *, add_form=None, refused_change=None) -> dict:
    """The page; `refused_change` is the form of a change that failed, shown open with its errors."""
    recipients = selectors.alert_recipients()
    flows = _flows(recipients)
    can_edit = request.workspace_role in WORKSPACE_EDITORS
    for recipient in recipients:
        if refused_change is not None and refused_change.prefix == f"r{recipient.pk}":
            recipient.form = refused_change
        elif can_edit:
            recipient.form = _edit_form(request, recipient, flows)
    return {
        "recipients": recipients,
        "add_form": (add_form or _add_form(request, flows)) if can_edit else None,
        "event_labels": dict(alert_event_choices(sla_hours(request))),
        "event_hints": EVENT_HINTS,
        "section": "alerts",
    }


@require_safe
@workspace_role_required(WORKSPACE_ALL)
def alert_list(request, client_slug):
    return render_page(request, TEMPLATE, _context(request), partial="recipients")


@require_POST
@workspace_role_required(WORKSPACE_EDITORS)
def alert_recipient_add_view(request, client_slug):
    form = _add_form(request, _flows(selectors.alert_recipients()), request.POST)
    if form.is_valid():
        try:
            recipient = alert_recipient_add(
                email=form.cleaned_data["email"],
                events=form.cleaned_data["events"],
                flows=form.cleaned_data["flows"],
                actor=request.user,
            )
        except AlertRecipientRefused as refused:
            form.add_error("email", str(refused))
        else:
            note = f"{recipient.email} is on the alert list."
            if wants_partial(request):  # a fresh form; the list refreshes itself on the event
                response = render_page(request, TEMPLATE, _context(request), partial="add_form")
                return with_events(response, "alerts-changed", toast=note)
            messages.success(request, note)
            return redirect_to(request, url(request, "alert_list"))
    return render_page(request, TEMPLATE, _context(request, add_form=form), partial="add_form", status=422)


@require_POST
@workspace_role_required(WORKSPACE_EDITORS)
def alert_recipient_save(request, client_slug, pk):
    recipient = get_object_or_404(NotificationRecipient, pk=pk)
    form = _edit_form(request, recipient, _flows(selectors.alert_recipients()), request.POST)
    if form.is_valid():
        try:
            alert_recipient_update(
                recipient=recipient,
                events=form.cleaned_data["events"],
                flows=form.cleaned_data["flows"],
                actor=request.user,
            )
        except AlertRecipientRefused as refused:
            form.add_error(None, str(refused))
        else:
            note = f"Saved the alerts of {recipient.email}."
            if wants_partial(request):
                return with_events(HttpResponse(status=204), "alerts-changed", toast=note)
            messages.success(request, note)
            return redirect_to(request, url(request, "alert_list"))
    context = _context(request, refused_change=form)
    context["recipient"] = next(r for r in context["recipients"] if r.pk == recipient.pk)
    return render_page(request, TEMPLATE, context, partial="recipient_row", status=422)


@require_POST
@workspace_role_required(WORKSPACE_EDITORS)
def alert_recipient_remove_view(request, client_slug, pk):
    recipient = get_object_or_404(NotificationRecipient, pk=pk)
    email = recipient.email
    alert_recipient_remove(recipient=recipient, actor=request.user)
    note = f"{email} no longer gets alerts."
    if wants_partial(request):
        return with_events(HttpResponse(status=204), "alerts-changed", toast=note)
    messages.success(request, note)
    return redirect_to(request, url(request, "alert_list"))
