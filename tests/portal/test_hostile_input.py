"""Every form and webhook of the product, posted with hostile values, answers without a server error.

The URL maps are walked (platform host, partner host with its console and a client workspace, the
account pages): every route gets each hostile payload in every field name any of the product's forms
uses, plus hostile query strings, and every vendor's webhook gets hostile signature and timestamp
headers. Path ids point at real rows, so the views' forms and services really run; each request runs
in a savepoint that is rolled back, so every one meets the same data.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection, transaction
from django.urls import URLPattern, URLResolver, get_resolver
from django.urls.resolvers import RoutePattern

from tests.support import NORTHWIND, PLATFORM, browser_for

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(900)]

HOSTILE_VALUES = [
    "9" * 400,  # a number no column, float or Decimal context holds
    "-" + "9" * 40,
    "1e309",
    "NaN",
    "١٢٣٤٥",  # Arabic-Indic digits: str.isdigit() says yes, int() too, the database may not
    "²³",  # superscript digits: isdigit() yes, int() no
    "x" * 10_000,
    "\x00nul",
    "<script>alert(1)</script>",
    "🙂" * 200,
    "null",
    "[]",
    '{"a": ',
    "",
    " ",
    "0",
    "-1",
    "2026-02-31",
]
HOSTILE_PATH_INTS = ["0", "9" * 30]
WEBHOOK_HEADERS = [
    {"HTTP_X_HUBSPOT_SIGNATURE_V3": "é" * 50, "HTTP_X_HUBSPOT_REQUEST_TIMESTAMP": "9" * 400},
    {"HTTP_X_HUBSPOT_SIGNATURE_V3": "bm9wZQ==", "HTTP_X_HUBSPOT_REQUEST_TIMESTAMP": "²"},
    {"HTTP_X_HUBSPOT_SIGNATURE_V3": "bm9wZQ==", "HTTP_X_HUBSPOT_REQUEST_TIMESTAMP": "1" * 5000},
    {"HTTP_X_SALESFORCE_SIGNATURE": "é" * 50},
    {"HTTP_X_SALESFORCE_SIGNATURE": "x" * 10_000},
    {"HTTP_X_HUB_SIGNATURE_256": "sha256=é", "HTTP_X_SIGNATURE": "é", "HTTP_AUTHORIZATION": "Bearer é"},
]
WEBHOOK_BODIES = [b"", b"[" * 5000, b'{"payload": {"CreatedDate": "9999999999999"}}', "é".encode() * 5000, b"\x00\xff"]


class FormFields(HTMLParser):
    """The names of every input, select and textarea on a page."""

    def __init__(self):
        super().__init__()
        self.names: set[str] = set()

    def handle_starttag(self, tag, attrs):
        if tag in ("input", "select", "textarea", "button"):
            name = dict(attrs).get("name")
            if name and name != "csrfmiddlewaretoken":
                self.names.add(name)


def leaf_routes(urlconf: str) -> list[str]:
    """Every path() route of a URL map, with its converters left in, e.g. "c/<slug:client_slug>/flows/<int:pk>/"."""
    routes = []

    def walk(patterns, prefix):
        for entry in patterns:
            if not isinstance(entry.pattern, RoutePattern):
                continue  # allauth's few regex routes are listed by hand below
            if isinstance(entry, URLResolver):
                walk(entry.url_patterns, prefix + str(entry.pattern))
            elif isinstance(entry, URLPattern):
                routes.append(prefix + str(entry.pattern))

    walk(get_resolver(urlconf).url_patterns, "")
    return routes


@pytest.fixture
def ids(world):
    from connectors.registry import CONNECTORS
    from integrations.models import Connection, Flow, Mapping, MappingRule, SyncException, SyncRun, ValueMap
    from integrations.partner_templates.services import template_deploy, template_version_save
    from integrations.services.flows import template_install
    from portal.crypto import credentials_encrypt
    from tenants import services
    from tenants.models import IntegrationTemplate, Membership, Plan, TemplateDeployment
    from tests.integrations.workspace_fixtures import UNREACHABLE, demo_credentials, seed_workspace

    contoso, northwind = world.clients["contoso"], world.partners["northwind"]
    connection.set_tenant(contoso)
    seeded = seed_workspace()
    # A delivery-health flow (before the fuzz flows below fill the plan): its CRM fields page takes no other flow.
    crm = Connection.objects.create(
        name="Fuzz CRM",
        vendor="hubspot",
        base_url=UNREACHABLE,
        encrypted_credentials=credentials_encrypt(demo_credentials("hubspot")),
    )
    health = template_install(key="account-health-to-crm", connections={"crm": crm})
    hooks = []
    for vendor in CONNECTORS:
        # Straight in, past the plan's connection limit: one webhook flow per vendor, whatever the plan allows.
        source = Connection.objects.create(
            name=f"Fuzz {vendor}",
            vendor=vendor,
            base_url=UNREACHABLE,
            encrypted_credentials=credentials_encrypt(demo_credentials(vendor)),
        )
        flow = Flow.objects.create(
            name=f"Fuzz {vendor}",
            source_connection=source,
            source_object="x",
            entity="customer",
            inbound_mapping=Mapping.objects.create(name=f"Fuzz {vendor}"),
            trigger=Flow.Trigger.WEBHOOK,
        )
        hooks.append(f"/hooks/contoso/{flow.webhook_token}")
    rows = {
        "flows/pk/crm-fields": next(flow.pk for flow in health if flow.entity == "account_health"),
        "exceptions": SyncException.objects.first().pk,
        "connections": Connection.objects.first().pk,
        "flows": seeded.flow.pk,
        "runs": SyncRun.objects.first().pk,
        "mappings": seeded.flow.inbound_mapping_id,
        "rules": MappingRule.objects.filter(mapping_id=seeded.flow.inbound_mapping_id).first().pk,
        "value-maps": ValueMap.objects.first().pk,
    }
    connection.set_schema_to_public()
    admin = world.user("admin@northwind.localhost")
    version = template_version_save(partner=northwind, client=contoso, flow_id=seeded.flow.pk, actor=admin, name="Fuzz")
    template_deploy(template=version.template, version=version, clients=[world.clients["tailspin"]], actor=admin)
    rows.update(
        {
            "users": Membership.objects.get(user__email="viewer@contoso.localhost").pk,
            "team": Membership.objects.get(user__email="engineer@northwind.localhost").pk,
            "plans": Plan.objects.filter(partner=northwind).first().pk,
            "templates": IntegrationTemplate.objects.get(pk=version.template_id).pk,
            "deployments": TemplateDeployment.objects.filter(template_id=version.template_id).first().pk,
            "domains": services.domain_add(partner=northwind, domain="fuzz.northwind.example", actor=None).pk,
            "invitation": invitation_token(world),
        }
    )
    change_request = services.change_request_create(
        client=contoso, actor=world.user("admin@contoso.localhost"), kind="other", title="Fuzz", description="Fuzz"
    )
    rows.update(
        {"changes": change_request.pk, "changes/number": change_request.number}
    )  # the console's, the workspace's
    return rows, hooks


def invitation_token(world) -> str:
    """A pending invitation (Tom of Tailspin, to Contoso) and the token its link carries."""
    from tenants.models import Invitation, Role
    from tenants.services import invitation_token_hash

    token = "fuzz-invitation-token"
    Invitation.objects.create(
        user=world.user("admin@tailspin.localhost"),
        email="admin@tailspin.localhost",
        role=Role.CLIENT_VIEWER,
        client=world.clients["contoso"],
        token_hash=invitation_token_hash(token),
    )
    return token


def concrete(route: str, rows: dict) -> list[str]:
    """URLs for a route: its ids filled with real rows (by the segment they follow), and with hostile ones."""
    segments = route.split("/")

    def fill(hostile: str | None) -> str:
        out = []
        for index, segment in enumerate(segments):
            match = re.fullmatch(r"<(?:(\w+):)?(\w+)>", segment)
            if not match:
                out.append(segment)
                continue
            converter, name = match.groups()
            before = segments[index - 1] if index else ""
            if name == "client_slug" or (name == "slug" and before in ("clients", "revenue")):
                out.append("contoso")
            elif name == "vendor":
                out.append("hubspot")
            elif name == "key":
                out.append("approved-time-to-invoice")
            elif name == "token":
                out.append(hostile or rows["invitation"])
            elif converter == "int":
                # By the segment before; "changes/number" when one segment names rows by two kinds of id, and
                # "flows/pk/crm-fields" when a page takes only one kind of row (a delivery-health flow).
                after = segments[index + 1] if index + 1 < len(segments) else ""
                row = rows.get(
                    f"{before}/{name}/{after}",
                    rows.get(
                        f"{before}/{name}", rows.get("rules" if name == "id" and before == "rules" else before, 1)
                    ),
                )
                out.append(hostile or str(row))
            else:
                out.append(hostile or "x" * 300)
        return "/" + "/".join(out)

    urls = [fill(None)]
    if "<int:" in route:
        urls.extend(fill(value) for value in HOSTILE_PATH_INTS)
    return urls


def payloads(names: set[str]):
    for value in HOSTILE_VALUES:
        yield {name: value for name in names}
    yield {name: ["1", "9" * 400, "x" * 10_000] for name in names}  # several values where one is expected
    yield {name: SimpleUploadedFile("f.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 64, "image/png") for name in names}


def collect_field_names(pages: list[tuple]) -> set[str]:
    parser = FormFields()
    for browser, url in pages:
        response = browser.get(url)
        if response.status_code == 200 and response.get("Content-Type", "").startswith("text/html"):
            parser.feed(response.content.decode())
    return parser.names


def request_in_savepoint(browser, method: str, url: str, **kwargs):
    with transaction.atomic():
        response = getattr(browser, method)(url, **kwargs)
        transaction.set_rollback(True)
    connection.set_schema_to_public()
    return response


# 404 by design whatever is posted: metrics without METRICS_TOKEN, allauth's pages for a second
# factor the signed-in user does not have.
EXPECTED_404 = {"/metrics", "/accounts/2fa/totp/deactivate/", "/accounts/2fa/recovery-codes/download/"}


def failures_probe_404(browser, url) -> bool:
    return request_in_savepoint(browser, "post", url, data={}).status_code == 404


def test_every_form_and_webhook_survives_hostile_values(world, ids, settings):
    rows, hooks = ids
    settings.ACCOUNT_RATE_LIMITS = False  # thousands of bad posts: the limits would answer before the forms
    surfaces = [
        (browser_for(world.user("operator@sysgenpro.localhost"), host=PLATFORM), "portal.urls_platform"),
        (browser_for(world.user("admin@northwind.localhost"), host=NORTHWIND), "portal.urls_partner"),
        (browser_for(host=NORTHWIND), "portal.urls_partner"),  # anonymous: the account pages' forms
    ]
    targets = []
    reached = set()  # URLs whose ids are real rows: the fuzz must get past their 404
    for browser, urlconf in surfaces:
        browser.raise_request_exception = False
        for route in leaf_routes(urlconf):
            if route.startswith("hooks/"):
                continue  # below, with vendor headers
            if browser.session.get("_auth_user_id") is None and not route.startswith("accounts/"):
                continue
            if route.startswith("accounts/logout"):
                continue  # would end the session the rest of the walk needs
            real, *hostile = concrete(route, rows)
            targets.append((browser, real))
            if not (urlconf == "portal.urls_platform" and route.startswith("accounts/invitations/")):
                reached.add((browser, real))  # (an invitation answers on its partner's host only)
            targets.extend((browser, url) for url in hostile)
    for token in ("x" * 10_000, "%00", "é" * 40):
        targets.append((surfaces[2][0], f"/accounts/invitations/{token}/"))
    for uid_and_key in ("zzzzzzzzzzzzz-set-password", "1-" + "x" * 10_000, "9" * 13 + "-abc", "0-é"):
        targets.append((surfaces[2][0], f"/accounts/password/reset/key/{uid_and_key}/"))
    targets.append((surfaces[2][0], "/accounts/confirm-email/" + "x" * 500 + "/"))

    names = collect_field_names(targets)
    assert {"email", "name", "reason", "target_value", "primary_color"} <= names, sorted(names)
    failures = []

    def check(label, browser, method, url, value, **kwargs):
        response = request_in_savepoint(browser, method, url, **kwargs)
        if response.status_code == 500:
            failures.append((label, url[:120], str(value)[:20], response.status_code))
        return response

    unreached = []
    for browser, url in targets:
        # A view that takes no POST (or no GET) says so before it reads anything, and so do a path id that
        # fits no row (404), a missing slash (301) and a refused caller (401, 403): one request is enough then.
        if check("POST", browser, "post", url, "{}", data={}).status_code not in (301, 401, 403, 404, 405):
            for data in payloads(names):
                check("POST", browser, "post", url, next(iter(data.values())), data=data)
            check("POST json", browser, "post", url, "[1, 2", data="[1, 2", content_type="application/json")
        answer = check("GET", browser, "get", url, "")
        expected = url in EXPECTED_404 or (browser, url) not in reached
        if not expected and answer.status_code == 404 and failures_probe_404(browser, url):
            unreached.append(url)
        if answer.status_code not in (404, 405):
            for value in HOSTILE_VALUES[:8]:
                names_in_query = ("q", "status", "flow", "system", "age", "assignee", "sort", "after", "page", "job")
                query = {name: value for name in (*names_in_query, "since", "until", "error_code", "slot")}
                check("GET", browser, "get", url, value, data=query)

    webhook = browser_for(host=NORTHWIND)
    webhook.raise_request_exception = False
    for hook in [*hooks, "/hooks/contoso/" + "x" * 10_000, "/hooks/no-such-client/token"]:
        for headers in WEBHOOK_HEADERS:
            for body in WEBHOOK_BODIES:
                response = request_in_savepoint(
                    webhook, "post", hook, data=body, content_type="application/json", **headers
                )
                if response.status_code == 500:
                    failures.append(("webhook", hook[:60], str(headers)[:60], response.status_code))
    assert not failures, "\n".join(map(str, failures))
    assert not unreached, "\n".join(url[:100] for url in unreached)
