"""Dataverse sandbox routes: Entra tokens, service-protection 429s, the Web API's entity sets and actions, webhooks."""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any
from urllib.parse import urlencode

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from connectors.dynamics365.sandbox.batch import DataverseBatch
from connectors.dynamics365.sandbox.reads import DataverseReads
from connectors.dynamics365.sandbox.schema import (
    API,
    APPLICATION_USER_ID,
    BUSINESS_UNIT_ID,
    CONCURRENCY_LIMIT,
    DEMO_CREDENTIALS,
    ORGANIZATION_ID,
    ORGANIZATION_NAME,
    TENANT_ID,
    THROTTLE_MESSAGES,
    ApiError,
    Entity,
    _error_response,
    _etag,
    _json_body,
    _response,
)
from connectors.dynamics365.sandbox.state import DataverseState
from connectors.sandbox.app import SandboxApp, deliver_webhook, is_loopback_url, json_response
from connectors.sandbox.entra import EntraTenant
from connectors.sandbox.firm import Firm
from connectors.sandbox.odata import ODataError, parse_select


class DataverseSandbox(DataverseState, DataverseReads, DataverseBatch, SandboxApp):
    vendor = "dynamics365"

    def __init__(self, firm: Firm | None = None):
        self.entra = EntraTenant(
            tenant_id=DEMO_CREDENTIALS["tenant_id"],
            client_id=DEMO_CREDENTIALS["client_id"],
            client_secret=DEMO_CREDENTIALS["client_secret"],
        )
        self.throttle_code = "0x80072322"  # which of the three service-protection limits a rate_limit fault breaks
        self.concurrency_limit = CONCURRENCY_LIMIT
        self.processing_seconds = 0.0
        self._inflight = 0
        self.max_inflight = 0
        self._inflight_lock = threading.Lock()
        super().__init__(firm)

    def routes(self) -> list[Rule]:
        return [
            Rule("/<tenant>/oauth2/v2.0/token", endpoint="token", methods=["POST"]),
            Rule(f"{API}/<path:resource>", endpoint="api", methods=["GET", "POST", "PATCH", "DELETE"]),
        ]

    # -- the kit's hooks -----------------------------------------------------------------------------------------
    def authenticate(self, request: Request) -> Response | None:
        if not request.path.startswith(API) or self.entra.bearer_valid(request):
            return None
        challenge = (
            f"Bearer authorization_uri=https://login.microsoftonline.com/{TENANT_ID}/oauth2/authorize, "
            f"resource_id={request.host_url.rstrip('/')}/"
        )
        return Response(b"", status=401, headers={"WWW-Authenticate": challenge})

    def rate_limited_response(self, request: Request, retry_after: float) -> Response:
        return self._throttled(self.throttle_code, retry_after)

    @staticmethod
    def _throttled(code: str, retry_after: float) -> Response:
        return json_response(
            {"error": {"code": code, "message": THROTTLE_MESSAGES[code]}},
            status=429,
            headers={"Retry-After": str(max(1, int(retry_after + 0.999)))},
        )

    def server_error_response(self, request: Request) -> Response:
        return _error_response(ApiError(500, "0x80040216", "An unexpected error occurred."))

    def not_found_response(self, request: Request) -> Response:
        segment = request.path.rsplit("/", 1)[-1]
        return _error_response(ApiError(404, "0x8006088a", f"Resource not found for the segment '{segment}'."))

    def _dispatch(self, request: Request) -> Response:
        # Dataverse refuses more than 52 concurrent requests per user with its own 429 code.
        with self._inflight_lock:
            if self._inflight >= self.concurrency_limit:
                return self._throttled("0x80072326", 1)
            self._inflight += 1
            self.max_inflight = max(self.max_inflight, self._inflight)
        try:
            if self.processing_seconds:
                time.sleep(self.processing_seconds)
            return super()._dispatch(request)
        finally:
            with self._inflight_lock:
                self._inflight -= 1

    # -- endpoints -----------------------------------------------------------------------------------------------
    def token(self, request: Request, tenant: str) -> Response:
        own = request.host_url.rstrip("/")
        return self.entra.token_endpoint(request, tenant, scope_check=lambda resource: resource.rstrip("/") == own)

    def api(self, request: Request, resource: str) -> Response:
        root = request.host_url.rstrip("/") + API
        if resource == "$batch":
            return self._batch(request, root)
        status, headers, body = self.handle(
            request.method, resource, request.args.to_dict(), request.headers, request.get_data(), root
        )
        return _response(status, headers, body)

    def handle(
        self, method: str, resource: str, args: dict[str, str], headers, data: bytes, root: str
    ) -> tuple[int, dict[str, str], Any]:
        """One Web API operation, shared by direct calls and the parts of a $batch. Returns (status, headers, body)."""
        try:
            with self.lock:
                return self._operation(method, resource, args, headers, data, root)
        except ApiError as error:
            return error.status, {}, {"error": {"code": error.code, "message": error.message}}
        except ODataError as error:
            return 400, {}, {"error": {"code": "0x80060888", "message": str(error)}}

    def _operation(self, method, resource, args, headers, data, root) -> tuple[int, dict[str, str], Any]:
        name, _, key = resource.partition("(")
        key = key[:-1] if key.endswith(")") else key
        if resource in ("WhoAmI", "WhoAmI()") and method == "GET":
            return (
                200,
                {},
                {
                    "@odata.context": f"{root}/$metadata#Microsoft.Dynamics.CRM.WhoAmIResponse",
                    "BusinessUnitId": BUSINESS_UNIT_ID,
                    "UserId": APPLICATION_USER_ID,
                    "OrganizationId": ORGANIZATION_ID,
                },
            )
        if name == "EntityDefinitions":
            if method == "POST":
                return self._attribute_create(resource, _json_body(data), root)
            return self._metadata(resource, args, root)
        if name in ("WinOpportunity", "LoseOpportunity") and method == "POST":
            return self._close_opportunity(name, _json_body(data), root)
        entity = self.entities.get(name)
        if entity is None:
            raise ApiError(404, "0x8006088a", f"Resource not found for the segment '{name}'.")
        if not key:
            if method == "GET":
                return self._list(entity, args, headers, root)
            if method == "POST":
                return self._save(entity, None, _json_body(data), headers, root, creating_only=True)
            raise ApiError(405, "0x80060888", f"The HTTP method '{method}' is not allowed on '{name}'.")
        if method == "GET":
            row = self._find(entity, key)
            if row is None:
                raise ApiError(404, "0x80040217", f"{entity.logical} With Ids = {key} Does Not Exist")
            return 200, {"ETag": _etag(row)}, self._render(entity, row, parse_select(args.get("$select")), root)
        if method == "PATCH":
            return self._save(entity, key, _json_body(data), headers, root)
        if method == "DELETE":
            row = self._find(entity, key)
            if row is None:
                raise ApiError(404, "0x80040217", f"{entity.logical} With Ids = {key} Does Not Exist")
            del self.tables[entity.entity_set][row[entity.primary_id]]
            self.tombstones.append((entity.entity_set, row[entity.primary_id], self._next_version()))
            return 204, {}, None
        raise ApiError(405, "0x80060888", f"The HTTP method '{method}' is not allowed here.")

    # -- webhooks ------------------------------------------------------------------------------------------------
    def _notify(self, entity: Entity, row: dict[str, Any], message: str) -> None:
        for hook in self.webhooks:
            if hook["entity"] != entity.logical or message not in hook["messages"]:
                continue
            context = {
                "BusinessUnitId": BUSINESS_UNIT_ID,
                "CorrelationId": str(uuid.uuid4()),
                "Depth": 1,
                "InitiatingUserId": APPLICATION_USER_ID,
                "InputParameters": [
                    {"key": "Target", "value": {"LogicalName": entity.logical, "Id": row[entity.primary_id]}}
                ],
                "IsExecutingOffline": False,
                "IsInTransaction": False,
                "MessageName": message,
                "Mode": 1,
                "OperationCreatedOn": f"/Date({int(time.time() * 1000)})/",
                "OperationId": str(uuid.uuid4()),
                "OrganizationId": ORGANIZATION_ID,
                "OrganizationName": ORGANIZATION_NAME,
                "OutputParameters": [],
                "PostEntityImages": [],
                "PreEntityImages": [],
                "PrimaryEntityId": row[entity.primary_id],
                "PrimaryEntityName": entity.logical,
                "RequestId": str(uuid.uuid4()),
                "SecondaryEntityName": "none",
                "SharedVariables": [],
                "Stage": 40,
                "UserId": APPLICATION_USER_ID,
            }
            body = json.dumps(context, separators=(",", ":")).encode()
            url = hook["url"]
            headers = {
                "Content-Type": "application/json",
                "x-ms-dynamics-organization": f"{ORGANIZATION_NAME}.crm.dynamics.com",
                "x-ms-dynamics-entity-name": entity.logical,
                "x-ms-dynamics-request-name": message,
                "x-ms-correlation-request-id": context["CorrelationId"],
            }
            if hook["auth"] == "WebhookKey":
                url += ("&" if "?" in url else "?") + urlencode({"code": hook["value"]})
            elif hook["auth"] == "HttpQueryString":
                url += ("&" if "?" in url else "?") + hook["value"]
            else:  # HttpHeader: the registration holds name/value pairs sent as headers
                headers.update(hook["value"])
            delivery = {"url": url, "headers": headers, "body": body.decode(), "status": None, "message": message}
            self.deliveries.append(delivery)
            deliver_webhook(delivery, body)

    def _win_opportunity(self, request: Request) -> Response:
        """A salesperson wins an opportunity in Dynamics 365 (the oldest open one, or {"id": ...}), giving it the
        firm's next project code as won deals carry: closed through WinOpportunity, so registered webhooks hear."""
        wanted = str((request.get_json(force=True, silent=True) or {}).get("id") or "")
        root = request.host_url.rstrip("/") + API
        with self.lock:
            table = self.tables["opportunities"]
            still_open = sorted(
                (r for r in table.values() if r["statecode"] == 0 and (not wanted or r["opportunityid"] == wanted)),
                key=lambda r: (r["createdon"], r["opportunityid"]),
            )
            if not still_open:
                return json_response({"error": "no such open opportunity"}, status=404)
            row = still_open[0]
            if not row.get("new_projectcode"):
                taken = [
                    int(code[4:])
                    for code in (r.get("new_projectcode") or "" for r in table.values())
                    if code.startswith("PRJ-") and code[4:].isdigit()
                ]
                row["new_projectcode"] = f"PRJ-{max(taken, default=100) + 1}"
            close = {"opportunityid@odata.bind": f"/opportunities({row['opportunityid']})", "subject": "Won"}
            self._close_opportunity("WinOpportunity", {"OpportunityClose": close, "Status": 3}, root)
            return json_response(
                {
                    "opportunity": row["opportunityid"],
                    "name": row["name"],
                    "project_code": row["new_projectcode"],
                    "delivered_to": [hook["url"] for hook in self.webhooks if "Win" in hook["messages"]],
                }
            )

    def _control(self, request: Request) -> Response:
        """`/_sandbox/webhooks`: the registrations an admin makes in the Plug-in Registration tool (not an API);
        `/_sandbox/opportunities/win`: a salesperson wins a deal."""
        if request.path.rstrip("/") == "/_sandbox/opportunities/win" and request.method == "POST":
            return self._win_opportunity(request)
        if request.path.rstrip("/") != "/_sandbox/webhooks":
            return super()._control(request)
        if request.method == "POST":
            body = request.get_json(force=True, silent=True) or {}
            url = body.get("url", "")
            if not is_loopback_url(url):
                return json_response({"error": "webhooks are delivered to loopback URLs only"}, status=400)
            auth = body.get("auth", "WebhookKey")
            if auth not in ("WebhookKey", "HttpHeader", "HttpQueryString"):
                return json_response({"error": "auth is WebhookKey, HttpHeader or HttpQueryString"}, status=400)
            with self.lock:
                self.webhooks.append(
                    {
                        "url": url,
                        "auth": auth,
                        "value": body.get("value") or ({} if auth == "HttpHeader" else ""),
                        "entity": body.get("entity", "opportunity"),
                        "messages": list(body.get("messages") or ["Win"]),
                    }
                )
        elif request.method == "DELETE":
            with self.lock:
                self.webhooks.clear()
                self.deliveries.clear()
        with self.lock:
            return json_response({"webhooks": list(self.webhooks), "deliveries": list(self.deliveries)})


def create_app(firm: Firm | None = None) -> DataverseSandbox:
    return DataverseSandbox(firm)
