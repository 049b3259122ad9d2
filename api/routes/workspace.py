"""Client-scope operations under /clients/{client}/: connections, flows, runs, reconciliation,
exceptions and audit events. A client key reaches only its own client; a partner key its partner's.

Every operation calls the same services and selectors as the workspace pages, inside the client's
schema, acting as the key's creator with their role in the workspace today.
"""

from __future__ import annotations

from django.http import HttpResponse
from ninja import Query, Router, Status

from api.access import inside
from api.etags import etag_of, if_match
from api.problems import ApiProblem
from api.routes.paging import ID_CURSOR, id_path, page_by_id, slug_path
from api.schemas import (
    AuditEventOut,
    CommentIn,
    CommentOut,
    ConnectionIn,
    ConnectionOut,
    ConnectionTestOut,
    ExceptionDetailOut,
    ExceptionOut,
    ExceptionPatch,
    FlowOut,
    IgnoreIn,
    InstallIn,
    OfferedTemplateOut,
    ReconciliationOut,
    RetryOut,
    RunOut,
    page_of,
)

router = Router(tags=["Client workspace"])

ConnectionPage = page_of(ConnectionOut)
FlowPage = page_of(FlowOut)
RunPage = page_of(RunOut)
ExceptionPage = page_of(ExceptionOut)
AuditEventPage = page_of(AuditEventOut)


def _get(model, pk: int, noun: str):
    found = model.objects.filter(pk=pk).first()
    if found is None:
        raise ApiProblem(404, f"No such {noun} in this workspace.")
    return found


# --- Connections ----------------------------------------------------------------------------------


@router.get("/clients/{client}/connections", response=ConnectionPage, summary="List connections")
def connections_list(
    request,
    client: str = slug_path(),
    cursor: str = Query("", pattern=ID_CURSOR),
    limit: int = Query(50, ge=1, le=200),
):
    from integrations.models import Connection

    with inside(request, client, "connections", "list"):
        return page_by_id(Connection.objects.all(), cursor=cursor, limit=limit)


@router.post("/clients/{client}/connections", response={201: ConnectionOut}, summary="Add a connection")
def connection_add(request, body: ConnectionIn, client: str = slug_path()):
    """The connector's credential fields are validated as in the page's form, stored encrypted, and never
    returned by any operation."""
    from connectors.registry import CONNECTORS
    from integrations import selectors
    from integrations.forms.connections import ConnectionForm
    from integrations.services.connections import connection_create
    from tenants.plans import PlanLimitReached

    with inside(request, client, "connections", "create", write=True):
        if body.vendor not in CONNECTORS:
            raise ApiProblem(422, f"No connector named “{body.vendor}”.", errors={"vendor": ["Unknown vendor."]})
        data = {"name": body.name, "base_url": body.base_url}
        data.update({f"cred_{name}": value for name, value in body.credentials.items()})
        form = ConnectionForm(data, vendor=body.vendor)
        if not form.is_valid():
            raise ApiProblem(422, "Check the connection's fields.", errors=_form_errors(form))
        try:
            created = connection_create(
                name=form.cleaned_data["name"],
                vendor=body.vendor,
                base_url=form.cleaned_data["base_url"],
                credentials=form.credentials(),
                environment=body.environment,
                actor=request.auth.created_by,
            )
        except PlanLimitReached as refused:
            raise ApiProblem(409, refused.message) from None
        selectors.queue_choices_forget()
        request.api_target = created.pk
        return Status(201, created)


def _form_errors(form) -> dict[str, list[str]]:
    """Form errors under the API's own field names (credential fields without the form's prefix)."""
    return {
        name.removeprefix("cred_") or "request": [str(message) for message in messages]
        for name, messages in form.errors.items()
    }


@router.get("/clients/{client}/connections/{connection_id}", response=ConnectionOut, summary="Get a connection")
def connection_get(request, connection_id: int = id_path(), client: str = slug_path()):
    from integrations.models import Connection

    with inside(request, client, "connections", "get", target=connection_id):
        return _get(Connection, connection_id, "connection")


@router.post(
    "/clients/{client}/connections/{connection_id}/test", response=ConnectionTestOut, summary="Test a connection"
)
def connection_test(request, connection_id: int = id_path(), client: str = slug_path()):
    """A real authenticated call to the vendor; the connection's status follows the answer."""
    from integrations.models import Connection
    from integrations.services.connections import connection_test as test

    with inside(request, client, "connections", "test", write=True, target=connection_id):
        connection = _get(Connection, connection_id, "connection")
        result = test(connection=connection, actor=request.auth.created_by)
        connection.refresh_from_db()
        return {"ok": result.ok, "message": result.message, "connection": connection}


