"""The API on the product's real web server (gunicorn, as tests/browser/conftest.py starts it):
Schemathesis from the OpenAPI document, a bounded load test of the throttles, and a partner
onboarding a client by API only with a real Celery worker and vendor sandboxes over HTTP.

Nothing here runs inside a test transaction: the server and the worker are other processes, so the
rows they read are committed here and removed at the end.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.api.conftest import ALL_PARTNER, make_key
from tests.support import NORTHWIND, free_port, start_web, start_worker, vendor_sandboxes, web_server

# A smaller firm than the demo's, so a packaged flow runs in seconds: every system still agrees.
TEST_FIRM = dict(people=12, customers=6, projects=20, time_entries=300, expenses=20)
pytestmark = pytest.mark.worker


@dataclass
class Live:
    base: str
    partner_key: str
    template_id: int
    engine_env: dict


@pytest.fixture(scope="module")
def sandboxes():
    with vendor_sandboxes(("kantata", "netsuite"), **TEST_FIRM) as running:
        yield running


@pytest.fixture(scope="module")
def committed(world, django_db_blocker):
    """A Northwind client to fuzz (Fuzz Co, with a seeded workspace), a partner template saved from its
    flow, and a partner key: all committed. Clients the module creates are dropped afterwards."""
    from django.db import connection

    from integrations.partner_templates.services import template_version_save
    from tenants import services
    from tenants.models import Client
    from tests.integrations.workspace_fixtures import seed_workspace

    northwind = world.partners["northwind"]
    with django_db_blocker.unblock():
        before = set(Client.objects.values_list("pk", flat=True))
        fuzz = services.client_create(partner=northwind, name="Fuzz Co", slug="fuzz", plan=northwind.plans.first())
        connection.set_tenant(fuzz)
        seeded = seed_workspace()
        connection.set_schema_to_public()
        admin = world.user("admin@northwind.localhost")
        version = template_version_save(
            partner=northwind, client=fuzz, flow_id=seeded.flow.pk, actor=admin, name="Approved time to invoices"
        )
        issued = make_key(admin, northwind, scopes=ALL_PARTNER)
    yield issued.secret, version.template_id
    with django_db_blocker.unblock():
        connection.set_schema_to_public()
        issued.key.delete()
        for client in Client.objects.exclude(pk__in=before):  # their deployments first: they hold the versions
            client.delete(force_drop=True)
        version.template.delete()


@pytest.fixture(scope="module")
def receiver():
    """A partner's own system listening for webhooks on loopback."""
    from tests.api.test_webhooks import Receiver

    running = Receiver()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def live(committed, sandboxes, receiver, tmp_path_factory):
    allowed = [f"127.0.0.1:{s.port}" for s in sandboxes.values()] + [f"127.0.0.1:{receiver.server.server_port}"]
    engine_env = {
        "CONNECTOR_ALLOWED_HOSTS": ",".join(allowed),
        "CONNECTOR_RATE_PER_SECOND": "500",
        "SYNC_SLICE_SECONDS": "2",
    }
    secret, template_id = committed
    with web_server(
        tmp_path_factory.mktemp("api-web") / "web.log",
        API_KEY_RATE_PER_MINUTE="100000",
        API_CLIENT_RATE_PER_MINUTE="100000",
        **engine_env,
    ) as port:
        yield Live(base=f"http://127.0.0.1:{port}", partner_key=secret, template_id=template_id, engine_env=engine_env)


def call(live: Live, method: str, path: str, key: str | None = None, **kwargs) -> requests.Response:
    headers = {"Host": NORTHWIND, "Authorization": f"Bearer {key or live.partner_key}", **kwargs.pop("headers", {})}
    return requests.request(method, f"{live.base}/api/v1{path}", headers=headers, timeout=60, **kwargs)


# --- Schemathesis -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def api_schema(live):
    document = requests.get(f"{live.base}/api/v1/openapi.json", headers={"Host": NORTHWIND}, timeout=30).json()
    for operation in (op for methods in document["paths"].values() for op in methods.values()):
        for parameter in operation.get("parameters", []):
            # Examples that name rows which exist, beside what Hypothesis generates: the explicit
            # examples reach Fuzz Co's data, the generated values mostly ids and slugs that do not exist.
            if parameter["name"] == "client":
                parameter["example"] = "fuzz"
            elif parameter["name"].endswith("_id"):
                parameter["example"] = 1
    schema = schemathesis.openapi.from_dict(document)
    schema.config.update(base_url=live.base, headers={"Host": NORTHWIND})  # the host names the partner
    schema.config.generation.update(max_examples=12, deterministic=True)

    @schema.auth()
    class PartnerKey:
        """The key, as Schemathesis's own authentication: its checks also try each operation without it
        and with a made-up one, and expect 401."""

        def get(self, case, context):
            return live.partner_key

        def set(self, case, data, context):
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}

    return schema


