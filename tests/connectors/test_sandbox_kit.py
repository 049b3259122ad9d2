"""The sandbox kit every vendor emulator shares: the firm, fault injection, stats, controls and the runner."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import pytest
import requests
from werkzeug.routing import Rule

from connectors.registry import SANDBOX_PORTS, VENDORS, get_connector_class
from connectors.sandbox import Firm, SandboxApp, json_response, serve_in_thread
from connectors.sandbox.firm import TIME_START
from tests.connectors.kit import sandbox_fixture

ROOT = Path(__file__).resolve().parents[2]


class ListApp(SandboxApp):
    vendor = "list"

    def routes(self):
        return [Rule("/things", endpoint="things")]

    def reset_state(self):
        self.volume = 3

    def seed(self, volumes):
        self.volume = volumes.get("things", self.volume)
        return {"things": self.volume}

    def things(self, request):
        records = [{"id": i, "day": "2024-01-01"} for i in range(10)]
        for position in self.malformed_positions(len(records)):
            records[position]["day"] = "not-a-date"
        return json_response({"things": records, "volume": self.volume})


sandbox = sandbox_fixture(lambda: ListApp())


@pytest.fixture(autouse=True)
def clean(request):
    # Only tests that use the sandbox start it: the firm's memory test must not see a server thread at work.
    if "sandbox" in request.fixturenames:
        request.getfixturevalue("sandbox").reset()


def test_a_sandbox_keeps_a_connection_for_many_requests_and_answers_each_at_once(sandbox):
    """As the vendors' servers do: a client reuses its connection, a body it sent (even one the application does
    not read) does not spill into the next request, and a reused connection is not held up by delayed ACKs."""
    import http.client

    host, port = sandbox.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=5)
    connection.request("POST", "/things", body=b'{"unread": "body"}', headers={"Content-Type": "application/json"})
    first = connection.getresponse()
    first.read()
    opened = connection.sock
    started = time.perf_counter()
    for _ in range(20):
        connection.request("GET", "/things")
        answer = connection.getresponse()
        assert answer.status == 200 and answer.getheader("Connection") != "close"
        assert answer.read().startswith(b'{"things"')
    assert connection.sock is opened  # one connection for all of them
    assert time.perf_counter() - started < 0.6  # 40 ms a request would be Nagle waiting on a delayed ACK
    connection.close()


# -- the firm -------------------------------------------------------------------------------------------------


def test_the_firm_is_deterministic_and_the_seed_matters():
    first, second, other = Firm(seed=42), Firm(seed=42), Firm(seed=7)
    assert first.people() == second.people()
    assert first.projects() == second.projects()
    assert list(first.time_entries(0, 50)) == list(second.time_entries(0, 50))
    assert first.people() != other.people()


def test_the_firm_has_what_every_system_needs():
    firm = Firm()
    people = firm.people()
    assert len(people) == 200
    assert len({p["work_email"] for p in people}) == 200
    assert {"employee_number", "hire_date", "pay_rate", "cost_rate", "bill_rate", "supervisor_email"} <= set(people[0])
    assert any(p["status"] == "Inactive" and p["termination_date"] for p in people)
    assert any(p["cost_rate"] is None for p in people)  # on purpose, for the exception flows
    assert firm.projects()[3]["code"] == "PRJ-104"
    assert len(firm.customers()) == 40
    won = [d for d in firm.deals() if d["stage"] == "closed_won"]
    assert len(won) == 80 and won[0]["project_code"] == "PRJ-101"
    assert {c["payment_terms"] for c in firm.customers()} <= {"Net 15", "Net 30", "Net 45", "Net 60", "Due on receipt"}


def test_the_firm_has_history_in_every_system_and_a_few_deliberate_faults():
    firm = Firm()
    # History: the ERP has 60 of the 80 won projects, all but the latest hires, and invoices from before the
    # firm kept time in the PSA, which therefore never overlap a month the PSA's time bills.
    assert [p["code"] for p in firm.erp_projects()] == [f"PRJ-{101 + i}" for i in range(60)]
    assert len(firm.erp_people()) == 190
    assert firm.erp_invoices() and all(i["date"] < TIME_START.isoformat() for i in firm.erp_invoices())
    # A customer entered twice in the CRM, with exactly one won deal on the second record.
    twins = [c for c in firm.crm_companies() if c["twin_of"]]
    assert len(twins) == 1 and twins[0]["domain"] == firm.customers()[0]["domain"]
    on_twin = [d for d in firm.deals() if firm.crm_company_of(d) == twins[0]["id"]]
    assert len(on_twin) == 1 and on_twin[0]["stage"] == "closed_won"
    # Two follow-on phases only the PSA knows, with time booked on them.
    phases = firm.psa_only_projects()
    assert [p["code"] for p in phases] == ["PRJ-112B", "PRJ-140B"]
    assert not {p["code"] for p in phases} & {p["code"] for p in firm.projects()}
    booked = {e["project_code"] for e in firm.time_entries(0, 3000)}
    assert {"PRJ-112B", "PRJ-140B"} <= booked


def test_time_entries_are_computed_from_their_index_without_memory():
    firm = Firm()
    firm.people()  # the small collections are built once; what matters is the cost per entry
    tracemalloc.start()
    last = None
    for entry in firm.time_entries(90_000, 10_000):  # tracemalloc is slow: 10k entries make the point
        last = entry
    _current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert last["id"] == 100_000
    assert firm.time_entry(99_999) == last
    assert peak < 1_000_000  # a generator: 10k dicts would take several megabytes
    stamps = [e["updated_at"] for e in firm.time_entries(0, 500)]
    assert stamps == sorted(stamps)  # index order is change order, which incremental reads rely on


# -- faults, stats and controls ---------------------------------------------------------------------------------


def test_error_every_fails_every_nth_call_deterministically(sandbox):
    sandbox.set_faults(error_every=3)
    statuses = [requests.get(f"{sandbox.url}/things", timeout=5).status_code for _ in range(6)]
    assert statuses == [200, 200, 500, 200, 200, 500]
    assert sandbox.stats()["errors_injected"] == 2


def test_rate_limit_answers_429_with_retry_after_and_counts_it(sandbox):
    sandbox.set_faults(rate_limit={"calls": 2, "window": 5.0, "retry_after": 1})
    responses = [requests.get(f"{sandbox.url}/things", timeout=5) for _ in range(3)]
    assert [r.status_code for r in responses] == [200, 200, 429]
    assert responses[2].headers["Retry-After"] == "1"
    stats = sandbox.stats()
    assert stats["rate_limited"] == 1
    assert stats["max_calls_in_window"] == 3
    assert stats["by_path"]["/things"] == {"200": 2, "429": 1}


def test_malformed_every_corrupts_every_nth_record_of_a_page(sandbox):
    sandbox.set_faults(malformed_every=3)
    things = requests.get(f"{sandbox.url}/things", timeout=5).json()["things"]
    assert [i for i, t in enumerate(things) if t["day"] == "not-a-date"] == [2, 5, 8]
    assert sandbox.stats()["malformed_sent"] == 3


def test_slow_ms_delays_answers(sandbox):
    sandbox.set_faults(slow_ms=200)
    started = time.monotonic()
    requests.get(f"{sandbox.url}/things", timeout=5)
    assert time.monotonic() - started >= 0.2


def test_unknown_fault_keys_are_refused(sandbox):
    response = requests.post(f"{sandbox.url}/_sandbox/faults", json={"explode": True}, timeout=5)
    assert response.status_code == 400
    assert "unknown fault keys" in response.json()["error"]


def test_faults_can_be_read_back_and_reset_clears_everything(sandbox):
    sandbox.set_faults(error_every=2, slow_ms=5)
    assert requests.get(f"{sandbox.url}/_sandbox/faults", timeout=5).json() == {
        "faults": {"error_every": 2, "slow_ms": 5}
    }
    sandbox.seed(things=50)
    requests.get(f"{sandbox.url}/things", timeout=5)
    sandbox.reset()
    assert sandbox.stats()["calls"] == 0
    assert requests.get(f"{sandbox.url}/_sandbox/faults", timeout=5).json() == {"faults": {}}
    assert requests.get(f"{sandbox.url}/things", timeout=5).json()["volume"] == 3


def test_seed_grows_volume_and_clear_stats_keeps_state(sandbox):
    assert sandbox.seed(things=1000) == {"seeded": {"things": 1000}}
    requests.get(f"{sandbox.url}/things", timeout=5)
    sandbox.clear_stats()
    assert sandbox.stats()["calls"] == 0
    assert requests.get(f"{sandbox.url}/things", timeout=5).json()["volume"] == 1000


def test_control_calls_are_not_counted_as_vendor_calls(sandbox):
    sandbox.stats()
    sandbox.set_faults()
    assert sandbox.stats()["calls"] == 0


def test_a_stopped_sandbox_frees_its_port():
    running = serve_in_thread(SandboxApp())
    url = running.url
    running.stop()
    with pytest.raises(requests.ConnectionError):
        requests.get(url, timeout=2)


# -- registry and the runner ------------------------------------------------------------------------------------


def test_registry_knows_the_sandbox_ports_and_connector_classes():
    offset = int(os.environ.get("SANDBOX_PORT_OFFSET", "0") or 0)
    assert SANDBOX_PORTS["kantata"] == 8104 + offset
    # Every vendor has a port of its own in the 8101-8199 block (moved as a whole by the offset).
    assert set(VENDORS) <= set(SANDBOX_PORTS)
    assert len(set(SANDBOX_PORTS.values())) == len(SANDBOX_PORTS)
    assert all(8101 <= port - offset <= 8199 for port in SANDBOX_PORTS.values())
    assert get_connector_class("kantata").vendor == "kantata"
    with pytest.raises(KeyError, match="No connector for 'nope'"):
        get_connector_class("nope")


def test_runner_serves_sandboxes_and_stops_cleanly_on_sigterm():
    offset = 20000 + os.getpid() % 5000  # away from 8101-8106, which a developer may be running
    process = subprocess.Popen(
        [sys.executable, "-m", "connectors.sandbox", "--only", "kantata", "--port-offset", str(offset)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline()
        assert line.startswith("kantata"), line + process.stderr.read()
        url = line.split()[-1]
        assert url == f"http://127.0.0.1:{SANDBOX_PORTS['kantata'] + offset}"  # SANDBOX_PORT_OFFSET included
        assert requests.get(f"{url}/_sandbox/stats", timeout=5).status_code == 200
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()


def test_a_webhook_to_a_partner_host_on_localhost_reaches_loopback_with_that_host():
    """Browsers resolve northwind.localhost to this machine and Python does not: the kit connects to 127.0.0.1
    and names the partner's host, which routes the portal's request, in the Host header."""
    from connectors.sandbox import deliver_webhook

    class Receiver(SandboxApp):
        vendor = "receiver"

        def routes(self):
            return [Rule("/hooks/<token>", endpoint="on_hook", methods=["POST"])]

        def on_hook(self, request, token):
            self.heard = (request.host, token, request.get_data())
            return json_response({}, status=202)

    receiver = serve_in_thread(Receiver())
    try:
        delivery = {"url": f"http://northwind.localhost:{receiver.port}/hooks/t1", "headers": {}, "status": None}
        deliver_webhook(delivery, b'{"won": true}', in_thread=False)
        assert delivery["status"] == 202
        assert receiver.app.heard == (f"northwind.localhost:{receiver.port}", "t1", b'{"won": true}')
    finally:
        receiver.stop()


def test_sandboxes_sharing_one_firm_seed_the_same_timestamps_as_alone():
    """`python -m connectors.sandbox` builds every sandbox from one Firm: the seeding clock of one (they all start at
    the same epoch) must not run on into the next one's."""
    from connectors.intacct.sandbox import create_app as intacct_app
    from connectors.netsuite.sandbox import create_app as netsuite_app

    alone = intacct_app(Firm()).find("CUSTOMER", "CUSTOMERID", "C5001")
    shared = Firm()
    netsuite_app(shared)
    after_another = intacct_app(shared).find("CUSTOMER", "CUSTOMERID", "C5001")
    assert after_another[0]["WHENMODIFIED"] == alone[0]["WHENMODIFIED"] == "01/02/2024 09:01:00"