# --- Flows, runs, reconciliation ------------------------------------------------------------------


@router.get("/clients/{client}/templates", response=list[OfferedTemplateOut], summary="Templates to install")
def templates_installable(request, client: str = slug_path()):
    """The templates this workspace may install: its partner's own offered to it, then the packaged ones."""
    from integrations.partner_templates.selectors import templates_installable as installable

    with inside(request, client, "flows", "templates") as here:
        return [
            {
                "key": t.key,
                "name": t.name,
                "roles": {role: list(vendors) for role, (vendors, _) in t.connections.items()},
            }
            for t in installable(here)
        ]


@router.post("/clients/{client}/flows", response={201: list[FlowOut]}, summary="Install a template's flows")
def flows_install(request, body: InstallIn, client: str = slug_path()):
    from integrations import selectors
    from integrations.models import Connection
    from integrations.partner_templates.services import template_install_in
    from integrations.services.flows import FlowConfigurationError
    from tenants.plans import PlanLimitReached

    with inside(request, client, "flows", "install", write=True, target=body.template) as here:
        connections = {}
        for role, pk in body.connections.items():
            connections[role] = Connection.objects.filter(pk=pk).first()
            if connections[role] is None:
                raise ApiProblem(422, f"No connection {pk} in this workspace (role “{role}”).")
        try:
            flows = template_install_in(
                client=here, key=body.template, connections=connections, actor=request.auth.created_by
            )
        except (FlowConfigurationError, PlanLimitReached) as refused:
            raise ApiProblem(422, getattr(refused, "message", None) or str(refused)) from None
        selectors.queue_choices_forget()
        return Status(201, flows)


@router.get("/clients/{client}/flows", response=FlowPage, summary="List flows")
def flows_list(
    request,
    client: str = slug_path(),
    cursor: str = Query("", pattern=ID_CURSOR),
    limit: int = Query(50, ge=1, le=200),
):
    from integrations.models import Flow

    with inside(request, client, "flows", "list"):
        return page_by_id(Flow.objects.all(), cursor=cursor, limit=limit)


@router.get("/clients/{client}/flows/{flow_id}", response=FlowOut, summary="Get a flow")
def flow_get(request, response: HttpResponse, flow_id: int = id_path(), client: str = slug_path()):
    from integrations.models import Flow

    with inside(request, client, "flows", "get", target=flow_id):
        flow = _get(Flow, flow_id, "flow")
        response["ETag"] = etag_of(FlowOut.from_orm(flow))
        return flow


@router.post("/clients/{client}/flows/{flow_id}/run", response={202: RunOut}, summary="Run a flow now")
def flow_run(request, response: HttpResponse, flow_id: int = id_path(), client: str = slug_path()):
    """Queues a run (or answers the one already queued or running); poll the run for its progress."""
    from integrations.models import Flow
    from integrations.services.runs import SyncNotAllowed, run_start

    with inside(request, client, "flows", "run", write=True, target=flow_id):
        flow = _get(Flow, flow_id, "flow")
        try:
            run = run_start(flow=flow, trigger="manual", actor=request.auth.created_by)
        except SyncNotAllowed as refused:
            raise ApiProblem(409, str(refused)) from None
        response["Location"] = f"/api/v1/clients/{client}/runs/{run.pk}"
        return Status(202, run)


def _flow_enabled(request, flow_id: int, client: str, enabled: bool):
    from integrations.models import Flow
    from integrations.services.flows import flow_set_enabled

    with inside(request, client, "flows", "resume" if enabled else "pause", write=True, target=flow_id):
        flow = _get(Flow, flow_id, "flow")
        return flow_set_enabled(flow=flow, enabled=enabled, actor=request.auth.created_by)


@router.post("/clients/{client}/flows/{flow_id}/pause", response=FlowOut, summary="Pause a flow's schedule")
def flow_pause(request, flow_id: int = id_path(), client: str = slug_path()):
    """A paused flow runs only by hand."""
    return _flow_enabled(request, flow_id, client, False)


