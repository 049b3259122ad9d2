"""A run under 429s, 5xx and malformed records completes, reports the malformed ones, and loses nothing."""

import pytest

from connectors.base import SourceRecord
from integrations.models import ExternalRef, SyncException, SyncRun
from integrations.services.connections import connector_for
from integrations.services.flows import template_install
from tests.integrations.conftest import make_connection
from tests.integrations.test_approved_time import run_to_end

pytestmark = pytest.mark.django_db


def test_faulty_psa_run_completes_and_accounts_for_every_entry(allow_sandboxes, in_workspace):
    kantata_sandbox = allow_sandboxes["kantata"]
    kantata = make_connection("kantata", kantata_sandbox)
    netsuite = make_connection("netsuite", allow_sandboxes["netsuite"])
    flows = template_install(key="approved-time-to-invoice", connections={"psa": kantata, "erp": netsuite})
    flow = next(f for f in flows if f.template_key.endswith("/approved-time"))

    # What the PSA holds, read without faults: the ids every run must account for.
    expected: set[str] = set()
    for page in connector_for(kantata).read("time_entries"):
        expected |= {r.external_id for r in page.records if isinstance(r, SourceRecord)}

    kantata_sandbox.set_faults(
        error_every=4, malformed_every=40, rate_limit={"calls": 8, "window": 1.0, "retry_after": 1}
    )
    kantata_sandbox.clear_stats()
    try:
        run = run_to_end(flow)
    finally:
        stats = kantata_sandbox.stats()
        kantata_sandbox.set_faults()
    assert run.status == SyncRun.Status.PARTIAL, run.error
    assert stats["errors_injected"] > 0 and stats["malformed_sent"] > 0, stats

    malformed = SyncException.objects.filter(flow=flow, error_code="MALFORMED_RECORD")
    assert malformed.exists()
    arrived = set(
        ExternalRef.objects.filter(connection=kantata, object="time_entries").values_list("external_id", flat=True)
    )
    reported = set(SyncException.objects.filter(flow=flow).values_list("external_id", flat=True))
    unapproved = {
        r.external_id
        for page in connector_for(kantata).read("time_entries")
        for r in page.records
        if not r.data.get("approved")
    }
    assert expected - arrived - reported - unapproved == set()
