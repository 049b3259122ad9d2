"""The workspace screens through the test client: queue actions, flows and the mapping editor, people, the audit
log, and what people type or vendors send rendered inert."""

from __future__ import annotations

import csv
import io
import json

import pytest

from integrations.models import (
    AuditEvent,
    Customer,
    Mapping,
    MappingRule,
    SyncException,
    SyncExceptionComment,
    ValueMapEntry,
)
from tenants.models import Membership, Role
from tests.integrations.workspace_fixtures import project_codes_map
from tests.integrations.workspace_views import HTMX, admin, cold_cache, contoso, finance, within  # noqa: F401 -- fixtures

pytestmark = pytest.mark.django_db


# --- Exception queue --------------------------------------------------------------------------


def test_queue_filters_search_and_pages_by_keyset(world, finance, contoso):
    page = finance.get("/c/contoso/exceptions/").content.decode()
    assert page.count('data-testid="exception-row"') == 7
    assert 'data-testid="count-open">7<' in page
    filtered = finance.get("/c/contoso/exceptions/?error_code=MISSING_COST_RATE").content.decode()
    assert filtered.count('data-testid="exception-row"') == 1
    searched = finance.get("/c/contoso/exceptions/?q=PRJ-LEGACY").content.decode()
    assert searched.count('data-testid="exception-row"') == 3
    assert finance.get("/c/contoso/exceptions/?age=sla").content.decode().count('data-testid="exception-row"') == 5

    from integrations.selectors.queue import QueueQuery, exception_queue

    def pages():
        first = exception_queue(QueueQuery(), user_id=None, sla_hours=24, size=3)
        second = exception_queue(QueueQuery(), user_id=None, sla_hours=24, size=3, after=first.next_cursor)
        third = exception_queue(QueueQuery(), user_id=None, sla_hours=24, size=3, after=second.next_cursor)
        back = exception_queue(QueueQuery(), user_id=None, sla_hours=24, size=3, before=second.prev_cursor)
        return first, second, third, back

    first, second, third, back = within(world, pages)
    seen = [row.pk for row in first.rows + second.rows + third.rows]
    assert len(seen) == len(set(seen)) == 7
    created = [row.created_at for row in first.rows + second.rows + third.rows]
    assert created == sorted(created)  # oldest first
    assert third.next_cursor is None
    assert [row.pk for row in back.rows] == [row.pk for row in first.rows]


def test_htmx_filtering_answers_the_table_alone(finance, contoso):
    response = finance.get("/c/contoso/exceptions/?error_code=MISSING_COST_RATE", **HTMX)
    body = response.content.decode()
    assert body.lstrip().startswith('<div id="queue-results"')
    assert "<html" not in body


def test_map_and_retry_adds_the_entry_and_retries_every_exception_it_fixes(world, finance, contoso):
    target = contoso.project_code_exceptions[0]
    code = target.fix_actions[0]["value"]
    siblings = [e.pk for e in contoso.project_code_exceptions if e.fix_actions[0]["value"] == code]
    page = finance.get(f"/c/contoso/exceptions/{target.pk}/").content.decode()
    assert f"this and {len(siblings) - 1} other open exception" in page
    response = finance.post(
        f"/c/contoso/exceptions/{target.pk}/map",
        {"map-0-value_map": "project-codes", "map-0-source_value": code, "map-0-target_value": "PRJ-101"},
        **HTMX,
    )
    assert response.status_code == 200
    assert json.loads(response["HX-Trigger"])["exceptions-changed"] is True
    entry = within(world, lambda: ValueMapEntry.objects.get(value_map__key="project-codes", source_value=code))
    assert entry.target_value == "PRJ-101"
    retried = within(world, lambda: AuditEvent.objects.filter(action="exception.retried").count())
    assert retried == len(siblings)  # every exception the entry fixes was retried, nothing else
    assert within(world, lambda: SyncException.objects.filter(status="retrying").count()) == 0


