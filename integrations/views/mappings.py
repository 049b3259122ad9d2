"""The mapping editor (rules, a live sample record, the mapped record previewed as you type) and value maps."""

from __future__ import annotations

import logging
from datetime import date
from decimal import Decimal

from django.contrib import messages
from django.core.cache import cache
from django.db import connection as db
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_POST, require_safe

from connectors.base import ConnectorError
from connectors.registry import CONNECTORS
from integrations import selectors
from integrations.engine.entities import ENTITIES
from integrations.engine.mapping import TRANSFORM_LABELS, MappingContext, Ref, Rule, apply_mapping
from integrations.engine.views import canonical_view
from integrations.forms.mappings import RuleForm, ValueMapEntryForm
from integrations.models import Mapping, MappingRule, SyncException, ValueMap, ValueMapEntry
from integrations.services.configuration import (
    mapping_rule_add,
    mapping_rule_remove,
    mapping_rule_update,
    value_map_entry_remove,
)
from integrations.services.connections import connector_for
from integrations.services.exceptions import value_map_entry_add_and_retry
from integrations.services.flows import FlowConfigurationError
from integrations.views.support import redirect_to, render_page, render_partial, url, wants_partial, with_events
from tenants.decorators import WORKSPACE_ALL, WORKSPACE_EDITORS, WORKSPACE_FINANCE, workspace_role_required

logger = logging.getLogger("integrations.views")
SAMPLE_SECONDS = 600


class Side:
    """Which side of a flow a mapping sits on, and so where its sample record comes from."""

    def __init__(self, mapping: Mapping):
        self.mapping = mapping
        self.flow = mapping.inbound_flows.select_related("source_connection").first()
        self.step = None
        if self.flow is None:
            self.step = mapping.outbound_steps.select_related("flow", "target_connection").first()
            if self.step is None:
                raise Http404("This mapping belongs to no flow")
            self.flow = self.step.flow
        self.inbound = self.step is None

    @property
    def entities(self) -> list[str]:
        found = {self.flow.entity}
        if self.inbound:
            found |= {rule.target.split(".", 1)[0] for rule in self.mapping.rules.all()}
        return sorted(e for e in found if e in ENTITIES)

    def owner_of(self, target: str) -> str | None:
        if not self.inbound:
            return None
        entity, _, name = target.partition(".")
        return selectors.field_owners(entity).get(name)

    @property
    def source_category(self) -> str:
        return getattr(CONNECTORS.get(self.flow.source_connection.vendor), "category", "")

    def target_suggestions(self) -> list[str]:
        if self.inbound:
            return [
                f"{entity}.{f.name}"
                for entity in self.entities
                for f in ENTITIES[entity].model._meta.concrete_fields
                if f.name not in ("id", "updated_at")
            ]
        connector = CONNECTORS.get(self.step.target_connection.vendor) if self.step.target_connection else None
        spec = connector.objects.get(self.step.target_object) if connector else None
        return list(spec.fields) if spec else []


def sample_record(side: Side, *, refresh: bool = False) -> dict:
    """A live record to map: read through the source connector (inbound), or the latest canonical
    record as the engine hands it to the target (outbound). Cached a few minutes per workspace."""
    if side.inbound:
        connection = side.flow.source_connection
        key = f"sample:{db.schema_name}:{connection.pk}:{side.flow.source_object}"
        cached = None if refresh else cache.get(key)
        if cached is not None:
            return cached
        label = CONNECTORS[connection.vendor].label if connection.vendor in CONNECTORS else connection.vendor
        sample = {"data": None, "origin": f"{label} · {side.flow.source_object}", "error": "", "id": ""}
        try:
            connector = connector_for(connection)
            try:
                for page in connector.read(side.flow.source_object, page_size=1):
                    if page.records:
                        sample["data"] = dict(page.records[0].data)
                        sample["id"] = page.records[0].external_id
                    break
            finally:
                connector.close()
        except (ConnectorError, OSError, ValueError) as error:
            sample["error"] = f"{label} did not return a sample: {error}"
        except Exception as error:  # noqa: BLE001 - shown to the editor, not raised: the page still works
            logger.exception("sample read failed")
            sample["error"] = f"{label} did not return a sample ({type(error).__name__})."
        if sample["data"] is None and not sample["error"]:
            sample["error"] = f"{label} has no {side.flow.source_object} to show yet."
        if not sample["error"]:
            cache.set(key, sample, SAMPLE_SECONDS)
        return sample
    spec = ENTITIES[side.step.entity]
    record = spec.model.objects.order_by("-pk").first()
    if side.step.entity == "invoice":
        record = spec.model.objects.exclude(lines=None).order_by("-pk").first() or record
    if record is None:
        return {
            "data": None,
            "origin": f"canonical {spec.label.lower()}",
            "error": f"No {spec.label.lower()} in this workspace yet: run the flow once to get a sample.",
            "id": "",
        }
    return {
        "data": canonical_view(side.step.entity, record, side.step.target_connection),
        "origin": f"canonical {spec.label.lower()} #{record.pk}",
        "error": "",
        "id": str(record.pk),
    }


def _shown(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, Ref):
        return f"→ {value.entity.replace('_', ' ')} {value.external_id} ({value.object})"
    if isinstance(value, Decimal | date):
        return str(value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)[:300]


def preview(side: Side, sample: dict, *, draft: dict | None = None, draft_rule: MappingRule | None = None) -> dict:
    """The sample record through the mapping (with one rule replaced or added by the draft)."""
    stored = list(side.mapping.rules.all())
    rules = []
    edited_target = None
    for rule in stored:
        if draft is not None and draft_rule is not None and rule.pk == draft_rule.pk:
            rules.append(
                Rule(
                    draft["target"],
                    tuple(draft["sources"]),
                    tuple(draft["transforms"]),
                    draft["required"],
                    draft["label"],
                )
            )
            edited_target = draft["target"]
        else:
            rules.append(Rule(rule.target, tuple(rule.sources), tuple(rule.transforms), rule.required, rule.label))
    if draft is not None and draft_rule is None:
        rules.append(
            Rule(
                draft["target"], tuple(draft["sources"]), tuple(draft["transforms"]), draft["required"], draft["label"]
            )
        )
        edited_target = draft["target"]
    rows = []
    problems = []
    if sample.get("data") is not None:
        maps = list(ValueMap.objects.prefetch_related("entries"))
        context = MappingContext(
            value_maps={m.key: m.as_dict() for m in maps}, value_map_names={m.key: m.name for m in maps}
        )
        try:
            result = apply_mapping(rules, sample["data"], context)
        except (KeyError, TypeError, ValueError) as error:  # a half-typed draft (a lookup with no map yet)
            return {"rows": [], "problems": [f"This rule cannot run yet: {error}"], "edited": edited_target}
        failing = {problem.target: problem for problem in result.problems}
        for rule in rules:
            problem = failing.get(rule.target)
            rows.append(
                {
                    "target": rule.target,
                    "label": rule.label or rule.target,
                    "value": _shown(result.values.get(rule.target)) if problem is None else "",
                    "problem": problem.message if problem else "",
                    "edited": rule.target == edited_target,
                    "owner": side.owner_of(rule.target),
                }
            )
        problems = [p.message for p in result.problems]
    return {"rows": rows, "problems": problems, "edited": edited_target}


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
    try:
        flow_match_keys_set(flow=side.flow, chosen=chosen, actor=request.user)
    except FlowConfigurationError as refused:
        messages.error(request, str(refused))
    else:
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
