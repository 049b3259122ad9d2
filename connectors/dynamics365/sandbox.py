"""Dynamics 365 Sales sandbox: a local emulator of the Dataverse Web API v9.2 subset the connector and the official
`powerplatform-dataverse-client` use, seeded from the shared Firm.

Entra client-credentials tokens (`/{tenant}/oauth2/v2.0/token`), `accounts` and `opportunities` with `$select`,
`$filter`, `$orderby`, `$top`, `$count`, server-driven paging (`Prefer: odata.maxpagesize`, at most 5,000 a page,
`@odata.nextLink` with a `$skiptoken` paging cookie; `$skip` is refused), change tracking (`Prefer:
odata.track-changes` -> `@odata.deltaLink` with a `$deltatoken`, deleted rows as `$deletedEntity`), alternate-key
upsert with `If-Match: *` / `If-None-Match: *`, `$batch` (multipart, at most 1,000 requests, stops at the first
failure unless `Prefer: odata.continue-on-error`), the WinOpportunity and LoseOpportunity actions, the three 429
service-protection answers, and unsigned webhooks authenticated by WebhookKey, HttpHeader or HttpQueryString.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from werkzeug.datastructures import Headers
from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from connectors.sandbox.app import SandboxApp, deliver_webhook, is_loopback_url, json_response
from connectors.sandbox.entra import EntraTenant
from connectors.sandbox.firm import Firm
from connectors.sandbox.odata import (
    ODataError,
    filter_fields,
    iso_z,
    key_values,
    matches,
    parse_filter,
    parse_orderby,
    parse_select,
    prefer,
    sort_rows,
)

API = "/api/data/v9.2"
TENANT_ID = "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b"
DEMO_CREDENTIALS = {
    "tenant_id": TENANT_ID,
    "client_id": "51f81489-12ee-4a9e-aaae-a2591f45987d",
    "client_secret": "sgp~dataverse~demo~secret~Q8x",
    "authority": "http://127.0.0.1:8107",  # the sandbox serves Entra's token endpoint too
    "external_id_field": "new_externalid",
    "webhook_secret": "sgp-dataverse-webhook-key-3c1",
}
ORGANIZATION_ID = "0a1b2c3d-0000-4000-8000-00000000d365"
ORGANIZATION_NAME = "haldenrowe"
BUSINESS_UNIT_ID = "0a1b2c3d-0000-4000-8000-0000000000b0"
APPLICATION_USER_ID = "0a1b2c3d-0000-4000-8000-0000000000a1"
SEED_EPOCH = datetime(2024, 1, 2, 9, 0, 0, tzinfo=UTC)
MAX_PAGE_SIZE = 5000
MAX_BATCH = 1000
CONCURRENCY_LIMIT = 52
_NAMESPACE = uuid.UUID("2c8a4f5e-7b1d-4e3a-9f60-d365d365d365")

# ---------------------------------------------------------------------------------------------------------------
# (unverified) assumptions, kept in one place and mirrored by connectors/dynamics365/client.py:
# - `$skip` is answered 400 with code 0x80060888; a `$batch` of more than 1,000 requests 400 with 0x8004430D.
# - Updating an opportunity's statecode to Won/Lost is refused with 400 0x80040203; closing an opportunity that is
#   already closed through WinOpportunity/LoseOpportunity is refused with 400 0x80040203 "already closed".
# - Change tracking cannot be combined with $filter, $orderby or $top (400 0x80060888); a delta page has no
#   @odata.count. Paging cookies are opaque; the sandbox's carry an offset.
# - A 401 has an empty body and a WWW-Authenticate header naming the authority.
# ---------------------------------------------------------------------------------------------------------------

THROTTLE_MESSAGES = {
    "0x80072322": "Number of requests exceeded the limit of 6000 over time window of 300 seconds.",
    "0x80072321": "Combined execution time of incoming requests exceeded limit of 1,200,000 milliseconds over time "
    "window of 300 seconds. Decrease number of concurrent requests or reduce the duration of requests and try "
    "again later.",
    "0x80072326": "Number of concurrent requests exceeded the limit of 52.",
}


class ApiError(Exception):
    """A Dataverse error: `{"error": {"code": "0x...", "message": ...}}` with an HTTP status."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


# ---------------------------------------------------------------------------------------------------------------
# Schema
# ---------------------------------------------------------------------------------------------------------------


class Column:
    def __init__(self, kind: str, size: int = 0, options: dict[int, str] | None = None, target: str = ""):
        self.kind = kind  # guid string memo money int option datetime date bool lookup
        self.size = size
        self.options = options or {}
        self.target = target  # lookup: the entity set it points at

    @property
    def readonly(self) -> bool:
        return self.kind in ("guid", "datetime") or self.kind == "version"


