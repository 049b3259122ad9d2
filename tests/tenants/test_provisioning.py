"""Client workspaces get their own schema, made by the recorded script (tenants.schema_script), with a beat schedule
that names them."""

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


def test_the_schema_script_is_kept_in_the_database_not_the_cache(world):
    """Once recorded (migrate_portal does it), every process finds the script in the public schema: a cleared cache
    or a new process does not make the next person creating a workspace wait for a recording."""
    from django.core.cache import cache

    from tenants import schema_script
    from tenants.models import SchemaScript

    stored = SchemaScript.objects.get(key=schema_script.migrations_key())
    cache.clear()
    schema_script._memo.clear()  # as in a process that has created no workspace yet
    assert schema_script.creation_script() == stored.statements
    assert SchemaScript.objects.count() == 1
