"""Change requests: a client's admin asks for a change, the partner's people quote and deliver it, the client's admin
approves, declines or withdraws it; both sides comment. Each step is audited (the client's workspace log for the
client's steps; the partner's log, and the client's, for the partner's) and mailed to the other side on commit."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Max
from django.urls import reverse
from django.utils import timezone

from portal.emails import branded_email_send
from tenants.models import ChangeRequest, ChangeRequestComment, Client, Membership, Role, User
from tenants.selectors.access import workspace_role
from tenants.services.audit import client_audit_record, partner_audit_record
from tenants.services.links import partner_base_url
from tenants.templatetags.console import money

Status = ChangeRequest.Status
CENT = Decimal("0.01")
MAX_HOURS = Decimal("9999")

# Who does what: a client's admins ask, approve, decline and withdraw; its finance people may comment too; viewers
# only read. The partner's admins, and its staff assigned to the client, quote, deliver and comment.
CLIENT_DECIDERS = frozenset({Role.CLIENT_ADMIN})
CLIENT_COMMENTERS = frozenset({Role.CLIENT_ADMIN, Role.CLIENT_FINANCE})
PARTNER_WORKERS = frozenset({Role.PARTNER_ADMIN, Role.PARTNER_STAFF})


class ChangeRequestRefused(Exception):  # noqa: N818 - the domain's words; `str()` is the sentence to show
    pass


def _role_check(*, actor: User, client: Client, roles: frozenset, doing: str) -> str:
    role = workspace_role(actor, client) if actor is not None and actor.is_authenticated else None
    if role not in roles:
        raise PermissionDenied(f"Your role does not allow you to {doing}.")
    return role


def _locked(change_request: ChangeRequest) -> ChangeRequest:
    return (
        ChangeRequest.objects.select_for_update(of=("self",))
        .select_related("client__partner", "client__plan")
        .get(pk=change_request.pk)
    )


def _step_start(
    change_request: ChangeRequest, *, actor: User, roles: frozenset, doing: str, allowed: tuple, done: str
) -> ChangeRequest:
    """The request locked, once `actor` may take this step (`doing`) and its status allows it to be `done`."""
    change_request = _locked(change_request)
    _role_check(actor=actor, client=change_request.client, roles=roles, doing=doing)
    if change_request.status not in allowed:
        raise ChangeRequestRefused(
            f"Change request {change_request.label} is {change_request.get_status_display().lower()}: "
            f"it can no longer be {done}."
        )
    return change_request


def _values(change_request: ChangeRequest) -> dict:
    return {
        "status": change_request.status,
        "quote_hours": None if change_request.quote_hours is None else str(change_request.quote_hours),
        "quote_rate": None if change_request.quote_rate is None else str(change_request.quote_rate),
        "quote_amount": None if change_request.quote_amount is None else str(change_request.quote_amount),
        "currency": change_request.currency,
    }


@transaction.atomic
def change_request_create(*, client: Client, actor: User, kind: str, title: str, description: str) -> ChangeRequest:
    """A client's admin asks the partner for a change; the partner's people who work for the client are told."""
    _role_check(actor=actor, client=client, roles=CLIENT_DECIDERS, doing="ask for changes")
    title, description = title.strip(), description.strip()
    if not title or not description:
        raise ChangeRequestRefused("Say what you need: a title and a description.")
    if kind not in ChangeRequest.Kind.values:
        raise ChangeRequestRefused("Choose what kind of change this is.")
    Client.objects.select_for_update().filter(pk=client.pk).first()  # numbers are handed out one at a time
    last = ChangeRequest.objects.filter(client=client).aggregate(last=Max("number"))["last"] or 0
    change_request = ChangeRequest.objects.create(
        client=client, number=last + 1, kind=kind, title=title, description=description, requested_by=actor
    )
    summary = f"Asked for change {change_request.label} ({change_request.get_kind_display().lower()})"
    after = {"number": change_request.number, "kind": kind, "title": title}
    _client_step_record(change_request, actor=actor, event="requested", summary=summary, after=after)
    return change_request


@transaction.atomic
def change_request_quote(
    *,
    change_request: ChangeRequest,
    actor: User,
    hours: Decimal | None = None,
    fee: Decimal | None = None,
    note: str = "",
) -> ChangeRequest:
    """The partner prices a request: `hours` at the client's plan's hourly rate, or a fixed `fee`. A request may be
    quoted again until the client decides; each quote is a new version, and the client approves the one it read."""
    change_request = _step_start(
        change_request,
        actor=actor,
        roles=PARTNER_WORKERS,
        doing="quote change requests",
        allowed=(Status.REQUESTED, Status.QUOTED),
        done="quoted",
    )
    client = change_request.client
    plan = client.plan
    if plan is None:
        raise ChangeRequestRefused(f"Put {client.name} on a plan first: a quote is in its plan's currency.")
    if (hours is None) == (fee is None):
        raise ChangeRequestRefused("Quote either a number of hours or a fixed fee.")
    if hours is not None:
        if plan.hourly_rate <= 0:
            raise ChangeRequestRefused(f"The {plan.name} plan has no hourly rate: quote a fixed fee.")
        if hours <= 0 or hours > MAX_HOURS:
            raise ChangeRequestRefused("Quote more than 0 and at most 9,999 hours.")
        amount = (hours * plan.hourly_rate).quantize(CENT, rounding=ROUND_HALF_UP)
        rate = plan.hourly_rate
    else:
        if fee < 0:
            raise ChangeRequestRefused("A fee cannot be negative.")
        amount, rate = fee.quantize(CENT, rounding=ROUND_HALF_UP), None
    before = _values(change_request)
    change_request.quote_hours = hours
    change_request.quote_rate = rate
    change_request.quote_amount = amount
    change_request.currency = plan.currency
    change_request.quote_note = note.strip()
    change_request.quote_version += 1
    change_request.quoted_by = actor
    change_request.quoted_at = timezone.now()
    change_request.status = Status.QUOTED
    change_request.save()
    basis = f"{hours} hours at {money(rate, plan.currency)}" if hours is not None else "fixed fee"
    summary = f"Quoted change {change_request.label} for {client.name}: {money(amount, plan.currency)} ({basis})"
    _partner_step_record(change_request, actor=actor, event="quoted", summary=summary, before=before)
    return change_request


@transaction.atomic
def change_request_approve(*, change_request: ChangeRequest, actor: User, quote_version: int) -> ChangeRequest:
    """The client's admin accepts the quote it read (`quote_version`); the amount is billed this month."""
    change_request, before = _quote_decide(change_request, actor=actor, quote_version=quote_version, approve=True)
    amount = money(change_request.quote_amount, change_request.currency)
    summary = f"Approved change {change_request.label} at {amount}"
    _client_step_record(change_request, actor=actor, event="approved", summary=summary, before=before)
    return change_request