STATE = {0: "Active", 1: "Inactive"}
PAYMENT_TERMS = {1: "Net 30", 2: "2% 10, Net 30", 3: "Net 45", 4: "Net 60"}
SALES_STAGES = {0: "Qualify", 1: "Develop", 2: "Propose", 3: "Close"}
OPPORTUNITY_STATES = {0: "Open", 1: "Won", 2: "Lost"}
OPPORTUNITY_STATUSES = {1: "In Progress", 2: "On Hold", 3: "Won", 4: "Canceled", 5: "Out-Sold"}


class Entity:
    def __init__(self, logical: str, entity_set: str, primary_id: str, primary_name: str, columns: dict[str, Column]):
        self.logical, self.entity_set, self.primary_id, self.primary_name = (
            logical,
            entity_set,
            primary_id,
            primary_name,
        )
        self.columns = columns
        self.keys: dict[str, tuple[str, ...]] = {}  # alternate key name -> its columns

    def lookups(self) -> dict[str, Column]:
        return {name: c for name, c in self.columns.items() if c.kind == "lookup"}


def _system(primary_id: str) -> dict[str, Column]:
    return {
        primary_id: Column("guid"),
        "createdon": Column("datetime"),
        "modifiedon": Column("datetime"),
        "versionnumber": Column("version"),
        "statecode": Column("option", options=STATE),
        "statuscode": Column("option", options={1: "Active", 2: "Inactive"}),
        "transactioncurrencyid": Column("lookup", target="transactioncurrencies"),
    }


ENTITIES: dict[str, Entity] = {
    "accounts": Entity(
        "account",
        "accounts",
        "accountid",
        "name",
        {
            **_system("accountid"),
            "name": Column("string", 160),
            "accountnumber": Column("string", 20),
            "websiteurl": Column("string", 200),
            "telephone1": Column("string", 50),
            "emailaddress1": Column("string", 100),
            "address1_line1": Column("string", 250),
            "address1_city": Column("string", 80),
            "address1_stateorprovince": Column("string", 50),
            "address1_postalcode": Column("string", 20),
            "address1_country": Column("string", 80),
            "paymenttermscode": Column("option", options=PAYMENT_TERMS),
            "description": Column("memo", 2000),
            "new_externalid": Column("string", 100),
        },
    ),
    "opportunities": Entity(
        "opportunity",
        "opportunities",
        "opportunityid",
        "name",
        {
            **_system("opportunityid"),
            "statecode": Column("option", options=OPPORTUNITY_STATES),
            "statuscode": Column("option", options=OPPORTUNITY_STATUSES),
            "name": Column("string", 300),
            "customerid": Column("lookup", target="accounts"),  # customer type: bound as customerid_account
            "parentaccountid": Column("lookup", target="accounts"),
            "estimatedvalue": Column("money"),
            "actualvalue": Column("money"),
            "estimatedclosedate": Column("date"),
            "actualclosedate": Column("date"),
            "closeprobability": Column("int"),
            "salesstage": Column("option", options=SALES_STAGES),
            "stepname": Column("string", 200),
            "description": Column("memo", 2000),
            "new_projectcode": Column("string", 100),
            "new_billingterms": Column("string", 100),
            "new_externalid": Column("string", 100),
        },
    ),
    "transactioncurrencies": Entity(
        "transactioncurrency",
        "transactioncurrencies",
        "transactioncurrencyid",
        "currencyname",
        {
            "transactioncurrencyid": Column("guid"),
            "isocurrencycode": Column("string", 5),
            "currencyname": Column("string", 100),
            "modifiedon": Column("datetime"),
            "versionnumber": Column("version"),
        },
    ),
}
ENTITIES["accounts"].keys = {"new_externalid_key": ("new_externalid",), "accountnumber_key": ("accountnumber",)}
ENTITIES["opportunities"].keys = {"new_externalid_key": ("new_externalid",)}
ENTITIES["transactioncurrencies"].keys = {"isocurrencycode_key": ("isocurrencycode",)}
BY_LOGICAL = {e.logical: e for e in ENTITIES.values()}
# Bind names that differ from the lookup column (a customer lookup is bound per target type).
BIND_ALIASES = {("opportunities", "customerid_account"): "customerid"}

FIRM_STAGES = {  # the firm's deal stage -> (statecode, statuscode, salesstage, stepname)
    "qualification": (0, 1, 0, "1-Qualify"),
    "needs_analysis": (0, 1, 1, "2-Develop"),
    "proposal": (0, 1, 2, "3-Propose"),
    "negotiation": (0, 1, 3, "4-Close"),
    "closed_won": (1, 3, 3, "4-Close"),
    "closed_lost": (2, 4, 3, "4-Close"),
}
FIRM_TERMS = {"Net 30": 1, "Net 45": 3, "Net 60": 4}


def guid(kind: str, number: int) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"{kind}:{number}"))


