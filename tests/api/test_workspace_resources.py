"""Client-scope resources through the API: the same services and role rules as the workspace pages."""

import pytest
from django_tenants.utils import tenant_context

from tests.api.conftest import Api
from tests.integrations.workspace_fixtures import seed_workspace
from tests.integrations.workspace_views import within

pytestmark = pytest.mark.django_db


@pytest.fixture
def seeded(world):
    return within(world, seed_workspace)


@pytest.fixture
def api(contoso_key):
    return Api(contoso_key.secret)


def test_connections_show_metadata_and_status_never_secrets(world, seeded, api):
    from tests.integrations.workspace_fixtures import demo_credentials

    listed = api.get("/clients/contoso/connections").json()
    assert {c["name"] for c in listed["items"]} >= {"Kantata OX", "NetSuite"} and listed["next_cursor"] is None
    one = api.get(f"/clients/contoso/connections/{seeded.kantata.pk}").json()
    assert one["vendor"] == "kantata" and one["status"] == "untested" and "credentials" not in one
    secret = demo_credentials("kantata")["access_token"]
    created = api.post(
        "/clients/contoso/connections",
        {
            "name": "Kantata two",
            "vendor": "kantata",
            "base_url": "https://kantata.example",
            "credentials": {"access_token": secret},
        },
    )
    assert created.status_code == 201 and secret not in created.content.decode()
    tested = api.post(f"/clients/contoso/connections/{created.json()['id']}/test").json()
    assert tested["ok"] is False and tested["connection"]["status"] == "failing"  # not an allowed host
    assert secret not in str(api.get("/clients/contoso/connections").json())


def test_connections_and_flows_say_their_environment_and_a_sandbox_connection_is_made_by_api(world, seeded, api):
    from integrations.models import Connection
    from tests.integrations.workspace_fixtures import demo_credentials

    one = api.get(f"/clients/contoso/connections/{seeded.kantata.pk}").json()
    assert one["environment"] == "production"
    assert {f["environment"] for f in api.get("/clients/contoso/flows").json()["items"]} == {"production"}
    body = {
        "name": "Kantata test account",
        "vendor": "kantata",
        "base_url": "https://kantata.example",
        "credentials": demo_credentials("kantata"),
    }
    created = api.post("/clients/contoso/connections", {**body, "environment": "sandbox"})
    assert created.status_code == 201, created.content
    assert created.json()["environment"] == "sandbox"
    with tenant_context(world.clients["contoso"]):
        assert Connection.objects.get(pk=created.json()["id"]).environment == "sandbox"
    assert api.post("/clients/contoso/connections", {**body, "environment": "staging"}).status_code == 422


def test_a_connection_with_bad_fields_is_refused_with_the_forms_reasons(world, seeded, api):
    unknown = api.post("/clients/contoso/connections", {"name": "X", "vendor": "nope", "base_url": "https://x"})
    assert unknown.status_code == 422 and unknown["Content-Type"] == "application/problem+json"
    missing = api.post("/clients/contoso/connections", {"name": "X", "vendor": "kantata", "base_url": "not a url"})
    assert missing.status_code == 422
    errors = missing.json()["errors"]
    assert "base_url" in errors and "access_token" in errors
    nul = api.post("/clients/contoso/connections", {"name": "X\u0000", "vendor": "kantata", "base_url": "https://x"})
    assert nul.status_code == 422


def test_flows_pause_resume_and_run_now(world, seeded, api):
    flows = api.get("/clients/contoso/flows").json()["items"]
    assert seeded.flow.pk in [f["id"] for f in flows]
    one = api.get(f"/clients/contoso/flows/{seeded.flow.pk}")
    assert one.status_code == 200 and one["ETag"].startswith('"')
    assert api.post(f"/clients/contoso/flows/{seeded.flow.pk}/pause").json()["enabled"] is False
    assert api.post(f"/clients/contoso/flows/{seeded.flow.pk}/resume").json()["enabled"] is True
    run = api.post(f"/clients/contoso/flows/{seeded.flow.pk}/run")
    assert run.status_code == 202 and run.json()["status"] == "queued"
    assert run["Location"] == f"/api/v1/clients/contoso/runs/{run.json()['id']}"
    again = api.post(f"/clients/contoso/flows/{seeded.flow.pk}/run").json()
    assert again["id"] == run.json()["id"]  # one live run per flow, as in the pages
    runs = api.get(f"/clients/contoso/flows/{seeded.flow.pk}/runs", limit=1).json()
    assert runs["items"][0]["id"] == run.json()["id"] and runs["next_cursor"]
    older = api.get(f"/clients/contoso/flows/{seeded.flow.pk}/runs", limit=1, cursor=runs["next_cursor"]).json()
    assert older["items"][0]["id"] == seeded.run.pk
    assert api.get("/clients/contoso/flows/999999").status_code == 404


