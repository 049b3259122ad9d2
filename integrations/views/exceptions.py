"""One exception: its page, and fixing it (edit, map, retry, decide a duplicate, set a cost rate, ignore), assigning
and commenting. The queue that lists them is integrations.views.queue."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404
from django.utils import timezone
from django.views.decorators.http import require_POST, require_safe

from integrations import selectors
from integrations.forms.queue import (
    AssignForm,
    CommentForm,
    CostRateForm,
    EditFieldForm,
    IgnoreForm,
    MapValueForm,
)
from integrations.models import SyncException, ValueMap
from integrations.services.exceptions import (
    ExceptionActionRefused,
    RetryUnreachable,
    exception_assign,
    exception_comment,
    exception_edit_and_retry,
    exception_ignore,
    exception_retry,
    retrying,
    value_map_entry_add_and_retry,
)
from integrations.services.matching import exception_duplicate_resolve, exception_pick, resource_cost_rate_set
from integrations.views.queue import counters_for
from integrations.views.support import (
    redirect_to,
    render_page,
    url,
    wants_partial,
    with_events,
    workspace_people,
)
from tenants.decorators import WORKSPACE_ALL, WORKSPACE_FINANCE, workspace_role_required
from tenants.models import User

# Exceptions a person decides (which record is which); retrying them alone changes nothing.
DECISION_CODES = ("DUPLICATE_IN_SOURCE", "AMBIGUOUS_MATCH")


# --- One exception ----------------------------------------------------------------------------


def _exception(request, pk) -> SyncException:
    try:
        return selectors.exception_get(pk)
    except SyncException.DoesNotExist:
        raise Http404("No such exception in this workspace") from None


def _fixes(exception: SyncException, paths: list[str]) -> list[dict]:
    """The exception's fix actions as things a clerk can do, each with its form."""
    fixes = []
    seen = set()
    for fix in exception.fix_actions or []:
        action = fix.get("action")
        if action in seen and action not in ("map_value", "same", "pick"):
            continue
        seen.add(action)
        if action == "map_value":
            value_map = ValueMap.objects.filter(key=fix.get("value_map", "")).first()
            if value_map is None:
                continue
            fixes.append(
                {
                    "kind": "map_value",
                    "value_map": value_map,
                    "value": fix.get("value", ""),
                    "fixes": selectors.exceptions_fixed_by(value_map=value_map.key, value=fix.get("value", "")),
                    "suggestions": selectors.map_value_suggestions(exception=exception, value_map_key=value_map.key),
                    "form": MapValueForm(
                        initial={"value_map": value_map.key, "source_value": fix.get("value", "")},
                        prefix=f"map-{len(fixes)}",
                    ),
                }
            )
        elif action == "same":
            # A pair of duplicates: one choice per record to keep, then "different" (added below).
            pair = next((f for f in fixes if f["kind"] == "same"), None)
            if pair is None:
                pair = {"kind": "same", "choices": []}
                fixes.append(pair)
            pair["choices"].append({"keep": fix.get("keep", ""), "label": fix.get("label") or fix.get("keep", "")})
        elif action == "pick":
            picking = next((f for f in fixes if f["kind"] == "pick"), None)
            if picking is None:
                picking = {"kind": "pick", "choices": []}
                fixes.append(picking)
            picking["choices"].append({"record": fix.get("record"), "label": fix.get("label", "")})
        elif action == "different":
            for fix_row in fixes:
                if fix_row["kind"] in ("same", "pick"):
                    fix_row["different"] = True
        elif action == "set_cost_rate":
            fixes.append({"kind": "set_cost_rate", "form": CostRateForm()})
        elif action == "edit_field" and exception.payload.get("data") is not None:
            suggested = fix.get("field", "")
            current = dict(selectors.record_fields(exception.payload["data"])).get(suggested, "")
            fixes.append(
                {
                    "kind": "edit_field",
                    "field": suggested,
                    "form": EditFieldForm(initial={"field": suggested, "value": "" if current == "—" else current}),
                    "paths": paths,
                }
            )
    return fixes


