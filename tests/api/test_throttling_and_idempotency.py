"""Throttling per key and per client (Redis counters), Retry-After on 429, and idempotent POSTs."""

import pytest
from django.db import connection
from django_tenants.utils import tenant_context

from tests.api.conftest import Api, make_key
from tests.integrations.workspace_fixtures import seed_workspace

pytestmark = pytest.mark.django_db


def test_a_key_past_its_rate_gets_429_with_retry_after_and_other_clients_keys_are_served(world, settings):
    settings.API_KEY_RATE_PER_MINUTE = 10
    settings.API_CLIENT_RATE_PER_MINUTE = 1000
    northwind = world.partners["northwind"]
    busy = Api(make_key(world.user("admin@contoso.localhost"), northwind, client=world.clients["contoso"]).secret)
    other = Api(make_key(world.user("admin@tailspin.localhost"), northwind, client=world.clients["tailspin"]).secret)
    answers = [busy.get("/clients/contoso/flows").status_code for _ in range(15)]
    assert answers == [200] * 10 + [429] * 5
    refused = busy.get("/clients/contoso/flows")
    assert refused["Content-Type"] == "application/problem+json"
    assert 1 <= int(refused["Retry-After"]) <= 60 and "with this key" in refused.json()["detail"]
    assert all(other.get("/clients/tailspin/flows").status_code == 200 for _ in range(10))


def test_a_clients_rate_is_shared_by_every_key_that_reaches_it_and_no_other_client_pays_for_it(world, settings):
    settings.API_KEY_RATE_PER_MINUTE = 1000
    settings.API_CLIENT_RATE_PER_MINUTE = 8
    northwind = world.partners["northwind"]
    partner = Api(make_key(world.user("admin@northwind.localhost"), northwind).secret)
    contoso = Api(make_key(world.user("admin@contoso.localhost"), northwind, client=world.clients["contoso"]).secret)
    tailspin = Api(make_key(world.user("admin@tailspin.localhost"), northwind, client=world.clients["tailspin"]).secret)
    assert [partner.get("/clients/contoso/flows").status_code for _ in range(8)] == [200] * 8
    limited = contoso.get("/clients/contoso/flows")
    assert limited.status_code == 429 and "for this client" in limited.json()["detail"]
    # The partner key that used up Contoso's minute still reaches Tailspin, and so does Tailspin's own key.
    assert partner.get("/clients/tailspin/flows").status_code == 200
    assert tailspin.get("/clients/tailspin/flows").status_code == 200
    assert partner.get("/plans").status_code == 200  # partner-wide calls count only against the key


def test_a_repeated_idempotency_key_answers_the_first_response(world, contoso_key):
    from integrations.models import SyncExceptionComment

    contoso = world.clients["contoso"]
    connection.set_tenant(contoso)
    exception = seed_workspace().cost_rate_exception
    connection.set_schema_to_public()
    api = Api(contoso_key.secret)
    path = f"/clients/contoso/exceptions/{exception.pk}/comments"
    first = api.post(path, {"body": "Asked HR"}, **{"Idempotency-Key": "comment-1"})
    again = api.post(path, {"body": "Asked HR"}, **{"Idempotency-Key": "comment-1"})
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"
    with tenant_context(contoso):
        assert SyncExceptionComment.objects.filter(exception=exception, body="Asked HR").count() == 1
    different = api.post(path, {"body": "Something else"}, **{"Idempotency-Key": "comment-1"})
    assert different.status_code == 422 and "different request" in different.json()["detail"]
    # Keys are per API key: another program's "comment-1" is its own.
    other = Api(make_key(world.user("admin@contoso.localhost"), world.partners["northwind"], client=contoso).secret)
    assert other.post(path, {"body": "Asked HR"}, **{"Idempotency-Key": "comment-1"}).status_code == 201
    assert api.post(path, {"body": "x"}, **{"Idempotency-Key": "é"}).status_code == 400


def test_a_retried_client_create_makes_one_workspace(world, northwind_key):
    from tenants.models import Client

    api = Api(northwind_key.secret)
    plan = world.partners["northwind"].plans.first()
    body = {"name": "Retry Co", "plan_id": plan.pk, "admin_email": "ops@retry.example"}
    first = api.post("/clients", body, **{"Idempotency-Key": "crm-4711"})
    second = api.post("/clients", body, **{"Idempotency-Key": "crm-4711"})
    assert first.status_code == second.status_code == 201 and second["Location"] == first["Location"]
    assert Client.objects.filter(partner=world.partners["northwind"], name="Retry Co").count() == 1
    without = api.post("/clients", body)
    assert without.status_code == 422  # the address is taken now: a retry without a key is refused, not doubled
