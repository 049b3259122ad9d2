"""Lead to project, end to end: a HubSpot deal reaches closed-won (webhook) -> NetSuite customer and
project -> Kantata project -> an email to delivery leadership. One webhook delivered twice acts once."""

import json
import time

import pytest
from django.core import mail

from connectors.base import OutboundRecord
from connectors.hubspot.sandbox import WEBHOOK_SECRET
from connectors.hubspot.webhooks import signature_v3
from integrations.models import NotificationRecipient, Project, SyncRun
from integrations.services.connections import connector_for
from integrations.services.flows import template_install
from integrations.services.runs import run_slice
from tests.integrations.conftest import make_connection
from tests.integrations.test_approved_time import run_to_end
from tests.support import NORTHWIND, browser_for

pytestmark = pytest.mark.django_db


def erp_jobs(sandbox, code):
    return [r for r in sandbox.app.records["job"].values() if r.get("entityId") == code]


def psa_workspaces(sandbox, code):
    return [w for w in sandbox.app.workspaces.values() if str(w.get("title", "")).startswith(f"{code} ")]


def resource_requests(sandbox, code):
    return [i for i in sandbox.app.issues.values() if str(i.get("summary", "")).startswith(f"Staff {code}: ")]


def signed_webhook(url: str, events: list) -> dict:
    body = json.dumps(events).encode()
    timestamp = str(int(time.time() * 1000))
    return {
        "data": body,
        "content_type": "application/json",
        "HTTP_X_HUBSPOT_SIGNATURE_V3": signature_v3(WEBHOOK_SECRET, "POST", url, body, timestamp),
        "HTTP_X_HUBSPOT_REQUEST_TIMESTAMP": timestamp,
    }


def test_closed_won_webhook_creates_customer_projects_and_email_once(
    allow_sandboxes, world, django_capture_on_commit_callbacks
):
    from django.db import connection

    client = world.clients["tailspin"]
    connection.set_tenant(client)
    hubspot = make_connection("hubspot", allow_sandboxes["hubspot"])
    netsuite = make_connection("netsuite", allow_sandboxes["netsuite"])
    kantata = make_connection("kantata", allow_sandboxes["kantata"])
    jira = make_connection("jira", allow_sandboxes["jira"])
    NotificationRecipient.objects.create(email="delivery@tailspin.localhost", on_deal_won=True)
    flows = template_install(
        key="lead-to-project", connections={"crm": hubspot, "erp": netsuite, "psa": kantata, "ticketing": jira}
    )
    flow = next(f for f in flows if f.template_key.endswith("/won-deals"))

    first = run_to_end(flow)  # the initial sync picks up every deal already won
    assert first.status in (SyncRun.Status.SUCCEEDED, SyncRun.Status.PARTIAL), first.error
    won_before = Project.objects.count()
    assert won_before > 0

    # A salesperson moves an open deal to closed-won in HubSpot.
    crm = connector_for(hubspot)
    page = next(crm.read("deals", page_size=100))
    open_deal = next(r for r in page.records if r.data.get("dealstage") not in ("closedwon", "closedlost"))
    result = crm.write(
        "deals",
        [
            OutboundRecord(
                external_id=open_deal.external_id, target_id=open_deal.external_id, fields={"dealstage": "closedwon"}
            )
        ],
        mode="update",
    )
    assert result[0].outcome in ("updated", "unchanged"), result

    path = f"/hooks/{client.slug}/{flow.webhook_token}"
    events = [
        {
            "eventId": 987654,
            "subscriptionType": "deal.propertyChange",
            "objectId": int(open_deal.external_id),
            "propertyName": "dealstage",
            "propertyValue": "closedwon",
            "occurredAt": int(time.time() * 1000),
        }
    ]
    hook = browser_for(host=NORTHWIND)
    request = signed_webhook(f"http://{NORTHWIND}{path}", events)
    connection.set_schema_to_public()
    accepted = hook.post(path, **request)
    assert accepted.status_code == 202, accepted.content
    replay = hook.post(path, **request)
    assert replay.status_code == 409
    forged = hook.post(path, **{**request, "HTTP_X_HUBSPOT_SIGNATURE_V3": "bm9wZQ=="})
    assert forged.status_code == 401

    connection.set_tenant(client)
    mail.outbox.clear()
    run_id = accepted.json()["run"]
    while run_slice(run_id=run_id, slice_seconds=60) == "continue":
        pass
    code = f"PRJ-D{open_deal.external_id}"
    assert Project.objects.filter(code=code).exists()
    assert len(erp_jobs(allow_sandboxes["netsuite"], code)) == 1
    assert len(psa_workspaces(allow_sandboxes["kantata"], code)) == 1
    assert len(resource_requests(allow_sandboxes["jira"], code)) == 1
    assert any(code in message.body and message.to == ["delivery@tailspin.localhost"] for message in mail.outbox)

    # Running again (the schedule's safety net) creates nothing more.
    again = run_to_end(flow)
    assert again.created == 0
    assert len(erp_jobs(allow_sandboxes["netsuite"], code)) == 1
    assert len(psa_workspaces(allow_sandboxes["kantata"], code)) == 1
    assert len(resource_requests(allow_sandboxes["jira"], code)) == 1
