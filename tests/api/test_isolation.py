"""Tenant isolation through the API: every route of the OpenAPI document, with every kind of key, on
every host, against every client and with other tenants' ids. Nothing of another tenant may come back,
and nothing of another tenant may change.

Each client's rows carry a marker (LEAK-<slug>); a response that reaches a key that may not see that
client must never contain it. Ids are per schema, so another client's id can name one of the caller's
own rows: that is its own data, and the markers tell the two apart.
"""

import itertools
import re

import pytest
from django.db import connection
from django_tenants.utils import tenant_context

from api.urls import api as portal_api
from tests.api.conftest import Api, make_key
from tests.integrations.workspace_fixtures import seed_workspace
from tests.support import NORTHWIND, SUMMIT

pytestmark = pytest.mark.django_db

HOSTS = {"northwind": NORTHWIND, "summit": SUMMIT}
CLIENTS = {"contoso": "northwind", "tailspin": "northwind", "fabrikam": "summit"}
ID_PARAMS = ("connection_id", "flow_id", "run_id", "exception_id", "plan_id", "template_id")


def body_for(method: str, path: str, slug: str) -> dict | None:
    """A valid body for each operation that takes one, so a refusal is the access check's, not validation's."""
    bodies = {
        ("post", "/api/v1/clients"): {"name": "Leak Probe", "plan_id": 1, "admin_email": "probe@leak.example"},
        ("patch", "/api/v1/clients/{client}"): {"plan_id": 1},
        ("post", "/api/v1/clients/{client}/keys"): {"name": "Probe", "scopes": ["exceptions:read"]},
        ("post", "/api/v1/templates/{template_id}/deployments"): {"client": slug},
        ("post", "/api/v1/clients/{client}/connections"): {
            "name": "Probe",
            "vendor": "kantata",
            "base_url": "https://kantata.example",
            "credentials": {"access_token": "probe"},
        },
        ("post", "/api/v1/clients/{client}/flows"): {
            "template": "approved-time-to-invoice",
            "connections": {"psa": 1, "erp": 2},
        },
        ("patch", "/api/v1/clients/{client}/exceptions/{exception_id}"): {"assignee_id": None},
        ("post", "/api/v1/clients/{client}/exceptions/{exception_id}/ignore"): {"reason": "probe"},
        ("post", "/api/v1/clients/{client}/exceptions/{exception_id}/comments"): {"body": "probe"},
    }
    return bodies.get((method, path), {} if method in ("post", "patch") else None)


@pytest.fixture
def tenants(world, settings):
    """Every client seeded with marked rows, a partner template per partner, and one key of each kind."""
    settings.API_KEY_RATE_PER_MINUTE = settings.API_CLIENT_RATE_PER_MINUTE = 1_000_000
    from integrations.models import Connection, Flow, SyncException
    from integrations.partner_templates.services import template_version_save

    ids = {}
    for slug, partner in CLIENTS.items():
        client = world.clients[slug]
        connection.set_tenant(client)
        seeded = seed_workspace(notes=f"LEAK-{slug}")
        Connection.objects.update(name=f"LEAK-{slug} connection", base_url=f"https://leak-{slug}.example")
        Flow.objects.update(name=f"LEAK-{slug} flow")
        for exception in SyncException.objects.all():
            SyncException.objects.filter(pk=exception.pk).update(message=f"LEAK-{slug} {exception.message}"[:500])
        connection.set_schema_to_public()
        ids[slug] = {
            "connection_id": [seeded.kantata.pk, seeded.netsuite.pk],
            "flow_id": [seeded.flow.pk],
            "run_id": [seeded.run.pk],
            "exception_id": [e.pk for e in seeded.exceptions[:2]],
        }
        if slug in ("contoso", "fabrikam"):
            version = template_version_save(
                partner=world.partners[partner],
                client=client,
                flow_id=seeded.flow.pk,
                actor=world.user(f"admin@{partner}.localhost"),
                name=f"LEAK-{slug} template",
            )
            ids[f"{partner}-template"] = version.template_id
    for partner in ("northwind", "summit"):
        for plan in world.partners[partner].plans.all():
            plan.name = f"LEAK-{partner} {plan.name}"
            plan.save(update_fields=["name"])
    keys = {
        "northwind partner": (
            make_key(world.user("admin@northwind.localhost"), world.partners["northwind"]),
            "northwind",
            {"contoso", "tailspin"},
        ),
        "summit partner": (
            make_key(world.user("admin@summit.localhost"), world.partners["summit"]),
            "summit",
            {"fabrikam"},
        ),
    }
    for slug, partner in CLIENTS.items():
        issued = make_key(world.user(f"admin@{slug}.localhost"), world.partners[partner], client=world.clients[slug])
        keys[f"{slug} client"] = (issued, partner, {slug})
    return ids, keys


