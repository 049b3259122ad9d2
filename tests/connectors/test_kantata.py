"""The Kantata OX connector against its sandbox, over real HTTP on loopback."""

from __future__ import annotations

import logging
import time

import pytest
import requests

from connectors.base import AuthenticationFailed, OutboundRecord
from connectors.http import HttpPolicy, InMemoryTokenBucket
from connectors.kantata.client import KantataConnector
from connectors.kantata.sandbox import DEMO_CREDENTIALS, MEMBERSHIP_BASE, WORKSPACE_BASE, create_app
from connectors.registry import get_connector_class
from connectors.sandbox.firm import Firm
from tests.connectors.kit import sandbox_connector, sandbox_fixture

TOKEN = DEMO_CREDENTIALS["access_token"]
WORKSPACE = str(WORKSPACE_BASE + 4)  # the firm's PRJ-104


sandbox = sandbox_fixture(create_app)


@pytest.fixture(autouse=True)
def clean(sandbox):
    sandbox.reset()


def connector_for(sandbox, token: str = TOKEN, service_name: str = "", **policy) -> KantataConnector:
    credentials = {"access_token": token, "approved_only": "no", "service_name": service_name}
    return sandbox_connector(KantataConnector, sandbox, credentials, backoff=(0.01, 0.2), **policy)


def count_in_sandbox(sandbox, collection: str) -> int:
    response = requests.get(
        f"{sandbox.url}/api/v1/{collection}",
        headers={"Authorization": f"Bearer {TOKEN}"},
        params={"per_page": 1},
        timeout=10,
    )
    return response.json()["count"]


def entry(external_id: str, **fields) -> OutboundRecord:
    values = {"workspace_id": WORKSPACE, "date_performed": "2026-11-02", "time_in_minutes": 90, "notes": "Workshop"}
    values.update(fields)
    return OutboundRecord(external_id=external_id, fields=values)


def read_all(connector, object_name: str, **kwargs):
    records, rejects, pages = [], [], []
    for page in connector.read(object_name, **kwargs):
        pages.append(page)
        records += page.records
        rejects += page.rejects
    return records, rejects, pages


# -- connection -------------------------------------------------------------------------------------------------


def test_registry_offers_the_kantata_connector():
    assert get_connector_class("kantata") is KantataConnector
    assert KantataConnector.objects["time_entries"].batch_size == 100
    assert KantataConnector.objects["time_entries"].page_size == 200


def test_connection_names_the_api_user(sandbox):
    result = connector_for(sandbox).test_connection()
    assert result.ok
    assert result.message == "Connected to Kantata OX as Daria Abbott (daria.abbott@haldenrowe.example)."


def test_a_wrong_token_fails_with_a_clear_message(sandbox):
    connector = connector_for(sandbox, token="wrong-token-123")
    result = connector.test_connection()
    assert not result.ok
    assert result.message == "Kantata OX refused the access token (Invalid OAuth 2 Request)."
    with pytest.raises(AuthenticationFailed):
        next(connector.read("time_entries"))


# -- reads ------------------------------------------------------------------------------------------------------


def test_reads_follow_kantata_pages_and_continue_from_the_cursor(sandbox):
    sandbox.seed(time_entries=450)
    connector = connector_for(sandbox)
    records, rejects, pages = read_all(connector, "time_entries")
    assert len(records) == 450 and not rejects
    assert len({r.external_id for r in records}) == 450
    assert [r.updated_at for r in records] == sorted(r.updated_at for r in records)
    assert len(pages) == 3 and pages[-1].has_more is False and pages[0].has_more is True
    assert {p.total for p in pages} == {450}  # Kantata's meta.count, for progress bars
    assert sandbox.stats()["by_path"]["/api/v1/time_entries"] == {"200": 3}
    first = records[0]
    assert first.data["time_in_minutes"] > 0 and first.data["workspace_id"].startswith("30000")

    cursor = pages[-1].cursor
    written = connector.write("time_entries", [entry(f"new-{i}") for i in range(3)])
    assert [w.outcome for w in written] == ["created"] * 3
    newer, _, _ = read_all(connector, "time_entries", since=cursor)
    new_ids = {w.target_id for w in written}
    assert new_ids <= {r.external_id for r in newer}
    # Only the new entries, plus the watermark's own second read again (the engine's idempotency absorbs it).
    assert {r.external_id for r in newer} - new_ids <= {records[-1].external_id}