def _detail_context(request, exception: SyncException, **extra) -> dict:
    data = exception.payload.get("data") if isinstance(exception.payload, dict) else None
    record = selectors.record_fields(data if data is not None else exception.payload)
    paths = [path for path, _ in record]
    people = workspace_people(request.client)
    nearby = SyncException.objects.filter(status=SyncException.Status.OPEN).exclude(pk=exception.pk)
    following = (
        nearby.filter(created_at__gte=exception.created_at)
        .exclude(created_at=exception.created_at, pk__lt=exception.pk)
        .order_by("created_at", "id")
        .values_list("pk", flat=True)
        .first()
    )
    context = {
        "exception": exception,
        "record": record,
        "fixes": _fixes(exception, paths) if exception.is_live else [],
        "comments": list(exception.comments.all()),
        "history": selectors.exception_history(exception),
        "assign_form": AssignForm(
            initial={"assignee": str(exception.assignee_id or "")}, people=people, prefix="assign"
        ),
        "ignore_form": IgnoreForm(prefix="ignore"),
        "comment_form": CommentForm(prefix="comment"),
        # A pair of duplicates or a choice between matches is a person's decision: retrying changes nothing.
        "retryable": exception.is_live
        and exception.error_code not in DECISION_CODES
        and (data is not None or exception.object == "invoice" or bool(exception.cause)),
        "waiting": selectors.exception_waiting(exception),
        "waiting_on": selectors.exception_waiting_on(exception),
        "next_pk": following,
        "open_for": (exception.resolved_at or timezone.now()) - exception.created_at,
        "counters": counters_for(request),
        "section": "exceptions",
    }
    cost_rate_form = extra.pop("cost_rate_form", None)
    if cost_rate_form is not None:
        for fix in context["fixes"]:
            if fix["kind"] == "set_cost_rate":
                fix["form"] = cost_rate_form
    edited = extra.pop("edit_form", None)
    if edited is not None:  # a correction that did not validate comes back with what was typed
        for fix in context["fixes"]:
            if fix["kind"] == "edit_field":
                fix["form"] = edited
    context.update(extra)
    return context


@require_safe
@workspace_role_required(WORKSPACE_ALL)
def exception_detail(request, client_slug, pk):
    exception = _exception(request, pk)
    return render_page(request, "integrations/exceptions/detail.html", _detail_context(request, exception))


def _answer(request, exception: SyncException, note: str, *, level: str = "success", changed: bool = True, **extra):
    """After an action: the workbench partial (HTMX) with events for the counters, or the page again.

    `changed`: the action wrote something (even a retry that failed again), so the counters and
    lists elsewhere on the page refresh; a refused form changes nothing.
    """
    exception.refresh_from_db()
    if wants_partial(request):
        context = _detail_context(request, exception, outcome=note, outcome_level=level, **extra)
        response = render_page(request, "integrations/exceptions/detail.html", context, partial="workbench")
        if changed:
            return with_events(response, "exceptions-changed", toast=note, level=level)
        return response
    getattr(messages, level)(request, note)
    return redirect_to(request, url(request, "exception_detail", exception.pk))


def _retry_note(outcome: dict, exception: SyncException) -> str:
    """What a fix did, in numbers that add up: how many resolved, how many waiting records synced, why the
    others did not."""
    exception.refresh_from_db()
    released = outcome.get("released", 0)
    then = f"; {released:,} record{'s' if released != 1 else ''} waiting on it synced" if released else ""
    if outcome.get("resolved") and outcome["resolved"] > 1:
        note = f"Fixed: {outcome['resolved']} exceptions resolved{then}."
    elif exception.status == SyncException.Status.RESOLVED:
        note = f"Fixed: this exception is resolved{then}."
    else:
        return f"Still open: {_reason(outcome, exception)}"
    if outcome.get("still_open"):
        note += f" {outcome['still_open']} still open: {_reason(outcome, exception)}"
    return note