@router.post("/clients/{client}/flows/{flow_id}/resume", response=FlowOut, summary="Resume a flow's schedule")
def flow_resume(request, flow_id: int = id_path(), client: str = slug_path()):
    return _flow_enabled(request, flow_id, client, True)


@router.get("/clients/{client}/flows/{flow_id}/runs", response=RunPage, summary="A flow's runs, newest first")
def flow_runs(
    request,
    flow_id: int = id_path(),
    client: str = slug_path(),
    cursor: str = Query("", pattern=ID_CURSOR),
    limit: int = Query(50, ge=1, le=200),
):
    from integrations.models import Flow

    with inside(request, client, "flows", "runs", target=flow_id):
        flow = _get(Flow, flow_id, "flow")
        return page_by_id(flow.runs.all(), cursor=cursor, limit=limit, descending=True)


@router.get("/clients/{client}/runs/{run_id}", response=RunOut, summary="A run with its counts and progress")
def run_get(request, run_id: int = id_path(), client: str = slug_path()):
    from integrations.models import SyncRun

    with inside(request, client, "flows", "run_get", target=run_id):
        return _get(SyncRun, run_id, "run")


@router.get("/clients/{client}/runs/{run_id}/records", response=ReconciliationOut, summary="A run's reconciliation")
def run_reconciliation(
    request,
    run_id: int = id_path(),
    client: str = slug_path(),
    outcome: str = Query("", pattern=r"^(|created|linked|updated|unchanged|parked|exception|skipped)$"),
    cursor: str = Query("", pattern=ID_CURSOR),
    limit: int = Query(100, ge=1, le=500),
):
    """Where each source record went: the counts by outcome (they add up to what the run read) and the
    records behind them, oldest first."""
    from integrations import selectors
    from integrations.models import SyncRun

    with inside(request, client, "flows", "reconciliation", target=run_id):
        run = _get(SyncRun, run_id, "run")
        rows = selectors.reconciliation_rows(run=run, outcome=outcome)
        page = page_by_id(rows, cursor=cursor, limit=limit)
        return {"run": run, "outcomes": selectors.run_outcomes(run), **page}


# --- Exceptions -----------------------------------------------------------------------------------


@router.get("/clients/{client}/exceptions", response=ExceptionPage, summary="The exception queue")
def exceptions_list(
    request,
    client: str = slug_path(),
    status: str = Query("open", pattern=r"^(open|retrying|parked|resolved|ignored|all)$"),
    flow: int | None = Query(None, ge=1),
    system: str = Query("", pattern=r"^(|(from|to):[a-z0-9_]{1,40})$", description="from:<vendor> or to:<vendor>"),
    error_code: str = Query("", pattern=r"^[A-Z0-9_]{0,60}$"),
    age: str = Query("", pattern=r"^(|1d|1-3d|3-7d|7d|sla)$"),
    assignee: str = Query("", pattern=r"^(|none|[0-9]{1,18})$", description="none, or a person's id"),
    q: str = Query("", max_length=200, pattern=r"^[^\x00]*$"),
    sort: str = Query("oldest", pattern=r"^(oldest|newest)$"),
    cursor: str = Query("", pattern=r"^(|[0-9]{1,20}\.[0-9]{1,18})$"),
    limit: int = Query(50, ge=1, le=200),
):
    """The same filters as the queue's page, paged by cursor (as fast on the last page as on the first)."""
    from integrations import selectors

    with inside(request, client, "exceptions", "list") as here:
        query = selectors.QueueQuery(
            status=status,
            flow=flow,
            system=system,
            error_code=error_code,
            age=age,
            assignee=assignee,
            q=q.strip(),
            sort=sort,
        )
        sla = here.plan.sla_resolution_hours if here.plan else None
        page = selectors.exception_queue(
            query, user_id=request.auth.created_by_id, sla_hours=sla, after=cursor, size=limit
        )
        return {"items": page.rows, "next_cursor": page.next_cursor}


def _exception(pk: int):
    from integrations.models import SyncException

    return _get(SyncException, pk, "exception")


@router.get("/clients/{client}/exceptions/{exception_id}", response=ExceptionDetailOut, summary="Get an exception")
def exception_get(request, response: HttpResponse, exception_id: int = id_path(), client: str = slug_path()):
    with inside(request, client, "exceptions", "get", target=exception_id):
        exception = _exception(exception_id)
        response["ETag"] = etag_of(ExceptionDetailOut.from_orm(exception))
        return exception


