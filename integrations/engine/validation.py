"""Validation before any write, for a whole page: what stops time or an expense (its project is not in the
system it is billed in, its person has no cost rate on the day), and people who left with work booked after."""

from __future__ import annotations

from collections import defaultdict
from datetime import date

from django.db.models import F

from integrations.engine.describe import original_value
from integrations.engine.items import Item
from integrations.engine.mapping import Problem
from integrations.models import ExternalRef, FlowStep, Rate, TimeEntry


class PageValidator:
    """Checks a planned page against the flow's targets. Which projects each target has is read once per run."""

    def __init__(self, *, steps: list[FlowStep], writers: dict, store, rules: list):
        self.steps, self.writers, self.store, self.rules = steps, writers, store, rules
        self._in_target: dict[tuple[int, int], bool] = {}  # (target connection, project) -> linked there

    def validate(self, items: list[Item]) -> None:
        """What stops time or an expense before any write, for the whole page: its project is not in the system
        it is billed in, or its person has no cost rate on the day. Each is a cause the record is parked behind."""
        entries = [
            (item, item.plan.get("time_entry") or item.plan.get("expense"))
            for item in items
            if not item.problems and not item.skipped
        ]
        entries = [(item, planned) for item, planned in entries if planned is not None]
        if not entries:
            return
        targets = [
            step
            for step in self.steps
            if step.target_connection and step.action in (FlowStep.Action.WRITE, FlowStep.Action.INVOICE)
        ]
        projects = {planned.record.project_id for _, planned in entries}
        for step in targets:
            unknown = {pk for pk in projects if (step.target_connection_id, pk) not in self._in_target}
            linked = set(
                ExternalRef.objects.filter(
                    connection_id=step.target_connection_id, entity="project", record_id__any=unknown, alias=False
                ).values_list("record_id", flat=True)
            )
            for pk in unknown:
                self._in_target[(step.target_connection_id, pk)] = pk in linked
        people = {
            p.record.resource_id for _, p in entries if isinstance(p.record, TimeEntry) and p.record.cost_rate is None
        }
        rates = cost_rates_for(people) if people else {}
        for item, planned in entries:
            entry = planned.record
            missing = next(
                (s for s in targets if not self._in_target[(s.target_connection_id, entry.project_id)]), None
            )
            if missing is not None:
                fix = self._project_code_fix(item, entry.project.code)
                label = self.writers[missing.pk].target.label
                item.problems.append(
                    Problem(
                        "project",
                        "PROJECT_NOT_IN_TARGET",
                        f"project code not found in {label}",
                        fix,
                        {"project": entry.project, "step": missing},
                    )
                )
                continue
            if isinstance(entry, TimeEntry) and entry.cost_rate is None:
                rate = cost_rate_on(entry.resource, entry.date, rates.get(entry.resource_id, []))
                if rate is None:
                    message = f"{entry.resource} has no cost rate on {entry.date:%-d %b %Y}"
                    item.problems.append(Problem("cost_rate", "MISSING_COST_RATE", message, None, entry.resource))
                    continue
                entry.cost_rate = rate.amount
                planned.changed.add("cost_rate")

    def _project_code_fix(self, item: Item, code: str) -> dict | None:
        for target, key in self.store.lookup_maps.items():
            if target.endswith(".project"):
                original = original_value(self.rules, target, item.source.data)
                if original is None or original.isdigit():
                    original = code  # a reference by id: the clerk maps the project's code
                return {"action": "map_value", "value_map": key, "value": original}
        return None


def leavers_with_later_work(items: list[Item]) -> list[tuple[Item, TimeEntry]]:
    """People of this page who left but still have time booked after their last day: each with their first such
    entry (one query)."""
    people = {
        item.records["resource"].pk: item
        for item in items
        if "resource" in item.records
        and item.records["resource"].status in ("terminated", "inactive")
        and item.records["resource"].termination_date
    }
    if not people:
        return []
    later = (
        TimeEntry.objects.filter(resource_id__any=list(people), date__gt=F("resource__termination_date"))
        .select_related("project", "resource")
        .order_by("resource_id", "date")
        .distinct("resource_id")
    )
    return [(people[entry.resource_id], entry) for entry in later]


def cost_rates_for(resource_ids: set[int]) -> dict[int, list[Rate]]:
    """Every cost rate of these people, newest first, in one query (the page's validation picks by date)."""
    rates: dict[int, list[Rate]] = defaultdict(list)
    for rate in Rate.objects.filter(resource_id__any=resource_ids, kind=Rate.Kind.COST).order_by("-effective_from"):
        rates[rate.resource_id].append(rate)
    return rates


def cost_rate_on(resource, on: date, rates: list[Rate] | None = None) -> Rate | None:
    """The person's cost rate on a day: from `rates` (cost_rates_for) when given, else one query."""
    if rates is None:
        rates = cost_rates_for({resource.pk}).get(resource.pk, [])
    for rate in rates:
        if rate.effective_from <= on and (rate.effective_to is None or rate.effective_to >= on):
            return rate
    return None
