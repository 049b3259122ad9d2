"""A Salesforce org's records: stored and lazily computed tables, tokens, and the writes with their checks."""

from __future__ import annotations

import re
import secrets
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from connectors.salesforce_platform.org.query import SoqlExecution
from connectors.salesforce_platform.org.schema import (
    _NUMBER_TYPES,
    _STRING_TYPES,
    ORG_ID,
    ApiError,
    Field,
    _is_date,
    _is_number,
    _record_error,
    _stored,
    now_utc,
    salesforce_id,
    salesforce_number,
    sf_datetime,
)
from connectors.salesforce_platform.rest import parse_salesforce_datetime
from connectors.sandbox.lazy import SeededTable


# Lazy tables: seeded rows computed from their index, so 100,000 of them cost no memory
class LazyTable(SeededTable):
    """Seeded rows of one object computed by `make(index)`, plus the rows written through the API.

    Seeded row i has id salesforce_id(prefix, i + 1) and its Id and SystemModstamp grow with i, so a query in
    SystemModstamp or Id order reads them in index order. Rows created through the API get numbers from
    CREATED_BASE on; a seeded row changed through the API is kept in `changed` and replaces the computed one.
    """

    CREATED_BASE = 1_000_000_000

    def __init__(self, prefix: str, make: Callable[[int], dict[str, Any]], count: int):
        super().__init__(make, count)
        self.prefix = prefix
        self.next_number = self.CREATED_BASE + 1

    def index_of(self, record_id: str) -> int | None:
        number = salesforce_number(record_id)
        if number is None or not 0 < number <= self.count or record_id[:3] != self.prefix:
            return None
        return number - 1

    def row(self, key: int | str) -> dict[str, Any]:
        if isinstance(key, str):
            return self.created[key]
        return self.changed.get(key) or self.make(key)

    def put(self, record: dict[str, Any]) -> None:
        index = self.index_of(record["Id"])
        if index is None:
            self.created[record["Id"]] = record
        else:
            self.changed[index] = record

    def stored(self) -> list[dict[str, Any]]:
        return [*self.changed.values(), *self.created.values()]


