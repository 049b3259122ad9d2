"""Change requests: the client's workspace pages (ask, read, decide, withdraw, comment) and the partner console's
(the queue of every client it may reach, quote, deliver, comment). Thin: the services check roles and statuses."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.views.decorators.http import require_POST

from tenants.changes_forms import ChangeRequestForm, CommentForm, DecisionForm, DeliverForm, QuoteForm
from tenants.decorators import WORKSPACE_ALL, partner_role_required, workspace_role_required
from tenants.models import ChangeRequest, Role
from tenants.models.changes import OPEN_STATUSES
from tenants.selectors.access import workspaces_for
from tenants.selectors.changes import change_request_counts, change_requests_for_partner, change_requests_of
from tenants.services import changes as services
from tenants.templatetags.console import money
from tenants.views.support import redirect_to, render_page

CLIENT_DECIDERS = services.CLIENT_DECIDERS
CLIENT_COMMENTERS = services.CLIENT_COMMENTERS
STATUS_FILTERS = {"open": "Open", "all": "All"}


# --- The client's workspace ---------------------------------------------------------------------------------------


def _workspace_change(request, number: int) -> ChangeRequest:
    """A request of this workspace's client only: another client's number is simply not found."""
    return get_object_or_404(
        ChangeRequest.objects.select_related("client__plan", "requested_by", "quoted_by", "delivered_by"),
        client=request.client,
        number=number,
    )


@workspace_role_required(WORKSPACE_ALL)
def workspace_changes(request, client_slug):
    rows = change_requests_of(request.client)
    context = {
        "change_requests": rows,
        "counts": change_request_counts(rows),
        "can_request": request.workspace_role in CLIENT_DECIDERS,
        "section": "changes",
    }
    return render_page(request, "tenants/changes/workspace_list.html", context)


@workspace_role_required(CLIENT_DECIDERS)
def workspace_change_new(request, client_slug):
    form = ChangeRequestForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            change_request = services.change_request_create(
                client=request.client, actor=request.user, **form.cleaned_data
            )
        except services.ChangeRequestRefused as refused:
            form.add_error(None, str(refused))
        else:
            messages.success(request, f"Change request {change_request.label} sent; you will be emailed its quote.")
            return redirect_to(request, reverse("workspace_change", args=[client_slug, change_request.number]))
    status = 422 if form.is_bound and form.errors else 200
    return render_page(
        request,
        "tenants/changes/workspace_new.html",
        {"form": form, "section": "changes"},
        partial="form",
        status=status,
    )


def _workspace_detail(request, change_request, *, decision_error="", comment_form=None, status=200):
    role = request.workspace_role
    context = {
        "change_request": change_request,
        "comments": change_request.comments.select_related("author"),
        "can_decide": role in CLIENT_DECIDERS and change_request.status == ChangeRequest.Status.QUOTED,
        "can_withdraw": role in CLIENT_DECIDERS
        and change_request.status in (ChangeRequest.Status.REQUESTED, ChangeRequest.Status.QUOTED),
        "can_comment": role in CLIENT_COMMENTERS,
        "partner_side": role in services.PARTNER_WORKERS,
        "decision_form": DecisionForm(initial={"quote_version": change_request.quote_version}),
        "decision_error": decision_error,
        "comment_form": comment_form or CommentForm(),
        "section": "changes",
    }
    return render_page(request, "tenants/changes/workspace_detail.html", context, status=status)


@workspace_role_required(WORKSPACE_ALL)
def workspace_change(request, client_slug, number):
    return _workspace_detail(request, _workspace_change(request, number))


def _workspace_back(request, change_request):
    return redirect_to(request, reverse("workspace_change", args=[request.client.slug, change_request.number]))


@require_POST
@workspace_role_required(CLIENT_DECIDERS)
def workspace_change_decide(request, client_slug, number):
    change_request = _workspace_change(request, number)
    form = DecisionForm(request.POST)
    approve = request.POST.get("decision") == "approve"
    if not form.is_valid():
        return _workspace_detail(
            request, change_request, decision_error="Open the quote again before you decide.", status=422
        )
    try:
        if approve:
            services.change_request_approve(
                change_request=change_request, actor=request.user, quote_version=form.cleaned_data["quote_version"]
            )
        else:
            services.change_request_decline(
                change_request=change_request,
                actor=request.user,
                quote_version=form.cleaned_data["quote_version"],
                reason=form.cleaned_data["reason"],
            )
    except services.ChangeRequestRefused as refused:
        # The page again as it is now (a new quote, or a request decided meanwhile), with the reason.
        change_request.refresh_from_db()
        return _workspace_detail(request, change_request, decision_error=str(refused), status=422)
    messages.success(
        request,
        f"Approved {change_request.label}: it is billed on this month's statement."
        if approve
        else f"Declined the quote for {change_request.label}.",
    )
    return _workspace_back(request, change_request)


@require_POST
@workspace_role_required(CLIENT_DECIDERS)
def workspace_change_withdraw(request, client_slug, number):
    change_request = _workspace_change(request, number)
    try:
        services.change_request_withdraw(change_request=change_request, actor=request.user)
    except services.ChangeRequestRefused as refused:
        messages.error(request, str(refused))
    else:
        messages.success(request, f"Withdrew {change_request.label}.")
    return _workspace_back(request, change_request)


@require_POST
@workspace_role_required(CLIENT_COMMENTERS)
def workspace_change_comment(request, client_slug, number):
    return _comment_post(request, _workspace_change(request, number), back=_workspace_back, detail=_workspace_detail)


def _comment_post(request, change_request, *, back, detail):
    """A comment from either side of the thread; the page again with the reason when it is refused."""
    form = CommentForm(request.POST)
    if form.is_valid():
        try:
            services.change_request_comment(change_request=change_request, actor=request.user, **form.cleaned_data)
        except services.ChangeRequestRefused as refused:
            form.add_error("body", str(refused))
        else:
            messages.success(request, "Comment posted.")
            return back(request, change_request)
    return detail(request, change_request, comment_form=form, status=422)


# --- The partner console --------------------------------------------------------------------------------------------


def _partner_change(request, pk: int) -> ChangeRequest:
    """A request of a client this person may reach under this host's partner, else 404 (another partner's, or a
    client the staff member is not assigned to, is not found)."""
    return get_object_or_404(
        change_requests_for_partner(request.user, request.partner).select_related(
            "requested_by", "quoted_by", "delivered_by"
        ),
        pk=pk,
    )


@partner_role_required(Role.PARTNER_ADMIN, Role.PARTNER_STAFF)
def partner_changes(request):
    shown = request.GET.get("show") if request.GET.get("show") in STATUS_FILTERS else "open"
    everything = change_requests_for_partner(request.user, request.partner)
    # ?client=<slug>: one client's requests, among those this person reaches (any other slug shows nothing).
    client = None
    if request.GET.get("client"):
        client = workspaces_for(request.user, request.partner).filter(slug=request.GET["client"]).first()
        everything = everything.filter(client=client) if client else everything.none()
    context = {
        "change_requests": everything if shown == "all" else everything.filter(status__in=OPEN_STATUSES),
        "counts": change_request_counts(everything),
        "shown": shown,
        "filters": STATUS_FILTERS,
        "this_client": client,
        "section": "changes",
    }
    return render_page(request, "tenants/changes/partner_list.html", context)


def _partner_detail(request, change_request, *, quote_form=None, deliver_form=None, comment_form=None, status=200):
    context = {
        "change_request": change_request,
        "this_client": change_request.client,
        "comments": change_request.comments.select_related("author"),
        "can_quote": change_request.status in (ChangeRequest.Status.REQUESTED, ChangeRequest.Status.QUOTED),
        "can_deliver": change_request.status == ChangeRequest.Status.APPROVED,
        "quote_form": quote_form or _quote_form(change_request),
        "deliver_form": deliver_form or DeliverForm(),
        "comment_form": comment_form or CommentForm(),
        "section": "changes",
    }
    return render_page(request, "tenants/changes/partner_detail.html", context, status=status)


def _quote_form(change_request, data=None) -> QuoteForm:
    initial = {"note": change_request.quote_note}
    if change_request.quote_hours is not None:
        initial.update(basis="hours", hours=change_request.quote_hours)
    elif change_request.quote_amount is not None:
        initial.update(basis="fee", fee=change_request.quote_amount)
    return QuoteForm(data, plan=change_request.client.plan, initial=initial)


@partner_role_required(Role.PARTNER_ADMIN, Role.PARTNER_STAFF)
def partner_change(request, pk):
    return _partner_detail(request, _partner_change(request, pk))


def _partner_back(request, change_request):
    return redirect_to(request, reverse("partner_change", args=[change_request.pk]))


@require_POST
@partner_role_required(Role.PARTNER_ADMIN, Role.PARTNER_STAFF)
def partner_change_quote(request, pk):
    change_request = _partner_change(request, pk)
    form = _quote_form(change_request, request.POST)
    if form.is_valid():
        try:
            quoted = services.change_request_quote(
                change_request=change_request,
                actor=request.user,
                hours=form.cleaned_data.get("hours"),
                fee=form.cleaned_data.get("fee"),
                note=form.cleaned_data["note"],
            )
        except services.ChangeRequestRefused as refused:
            form.add_error(None, str(refused))
        else:
            messages.success(
                request, f"Quote sent to {quoted.client.name}: {money(quoted.quote_amount, quoted.currency)}."
            )
            return _partner_back(request, change_request)
    return _partner_detail(request, change_request, quote_form=form, status=422)


@require_POST
@partner_role_required(Role.PARTNER_ADMIN, Role.PARTNER_STAFF)
def partner_change_deliver(request, pk):
    change_request = _partner_change(request, pk)
    form = DeliverForm(request.POST)
    if form.is_valid():
        try:
            services.change_request_deliver(change_request=change_request, actor=request.user, **form.cleaned_data)
        except services.ChangeRequestRefused as refused:
            form.add_error(None, str(refused))
        else:
            messages.success(request, f"Marked {change_request.label} delivered; {change_request.client.name} is told.")
            return _partner_back(request, change_request)
    return _partner_detail(request, change_request, deliver_form=form, status=422)


@require_POST
@partner_role_required(Role.PARTNER_ADMIN, Role.PARTNER_STAFF)
def partner_change_comment(request, pk):
    return _comment_post(request, _partner_change(request, pk), back=_partner_back, detail=_partner_detail)