def test_a_run_has_counts_progress_and_its_reconciliation(world, seeded, api):
    from integrations.models import RunRecord

    with tenant_context(world.clients["contoso"]):
        for index in range(3):
            RunRecord.objects.create(
                run=seeded.run, flow=seeded.flow, object="time_entries", external_id=f"te-r{index}", outcome="created"
            )
    run = api.get(f"/clients/contoso/runs/{seeded.run.pk}").json()
    assert (run["read"], run["created"], run["progress_percent"]) == (120, 100, 100)
    records = api.get(f"/clients/contoso/runs/{seeded.run.pk}/records", limit=2).json()
    counted = {row["outcome"]: row["count"] for row in records["outcomes"]}
    assert (counted["created"], counted["updated"], counted["exception"]) == (100, 5, 7)  # the run's own counts
    assert [r["external_id"] for r in records["items"]] == ["te-r0", "te-r1"] and records["next_cursor"]
    rest = api.get(f"/clients/contoso/runs/{seeded.run.pk}/records", cursor=records["next_cursor"]).json()
    assert [r["external_id"] for r in rest["items"]] == ["te-r2"] and rest["next_cursor"] is None


def test_the_exception_queue_filters_and_pages_by_cursor(world, seeded, api):
    everything = api.get("/clients/contoso/exceptions").json()["items"]
    assert len(everything) == 7
    missing_rate = api.get("/clients/contoso/exceptions", error_code="MISSING_COST_RATE").json()["items"]
    assert [e["id"] for e in missing_rate] == [seeded.cost_rate_exception.pk]
    assert api.get("/clients/contoso/exceptions", q="PRJ-LEGACY").json()["items"]
    seen, cursor = [], ""
    while True:
        page = api.get("/clients/contoso/exceptions", limit=3, cursor=cursor).json()
        seen += [e["id"] for e in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [e["id"] for e in everything]
    bad = api.get("/clients/contoso/exceptions", status="bogus")
    assert bad.status_code == 422 and bad["Content-Type"] == "application/problem+json"


def test_an_assignment_with_a_stale_etag_is_refused(world, seeded, api):
    exception = seeded.cost_rate_exception
    path = f"/clients/contoso/exceptions/{exception.pk}"
    read = api.get(path)
    etag = read["ETag"]
    finance = world.user("finance@contoso.localhost")
    assert api.patch(path, {"assignee_id": finance.pk}, **{"If-Match": '"stale"'}).status_code == 412
    assigned = api.patch(path, {"assignee_id": finance.pk}, **{"If-Match": etag})
    assert assigned.status_code == 200 and assigned.json()["assignee_email"] == "finance@contoso.localhost"
    assert assigned["ETag"] != etag
    # The second writer who read before the change is refused, not silently overwritten.
    assert api.patch(path, {"assignee_id": None}, **{"If-Match": etag}).status_code == 412
    unconditional = api.patch(path, {"assignee_id": None})  # no If-Match: the update applies as it stands
    assert unconditional.status_code == 200 and unconditional.json()["assignee_id"] is None
    assigned = api.patch(path, {"assignee_id": finance.pk}, **{"If-Match": "*"})
    outsider = world.user("admin@tailspin.localhost")
    refused = api.patch(path, {"assignee_id": outsider.pk}, **{"If-Match": assigned["ETag"]})
    assert refused.status_code == 422


def test_ignore_comment_and_retry_as_in_the_queue(world, seeded, api):
    from integrations.models import AuditEvent

    first, second = seeded.project_code_exceptions[:2]
    ignored = api.post(f"/clients/contoso/exceptions/{first.pk}/ignore", {"reason": "Internal project"})
    assert ignored.status_code == 200 and ignored.json()["status"] == "ignored"
    assert api.post(f"/clients/contoso/exceptions/{first.pk}/ignore", {"reason": "again"}).status_code == 409
    assert api.post(f"/clients/contoso/exceptions/{second.pk}/ignore", {"reason": "  "}).status_code == 422
    comment = api.post(f"/clients/contoso/exceptions/{second.pk}/comments", {"body": "Asked the PM"})
    assert comment.status_code == 201 and comment.json()["author_email"] == "admin@contoso.localhost"
    # NetSuite is unreachable here: the retry is refused with the reason and nothing stays "retrying".
    retried = api.post(f"/clients/contoso/exceptions/{second.pk}/retry")
    assert retried.status_code in (200, 409), retried.content
    with tenant_context(world.clients["contoso"]):
        second.refresh_from_db()
        assert second.status in ("open", "resolved")
        actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"exception.ignored", "exception.commented", "api.exceptions.ignore", "api.exceptions.comment"} <= actions


def test_audit_events_list_the_workspace_history_with_the_apis_calls(world, seeded, api):
    api.get("/clients/contoso/flows")
    events = api.get("/clients/contoso/audit-events", action="api", limit=5).json()
    assert events["items"][0]["action"].startswith("api.")
    assert all(e["action"].startswith("api.") for e in events["items"])


def test_a_viewer_key_reads_but_cannot_act(world, seeded):
    from tests.api.conftest import make_key

    viewer = make_key(
        world.user("viewer@contoso.localhost"), world.partners["northwind"], client=world.clients["contoso"]
    )
    api = Api(viewer.secret)
    assert api.get("/clients/contoso/exceptions").status_code == 200
    assert api.post(f"/clients/contoso/flows/{seeded.flow.pk}/run").status_code == 403
    assert api.post(f"/clients/contoso/exceptions/{seeded.cost_rate_exception.pk}/retry").status_code == 403