def test_small_pages_still_return_every_record_once(sandbox):
    sandbox.seed(time_entries=45)
    records, _, pages = read_all(connector_for(sandbox), "time_entries", page_size=20)
    assert len(records) == 45 and len({r.external_id for r in records}) == 45
    assert len(pages) == 3


def test_approved_only_reads_time_on_approved_timesheets(sandbox):
    sandbox.seed(time_entries=300)
    connector = KantataConnector(
        base_url=sandbox.url,
        credentials={"access_token": TOKEN},  # approved_only defaults to yes
        policy=HttpPolicy.for_sandbox(sandbox.url, budget=InMemoryTokenBucket()),
    )
    records, _, _ = read_all(connector, "time_entries")
    assert records and all(r.data["approved"] for r in records)
    assert len(records) < 300


def test_projects_resources_cost_rates_and_expenses_are_readable(sandbox):
    connector = connector_for(sandbox)
    projects, _, _ = read_all(connector, "workspaces")
    assert len(projects) == len(Firm().psa_projects())  # the won deals' projects and the PSA-only phases
    assert any(p.data["title"].startswith("PRJ-104 ") for p in projects)
    assert any(p.data["title"].startswith("PRJ-112B ") for p in projects)
    resources, _, _ = read_all(connector, "users")
    assert len(resources) == 200
    partner = next(r for r in resources if r.data["email_address"] == "daria.abbott@haldenrowe.example")
    assert partner.data["cost_rate_in_cents"] == 19000 and partner.data["account_membership_id"]
    rates, _, _ = read_all(connector, "cost_rates")
    assert len(rates) == 197  # three people have no cost rate, on purpose
    expenses, _, _ = read_all(connector, "expenses")
    assert len(expenses) == 600 and "amount_in_cents" in expenses[0].data


def test_5xx_is_retried_and_all_data_arrives(sandbox):
    sandbox.seed(time_entries=500)
    sandbox.set_faults(error_every=2)
    records, _, _ = read_all(connector_for(sandbox), "time_entries")
    assert len(records) == 500
    assert sandbox.stats()["by_path"]["/api/v1/time_entries"]["503"] >= 2


def test_malformed_records_are_reported_and_the_rest_arrives(sandbox):
    sandbox.seed(time_entries=400)
    sandbox.set_faults(malformed_every=50)
    records, rejects, _ = read_all(connector_for(sandbox), "time_entries")
    assert len(rejects) == sandbox.stats()["malformed_sent"] > 0
    assert len(records) + len(rejects) >= 400
    reasons = {r.reason for r in rejects}
    assert any("is not a date" in reason for reason in reasons)
    assert any("is not a whole number" in reason for reason in reasons)
    assert all(r.external_id for r in rejects)


def test_retry_after_is_honoured_and_the_budget_is_never_exceeded(sandbox):
    sandbox.seed(time_entries=600)
    # The connection's budget (burst 1 + 4/s) fits the vendor's limit of 5 calls a second.
    sandbox.set_faults(rate_limit={"calls": 5, "window": 1.0})
    records, _, _ = read_all(connector_for(sandbox, rate_per_second=4.0, burst=1), "time_entries", page_size=100)
    stats = sandbox.stats()
    assert len(records) == 600
    assert stats["rate_limited"] == 0
    assert stats["max_calls_in_window"] <= 5


def test_429_without_a_budget_is_waited_out(sandbox):
    sandbox.seed(time_entries=600)
    sandbox.set_faults(rate_limit={"calls": 3, "window": 1.0, "retry_after": 1})
    connector = connector_for(sandbox)
    started = time.monotonic()
    records, _, _ = read_all(connector, "time_entries", page_size=100)
    assert len(records) == 600
    assert sandbox.stats()["rate_limited"] >= 1
    assert connector.policy.metrics.stats("kantata", "default").rate_limited == sandbox.stats()["rate_limited"]
    assert time.monotonic() - started >= 1.0  # it really waited for the Retry-After


# -- writes -----------------------------------------------------------------------------------------------------