def test_edit_ignore_assign_and_comment_are_audited(world, finance, contoso):
    exception = contoso.cost_rate_exception
    base = f"/c/contoso/exceptions/{exception.pk}"
    finance.post(f"{base}/edit", {"field": "cost_rate_in_cents", "value": "9500"}, **HTMX)
    payload = within(world, lambda: SyncException.objects.get(pk=exception.pk).payload)
    assert payload["data"]["cost_rate_in_cents"] == "9500"
    finance.post(f"{base}/assign", {"assign-assignee": "me"}, **HTMX)
    finance.post(f"{base}/comment", {"comment-body": "Rate confirmed by HR."}, **HTMX)
    refused = finance.post(f"{base}/ignore", {"ignore-reason": ""}, **HTMX)
    assert "Say why" in refused.content.decode()
    finance.post(f"{base}/ignore", {"ignore-reason": "Internal project, never billed"}, **HTMX)
    after = within(world, lambda: SyncException.objects.get(pk=exception.pk))
    assert after.assignee_email == "finance@contoso.localhost"
    assert after.status in ("ignored", "resolved")
    actions = set(
        within(
            world,
            lambda: list(
                AuditEvent.objects.filter(target_type="exception", target_id=str(exception.pk)).values_list(
                    "action", flat=True
                )
            ),
        )
    )
    assert {"exception.edited", "exception.assigned", "exception.commented"} <= actions


def test_assigning_to_someone_outside_the_workspace_is_refused(world, finance, contoso):
    outsider = world.user("admin@tailspin.localhost")
    exception = contoso.cost_rate_exception
    finance.post(f"/c/contoso/exceptions/{exception.pk}/assign", {"assign-assignee": str(outsider.pk)}, **HTMX)
    assert within(world, lambda: SyncException.objects.get(pk=exception.pk).assignee_id) is None


def test_bulk_ignore_of_selected_then_retry_of_all_filtered(world, finance, contoso):
    chosen = [e.pk for e in contoso.project_code_exceptions[:2]]
    response = finance.post(
        "/c/contoso/exceptions/bulk", {"ids": chosen, "action": "ignore", "reason": "Duplicates"}, **HTMX
    )
    assert response.status_code == 204
    assert "Ignored 2 exceptions" in json.loads(response["HX-Trigger"])["toast"]["message"]
    assert within(world, lambda: SyncException.objects.filter(pk__in=chosen, status="ignored").count()) == 2
    response = finance.post(
        "/c/contoso/exceptions/bulk", {"scope": "filtered", "error_code": "PROJECT_NOT_IN_TARGET"}, **HTMX
    )
    toast = json.loads(response["HX-Trigger"])["toast"]["message"]
    assert toast.startswith("Retried 4"), toast  # the four still open; the ignored two are not retried


def test_csv_export_streams_every_match_and_keeps_formulas_as_text(world, finance, contoso):
    within(world, lambda: SyncException.objects.filter(pk=contoso.cost_rate_exception.pk).update(message="=1+1 ok"))
    response = finance.get("/c/contoso/exceptions/export.csv?status=all")
    assert response.streaming
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][:4] == ["id", "status", "error_code", "message"]
    assert len(rows) == 1 + 7
    assert "'=1+1 ok" in {row[3] for row in rows[1:]}


def test_counters_partial_and_strip(finance, contoso):
    counters = finance.get("/c/contoso/exceptions/counters").content.decode()
    assert counters.lstrip().startswith('<section id="queue-counters"')
    strip = finance.get("/c/contoso/exceptions/counters?strip=1").content.decode()
    assert 'data-testid="strip-open"' in strip


# --- Flows and the mapping editor -------------------------------------------------------------


def test_flow_page_shows_steps_rules_owners_and_run_history(admin, contoso):
    page = admin.get(f"/c/contoso/flows/{contoso.flow.pk}/").content.decode()
    assert "Invoice per project and month" in page
    assert 'class="owner owner-psa"' in page  # time entries' hours are the PSA's
    assert 'data-testid="run-history"' in page and "120" in page