def _fix_and_answer(request, exception: SyncException, fix, **arguments):
    """Run a fix that retries the exception's records (`fix(exception=..., actor=..., **arguments)`) and answer with
    what it did: why it was refused, or the retry's note, a success when the exception is resolved."""
    try:
        outcome = retrying(fix, exception=exception, actor=request.user, **arguments)
    except (ExceptionActionRefused, RetryUnreachable) as refused:
        return _answer(request, exception, str(refused), level="error", changed=False)
    note = _retry_note(outcome, exception)
    return _answer(request, exception, note, level="success" if exception.status == "resolved" else "error")


def _form_errors(form) -> str:
    """A form's errors in one line."""
    return "; ".join(str(e) for errors in form.errors.values() for e in errors)


def _reason(outcome: dict, exception: SyncException) -> str:
    reasons = outcome.get("reasons") or []
    return "; ".join(reasons[:3]) if reasons else exception.message


@require_POST
@workspace_role_required(WORKSPACE_FINANCE)
def exception_retry_view(request, client_slug, pk):
    return _fix_and_answer(request, _exception(request, pk), exception_retry)


@require_POST
@workspace_role_required(WORKSPACE_FINANCE)
def exception_edit(request, client_slug, pk):
    exception = _exception(request, pk)
    form = EditFieldForm(request.POST)
    if not form.is_valid():
        return _answer(
            request, exception, "Check the field and its value.", level="error", changed=False, edit_form=form
        )
    return _fix_and_answer(
        request, exception, exception_edit_and_retry, field=form.cleaned_data["field"], value=form.cleaned_data["value"]
    )


@require_POST
@workspace_role_required(WORKSPACE_FINANCE)
def exception_map(request, client_slug, pk):
    """Add the value-map entry this exception asks for, then retry every live exception it fixes."""
    exception = _exception(request, pk)
    prefix = next((key.split("-value_map")[0] for key in request.POST if key.endswith("-value_map")), None)
    form = MapValueForm(request.POST, prefix=prefix)
    if not form.is_valid():
        errors = _form_errors(form) or "Say what the value maps to."
        return _answer(request, exception, errors, level="error", changed=False)
    data = form.cleaned_data
    try:
        outcome = retrying(
            value_map_entry_add_and_retry,
            value_map_key=data["value_map"],
            source_value=data["source_value"],
            target_value=data["target_value"],
            actor=request.user,
        )
    except (ExceptionActionRefused, RetryUnreachable) as unreachable:
        note = f"Saved “{data['source_value']}” → “{data['target_value']}”, but the retry stopped. {unreachable}"
        return _answer(request, exception, note, level="error")
    exception.refresh_from_db()
    resolved, released = outcome.get("resolved", 0), outcome.get("released", 0)
    note = (
        f"Mapped “{data['source_value']}” to “{data['target_value']}”: "
        f"{resolved} exception{'s' if resolved != 1 else ''} resolved"
        + (f"; {released:,} record{'s' if released != 1 else ''} waiting on it synced" if released else "")
        + (f"; {outcome['still_open']} still open: {_reason(outcome, exception)}" if outcome.get("still_open") else ".")
    )
    return _answer(request, exception, note, level="success" if resolved else "error")


@require_POST
@workspace_role_required(WORKSPACE_FINANCE)
def exception_duplicate_view(request, client_slug, pk):
    """ "These are the same" (keeping the one chosen) or "they are different", for a pair of duplicates."""
    exception = _exception(request, pk)
    different = request.POST.get("decision") == "different"
    try:
        outcome = retrying(
            exception_duplicate_resolve,
            exception=exception,
            keep=request.POST.get("keep", ""),
            same=not different,
            actor=request.user,
        )
    except (ExceptionActionRefused, RetryUnreachable) as refused:
        return _answer(request, exception, str(refused), level="error", changed=False)
    released = outcome.get("released", 0)
    then = f" {released:,} record{'s' if released != 1 else ''} waiting on it synced." if released else ""
    if different:
        note = f"Kept apart: {exception.subject or exception.external_id} is a record of its own.{then}"
    else:
        note = f"The same: both now stand for one, writes go to {outcome['keep']}.{then}"
    return _answer(request, exception, note)


