"""Clients in the partner console: creation with a branded invitation, suspension, and per-client health."""

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection
from django.utils import timezone
from django_tenants.utils import schema_exists, tenant_context

from integrations.selectors import client_health
from tenants import services
from tenants.models import Client, Membership, Role
from tests.support import NORTHWIND, SUMMIT, browser_for

pytestmark = pytest.mark.django_db


def test_partner_admin_creates_a_workspace_and_its_admin_gets_a_branded_invitation(
    world, django_capture_on_commit_callbacks
):
    admin = browser_for(world.user("admin@northwind.localhost"), host=NORTHWIND)
    essentials = world.partners["northwind"].plans.get(name="Essentials")
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        response = admin.post(
            "/partner/clients/new",
            {
                "name": "Fourth Coffee Advisors",
                "slug": "",
                "plan": essentials.pk,
                "admin_email": "Ana@FourthCoffee.example",
            },
        )
    assert response.status_code == 302
    assert response["Location"] == "/partner/clients/fourth-coffee-advisors/"
    client = Client.objects.get(partner=world.partners["northwind"], slug="fourth-coffee-advisors")
    assert client.plan == essentials and schema_exists(client.schema_name)
    assert Membership.objects.filter(
        client=client, user__email="ana@fourthcoffee.example", role=Role.CLIENT_ADMIN
    ).exists()

    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["ana@fourthcoffee.example"]
    assert message.from_email.startswith("Northwind Advisory <")
    assert message.subject == "You are invited · Northwind Connect"
    assert "the Fourth Coffee Advisors workspace on Northwind Connect, run by Northwind Advisory" in message.body
    html = message.alternatives[0][0]
    assert "background:#0B5CAD" in html
    assert re.search(r'<img src="http://northwind\.localhost(:\d+)?/brand/logo\?v=\d+"', html)

    page = admin.get(response["Location"]).content.decode()
    assert "<h1>Fourth Coffee Advisors</h1>" in page and "No syncs yet" in page
    with tenant_context(client):
        from integrations.models import AuditEvent

        assert AuditEvent.objects.filter(action="workspace.created", actor_email="admin@northwind.localhost").exists()


def test_a_bad_client_form_comes_back_with_reasons(world):
    admin = browser_for(world.user("admin@northwind.localhost"), host=NORTHWIND)
    plan = world.partners["northwind"].plans.first()
    response = admin.post(
        "/partner/clients/new", {"name": "Contoso Again", "slug": "contoso", "plan": plan.pk, "admin_email": "nope"}
    )
    page = response.content.decode()
    assert response.status_code == 422
    assert "Another client already uses /c/contoso/" in page
    assert "Enter a valid email address." in page
    assert 'value="Contoso Again"' in page
    bad_slug = admin.post(
        "/partner/clients/new", {"name": "X", "slug": "No Spaces!", "plan": plan.pk, "admin_email": "a@b.example"}
    )
    assert "lowercase letters, digits or dashes" in bad_slug.content.decode()


def test_a_client_cannot_be_put_on_another_partners_plan(world):
    admin = browser_for(world.user("admin@northwind.localhost"), host=NORTHWIND)
    summit_plan = world.partners["summit"].plans.first()
    response = admin.post(
        "/partner/clients/new", {"name": "Sneaky", "plan": summit_plan.pk, "admin_email": "s@sneaky.example"}
    )
    assert response.status_code == 422
    assert not Client.objects.filter(name="Sneaky").exists()


def test_staff_cannot_create_suspend_or_change_plans(world):
    engineer = browser_for(world.user("engineer@northwind.localhost"), host=NORTHWIND)
    assert engineer.get("/partner/clients/new").status_code == 403
    assert engineer.post("/partner/clients/contoso/suspend").status_code == 403
    assert engineer.post("/partner/clients/contoso/plan", {"plan": 1}).status_code == 403
    assert Client.objects.get(slug="contoso").status == Client.Status.ACTIVE


