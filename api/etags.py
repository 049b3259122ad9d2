"""ETags of resources, and the If-Match check of every update (a lost update is refused, 412)."""

from __future__ import annotations

import hashlib
import json

from api.problems import ApiProblem


def etag_of(document) -> str:
    data = document.model_dump(mode="json") if hasattr(document, "model_dump") else document
    digest = hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:32]
    return f'"{digest}"'


def if_match(request, current: str) -> None:
    """An update that says which version it changes (If-Match: the ETag last read) is refused with 412
    when the resource has changed since; without If-Match the update applies as it stands."""
    header = request.headers.get("If-Match", "").strip()
    if not header:
        return
    wanted = [tag.strip().removeprefix("W/") for tag in header.split(",")]
    if "*" not in wanted and current not in wanted:
        raise ApiProblem(412, "It changed since you read it: read it again and repeat the update with its new ETag.")
