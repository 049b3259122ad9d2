"""Value maps: the lists of codes one system spells differently from another, and the entries a finance clerk adds
(which retry the exceptions waiting on them)."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_POST, require_safe

from integrations import selectors
from integrations.forms.mappings import ValueMapEntryForm
from integrations.models import SyncException, ValueMap, ValueMapEntry
from integrations.services.configuration import (
    value_map_entry_remove,
)
from integrations.services.exceptions import value_map_entry_add_and_retry
from integrations.views.support import redirect_to, render_page, url
from tenants.decorators import WORKSPACE_ALL, WORKSPACE_FINANCE, workspace_role_required


@require_safe
@workspace_role_required(WORKSPACE_ALL)
def value_map_list(request, client_slug):
    from django.db.models import Count

    maps = ValueMap.objects.annotate(entry_count=Count("entries")).order_by("name")
    context = {"value_maps": maps, "section": "flows", "tab": "value_maps"}
    return render_page(request, "integrations/value_maps/list.html", context)


def _value_map_context(request, value_map: ValueMap, **extra) -> dict:
    q = request.GET.get("q", "").strip()[:100]
    entries = value_map.entries.all()
    if q:
        entries = entries.filter(source_value__icontains=q) | entries.filter(target_value__icontains=q)
    context = {
        "value_map": value_map,
        "entries": list(entries.order_by("source_value")[:500]),
        "entry_count": value_map.entries.count(),
        "q": q,
        "form": ValueMapEntryForm(),
        "waiting": selectors.bounded_count(
            SyncException.objects.filter(
                status__in=selectors.LIVE_EXCEPTION, fix_actions__contains=[{"value_map": value_map.key}]
            )
        ),
        "section": "flows",
        "tab": "value_maps",
    }
    context.update(extra)
    return context


@require_safe
@workspace_role_required(WORKSPACE_ALL)
def value_map_detail(request, client_slug, pk):
    value_map = get_object_or_404(ValueMap, pk=pk)
    context = _value_map_context(request, value_map)
    return render_page(request, "integrations/value_maps/detail.html", context, partial="entries")


@require_POST
@workspace_role_required(WORKSPACE_FINANCE)
def value_map_entry_add(request, client_slug, pk):
    """Add or change an entry, then retry every open exception it fixes."""
    value_map = get_object_or_404(ValueMap, pk=pk)
    form = ValueMapEntryForm(request.POST)
    if not form.is_valid():
        context = _value_map_context(request, value_map, form=form)
        return render_page(request, "integrations/value_maps/detail.html", context, status=422)
    outcome = value_map_entry_add_and_retry(
        value_map_key=value_map.key,
        source_value=form.cleaned_data["source_value"].strip(),
        target_value=form.cleaned_data["target_value"].strip(),
        actor=request.user,
    )
    note = f"Saved “{form.cleaned_data['source_value']}” → “{form.cleaned_data['target_value']}”."
    if outcome["retried"]:
        note += f" {outcome['resolved']} waiting exception{'s' if outcome['resolved'] != 1 else ''} resolved."
    messages.success(request, note)
    return redirect_to(request, url(request, "value_map_detail", value_map.pk))


@require_POST
@workspace_role_required(WORKSPACE_FINANCE)
def value_map_entry_delete(request, client_slug, pk, id):  # noqa: A002
    value_map = get_object_or_404(ValueMap, pk=pk)
    entry = get_object_or_404(ValueMapEntry, pk=id, value_map=value_map)
    value_map_entry_remove(entry=entry, actor=request.user)
    messages.success(request, f"Removed “{entry.source_value}”.")
    return redirect_to(request, url(request, "value_map_detail", value_map.pk))