schema = schemathesis.pytest.from_fixture("api_schema")
SEEN: dict[str, set[int]] = {}


@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck))
def test_the_api_answers_as_its_openapi_document_says(case):
    """Every operation, with generated parameters and bodies (valid and invalid ones): never a 500, every
    status documented, every body matching its schema, the documented content types (problem+json for
    errors), input the schema refuses refused, no answer without the key or with a made-up one.

    One check is left out, positive_data_acceptance: it expects every request the schema allows to
    succeed, and the API refuses some with 422 for rules no JSON Schema can say (a plan of this partner,
    a person of this workspace, an address no client uses yet, an expiry in the future, an
    Idempotency-Key already used for another request). 422 is RFC 9110's answer for those."""
    response = case.call_and_validate(excluded_checks=[positive_data_acceptance])
    SEEN.setdefault(f"{case.method} {case.path}", set()).add(response.status_code)


def test_the_schemathesis_run_reached_real_answers():
    """The generated calls above did more than bounce: successes and refusals of several kinds."""
    if not SEEN:
        pytest.skip("runs after the Schemathesis tests")
    statuses = set().union(*SEEN.values())
    assert {200, 404, 422} <= statuses, SEEN
    assert any(200 in seen for operation, seen in SEEN.items() if "{client}" in operation), SEEN


# --- A partner onboards a client by API only ---------------------------------------------------------


def test_a_partner_onboards_a_client_end_to_end_by_api_only(
    live, sandboxes, receiver, world, tmp_path, django_db_blocker, settings
):
    from api.webhooks import signature_valid, webhook_subscription_create

    settings.CONNECTOR_ALLOWED_HOSTS = [f"127.0.0.1:{receiver.server.server_port}"]
    with django_db_blocker.unblock():  # the partner's CRM hears when a client's run finishes (any client)
        subscription, secret = webhook_subscription_create(
            partner=world.partners["northwind"],
            url=receiver.url,
            events=["run.finished"],
            actor=world.user("admin@northwind.localhost"),
        )
    northwind_plan = call(live, "GET", "/plans").json()[0]

    client = call(
        live,
        "POST",
        "/clients",
        json={"name": "Oak Advisory", "plan_id": northwind_plan["id"], "admin_email": "it@oak.example"},
        headers={"Idempotency-Key": "crm-oak-1"},
    )
    assert client.status_code == 201, client.text
    slug = client.json()["slug"]

    deployed = call(live, "POST", f"/templates/{live.template_id}/deployments", json={"client": slug})
    assert deployed.status_code == 201, deployed.text

    issued = call(
        live,
        "POST",
        f"/clients/{slug}/keys",
        json={"name": "Oak onboarding", "scopes": ["connections:write", "flows:write", "exceptions:write"]},
    )
    assert issued.status_code == 201, issued.text
    key = issued.json()["key"]

    connections = {}
    for role, vendor in (("psa", "kantata"), ("erp", "netsuite")):
        credentials = dict(importlib.import_module(f"connectors.{vendor}.sandbox").DEMO_CREDENTIALS)
        added = call(
            live,
            "POST",
            f"/clients/{slug}/connections",
            key,
            json={
                "name": vendor.title(),
                "vendor": vendor,
                "base_url": sandboxes[vendor].url,
                "credentials": credentials,
            },
        )
        assert added.status_code == 201, added.text
        tested = call(live, "POST", f"/clients/{slug}/connections/{added.json()['id']}/test", key).json()
        assert tested["ok"] is True, tested
        connections[role] = added.json()["id"]

    installed = call(
        live,
        "POST",
        f"/clients/{slug}/flows",
        key,
        json={"template": deployed.json()["install_key"], "connections": connections},
    )
    assert installed.status_code == 201, installed.text
    flow = next(f for f in installed.json() if "(reference)" not in f["name"])

    worker = start_worker(tmp_path / "worker.log", **live.engine_env)
    try:
        started = call(live, "POST", f"/clients/{slug}/flows/{flow['id']}/run", key)
        assert started.status_code == 202, started.text
        run = started.json()
        deadline = time.time() + 240
        while run["status"] in ("queued", "running") and time.time() < deadline:
            time.sleep(1)
            run = call(live, "GET", f"/clients/{slug}/runs/{run['id']}", key).json()
        assert run["status"] in ("succeeded", "partial"), (run, (tmp_path / "worker.log").read_text()[-3000:])
        deadline = time.time() + 60  # the worker posts the webhook after the run's last slice
        while not finished_posts(receiver, run["id"]) and time.time() < deadline:
            time.sleep(0.5)
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=30)
    assert run["read"] > 0 and run["progress_percent"] == 100

    records = call(live, "GET", f"/clients/{slug}/runs/{run['id']}/records", key, params={"limit": 500}).json()
    counted = {row["outcome"]: row["count"] for row in records["outcomes"]}
    assert sum(counted.values()) == run["read"] and counted["created"] + counted["linked"] > 0
    assert records["items"] and all(item["outcome"] in counted for item in records["items"])

    # The worker posted run.finished to the partner's webhook, signed, with the run's counts.
    finished = finished_posts(receiver, run["id"])
    with django_db_blocker.unblock():
        subscription.delete()
    assert len(finished) == 1, receiver.received
    headers, body = finished[0]
    assert signature_valid(secret, headers, body)
    assert json.loads(body)["client"] == slug and json.loads(body)["data"]["read"] == run["read"]