def test_suspending_stops_the_workspace_and_its_users_see_the_notice(world):
    admin_user = world.user("admin@northwind.localhost")
    admin = browser_for(admin_user, host=NORTHWIND)
    page = admin.get("/partner/clients/tailspin/").content.decode()
    assert 'data-confirm="Suspend Tailspin Consulting?' in page  # the browser asks first

    assert admin.post("/partner/clients/tailspin/suspend").status_code == 302
    tailspin = Client.objects.get(slug="tailspin")
    assert tailspin.is_suspended
    client_admin = browser_for(world.user("admin@tailspin.localhost"), host=NORTHWIND)
    assert "This workspace is suspended: syncs are stopped." in client_admin.get("/c/tailspin/").content.decode()
    with tenant_context(tailspin):
        from integrations.models import AuditEvent

        event = AuditEvent.objects.get(action="workspace.suspended")
        assert event.actor_email == "admin@northwind.localhost"

    assert admin.post("/partner/clients/tailspin/resume").status_code == 302
    assert not Client.objects.get(slug="tailspin").is_suspended
    assert "suspended" not in client_admin.get("/c/tailspin/").content.decode()


def test_suspending_disables_the_clients_beat_entries_and_resuming_restores_each_flows_own_state(world):
    from django_celery_beat.models import PeriodicTask, PeriodicTasks

    from integrations.models import Connection, Flow, Mapping
    from integrations.services.flows import flow_schedule_sync, flow_set_enabled

    admin = world.user("admin@northwind.localhost")
    contoso = Client.objects.get(slug="contoso")
    entries = PeriodicTask.objects.filter(name__startswith=f"{contoso.schema_name}:flow-")
    with tenant_context(contoso):
        psa = Connection.objects.create(name="Kantata", vendor="kantata", base_url="https://api.mavenlink.com")
        scheduled = [
            Flow.objects.create(
                name=f"Hourly {n}",
                source_connection=psa,
                source_object="time_entries",
                entity="time_entry",
                inbound_mapping=Mapping.objects.create(name=f"Hourly {n}"),
                schedule_minutes=60,
            )
            for n in range(3)
        ]
        for flow in scheduled:
            flow_schedule_sync(flow=flow)
        before_pausing = PeriodicTasks.last_change()
        flow_set_enabled(flow=scheduled[0], enabled=False)
        assert PeriodicTasks.last_change() > before_pausing
    assert entries.filter(enabled=True).count() == 2

    before_suspending = PeriodicTasks.last_change()
    services.client_suspend(client=contoso, actor=admin)
    assert not entries.filter(enabled=True).exists()
    assert PeriodicTasks.last_change() > before_suspending  # beat reloads its schedule on this mark
    with tenant_context(contoso):  # a schedule saved while suspended stays off
        flow_schedule_sync(flow=scheduled[1])
    assert not entries.filter(enabled=True).exists()

    services.client_resume(client=Client.objects.get(pk=contoso.pk), actor=admin)
    enabled = set(entries.filter(enabled=True).values_list("name", flat=True))
    assert enabled == {f"{contoso.schema_name}:flow-{f.pk}" for f in scheduled[1:]}


def test_changing_a_clients_plan_from_its_page(world):
    admin = browser_for(world.user("admin@northwind.localhost"), host=NORTHWIND)
    essentials = world.partners["northwind"].plans.get(name="Essentials")
    response = admin.post("/partner/clients/contoso/plan", {"plan": essentials.pk}, follow=True)
    assert Client.objects.get(slug="contoso").plan == essentials
    assert "Contoso Engineering is now on Essentials" in response.content.decode()


def test_health_pages_open_only_for_the_clients_a_user_may_reach(world):
    engineer = browser_for(world.user("engineer@northwind.localhost"), host=NORTHWIND)
    assert engineer.get("/partner/clients/contoso/").status_code == 200
    assert engineer.get("/partner/clients/tailspin/").status_code == 200
    assert engineer.get("/partner/clients/wingtip/").status_code == 404
    admin = browser_for(world.user("admin@northwind.localhost"), host=NORTHWIND)
    assert admin.get("/partner/clients/wingtip/").status_code == 200
    assert admin.get("/partner/clients/fabrikam/").status_code == 404
    summit = browser_for(world.user("admin@summit.localhost"), host=SUMMIT)
    assert summit.get("/partner/clients/contoso/").status_code == 404
    client_admin = browser_for(world.user("admin@contoso.localhost"), host=NORTHWIND)
    assert client_admin.get("/partner/clients/contoso/").status_code == 403


def test_staff_see_the_health_page_without_admin_actions(world):
    page = (
        browser_for(world.user("engineer@northwind.localhost"), host=NORTHWIND)
        .get("/partner/clients/contoso/")
        .content.decode()
    )
    assert "<h1>Contoso Engineering</h1>" in page
    assert "finance@contoso.localhost" in page
    assert "Suspend workspace" not in page and "Change plan" not in page and "Statement" not in page


