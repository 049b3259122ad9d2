"""Partner-scope operations (partner keys only): clients, their keys, plans, template deployments,
usage and statements. The same services as the partner console's pages."""

from __future__ import annotations

from datetime import date

from django.conf import settings
from django.http import HttpResponse
from ninja import Query, Router, Status

from api.access import allow, partner_only
from api.calls import throttle
from api.etags import etag_of, if_match
from api.models import ApiKey
from api.problems import ApiProblem
from api.routes.paging import ID_CURSOR, id_path, page_by_id, slug_path
from api.schemas import (
    ClientIn,
    ClientOut,
    ClientPatch,
    DeploymentIn,
    DeploymentOut,
    KeyIn,
    KeyIssued,
    KeyOut,
    PlanOut,
    StatementOut,
    TemplateOut,
    UsageOut,
    page_of,
)
from tenants.models import Client, IntegrationTemplate, Plan

router = Router(tags=["Partner"])

ClientPage = page_of(ClientOut)
MONTH = r"^(|(19|20)[0-9]{2}-(0[1-9]|1[0-2]))$"


def _partner_key(request, family: str, action: str, *, write: bool = False, target="") -> ApiKey:
    key = allow(request, family, action, write=write, target=target)
    return partner_only(request) and key


def _client(request, slug: str, family: str, action: str, *, write: bool = False) -> Client:
    """One of this partner's clients (404 otherwise); its calls are audited in its own log."""
    _partner_key(request, family, action, write=write, target=slug)
    client = Client.objects.select_related("partner", "plan").filter(partner=request.partner, slug=slug).first()
    if client is None:
        raise ApiProblem(404, "No such client.")
    request.api_client = client
    throttle(f"client:{client.pk}", settings.API_CLIENT_RATE_PER_MINUTE)
    return client


def client_out(client: Client) -> dict:
    return {
        "slug": client.slug,
        "name": client.name,
        "status": client.status,
        "plan_id": client.plan_id,
        "plan": client.plan.name if client.plan_id else None,
        "workspace_path": client.path,
        "created_at": client.created_at,
    }


def key_out(key: ApiKey) -> dict:
    return {
        "id": key.pk,
        "name": key.name,
        "kind": key.kind,
        "client": key.client.slug if key.client_id else None,
        "prefix": key.prefix,
        "scopes": key.scopes,
        "expires_at": key.expires_at,
        "last_used_at": key.last_used_at,
        "created_at": key.created_at,
        "state": key.state,
    }


# --- Clients --------------------------------------------------------------------------------------


@router.get("/clients", response=ClientPage, summary="List clients")
def clients_list(request, cursor: str = Query("", pattern=ID_CURSOR), limit: int = Query(50, ge=1, le=200)):
    _partner_key(request, "clients", "list")
    page = page_by_id(Client.objects.filter(partner=request.partner).select_related("plan"), cursor=cursor, limit=limit)
    return {"items": [client_out(c) for c in page["items"]], "next_cursor": page["next_cursor"]}


@router.post("/clients", response={201: ClientOut}, summary="Create a client workspace")
def client_create(request, response: HttpResponse, body: ClientIn):
    """A new workspace with its own schema on one of your plans; its admin is invited by email in your
    brand. Send an Idempotency-Key: a retried create then answers the first result instead of failing."""
    from tenants import services
    from tenants.forms import ClientCreateForm

    key = _partner_key(request, "clients", "create", write=True, target=body.slug or body.name)
    form = ClientCreateForm(
        {
            "name": body.name,
            "slug": body.slug,
            "plan": body.plan_id,
            "admin_email": body.admin_email,
            "admin_name": body.admin_name,
        },
        partner=request.partner,
    )
    if not form.is_valid():
        errors = {name: [str(m) for m in messages] for name, messages in form.errors.items()}
        if "plan" in errors:
            errors["plan_id"] = errors.pop("plan")
        raise ApiProblem(422, "Check the client's fields.", errors=errors)
    client = services.client_create(partner=request.partner, actor=key.created_by, **form.cleaned_data)
    request.api_client = client
    request.api_target = client.slug
    response["Location"] = f"/api/v1/clients/{client.slug}"
    return Status(201, client_out(client))


