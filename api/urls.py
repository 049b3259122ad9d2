"""The API's one NinjaAPI: /api/v1/ on a partner's host, its OpenAPI document and rendered docs."""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied
from django.http import Http404
from ninja import NinjaAPI, Swagger
from ninja.errors import AuthenticationError, HttpError, ValidationError

from api.access import KeyAuth
from api.problems import PROBLEM_TYPE, ApiProblem, problem_for, problem_response
from api.routes import partner, workspace
from api.schemas import Problem

logger = logging.getLogger(__name__)

# Errors any authenticated operation may answer, and those of writes and updates.
COMMON_ERRORS = {
    "400": "The request could not be read (for example NUL characters).",
    "401": "No key, or a key that is unknown, revoked or expired.",
    "403": "The key's scopes or its creator's role do not allow this.",
    "404": "No such resource for this key.",
    "422": "The request's values are not valid.",
    "429": "Too many calls a minute for this key or this client; wait Retry-After seconds.",
}
WRITE_ERRORS = {"409": "The resource's state does not allow this now (or an Idempotency-Key is in use)."}
UPDATE_ERRORS = {"412": "The resource changed since the ETag in If-Match was read."}
IDEMPOTENCY_HEADER = {
    "in": "header",
    "name": "Idempotency-Key",
    "required": False,
    "schema": {"type": "string", "maxLength": 255, "pattern": "^[!-~]{1,255}$"},
    "description": "A repeated key answers the first response again, for 24 hours.",
}


class PortalApi(NinjaAPI):
    def get_openapi_schema(self, *, path_prefix=None, path_params=None):
        schema = super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params)
        schema["info"]["description"] = (
            "Partner keys manage clients, plans, template deployments, usage and statements; client keys "
            "(and partner keys, for their clients) reach one workspace. Errors are RFC 9457 problem documents."
        )
        schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = Problem.model_json_schema()
        problem = {PROBLEM_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
        for operations in schema["paths"].values():
            for method, operation in operations.items():
                responses = operation.setdefault("responses", {})
                wanted = dict(COMMON_ERRORS)
                if method in ("post", "patch", "put", "delete"):
                    wanted.update(WRITE_ERRORS)
                if method == "patch":
                    wanted.update(UPDATE_ERRORS)
                if method == "post":
                    operation.setdefault("parameters", []).append(dict(IDEMPOTENCY_HEADER))
                for status, description in wanted.items():
                    responses.setdefault(status, {"description": description})
                for status, response in responses.items():
                    if int(status) >= 400:
                        response["content"] = problem
                responses["429"]["headers"] = {
                    "Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait"}
                }
        return schema


api = PortalApi(
    title="Integration portal API",
    version="1",
    urls_namespace="api-v1",
    auth=KeyAuth(),
    docs=Swagger(),
    docs_url="/docs",
    openapi_url="/openapi.json",
)


@api.get("/", auth=None, include_in_schema=False)
def index(request):
    """Where a person who opens /api/v1/ finds the reference."""
    return {"openapi": "/api/v1/openapi.json", "docs": "/api/v1/docs"}


api.add_router("", partner.router)
api.add_router("", workspace.router)


@api.exception_handler(ApiProblem)
def _problem(request, error: ApiProblem):
    return problem_for(error, instance=request.path)


@api.exception_handler(ValidationError)
def _invalid(request, error: ValidationError):
    errors = [
        {"loc": [str(part) for part in item.get("loc", [])], "msg": str(item.get("msg", "")), "type": item.get("type")}
        for item in error.errors
    ]
    return problem_response(422, "The request's values are not valid.", instance=request.path, errors=errors)


@api.exception_handler(AuthenticationError)
def _unauthenticated(request, error):
    detail = getattr(request, "api_refusal", "") or "Send an API key as “Authorization: Bearer <key>”."
    return problem_response(401, detail, instance=request.path, headers={"WWW-Authenticate": "Bearer"})


@api.exception_handler(HttpError)
def _http_error(request, error: HttpError):
    return problem_response(error.status_code, str(error), instance=request.path)


@api.exception_handler(Http404)
def _not_found(request, error):
    return problem_response(404, "No such resource.", instance=request.path)


@api.exception_handler(PermissionDenied)
def _forbidden(request, error):
    return problem_response(403, str(error) or "Not allowed.", instance=request.path)


@api.exception_handler(Exception)
def _server_error(request, error):
    logger.exception("API operation failed: %s %s", request.method, request.path)
    return problem_response(500, "Something went wrong on our side; it has been logged.", instance=request.path)
