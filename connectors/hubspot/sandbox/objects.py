"""HubSpot CRM v3 object endpoints: list, read, create, update, search, batch and v4 association reads."""

from __future__ import annotations

import json
from typing import Any

from werkzeug.wrappers import Request, Response

from connectors.base import iso_utc_millis
from connectors.hubspot.records import parse_hubspot_datetime
from connectors.hubspot.sandbox.schema import (
    BATCH_MAX,
    LIST_MAX,
    SEARCH_MAX,
    SEARCH_RESULT_CAP,
    HubSpotError,
    _now,
)


def _csv(values: list[str]) -> list[str]:
    return [name.strip() for value in values for name in value.split(",") if name.strip()]


def _body(request: Request) -> dict[str, Any]:
    data = request.get_json(force=True, silent=True)
    if not isinstance(data, dict):
        raise HubSpotError(400, "VALIDATION_ERROR", "Invalid input JSON on line 1")
    return data


def _association_ids(associations: Any) -> list[str]:
    if not isinstance(associations, list):
        return []
    return [
        str((a.get("to") or {}).get("id"))
        for a in associations
        if isinstance(a, dict) and (a.get("to") or {}).get("id")
    ]


def _validation_error(problems: list[dict[str, Any]]) -> HubSpotError:
    summary = [
        {
            "isValid": False,
            "message": p["message"],
            "error": p["code"],
            "name": p["in"],
            "localizedErrorMessage": p["message"],
        }
        for p in problems
    ]
    category = (
        "CONFLICT" if all(p["code"] == "DUPLICATE_UNIQUE_PROPERTY_VALUE" for p in problems) else "VALIDATION_ERROR"
    )
    status = 409 if category == "CONFLICT" else 400
    return HubSpotError(status, category, f"Property values were not valid: {json.dumps(summary)}", problems)


