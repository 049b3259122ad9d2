"""Usage roll-ups equal what was synced; broken connections alert once instead of filling the queue."""

import pytest
from django.core import mail
from django.db import connection
from django.db.models import Sum
from django.utils import timezone

from integrations.housekeeping import sla_alerts, usage_rollup
from integrations.models import NotificationRecipient, SyncException, SyncRun
from integrations.services.connections import connection_create
from integrations.services.flows import template_install
from tenants.models import UsageRecord
from tests.integrations.conftest import make_connection
from tests.integrations.test_approved_time import run_to_end

pytestmark = pytest.mark.django_db


def test_usage_on_the_statement_equals_the_records_synced(allow_sandboxes, in_workspace):
    kantata = make_connection("kantata", allow_sandboxes["kantata"])
    netsuite = make_connection("netsuite", allow_sandboxes["netsuite"])
    flows = template_install(key="approved-time-to-invoice", connections={"psa": kantata, "erp": netsuite})
    run_to_end(next(f for f in flows if f.template_key.endswith("/approved-time")))
    synced = SyncRun.objects.aggregate(created=Sum("created"), updated=Sum("updated"))
    runs = SyncRun.objects.exclude(finished_at=None).count()
    connection.set_schema_to_public()
    usage_rollup()
    usage = UsageRecord.objects.get(client=in_workspace, month=timezone.localdate().replace(day=1))
    assert usage.records_synced == (synced["created"] or 0) + (synced["updated"] or 0) > 0
    assert usage.runs == runs
    usage_rollup()  # again: nothing counted twice
    assert UsageRecord.objects.get(pk=usage.pk).records_synced == usage.records_synced


def test_bad_credentials_fail_the_run_mark_the_connection_and_alert_once(allow_sandboxes, in_workspace):
    broken = connection_create(
        name="Kantata (old token)",
        vendor="kantata",
        base_url=allow_sandboxes["kantata"].url,
        credentials={"access_token": "revoked-token"},
    )
    netsuite = make_connection("netsuite", allow_sandboxes["netsuite"])
    flows = template_install(key="approved-time-to-invoice", connections={"psa": broken, "erp": netsuite})
    flow = next(f for f in flows if f.template_key.endswith("/approved-time"))
    NotificationRecipient.objects.create(email="ops@wingtip.localhost")
    mail.outbox.clear()
    run = run_to_end(flow)
    assert run.status == SyncRun.Status.FAILED
    assert "Kantata (old token)" in run.error
    broken.refresh_from_db()
    assert broken.status == "failing" and broken.last_error
    assert SyncException.objects.filter(flow=flow).count() == 0  # no exception per record
    alerts = [m for m in mail.outbox if "Connection failing" in m.subject]
    assert len(alerts) == 1 and alerts[0].to == ["ops@wingtip.localhost"]
    run_to_end(flow)  # still broken: no second alert
    assert len([m for m in mail.outbox if "Connection failing" in m.subject]) == 1


def test_sla_alert_goes_once_a_day(allow_sandboxes, in_workspace):
    from django.utils import timezone

    kantata = make_connection("kantata", allow_sandboxes["kantata"])
    netsuite = make_connection("netsuite", allow_sandboxes["netsuite"])
    flows = template_install(key="approved-time-to-invoice", connections={"psa": kantata, "erp": netsuite})
    run_to_end(next(f for f in flows if f.template_key.endswith("/approved-time")))
    SyncException.objects.update(created_at=timezone.now() - timezone.timedelta(days=10))
    NotificationRecipient.objects.create(email="finance-lead@wingtip.localhost")
    mail.outbox.clear()
    connection.set_schema_to_public()
    assert sla_alerts() == 1
    assert sla_alerts() == 0
    assert "past their resolution target" in mail.outbox[0].subject