class PlatformOrg(SoqlExecution):
    """All mutable state of one sandbox org, guarded by one lock (the WSGI server is threaded).

    Subclasses set `schema` and `key_prefixes`, seed in `_seed`, may serve large objects from `lazy_tables`,
    and add their package's rules in `_validate` and `_after_apply`.
    """

    schema: dict[str, dict[str, Field]] = {}

    key_prefixes: dict[str, str] = {}

    def __init__(self, firm: Any = None):
        self.firm = firm
        self.lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            # The org's own copy of its schema: custom fields created through the Tooling API live in it.
            self.schema = {name: dict(fields) for name, fields in type(self).schema.items()}
            self.records: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in self.schema}
            self.counters = {name: 0 for name in [*self.schema, "locator", "event"]}
            self.tokens: set[str] = set()
            # locator -> (object, keys of the matching rows, fields, batch size); pages are rendered as they are asked for
            self.cursors: dict[str, tuple[str, list[int | str], list[str], int]] = {}
            self.api_usage = 0
            self.lazy: dict[str, LazyTable] = self.lazy_tables()
            self._seed()

    # -- hooks -----------------------------------------------------------------------------------------------
    def lazy_tables(self) -> dict[str, LazyTable]:
        """Objects whose seeded rows are computed on demand (none by default)."""
        return {}

    def _seed(self) -> None:
        """Insert the seeded records."""

    def _derive(self, object_name: str, record: dict[str, Any], changes: dict[str, Any]) -> None:
        """Set the fields the platform computes (formulas, roll-ups) after a save."""

    def _validate(self, object_name: str, merged: dict[str, Any], existing: dict[str, Any] | None) -> list[dict]:
        """The org's validation rules and triggers for one record about to be saved: SaveResult errors."""
        return []

    def _after_apply(self, object_name: str, record: dict[str, Any], before: dict[str, Any] | None) -> None:
        """Side effects of a committed save (platform events, webhooks)."""

    # -- storage -----------------------------------------------------------------------------------------------
    def _next_id(self, object_name: str) -> str:
        table = self.lazy.get(object_name)
        if table is not None:
            table.next_number += 1
            return salesforce_id(table.prefix, table.next_number - 1)
        self.counters[object_name] += 1
        return salesforce_id(self.key_prefixes[object_name], self.counters[object_name])

    def _put(self, object_name: str, record: dict[str, Any]) -> None:
        table = self.lazy.get(object_name)
        if table is not None:
            table.put(record)
        else:
            self.records[object_name][record["Id"]] = record

    def _stored_rows(self, object_name: str) -> list[dict[str, Any]]:
        """Rows held in memory: all of them, or for a lazy object those written through the API."""
        table = self.lazy.get(object_name)
        return table.stored() if table is not None else list(self.records[object_name].values())

    def _row(self, object_name: str, key: int | str) -> dict[str, Any]:
        table = self.lazy.get(object_name)
        return table.row(key) if table is not None else self.records[object_name][key]  # type: ignore[index]

    def _insert(self, object_name: str, values: dict[str, Any], moment: datetime) -> dict[str, Any]:
        record = {name: None for name in self.schema[object_name]}
        record.update({k: v for k, v in values.items() if k in record})
        stamp = sf_datetime(moment)
        record.update(
            Id=self._next_id(object_name),
            IsDeleted=False,
            CreatedDate=stamp,
            LastModifiedDate=stamp,
            SystemModstamp=stamp,
        )
        self._derive(object_name, record, values)
        self._put(object_name, record)
        return record

    # -- auth ------------------------------------------------------------------------------------------------
    def issue_token(self) -> str:
        token = f"{ORG_ID[:15]}!AQ{secrets.token_urlsafe(48)}"
        with self.lock:
            self.tokens.add(token)
        return token

    def token_valid(self, token: str) -> bool:
        with self.lock:
            return token in self.tokens

    # -- writes ----------------------------------------------------------------------------------------------
    def save_many(
        self,
        items: list[tuple[str, dict[str, Any], str]],
        *,
        all_or_none: bool,
        version: str,
    ) -> list[dict[str, Any]]:
        """Apply (object, values, action) items in order; action is create, update:<id> or upsert:<field>.

        Returns one SaveResult per item. Whole-request problems (unknown field, unparseable value) raise ApiError.
        """
        del version
        with self.lock:
            for object_name, values, _action in items:
                self._check_parseable(object_name, values)
            plans: list[tuple[str, dict[str, Any], dict[str, Any] | None, bool] | dict[str, Any]] = []
            seen_external: dict[tuple[str, str], int] = {}
            for index, (object_name, values, action) in enumerate(items):
                plan = self._plan(object_name, values, action)
                if isinstance(plan, tuple) and action.startswith("upsert:"):
                    key = (object_name, str(values.get(action.split(":", 1)[1])))
                    if key in seen_external:
                        duplicate = _record_error("DUPLICATE_VALUE", f"Duplicate external id specified: {key[1]}")
                        plan = {"success": False, "errors": [duplicate]}
                        first = seen_external[key]
                        if isinstance(plans[first], tuple):
                            plans[first] = {"success": False, "errors": [duplicate]}
                    seen_external[key] = index
                plans.append(plan)
            failed = any(isinstance(p, dict) for p in plans)
            if all_or_none and failed:
                rolled_back = _record_error(
                    "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                    "Record rolled back because not all records were valid and the request was using AllOrNone header",
                )
                return [p if isinstance(p, dict) else {"success": False, "errors": [rolled_back]} for p in plans]
            results = []
            for plan in plans:
                if isinstance(plan, dict):
                    results.append(plan)
                    continue
                object_name, changes, existing, upsert = plan
                record = self._apply(object_name, changes, existing)
                result: dict[str, Any] = {"id": record["Id"], "success": True, "errors": []}
                if upsert:
                    result["created"] = existing is None
                results.append(result)
            return results

    def _check_parseable(self, object_name: str, values: dict[str, Any]) -> None:
        """What Salesforce refuses while deserialising the request: unknown fields and values of the wrong type."""
        schema = self.schema[object_name]
        for name, value in values.items():
            if name in ("attributes", "id"):
                continue
            field = schema.get(name)
            if field is None:
                raise ApiError(400, "INVALID_FIELD", f"No such column '{name}' on sobject of type {object_name}")
            if value is None:
                continue
            problem = None
            if field.type in _NUMBER_TYPES and (isinstance(value, bool) or not _is_number(value)):
                problem = "double"
            elif field.type == "boolean" and not isinstance(value, bool):
                problem = "boolean"
            elif field.type == "date" and not _is_date(value):
                problem = "date"
            elif field.type == "datetime" and parse_salesforce_datetime(value) is None:
                problem = "datetime"
            elif field.type in _STRING_TYPES and not isinstance(value, str | int | float):
                problem = "string"
            if problem:
                raise ApiError(
                    400,
                    "JSON_PARSER_ERROR",
                    f"Cannot deserialize instance of {problem} from VALUE_STRING value {value} or request may be "
                    f"missing a required field at [line:1, column:1]",
                    [name],
                )

    def _plan(self, object_name: str, values: dict[str, Any], action: str):
        """Validate one record; return (object, changes, existing, is_upsert) or a failed SaveResult dict."""
        schema = self.schema[object_name]
        changes = {k: v for k, v in values.items() if k not in ("attributes", "id", "Id")}
        existing = None
        upsert = action.startswith("upsert:")
        if action.startswith("update:"):
            record_id = action.split(":", 1)[1]
            existing = self._find_by_id(object_name, record_id)
            if existing is None:
                code = (
                    "MALFORMED_ID"
                    if not re.match(r"^[a-zA-Z0-9]{15}([a-zA-Z0-9]{3})?$", record_id)
                    else "ENTITY_IS_DELETED"
                )
                return {"success": False, "errors": [_record_error(code, f"invalid record id: {record_id}", ["Id"])]}
        elif upsert:
            external_field = action.split(":", 1)[1]
            value = changes.get(external_field)
            if value in (None, ""):
                error = _record_error("REQUIRED_FIELD_MISSING", f"Required fields are missing: [{external_field}]")
                return {"success": False, "errors": [error]}
            matches = [
                r
                for r in self._stored_rows(object_name)
                if not r["IsDeleted"] and str(r.get(external_field) or "").lower() == str(value).lower()
            ]
            if len(matches) > 1:
                error = _record_error("DUPLICATE_EXTERNAL_ID", f"{external_field}: more than one record found")
                return {"success": False, "errors": [error]}
            existing = matches[0] if matches else None

        errors = []
        inserting = existing is None
        for name, value in changes.items():
            field = schema[name]
            if (inserting and not field.createable) or (not inserting and not field.updateable):
                errors.append(
                    _record_error(
                        "INVALID_FIELD_FOR_INSERT_UPDATE",
                        f"Unable to create/update fields: {name}. Please check the security settings of this "
                        "field and verify that it is read/write for your profile or permission set.",
                        [name],
                    )
                )
                continue
            if value is None:
                continue
            if field.type in _STRING_TYPES and field.length and len(str(value)) > field.length:
                errors.append(
                    _record_error(
                        "STRING_TOO_LONG",
                        f"{field.label}: data value too large: {str(value)[:40]} (max length={field.length})",
                        [name],
                    )
                )
            if field.type == "picklist" and field.restricted and value not in field.picklist:
                errors.append(
                    _record_error(
                        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                        f"{field.label}: bad value for restricted picklist field: {value}",
                        [name],
                    )
                )
            if field.type == "reference":
                if not re.match(r"^[a-zA-Z0-9]{15}([a-zA-Z0-9]{3})?$", str(value)):
                    errors.append(
                        _record_error("MALFORMED_ID", f"{field.label}: id value of incorrect type: {value}", [name])
                    )
                elif self._find_by_id(field.reference_to or "", str(value)) is None:
                    errors.append(
                        _record_error("INVALID_CROSS_REFERENCE_KEY", f"invalid cross reference id: {value}", [name])
                    )
            if field.external_id:
                clash = next(
                    (
                        r
                        for r in self._stored_rows(object_name)
                        if r["Id"] != (existing or {}).get("Id")
                        and str(r.get(name) or "").lower() == str(value).lower()
                    ),
                    None,
                )
                if clash is not None:
                    errors.append(
                        _record_error(
                            "DUPLICATE_VALUE",
                            f"duplicate value found: {name} duplicates value on record with id: {clash['Id']}",
                            [name],
                        )
                    )
        merged = {**(existing or {}), **changes}
        missing = [
            f.name
            for f in schema.values()
            if f.required and (merged.get(f.name) in (None, "")) and (inserting or f.name in changes)
        ]
        if missing:
            errors.append(
                _record_error("REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(missing)}]", missing)
            )
        if not errors:
            errors.extend(self._validate(object_name, merged, existing))
        if errors:
            return {"success": False, "errors": errors}
        return (object_name, changes, existing, upsert)

    def _find_by_id(self, object_name: str, record_id: str) -> dict[str, Any] | None:
        table = self.lazy.get(object_name)
        if table is not None:
            if len(record_id) == 15:
                record_id = next((i for i in table.created if i[:15] == record_id), record_id)
            record = table.get(record_id)
        else:
            records = self.records.get(object_name, {})
            if len(record_id) == 15:
                record_id = next((i for i in records if i[:15] == record_id), record_id)
            record = records.get(record_id)
        return record if record and not record["IsDeleted"] else None

    def _apply(self, object_name: str, changes: dict[str, Any], existing: dict[str, Any] | None) -> dict[str, Any]:
        clean = {k: _stored(self.schema[object_name][k], v) for k, v in changes.items()}
        if existing is None:
            record = self._insert(object_name, clean, now_utc())
            before = None
        else:
            before = dict(existing)
            record = {**existing, **clean}
            stamp = sf_datetime(now_utc())
            record.update(LastModifiedDate=stamp, SystemModstamp=stamp)
            self._derive(object_name, record, changes)
            existing.update(record)  # the stored dict itself, for objects held in memory
            self._put(object_name, existing)
            record = existing
        self._after_apply(object_name, record, before)
        return record

    def custom_field_create(self, full_name: Any, metadata: Any) -> dict[str, Any]:
        """The Tooling API's CustomField create: a Number or Text field on an object of the org, kept in its schema
        (describe lists it, SOQL selects it, writes take it). Raises ApiError as the API answers."""
        if not isinstance(full_name, str) or not isinstance(metadata, dict):
            raise ApiError(400, "JSON_PARSER_ERROR", "CustomField needs FullName and Metadata.")
        object_name, _, name = full_name.partition(".")
        with self.lock:
            if object_name not in self.schema:
                raise ApiError(400, "FIELD_INTEGRITY_EXCEPTION", f"Cannot find the entity {object_name}", ["FullName"])
            developer = name[:-3] if name.endswith("__c") else ""
            if not re.fullmatch(r"[A-Za-z][A-Za-z0-9]*(_[A-Za-z0-9]+)*", developer) or len(developer) > 40:
                raise ApiError(
                    400,
                    "FIELD_INTEGRITY_EXCEPTION",
                    "The Field Name can only contain underscores and alphanumeric characters, must begin with a "
                    "letter, not end with an underscore, not contain two consecutive underscores, and end in __c.",
                    ["FullName"],
                )
            if name in self.schema[object_name]:
                # (unverified, as connectors.salesforce.client says) the code of a second create of one field
                raise ApiError(
                    400,
                    "DUPLICATE_VALUE",
                    "duplicate value found: <unknown> duplicates value on record with id: <unknown>",
                )
            label = metadata.get("label")
            if not isinstance(label, str) or not label.strip():
                raise ApiError(400, "REQUIRED_FIELD_MISSING", "Required fields are missing: [Label]", ["label"])
            kind = metadata.get("type")
            if kind == "Number":
                precision, scale = metadata.get("precision"), metadata.get("scale")
                if not (isinstance(precision, int) and isinstance(scale, int) and 0 <= scale <= precision <= 18):
                    raise ApiError(
                        400,
                        "FIELD_INTEGRITY_EXCEPTION",
                        "Number fields need a precision of 1 to 18 and a scale no larger than it.",
                        ["precision"],
                    )
                field = Field(name, "double", label.strip()[:40], scale=scale)
            elif kind == "Text":
                length = metadata.get("length")
                if not (isinstance(length, int) and 0 < length <= 255):
                    raise ApiError(
                        400, "FIELD_INTEGRITY_EXCEPTION", "Text fields need a length of 1 to 255.", ["length"]
                    )
                field = Field(name, "string", label.strip()[:40], length)
            else:
                raise ApiError(
                    400,
                    "FIELD_INTEGRITY_EXCEPTION",
                    f"This sandbox creates Number and Text fields, not {kind}.",
                    ["type"],
                )
            self.schema[object_name][name] = field
            self.counters["custom_field"] = self.counters.get("custom_field", 0) + 1
            return {
                "id": salesforce_id("00N", self.counters["custom_field"]),
                "success": True,
                "errors": [],
                "warnings": [],
                "infos": [],
            }

    def delete(self, object_name: str, record_id: str) -> bool:
        with self.lock:
            record = self._find_by_id(object_name, record_id)
            if record is None:
                return False
            stamp = sf_datetime(now_utc())
            record.update(IsDeleted=True, SystemModstamp=stamp, LastModifiedDate=stamp)
            self._put(object_name, record)
            return True
