"""Settings whose safety is not obvious from reading them."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from django.conf import settings
from django.db import connection, transaction

from integrations.models import Flow
from tests.support import ROOT, production_env, production_settings

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


def test_check_deploy_with_production_settings_warns_only_about_hsts():
    """`manage.py check --deploy` in production: the two HSTS warnings are deliberate (partners' own
    domains are not ours to pin with includeSubDomains or preload); anything else is a regression."""
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy"],
        cwd=ROOT,
        env=production_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    warned = set(re.findall(r"\((\w+\.[WE]\d+)\)", result.stderr + result.stdout))
    assert warned == {"security.W005", "security.W021"}, result.stderr + result.stdout


def test_production_settings_are_safe_by_default():
    values = production_settings(
        "DEBUG",
        "ALLAUTH_TRUSTED_PROXY_COUNT",
        "SESSION_COOKIE_SECURE",
        "CSRF_COOKIE_SECURE",
        "SECURE_SSL_REDIRECT",
        "METRICS_TOKEN",
        "CONNECTOR_ALLOWED_HOSTS",
        "REQUEST_MAX_BYTES",
    )
    assert values == {
        "DEBUG": False,
        "ALLAUTH_TRUSTED_PROXY_COUNT": 1,  # behind the TLS proxy the login rate limit counts per client
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
        "SECURE_SSL_REDIRECT": True,
        "METRICS_TOKEN": "",  # and so /metrics is off
        "CONNECTOR_ALLOWED_HOSTS": [],  # no sandbox, nothing private
        "REQUEST_MAX_BYTES": 5 * 1024 * 1024,
    }
