"""The mapping editor: its rules, each edited in place and previewed against a live sample as you type, and the
keys by which a flow recognises records other systems already hold."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_POST, require_safe

from integrations import selectors
from integrations.engine.entities import ENTITIES
from integrations.engine.mapping import TRANSFORM_LABELS
from integrations.forms.mappings import RuleForm
from integrations.models import Mapping, MappingRule, ValueMap
from integrations.services.configuration import (
    mapping_rule_add,
    mapping_rule_remove,
    mapping_rule_update,
)
from integrations.services.flows import FlowConfigurationError
from integrations.views.mappings.sample import Side, preview, sample_record
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


def _rule_rows(side: Side) -> list[dict]:
    rows = []
    category = side.source_category
    map_names = dict(ValueMap.objects.values_list("key", "name"))
    for rule in side.mapping.rules.all():
        owner = side.owner_of(rule.target)
        rows.append(
            {
                "rule": rule,
                "owner": owner,
                "writes": owner is None or owner == category or not side.inbound,
                "transforms": [_transform_text(t, map_names) for t in rule.transforms],
            }
        )
    return rows


def _transform_text(transform: dict, map_names: dict[str, str] | None = None) -> str:
    """One step of a rule the way a person reads it: "Look up in Project codes, unknown kept"."""
    name = transform.get("name", "?")
    label = TRANSFORM_LABELS.get(name, name)
    if name == "ref":
        return f"Find the {transform.get('entity', 'record').replace('_', ' ')} by its {transform.get('object', '')} id"
    if name == "lookup":
        key = transform.get("value_map", "")
        text = f"Look up in {(map_names or {}).get(key, key)}"
        return text + (", unknown kept" if transform.get("fallback") == "keep" else "")
    if name == "sublist":
        return "Lines"
    if name == "wrap":
        return f"As a reference ({transform.get('key', 'id')})"
    if name == "default":
        value = transform.get("value")
        return "Default: blank" if value in ("", None) else f"Default: {value}"
    if name == "split":
        return f"Split on “{transform.get('separator', ' ')}”, part {transform.get('index', 0)}"
    if name == "concat":
        return f"Join with “{transform.get('separator', ' ')}”"
    params = [str(v) for k, v in transform.items() if k != "name" and not isinstance(v, dict | list)]
    return f"{label} ({', '.join(params)})" if params else label


def _mapping(pk) -> Mapping:
    return get_object_or_404(Mapping, pk=pk)


def _editor_context(request, side: Side, *, refresh: bool = False, **extra) -> dict:
    sample = sample_record(side, refresh=refresh)
    context = {
        "mapping": side.mapping,
        "side": side,
        "flow": side.flow,
        "step": side.step,
        "rules": _rule_rows(side),
        "sample": sample,
        "sample_fields": selectors.record_fields(sample["data"]) if sample.get("data") is not None else [],
        "preview": preview(side, sample),
        "source_category": selectors.CATEGORY_LABELS.get(side.source_category, ""),
        "target_suggestions": side.target_suggestions(),
        "section": "flows",
    }
    context["source_paths"] = [path for path, _ in context["sample_fields"]]
    context["matching"] = _matching(side) if side.inbound else []
    context.update(extra)
    return context


def _matching(side: Side) -> list[dict]:
    """For each entity the flow produces that other systems may hold already: the keys it can be recognised by."""
    from integrations.engine.entities import match_keys_for

    rows = []
    for entity in side.entities:
        spec = ENTITIES[entity]
        if not spec.match_keys:
            continue
        chosen = {key.field for key in match_keys_for(entity, side.flow.match_keys)}
        rows.append(
            {
                "entity": entity,
                "label": spec.label,
                "keys": [(name, key.label, key.field in chosen) for name, key in spec.match_keys.items()],
            }
        )
    return rows


@require_POST
@workspace_role_required(WORKSPACE_EDITORS)
def mapping_match_keys(request, client_slug, pk):
    """Save how the flow recognises records the other systems already hold."""
    from integrations.services.flows import flow_match_keys_set

    side = Side(_mapping(pk))
    if not side.inbound:
        raise Http404("Only a flow's inbound mapping recognises records")
    chosen = {row["entity"]: request.POST.getlist(f"match-{row['entity']}") for row in _matching(side)}
    with refusal_said(request, FlowConfigurationError):
        flow_match_keys_set(flow=side.flow, chosen=chosen, actor=request.user)
        messages.success(request, "Saved: the next run recognises records this way.")
    return redirect_to(request, url(request, "mapping_editor", side.mapping.pk))


@require_safe
@workspace_role_required(WORKSPACE_ALL)
def mapping_editor(request, client_slug, pk):
    side = Side(_mapping(pk))
    return render_page(request, "integrations/mappings/editor.html", _editor_context(request, side))


@require_POST
@workspace_role_required(WORKSPACE_EDITORS)
def mapping_sample_refresh(request, client_slug, pk):
    side = Side(_mapping(pk))
    context = _editor_context(request, side, refresh=True)
    if wants_partial(request):
        return render_page(request, "integrations/mappings/editor.html", context, partial="sample_and_preview")
    return redirect_to(request, url(request, "mapping_editor", side.mapping.pk))


@require_safe
@workspace_role_required(WORKSPACE_ALL)
def mapping_preview(request, client_slug, pk):
    """The saved mapping applied to the sample (refreshed after a rule is saved)."""
    side = Side(_mapping(pk))
    context = _editor_context(request, side)
    return render_partial(request, "integrations/mappings/editor.html", "preview", context)


def _rule(side: Side, rule_id) -> MappingRule:
    return get_object_or_404(MappingRule, pk=rule_id, mapping=side.mapping)


@require_POST
@workspace_role_required(WORKSPACE_EDITORS)
def mapping_preview_draft(request, client_slug, pk):
    """A rule as typed so far, applied to the live sample with every other rule (nothing is saved)."""
    side = Side(_mapping(pk))
    rule_id = request.POST.get("rule_id", "")
    rule = _rule(side, int(rule_id)) if rule_id.isascii() and rule_id.isdigit() else None
    form = RuleForm(request.POST, rule=rule, inbound=side.inbound)
    sample = sample_record(side)
    if form.is_valid():
        shown = preview(side, sample, draft=form.values(), draft_rule=rule)
    else:
        shown = preview(side, sample)
        shown["problems"] = [
            f"{form.fields[name].label if name in form.fields else 'Rule'}: {' '.join(errors)}"
            for name, errors in form.errors.items()
        ]
    context = {"preview": shown, "sample": sample, "side": side, "mapping": side.mapping}
    return render_partial(request, "integrations/mappings/editor.html", "preview", context)


def _form_context(request, side: Side, form: RuleForm, rule: MappingRule | None) -> dict:
    sample = sample_record(side)
    return {
        "mapping": side.mapping,
        "side": side,
        "form": form,
        "rule": rule,
        "source_paths": [path for path, _ in selectors.record_fields(sample["data"])] if sample.get("data") else [],
        "target_suggestions": side.target_suggestions(),
    }


@workspace_role_required(WORKSPACE_EDITORS)
def mapping_rule_form(request, client_slug, pk, id):  # noqa: A002 - the URL's name for the rule id
    """The edit form of one rule (GET); or, after a transform was chosen (POST ?slot=n), that step
    again with the parameters the chosen transform takes, keeping what was typed."""
    side = Side(_mapping(pk))
    rule = _rule(side, id) if id else None
    typed = {key: value for key, value in request.POST.items()} if request.method == "POST" else None
    form = RuleForm(rule=rule, inbound=side.inbound, initial=typed)
    context = _form_context(request, side, form, rule)
    slot = request.GET.get("slot", "")
    if typed is not None and slot.isascii() and slot.isdigit() and int(slot) < len(form.slots):
        name_field, params = form.slot_fields()[int(slot)]
        context.update(name_field=name_field, params=params)
        return render_partial(request, "integrations/mappings/editor.html", "transform_slot", context)
    return render_partial(request, "integrations/mappings/editor.html", "rule_form", context)


@require_safe
@workspace_role_required(WORKSPACE_EDITORS)
def mapping_rule_row(request, client_slug, pk, id):  # noqa: A002
    """One rule's row again (Cancel in its edit form)."""
    side = Side(_mapping(pk))
    rule = _rule(side, id)
    row = next(r for r in _rule_rows(side) if r["rule"].pk == rule.pk)
    return render_partial(
        request, "integrations/mappings/editor.html", "rule_row", {"row": row, "side": side, "mapping": side.mapping}
    )


