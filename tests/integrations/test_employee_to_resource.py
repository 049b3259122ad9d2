"""Employee to resource, end to end: BambooHR sandbox -> engine -> Kantata and NetSuite sandboxes."""

import pytest

from integrations.models import Resource, SyncException, SyncRun
from integrations.services.flows import template_install
from tests.integrations.conftest import make_connection
from tests.integrations.test_approved_time import run_to_end

pytestmark = pytest.mark.django_db


def test_employees_reach_psa_and_erp_once_and_gaps_become_exceptions(allow_sandboxes, in_workspace):
    bamboo = make_connection("bamboohr", allow_sandboxes["bamboohr"])
    kantata = make_connection("kantata", allow_sandboxes["kantata"])
    netsuite = make_connection("netsuite", allow_sandboxes["netsuite"])
    flows = template_install(key="employee-to-resource", connections={"hr": bamboo, "psa": kantata, "erp": netsuite})
    flow = next(f for f in flows if f.steps.exists())
    kantata_users_before = len(allow_sandboxes["kantata"].app.users)
    run = run_to_end(flow)
    assert run.status == SyncRun.Status.PARTIAL, run.error
    # Everyone the PSA and ERP already had is linked (by email), the ERP's missing hires created, nobody twice.
    assert Resource.objects.count() == len(allow_sandboxes["kantata"].app.firm.people())
    firm = allow_sandboxes["kantata"].app.firm
    in_erp, gaps = {p["id"] for p in firm.erp_people()}, firm.hr_gaps()
    latest_hires = [p for p in firm.people() if p["id"] not in in_erp and p["id"] not in gaps]
    assert run.linked > 0 and run.created == len(latest_hires)  # created in the ERP; the PSA had them all
    codes = set(SyncException.objects.filter(flow=flow, status="open").values_list("error_code", flat=True))
    assert "REQUIRED_MISSING" in codes  # people without a department or a work email
    missing = SyncException.objects.filter(flow=flow, error_code="REQUIRED_MISSING").first()
    assert "is missing" in missing.message and missing.message.startswith("Person ")

    # Cost rates: in the canonical store with their effective date, and on the PSA's memberships.
    from integrations.models import Rate

    rated = Rate.objects.filter(kind="cost").select_related("resource").first()
    assert rated is not None and rated.effective_from == rated.resource.hire_date
    psa = allow_sandboxes["kantata"].app
    user = next(u for u in psa.users.values() if u.get("email_address") == rated.resource.email)
    membership = next(m for m in psa.memberships.values() if str(m.get("user_id")) == str(user["id"]))
    assert membership.get("cost_rate_in_cents") == int(rated.amount * 100)
    # A person without a cost rate still syncs, and is one "no cost rate" exception their time can wait on.
    assert SyncException.objects.filter(error_code="MISSING_COST_RATE", status="open").exists()

    kantata_users_after = len(allow_sandboxes["kantata"].app.users)
    netsuite_employees = len(allow_sandboxes["netsuite"].app.records["employee"])
    again = run_to_end(flow)
    assert again.created == 0
    assert len(allow_sandboxes["kantata"].app.users) == kantata_users_after >= kantata_users_before
    assert len(allow_sandboxes["netsuite"].app.records["employee"]) == netsuite_employees


def test_a_leaver_with_work_booked_after_their_last_day_is_a_decision_for_a_person(allow_sandboxes, in_workspace):
    from datetime import timedelta

    from integrations.models import Flow, Project, TimeEntry

    bamboo = make_connection("bamboohr", allow_sandboxes["bamboohr"])
    kantata = make_connection("kantata", allow_sandboxes["kantata"])
    netsuite = make_connection("netsuite", allow_sandboxes["netsuite"])
    flows = template_install(key="employee-to-resource", connections={"hr": bamboo, "psa": kantata, "erp": netsuite})
    flow = next(f for f in flows if f.steps.exists())
    run_to_end(flow)
    leaver = Resource.objects.exclude(termination_date=None).filter(status__in=["terminated", "inactive"]).first()
    assert leaver is not None, "the firm has people who left"
    project = Project.objects.create(code="PRJ-TEST", name="Test")
    TimeEntry.objects.create(
        resource=leaver, project=project, date=leaver.termination_date + timedelta(days=3), hours=4
    )
    Flow.objects.filter(pk=flow.pk).update(cursor="")  # read everyone again
    flow.refresh_from_db()
    run_to_end(flow)
    decision = SyncException.objects.get(flow=flow, error_code="LEAVER_WITH_OPEN_WORK", status="open")
    assert f"left on {leaver.termination_date:%-d %b %Y}" in decision.message and "PRJ-TEST" in decision.message