def operations():
    document = portal_api.get_openapi_schema(path_prefix="/api/v1/")
    for path, methods in document["paths"].items():
        for method in methods:
            yield method, path


def test_the_walk_covers_every_operation_of_the_document():
    walked = list(operations())
    assert len(walked) >= 30
    params = {name for _, path in walked for name in re.findall(r"{(\w+)}", path)}
    assert params <= {"client", *ID_PARAMS}, params  # a new kind of id must be given foreign values below


def markers_of(slugs_and_partners) -> list[str]:
    return [f"LEAK-{name}" for name in slugs_and_partners]


def test_no_key_reaches_another_tenant_through_any_route(world, tenants):
    from integrations.models import AuditEvent

    ids, keys = tenants
    before = {}
    for slug in CLIENTS:
        with tenant_context(world.clients[slug]):
            before[slug] = AuditEvent.objects.exclude(action__startswith="api.").count()
    statuses = {}
    leaks = []
    calls = 0
    for (kind, (issued, home, reachable)), (method, template) in itertools.product(keys.items(), operations()):
        partner_key = issued.key.client_id is None
        for host_partner, host in HOSTS.items():
            slugs = list(CLIENTS) if "{client}" in template or method == "post" and "deployments" in template else [""]
            for slug in slugs:
                allowed = host_partner == home and (slug in reachable if slug else partner_key)
                # A key that may reach a client sees that client and its own partner (the plan's name).
                own = {slug, home} if allowed and slug else set()
                if allowed and not slug:
                    own = {home} | {s for s, p in CLIENTS.items() if p == home}
                foreign_markers = markers_of([s for s in CLIENTS if s not in own] + [p for p in HOSTS if p not in own])
                for values in _id_values(template, ids, slug, home, allowed):
                    if allowed and method != "get":
                        continue  # a key acting where it may is the other tests' business
                    path = template.replace("{client}", slug)
                    for name, value in values.items():
                        path = path.replace("{" + name + "}", str(value))
                    response = _call(Api(issued.secret, host=host), method, path, body_for(method, template, slug))
                    calls += 1
                    statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                    text = response.content.decode()
                    if not allowed and response.status_code not in (401, 403, 404):
                        leaks.append((kind, host_partner, method, path, response.status_code, text[:200]))
                    if any(marker in text for marker in foreign_markers):
                        leaks.append((kind, host_partner, method, path, response.status_code, "foreign marker"))
    assert calls > 1000 and statuses.get(200, 0) > 50, statuses  # the walk reached real data too
    assert not leaks, "\n".join(map(str, leaks[:40]))
    # Refused calls changed nothing in anyone's workspace.
    for slug in CLIENTS:
        with tenant_context(world.clients[slug]):
            assert AuditEvent.objects.exclude(action__startswith="api.").count() == before[slug], slug
            api_rows = AuditEvent.objects.filter(action__startswith="api.")
            allowed_keys = {k.key.pk for k, _, reachable in keys.values() if slug in reachable}
            assert {row.after["key_id"] for row in api_rows} <= allowed_keys, slug


def _id_values(template: str, ids: dict, slug: str, home: str, allowed: bool):
    """Every id parameter of `template` filled with other tenants' ids (and, where the key may act, a
    row that exists nowhere); a key that may not reach the client also tries the client's own ids."""
    names = [n for n in re.findall(r"{(\w+)}", template) if n != "client"]
    if not names:
        yield {}
        return
    choices = []
    for name in names:
        if name == "plan_id":
            values = list(world_plan_ids.values())
        elif name == "template_id":
            values = [ids["northwind-template"], ids["summit-template"]]
        else:
            values = sorted({v for s, per in ids.items() if isinstance(per, dict) and s != slug for v in per[name]})
            if not allowed and slug:
                values = sorted(set(values) | set(ids[slug][name]))
            values.append(10**9)
        choices.append(values[:3])
    for combo in itertools.product(*choices):
        yield dict(zip(names, combo, strict=True))


world_plan_ids: dict = {}


@pytest.fixture(autouse=True)
def _plan_ids(world):
    world_plan_ids.clear()
    for partner in ("northwind", "summit"):
        world_plan_ids[partner] = world.partners[partner].plans.first().pk


def _call(api: Api, method: str, path: str, body):
    route = path.removeprefix("/api/v1")
    if method == "get":
        return api.get(route)
    if method == "patch":
        return api.patch(route, body, **{"If-Match": "*"})
    return api.post(route, body)