def finished_posts(receiver, run_id: int) -> list:
    return [
        (headers, body)
        for headers, body in receiver.received
        if json.loads(body)["type"] == "run.finished" and json.loads(body)["data"]["run_id"] == run_id
    ]


# --- Throttling under load -------------------------------------------------------------------------


def test_one_key_at_full_load_cannot_starve_another_clients_key(live, world, django_db_blocker, tmp_path):
    """Eight threads hammer one client's key on a server allowing 40 calls a minute per key, across its
    two gunicorn workers; another client's key is served throughout, promptly."""
    from tenants.models import Client

    limit = 40
    with django_db_blocker.unblock():
        northwind = world.partners["northwind"]
        fuzz = Client.objects.get(partner=northwind, slug="fuzz")
        busy = make_key(world.user("admin@northwind.localhost"), northwind, client=fuzz)
        calm = make_key(world.user("admin@tailspin.localhost"), northwind, client=world.clients["tailspin"])
    port = free_port()
    process = start_web(
        port, tmp_path / "web.log", API_KEY_RATE_PER_MINUTE=str(limit), API_CLIENT_RATE_PER_MINUTE="1000"
    )
    server = Live(base=f"http://127.0.0.1:{port}", partner_key="", template_id=0, engine_env={})
    try:
        if 60 - time.time() % 60 < 20:
            time.sleep(60 - time.time() % 60 + 0.1)  # the whole load inside one throttle window
        stop = threading.Event()
        calm_answers = []

        def calm_caller():
            while not stop.is_set():
                began = time.monotonic()
                status = call(server, "GET", "/clients/tailspin/flows", calm.secret).status_code
                calm_answers.append((status, time.monotonic() - began))
                time.sleep(0.1)

        watcher = threading.Thread(target=calm_caller)
        watcher.start()
        with ThreadPoolExecutor(max_workers=8) as pool:
            answers = list(pool.map(lambda _: call(server, "GET", "/clients/fuzz/flows", busy.secret), range(240)))
        stop.set()
        watcher.join(timeout=30)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
        with django_db_blocker.unblock():
            busy.key.delete()
            calm.key.delete()
    served = [a for a in answers if a.status_code == 200]
    refused = [a for a in answers if a.status_code == 429]
    assert len(served) == limit and len(refused) == len(answers) - limit  # exactly the limit, across processes
    assert all(1 <= int(a.headers["Retry-After"]) <= 60 for a in refused)
    assert len(calm_answers) >= 5 and {status for status, _ in calm_answers} == {200}
    slowest = sorted(seconds for _, seconds in calm_answers)[int(len(calm_answers) * 0.95) - 1]
    assert slowest < 2.0, calm_answers
