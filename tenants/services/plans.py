"""A partner's plans: create, change and delete them, audited with the values that changed."""

from __future__ import annotations

from django.db import transaction

from tenants.models import (
    PLAN_FIELDS,
    Partner,
    Plan,
    User,
)
from tenants.services.audit import audit_changes, json_ready, partner_audit_record


def _plan_values(plan: Plan) -> dict:
    return {field: json_ready(getattr(plan, field)) for field in PLAN_FIELDS}


@transaction.atomic
def plan_create(*, partner: Partner, values: dict, actor: User | None) -> Plan:
    plan = Plan(partner=partner, **{field: values[field] for field in PLAN_FIELDS if field in values})
    plan.full_clean()
    plan.save()
    partner_audit_record(
        partner=partner,
        actor=actor,
        action="plan.created",
        target_type="plan",
        target_id=plan.pk,
        summary=f"Plan {plan.name} created at {plan.monthly_price} {plan.currency} a month",
        after=_plan_values(Plan.objects.get(pk=plan.pk)),
    )
    return plan


@transaction.atomic
def plan_update(*, plan: Plan, values: dict, actor: User | None) -> Plan:
    """Change a plan. Limits are read from the database on every check, so clients feel it at once."""
    before = _plan_values(Plan.objects.get(pk=plan.pk))
    for field in PLAN_FIELDS:
        if field in values:
            setattr(plan, field, values[field])
    plan.full_clean()
    plan.save()
    was, now = audit_changes(before, _plan_values(Plan.objects.get(pk=plan.pk)))  # as stored: 99 is 99.00
    if now:
        partner_audit_record(
            partner=plan.partner,
            actor=actor,
            action="plan.updated",
            target_type="plan",
            target_id=plan.pk,
            summary=f"Plan {plan.name} changed: {', '.join(field.replace('_', ' ') for field in now)}",
            before=was,
            after=now,
        )
    return plan


class PlanInUse(Exception):  # noqa: N818
    pass


@transaction.atomic
def plan_delete(*, plan: Plan, actor: User | None) -> None:
    in_use = plan.clients.count()
    if in_use:
        noun = "client is" if in_use == 1 else "clients are"
        raise PlanInUse(f"{in_use} {noun} on {plan.name}; move them to another plan before deleting it.")
    partner_audit_record(
        partner=plan.partner,
        actor=actor,
        action="plan.deleted",
        target_type="plan",
        target_id=plan.pk,
        summary=f"Plan {plan.name} deleted",
        before=_plan_values(plan),
    )
    plan.delete()