@require_POST
@workspace_role_required(WORKSPACE_FINANCE)
def exception_pick_view(request, client_slug, pk):
    """The record a source record is, among those it matched; or a new one. The pick is remembered."""
    exception = _exception(request, pk)
    chosen = request.POST.get("record", "")
    record_id = int(chosen) if chosen.isascii() and chosen.isdigit() else None
    if record_id is None and chosen != "new":
        return _answer(
            request, exception, "Pick one of the records, or say it is a new one.", level="error", changed=False
        )
    return _fix_and_answer(request, exception, exception_pick, record_id=record_id)


@require_POST
@workspace_role_required(WORKSPACE_FINANCE)
def exception_cost_rate_view(request, client_slug, pk):
    """A cost rate set by a finance person for someone HR has none for; their time is released."""
    exception = _exception(request, pk)
    form = CostRateForm(request.POST)
    if not form.is_valid():
        return _answer(request, exception, _form_errors(form), level="error", changed=False, cost_rate_form=form)
    try:
        outcome = retrying(
            resource_cost_rate_set,
            exception=exception,
            amount=str(form.cleaned_data["amount"]),
            currency=form.cleaned_data["currency"],
            effective_from=form.cleaned_data["effective_from"],
            actor=request.user,
        )
    except (ExceptionActionRefused, RetryUnreachable) as refused:
        return _answer(request, exception, str(refused), level="error", changed=False, cost_rate_form=form)
    return _answer(
        request, exception, _retry_note(outcome, exception), level="success" if outcome["resolved"] else "error"
    )


@require_POST
@workspace_role_required(WORKSPACE_FINANCE)
def exception_ignore_view(request, client_slug, pk):
    exception = _exception(request, pk)
    form = IgnoreForm(request.POST, prefix="ignore")
    if not exception.is_live:
        return _answer(request, exception, "Only open exceptions can be ignored.", level="error", changed=False)
    if not form.is_valid():
        return _answer(request, exception, "Say why this exception is ignored.", level="error", changed=False)
    try:
        exception_ignore(exception=exception, reason=form.cleaned_data["reason"], actor=request.user)
    except ExceptionActionRefused as refused:
        return _answer(request, exception, str(refused), level="error", changed=False)
    waiting = exception.parked.filter(
        status=SyncException.Status.IGNORED, ignored_reason=exception.ignored_reason
    ).count()
    note = "Ignored. It leaves the open queue; the reason is in its history."
    if waiting:
        note = f"Ignored, with the {waiting:,} record{'s' if waiting != 1 else ''} waiting on it; the reason is in its history."
    return _answer(request, exception, note)


@require_POST
@workspace_role_required(WORKSPACE_FINANCE)
def exception_assign_view(request, client_slug, pk):
    exception = _exception(request, pk)
    people = workspace_people(request.client)
    data = request.POST.copy()
    if data.get("assign-assignee") == "me":
        data["assign-assignee"] = str(request.user.pk)
    form = AssignForm(data, people=people, prefix="assign")
    if not form.is_valid():
        return _answer(request, exception, "Choose someone who works in this workspace.", level="error", changed=False)
    chosen = form.cleaned_data["assignee"]
    assignee = User.objects.filter(pk=int(chosen)).first() if chosen else None
    exception_assign(exception=exception, assignee=assignee, actor=request.user)
    note = f"Assigned to {assignee.email}." if assignee else "Unassigned."
    return _answer(request, exception, note)


@require_POST
@workspace_role_required(WORKSPACE_FINANCE)
def exception_comment_view(request, client_slug, pk):
    exception = _exception(request, pk)
    form = CommentForm(request.POST, prefix="comment")
    if not form.is_valid():
        return _answer(request, exception, "A comment cannot be empty.", level="error", changed=False)
    try:
        exception_comment(exception=exception, body=form.cleaned_data["body"], actor=request.user)
    except ExceptionActionRefused as refused:
        return _answer(request, exception, str(refused), level="error", changed=False)
    return _answer(request, exception, "Comment added.")