# ---------------------------------------------------------------------------------------------------------------
# The organization
# ---------------------------------------------------------------------------------------------------------------


class DataverseSandbox(SandboxApp):
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

    # -- state -------------------------------------------------------------------------------------------------

    def reset_state(self) -> None:
        self.tables: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in ENTITIES}
        self.version = 0
        self.tombstones: list[tuple[str, str, int]] = []  # (entity set, id, version when deleted)
        self.webhooks: list[dict[str, Any]] = []
        self.deliveries: list[dict[str, Any]] = []
        self.closures: list[dict[str, Any]] = []  # opportunityclose activities written by Win/LoseOpportunity
        self.entra.revoke_all()
        self._seed()

    def _next_version(self) -> int:
        self.version += 1
        return self.version

    def _seed(self) -> None:
        for number, (code, name) in enumerate((("USD", "US Dollar"), ("GBP", "Pound Sterling"), ("EUR", "Euro")), 1):
            self._store(
                "transactioncurrencies",
                {
                    "transactioncurrencyid": guid("currency", number),
                    "isocurrencycode": code,
                    "currencyname": name,
                },
                SEED_EPOCH,
            )
        currencies = {
            r["isocurrencycode"]: r["transactioncurrencyid"] for r in self.tables["transactioncurrencies"].values()
        }
        accounts: dict[int, str] = {}
        for index, company in enumerate(self.firm.crm_companies()):
            address = company.get("billing_address") or {}
            row = {
                "accountid": guid("account", company["id"]),
                "name": company["name"],
                "accountnumber": company.get("number"),
                "websiteurl": f"https://www.{company['domain']}" if company.get("domain") else None,
                "telephone1": company.get("phone"),
                "address1_line1": address.get("street"),
                "address1_city": address.get("city"),
                "address1_stateorprovince": address.get("region") or None,
                "address1_postalcode": address.get("postal_code"),
                "address1_country": address.get("country"),
                "paymenttermscode": FIRM_TERMS.get(company.get("payment_terms") or ""),
                "_transactioncurrencyid_value": currencies.get(company.get("currency"), currencies["USD"]),
                "statecode": 0,
                "statuscode": 1,
            }
            accounts[company["id"]] = self._store("accounts", row, SEED_EPOCH + timedelta(hours=index))["accountid"]
        offset = len(accounts)
        for index, deal in enumerate(self.firm.deals()):
            state, status, stage, step = FIRM_STAGES.get(deal["stage"], (0, 1, 0, "1-Qualify"))
            account = accounts.get(self.firm.crm_company_of(deal))
            row = {
                "opportunityid": guid("opportunity", deal["id"]),
                "name": deal["name"][:300],
                "_customerid_value": account,
                "_parentaccountid_value": account,
                "estimatedvalue": float(deal["amount"]),
                "actualvalue": float(deal["amount"]) if state == 1 else None,
                "estimatedclosedate": deal["close_date"],
                "actualclosedate": deal["close_date"] if state else None,
                "closeprobability": 100 if state == 1 else 0 if state == 2 else 25 * (stage + 1),
                "salesstage": stage,
                "stepname": step,
                "statecode": state,
                "statuscode": status,
                "new_projectcode": deal.get("project_code"),
                "new_billingterms": deal.get("billing_terms"),
                "_transactioncurrencyid_value": currencies.get(deal.get("currency"), currencies["USD"]),
            }
            self._store("opportunities", row, SEED_EPOCH + timedelta(hours=offset + index))

    def _store(self, entity_set: str, values: dict[str, Any], moment: datetime) -> dict[str, Any]:
        entity = ENTITIES[entity_set]
        row: dict[str, Any] = {}
        for name, column in entity.columns.items():
            row[f"_{name}_value" if column.kind == "lookup" else name] = None
        row.update(values)
        stamp = iso_z(moment)
        row.update(createdon=row.get("createdon") or stamp, modifiedon=stamp, versionnumber=self._next_version())
        self.tables[entity_set][row[entity.primary_id]] = row
        return row

    def seed(self, volumes: dict[str, int]) -> dict[str, int]:
        """Grow accounts or opportunities to the given totals with plain synthetic rows (volume and paging tests)."""
        unknown = set(volumes) - {"accounts", "opportunities"}
        if unknown:
            raise ValueError(f"the dynamics365 sandbox seeds accounts and opportunities, not {sorted(unknown)}")
        accounts = list(self.tables["accounts"])
        for entity_set, total in volumes.items():
            table = self.tables[entity_set]
            for n in range(len(table), total):
                moment = SEED_EPOCH + timedelta(days=400, seconds=n)
                if entity_set == "accounts":
                    self._store(
                        "accounts",
                        {
                            "accountid": guid("volume-account", n),
                            "name": f"Volume Account {n:06d}",
                            "statecode": 0,
                            "statuscode": 1,
                        },
                        moment,
                    )
                else:
                    self._store(
                        "opportunities",
                        {
                            "opportunityid": guid("volume-opportunity", n),
                            "name": f"Volume Opportunity {n:06d}",
                            "_customerid_value": accounts[n % len(accounts)],
                            "estimatedvalue": float(1000 + n % 50 * 250),
                            "statecode": 0,
                            "statuscode": 1,
                            "salesstage": 0,
                        },
                        moment,
                    )
        return {name: len(self.tables[name]) for name in ("accounts", "opportunities")}

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
            return self._metadata(resource, args, root)
        if name in ("WinOpportunity", "LoseOpportunity") and method == "POST":
            return self._close_opportunity(name, _json_body(data), root)
        entity = ENTITIES.get(name)
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

    # -- reads ---------------------------------------------------------------------------------------------------

    def _find(self, entity: Entity, key: str) -> dict[str, Any] | None:
        values = key_values(key)
        table = self.tables[entity.entity_set]
        if "" in values:
            return table.get(values[""])
        if tuple(sorted(values)) not in {tuple(sorted(cols)) for cols in entity.keys.values()}:
            raise ApiError(
                400,
                "0x80060888",
                f"The key '{','.join(values)}' is not an alternate key defined for the entity '{entity.logical}'.",
            )
        return next((r for r in table.values() if all(r.get(k) == v for k, v in values.items())), None)

    def _list(self, entity: Entity, args: dict[str, str], headers, root: str) -> tuple[int, dict[str, str], Any]:
        if "$skip" in args:
            raise ApiError(400, "0x80060888", "The query parameter $skip is not supported")
        select = parse_select(args.get("$select"))
        self._check_columns(entity, select)
        requested = prefer(headers, "odata.maxpagesize")
        page_size = MAX_PAGE_SIZE
        if requested and requested.isdigit() and 0 < int(requested) < MAX_PAGE_SIZE:
            page_size = int(requested)  # larger values are ignored: 5,000 is the most a page holds
        cookie = _read_cookie(args.get("$skiptoken"))
        tracking = "$deltatoken" in args or prefer(headers, "odata.track-changes") is not None or cookie.get("tracking")
        applied = [f"odata.maxpagesize={page_size}"] if requested else []
        table = self.tables[entity.entity_set]

        if tracking:
            if {"$filter", "$orderby", "$top", "$expand"} & set(args):
                raise ApiError(
                    400, "0x80060888", "Change tracking can't be used with $filter, $orderby, $top or $expand."
                )
            since = int(cookie.get("since", _delta_version(args.get("$deltatoken"))))
            upto = int(cookie.get("upto", self.version))
            rows: list[dict[str, Any]] = [r for r in table.values() if since < r["versionnumber"] <= upto]
            rows.sort(key=lambda r: r["versionnumber"])
            deleted = [
                {
                    "@odata.context": f"{root}/$metadata#{entity.entity_set}/$deletedEntity",
                    "id": rid,
                    "reason": "deleted",
                }
                for set_name, rid, version in self.tombstones
                if set_name == entity.entity_set and since < version <= upto and since > 0
            ]
            offset = int(cookie.get("offset", 0))
            everything = [self._render(entity, r, select, root, context=False) for r in rows] + deleted
            page = everything[offset : offset + page_size]
            self._corrupt(page, entity)
            body: dict[str, Any] = {"@odata.context": f"{root}/$metadata#{entity.entity_set}", "value": page}
            query = {k: v for k, v in args.items() if k in ("$select",)}
            if offset + page_size < len(everything):
                next_cookie = {"tracking": 1, "since": since, "upto": upto, "offset": offset + page_size}
                body["@odata.nextLink"] = _link(root, entity.entity_set, query, skiptoken=_cookie(next_cookie))
            else:
                token = f"{upto}!{datetime.now(UTC):%m/%d/%Y %H:%M:%S}"
                body["@odata.deltaLink"] = _link(root, entity.entity_set, {**query, "$deltatoken": token})
            return 200, {"Preference-Applied": ", ".join(["odata.track-changes", *applied])}, body

        node = parse_filter(args["$filter"]) if args.get("$filter") else None
        order = parse_orderby(args.get("$orderby"))
        self._check_columns(entity, [*filter_fields(node), *(f for f, _ in order)])
        rows = [r for r in table.values() if matches(r, node)]
        rows = sort_rows(rows, order or [(entity.primary_id, False)])
        if args.get("$top"):
            rows = rows[: int(args["$top"])]
        offset = int(cookie.get("offset", 0))
        page = [self._render(entity, r, select, root, context=False) for r in rows[offset : offset + page_size]]
        self._corrupt(page, entity)
        body = {"@odata.context": f"{root}/$metadata#{entity.entity_set}", "value": page}
        if args.get("$count") == "true":
            body["@odata.count"] = min(len(rows), MAX_PAGE_SIZE)
            body["@Microsoft.Dynamics.CRM.totalrecordcount"] = -1
            body["@Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded"] = len(rows) > MAX_PAGE_SIZE
        if offset + page_size < len(rows):
            query = {k: v for k, v in args.items() if k in ("$select", "$filter", "$orderby", "$count", "$top")}
            next_cookie = {"page": offset // page_size + 2, "offset": offset + page_size}
            body["@odata.nextLink"] = _link(root, entity.entity_set, query, skiptoken=_cookie(next_cookie))
        return 200, {"Preference-Applied": ", ".join(applied)} if applied else {}, body

    def _corrupt(self, page: list[dict[str, Any]], entity: Entity) -> None:
        for count, position in enumerate(sorted(self.malformed_positions(len(page)))):
            row = dict(page[position])
            if count % 2:
                row["modifiedon"] = "last tuesday"
            else:
                row[entity.primary_id] = None
            page[position] = row

    def _check_columns(self, entity: Entity, names) -> None:
        known = set(entity.columns) | {f"_{n}_value" for n, c in entity.columns.items() if c.kind == "lookup"}
        for name in names:
            if name not in known:
                raise ApiError(
                    400,
                    "0x80060888",
                    f"Could not find a property named '{name}' on type 'Microsoft.Dynamics.CRM.{entity.logical}'.",
                )

    def _render(
        self, entity: Entity, row: dict[str, Any], select: list[str], root: str, *, context: bool = True
    ) -> dict[str, Any]:
        names = select or [n for n in row]
        out: dict[str, Any] = {"@odata.etag": _etag(row)}
        if context:
            out["@odata.context"] = f"{root}/$metadata#{entity.entity_set}/$entity"
        for name in names:
            column = entity.columns.get(name)
            stored = f"_{name}_value" if column is not None and column.kind == "lookup" else name
            out[stored] = row.get(stored)
        out[entity.primary_id] = row[entity.primary_id]  # always returned, as Dataverse does
        return out

    def _metadata(self, resource: str, args: dict[str, str], root: str) -> tuple[int, dict[str, str], Any]:
        def definition(entity: Entity) -> dict[str, Any]:
            return {
                "LogicalName": entity.logical,
                "EntitySetName": entity.entity_set,
                "PrimaryIdAttribute": entity.primary_id,
                "PrimaryNameAttribute": entity.primary_name,
                "MetadataId": guid("metadata", list(ENTITIES).index(entity.entity_set)),
                "ChangeTrackingEnabled": True,
            }

        match = re.fullmatch(
            r"EntityDefinitions(?:\(LogicalName='(\w+)'\)(?:/(Keys|Attributes/Microsoft\.Dynamics\.CRM\.PicklistAttributeMetadata))?)?",
            resource,
        )
        if not match:
            raise ApiError(404, "0x8006088a", f"Resource not found for the segment '{resource}'.")
        logical, keys = match.groups()
        if logical is None:
            node = parse_filter(args["$filter"]) if args.get("$filter") else None
            rows = [definition(e) for e in ENTITIES.values() if matches(definition(e), node)]
            return 200, {}, {"@odata.context": f"{root}/$metadata#EntityDefinitions", "value": rows}
        entity = BY_LOGICAL.get(logical)
        if entity is None:
            raise ApiError(404, "0x80040217", f"Could not find an entity with the logical name '{logical}'.")
        if not keys:
            return 200, {}, definition(entity)
        if keys != "Keys":  # the option sets, which the official client reads to accept labels for choices
            value = [
                {
                    "LogicalName": name,
                    "OptionSet": {
                        "Options": [
                            {"Value": number, "Label": {"LocalizedLabels": [{"Label": label, "LanguageCode": 1033}]}}
                            for number, label in column.options.items()
                        ]
                    },
                }
                for name, column in entity.columns.items()
                if column.kind == "option"
            ]
            return (
                200,
                {},
                {"@odata.context": f"{root}/$metadata#EntityDefinitions('{logical}')/Attributes", "value": value},
            )
        value = [
            {"LogicalName": name, "SchemaName": name, "KeyAttributes": list(columns), "EntityKeyIndexStatus": "Active"}
            for name, columns in entity.keys.items()
        ]
        return 200, {}, {"@odata.context": f"{root}/$metadata#EntityDefinitions('{logical}')/Keys", "value": value}

    # -- writes --------------------------------------------------------------------------------------------------

    def _save(
        self,
        entity: Entity,
        key: str | None,
        body: Any,
        headers,
        root: str,
        *,
        creating_only: bool = False,
    ) -> tuple[int, dict[str, str], Any]:
        if not isinstance(body, dict):
            raise ApiError(400, "0x80048d19", "The request body must be a JSON object.")
        existing = self._find(entity, key) if key else None
        if_match, if_none_match = headers.get("If-Match"), headers.get("If-None-Match")
        if existing is None and if_match:
            raise ApiError(404, "0x80040217", f"{entity.logical} With Ids = {key} Does Not Exist")
        if existing is not None and if_none_match == "*":
            raise ApiError(412, "0x80040237", "A record with matching key values already exists.")
        if existing is not None and if_match not in (None, "*") and if_match != _etag(existing):
            raise ApiError(
                412, "0x80060882", "The version of the existing record doesn't match the RowVersion property provided."
            )
        values = self._values(entity, body, root)
        if entity.entity_set == "opportunities" and values.get("statecode") in (1, 2):
            current = existing.get("statecode") if existing else 0
            if values["statecode"] != current:
                raise ApiError(
                    400,
                    "0x80040203",
                    "An opportunity can't be closed by an update of its statecode; use the WinOpportunity or "
                    "LoseOpportunity action.",
                )
        now = datetime.now(UTC)
        if existing is None:
            if key and "" not in key_values(key):
                values.update(key_values(key))  # an upsert by alternate key creates the row with its key values
            elif key:
                values[entity.primary_id] = key_values(key)[""]
            values.setdefault(entity.primary_id, str(uuid.uuid4()))
            if values[entity.primary_id] in self.tables[entity.entity_set]:
                raise ApiError(412, "0x80040237", "A record with matching key values already exists.")
            self._check_unique_keys(entity, values, None)
            values.setdefault("statecode", 0)
            values.setdefault("statuscode", 1)
            row = self._store(entity.entity_set, values, now)
            status = 201
            self._notify(entity, row, "Create")
        else:
            self._check_unique_keys(entity, values, existing)
            existing.update(values)
            existing.update(modifiedon=iso_z(now), versionnumber=self._next_version())
            row, status = existing, 200
            self._notify(entity, row, "Update")
        entity_id = f"{root}/{entity.entity_set}({row[entity.primary_id]})"
        out_headers = {"OData-EntityId": entity_id, "ETag": _etag(row)}
        if (prefer(headers, "return") or "") == "representation":
            return status, out_headers, self._render(entity, row, [], root)
        return 204, out_headers, None

    def _check_unique_keys(self, entity: Entity, values: dict[str, Any], existing: dict[str, Any] | None) -> None:
        for columns in entity.keys.values():
            wanted = {c: values.get(c, existing.get(c) if existing else None) for c in columns}
            if any(v in (None, "") for v in wanted.values()):
                continue
            for row in self.tables[entity.entity_set].values():
                if row is not existing and all(row.get(c) == v for c, v in wanted.items()):
                    raise ApiError(412, "0x80040237", "A record with matching key values already exists.")

    def _values(self, entity: Entity, body: dict[str, Any], root: str) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, value in body.items():
            if name.startswith("@odata."):
                continue
            if name.endswith("@odata.bind"):
                column_name = name.removesuffix("@odata.bind")
                column_name = BIND_ALIASES.get((entity.entity_set, column_name), column_name)
                column = entity.columns.get(column_name)
                if column is None or column.kind != "lookup":
                    raise ApiError(
                        400,
                        "0x80060888",
                        f"An undeclared property '{name.removesuffix('@odata.bind')}' which only has property "
                        "annotations in the payload but no property value was found in the payload.",
                    )
                values[f"_{column_name}_value"] = self._resolve_bind(column, value, root)
                continue
            column = entity.columns.get(name)
            if column is None:
                raise ApiError(
                    400,
                    "0x80060888",
                    f"The property '{name}' does not exist on type 'Microsoft.Dynamics.CRM.{entity.logical}'. "
                    "Make sure to only use property names that are defined by the type.",
                )
            if column.kind in ("guid", "datetime", "version"):
                continue  # system columns: Dataverse ignores what a client sends for them
            values[name] = self._typed(entity, name, column, value)
        return values

    def _typed(self, entity: Entity, name: str, column: Column, value: Any) -> Any:
        def refuse(edm: str) -> ApiError:
            return ApiError(
                400,
                "0x80048d19",
                f"Error identified in Payload provided by the user for Entity :'{entity.entity_set}', For more "
                f"information on this error please follow this help link https://go.microsoft.com/fwlink/?linkid=2195293"
                f"  ---->  InnerException : Microsoft.OData.ODataException: Cannot convert the literal '{value}' to "
                f"the expected type '{edm}'.",
            )

        if value is None:
            return None
        if column.kind in ("string", "memo"):
            if not isinstance(value, str):
                raise refuse("Edm.String")
            if len(value) > column.size:
                raise ApiError(
                    400,
                    "0x80044331",
                    f"A validation error occurred. The length of the '{name}' attribute of the '{entity.logical}' "
                    f"entity exceeded the maximum allowed length of '{column.size}'.",
                )
            return value
        if column.kind == "money":
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise refuse("Edm.Decimal")
            return float(value)
        if column.kind in ("int", "option"):
            if isinstance(value, bool) or not isinstance(value, int):
                raise refuse("Edm.Int32")
            if column.kind == "option" and value not in column.options:
                raise ApiError(
                    400,
                    "0x80044331",
                    f"A validation error occurred. The value {value} of '{name}' on record of type "
                    f"'{entity.logical}' is outside the valid range.",
                )
            return value
        if column.kind == "date":
            try:
                return date.fromisoformat(str(value)[:10]).isoformat()
            except ValueError:
                raise refuse("Edm.Date") from None
        if column.kind == "bool":
            if not isinstance(value, bool):
                raise refuse("Edm.Boolean")
            return value
        return value

    def _resolve_bind(self, column: Column, value: Any, root: str) -> str:
        text = str(value or "")
        path = urlsplit(text).path if "://" in text else text
        path = path.split(API, 1)[-1].lstrip("/")
        name, _, key = path.partition("(")
        target = ENTITIES.get(name)
        if target is None or target.entity_set != column.target or not key.endswith(")"):
            raise ApiError(400, "0x80060888", f"The entity reference '{text}' is not valid for this lookup.")
        row = self._find(target, unquote(key[:-1]))
        if row is None:
            shown = unquote(key[:-1])
            if "=" in shown:
                raise ApiError(
                    404,
                    "0x80040217",
                    f"A record with the specified key values does not exist in {target.logical} entity",
                )
            raise ApiError(404, "0x80040217", f"{target.logical} With Ids = {shown} Does Not Exist")
        return row[target.primary_id]

    def _close_opportunity(self, action: str, body: Any, root: str) -> tuple[int, dict[str, str], Any]:
        won = action == "WinOpportunity"
        if not isinstance(body, dict) or not isinstance(body.get("OpportunityClose"), dict):
            raise ApiError(400, "0x80040203", f"{action} requires OpportunityClose and Status.")
        status = body.get("Status")
        allowed = (3,) if won else (4, 5)
        if status not in (*allowed, -1):
            raise ApiError(
                400,
                "0x80040203",
                f"{status} is not a valid status code for state code OpportunityState.{'Won' if won else 'Lost'}",
            )
        close = body["OpportunityClose"]
        bind = close.get("opportunityid@odata.bind")
        opportunities = ENTITIES["opportunities"]
        target_id = self._resolve_bind(Column("lookup", target="opportunities"), bind, root) if bind else None
        if target_id is None:
            raise ApiError(400, "0x80040203", "OpportunityClose must name its opportunity (opportunityid@odata.bind).")
        row = self.tables["opportunities"][target_id]
        if row["statecode"] != 0:
            raise ApiError(400, "0x80040203", "The opportunity is already closed.")
        amount = close.get("actualrevenue")
        row.update(
            statecode=1 if won else 2,
            statuscode=(3 if won else 4) if status == -1 else status,
            actualvalue=float(amount) if isinstance(amount, int | float) else row.get("estimatedvalue"),
            actualclosedate=str(close.get("actualend") or date.today().isoformat())[:10],
            closeprobability=100 if won else 0,
            modifiedon=iso_z(datetime.now(UTC)),
            versionnumber=self._next_version(),
        )
        self.closures.append(
            {"activityid": str(uuid.uuid4()), "subject": close.get("subject"), "opportunityid": target_id, "won": won}
        )
        self._notify(opportunities, row, "Win" if won else "Lose")
        return 204, {}, None

    # -- $batch --------------------------------------------------------------------------------------------------

    def _batch(self, request: Request, root: str) -> Response:
        match = re.search(r'boundary="?([^";]+)"?', request.headers.get("Content-Type", ""))
        if (
            request.method != "POST"
            or not match
            or not request.headers.get("Content-Type", "").startswith("multipart/mixed")
        ):
            return _error_response(
                ApiError(400, "0x80060888", "A $batch request must be multipart/mixed with a boundary.")
            )
        try:
            parts = _split_multipart(request.get_data(), match.group(1))
        except ValueError as exc:
            return _error_response(ApiError(400, "0x80060888", str(exc)))
        if len(parts) > MAX_BATCH:
            return _error_response(
                ApiError(400, "0x8004430D", f"Number of requests in a batch exceeded the limit of {MAX_BATCH}.")
            )
        continue_on_error = prefer(request.headers, "odata.continue-on-error") is not None
        answers: list[bytes] = []
        for part_headers, part_body in parts:
            if part_headers.get("Content-Type", "").startswith("multipart/mixed"):
                answers.append(
                    _http_part(
                        400,
                        {},
                        {"error": {"code": "0x80060888", "message": "Change sets are not supported by this sandbox."}},
                    )
                )
                if not continue_on_error:
                    break
                continue
            method, url, inner_headers, inner_body = _parse_http_request(part_body)
            split = urlsplit(url)
            path = split.path.split(API, 1)[-1].lstrip("/")
            args = dict(parse_qsl(split.query, keep_blank_values=True))
            status, out_headers, body = self.handle(method, unquote(path), args, inner_headers, inner_body, root)
            answers.append(_http_part(status, out_headers, body))
            if status >= 400 and not continue_on_error:
                break
        boundary = f"batchresponse_{uuid.uuid4()}"
        payload = b"".join(b"--" + boundary.encode() + b"\r\n" + a for a in answers) + f"--{boundary}--\r\n".encode()
        return Response(
            payload, status=200, content_type=f"multipart/mixed; boundary={boundary}", headers={"OData-Version": "4.0"}
        )

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


# ---------------------------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------------------------


def _etag(row: dict[str, Any]) -> str:
    return f'W/"{row["versionnumber"]}"'


def _json_body(data: bytes) -> Any:
    if not data:
        return None
    try:
        return json.loads(data)
    except ValueError:
        raise ApiError(400, "0x80048d19", "The request body is not valid JSON.") from None


def _cookie(values: dict[str, Any]) -> str:
    attributes = " ".join(f'{k}="{v}"' for k, v in values.items())
    return f'<cookie {attributes} istracking="{"True" if values.get("tracking") else "False"}" />'


def _read_cookie(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    values = dict(re.findall(r'(\w+)="([^"]*)"', text))
    if "offset" not in values or not values["offset"].isdigit():
        raise ApiError(400, "0x80060888", "The $skiptoken is not valid.")
    values.pop("istracking", None)
    return values


def _delta_version(token: str | None) -> int:
    if token is None:
        return 0
    head = token.split("!", 1)[0]
    if not head.isdigit():
        raise ApiError(400, "0x80060888", "The delta token is not valid.")
    return int(head)


def _link(root: str, entity_set: str, query: dict[str, str], *, skiptoken: str | None = None) -> str:
    params = dict(query)
    if skiptoken:
        params["$skiptoken"] = skiptoken
    return f"{root}/{entity_set}?" + "&".join(f"{k}={quote(str(v), safe=',()')}" for k, v in params.items())


def _response(status: int, headers: dict[str, str], body: Any) -> Response:
    headers = {"OData-Version": "4.0", **headers}
    if body is None:
        return Response(b"", status=status, headers=headers)
    return json_response(body, status=status, headers=headers)


def _error_response(error: ApiError) -> Response:
    return _response(error.status, {}, {"error": {"code": error.code, "message": error.message}})


def _split_multipart(data: bytes, boundary: str) -> list[tuple[Headers, bytes]]:
    """The parts of a multipart body as (headers, body)."""
    marker = b"--" + boundary.encode()
    if marker not in data:
        raise ValueError("The $batch body does not contain its boundary.")
    parts = []
    for chunk in data.split(marker)[1:]:
        if chunk.startswith(b"--"):
            break
        chunk = chunk.lstrip(b"\r\n")
        head, _, body = chunk.partition(b"\r\n\r\n")
        headers = Headers()
        for line in head.decode("utf-8", "replace").split("\r\n"):
            if ":" in line:
                name, _, value = line.partition(":")
                headers.add(name.strip(), value.strip())
        parts.append((headers, body.rstrip(b"\r\n") if not body.endswith(b"\r\n\r\n") else body[:-2]))
    return parts


def _parse_http_request(data: bytes) -> tuple[str, str, Headers, bytes]:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("utf-8", "replace").split("\r\n")
    method, url, *_ = (lines[0].split(" ") + ["", ""])[:3]
    headers = Headers()
    for line in lines[1:]:
        if ":" in line:
            name, _, value = line.partition(":")
            headers.add(name.strip(), value.strip())
    return method.upper(), url, headers, body.strip()


_REASONS = {
    200: "OK",
    201: "Created",
    204: "No Content",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    412: "Precondition Failed",
    429: "Too Many Requests",
    500: "Internal Server Error",
}


def _http_part(status: int, headers: dict[str, str], body: Any) -> bytes:
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}", "OData-Version: 4.0"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    payload = b""
    if body is not None:
        lines.append("Content-Type: application/json; odata.metadata=minimal")
        payload = json.dumps(body, separators=(",", ":"), default=_json_default).encode()
    inner = ("\r\n".join(lines) + "\r\n\r\n").encode() + payload
    return b"Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n" + inner + b"\r\n"


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    return str(value)


def create_app(firm: Firm | None = None) -> DataverseSandbox:
    return DataverseSandbox(firm)