@router.get("/clients/{client}", response=ClientOut, summary="Get a client")
def client_get(request, response: HttpResponse, client: str = slug_path()):
    found = _client(request, client, "clients", "get")
    document = client_out(found)
    response["ETag"] = etag_of(ClientOut(**document))
    return document


@router.patch(
    "/clients/{client}",
    response=ClientOut,
    summary="Move a client to another plan",
    openapi_extra={
        "parameters": [
            {
                "in": "header",
                "name": "If-Match",
                "required": False,
                "schema": {"type": "string"},
                "description": "The ETag of the client as last read: the update is refused (412) if it changed since.",
            }
        ]
    },
)
def client_update(request, response: HttpResponse, body: ClientPatch, client: str = slug_path()):
    from tenants.services import client_plan_change

    found = _client(request, client, "clients", "plan_change", write=True)
    if_match(request, etag_of(ClientOut(**client_out(found))))
    plan = Plan.objects.filter(partner=request.partner, pk=body.plan_id).first()
    if plan is None:
        raise ApiProblem(422, "Choose one of your own plans.", errors={"plan_id": ["No such plan."]})
    client_plan_change(client=found, plan=plan, actor=request.auth.created_by)
    document = client_out(found)
    response["ETag"] = etag_of(ClientOut(**document))
    return document


@router.post("/clients/{client}/suspend", response=ClientOut, summary="Suspend a client")
def client_suspend(request, client: str = slug_path()):
    """Its syncs stop and its people see a notice; nothing is deleted."""
    from tenants.services import client_suspend as suspend

    found = _client(request, client, "clients", "suspend", write=True)
    return client_out(suspend(client=found, actor=request.auth.created_by))


@router.post("/clients/{client}/resume", response=ClientOut, summary="Resume a client")
def client_resume(request, client: str = slug_path()):
    from tenants.services import client_resume as resume

    found = _client(request, client, "clients", "resume", write=True)
    return client_out(resume(client=found, actor=request.auth.created_by))


@router.get("/clients/{client}/keys", response=list[KeyOut], summary="A client's API keys")
def client_keys(request, client: str = slug_path()):
    from api.selectors import client_keys as keys

    found = _client(request, client, "clients", "keys")
    return [key_out(key) for key in keys(found)]


@router.post("/clients/{client}/keys", response={201: KeyIssued}, summary="Create a client key")
def client_key_create(request, body: KeyIn, client: str = slug_path()):
    """The answer holds the whole key, once; store it in the client's system. Only its hash is kept."""
    from api.services import ApiKeyRefused, api_key_create

    found = _client(request, client, "clients", "key_create", write=True)
    try:
        issued = api_key_create(
            partner=request.partner,
            client=found,
            name=body.name,
            scopes=body.scopes,
            expires_at=body.expires_at,
            actor=request.auth.created_by,
        )
    except ApiKeyRefused as refused:
        raise ApiProblem(422, str(refused)) from None
    request.api_target = issued.key.prefix
    return Status(201, {**key_out(issued.key), "key": issued.secret})


@router.get("/clients/{client}/usage", response=UsageOut, summary="A client's usage, month by month")
def client_usage(
    request,
    client: str = slug_path(),
    months: int = Query(6, ge=1, le=24),
):
    from tenants.selectors.revenue import usage_history

    found = _client(request, client, "billing", "usage")
    return {"client": found.slug, "months": [statement_out(s) for s in usage_history(found, months=months)]}