def test_a_full_batch_with_invalid_entries_creates_the_valid_ones(sandbox):
    batch = [entry(f"te-{i}", time_in_minutes=30 + i) for i in range(100)]
    batch[10] = entry("te-10", workspace_id="999")
    batch[50] = entry("te-50", time_in_minutes=0)
    batch[90] = entry("te-90", date_performed="2026-13-45")
    before = count_in_sandbox(sandbox, "time_entries")
    results = connector_for(sandbox).write("time_entries", batch)
    assert [r.external_id for r in results] == [r.external_id for r in batch]
    assert sum(r.outcome == "created" for r in results) == 97
    failed = {r.external_id: r for r in results if r.outcome == "failed"}
    assert failed["te-10"].error_code == "validation.workspace_id"
    assert failed["te-50"].error_code == "validation.time_in_minutes"
    assert failed["te-90"].error_code == "validation.date_performed"
    assert "Time in minutes must be between 1 and 1440" in failed["te-50"].error_message
    assert count_in_sandbox(sandbox, "time_entries") == before + 97


def test_writing_the_same_batch_twice_creates_nothing_new(sandbox):
    connector = connector_for(sandbox)
    batch = [entry(f"te-{i}", time_in_minutes=30 + i) for i in range(100)]
    first = connector.write("time_entries", batch)
    assert {r.outcome for r in first} == {"created"}
    count = count_in_sandbox(sandbox, "time_entries")
    second = connector.write("time_entries", batch)
    assert {r.outcome for r in second} == {"unchanged"}
    assert [r.target_id for r in second] == [r.target_id for r in first]
    assert count_in_sandbox(sandbox, "time_entries") == count
    batch[0] = entry("te-0", time_in_minutes=45, notes="Corrected")
    third = connector.write("time_entries", batch)
    assert third[0].outcome == "updated" and third[0].target_id == first[0].target_id
    assert {r.outcome for r in third[1:]} == {"unchanged"}
    assert count_in_sandbox(sandbox, "time_entries") == count


def references_in_sandbox(sandbox) -> set[str]:
    response = requests.get(
        f"{sandbox.url}/api/v1/time_entries",
        headers={"Authorization": f"Bearer {TOKEN}"},
        params={"include": "external_references", "per_page": 200},
        timeout=10,
    )
    return {ref["service_name"] for ref in (response.json().get("external_references") or {}).values()}


def test_records_carry_the_name_the_connection_gives_and_never_the_platforms_by_default(sandbox):
    named = connector_for(sandbox, service_name="Northwind Connect")
    assert {r.outcome for r in named.write("time_entries", [entry("named-1")])} == {"created"}
    unnamed = connector_for(sandbox)
    assert {r.outcome for r in unnamed.write("time_entries", [entry("unnamed-1")])} == {"created"}
    assert references_in_sandbox(sandbox) == {"Northwind Connect", "Integration"}
    offered = {field.name: field.initial for field in KantataConnector.form_fields()}
    assert offered["service_name"] == "{product_name}"  # the form shows the partner's product name


def test_an_unnamed_connection_still_finds_what_it_wrote_under_the_former_default(sandbox):
    legacy = connector_for(sandbox, service_name="SysGenPro")
    (written,) = legacy.write("time_entries", [entry("old-1", time_in_minutes=30)])
    count = count_in_sandbox(sandbox, "time_entries")
    (again,) = connector_for(sandbox).write("time_entries", [entry("old-1", time_in_minutes=45)])
    assert again.outcome == "updated" and again.target_id == written.target_id
    assert count_in_sandbox(sandbox, "time_entries") == count


def test_expenses_upsert_by_external_reference(sandbox):
    connector = connector_for(sandbox)
    batch = [
        OutboundRecord(
            f"ex-{i}",
            {"workspace_id": WORKSPACE, "date": "2026-11-03", "category": "Travel", "amount_in_cents": 12000 + i},
        )
        for i in range(5)
    ]
    assert {r.outcome for r in connector.write("expenses", batch)} == {"created"}
    assert {r.outcome for r in connector.write("expenses", batch)} == {"unchanged"}