def test_run_now_queues_a_run_and_the_panel_polls_it(world, admin, contoso):
    response = admin.post(f"/c/contoso/flows/{contoso.flow.pk}/run", **HTMX)
    body = response.content.decode()
    assert 'hx-trigger="every 1s"' in body
    assert "runs-changed" in response["HX-Trigger"]
    run = within(world, lambda: contoso.flow.runs.order_by("-pk").first())
    assert run.status == "queued"
    progress = admin.get(f"/c/contoso/runs/{run.pk}/?polling=1", **HTMX).content.decode()
    assert 'id="flow-exceptions"' in progress and 'hx-swap-oob="true"' in progress


def test_schedule_respects_the_plans_minimum_interval(world, admin, contoso):
    admin.post(f"/c/contoso/flows/{contoso.flow.pk}/schedule", {"schedule_minutes": "15"})
    assert within(world, lambda: type(contoso.flow).objects.get(pk=contoso.flow.pk).schedule_minutes) == 15
    plan = world.clients["contoso"].plan
    type(plan).objects.filter(pk=plan.pk).update(min_sync_interval_minutes=60)
    response = admin.post(f"/c/contoso/flows/{contoso.flow.pk}/schedule", {"schedule_minutes": "30"}, follow=True)
    assert "every 60 minutes" in response.content.decode()
    assert within(world, lambda: type(contoso.flow).objects.get(pk=contoso.flow.pk).schedule_minutes) == 15


def test_a_draft_rule_previews_against_the_sample_and_saving_it_is_audited(world, admin, contoso, monkeypatch):
    from integrations.views.mappings import editor

    sample = {
        "data": {"notes": " client workshop ", "workspace_id": "3000011"},
        "origin": "test",
        "error": "",
        "id": "1",
    }
    monkeypatch.setattr(editor, "sample_record", lambda side, refresh=False: sample)
    rule = within(
        world, lambda: MappingRule.objects.get(mapping=contoso.flow.inbound_mapping, target="time_entry.notes")
    )
    draft = {"rule_id": rule.pk, "label": "Notes", "sources": "notes", "t0_name": "trim", "t1_name": "upper"}
    preview = admin.post(f"/c/contoso/mappings/{rule.mapping_id}/preview/draft", draft, **HTMX).content.decode()
    assert 'class="is-edited"' in preview and "CLIENT WORKSHOP" in preview
    slot = admin.post(
        f"/c/contoso/mappings/{rule.mapping_id}/rules/{rule.pk}/edit?slot=1", {**draft, "t1_name": "lookup"}
    )
    assert "Value map" in slot.content.decode() and slot.content.decode().lstrip().startswith("<li")
    saved = admin.post(f"/c/contoso/mappings/{rule.mapping_id}/rules/{rule.pk}/save", draft, **HTMX)
    assert "mapping-changed" in saved["HX-Trigger"]
    rule = within(world, lambda: MappingRule.objects.get(pk=rule.pk))
    assert rule.transforms == [{"name": "trim"}, {"name": "upper"}]
    assert within(world, lambda: AuditEvent.objects.filter(action="mapping.rule_changed").exists())
    broken = admin.post(
        f"/c/contoso/mappings/{rule.mapping_id}/rules/{rule.pk}/save", {**draft, "sources": "", "t0_name": ""}, **HTMX
    )
    assert broken.status_code == 200 and "pick a source field or a default value" in broken.content.decode()


# --- People and the audit log ------------------------------------------------------------------


def test_client_admin_invites_changes_a_role_and_removes_someone(world, admin, mailoutbox):
    response = admin.post(
        "/c/contoso/users/invite",
        {"email": "new.clerk@contoso.localhost", "full_name": "New Clerk", "role": "client_finance"},
    )
    assert response.status_code == 302
    member = Membership.objects.get(client=world.clients["contoso"], user__email="new.clerk@contoso.localhost")
    assert member.role == Role.CLIENT_FINANCE
    admin.post(f"/c/contoso/users/{member.pk}/role", {f"m{member.pk}-role": "client_viewer"})
    member.refresh_from_db()
    assert member.role == Role.CLIENT_VIEWER
    admin.post(f"/c/contoso/users/{member.pk}/remove")
    assert not Membership.objects.filter(pk=member.pk).exists()
    own = Membership.objects.get(client=world.clients["contoso"], user__email="admin@contoso.localhost")
    response = admin.post(f"/c/contoso/users/{own.pk}/remove", follow=True)
    assert "cannot remove yourself" in response.content.decode()
    log = admin.get("/c/contoso/audit/?action=member").content.decode()
    assert "Invited new.clerk@contoso.localhost" in log and "Removed new.clerk@contoso.localhost" in log


