"""The workspace screens through the test client: queue actions, connections' secrets, the mapping
editor, people, the audit log, and what people type or vendors send rendered inert."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.core.cache import cache
from django.db import connection

from connectors.sandbox.server import SANDBOX_PORTS
from integrations.models import (
    AuditEvent,
    Connection,
    Customer,
    Mapping,
    MappingRule,
    SyncException,
    SyncExceptionComment,
    ValueMapEntry,
)
from portal.crypto import credentials_decrypt
from tenants.models import Membership, Role
from tests.integrations.workspace_fixtures import demo_credentials, project_codes_map, seed_workspace
from tests.support import NORTHWIND, browser_for

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _cold_cache():
    """Counts, filter choices and dashboards are cached per schema; each test starts without them."""
    cache.clear()
    yield
    cache.clear()


HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def contoso(world):
    connection.set_tenant(world.clients["contoso"])
    seeded = seed_workspace()
    connection.set_schema_to_public()
    return seeded


def within(world, fn):
    connection.set_tenant(world.clients["contoso"])
    try:
        return fn()
    finally:
        connection.set_schema_to_public()


@pytest.fixture
def finance(world):
    return browser_for(world.user("finance@contoso.localhost"), host=NORTHWIND)


@pytest.fixture
def admin(world):
    return browser_for(world.user("admin@contoso.localhost"), host=NORTHWIND)


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


# --- Connections ------------------------------------------------------------------------------


def test_a_connection_form_comes_from_the_connector_and_never_shows_secrets_again(world, admin):
    form = admin.get("/c/contoso/connections/new/netsuite").content.decode()
    for label in ("Account ID", "Client ID", "Certificate ID", "Certificate private key (PEM)"):
        assert label in form
    creds = demo_credentials("kantata")
    response = admin.post(
        "/c/contoso/connections/new/kantata",
        {
            "name": "Kantata OX",
            "base_url": "http://127.0.0.1:9",
            "cred_access_token": creds["access_token"],
            "cred_service_name": "SysGenPro",
            "cred_approved_only": "yes",
        },
    )
    assert response.status_code == 302
    created = within(world, lambda: Connection.objects.get(vendor="kantata"))
    page = admin.get(response["Location"]).content.decode()
    assert creds["access_token"] not in page
    assert "SysGenPro" in page  # non-secret settings are shown

    # Rotating with the secret left blank keeps it; a new one replaces it.
    refused = admin.post(f"/c/contoso/connections/{created.pk}/rotate", {"cred_service_name": "Renamed"})
    assert refused.status_code == 422
    admin.post(
        f"/c/contoso/connections/{created.pk}/rotate", {"cred_access_token": "new-token", "cred_service_name": ""}
    )
    stored = within(world, lambda: credentials_decrypt(Connection.objects.get(pk=created.pk).encrypted_credentials))
    assert stored["access_token"] == "new-token" and stored["service_name"] == "SysGenPro"


@pytest.fixture
def hr_sandboxes(settings):
    """Workday (SOAP) and ADP (mutual TLS) sandboxes this workspace may reach."""
    from connectors.adp.sandbox import create_app as adp_app
    from connectors.sandbox.firm import Firm
    from connectors.sandbox.server import serve_in_thread
    from connectors.workday.sandbox import create_app as workday_app

    running = {"workday": serve_in_thread(workday_app(Firm())), "adp": serve_in_thread(adp_app(Firm()))}
    settings.CONNECTOR_ALLOWED_HOSTS = [s.host for s in running.values()]
    yield running
    for sandbox in running.values():
        sandbox.stop()


def test_an_adp_connection_takes_pem_text_in_text_areas_and_tests_over_mutual_tls(world, admin, hr_sandboxes, settings):
    adp_port = SANDBOX_PORTS["adp"]  # where the demo's ADP sandbox listens (moved by SANDBOX_PORT_OFFSET)
    settings.CONNECTOR_ALLOWED_HOSTS = [*settings.CONNECTOR_ALLOWED_HOSTS, f"127.0.0.1:{adp_port}"]
    form = admin.get("/c/contoso/connections/new/adp").content.decode()
    assert f"<code>https://127.0.0.1:{adp_port}</code>" in form  # the ADP sandbox speaks TLS only
    for name in ("cred_client_certificate", "cred_client_private_key", "cred_ca_certificate"):
        assert f'<textarea name="{name}"' in form
    assert '<input type="password" name="cred_client_secret"' in form

    creds = demo_credentials("adp")
    response = admin.post(
        "/c/contoso/connections/new/adp",
        {
            "name": "ADP Workforce Now",
            "base_url": hr_sandboxes["adp"].url,
            **{f"cred_{key}": value for key, value in creds.items()},
        },
    )
    assert response.status_code == 302, response.content.decode()
    created = within(world, lambda: Connection.objects.get(vendor="adp"))
    stored = within(world, lambda: credentials_decrypt(created.encrypted_credentials))
    assert stored["client_private_key"] == creds["client_private_key"].strip()  # lines kept, stored encrypted
    page = admin.get(response["Location"]).content.decode()
    assert creds["client_private_key"].splitlines()[1] not in page
    assert "-----BEGIN CERTIFICATE----- … (" in page  # the CA shown by its first line, not in full

    tested = admin.post(f"/c/contoso/connections/{created.pk}/test", **HTMX).content.decode()
    assert "check-result ok" in tested and "with a client certificate; 200 workers visible" in tested


def test_a_workday_connection_form_tests_the_integration_system_user(world, admin, hr_sandboxes):
    creds = demo_credentials("workday")
    response = admin.post(
        "/c/contoso/connections/new/workday",
        {"name": "Workday", "base_url": hr_sandboxes["workday"].url, **{f"cred_{k}": v for k, v in creds.items()}},
    )
    assert response.status_code == 302, response.content.decode()
    created = within(world, lambda: Connection.objects.get(vendor="workday"))
    tested = admin.post(f"/c/contoso/connections/{created.pk}/test", **HTMX).content.decode()
    assert "check-result ok" in tested and "as integration system user ISU_Integrations" in tested


def test_testing_an_unreachable_connection_shows_why_inline(world, admin, contoso):
    response = admin.post(f"/c/contoso/connections/{contoso.kantata.pk}/test", **HTMX)
    body = response.content.decode()
    assert 'data-testid="test-result"' in body and "check-result bad" in body
    assert within(world, lambda: Connection.objects.get(pk=contoso.kantata.pk).status) == "failing"


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
    from integrations.views import mappings

    sample = {
        "data": {"notes": " client workshop ", "workspace_id": "3000011"},
        "origin": "test",
        "error": "",
        "id": "1",
    }
    monkeypatch.setattr(mappings, "sample_record", lambda side, refresh=False: sample)
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


# --- Dashboards from the shared cache ---------------------------------------------------------


def test_two_workspaces_never_see_each_others_cached_dashboards(world, contoso):
    """The cache is shared by every process and every workspace: its keys must name the schema."""
    open_in = {
        slug: within_schema(world.clients[slug], lambda: SyncException.objects.filter(status="open").count())
        for slug in ("contoso", "wingtip")
    }
    assert open_in["contoso"] == 7 and open_in["wingtip"] != 7  # seed_workspace filled Contoso only
    partner_admin = browser_for(world.user("admin@northwind.localhost"), host=NORTHWIND)
    for slug in ("contoso", "wingtip", "contoso"):  # each cached in turn; each reads its own
        page = partner_admin.get(f"/c/{slug}/dashboards/").content.decode()
        assert f'data-testid="dash-open">{open_in[slug]}<' in page
        # Same parameters in both workspaces (the SLA above may differ by plan): only the schema
        # in the key keeps them apart.
        health = partner_admin.get(f"/c/{slug}/dashboards/sync-health").content.decode()
        other = "wingtip" if slug == "contoso" else "contoso"
        assert f"{world.clients[slug].name} · Dashboards" in health
        assert f"{world.clients[other].name} · Dashboards" not in health


def test_a_dashboard_is_served_from_the_cache_until_its_figures_are_recomputed(world, finance, contoso):
    from integrations import dashboard_cache

    first = finance.get("/c/contoso/dashboards/").content.decode()
    assert 'data-testid="dash-open">7<' in first
    within(world, lambda: SyncException.objects.filter(status="open").update(status="resolved"))
    # Still the cached figures (the page says as of when) until beat's refresh recomputes them...
    assert 'data-testid="dash-open">7<' in finance.get("/c/contoso/dashboards/").content.decode()
    hours = world.clients["contoso"].plan.sla_resolution_hours
    within(world, lambda: dashboard_cache.dashboard_compute("exceptions", {"sla_hours": hours}))
    # ...and then the new ones, without the request computing anything.
    assert 'data-testid="dash-open">0<' in finance.get("/c/contoso/dashboards/").content.decode()


def test_beat_refreshes_the_dashboards_people_look_at_in_each_workspace(world, finance, contoso, monkeypatch):
    from integrations import dashboard_cache, tasks
    from portal.tasks import dashboards_refresh

    finance.get("/c/contoso/dashboards/")
    finance.get("/c/contoso/dashboards/sync-health?days=7")
    queued = []
    monkeypatch.setattr(
        tasks.dashboards_refresh, "delay", lambda variants: queued.append((connection.schema_name, variants))
    )
    assert dashboards_refresh() == 1
    schema = world.clients["contoso"].schema_name
    hours = world.clients["contoso"].plan.sla_resolution_hours
    assert queued == [(schema, [["exceptions", {"sla_hours": hours}], ["sync", {"days": 7}]])]
    within(world, lambda: SyncException.objects.filter(status="open").update(status="resolved"))
    assert within(world, lambda: tasks.dashboards_refresh(queued[0][1])) == 2
    assert 'data-testid="dash-open">0<' in finance.get("/c/contoso/dashboards/").content.decode()
    assert dashboard_cache.dashboards_wanted("c_nobody_looked") == []


def test_a_dashboard_end_is_the_last_day_of_its_period_within_the_data(world, finance, contoso):
    """Any ISO date was a variant of its own that beat recomputed every minute: now a day stands
    for its week (utilization) or month (margin), clamped to the days with time, and the latest
    period is the default page. Canonical time runs from Fri 27 Jan to Fri 24 Feb 2023."""
    from integrations import dashboard_cache

    schema = world.clients["contoso"].schema_name
    for end in ("", "2023-02-20", "2023-02-24", "2023-02-26", "2031-06-01"):  # the latest week
        assert finance.get(f"/c/contoso/dashboards/utilization?end={end}").status_code == 200
    for end in ("2023-02-08", "2023-02-12"):  # Wednesday and Sunday of one week
        finance.get(f"/c/contoso/dashboards/utilization?end={end}")
    for end in ("1999-01-01", "2023-01-27"):  # before the data: its first week
        finance.get(f"/c/contoso/dashboards/utilization?end={end}")
    for end in ("2023-01-03", "2023-01-31", "1970-01-01"):  # January
        finance.get(f"/c/contoso/dashboards/margin?end={end}")
    for query in ("end=2023-02-03", "currency=XYZ", "currency=USD", "currency=usd&end=2023-02-24"):
        finance.get(f"/c/contoso/dashboards/margin?{query}")  # the default page: February, in USD
    wanted = sorted(f"{name} {params}" for name, params in dashboard_cache.dashboards_wanted(schema))
    assert wanted == [
        "margin {'months': 3, 'end': '2023-01-31', 'currency': ''}",
        "margin {'months': 3, 'end': None, 'currency': ''}",
        "utilization {'weeks': 8, 'end': '2023-01-29'}",
        "utilization {'weeks': 8, 'end': '2023-02-12'}",
        "utilization {'weeks': 8, 'end': None}",
    ]
    page = finance.get("/c/contoso/dashboards/utilization?weeks=4&end=2023-02-08").content.decode()
    assert "<strong>16 Jan 2023 – 12 Feb 2023</strong>" in page  # four weeks to the Sunday after the 8th
    unknown = finance.get("/c/contoso/dashboards/utilization?practice=Nobody%20here").content.decode()
    assert "Nobody here" not in unknown  # every practice's people listed, as without one
    assert unknown.count('class="num"') == finance.get("/c/contoso/dashboards/utilization").content.decode().count(
        'class="num"'
    )


def test_beat_refreshes_the_default_pages_and_the_few_latest_variants(world, finance, contoso, monkeypatch):
    """A workspace user asking for many variants must not multiply what beat reads every minute."""
    from integrations import dashboard_cache

    schema = world.clients["contoso"].schema_name
    finance.get("/c/contoso/dashboards/")
    finance.get("/c/contoso/dashboards/margin")
    asked = [
        f"/c/contoso/dashboards/utilization?weeks={weeks}&end={end}"
        for end in ("2023-01-27", "2023-02-01", "2023-02-08", "2023-02-15")
        for weeks in (4, 8, 12, 26)
    ]
    for path in asked:
        assert finance.get(path).status_code == 200
    finance.get("/c/contoso/dashboards/sync-health")
    wanted = dashboard_cache.dashboards_wanted(schema)
    assert len(wanted) == dashboard_cache.DASHBOARD_REFRESHED
    defaults = [["exceptions", {"sla_hours": world.clients["contoso"].plan.sla_resolution_hours}]] + [
        [name, params] for name, params in dashboard_cache.DASHBOARD_DEFAULTS.items() if name != "utilization"
    ]
    assert all(default in wanted for default in defaults)
    latest = [["utilization", {"weeks": weeks, "end": "2023-02-19"}] for weeks in (26, 12, 8, 4)]
    assert wanted[len(defaults) : len(defaults) + 4] == latest


def within_schema(client, fn):
    connection.set_tenant(client)
    try:
        return fn()
    finally:
        connection.set_schema_to_public()