def _batch_error(
    category: str,
    message: str,
    context: dict[str, list[str]],
    item: dict[str, Any] | None = None,
    details: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    context = dict(context)
    if item is not None and item.get("objectWriteTraceId"):
        context["objectWriteTraceId"] = [str(item["objectWriteTraceId"])]
    return {
        "status": "error",
        "category": category,
        "message": message,
        "context": context,
        "errors": details or [],
        "links": {},
    }


def _sort_key(schema: dict[str, Any], record: dict[str, Any], name: str) -> tuple[bool, Any]:
    value = record["properties"].get(name)
    prop = schema.get(name)
    if value is None or prop is None:
        return (False, 0)
    if prop.type in ("datetime", "date"):
        parsed = parse_hubspot_datetime(value)
        return (parsed is not None, parsed.timestamp() if parsed else 0)
    if prop.type == "number":
        try:
            return (True, float(value))
        except ValueError:
            return (False, 0)
    return (True, value.lower())


class HubSpotObjects:
    """The /crm/v3/objects endpoints over `self.portal`."""

    def objects(self, request: Request, object_type: str) -> Response:
        if denied := self._authorize(request):
            return denied
        try:
            object_name = self._object_type(object_type)
            if request.method == "POST":
                return self._create_one(request, object_name)
            return self._list(request, object_name)
        except HubSpotError as error:
            return self._error(error)

    def _list(self, request: Request, object_name: str) -> Response:
        try:
            limit = int(request.args.get("limit", 10))
        except ValueError:
            raise HubSpotError(400, "VALIDATION_ERROR", "limit must be a number") from None
        limit = max(1, min(limit, LIST_MAX))  # capped, not refused: see client.py's (unverified) block
        after = request.args.get("after", "")
        archived = request.args.get("archived", "false").lower() == "true"
        properties = _csv(request.args.getlist("properties"))
        associations = _csv(request.args.getlist("associations"))
        portal = self.portal
        with portal.lock:
            records = sorted(
                (r for r in portal.objects[object_name].values() if r["archived"] == archived),
                key=lambda r: int(r["id"]),
            )
            if after:
                if not after.isdigit():
                    raise HubSpotError(400, "VALIDATION_ERROR", f"Invalid paging cursor: {after}")
                records = [r for r in records if int(r["id"]) >= int(after)]
            page = records[:limit]
            results = [portal.render(object_name, r, properties, associations) for r in page]
        body: dict[str, Any] = {"results": self._maybe_malformed(results)}
        if len(records) > limit:
            next_after = str(int(page[-1]["id"]) + 1)
            query = f"limit={limit}&after={next_after}"
            body["paging"] = {
                "next": {"after": next_after, "link": f"{request.host_url}crm/v3/objects/{object_name}?{query}"}
            }
        return self._json(body)

    def _create_one(self, request: Request, object_name: str) -> Response:
        data = _body(request)
        properties = data.get("properties") or {}
        portal = self.portal
        with portal.lock:
            problems = portal.validate(object_name, properties, None)
            if problems:
                raise _validation_error(problems)
            portal.begin_events()
            record = portal.apply(object_name, properties, None, _association_ids(data.get("associations")))
            portal.flush_events()
            return self._json(portal.render(object_name, record, list(properties)), status=201)

    def one_object(self, request: Request, object_type: str, object_id: str) -> Response:
        if denied := self._authorize(request):
            return denied
        portal = self.portal
        try:
            object_name = self._object_type(object_type)
            with portal.lock:
                id_property = request.args.get("idProperty")
                if id_property:
                    record = portal.find_by(object_name, id_property, object_id)
                else:
                    record = portal.objects[object_name].get(object_id)
                if record is None or record["archived"]:
                    raise HubSpotError(404, "OBJECT_NOT_FOUND", "Object not found.  objectId are usually numeric.")
                if request.method == "GET":
                    properties = _csv(request.args.getlist("properties"))
                    associations = _csv(request.args.getlist("associations"))
                    return self._json(portal.render(object_name, record, properties, associations))
                properties = _body(request).get("properties") or {}
                problems = portal.validate(object_name, properties, record)
                if problems:
                    raise _validation_error(problems)
                portal.begin_events()
                portal.apply(object_name, properties, record)
                portal.flush_events()
                return self._json(portal.render(object_name, record, list(properties)))
        except HubSpotError as error:
            return self._error(error)

    def search(self, request: Request, object_type: str) -> Response:
        if denied := self._authorize(request, search=True):
            return denied
        portal = self.portal
        try:
            object_name = self._object_type(object_type)
            data = _body(request)
            groups = data.get("filterGroups") or []
            if len(groups) > 5 or sum(len(g.get("filters", [])) for g in groups) > 18:
                raise HubSpotError(400, "VALIDATION_ERROR", "Too many filter groups or filters (5 groups, 18 filters)")
            limit = int(data.get("limit") or 10)
            if limit > SEARCH_MAX:
                raise HubSpotError(400, "VALIDATION_ERROR", f"limit must be at most {SEARCH_MAX}")
            after = int(data.get("after") or 0)
            if after + limit > SEARCH_RESULT_CAP:
                # The 10,000-result ceiling is documented; the answer is assumed (client.py's (unverified) block).
                raise HubSpotError(400, "VALIDATION_ERROR", f"Search results are limited to {SEARCH_RESULT_CAP}")
            sorts = data.get("sorts") or []
            with portal.lock:
                records = [
                    r
                    for r in portal.objects[object_name].values()
                    if not r["archived"] and portal.matches(object_name, r, groups)
                ]
                records.sort(key=lambda r: int(r["id"]))
                if sorts:
                    sort = sorts[0]
                    name = sort.get("propertyName") if isinstance(sort, dict) else str(sort).lstrip("-")
                    descending = (
                        str(sort.get("direction", "ASCENDING")).upper() == "DESCENDING"
                        if isinstance(sort, dict)
                        else str(sort).startswith("-")
                    )
                    records.sort(key=lambda r: _sort_key(portal.schema[object_name], r, name), reverse=descending)
                page = records[after : after + limit]
                results = [portal.render(object_name, r, data.get("properties") or None) for r in page]
            body: dict[str, Any] = {"total": len(records), "results": self._maybe_malformed(results)}
            if after + limit < len(records):
                body["paging"] = {"next": {"after": str(after + limit)}}
            return self._json(body)
        except HubSpotError as error:
            return self._error(error)
        except (TypeError, ValueError):
            return self._error(HubSpotError(400, "VALIDATION_ERROR", "Invalid input JSON on line 1"))

    def batch(self, request: Request, object_type: str, action: str) -> Response:
        if denied := self._authorize(request):
            return denied
        try:
            object_name = self._object_type(object_type)
            if action not in ("create", "update", "upsert", "read", "archive"):
                return self.not_found_response(request)
            data = _body(request)
            inputs = data.get("inputs")
            if not isinstance(inputs, list) or not all(isinstance(i, dict) for i in inputs):
                raise HubSpotError(400, "VALIDATION_ERROR", "Invalid input JSON: inputs must be a list of objects")
            if len(inputs) > BATCH_MAX:
                raise HubSpotError(400, "VALIDATION_ERROR", f"Batch input must have at most {BATCH_MAX} items")
            with self.portal.lock:
                if action == "read":
                    return self._batch_read(object_name, data)
                if action == "archive":
                    return self._batch_archive(object_name, inputs)
                return self._batch_write(object_name, action, inputs)
        except HubSpotError as error:
            return self._error(error)

    def _batch_read(self, object_name: str, data: dict[str, Any]) -> Response:
        portal = self.portal
        id_property = data.get("idProperty")
        results, missing = [], []
        for item in data["inputs"]:
            key = str(item.get("id", ""))
            record = (
                portal.find_by(object_name, id_property, key) if id_property else portal.objects[object_name].get(key)
            )
            if record is None or record["archived"]:
                missing.append(key)
            else:
                results.append(portal.render(object_name, record, data.get("properties") or None))
        errors = []
        if missing:
            errors.append(
                _batch_error(
                    "OBJECT_NOT_FOUND",
                    "Could not get some objects, they may be deleted or not exist.",
                    {"ids": missing},
                )
            )
        return self._batch_response(results, errors, ok_status=200)

    def _batch_archive(self, object_name: str, inputs: list[dict[str, Any]]) -> Response:
        for item in inputs:
            record = self.portal.objects[object_name].get(str(item.get("id", "")))
            if record is not None:
                record["archived"] = True
        return Response(status=204)

    def _batch_write(self, object_name: str, action: str, inputs: list[dict[str, Any]]) -> Response:
        portal = self.portal
        traced = all(item.get("objectWriteTraceId") for item in inputs)
        plans: list[tuple[dict[str, Any], dict[str, Any] | None, bool] | dict[str, Any]] = []
        if action == "upsert":
            id_properties = {item.get("idProperty") for item in inputs}
            if len(id_properties) != 1 or not all(
                p and p in portal.schema[object_name] and portal.schema[object_name][p].unique for p in id_properties
            ):
                raise HubSpotError(
                    400, "VALIDATION_ERROR", "idProperty must name one property with unique values for every input"
                )
            keys = [str(item.get("id", "")).lower() for item in inputs]
            if len(set(keys)) != len(keys):
                raise HubSpotError(400, "VALIDATION_ERROR", "Duplicate IDs found in batch input")
        for item in inputs:
            properties = dict(item.get("properties") or {})
            existing = None
            if action == "update":
                key = str(item.get("id", ""))
                id_property = item.get("idProperty")
                existing = (
                    portal.find_by(object_name, id_property, key)
                    if id_property
                    else portal.objects[object_name].get(key)
                )
                if existing is None or existing["archived"]:
                    plans.append(
                        _batch_error(
                            "OBJECT_NOT_FOUND", "Object not found.  objectId are usually numeric.", {"ids": [key]}, item
                        )
                    )
                    continue
            elif action == "upsert":
                id_property, key = item["idProperty"], str(item.get("id", ""))
                existing = portal.find_by(object_name, id_property, key)
                properties[id_property] = key
            problems = portal.validate(object_name, properties, existing)
            if problems:
                error = _validation_error(problems)
                plans.append(_batch_error(error.category, error.message, {}, item, problems))
                continue
            plans.append((properties, existing, action == "upsert"))
        errors = [p for p in plans if isinstance(p, dict)]
        if errors and not traced:
            # Without objectWriteTraceId HubSpot cannot say which input failed: the whole batch is refused.
            first = errors[0]
            raise HubSpotError(400, first["category"], first["message"], first.get("errors"))
        results = []
        portal.begin_events()
        for item, plan in zip(inputs, plans, strict=True):
            if isinstance(plan, dict):
                continue
            properties, existing, upsert = plan
            record = portal.apply(object_name, properties, existing, _association_ids(item.get("associations")))
            rendered = portal.render(object_name, record, list(properties))
            if item.get("objectWriteTraceId"):
                rendered["objectWriteTraceId"] = item["objectWriteTraceId"]
            if upsert:
                rendered["new"] = existing is None
            results.append(rendered)
        portal.flush_events()
        return self._batch_response(results, errors, ok_status=201 if action == "create" else 200)

    def _batch_response(self, results: list[dict[str, Any]], errors: list[dict[str, Any]], ok_status: int) -> Response:
        stamp = iso_utc_millis(_now())
        body: dict[str, Any] = {"status": "COMPLETE", "results": results, "startedAt": stamp, "completedAt": stamp}
        if errors:
            body["numErrors"] = len(errors)
            body["errors"] = errors
            return self._json(body, status=207)
        return self._json(body, status=ok_status)

    def association_read(self, request: Request, from_type: str, to_type: str) -> Response:
        if denied := self._authorize(request):
            return denied
        try:
            if self._object_type(from_type) != "deals" or self._object_type(to_type) != "companies":
                raise HubSpotError(400, "VALIDATION_ERROR", "This sandbox reads deal-to-company associations only")
            inputs = _body(request).get("inputs") or []
            results, missing = [], []
            with self.portal.lock:
                for item in inputs:
                    deal = self.portal.objects["deals"].get(str(item.get("id", "")))
                    if deal is None or not deal["companies"]:
                        missing.append(str(item.get("id", "")))
                        continue
                    to = [
                        {
                            "toObjectId": int(company),
                            "associationTypes": [
                                {"category": "HUBSPOT_DEFINED", "typeId": 5, "label": "Primary"},
                                {"category": "HUBSPOT_DEFINED", "typeId": 341, "label": None},
                            ],
                        }
                        for company in deal["companies"]
                    ]
                    results.append({"from": {"id": deal["id"]}, "to": to})
            errors = []
            if missing:
                errors.append(_batch_error("OBJECT_NOT_FOUND", "No associations found", {"fromObjectId": missing}))
            return self._batch_response(results, errors, ok_status=200)
        except HubSpotError as error:
            return self._error(error)

    def _maybe_malformed(self, results: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Fault injection: some records of the page lose their id or get a non-date updatedAt."""
        positions = self.malformed_positions(len(results))
        if not positions:
            return results
        results = list(results)
        for n, position in enumerate(sorted(positions)):
            broken = dict(results[position])
            if n % 2 == 0:
                broken.pop("id", None)
            else:
                broken["updatedAt"] = "yesterday-ish"
            results[position] = broken
        return results
