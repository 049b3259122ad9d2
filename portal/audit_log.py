"""One page of an audit log, newest first, paged by keyset: the workspace's log and the partner's share it.

`action` is a group ("team") or one action ("team.invited"); `after` is the cursor a previous page gave
(microseconds of the last row's time and its id), so a page never skips or repeats rows written meanwhile.
"""

from __future__ import annotations

from datetime import UTC, datetime

from django import forms
from django.db.models import Q, QuerySet

PAGE_SIZE = 50


def audit_page(
    events: QuerySet, *, action: str = "", actor: str = "", q: str = "", since=None, until=None, after: str = ""
) -> tuple[list, str | None]:
    """The page of `events` the filters leave, and the cursor of the next (older) page, if any."""
    if action:
        events = events.filter(action=action) if "." in action else events.filter(action__startswith=f"{action}.")
    if actor:
        events = events.filter(actor_email__icontains=actor)
    if q:
        events = events.filter(summary__icontains=q)
    if since:
        events = events.filter(at__date__gte=since)
    if until:
        events = events.filter(at__date__lte=until)
    if after:
        try:
            at_micros, pk = (int(part) for part in after.split(".", 1))
            moment = datetime.fromtimestamp(at_micros // 1_000_000, tz=UTC).replace(microsecond=at_micros % 1_000_000)
            events = events.filter(at__lte=moment).filter(Q(at__lt=moment) | Q(pk__lt=pk))
        except (ValueError, OverflowError, OSError):
            pass  # a cursor that is not ours: the first page
    rows = list(events.order_by("-at", "-id")[: PAGE_SIZE + 1])
    page = rows[:PAGE_SIZE]
    if len(rows) <= PAGE_SIZE or not page:
        return page, None
    last = page[-1]
    return page, f"{int(last.at.timestamp()) * 1_000_000 + last.at.microsecond}.{last.pk}"


def audit_page_context(request, form: AuditFilterForm, read) -> dict:
    """The audit page's context: the filter form, the page of events `read(**filters, after=cursor)` gives for the
    request's filters and cursor, and the next page's cursor."""
    after = request.GET.get("after", "")
    events, next_cursor = read(**form.filters(), after=after)
    return {"form": form, "events": events, "next_cursor": next_cursor, "paged": bool(after), "section": "audit"}


class AuditFilterForm(forms.Form):
    """An audit log's filters: what kind of change, who, words of the summary, a date range. Each log names its
    kinds of change in LABELS."""

    LABELS: dict[str, str] = {}

    q = forms.CharField(required=False, max_length=120, label="Search")
    action = forms.ChoiceField(required=False, label="What")
    actor = forms.CharField(required=False, max_length=120, label="Who")
    since = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, data, *, groups: list[str]):
        super().__init__(data)
        self.fields["action"].choices = [("", "Everything"), *[(g, self.LABELS.get(g, g.title())) for g in groups]]

    def filters(self) -> dict:
        """What audit_page takes from the form; a value that did not validate filters nothing."""
        self.is_valid()
        data = self.cleaned_data
        return {
            "action": data.get("action") or "",
            "actor": (data.get("actor") or "").strip(),
            "q": (data.get("q") or "").strip(),
            "since": data.get("since"),
            "until": data.get("until"),
        }
