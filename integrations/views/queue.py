"""The exception queue: filter, search, page, count, act on many at once, export as CSV."""

from __future__ import annotations

import csv

from django.contrib import messages
from django.http import HttpResponse, StreamingHttpResponse
from django.utils import timezone
from django.utils.html import format_html
from django.views.decorators.http import require_POST, require_safe
from django_tenants.utils import tenant_context

from integrations import selectors
from integrations.forms.queue import (
    ExceptionFilterForm,
)
from integrations.selectors.labels import error_label, vendor_label
from integrations.services.bulk import BulkOutcome, exceptions_bulk_act
from integrations.templatetags.workspace import age, sla_state
from integrations.views.support import (
    csv_cell,
    redirect_to,
    render_page,
    render_partial,
    sla_hours,
    url,
    wants_partial,
    with_events,
    workspace_people,
)
from tenants.decorators import WORKSPACE_ALL, WORKSPACE_FINANCE, workspace_role_required


def _filters(request, data=None, choices=None) -> ExceptionFilterForm:
    return ExceptionFilterForm(
        data if data is not None else request.GET,
        choices=choices if choices is not None else selectors.queue_choices(),
        people=workspace_people(request.client),
        sla_hours=sla_hours(request),
    )


def counters_for(request) -> dict:
    return selectors.queue_counters(user_id=request.user.pk, sla_hours=sla_hours(request))


STATUS_BADGES = {
    "open": ("badge-bad", "Open"),
    "retrying": ("badge-live", "Retrying"),
    "parked": ("badge-live", "Waiting"),
    "resolved": ("badge-ok", "Resolved"),
    "ignored": ("", "Ignored"),
}

# A queue row, rendered in Python: fifty rows through the template language took a quarter of the
# page's time (about 1,000 variable lookups); format_html escapes every value the same way.
ROW_HTML = (
    '<tr data-testid="exception-row" data-error="{code}">{check}<td class="cell-problem">'
    '<span class="badge badge-code">{error}</span> '
    '<a class="row-link problem-message" href="{prefix}{pk}/">{message}</a></td>'
    '<td class="cell-record"><span class="muted">{object}</span><br><code>{record}</code></td>'
    '<td class="cell-flow">{flow}</td><td class="cell-systems">{systems}</td>'
    '<td class="cell-age"><span class="age age-{age_state}" title="{created}">{age}</span>{seen}</td>'
    '<td class="cell-assignee">{assignee}</td><td><span class="badge {status_class}">{status}</span></td></tr>\n'
)

ROW_CHECK_HTML = (
    '<td class="col-check"><input type="checkbox" name="ids" value="{pk}" form="bulk-form"'
    ' aria-label="Select exception {pk}"></td>'
)


def _presented(page, sla: int | None, *, bulk: bool, detail_prefix: str) -> None:
    """What each row shows, worked out once in Python: a 50-row page stays cheap to render."""
    labels: dict[str, str] = {}
    for row in page.rows:
        row.error_text = labels.get(row.error_code) or labels.setdefault(row.error_code, error_label(row.error_code))
        row.flow_name = page.flows.get(row.flow_id, "—")
        source = vendor_label(row.source_system)
        row.systems_text = f"{source} → {vendor_label(row.target_system)}" if row.target_system else source
        row.age_text = age(row.created_at)
        row.created_text = timezone.localtime(row.created_at).strftime("%-d %b %Y %H:%M")  # |date costs 50× more
        row.age_state = sla_state(row.created_at, sla)
        row.status_class, row.status_text = STATUS_BADGES.get(row.status, ("", row.status))
        external = row.external_id or "—"
        row.record_text = external if len(external) <= 24 else external[:23] + "…"
        row.html = format_html(
            ROW_HTML,
            code=row.error_code,
            check=format_html(ROW_CHECK_HTML, pk=row.pk) if bulk else "",
            error=row.error_text,
            prefix=detail_prefix,
            pk=row.pk,
            message=row.message,
            object=row.object,
            record=row.record_text,
            flow=row.flow_name,
            systems=row.systems_text,
            age_state=row.age_state,
            created=row.created_text,
            age=row.age_text,
            seen=format_html('<br><span class="muted">seen {}×</span>', row.occurrences) if row.occurrences > 1 else "",
            assignee=row.assignee_email or "—",
            status_class=row.status_class,
            status=row.status_text,
        )


def _filter_selects(form, query) -> list:
    """The filters as (name, label, options, chosen) for plain <select>s (widget templates cost more)."""
    chosen = {
        "flow": str(query.flow or ""),
        "system": query.system,
        "error_code": query.error_code,
        "age": query.age,
        "assignee": query.assignee,
    }
    return [
        (name, form.fields[name].label, [(str(v), t) for v, t in form.fields[name].choices], chosen[name])
        for name in ("flow", "system", "error_code", "age", "assignee")
    ]