def test_audit_log_filters_by_what_who_and_text(world, finance, contoso):
    finance.post(f"/c/contoso/exceptions/{contoso.cost_rate_exception.pk}/comment", {"comment-body": "checked"})
    everything = finance.get("/c/contoso/audit/").content.decode()
    assert "template.installed" in everything and "exception.commented" in everything
    only = finance.get("/c/contoso/audit/?action=exception&actor=finance").content.decode()
    assert "exception.commented" in only and "template.installed" not in only
    assert "exception.commented" not in finance.get("/c/contoso/audit/?q=no+such+thing").content.decode()


# --- What people type and vendors send stays text ---------------------------------------------

SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(2)>'
STYLE = "<style>body{display:none}</style>"


def test_injected_script_and_style_render_inert_everywhere_they_show(world, admin, finance, contoso):
    def inject():
        Mapping.objects.filter(pk=contoso.flow.inbound_mapping_id).update(name=f"Notes {SCRIPT}")
        MappingRule.objects.filter(mapping=contoso.flow.inbound_mapping, target="time_entry.notes").update(label=IMG)
        ValueMapEntry.objects.create(value_map=project_codes_map(), source_value=SCRIPT, target_value=STYLE)
        exception = contoso.cost_rate_exception
        exception.payload["data"]["notes"] = STYLE + SCRIPT
        exception.payload["data"][IMG] = "key from a vendor"
        exception.message = f"Time entry {IMG} cannot be billed"
        exception.save()
        SyncExceptionComment.objects.create(exception=exception, author_email="x@contoso.localhost", body=STYLE + IMG)
        Customer.objects.filter(name="Acme Industries").update(name=f"Acme {SCRIPT}")
        return exception

    exception = within(world, inject)
    pages = [
        f"/c/contoso/mappings/{contoso.flow.inbound_mapping_id}/",
        f"/c/contoso/flows/{contoso.flow.pk}/",
        f"/c/contoso/value-maps/{project_codes_map_pk(world)}/",
        "/c/contoso/exceptions/",
        f"/c/contoso/exceptions/{exception.pk}/",
        "/c/contoso/exceptions/?status=all&q=cannot",
        "/c/contoso/dashboards/margin?end=2023-02-24",
        "/c/contoso/audit/",
    ]
    for path in pages:
        body = admin.get(path).content.decode()
        for raw in (SCRIPT, "<img src=x", STYLE):
            assert raw not in body, (path, raw)
    detail = finance.get(f"/c/contoso/exceptions/{exception.pk}/").content.decode()
    assert "&lt;style&gt;body{display:none}&lt;/style&gt;&lt;script&gt;" in detail  # the payload, as text
    assert "&quot;&gt;&lt;img src=x onerror=alert(2)&gt;" in detail  # the comment and the message
    # A toast carries typed text in a header: JSON, shown with textContent by static/js/workspace.js.
    response = finance.post(
        f"/c/contoso/exceptions/{exception.pk}/map",
        {"map-0-value_map": "project-codes", "map-0-source_value": "PRJ-OLD", "map-0-target_value": SCRIPT},
        **HTMX,
    )
    assert json.loads(response["HX-Trigger"])["toast"]["message"].count(SCRIPT) == 1
    assert (
        "textContent" in open("static/js/workspace.js").read()
        and "innerHTML" not in open("static/js/workspace.js").read()
    )


def project_codes_map_pk(world) -> int:
    return within(world, lambda: project_codes_map().pk)
