"""Settings whose safety is not obvious from reading them."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.db import connection, transaction

from integrations.models import Flow

pytestmark = pytest.mark.django_db


def _search_path() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW search_path")
        return cursor.fetchone()[0]


def test_a_schema_switch_undone_by_a_rollback_is_issued_again(world):
    """TENANT_LIMIT_SET_CALLS sends `SET search_path` once per switch, not per cursor. PostgreSQL
    undoes a SET with the (sub)transaction that issued it: the next query must set it again, or
    it would read the schema the connection was in before."""
    assert settings.TENANT_LIMIT_SET_CALLS
    contoso, wingtip = world.clients["contoso"], world.clients["wingtip"]
    try:
        connection.set_tenant(contoso)
        Flow.objects.count()
        with pytest.raises(RuntimeError), transaction.atomic():
            connection.set_tenant(wingtip)
            Flow.objects.count()  # SET search_path to Wingtip inside the savepoint...
            raise RuntimeError("rolled back")  # ...which undoes it: PostgreSQL is back in Contoso
        Flow.objects.count()
        assert _search_path().startswith(wingtip.schema_name)
    finally:
        connection.set_schema_to_public()