@require_safe
@workspace_role_required(WORKSPACE_ALL)
def exception_queue(request, client_slug):
    choices = selectors.queue_choices()
    form = _filters(request, choices=choices)
    query = form.query()
    partial = wants_partial(request)
    counters = None if partial else counters_for(request)
    total = None
    if counters is not None and not query.filtered and query.status == "open":
        total = counters["open"]
    page = selectors.exception_queue(
        query,
        user_id=request.user.pk,
        sla_hours=sla_hours(request),
        after=request.GET.get("after", ""),
        before=request.GET.get("before", ""),
        total=total,
        flows=dict(choices["flows"]),
    )
    bulk = request.workspace_role in WORKSPACE_FINANCE and query.status in ("open", "retrying", "all")
    _presented(page, sla_hours(request), bulk=bulk, detail_prefix=url(request, "exception_queue"))
    context = {
        "form": form,
        "filter_selects": _filter_selects(form, query),
        "query": query,
        "page": page,
        "filter_params": query.params(),
        "statuses": selectors.QUEUE_STATUSES,
        "bulk": bulk,
        "counters": counters,
        "section": "exceptions",
    }
    if partial:
        return render_page(request, "integrations/exceptions/queue.html", context, partial="results")
    return render_page(request, "integrations/exceptions/queue.html", context)


@require_safe
@workspace_role_required(WORKSPACE_ALL)
def exception_counters(request, client_slug):
    """The live counters alone: the page asks again whenever an action says exceptions changed."""
    context = {"counters": counters_for(request)}
    if request.GET.get("strip"):
        return render_page(request, "integrations/exceptions/strip.html", context)
    return render_partial(request, "integrations/exceptions/queue.html", "counters", context)


@require_POST
@workspace_role_required(WORKSPACE_FINANCE)
def exception_bulk(request, client_slug):
    """Retry or ignore the ticked exceptions, or every one the filters match (services.bulk says how many)."""
    form = _filters(request, request.POST)
    query = form.query()
    if form.errors:
        # The queue drops a filter it cannot read (a stale link still shows something), but here a
        # dropped filter would widen the action to every open exception: refuse instead.
        note = "These filters no longer fit the queue (a flow or a person may be gone): reload it and choose again."
        return _bulk_answer(request, query, BulkOutcome(note, "error", event=""))
    outcome = exceptions_bulk_act(
        query=query,
        action=request.POST.get("action", "retry"),
        scope=request.POST.get("scope"),
        ids=request.POST.getlist("ids"),
        reason=request.POST.get("reason") or "",
        actor=request.user,
        sla_hours=sla_hours(request),
    )
    return _bulk_answer(request, query, outcome)


def _bulk_answer(request, query, outcome: BulkOutcome):
    if request.htmx:
        # The queue's table and counters listen for exceptions-changed (the progress box for bulk-started)
        # and fetch themselves again; when nothing changed the table is left alone, so ticked rows stay ticked.
        events = [outcome.event] if outcome.event else []
        return with_events(HttpResponse(status=204), *events, toast=outcome.note, level=outcome.level)
    getattr(messages, outcome.level)(request, outcome.note)
    return redirect_to(request, url(request, "exception_queue") + _querystring(query))


def _querystring(query) -> str:
    from urllib.parse import urlencode

    params = query.params()
    return f"?{urlencode(params)}" if params else ""


@require_safe
@workspace_role_required(WORKSPACE_ALL)
def exception_export(request, client_slug):
    """Every exception the filters match, as CSV, streamed (a million rows never sit in memory)."""
    query = _filters(request).query()
    rows = (
        selectors.exceptions_filtered(query, user_id=request.user.pk, sla_hours=sla_hours(request))
        .order_by("created_at", "id")
        .values_list(
            "pk",
            "status",
            "error_code",
            "message",
            "flow__name",
            "source_system",
            "target_system",
            "object",
            "external_id",
            "assignee_email",
            "occurrences",
            "created_at",
            "last_seen_at",
            "resolved_at",
            "ignored_reason",
        )
    )
    header = [
        "id",
        "status",
        "error_code",
        "message",
        "flow",
        "source_system",
        "target_system",
        "object",
        "external_id",
        "assignee",
        "occurrences",
        "created_at",
        "last_seen_at",
        "resolved_at",
        "ignored_reason",
    ]

    class Echo:
        def write(self, value):
            return value

    writer = csv.writer(Echo())

    client = request.client

    def lines():
        # Streamed after the view returns, when the middleware has put the connection back on
        # the public schema: the rows are read inside the client's schema again.
        with tenant_context(client):
            yield writer.writerow(header)
            for row in rows.iterator(chunk_size=2000):
                yield writer.writerow([csv_cell(value) for value in row])

    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="exceptions-{request.client.slug}-{stamp}.csv"'
    return response