@transaction.atomic
def change_request_decline(
    *, change_request: ChangeRequest, actor: User, quote_version: int, reason: str = ""
) -> ChangeRequest:
    """The client's admin turns the quote down; nothing is billed. The reason, if given, goes on the thread."""
    change_request, before = _quote_decide(change_request, actor=actor, quote_version=quote_version, approve=False)
    if reason.strip():
        _comment_add(change_request, actor=actor, side=ChangeRequestComment.Side.CLIENT, body=reason)
    summary = f"Declined the quote for change {change_request.label}"
    _client_step_record(change_request, actor=actor, event="declined", summary=summary, before=before)
    return change_request


@transaction.atomic
def change_request_withdraw(*, change_request: ChangeRequest, actor: User) -> ChangeRequest:
    """The client's admin takes a request back before approving it."""
    change_request = _step_start(
        change_request,
        actor=actor,
        roles=CLIENT_DECIDERS,
        doing="withdraw change requests",
        allowed=(Status.REQUESTED, Status.QUOTED),
        done="withdrawn",
    )
    before = _values(change_request)
    change_request.status = Status.WITHDRAWN
    change_request.withdrawn_at = timezone.now()
    change_request.save()
    summary = f"Withdrew change {change_request.label}"
    _client_step_record(change_request, actor=actor, event="withdrawn", summary=summary, before=before)
    return change_request


@transaction.atomic
def change_request_deliver(*, change_request: ChangeRequest, actor: User, note: str = "") -> ChangeRequest:
    """The partner marks an approved change done. Billing does not move: it was billed in the month approved."""
    change_request = _step_start(
        change_request,
        actor=actor,
        roles=PARTNER_WORKERS,
        doing="deliver change requests",
        allowed=(Status.APPROVED,),
        done="marked delivered",
    )
    before = _values(change_request)
    change_request.status = Status.DELIVERED
    change_request.delivered_by = actor
    change_request.delivered_at = timezone.now()
    change_request.delivery_note = note.strip()
    change_request.save()
    summary = f"Delivered change {change_request.label} for {change_request.client.name}"
    _partner_step_record(change_request, actor=actor, event="delivered", summary=summary, before=before)
    return change_request


@transaction.atomic
def change_request_comment(*, change_request: ChangeRequest, actor: User, body: str) -> ChangeRequestComment:
    """A message on the thread, from the side the author works for; the other side is emailed."""
    change_request = _locked(change_request)
    client = change_request.client
    role = _role_check(
        actor=actor, client=client, roles=CLIENT_COMMENTERS | PARTNER_WORKERS, doing="comment on change requests"
    )
    if not body.strip():
        raise ChangeRequestRefused("Write a message first.")
    side = ChangeRequestComment.Side.PARTNER if role in PARTNER_WORKERS else ChangeRequestComment.Side.CLIENT
    comment = _comment_add(change_request, actor=actor, side=side, body=body)
    summary = f"Commented on change {change_request.label}"
    record = _partner_step_record if side == ChangeRequestComment.Side.PARTNER else _client_step_record
    record(change_request, actor=actor, event="commented", summary=summary, comment=comment)
    return comment


