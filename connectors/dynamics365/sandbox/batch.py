"""Dataverse `$batch`: multipart/mixed requests in, one HTTP answer a part out."""

from __future__ import annotations

import json
import re
import uuid
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from werkzeug.datastructures import Headers
from werkzeug.wrappers import Request, Response

from connectors.dynamics365.sandbox.schema import API, MAX_BATCH, ApiError, _error_response
from connectors.sandbox.odata import prefer


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


class DataverseBatch:
    """The $batch endpoint."""

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
