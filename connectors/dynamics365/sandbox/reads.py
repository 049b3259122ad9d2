"""Dataverse reads: rows by key, pages with paging cookies and change tracking, $select, and $metadata."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from connectors.dynamics365.sandbox.schema import (
    ATTRIBUTE_TYPES,
    MAX_PAGE_SIZE,
    ApiError,
    Column,
    Entity,
    _etag,
    guid,
)
from connectors.sandbox.odata import (
    filter_fields,
    key_values,
    matches,
    parse_filter,
    parse_orderby,
    parse_select,
    prefer,
    sort_rows,
)


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


class DataverseReads:
    """Rows as the Web API answers them."""

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
                "MetadataId": guid("metadata", list(self.entities).index(entity.entity_set)),
                "ChangeTrackingEnabled": True,
            }

        match = re.fullmatch(
            r"EntityDefinitions(?:\(LogicalName='(\w+)'\)(?:/(Keys|Attributes|Attributes/Microsoft\.Dynamics\.CRM\.PicklistAttributeMetadata))?)?",
            resource,
        )
        if not match:
            raise ApiError(404, "0x8006088a", f"Resource not found for the segment '{resource}'.")
        logical, keys = match.groups()
        if logical is None:
            node = parse_filter(args["$filter"]) if args.get("$filter") else None
            rows = [definition(e) for e in self.entities.values() if matches(definition(e), node)]
            return 200, {}, {"@odata.context": f"{root}/$metadata#EntityDefinitions", "value": rows}
        entity = self.by_logical.get(logical)
        if entity is None:
            raise ApiError(404, "0x80040217", f"Could not find an entity with the logical name '{logical}'.")
        if not keys:
            return 200, {}, definition(entity)
        if keys == "Attributes":
            value = [_attribute(entity, name, column) for name, column in entity.columns.items()]
            return (
                200,
                {},
                {"@odata.context": f"{root}/$metadata#EntityDefinitions('{logical}')/Attributes", "value": value},
            )
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

    def _attribute_create(self, resource: str, body: Any, root: str) -> tuple[int, dict[str, str], Any]:
        """POST EntityDefinitions(LogicalName='x')/Attributes: a Decimal or String column, kept in the table's
        definition (the Attributes list shows it, $select and $filter take it, writes store it)."""
        match = re.fullmatch(r"EntityDefinitions\(LogicalName='(\w+)'\)/Attributes", resource)
        entity = self.by_logical.get(match.group(1)) if match else None
        if entity is None:
            raise ApiError(404, "0x80040217", f"Resource not found for the segment '{resource}'.")
        if not isinstance(body, dict):
            raise ApiError(400, "0x80048d19", "The request body must be a JSON object.")
        schema_name = str(body.get("SchemaName") or "")
        if not re.fullmatch(r"[a-z]{2,8}_[A-Za-z][A-Za-z0-9_]*", schema_name) or len(schema_name) > 50:
            raise ApiError(
                400,
                "0x80044355",
                f"The schema name {schema_name!r} must start with a publisher's customization prefix, such as new_.",
            )
        logical = schema_name.lower()
        if logical in entity.columns:
            raise ApiError(
                400, "0x80044363", f"An attribute with the name {logical} already exists on {entity.logical}."
            )
        labels = ((body.get("DisplayName") or {}).get("LocalizedLabels") or [{}])[0]
        label = str(labels.get("Label") or "")
        if not label:
            raise ApiError(400, "0x80044355", "The attribute needs a DisplayName.")
        kind = str(body.get("@odata.type") or "")
        if kind == "Microsoft.Dynamics.CRM.DecimalAttributeMetadata":
            precision = body.get("Precision", 2)
            if not isinstance(precision, int) or not 0 <= precision <= 10:
                raise ApiError(400, "0x80044355", "Precision of a decimal column is 0 to 10.")
            column = Column("decimal", precision=precision, label=label, custom=True)
        elif kind == "Microsoft.Dynamics.CRM.StringAttributeMetadata":
            size = body.get("MaxLength", 100)
            if not isinstance(size, int) or not 1 <= size <= 4000:
                raise ApiError(400, "0x80044355", "MaxLength of a text column is 1 to 4,000.")
            column = Column("string", size, label=label, custom=True)
        else:
            raise ApiError(
                400, "0x80044355", f"This sandbox creates decimal and text columns, not {kind or 'nothing'}."
            )
        entity.columns[logical] = column
        for row in self.tables[entity.entity_set].values():
            row.setdefault(logical, None)
        metadata_id = guid("metadata", list(self.entities).index(entity.entity_set))
        attribute_id = guid(f"attribute:{entity.logical}", len(entity.columns))
        location = f"{root}/EntityDefinitions({metadata_id})/Attributes({attribute_id})"
        return 204, {"OData-EntityId": location}, None


def _attribute(entity: Entity, name: str, column: Column) -> dict[str, Any]:
    label = column.label or name
    return {
        "LogicalName": name,
        "SchemaName": name,
        "AttributeType": ATTRIBUTE_TYPES.get(column.kind, "String"),
        "IsCustomAttribute": column.custom or name.startswith("new_"),
        "IsValidForUpdate": column.kind not in ("guid", "datetime", "version")
        and name
        not in (
            "statecode",
            entity.primary_id,
        ),
        "DisplayName": {"UserLocalizedLabel": {"Label": label, "LanguageCode": 1033}},
    }