def _comment_add(change_request: ChangeRequest, *, actor: User, side: str, body: str) -> ChangeRequestComment:
    return ChangeRequestComment.objects.create(
        change_request=change_request, author=actor, author_name=actor.display_name, side=side, body=body.strip()
    )


def _quote_decide(
    change_request: ChangeRequest, *, actor: User, quote_version: int, approve: bool
) -> tuple[ChangeRequest, dict]:
    """The client's admin approves or declines the quote it read (`quote_version`, refused if the partner quoted
    again since): the request as decided, and its values before."""
    change_request = _step_start(
        change_request,
        actor=actor,
        roles=CLIENT_DECIDERS,
        doing="approve change requests" if approve else "decline change requests",
        allowed=(Status.QUOTED,),
        done="approved" if approve else "declined",
    )
    if quote_version != change_request.quote_version:
        amount = money(change_request.quote_amount, change_request.currency)
        raise ChangeRequestRefused(
            f"The quote changed since you opened it: it is now {amount}. Read it again before you decide."
        )
    before = _values(change_request)
    change_request.status = Status.APPROVED if approve else Status.DECLINED
    change_request.decided_by = actor
    if approve:
        change_request.approved_at = timezone.now()
    else:
        change_request.declined_at = timezone.now()
    change_request.save()
    return change_request, before


def _client_step_record(
    change_request: ChangeRequest, *, actor: User, event: str, summary: str, before=None, after=None, comment=None
) -> None:
    """A step the client took on its request: in the client's log, and mailed to the partner's people. A step that
    changed the request (`before` given) records its values after."""
    if before is not None:
        after = _values(change_request)
    action = f"change_request.{event}"
    client_audit_record(
        client=change_request.client, actor=actor, action=action, summary=summary, before=before, after=after
    )
    _notify(change_request, to="partner", event=event, actor=actor, comment=comment)


def _partner_step_record(
    change_request: ChangeRequest, *, actor: User, event: str, summary: str, before=None, comment=None
) -> None:
    """A step the partner took on a client's request: in the partner's log, and in the client's, whose request it
    is; mailed to the client's people."""
    client = change_request.client
    action = f"change_request.{event}"
    after = _values(change_request) if before is not None else None
    partner_audit_record(
        partner=client.partner,
        actor=actor,
        action=action,
        target_type="change_request",
        target_id=change_request.pk,
        summary=summary,
        before=before,
        after=after,
    )
    client_audit_record(client=client, actor=actor, action=action, summary=summary, before=before, after=after)
    _notify(change_request, to="client", event=event, actor=actor, comment=comment)


# --- Mail to the other side ----------------------------------------------------------------------------------------


def change_request_recipients(change_request: ChangeRequest, *, side: str) -> list[str]:
    """Who hears of a step: on the client's side its admins (and whoever asked); on the partner's, its admins and
    the staff assigned to the client."""
    client = change_request.client
    people = Membership.objects.filter(user__is_active=True)
    if side == "client":
        emails = set(people.filter(role=Role.CLIENT_ADMIN, client=client).values_list("user__email", flat=True))
        if change_request.requested_by_id and change_request.requested_by.is_active:
            if workspace_role(change_request.requested_by, client) in CLIENT_COMMENTERS:
                emails.add(change_request.requested_by.email)
    else:
        admins = people.filter(role=Role.PARTNER_ADMIN, partner_id=client.partner_id)
        staff = people.filter(role=Role.PARTNER_STAFF, partner_id=client.partner_id, assigned_clients=client)
        emails = set(admins.values_list("user__email", flat=True)) | set(staff.values_list("user__email", flat=True))
    return sorted(emails)


SUBJECTS = {
    "requested": "New change request from {client}: {title}",
    "quoted": "Quote for your change request: {title}",
    "approved": "{client} approved change request: {title}",
    "declined": "{client} declined the quote for: {title}",
    "withdrawn": "{client} withdrew change request: {title}",
    "delivered": "Change request delivered: {title}",
    "commented": "New comment on change request: {title}",
}


def change_request_url(change_request: ChangeRequest, *, side: str) -> str:
    client = change_request.client
    if side == "client":
        path = reverse("workspace_change", urlconf="portal.urls_partner", args=[client.slug, change_request.number])
    else:
        path = reverse("partner_change", urlconf="portal.urls_partner", args=[change_request.pk])
    return f"{partner_base_url(client.partner)}{path}"


def _notify(change_request: ChangeRequest, *, to: str, event: str, actor: User, comment=None) -> None:
    recipients = [email for email in change_request_recipients(change_request, side=to) if email != actor.email]
    if not recipients:
        return
    client = change_request.client
    subject = SUBJECTS[event].format(client=client.name, title=change_request.title)
    context = {
        "change_request": change_request,
        "client": client,
        "event": event,
        "audience": to,
        "actor_name": actor.display_name,
        "comment": comment,
        "url": change_request_url(change_request, side=to),
    }
    transaction.on_commit(
        lambda: branded_email_send(
            partner=client.partner, to=recipients, subject=subject, template="change_request", context=context
        )
    )