def test_health_reads_the_workspaces_own_figures(world):
    from integrations.selectors.workspace import workspace_health

    contoso = world.clients["contoso"]
    health = client_health.client_health(contoso)
    with tenant_context(contoso):
        figures = workspace_health()
    assert health.engine and not health.unavailable
    assert health.open_exceptions == figures["open_exceptions"]
    assert health.last_success_at == figures["last_success_at"]
    assert health.failing_connections == len(figures["failing_connections"])


def test_health_reads_the_engines_figures_inside_the_clients_schema(world, monkeypatch):
    now = timezone.now()
    seen_schemas = []

    def workspace_health():
        seen_schemas.append(connection.schema_name)
        return {
            "last_success_at": now - timedelta(hours=30),
            "failing_connections": [{"name": "Acme HubSpot", "vendor": "hubspot", "last_error": "401 from HubSpot"}],
            "open_exceptions": 4,
            "oldest_open_exception_at": now - timedelta(hours=50),
            "records_this_month": 300_000,
            "runs_this_month": 42,
        }

    monkeypatch.setattr(client_health, "workspace_health", workspace_health)
    contoso = world.clients["contoso"]
    # Usage is the monthly roll-up's, whatever the engine counts live (every page shows the same figure).
    services.usage_record_upsert(client=contoso, month=now.date(), records_synced=300_000, runs=42)
    health = client_health.client_health(contoso, now=now)
    assert seen_schemas == [contoso.schema_name]
    assert connection.schema_name == "public"
    # Professional: 24 h resolution, 4 h freshness, 250,000 records included.
    assert health.resolution_sla_breached and health.freshness_sla_breached
    assert health.usage_percent == 120 and health.over_included and health.needs_attention

    page = (
        browser_for(world.user("engineer@northwind.localhost"), host=NORTHWIND)
        .get("/partner/clients/contoso/")
        .content.decode()
    )
    assert "Oldest 2 d 2 h · SLA 24 h · <strong>breached</strong>" in page
    assert "300,000 of 250,000 · 120%" in page
    assert "Acme HubSpot" in page and "401 from HubSpot" in page and health.failing_connections == 1
    listing = browser_for(world.user("engineer@northwind.localhost"), host=NORTHWIND).get("/partner/").content.decode()
    assert "Needs attention" in listing and "Stale" in listing


def test_health_counts_usage_from_the_monthly_roll_up(world):
    services.usage_record_upsert(
        client=world.clients["tailspin"], month=timezone.localdate(), records_synced=125_000, runs=12
    )
    health = client_health.client_health(world.clients["tailspin"])
    assert health.records_this_month == 125_000 and health.runs_this_month == 12 and health.usage_percent == 50


def test_client_list_filters_by_name_with_an_htmx_partial(world):
    admin = browser_for(world.user("admin@northwind.localhost"), host=NORTHWIND)
    response = admin.get("/partner/", {"q": "tail"}, HTTP_HX_REQUEST="true")
    page = response.content.decode()
    assert page.lstrip().startswith('<div id="client-table">') and "<html" not in page
    assert "Tailspin Consulting" in page and "Contoso Engineering" not in page
    empty = admin.get("/partner/", {"q": "zzz"}, HTTP_HX_REQUEST="true").content.decode()
    assert "No clients match" in empty
    whole = admin.get("/partner/", {"q": "tail"}).content.decode()
    assert "<html" in whole and "Monthly recurring revenue" in whole


def test_partner_home_shows_staff_no_revenue(world):
    page = browser_for(world.user("engineer@northwind.localhost"), host=NORTHWIND).get("/partner/").content.decode()
    assert "Your clients" in page and "Monthly recurring revenue" not in page
    assert ">Revenue</a>" not in page and ">Plans</a>" not in page


def test_one_broken_workspace_does_not_take_the_console_down(world, monkeypatch):
    def workspace_health():
        with connection.cursor() as cursor:
            cursor.execute("SELECT * FROM a_table_that_is_not_there")

    monkeypatch.setattr(client_health, "workspace_health", workspace_health)
    health = client_health.client_health(world.clients["contoso"])
    assert health.unavailable and health.needs_attention
    admin = browser_for(world.user("admin@northwind.localhost"), host=NORTHWIND)
    listing = admin.get("/partner/")
    assert listing.status_code == 200 and "Unavailable" in listing.content.decode()
    page = admin.get("/partner/clients/contoso/").content.decode()
    assert "This workspace's figures could not be read." in page