@router.patch(
    "/clients/{client}/exceptions/{exception_id}",
    response=ExceptionDetailOut,
    summary="Assign an exception",
    openapi_extra={
        "parameters": [
            {
                "in": "header",
                "name": "If-Match",
                "required": False,
                "schema": {"type": "string"},
                "description": "The ETag of the exception as last read: the update is refused (412) if it changed since.",
            }
        ]
    },
)
def exception_assign(
    request,
    response: HttpResponse,
    body: ExceptionPatch,
    exception_id: int = id_path(),
    client: str = slug_path(),
):
    from integrations.services.exceptions import exception_assign as assign
    from tenants.models import User
    from tenants.selectors.people import workspace_people

    with inside(request, client, "exceptions", "assign", write=True, target=exception_id) as here:
        exception = _exception(exception_id)
        if_match(request, etag_of(ExceptionDetailOut.from_orm(exception)))
        assignee = None
        if body.assignee_id is not None:
            if body.assignee_id not in {pk for pk, _ in workspace_people(here)}:
                raise ApiProblem(422, "Choose someone who works in this workspace.")
            assignee = User.objects.get(pk=body.assignee_id)
        assign(exception=exception, assignee=assignee, actor=request.auth.created_by)
        response["ETag"] = etag_of(ExceptionDetailOut.from_orm(exception))
        return exception


@router.post("/clients/{client}/exceptions/{exception_id}/retry", response=RetryOut, summary="Retry an exception")
def exception_retry(request, exception_id: int = id_path(), client: str = slug_path()):
    from integrations.services.exceptions import ExceptionActionRefused, exception_retry_reported

    with inside(request, client, "exceptions", "retry", write=True, target=exception_id):
        exception = _exception(exception_id)
        try:
            outcome = exception_retry_reported(exception=exception, actor=request.auth.created_by)
        except ExceptionActionRefused as refused:
            raise ApiProblem(409, str(refused)) from None
        exception.refresh_from_db()
        return {
            "exception": exception,
            "resolved": outcome.get("resolved", 0),
            "still_open": outcome.get("still_open", 0),
            "released": outcome.get("released", 0),
            "reasons": [str(reason) for reason in outcome.get("reasons") or []],
        }


@router.post(
    "/clients/{client}/exceptions/{exception_id}/ignore", response=ExceptionDetailOut, summary="Ignore an exception"
)
def exception_ignore(request, body: IgnoreIn, exception_id: int = id_path(), client: str = slug_path()):
    from integrations.services.exceptions import ExceptionActionRefused
    from integrations.services.exceptions import exception_ignore as ignore

    with inside(request, client, "exceptions", "ignore", write=True, target=exception_id):
        exception = _exception(exception_id)
        if not exception.is_live:
            raise ApiProblem(409, "Only open exceptions can be ignored.")
        try:
            return ignore(exception=exception, reason=body.reason, actor=request.auth.created_by)
        except ExceptionActionRefused as refused:
            raise ApiProblem(409, str(refused)) from None


@router.post(
    "/clients/{client}/exceptions/{exception_id}/comments",
    response={201: CommentOut},
    summary="Comment on an exception",
)
def exception_comment(request, body: CommentIn, exception_id: int = id_path(), client: str = slug_path()):
    from integrations.services.exceptions import ExceptionActionRefused
    from integrations.services.exceptions import exception_comment as comment

    with inside(request, client, "exceptions", "comment", write=True, target=exception_id):
        exception = _exception(exception_id)
        try:
            return Status(201, comment(exception=exception, body=body.body, actor=request.auth.created_by))
        except ExceptionActionRefused as refused:
            raise ApiProblem(422, str(refused)) from None


# --- Audit ------------------------------------------------------------------------------------------


@router.get("/clients/{client}/audit-events", response=AuditEventPage, summary="The workspace's audit log")
def audit_events(
    request,
    client: str = slug_path(),
    action: str = Query("", pattern=r"^[a-z_.]{0,80}$"),
    cursor: str = Query("", pattern=ID_CURSOR),
    limit: int = Query(50, ge=1, le=200),
):
    """Newest first; the API's own calls are here too (actions api.*)."""
    from integrations.models import AuditEvent

    with inside(request, client, "audit", "list"):
        events = AuditEvent.objects.all()
        if action:
            events = events.filter(action=action) if "." in action else events.filter(action__startswith=f"{action}.")
        return page_by_id(events, cursor=cursor, limit=limit, descending=True)