def test_projects_upsert_one_call_each(sandbox):
    connector = connector_for(sandbox)
    project = OutboundRecord(
        "deal-9001",
        {"title": "PRJ-901 Acme Data Platform", "currency": "USD", "price": "120000.00", "start_date": "2026-12-01"},
    )
    created = connector.write("workspaces", [project])[0]
    assert created.outcome == "created"
    assert connector.write("workspaces", [project])[0].outcome == "unchanged"
    renamed = OutboundRecord("deal-9001", dict(project.fields, title="PRJ-901 Acme Data Platform Phase 1"))
    updated = connector.write("workspaces", [renamed])[0]
    assert (updated.outcome, updated.target_id) == ("updated", created.target_id)
    untitled = connector.write("workspaces", [OutboundRecord("deal-9002", {"title": ""})])[0]
    assert untitled.outcome == "failed" and untitled.error_code == "validation.title"
    assert untitled.error_message == "Please give your project a title (title)"


def test_resources_match_by_email(sandbox):
    connector = connector_for(sandbox)
    newcomer = OutboundRecord(
        "emp-7001",
        {"full_name": "Ada Quist", "email_address": "ada.quist@haldenrowe.example", "cost_rate_in_cents": 8000},
    )
    existing = OutboundRecord(
        "emp-1001",
        {"full_name": "Daria Abbott", "email_address": "Daria.Abbott@haldenrowe.example", "cost_rate_in_cents": 19000},
    )
    raise_rate = OutboundRecord(
        "emp-1001",
        {"full_name": "Daria Abbott", "email_address": "daria.abbott@haldenrowe.example", "cost_rate_in_cents": 20000},
    )
    results = connector.write("users", [newcomer, existing])
    assert [r.outcome for r in results] == ["created", "unchanged"]
    assert connector.write("users", [newcomer])[0].outcome == "unchanged"
    assert connector.write("users", [raise_rate])[0].outcome == "updated"
    bad = connector.write("users", [OutboundRecord("emp-7002", {"full_name": "No Mail", "email_address": "nomail"})])[0]
    assert bad.outcome == "failed" and bad.error_code == "validation.email_address"


def test_cost_rates_use_kantatas_own_upsert(sandbox):
    connector = connector_for(sandbox)
    membership = str(MEMBERSHIP_BASE + 1)
    rates = [
        OutboundRecord(
            "rate-1-USD", {"account_membership_id": membership, "currency": "USD", "amount_in_subunits": 19000}
        ),
        OutboundRecord(
            "rate-1-EUR", {"account_membership_id": membership, "currency": "EUR", "amount_in_subunits": 17500}
        ),
        OutboundRecord("rate-x", {"account_membership_id": "1", "currency": "USD", "amount_in_subunits": 100}),
    ]
    results = connector.write("cost_rates", rates)
    assert [r.outcome for r in results] == ["unchanged", "created", "failed"]
    assert results[2].error_code == "validation.account_membership_id"
    again = connector.write("cost_rates", rates[:2])
    assert [r.outcome for r in again] == ["unchanged", "unchanged"]


# -- secrets and volume -----------------------------------------------------------------------------------------


def test_the_token_never_reaches_logs_or_errors(sandbox, caplog):
    caplog.set_level(logging.DEBUG)
    bad = connector_for(sandbox, token="wrong-token-ABCDEF123456")
    result = bad.test_connection()
    assert "wrong-token-ABCDEF123456" not in result.message
    sandbox.set_faults(error_every=1)
    good = connector_for(sandbox, max_retries=1)
    with pytest.raises(Exception) as caught:
        next(good.read("time_entries"))
    assert TOKEN not in str(caught.value)
    assert TOKEN not in caplog.text
    assert "wrong-token-ABCDEF123456" not in caplog.text


def test_the_sandbox_serves_100k_entries_lazily_and_fast(sandbox):
    sandbox.seed(time_entries=100_000)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    started = time.monotonic()
    response = requests.get(
        f"{sandbox.url}/api/v1/time_entries",
        headers=headers,
        params={"per_page": 200, "page": 500, "order": "updated_at:asc"},
        timeout=10,
    )
    elapsed = time.monotonic() - started
    body = response.json()
    assert body["meta"] == {"count": 100_000, "page_count": 500, "page_number": 500, "page_size": 200}
    assert len(body["results"]) == 200 and body["results"][-1]["id"] == "100100000"
    assert elapsed < 0.5
    # The seeded entries are not stored: only written records are.
    table = sandbox.app.time_entry_table
    assert not table.created and not table.changed
