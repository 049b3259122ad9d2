"""Client workspaces get their own schema, cloned from the template, with a beat schedule that names them."""

import json

import pytest
from django.db import connection

from tenants import services

pytestmark = pytest.mark.django_db


def test_new_client_gets_its_own_migrated_schema(world):
    from django_tenants.utils import schema_exists

    from integrations.models import AuditEvent

    client = world.clients["wingtip"]
    assert schema_exists(client.schema_name)
    connection.set_tenant(client)
    assert AuditEvent.objects.count() >= 0  # the tenant tables exist in the clone


def test_client_schedule_names_its_tenant(world):
    client = world.clients["contoso"]
    periodic = services.client_periodic_task_upsert(
        client=client,
        name="nightly-note",
        task="integrations.tasks.workspace_note",
        every_seconds=3600,
        kwargs={"summary": "nightly"},
    )
    assert json.loads(periodic.headers) == {"_schema_name": client.schema_name}


def test_staff_cannot_be_assigned_to_another_partners_client(world):
    from tenants.models import Membership

    membership = Membership.objects.get(user__email="engineer@northwind.localhost")
    with pytest.raises(ValueError, match="their own partner"):
        services.staff_assign(membership=membership, clients=[world.clients["fabrikam"]])
