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
    (flow,) = template_install(key="employee-to-resource", connections={"hr": bamboo, "psa": kantata, "erp": netsuite})
    kantata_users_before = len(allow_sandboxes["kantata"].app.users)
    run = run_to_end(flow)
    assert run.status == SyncRun.Status.PARTIAL, run.error
    assert Resource.objects.count() == run.read - run.failed - run.skipped
    codes = set(SyncException.objects.filter(flow=flow, status="open").values_list("error_code", flat=True))
    assert "REQUIRED_MISSING" in codes  # people without a department or a work email
    missing = SyncException.objects.filter(flow=flow, error_code="REQUIRED_MISSING").first()
    assert "is missing" in missing.message and missing.message.startswith("Person ")

    kantata_users_after = len(allow_sandboxes["kantata"].app.users)
    netsuite_employees = len(allow_sandboxes["netsuite"].app.records["employee"])
    again = run_to_end(flow)
    assert again.created == 0
    assert len(allow_sandboxes["kantata"].app.users) == kantata_users_after >= kantata_users_before
    assert len(allow_sandboxes["netsuite"].app.records["employee"]) == netsuite_employees
