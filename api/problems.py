"""RFC 9457 problem details: every error the API answers is application/problem+json."""

from __future__ import annotations

import json

from django.http import HttpResponse

PROBLEM_TYPE = "application/problem+json"
TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    412: "Precondition failed",
    413: "Request too large",
    422: "Unprocessable content",
    428: "Precondition required",
    429: "Too many requests",
    500: "Internal server error",
}


class ApiProblem(Exception):
    """Raised anywhere under an API operation; answered as a problem document by the API's handler."""

    def __init__(self, status: int, detail: str = "", *, title: str = "", headers: dict | None = None, **extra):
        super().__init__(detail or title or TITLES.get(status, ""))
        self.status = status
        self.title = title or TITLES.get(status, "Error")
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra


def problem_response(
    status: int, detail: str = "", *, title: str = "", headers: dict | None = None, instance: str = "", **extra
) -> HttpResponse:
    body = {"type": "about:blank", "title": title or TITLES.get(status, "Error"), "status": status}
    if detail:
        body["detail"] = detail
    if instance:
        body["instance"] = instance
    body.update(extra)
    response = HttpResponse(json.dumps(body), status=status, content_type=PROBLEM_TYPE)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def problem_for(error: ApiProblem, instance: str = "") -> HttpResponse:
    return problem_response(
        error.status, error.detail, title=error.title, headers=error.headers, instance=instance, **error.extra
    )
