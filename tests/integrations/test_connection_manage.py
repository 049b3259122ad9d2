"""Managing connections: rename and delete (refused while flows use one), and the plan's connection
limit, enforced by the service whoever calls it."""

from __future__ import annotations

import pytest
from django.db import connection

from integrations.models import AuditEvent, Connection
from integrations.services.connections import ConnectionInUse, connection_create, connection_delete
from integrations.services.flows import flow_create
from tests.integrations.workspace_fixtures import UNREACHABLE, demo_credentials, seed_workspace
from tests.integrations.workspace_views import admin, cold_cache, within  # noqa: F401 -- fixtures
from tests.support import NORTHWIND, browser_for

pytestmark = pytest.mark.django_db


def spare(name="Spare HubSpot"):
    return connection_create(name=name, vendor="hubspot", base_url=UNREACHABLE, credentials=demo_credentials("hubspot"))


def test_renaming_a_connection_is_audited_and_shown(admin, world):
    made = within(world, spare)
    response = admin.post(f"/c/contoso/connections/{made.pk}/rename", {"name": "CRM <i>prod</i>"})
    assert response.status_code == 302
    page = admin.get(response["Location"]).content.decode()
    assert "CRM &lt;i&gt;prod&lt;/i&gt;" in page and "<i>prod</i>" not in page
    event = within(world, lambda: AuditEvent.objects.get(action="connection.renamed", target_id=str(made.pk)))
    assert (event.before, event.after, event.actor_email) == (
        {"name": "Spare HubSpot"},
        {"name": "CRM <i>prod</i>"},
        "admin@contoso.localhost",
    )
    blank = admin.post(f"/c/contoso/connections/{made.pk}/rename", {"name": ""}, HTTP_HX_REQUEST="true")
    assert blank.status_code == 200 and 'id="rename-form"' in blank.content.decode()
    assert "This field is required" in blank.content.decode()
    assert admin.post(f"/c/contoso/connections/{made.pk}/rename", {"name": "two\nlines"}).status_code == 422


def test_a_connection_a_flow_uses_cannot_be_deleted(admin, world):
    seeded = within(world, seed_workspace)
    page = admin.get(f"/c/contoso/connections/{seeded.kantata.pk}/").content.decode()
    assert "remove it from them before deleting it" in page and 'data-testid="delete-connection"' not in page
    response = admin.post(f"/c/contoso/connections/{seeded.kantata.pk}/delete", follow=True)
    assert "“Kantata OX” cannot be deleted while flows use it:" in response.content.decode()
    assert seeded.flow.name in response.content.decode()
    assert within(world, lambda: Connection.objects.filter(pk=seeded.kantata.pk).exists())

    # A target step counts as much as a source.
    def target_only():
        source, target = spare("Source"), spare("Target only")
        flow_create(
            name="Writes to it",
            source_connection=source,
            source_object="deals",
            entity="opportunity",
            target_connection=target,
            target_object="deals",
        )
        with pytest.raises(ConnectionInUse, match="“Writes to it”"):
            connection_delete(connection=target)

    within(world, target_only)


def test_deleting_an_unused_connection_erases_it_and_its_credentials(admin, world):
    made = within(world, spare)
    page = admin.get(f"/c/contoso/connections/{made.pk}/").content.decode()
    assert 'data-confirm="Delete “Spare HubSpot”?' in page
    response = admin.post(f"/c/contoso/connections/{made.pk}/delete")
    assert response.status_code == 302 and response["Location"] == "/c/contoso/connections/"

    def check():
        assert not Connection.objects.filter(pk=made.pk).exists()
        with connection.cursor() as cursor:  # the row, and so its encrypted credentials, is gone
            cursor.execute("SELECT count(*) FROM integrations_connection WHERE id = %s", [made.pk])
            assert cursor.fetchone()[0] == 0
        event = AuditEvent.objects.get(action="connection.deleted", target_id=str(made.pk))
        assert event.actor_email == "admin@contoso.localhost" and event.before["name"] == "Spare HubSpot"
        assert "credentials" not in str(event.before)

    within(world, check)
    assert "is deleted, and its stored credentials with it" in admin.get("/c/contoso/connections/").content.decode()
    assert admin.get(f"/c/contoso/connections/{made.pk}/").status_code == 404


def test_deleting_a_connection_that_synced_records_warns_that_their_links_go_too(admin, world):
    from integrations.models import ExternalRef

    def made_with_links():
        made = spare()
        ExternalRef.objects.bulk_create(
            ExternalRef(connection=made, object="companies", external_id=str(n), entity="customer", record_id=n)
            for n in range(1, 801)
        )
        return made

    made = within(world, made_with_links)
    page = admin.get(f"/c/contoso/connections/{made.pk}/").content.decode()
    assert "The links to 800 records in Spare HubSpot are forgotten too" in page
    assert "would create those records there a second time" in page


def test_viewers_and_finance_cannot_rename_or_delete(world):
    made = within(world, spare)
    for email in ("viewer@contoso.localhost", "finance@contoso.localhost"):
        browser = browser_for(world.user(email), host=NORTHWIND)
        assert browser.post(f"/c/contoso/connections/{made.pk}/rename", {"name": "Mine"}).status_code == 403
        assert browser.post(f"/c/contoso/connections/{made.pk}/delete").status_code == 403
        page = browser.get(f"/c/contoso/connections/{made.pk}/").content.decode()
        assert "Delete connection" not in page and "rename-form" not in page
    assert within(world, lambda: Connection.objects.get(pk=made.pk).name) == "Spare HubSpot"


# --- The plan's connection limit -------------------------------------------------------------------


def test_the_service_enforces_the_plans_connection_limit_on_every_path(in_workspace):
    from tenants.plans import PlanLimitReached

    limit = in_workspace.plan.max_connections  # Wingtip is on Essentials
    for index in range(limit - Connection.objects.count()):
        spare(f"Spare {index}")
    with pytest.raises(PlanLimitReached, match=f"includes {limit} connections; remove one or ask"):
        spare("One too many")
    assert Connection.objects.count() == limit
    assert not AuditEvent.objects.filter(summary__contains="One too many").exists()


def test_the_connection_form_shows_the_plans_refusal(admin, world):
    from tenants.models import Plan

    plan = world.clients["contoso"].plan
    Plan.objects.filter(pk=plan.pk).update(max_connections=within(world, Connection.objects.count))
    response = admin.post(
        "/c/contoso/connections/new/hubspot",
        {"name": "Over", "base_url": "https://api.hubapi.com", "cred_access_token": "pat-na1-x"},
    )
    assert response.status_code == 422
    assert f"Your plan &quot;{plan.name}&quot; includes" in response.content.decode()
    assert not within(world, lambda: Connection.objects.filter(name="Over").exists())