@require_POST
@workspace_role_required(WORKSPACE_EDITORS)
def mapping_rule_save(request, client_slug, pk, id):  # noqa: A002
    side = Side(_mapping(pk))
    rule = _rule(side, id) if id else None
    form = RuleForm(request.POST, rule=rule, inbound=side.inbound)
    if form.is_valid():
        try:
            if rule is None:
                rule = mapping_rule_add(mapping=side.mapping, values=form.values(), actor=request.user)
            else:
                rule = mapping_rule_update(rule=rule, values=form.values(), actor=request.user)
        except FlowConfigurationError as refused:
            form.add_error(None, str(refused))
        else:
            if wants_partial(request):
                row = next(r for r in _rule_rows(side) if r["rule"].pk == rule.pk)
                context = {"row": row, "side": side, "mapping": side.mapping, "saved": True}
                response = render_page(request, "integrations/mappings/editor.html", context, partial="rule_row")
                return with_events(response, "mapping-changed", toast=f"Saved “{rule.label or rule.target}”.")
            messages.success(request, f"Saved “{rule.label or rule.target}”.")
            return redirect_to(request, url(request, "mapping_editor", side.mapping.pk))
    context = _form_context(request, side, form, rule)
    # htmx swaps no 4xx answer: the form with its errors goes back as 200 to HTMX, 422 to others.
    status = 200 if request.htmx else 422
    return render_partial(request, "integrations/mappings/editor.html", "rule_form", context, status=status)


@require_POST
@workspace_role_required(WORKSPACE_EDITORS)
def mapping_rule_delete(request, client_slug, pk, id):  # noqa: A002
    side = Side(_mapping(pk))
    rule = _rule(side, id)
    name = rule.label or rule.target
    mapping_rule_remove(rule=rule, actor=request.user)
    messages.success(request, f"Removed “{name}”.")
    return redirect_to(request, url(request, "mapping_editor", side.mapping.pk))


# --- Value maps ---------------------------------------------------------------------------------