def statement_out(statement) -> dict:
    return {
        "client": statement.client.slug,
        "month": statement.month,
        "plan": statement.plan_name or None,
        "currency": statement.currency,
        "records_synced": statement.records_synced,
        "included_records": statement.included_records,
        "overage_records": statement.overage_records,
        "monthly_price": statement.plan_price,
        "overage_amount": statement.overage_amount,
        "total": statement.total,
    }


@router.get("/statements", response=list[StatementOut], summary="Every client's statement for a month")
def statements(request, month: str = Query("", pattern=MONTH, description="YYYY-MM; this month when absent")):
    from portal.months import this_month
    from tenants.selectors.revenue import partner_statements

    _partner_key(request, "billing", "statements", target=month)
    chosen = date(int(month[:4]), int(month[5:7]), 1) if month else this_month()
    return [statement_out(s) for s in partner_statements(partner=request.partner, month=chosen)]


# --- Plans ----------------------------------------------------------------------------------------


@router.get("/plans", response=list[PlanOut], summary="List plans")
def plans_list(request):
    _partner_key(request, "plans", "list")
    return list(Plan.objects.filter(partner=request.partner))


@router.get("/plans/{plan_id}", response=PlanOut, summary="Get a plan")
def plan_get(request, plan_id: int = id_path()):
    _partner_key(request, "plans", "get", target=plan_id)
    plan = Plan.objects.filter(partner=request.partner, pk=plan_id).first()
    if plan is None:
        raise ApiProblem(404, "No such plan.")
    return plan


# --- Templates and deployments --------------------------------------------------------------------


def template_out(template) -> dict:
    from integrations.partner_templates.selectors import install_key

    return {
        "id": template.pk,
        "key": template.key,
        "install_key": install_key(template),
        "name": template.name,
        "summary": template.summary,
        "latest_version": template.latest,
    }


@router.get("/templates", response=list[TemplateOut], summary="Your integration templates")
def templates_list(request):
    from integrations.partner_templates.selectors import partner_templates

    _partner_key(request, "templates", "list")
    return [template_out(t) for t in partner_templates(request.partner)]


def _template(request, template_id: int = id_path()) -> IntegrationTemplate:
    from integrations.partner_templates.selectors import partner_templates

    template = partner_templates(request.partner).filter(pk=template_id).first()
    if template is None:
        raise ApiProblem(404, "No such template.")
    return template


def deployment_out(deployment) -> dict:
    from integrations.partner_templates.selectors import install_key

    return {
        "id": deployment.pk,
        "template_id": deployment.template_id,
        "client": deployment.client.slug,
        "version": deployment.version.number,
        "install_key": install_key(deployment.template),
    }


@router.get("/templates/{template_id}/deployments", response=list[DeploymentOut], summary="Where a template is offered")
def deployments_list(request, template_id: int = id_path()):
    _partner_key(request, "templates", "deployments", target=template_id)
    template = _template(request, template_id)
    deployments = template.deployments.select_related("client", "version", "template")
    return [deployment_out(d) for d in deployments]


@router.post(
    "/templates/{template_id}/deployments", response={201: DeploymentOut}, summary="Offer a template to a client"
)
def deployment_create(request, body: DeploymentIn, template_id: int = id_path()):
    """The client then installs it with its own connections (POST /clients/{client}/flows)."""
    from integrations.partner_templates.services import TemplateRefused, template_deploy

    template = _template(request, template_id)
    found = _client(request, body.client, "templates", "deploy", write=True)
    request.api_target = template_id
    versions = template.versions.all()
    version = versions.filter(number=body.version).first() if body.version else versions.order_by("-number").first()
    if version is None:
        raise ApiProblem(422, "No such version of this template.", errors={"version": ["No such version."]})
    try:
        (deployment,) = template_deploy(
            template=template, version=version, clients=[found], actor=request.auth.created_by
        )
    except TemplateRefused as refused:
        raise ApiProblem(422, str(refused)) from None
    return Status(201, deployment_out(deployment))
