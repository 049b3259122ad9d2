"""Business Central sandbox: a local emulator of the Business Central online API v2.0 subset the connector uses.

Entra client-credentials tokens, `/v2.0/{tenant}/{environment}/api/v2.0/companies({id})/...` with customers,
projects, employees, salesInvoices (with `salesInvoiceLines`, deep insert and `$expand`), currencies and
paymentTerms; `$filter`, `$orderby`, `$select`, `$top`, `$skip`, `$count`, server-driven paging (`Prefer:
odata.maxpagesize`, at most 20,000 a page); `@odata.etag` on every entity and `If-Match` required to change or
delete one; JSON `$batch` of at most 100 requests; webhook subscriptions with the validationToken handshake on
create and renew, notifications carrying clientState; 429 when the environment's request queue is full.
Seeded from the firm as its ERP history says: every customer, the ERP's projects, employees and old invoices.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

import requests
from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from connectors.sandbox.app import SandboxApp, deliver_webhook, is_loopback_url, json_response
from connectors.sandbox.entra import EntraTenant
from connectors.sandbox.firm import Firm
from connectors.sandbox.odata import (
    ODataError,
    filter_fields,
    iso_z,
    matches,
    parse_filter,
    parse_orderby,
    parse_select,
    prefer,
    sort_rows,
)

TENANT_ID = "7e2d3c4b-5a69-4b70-9c8d-0e1f2a3b4c5d"
ENVIRONMENT = "production"
RESOURCE = "https://api.businesscentral.dynamics.com"
DEMO_CREDENTIALS = {
    "tenant_id": TENANT_ID,
    "client_id": "9b0e6f52-3c1d-4a8e-b7f2-bc0bc0bc0bc0",
    "client_secret": "sgp~businesscentral~demo~secret~V4n",
    "environment": ENVIRONMENT,
    "company": "Halden & Rowe Consulting",
    "authority": "http://127.0.0.1:8108",  # the sandbox serves Entra's token endpoint too
    "webhook_secret": "sgp-bc-client-state-8e2f",
}
COMPANY_ID = "b4c0ffee-0000-4000-8000-0000000000bc"
SEED_EPOCH = datetime(2024, 1, 2, 9, 0, 0, tzinfo=UTC)
MAX_PAGE_SIZE = 20_000
MAX_BATCH = 100
RUNNING_LIMIT = 5  # requests the environment processes at once
QUEUE_LIMIT = 95  # requests it lets wait; one more is refused with 429
SUBSCRIPTION_DAYS = 3
_NAMESPACE = uuid.UUID("8d1f0c3e-2b4a-4f5e-9a6b-bcbcbcbcbcbc")

# ---------------------------------------------------------------------------------------------------------------
# (unverified) assumptions, kept here and mirrored by connectors/businesscentral/client.py:
# - A PATCH or DELETE without If-Match is 400 BadRequest_InvalidToken; a stale one is 412 Request_EntityChanged;
#   `If-Match: *` is accepted.
# - A full queue answers 429 Application_TooManyRequests with a Retry-After header (so do request-count limits).
# - A failed handshake refuses the subscription with 400 Application_ValidationError.
# - Too long a text is 400 Application_StringExceededLength; a duplicate key 400 Internal_EntityWithSameKeyExists;
#   an unknown code or number 400 Internal_RecordNotFound. Messages end with "  CorrelationId:  <guid>."
# ---------------------------------------------------------------------------------------------------------------


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": f"{self.message}  CorrelationId:  {uuid.uuid4()}."}}


# ---------------------------------------------------------------------------------------------------------------
# Schema: (kind, size) per property; kinds: guid code text date datetime number enum bool
# ---------------------------------------------------------------------------------------------------------------

READ_ONLY = {"id", "lastModifiedDateTime"}
SCHEMA: dict[str, dict[str, tuple[str, int]]] = {
    "customers": {
        "id": ("guid", 0),
        "number": ("code", 20),
        "displayName": ("text", 100),
        "type": ("enum", 0),
        "addressLine1": ("text", 100),
        "addressLine2": ("text", 50),
        "city": ("text", 30),
        "state": ("text", 30),
        "country": ("code", 10),
        "postalCode": ("code", 20),
        "phoneNumber": ("text", 30),
        "email": ("text", 80),
        "website": ("text", 80),
        "taxRegistrationNumber": ("text", 20),
        "currencyId": ("guid", 0),
        "currencyCode": ("code", 10),
        "paymentTermsId": ("guid", 0),
        "blocked": ("enum", 0),
        "lastModifiedDateTime": ("datetime", 0),
    },
    "projects": {
        "id": ("guid", 0),
        "number": ("code", 20),
        "displayName": ("text", 100),
        "lastModifiedDateTime": ("datetime", 0),
    },
    "employees": {
        "id": ("guid", 0),
        "number": ("code", 20),
        "displayName": ("text", 250),
        "givenName": ("text", 30),
        "middleName": ("text", 30),
        "surname": ("text", 30),
        "jobTitle": ("text", 30),
        "addressLine1": ("text", 100),
        "city": ("text", 30),
        "country": ("code", 10),
        "postalCode": ("code", 20),
        "phoneNumber": ("text", 30),
        "mobilePhone": ("text", 30),
        "email": ("text", 80),
        "personalEmail": ("text", 80),
        "employmentDate": ("date", 0),
        "terminationDate": ("date", 0),
        "status": ("enum", 0),
        "birthDate": ("date", 0),
        "lastModifiedDateTime": ("datetime", 0),
    },
    "salesInvoices": {
        "id": ("guid", 0),
        "number": ("code", 20),
        "externalDocumentNumber": ("code", 35),
        "invoiceDate": ("date", 0),
        "postingDate": ("date", 0),
        "dueDate": ("date", 0),
        "customerId": ("guid", 0),
        "customerNumber": ("code", 20),
        "customerName": ("text", 100),
        "currencyCode": ("code", 10),
        "paymentTermsId": ("guid", 0),
        "status": ("enum", 0),
        "totalAmountExcludingTax": ("number", 0),
        "totalAmountIncludingTax": ("number", 0),
        "lastModifiedDateTime": ("datetime", 0),
    },
    "salesInvoiceLines": {
        "id": ("guid", 0),
        "documentId": ("guid", 0),
        "sequence": ("number", 0),
        "lineType": ("enum", 0),
        "lineObjectNumber": ("code", 20),
        "description": ("text", 100),
        "quantity": ("number", 0),
        "unitPrice": ("number", 0),
        "amountExcludingTax": ("number", 0),
        "netAmount": ("number", 0),
    },
    "accounts": {
        "id": ("guid", 0),
        "number": ("code", 20),
        "displayName": ("text", 100),
        "category": ("text", 30),
        "blocked": ("bool", 0),
        "lastModifiedDateTime": ("datetime", 0),
    },
    "currencies": {
        "id": ("guid", 0),
        "code": ("code", 10),
        "displayName": ("text", 30),
        "lastModifiedDateTime": ("datetime", 0),
    },
    "paymentTerms": {
        "id": ("guid", 0),
        "code": ("code", 10),
        "displayName": ("text", 50),
        "dueDateCalculation": ("text", 32),
        "lastModifiedDateTime": ("datetime", 0),
    },
}
COMPUTED = {
    "employees": {"displayName"},
    "salesInvoices": {
        "number",
        "customerName",
        "status",
        "totalAmountExcludingTax",
        "totalAmountIncludingTax",
        "customerId",
    },
    "salesInvoiceLines": {"documentId", "sequence", "amountExcludingTax", "netAmount"},
}
ENUMS = {
    "type": ("Company", "Person"),
    "blocked": (" ", "Ship", "Invoice", "All"),
    "status": ("Active", "Inactive"),
    "lineType": ("Comment", "Account", "Item", "Resource", "Value", "Charge", "Fixed Asset"),
}
TABLE_NAMES = {"customers": "Customer", "projects": "Job", "employees": "Employee", "salesInvoices": "Sales Header"}
PAYMENT_TERMS = (
    ("NET30", "Net 30", "30D"),
    ("NET45", "Net 45", "45D"),
    ("NET15", "Net 15", "15D"),
    ("NET60", "Net 60", "60D"),
    ("COD", "Due on receipt", "0D"),
)
# The revenue accounts of the chart of accounts that a services firm posts invoice lines to.
GL_ACCOUNTS = (
    ("40100", "Consulting Services Revenue"),
    ("40200", "Reimbursable Expenses Revenue"),
    ("40300", "Fixed Fee Revenue"),
)
LOCAL_CURRENCY = "USD"  # the company's LCY: customers in it carry an empty currencyCode, as in BC


def line_amount(quantity: Any, unit_price: Any) -> float:
    """Quantity times unit price, rounded to the cent half away from zero, as Business Central's amount rounding
    precision does (not float rounding, which turns 2.675 into 2.67)."""
    amount = Decimal(str(quantity or 0)) * Decimal(str(unit_price or 0))
    return float(amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def guid(kind: str, number: Any) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"{kind}:{number}"))


def _etag(row: dict[str, Any]) -> str:
    return 'W/"' + base64.b64encode(f"'{row['_version']};'".encode()).decode() + '"'


class BusinessCentralSandbox(SandboxApp):
    vendor = "businesscentral"

    def __init__(self, firm: Firm | None = None):
        self.entra = EntraTenant(
            tenant_id=TENANT_ID,
            client_id=DEMO_CREDENTIALS["client_id"],
            client_secret=DEMO_CREDENTIALS["client_secret"],
        )
        self.running_limit, self.queue_limit = RUNNING_LIMIT, QUEUE_LIMIT
        self.processing_seconds = 0.0
        self._slots = threading.BoundedSemaphore(RUNNING_LIMIT)
        self._waiting = 0
        self.queue_rejections = 0
        self._queue_lock = threading.Lock()
        super().__init__(firm)

    def set_queue(self, running: int, queued: int) -> None:
        """Shrink (or restore) the environment's request queue, for tests of its overflow."""
        self.running_limit, self.queue_limit = running, queued
        self._slots = threading.BoundedSemaphore(running)

    def routes(self) -> list[Rule]:
        return [
            Rule("/<tenant>/oauth2/v2.0/token", endpoint="token", methods=["POST"]),
            Rule(
                "/v2.0/<tenant>/<environment>/api/v2.0/<path:resource>",
                endpoint="api",
                methods=["GET", "POST", "PATCH", "DELETE"],
            ),
        ]

    # -- state -------------------------------------------------------------------------------------------------

    def reset_state(self) -> None:
        self.version = 0
        self.tables: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in SCHEMA}
        self.subscriptions: dict[str, dict[str, Any]] = {}
        self.deliveries: list[dict[str, Any]] = []
        self.handshakes: list[dict[str, Any]] = []
        self.next_invoice = 103001
        self.entra.revoke_all()
        self._seed()

    def _stamp(self, row: dict[str, Any], moment: datetime | None = None) -> None:
        self.version += 1
        row["_version"] = self.version
        row["lastModifiedDateTime"] = iso_z(moment or datetime.now(UTC))

    def _put(self, table: str, row: dict[str, Any], moment: datetime | None = None) -> dict[str, Any]:
        full = {name: None for name in SCHEMA[table]}
        full.update(row)
        self._stamp(full, moment)
        self.tables[table][full["id"]] = full
        return full

    def _seed(self) -> None:
        firm = self.firm
        for n, (code, name) in enumerate((("GBP", "British Pound"), ("EUR", "Euro")), 1):
            self._put("currencies", {"id": guid("currency", n), "code": code, "displayName": name}, SEED_EPOCH)
        for n, (code, name, formula) in enumerate(PAYMENT_TERMS, 1):
            self._put(
                "paymentTerms",
                {"id": guid("terms", n), "code": code, "displayName": name, "dueDateCalculation": formula},
                SEED_EPOCH,
            )
        for n, (number, name) in enumerate(GL_ACCOUNTS, 1):
            account = {"id": guid("account", n), "number": number, "displayName": name, "category": "Income"}
            self._put("accounts", {**account, "blocked": False}, SEED_EPOCH)
        terms = {r["displayName"]: r["id"] for r in self.tables["paymentTerms"].values()}
        currencies = {r["code"]: r["id"] for r in self.tables["currencies"].values()}
        step = 0
        for customer in firm.customers():
            address = customer.get("billing_address") or {}
            currency = customer.get("currency") if customer.get("currency") != LOCAL_CURRENCY else ""
            self._put(
                "customers",
                {
                    "id": guid("customer", customer["id"]),
                    "number": customer["number"],
                    "displayName": customer["name"],
                    "type": "Company",
                    "addressLine1": address.get("street"),
                    "addressLine2": "",
                    "city": address.get("city"),
                    "state": address.get("region") or "",
                    "country": address.get("country"),
                    "postalCode": address.get("postal_code"),
                    "phoneNumber": customer.get("phone"),
                    "email": "",
                    "website": f"www.{customer['domain']}" if customer.get("domain") else "",
                    "taxRegistrationNumber": "",
                    "currencyCode": currency,
                    "currencyId": currencies.get(currency, "00000000-0000-0000-0000-000000000000"),
                    "paymentTermsId": terms.get(customer.get("payment_terms") or "", terms["Net 30"]),
                    "blocked": " ",
                },
                SEED_EPOCH + timedelta(minutes=step),
            )
            step += 1
        for project in firm.erp_projects():
            self._put(
                "projects",
                {"id": guid("project", project["id"]), "number": project["code"], "displayName": project["name"][:100]},
                SEED_EPOCH + timedelta(minutes=step),
            )
            step += 1
        for person in firm.erp_people():
            self._put(
                "employees",
                {
                    "id": guid("employee", person["id"]),
                    "number": person["employee_number"],
                    "displayName": person["display_name"],
                    "givenName": person["first_name"],
                    "middleName": "",
                    "surname": person["last_name"],
                    "jobTitle": person["job_title"][:30],
                    "city": person["location"],
                    "country": person["country"],
                    "email": person["work_email"],
                    "employmentDate": person["hire_date"],
                    "terminationDate": person["termination_date"] or "0001-01-01",
                    "status": person["status"],
                    "birthDate": "0001-01-01",
                },
                SEED_EPOCH + timedelta(minutes=step),
            )
            step += 1
        by_firm_id = {c["id"]: c for c in firm.customers()}
        for invoice in firm.erp_invoices():
            customer = by_firm_id[invoice["customer_id"]]
            invoice_id = guid("invoice", invoice["number"])
            amount = float(invoice["amount"])
            self._put(
                "salesInvoices",
                {
                    "id": invoice_id,
                    "number": invoice["number"],
                    "externalDocumentNumber": "",
                    "invoiceDate": invoice["date"],
                    "postingDate": invoice["date"],
                    "dueDate": invoice["date"],
                    "customerId": guid("customer", customer["id"]),
                    "customerNumber": customer["number"],
                    "customerName": customer["name"],
                    "currencyCode": invoice["currency"] if invoice["currency"] != LOCAL_CURRENCY else "",
                    "status": "Paid",
                    "totalAmountExcludingTax": amount,
                    "totalAmountIncludingTax": amount,
                },
                SEED_EPOCH + timedelta(minutes=step),
            )
            self.tables["salesInvoiceLines"][guid("invoice-line", invoice["number"])] = {
                "id": guid("invoice-line", invoice["number"]),
                "documentId": invoice_id,
                "sequence": 10000,
                "lineType": "Account",
                "lineObjectNumber": "40100",
                "description": invoice["description"][:100],
                "quantity": float(invoice["quantity"]),
                "unitPrice": float(invoice["rate"]),
                "amountExcludingTax": amount,
                "netAmount": amount,
                "_version": 0,
            }
            step += 1

    def seed(self, volumes: dict[str, int]) -> dict[str, int]:
        """Grow customers to the given total with plain synthetic ones (volume and paging tests)."""
        unknown = set(volumes) - {"customers"}
        if unknown:
            raise ValueError(f"the businesscentral sandbox seeds customers, not {sorted(unknown)}")
        table = self.tables["customers"]
        for n in range(len(table), volumes.get("customers", len(table))):
            self._put(
                "customers",
                {
                    "id": guid("volume-customer", n),
                    "number": f"V{n:06d}",
                    "displayName": f"Volume Customer {n:06d}",
                    "type": "Company",
                    "blocked": " ",
                },
                SEED_EPOCH + timedelta(days=400, seconds=n),
            )
        return {"customers": len(table)}

    # -- the kit's hooks -----------------------------------------------------------------------------------------

    def authenticate(self, request: Request) -> Response | None:
        if not request.path.startswith("/v2.0/") or self.entra.bearer_valid(request):
            return None
        return json_response(
            {
                "error": {
                    "code": "Authentication_InvalidCredentials",
                    "message": "The server has rejected the client credentials.  CorrelationId:  "
                    + str(uuid.uuid4())
                    + ".",
                }
            },
            status=401,
            headers={
                "WWW-Authenticate": f'Bearer authorization_uri="https://login.microsoftonline.com/{TENANT_ID}/oauth2/authorize"'
            },
        )

    def rate_limited_response(self, request: Request, retry_after: float) -> Response:
        return self._too_many(retry_after)

    def _too_many(self, retry_after: float) -> Response:
        error = ApiError(429, "Application_TooManyRequests", "Too many requests reached. The request was throttled.")
        return json_response(error.body(), status=429, headers={"Retry-After": str(max(1, int(retry_after + 0.999)))})

    def server_error_response(self, request: Request) -> Response:
        return json_response(ApiError(500, "Internal_ServerError", "An unexpected error occurred.").body(), status=500)

    def not_found_response(self, request: Request) -> Response:
        return json_response(
            ApiError(
                404, "BadRequest_NotFound", f"No HTTP resource was found that matches the request URI '{request.url}'."
            ).body(),
            status=404,
        )

    def _dispatch(self, request: Request) -> Response:
        # The environment runs a few requests at once and queues the rest; a full queue answers 429.
        with self._queue_lock:
            if self._waiting >= self.running_limit + self.queue_limit:
                self.queue_rejections += 1
                return self._too_many(1)
            self._waiting += 1
        slots = self._slots
        try:
            with slots:
                if self.processing_seconds:
                    time.sleep(self.processing_seconds)
                return super()._dispatch(request)
        finally:
            with self._queue_lock:
                self._waiting -= 1

    # -- endpoints -----------------------------------------------------------------------------------------------

    def token(self, request: Request, tenant: str) -> Response:
        return self.entra.token_endpoint(request, tenant, scope_check=lambda resource: resource.rstrip("/") == RESOURCE)

    def api(self, request: Request, tenant: str, environment: str, resource: str) -> Response:
        if tenant != TENANT_ID or environment != ENVIRONMENT:
            error = ApiError(404, "NoEnvironment", f"Environment '{environment}' does not exist for tenant '{tenant}'.")
            return json_response(error.body(), status=404)
        root = f"{request.host_url.rstrip('/')}/v2.0/{tenant}/{environment}/api/v2.0"
        if resource == "$batch":
            return self._batch(request, root)
        body = request.get_data()
        status, headers, payload = self.handle(
            request.method, resource, request.args.to_dict(), dict(request.headers), body, root
        )
        if payload is None:
            return Response(b"", status=status, headers=headers)
        return json_response(payload, status=status, headers=headers)

    def handle(self, method, resource, args, headers, data: bytes, root) -> tuple[int, dict[str, str], Any]:
        headers = {k.lower(): v for k, v in headers.items()}
        try:
            payload = json.loads(data) if data else None
        except ValueError:
            return 400, {}, ApiError(400, "BadRequest", "Invalid Request Body").body()
        try:
            with self.lock:
                return self._operation(method, unquote(resource), args, headers, payload, root)
        except ApiError as error:
            return error.status, {}, error.body()
        except ODataError as error:
            return 400, {}, ApiError(400, "BadRequest", str(error)).body()

    def _operation(self, method, resource, args, headers, payload, root) -> tuple[int, dict[str, str], Any]:
        segments = _segments(resource)
        if segments[0][0] == "subscriptions":
            return self._subscriptions(method, segments, headers, payload, root)
        if segments[0][0] != "companies":
            raise ApiError(404, "BadRequest_NotFound", f"Resource not found for the segment '{segments[0][0]}'.")
        if len(segments) == 1:
            if segments[0][1]:
                raise ApiError(404, "BadRequest_NotFound", "Use the companies collection.")
            company = self._company()
            return (
                200,
                {},
                {
                    "@odata.context": f"{root}/$metadata#companies",
                    "value": [company] if matches(company, _filter(args)) else [],
                },
            )
        if segments[0][1] != COMPANY_ID:
            raise ApiError(404, "Internal_CompanyNotFound", f"Cannot find company with id '{segments[0][1]}'.")
        table, key = segments[1]
        if table not in SCHEMA or table == "salesInvoiceLines":
            raise ApiError(404, "BadRequest_NotFound", f"Resource not found for the segment '{table}'.")
        if len(segments) == 3:  # salesInvoices({id})/salesInvoiceLines[({line id})]
            if table != "salesInvoices" or segments[2][0] != "salesInvoiceLines":
                raise ApiError(404, "BadRequest_NotFound", f"Resource not found for the segment '{segments[2][0]}'.")
            return self._invoice_lines(method, self._get(table, key), segments[2][1], headers, payload, root)
        context = f"{root}/$metadata#companies({COMPANY_ID})/{table}"
        if table == "accounts" and method != "GET":  # the chart of accounts is read-only through the API
            raise ApiError(405, "BadRequest_MethodNotAllowed", f"'{method}' is not allowed on 'accounts'.")
        if key is None:
            if method == "GET":
                return self._list(table, args, headers, root, context)
            if method == "POST":
                row = self._create(table, payload)
                return (
                    201,
                    {"ETag": _etag(row)},
                    {
                        "@odata.context": f"{context}/$entity",
                        **self._render(table, row, [], expand=table == "salesInvoices"),
                    },
                )
            raise ApiError(405, "BadRequest_MethodNotAllowed", f"'{method}' is not allowed on '{table}'.")
        row = self._get(table, key)
        if method == "GET":
            return (
                200,
                {"ETag": _etag(row)},
                {"@odata.context": f"{context}/$entity", **self._render(table, row, parse_select(args.get("$select")))},
            )
        self._check_etag(headers, row)
        if method == "PATCH":
            self._update(table, row, payload)
            return 200, {"ETag": _etag(row)}, {"@odata.context": f"{context}/$entity", **self._render(table, row, [])}
        if method == "DELETE":
            del self.tables[table][key]
            self._notify(table, key, "deleted", root)
            return 204, {}, None
        raise ApiError(405, "BadRequest_MethodNotAllowed", f"'{method}' is not allowed here.")

    def _invoice_lines(self, method, invoice, line_key, headers, payload, root) -> tuple[int, dict[str, str], Any]:
        """A draft invoice's lines: listed, one added (POST) or one removed (DELETE with If-Match), as BC allows
        on a draft; the invoice's totals follow."""
        context = f"{root}/$metadata#companies({COMPANY_ID})/salesInvoices({invoice['id']})/salesInvoiceLines"
        if method == "GET" and line_key is None:
            lines = [self._render("salesInvoiceLines", r, []) for r in self._lines(invoice["id"])]
            return 200, {}, {"@odata.context": context, "value": lines}
        if method not in ("POST", "DELETE") or (method == "POST") != (line_key is None):
            raise ApiError(405, "BadRequest_MethodNotAllowed", f"'{method}' is not allowed here.")
        if invoice["status"] != "Draft":
            raise ApiError(
                400,
                "Application_DialogException",
                f"You cannot change the lines of invoice {invoice['number']}: its status is {invoice['status']}.",
            )
        if method == "POST":
            (line,) = self._add_lines(invoice, [self._line_values(payload)])
            self._retotal(invoice)
            return (
                201,
                {"ETag": _etag(line)},
                {"@odata.context": f"{context}/$entity", **self._render("salesInvoiceLines", line, [])},
            )
        line = self.tables["salesInvoiceLines"].get((line_key or "").lower())
        if line is None or line["documentId"] != invoice["id"]:
            raise ApiError(
                404,
                "Internal_RecordNotFound",
                f"The Sales Line does not exist. Identification fields and values: SystemId='{line_key}'",
            )
        self._check_etag(headers, line)
        del self.tables["salesInvoiceLines"][line["id"]]
        self._retotal(invoice)
        return 204, {}, None

    def _add_lines(self, invoice: dict[str, Any], parsed_lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if not parsed_lines:
            return []
        last = max((line["sequence"] for line in self._lines(invoice["id"])), default=0)
        added = []
        for offset, line in enumerate(parsed_lines, 1):
            amount = line_amount(line.get("quantity"), line.get("unitPrice"))
            line_id = str(uuid.uuid4())
            added.append(
                {
                    **{n: None for n in SCHEMA["salesInvoiceLines"]},
                    **line,
                    "id": line_id,
                    "documentId": invoice["id"],
                    "sequence": last + offset * 10000,
                    "amountExcludingTax": amount,
                    "netAmount": amount,
                    "_version": 0,
                }
            )
            self.tables["salesInvoiceLines"][line_id] = added[-1]
        return added

    def _retotal(self, invoice: dict[str, Any]) -> None:
        total = float(sum((Decimal(str(line["netAmount"])) for line in self._lines(invoice["id"])), Decimal(0)))
        if total != invoice.get("totalAmountExcludingTax"):
            invoice["totalAmountExcludingTax"] = invoice["totalAmountIncludingTax"] = total
            self._stamp(invoice)
            self._notify("salesInvoices", invoice["id"], "updated", None)

    def _company(self) -> dict[str, Any]:
        return {
            "id": COMPANY_ID,
            "systemVersion": "24.0.16410.18056",
            "timestamp": 8812,
            "name": self.firm.name,
            "displayName": self.firm.name,
            "businessProfileId": "",
            "systemCreatedAt": "2022-03-01T08:00:00Z",
            "systemCreatedBy": "00000000-0000-0000-0000-000000000001",
            "systemModifiedAt": "2024-01-02T09:00:00Z",
            "systemModifiedBy": "00000000-0000-0000-0000-000000000001",
        }

    def _get(self, table: str, key: str) -> dict[str, Any]:
        row = self.tables[table].get((key or "").lower())
        if row is None:
            raise ApiError(
                404,
                "Internal_RecordNotFound",
                f"The {TABLE_NAMES.get(table, table)} does not exist. Identification fields and values: SystemId='{key}'",
            )
        return row

    def _lines(self, invoice_id: str) -> list[dict[str, Any]]:
        return sorted(
            (r for r in self.tables["salesInvoiceLines"].values() if r["documentId"] == invoice_id),
            key=lambda r: r["sequence"],
        )

    @staticmethod
    def _check_etag(headers: dict[str, str], row: dict[str, Any]) -> None:
        presented = headers.get("if-match")
        if not presented:
            raise ApiError(
                400,
                "BadRequest_InvalidToken",
                "Could not validate the client concurrency token required by the service. Please provide a valid token in the client request.",
            )
        if presented != "*" and presented != _etag(row):
            raise ApiError(412, "Request_EntityChanged", "Another user has already changed the record.")

    def _list(self, table, args, headers, root, context) -> tuple[int, dict[str, str], Any]:
        select = parse_select(args.get("$select"))
        node = _filter(args)
        order = parse_orderby(args.get("$orderby"))
        for name in [*select, *filter_fields(node), *(f for f, _ in order)]:
            if name not in SCHEMA[table]:
                raise ApiError(
                    400,
                    "BadRequest_PropertyNotFound",
                    f"Could not find a property named '{name}' on type 'Microsoft.NAV.{table[:-1]}'.",
                )
        rows = sort_rows(
            [r for r in self.tables[table].values() if matches(r, node)],
            order or [("number" if "number" in SCHEMA[table] else "code", False)],
        )
        total = len(rows)
        skip = int(args.get("$skip") or 0)
        rows = rows[skip:]
        if args.get("$top"):
            rows = rows[: int(args["$top"])]
        requested = prefer(headers.get("prefer", ""), "odata.maxpagesize")
        page_size = (
            min(int(requested), MAX_PAGE_SIZE)
            if requested and requested.isdigit() and int(requested) > 0
            else MAX_PAGE_SIZE
        )
        offset = int(args.get("$skiptoken") or 0) if str(args.get("$skiptoken") or "0").isdigit() else 0
        expand = args.get("$expand") == "salesInvoiceLines" and table == "salesInvoices"
        page = [self._render(table, r, select, expand=expand) for r in rows[offset : offset + page_size]]
        for position in sorted(self.malformed_positions(len(page))):
            broken = dict(page[position])
            broken["lastModifiedDateTime"] = "0001-01-01T00:00:00Z" if position % 2 else "soon"
            broken["id"] = None if position % 2 == 0 else broken["id"]
            page[position] = broken
        body: dict[str, Any] = {"@odata.context": context, "value": page}
        if args.get("$count") == "true":
            body["@odata.count"] = total
        if offset + page_size < len(rows):
            query = {k: v for k, v in args.items() if k != "$skiptoken"}
            query["$skiptoken"] = str(offset + page_size)
            body["@odata.nextLink"] = f"{root}/companies({COMPANY_ID})/{table}?{urlencode(query)}"
        return 200, {"Preference-Applied": f"odata.maxpagesize={page_size}"} if requested else {}, body

    def _render(self, table: str, row: dict[str, Any], select: list[str], *, expand: bool = False) -> dict[str, Any]:
        names = select or list(SCHEMA[table])
        out: dict[str, Any] = {"@odata.etag": _etag(row)} if table != "salesInvoiceLines" else {}
        out.update({name: row.get(name) for name in names})
        out["id"] = row["id"]
        if expand:
            out["salesInvoiceLines"] = [self._render("salesInvoiceLines", r, []) for r in self._lines(row["id"])]
        return out

    # -- writes --------------------------------------------------------------------------------------------------

    def _values(self, table: str, payload: Any, *, creating: bool) -> dict[str, Any]:
        if not isinstance(payload, dict):
            raise ApiError(400, "BadRequest", "Invalid Request Body")
        values: dict[str, Any] = {}
        for name, value in payload.items():
            if name.startswith("@odata.") or (table == "salesInvoices" and name == "salesInvoiceLines"):
                continue
            spec = SCHEMA[table].get(name)
            if spec is None:
                raise ApiError(
                    400,
                    "BadRequest",
                    f"The property '{name}' does not exist on type 'Microsoft.NAV.{table[:-1]}'. Make sure to only use property names that are defined by the type.",
                )
            if (
                name in READ_ONLY
                or name in COMPUTED.get(table, set())
                and not (table == "salesInvoices" and name == "customerId")
            ):
                raise ApiError(400, "BadRequest_PropertyReadOnly", f"The property '{name}' is read-only.")
            kind, size = spec
            values[name] = _typed(name, kind, size, value)
        if table == "salesInvoices":
            self._invoice_customer(values, creating=creating)
        if "currencyCode" in values and table == "customers":
            code = values["currencyCode"] or ""
            found = next((r for r in self.tables["currencies"].values() if r["code"] == code), None)
            if code and found is None:
                raise ApiError(
                    400,
                    "Internal_RecordNotFound",
                    f"The Currency does not exist. Identification fields and values: Code='{code}'",
                )
            values["currencyId"] = found["id"] if found else "00000000-0000-0000-0000-000000000000"
        if values.get("paymentTermsId") and values["paymentTermsId"] not in self.tables["paymentTerms"]:
            raise ApiError(
                400,
                "Internal_RecordNotFound",
                f"The Payment Terms does not exist. Identification fields and values: SystemId='{values['paymentTermsId']}'",
            )
        return values

    def _invoice_customer(self, values: dict[str, Any], *, creating: bool) -> None:
        number, customer_id = values.get("customerNumber"), values.pop("customerId", None)
        customer = None
        if number:
            customer = next((c for c in self.tables["customers"].values() if c["number"] == number), None)
            if customer is None:
                raise ApiError(
                    400,
                    "Internal_RecordNotFound",
                    f"The Customer does not exist. Identification fields and values: No.='{number}'",
                )
        elif customer_id:
            customer = self.tables["customers"].get(customer_id)
            if customer is None:
                raise ApiError(
                    400,
                    "Internal_RecordNotFound",
                    f"The Customer does not exist. Identification fields and values: SystemId='{customer_id}'",
                )
        elif creating:
            raise ApiError(
                400,
                "Application_FieldValidationException",
                "Sell-to Customer No. must have a value in Sales Header: Document Type=Invoice, No.=. It cannot be zero or empty.",
            )
        if customer is not None:
            values.update(
                customerId=customer["id"], customerNumber=customer["number"], customerName=customer["displayName"]
            )

    def _check_unique(self, table: str, row: dict[str, Any]) -> None:
        key = "number" if table != "salesInvoices" else None
        if key and row.get(key):
            for other in self.tables[table].values():
                if other["id"] != row["id"] and other.get(key) == row[key]:
                    raise ApiError(
                        400,
                        "Internal_EntityWithSameKeyExists",
                        f"The record in table {TABLE_NAMES[table]} already exists. Identification fields and values: No.='{row[key]}'",
                    )

    def _create(self, table: str, payload: Any) -> dict[str, Any]:
        values = self._values(table, payload, creating=True)
        lines = payload.get("salesInvoiceLines") if table == "salesInvoices" else None
        parsed_lines = [self._line_values(line) for line in lines or []]
        row = {name: None for name in SCHEMA[table]}
        row.update(values, id=str(uuid.uuid4()))
        if table == "employees":
            row["displayName"] = " ".join(
                p for p in (row.get("givenName"), row.get("middleName"), row.get("surname")) if p
            )
            row["status"] = row.get("status") or "Active"
        if table == "customers":
            row["type"], row["blocked"] = row.get("type") or "Company", row.get("blocked") or " "
        if table == "salesInvoices":
            row["number"] = str(self.next_invoice)
            self.next_invoice += 1
            row["status"] = "Draft"
            row["invoiceDate"] = row.get("invoiceDate") or date.today().isoformat()
            row["postingDate"] = row.get("postingDate") or row["invoiceDate"]
            row["dueDate"] = row.get("dueDate") or row["invoiceDate"]
        elif not row.get("number"):
            raise ApiError(
                400,
                "Application_FieldValidationException",
                f"No. must have a value in {TABLE_NAMES[table]}: No.=. It cannot be zero or empty.",
            )
        self._check_unique(table, row)
        row = self._put(table, row)
        self._add_lines(row, parsed_lines)
        if table == "salesInvoices":
            total = float(sum((Decimal(str(line["netAmount"])) for line in self._lines(row["id"])), Decimal(0)))
            row["totalAmountExcludingTax"] = row["totalAmountIncludingTax"] = total
        self._notify(table, row["id"], "created", None)
        return row

    def _line_values(self, line: Any) -> dict[str, Any]:
        values = self._values("salesInvoiceLines", line, creating=True)
        if values.get("lineType") not in (None, "Comment") and not values.get("lineObjectNumber"):
            raise ApiError(
                400,
                "Application_FieldValidationException",
                "No. must have a value in Sales Line. It cannot be zero or empty.",
            )
        number, line_type = values.get("lineObjectNumber"), values.get("lineType")
        if line_type == "Account":
            if not any(a["number"] == number for a in self.tables["accounts"].values()):
                raise ApiError(
                    400,
                    "Internal_RecordNotFound",
                    f"The G/L Account does not exist. Identification fields and values: No.='{number}'",
                )
        elif line_type not in (None, "Comment"):
            # The firm sells its people's time, not stock: this company has no items, resources or fixed assets.
            raise ApiError(
                400,
                "Internal_RecordNotFound",
                f"The {line_type} does not exist. Identification fields and values: No.='{number}'",
            )
        return values

    def _update(self, table: str, row: dict[str, Any], payload: Any) -> None:
        values = self._values(table, payload, creating=False)
        candidate = {**row, **values}
        self._check_unique(table, candidate)
        changed = any(row.get(k) != v for k, v in values.items())
        row.update(values)
        if table == "employees":
            row["displayName"] = " ".join(
                p for p in (row.get("givenName"), row.get("middleName"), row.get("surname")) if p
            )
        if changed:
            self._stamp(row)
            self._notify(table, row["id"], "updated", None)

    # -- $batch --------------------------------------------------------------------------------------------------

    def _batch(self, request: Request, root: str) -> Response:
        body = request.get_json(force=True, silent=True)
        if request.method != "POST" or not isinstance(body, dict) or not isinstance(body.get("requests"), list):
            return json_response(
                ApiError(400, "BadRequest", "A $batch request must be JSON with a requests list.").body(), status=400
            )
        if len(body["requests"]) > MAX_BATCH:
            return json_response(
                ApiError(
                    400, "BadRequest", f"The number of operations in a batch exceeds the maximum of {MAX_BATCH}."
                ).body(),
                status=400,
            )
        responses = []
        for item in body["requests"]:
            url = str(item.get("url", ""))
            split = urlsplit(url)
            path = split.path.split("/api/v2.0/", 1)[-1].lstrip("/")
            data = json.dumps(item["body"]).encode() if item.get("body") is not None else b""
            status, headers, payload = self.handle(
                str(item.get("method", "GET")).upper(),
                path,
                dict(parse_qsl(split.query)),
                item.get("headers") or {},
                data,
                root,
            )
            answer = {
                "id": item.get("id"),
                "status": status,
                "headers": {
                    "content-type": "application/json; odata.metadata=minimal",
                    **{k.lower(): v for k, v in headers.items()},
                },
            }
            if payload is not None:
                answer["body"] = payload
            responses.append(answer)
        return json_response({"responses": responses})

    # -- subscriptions and notifications ---------------------------------------------------------------------

    def _subscriptions(self, method, segments, headers, payload, root) -> tuple[int, dict[str, str], Any]:
        key = (segments[0][1] or "").strip("'") or None
        context = f"{root}/$metadata#subscriptions"
        if key is None and method == "GET":
            return (
                200,
                {},
                {"@odata.context": context, "value": [self._subscription_view(s) for s in self.subscriptions.values()]},
            )
        if key is None and method == "POST":
            if not isinstance(payload, dict) or not payload.get("notificationUrl") or not payload.get("resource"):
                raise ApiError(400, "BadRequest", "notificationUrl and resource are required.")
            self._check_resource(payload["resource"])
            self._handshake(payload["notificationUrl"])
            subscription = {
                "subscriptionId": uuid.uuid4().hex,
                "notificationUrl": payload["notificationUrl"],
                "resource": payload["resource"],
                "userId": "00000000-0000-0000-0000-0000000000a1",
                "clientState": str(payload.get("clientState") or "")[:2048],
            }
            self._renew(subscription)
            self.subscriptions[subscription["subscriptionId"]] = subscription
            return (
                201,
                {"ETag": _etag(subscription)},
                {"@odata.context": f"{context}/$entity", **self._subscription_view(subscription)},
            )
        subscription = self.subscriptions.get(key or "")
        if subscription is None:
            raise ApiError(
                404,
                "Internal_RecordNotFound",
                f"The API Webhook Subscription does not exist. Identification fields and values: Subscription Id='{key}'",
            )
        if method == "GET":
            return 200, {"ETag": _etag(subscription)}, self._subscription_view(subscription)
        self._check_etag(headers, subscription)
        if method == "PATCH":
            changes = payload if isinstance(payload, dict) else {}
            if "notificationUrl" in changes:
                subscription["notificationUrl"] = changes["notificationUrl"]
            if "clientState" in changes:
                subscription["clientState"] = str(changes["clientState"] or "")[:2048]
            self._handshake(subscription["notificationUrl"])  # renewing requires the handshake again
            self._renew(subscription)
            return 200, {"ETag": _etag(subscription)}, self._subscription_view(subscription)
        if method == "DELETE":
            del self.subscriptions[key]
            return 204, {}, None
        raise ApiError(405, "BadRequest_MethodNotAllowed", f"'{method}' is not allowed here.")

    def _renew(self, subscription: dict[str, Any]) -> None:
        self.version += 1
        now = datetime.now(UTC)
        subscription.update(
            _version=self.version,
            lastModifiedDateTime=iso_z(now),
            expirationDateTime=iso_z(now + timedelta(days=SUBSCRIPTION_DAYS)),
        )

    @staticmethod
    def _subscription_view(subscription: dict[str, Any]) -> dict[str, Any]:
        return {"@odata.etag": _etag(subscription), **{k: v for k, v in subscription.items() if not k.startswith("_")}}

    @staticmethod
    def _check_resource(resource: str) -> None:
        parts = _segments(resource.split("/api/v2.0/", 1)[-1].lstrip("/"))
        if (
            len(parts) != 2
            or parts[0] != ("companies", COMPANY_ID)
            or parts[1][0] not in ("customers", "projects", "employees", "salesInvoices")
            or parts[1][1]
        ):
            raise ApiError(400, "BadRequest", f"The resource '{resource}' cannot be subscribed to.")

    def _handshake(self, url: str) -> None:
        if not is_loopback_url(url):
            raise ApiError(400, "Application_ValidationError", "The sandbox calls back to loopback URLs only.")
        token = secrets.token_urlsafe(24)
        record = {"url": url, "token": token, "status": None}
        self.handshakes.append(record)
        try:
            answer = requests.post(
                f"{url}{'&' if '?' in url else '?'}{urlencode({'validationToken': token})}", timeout=5
            )
            record["status"] = answer.status_code
            ok = answer.status_code == 200 and answer.text.strip() == token
        except requests.RequestException as exc:
            record["status"] = f"error: {type(exc).__name__}"
            ok = False
        if not ok:
            raise ApiError(
                400,
                "Application_ValidationError",
                f"The handshake with the notification URL '{url}' failed: it must answer 200 with the validationToken.",
            )

    def _notify(self, table: str, record_id: str, change: str, _root: str | None) -> None:
        resource = f"api/v2.0/companies({COMPANY_ID})/{table}"
        for subscription in list(self.subscriptions.values()):
            if subscription["resource"].split("/api/v2.0/", 1)[-1].lstrip("/") != resource.removeprefix("api/v2.0/"):
                continue
            notification = {
                "value": [
                    {
                        "subscriptionId": subscription["subscriptionId"],
                        "clientState": subscription["clientState"],
                        "expirationDateTime": subscription["expirationDateTime"],
                        "resource": f"{resource}({record_id})",
                        "changeType": change,
                        "lastModifiedDateTime": iso_z(datetime.now(UTC)),
                    }
                ]
            }
            body = json.dumps(notification, separators=(",", ":")).encode()
            delivery = {
                "url": subscription["notificationUrl"],
                "headers": {"Content-Type": "application/json"},
                "body": body.decode(),
                "status": None,
            }
            self.deliveries.append(delivery)
            deliver_webhook(delivery, body)


def _segments(resource: str) -> list[tuple[str, str | None]]:
    """`companies(x)/salesInvoices(y)/salesInvoiceLines` -> [(companies, x), (salesInvoices, y), (salesInvoiceLines, None)]."""
    out: list[tuple[str, str | None]] = []
    for part in [p for p in resource.strip("/").split("/") if p]:
        name, _, key = part.partition("(")
        out.append((name, key[:-1].strip("'").lower() if key.endswith(")") else None))
    return out or [("", None)]


def _filter(args: dict[str, str]) -> Any:
    return parse_filter(args["$filter"]) if args.get("$filter") else None


def _typed(name: str, kind: str, size: int, value: Any) -> Any:
    def invalid(expected: str) -> ApiError:
        return ApiError(400, "BadRequest", f"Cannot convert the literal '{value}' to the expected type '{expected}'.")

    if value is None:
        return None
    if kind in ("text", "code"):
        if not isinstance(value, str):
            raise invalid("Edm.String")
        if len(value) > size:
            raise ApiError(
                400,
                "Application_StringExceededLength",
                f"The length of the string is {len(value)}, but it must be less than or equal to {size} characters. Value: {value}",
            )
        return value.upper() if kind == "code" else value
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise invalid("Edm.Decimal")
        return float(value)
    if kind == "date":
        try:
            return date.fromisoformat(str(value)).isoformat()
        except ValueError:
            raise invalid("Edm.Date") from None
    if kind == "guid":
        try:
            return str(uuid.UUID(str(value)))
        except ValueError:
            raise invalid("Edm.Guid") from None
    if kind == "enum":
        if value not in ENUMS.get(name, ()):
            raise ApiError(400, "BadRequest", f"The value '{value}' is not valid for the enum '{name}'.")
        return value
    return value


def create_app(firm: Firm | None = None) -> BusinessCentralSandbox:
    return BusinessCentralSandbox(firm)
