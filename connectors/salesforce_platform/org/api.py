"""The Salesforce platform's REST routes: OAuth token, versions, limits, describe, sObjects, SOQL and Collections."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from typing import Any

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from connectors.salesforce_platform.org.schema import DAILY_API_LIMIT, ORG_ID, SUPPORTED_VERSIONS, USER_ID, ApiError
from connectors.salesforce_platform.org.state import PlatformOrg
from connectors.sandbox.app import SandboxApp, json_response


def _rule(path: str, endpoint: str, methods: list[str]) -> Rule:
    # simple-salesforce calls `query/` and `sobjects/Opportunity/` with a trailing slash; Salesforce accepts both.
    return Rule(path, endpoint=endpoint, methods=methods, strict_slashes=False)


class PlatformSandbox(SandboxApp):
    """The REST API of one org. Subclasses set `vendor`, `org_class`, `credentials` and implement `seed`."""

    vendor = "salesforce-platform"

    org_class: type[PlatformOrg] = PlatformOrg

    credentials: dict[str, str] = {}

    org: PlatformOrg

    def routes(self) -> list[Rule]:
        api = "/services/data/v<version>"
        return [
            _rule("/services/oauth2/token", "token", ["POST"]),
            _rule("/services/data", "versions", ["GET"]),
            _rule(f"{api}", "resources", ["GET"]),
            _rule(f"{api}/limits", "limits", ["GET"]),
            _rule(f"{api}/sobjects", "global_describe", ["GET"]),
            _rule(f"{api}/sobjects/<object_name>", "sobject", ["GET", "POST"]),
            _rule(f"{api}/sobjects/<object_name>/describe", "describe", ["GET"]),
            _rule(f"{api}/sobjects/<object_name>/<record_id>", "record", ["GET", "PATCH", "DELETE"]),
            _rule(f"{api}/sobjects/<object_name>/<field_name>/<path:value>", "upsert_one", ["GET", "PATCH"]),
            _rule(f"{api}/query", "query", ["GET"]),
            _rule(f"{api}/queryAll", "query_all", ["GET"]),
            _rule(f"{api}/query/<locator>", "query_more", ["GET"]),
            _rule(f"{api}/queryAll/<locator>", "query_more", ["GET"]),
            _rule(f"{api}/composite/sobjects", "collections", ["POST", "PATCH"]),
            _rule(f"{api}/composite/sobjects/<object_name>/<field_name>", "collections_upsert", ["PATCH"]),
            _rule(f"{api}/tooling/sobjects/CustomField", "tooling_custom_field", ["POST"]),
        ]

    def reset_state(self) -> None:
        self.org = self.org_class(self.firm)

    # -- how Salesforce says "no" --------------------------------------------------------------------------------
    def rate_limited_response(self, request: Request, retry_after: float) -> Response:
        # Salesforce never answers 429: an exhausted API allowance is 403 REQUEST_LIMIT_EXCEEDED, no Retry-After.
        return self._error(ApiError(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."))

    def server_error_response(self, request: Request) -> Response:
        error = ApiError(
            500,
            "UNKNOWN_EXCEPTION",
            "An unexpected error occurred. Please include this ErrorId if you contact support: 1730522944-4211 "
            "(-1283416584)",
        )
        return self._error(error)

    def not_found_response(self, request: Request) -> Response:
        return self._error(ApiError(404, "NOT_FOUND", "The requested resource does not exist"))

    def method_not_allowed_response(self, request: Request) -> Response:
        return self._error(
            ApiError(405, "METHOD_NOT_ALLOWED", f"HTTP Method '{request.method}' not allowed. Allowed are GET,PATCH")
        )

    def _error(self, error: ApiError) -> Response:
        return json_response(error.body(), status=error.status, headers=self._limit_headers())

    def _limit_headers(self) -> dict[str, str]:
        return {"Sforce-Limit-Info": f"api-usage={self.org.api_usage}/{DAILY_API_LIMIT}"}

    def _json(self, data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        return json_response(data, status=status, headers={**self._limit_headers(), **(headers or {})})

    def _authorize(self, request: Request, version: str | None = None) -> Response | None:
        """Check the version and the Bearer session, and count the call against the daily allowance."""
        if version is not None and version not in SUPPORTED_VERSIONS:
            return self.not_found_response(request)
        header = request.headers.get("Authorization", "")
        token = header[7:].strip() if header[:7].lower() == "bearer " else ""
        if not token or not self.org.token_valid(token):
            return self._error(ApiError(401, "INVALID_SESSION_ID", "Session expired or invalid"))
        with self.org.lock:
            self.org.api_usage += 1
            if self.org.api_usage > DAILY_API_LIMIT:
                return self._error(ApiError(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."))
        return None

    # -- OAuth ----------------------------------------------------------------------------------------------------
    def token(self, request: Request) -> Response:
        form = request.form
        client_id, client_secret = form.get("client_id", ""), form.get("client_secret", "")
        if request.authorization and request.authorization.type == "basic":  # client credentials in the header
            client_id = request.authorization.username or client_id
            client_secret = request.authorization.password or client_secret
        grant = form.get("grant_type", "")

        def refuse(error: str, description: str) -> Response:
            return json_response({"error": error, "error_description": description}, status=400)

        if grant not in ("password", "client_credentials"):
            return refuse("unsupported_grant_type", "grant type not supported")
        if not hmac.compare_digest(client_id, self.credentials["client_id"]):
            return refuse("invalid_client_id", "client identifier invalid")
        if not hmac.compare_digest(client_secret, self.credentials["client_secret"]):
            return refuse("invalid_client", "invalid client credentials")
        if grant == "password" and not (
            hmac.compare_digest(form.get("username", ""), self.credentials["username"])
            and hmac.compare_digest(form.get("password", ""), self.credentials["password"])
        ):
            return refuse("invalid_grant", "authentication failure")
        issued_at = str(int(time.time() * 1000))
        identity = f"https://login.salesforce.com/id/{ORG_ID}/{USER_ID}"
        signature = base64.b64encode(
            hmac.new(client_secret.encode(), (identity + issued_at).encode(), hashlib.sha256).digest()
        ).decode()
        body = {
            "access_token": self.org.issue_token(),
            "instance_url": request.host_url.rstrip("/"),
            "id": identity,
            "token_type": "Bearer",
            "issued_at": issued_at,
            "signature": signature,
        }
        if grant == "client_credentials":
            body["scope"] = "api"
        return json_response(body)

    # -- discovery ---------------------------------------------------------------------------------------------
    def versions(self, request: Request) -> Response:
        return json_response(
            [{"label": f"Release {v}", "url": f"/services/data/v{v}", "version": v} for v in SUPPORTED_VERSIONS]
        )

    def resources(self, request: Request, version: str) -> Response:
        if denied := self._authorize(request, version):
            return denied
        names = ("limits", "query", "queryAll", "sobjects", "composite")
        return self._json({name: f"/services/data/v{version}/{name}" for name in names})

    def limits(self, request: Request, version: str) -> Response:
        if denied := self._authorize(request, version):
            return denied
        return self._json(
            {"DailyApiRequests": {"Max": DAILY_API_LIMIT, "Remaining": max(0, DAILY_API_LIMIT - self.org.api_usage)}}
        )

    def global_describe(self, request: Request, version: str) -> Response:
        if denied := self._authorize(request, version):
            return denied
        return self._json(
            {
                "encoding": "UTF-8",
                "maxBatchSize": 200,
                "sobjects": [self._sobject_summary(name, version) for name in self.org.schema],
            }
        )

    def describe(self, request: Request, version: str, object_name: str) -> Response:
        if denied := self._authorize(request, version):
            return denied
        if object_name not in self.org.schema:
            return self._error(ApiError(404, "NOT_FOUND", "The requested resource does not exist"))
        summary = self._sobject_summary(object_name, version)
        summary["fields"] = [field.describe() for field in self.org.schema[object_name].values()]
        return self._json(summary)

    # -- records ------------------------------------------------------------------------------------------------
    def sobject(self, request: Request, version: str, object_name: str) -> Response:
        if denied := self._authorize(request, version):
            return denied
        if object_name not in self.org.schema:
            return self._error(ApiError(404, "NOT_FOUND", "The requested resource does not exist"))
        if request.method == "GET":
            return self._json({"objectDescribe": self._sobject_summary(object_name, version), "recentItems": []})
        values = request.get_json(force=True, silent=True)
        if not isinstance(values, dict):
            return self._error(ApiError(400, "JSON_PARSER_ERROR", "The request body is not a JSON object."))
        try:
            result = self.org.save_many([(object_name, values, "create")], all_or_none=True, version=version)[0]
        except ApiError as error:
            return self._error(error)
        if not result["success"]:
            return self._json(_as_api_errors(result), status=400)
        return self._json(result, status=201)

    def record(self, request: Request, version: str, object_name: str, record_id: str) -> Response:
        if denied := self._authorize(request, version):
            return denied
        if object_name not in self.org.schema:
            return self.not_found_response(request)
        if request.method == "DELETE":
            return Response(status=204) if self.org.delete(object_name, record_id) else self.not_found_response(request)
        if request.method == "PATCH":
            values = request.get_json(force=True, silent=True)
            if not isinstance(values, dict):
                return self._error(ApiError(400, "JSON_PARSER_ERROR", "The request body is not a JSON object."))
            try:
                action = f"update:{record_id}"
                result = self.org.save_many([(object_name, values, action)], all_or_none=True, version=version)[0]
            except ApiError as error:
                return self._error(error)
            if not result["success"]:
                status = 404 if result["errors"][0]["statusCode"] in ("MALFORMED_ID", "ENTITY_IS_DELETED") else 400
                return self._json(_as_api_errors(result), status=status)
            return Response(status=204, headers=self._limit_headers())
        with self.org.lock:
            found = self.org._find_by_id(object_name, record_id)
            if found is None:
                return self.not_found_response(request)
            row = self.org._render(object_name, found, list(self.org.schema[object_name]), version)
        return self._json(row)

    def upsert_one(self, request: Request, version: str, object_name: str, field_name: str, value: str) -> Response:
        if denied := self._authorize(request, version):
            return denied
        field = self.org.schema.get(object_name, {}).get(field_name)
        if field is None or not (field.external_id or field.type == "id"):
            return self.not_found_response(request)
        with self.org.lock:
            matches = [
                r
                for r in self.org._stored_rows(object_name)
                if not r["IsDeleted"] and str(r.get(field_name) or "").lower() == value.lower()
            ]
            if len(matches) > 1:
                urls = [f"/services/data/v{version}/sobjects/{object_name}/{r['Id']}" for r in matches]
                return self._json(urls, status=300)
            if request.method == "GET":
                if not matches:
                    return self.not_found_response(request)
                return self._json(
                    self.org._render(object_name, matches[0], list(self.org.schema[object_name]), version)
                )
        values = request.get_json(force=True, silent=True)
        if not isinstance(values, dict):
            return self._error(ApiError(400, "JSON_PARSER_ERROR", "The request body is not a JSON object."))
        values = {**values, field_name: value}
        try:
            action = f"upsert:{field_name}"
            result = self.org.save_many([(object_name, values, action)], all_or_none=True, version=version)[0]
        except ApiError as error:
            return self._error(error)
        if not result["success"]:
            return self._json(_as_api_errors(result), status=400)
        return self._json(result, status=201 if result["created"] else 200)

    # -- SOQL -------------------------------------------------------------------------------------------------------
    def query(self, request: Request, version: str) -> Response:
        return self._query(request, version, include_deleted=False)

    def query_all(self, request: Request, version: str) -> Response:
        return self._query(request, version, include_deleted=True)

    def _query(self, request: Request, version: str, *, include_deleted: bool) -> Response:
        if denied := self._authorize(request, version):
            return denied
        soql = request.args.get("q", "")
        if not soql.strip():
            return self._error(ApiError(400, "MALFORMED_QUERY", "A query string has to be specified"))
        try:
            result = self.org.run_query(
                soql, include_deleted=include_deleted, batch_size=_batch_size(request), version=version
            )
        except ApiError as error:
            return self._error(error)
        return self._json(self._maybe_malformed(result))

    def query_more(self, request: Request, version: str, locator: str) -> Response:
        if denied := self._authorize(request, version):
            return denied
        try:
            result = self.org.query_more(locator, version)
        except ApiError as error:
            return self._error(error)
        return self._json(self._maybe_malformed(result))

    def _maybe_malformed(self, result: dict[str, Any]) -> dict[str, Any]:
        """Fault injection: serve some records of the page without an Id or with a non-date modstamp."""
        positions = self.malformed_positions(len(result["records"]))
        if not positions:
            return result
        records = list(result["records"])
        for n, position in enumerate(sorted(positions)):
            broken = dict(records[position])
            if n % 2 == 0 or "SystemModstamp" not in broken:
                broken.pop("Id", None)
                broken["attributes"] = {"type": broken.get("attributes", {}).get("type")}
            else:
                broken["SystemModstamp"] = "last Tuesday"
            records[position] = broken
        return {**result, "records": records}

    # -- Tooling API: custom fields ----------------------------------------------------------------------------
    def tooling_custom_field(self, request: Request, version: str) -> Response:
        if denied := self._authorize(request, version):
            return denied
        body = request.get_json(force=True, silent=True)
        if not isinstance(body, dict):
            return self._error(ApiError(400, "JSON_PARSER_ERROR", "The request body is not a JSON object."))
        try:
            return self._json(self.org.custom_field_create(body.get("FullName"), body.get("Metadata")), status=201)
        except ApiError as error:
            return self._error(error)

    # -- sObject Collections ---------------------------------------------------------------------------------------
    def collections(self, request: Request, version: str) -> Response:
        if denied := self._authorize(request, version):
            return denied
        body = request.get_json(force=True, silent=True)
        try:
            records, all_or_none = _collection_body(body)
            items = []
            for record in records:
                object_name = (record.get("attributes") or {}).get("type")
                if object_name not in self.org.schema:
                    raise ApiError(400, "INVALID_TYPE", f"sObject type '{object_name}' is not supported.")
                if request.method == "POST":
                    if record.get("id") or record.get("Id"):
                        raise ApiError(400, "INVALID_FIELD", "Can't specify id in an insert call")
                    items.append((object_name, record, "create"))
                else:
                    record_id = record.get("id") or record.get("Id")
                    if not record_id:
                        raise ApiError(400, "MISSING_ARGUMENT", "Id not specified in an update call")
                    items.append((object_name, record, f"update:{record_id}"))
            return self._json(self.org.save_many(items, all_or_none=all_or_none, version=version))
        except ApiError as error:
            return self._error(error)

    def collections_upsert(self, request: Request, version: str, object_name: str, field_name: str) -> Response:
        if denied := self._authorize(request, version):
            return denied
        field = self.org.schema.get(object_name, {}).get(field_name)
        if object_name not in self.org.schema:
            return self._error(ApiError(400, "INVALID_TYPE", f"sObject type '{object_name}' is not supported."))
        if field is None or not field.external_id:
            return self._error(
                ApiError(
                    400,
                    "INVALID_FIELD",
                    f"Field name provided, {field_name} is not an External ID or indexed field for {object_name}",
                )
            )
        body = request.get_json(force=True, silent=True)
        try:
            records, all_or_none = _collection_body(body)
            for record in records:
                if (record.get("attributes") or {}).get("type") != object_name:
                    raise ApiError(400, "INVALID_TYPE", f"All records must be of type {object_name}")
            items = [(object_name, record, f"upsert:{field_name}") for record in records]
            return self._json(self.org.save_many(items, all_or_none=all_or_none, version=version))
        except ApiError as error:
            return self._error(error)

    def _sobject_summary(self, object_name: str, version: str) -> dict[str, Any]:
        base = f"/services/data/v{version}/sobjects/{object_name}"
        return {
            "name": object_name,
            "label": object_name,
            "keyPrefix": self.org.key_prefixes[object_name],
            "createable": True,
            "updateable": True,
            "queryable": True,
            "custom": object_name.endswith("__c"),
            "urls": {"sobject": base, "describe": f"{base}/describe", "rowTemplate": f"{base}/{{ID}}"},
        }


def _as_api_errors(result: dict[str, Any]) -> list[dict[str, Any]]:
    """A failed SaveResult as the REST error array single-record calls answer with."""
    return [{"message": e["message"], "errorCode": e["statusCode"], "fields": e["fields"]} for e in result["errors"]]


def _collection_body(body: Any) -> tuple[list[dict[str, Any]], bool]:
    if not isinstance(body, dict) or not isinstance(body.get("records"), list):
        raise ApiError(400, "JSON_PARSER_ERROR", "The request body must be {allOrNone, records: [...]}")
    records = body["records"]
    if len(records) > 200:
        # The 200-record cap is documented; the code and wording are assumed (see client.py's (unverified) block).
        raise ApiError(
            400, "EXCEEDED_ID_LIMIT", "record limit reached. cannot submit more than 200 records into this call"
        )
    if not all(isinstance(r, dict) for r in records):
        raise ApiError(400, "JSON_PARSER_ERROR", "Each record must be a JSON object")
    return records, bool(body.get("allOrNone", False))


def _batch_size(request: Request) -> int:
    """Sforce-Query-Options: batchSize=N, honoured between 200 and 2,000 (default 2,000)."""
    match = re.search(r"batchSize\s*=\s*(\d+)", request.headers.get("Sforce-Query-Options", ""))
    if not match:
        return 2000
    return max(200, min(2000, int(match.group(1))))
