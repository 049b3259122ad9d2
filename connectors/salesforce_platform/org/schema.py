"""Salesforce platform vocabulary: record ids, datetimes, field definitions and the API's error shape."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from connectors.salesforce_platform.rest import DEFAULT_EXTERNAL_ID_FIELD, parse_salesforce_datetime

ORG_ID = "00DSB0000001SGPMAQ"
USER_ID = "005SB0000001SGPMAQ"
DAILY_API_LIMIT = 100_000
SUPPORTED_VERSIONS = ("55.0", "56.0", "57.0", "58.0", "59.0", "60.0", "61.0", "62.0")
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_CHECKSUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


def salesforce_id(prefix: str, number: int) -> str:
    """An 18-character Salesforce id: key prefix, "SB" pod, a base-62 counter, then the case-safe checksum."""
    digits = ""
    while True:
        number, rest = divmod(number, 62)
        digits = _BASE62[rest] + digits
        if number == 0:
            break
    body = f"{prefix}SB{digits.rjust(10, '0')}"
    suffix = ""
    for start in (0, 5, 10):
        flags = sum(1 << i for i, char in enumerate(body[start : start + 5]) if "A" <= char <= "Z")
        suffix += _CHECKSUM[flags]
    return body + suffix


def sf_datetime(moment: datetime) -> str:
    """Salesforce's JSON datetime: UTC, whole seconds, `.000+0000`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def now_utc() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@dataclass(frozen=True)
class Field:
    name: str
    type: str  # id, string, textarea, url, phone, picklist, currency, percent, date, datetime, boolean, reference
    label: str
    length: int = 0
    required: bool = False
    createable: bool = True
    updateable: bool = True
    picklist: tuple[str, ...] = ()
    restricted: bool = False
    reference_to: str | None = None
    relationship: str | None = None
    external_id: bool = False
    scale: int | None = None  # a Number field's decimal places: values are rounded to them when saved

    def describe(self) -> dict[str, Any]:
        soap_types = {
            "id": "tns:ID",
            "reference": "tns:ID",
            "currency": "xsd:double",
            "percent": "xsd:double",
            "double": "xsd:double",
            "date": "xsd:date",
            "datetime": "xsd:dateTime",
            "boolean": "xsd:boolean",
        }
        return {
            "name": self.name,
            "label": self.label,
            "type": self.type,
            "soapType": soap_types.get(self.type, "xsd:string"),
            "length": self.length,
            "nillable": not self.required and self.type != "boolean",
            "createable": self.createable,
            "updateable": self.updateable,
            "custom": self.name.endswith("__c"),
            "scale": self.scale or 0,
            "precision": 18 if self.scale is not None else 0,
            "externalId": self.external_id,
            "unique": self.external_id,
            "idLookup": self.external_id or self.type == "id",
            "restrictedPicklist": self.restricted,
            "picklistValues": [
                {"active": True, "defaultValue": False, "label": v, "validFor": None, "value": v} for v in self.picklist
            ],
            "referenceTo": [self.reference_to] if self.reference_to else [],
            "relationshipName": self.relationship,
        }


def system_fields() -> list[Field]:
    return [
        Field("Id", "id", "Record ID", 18, createable=False, updateable=False),
        Field("IsDeleted", "boolean", "Deleted", createable=False, updateable=False),
        Field("CreatedDate", "datetime", "Created Date", createable=False, updateable=False),
        Field("LastModifiedDate", "datetime", "Last Modified Date", createable=False, updateable=False),
        Field("SystemModstamp", "datetime", "System Modstamp", createable=False, updateable=False),
    ]


def lookup_field(name: str, label: str, target: str, *, required: bool = False) -> Field:
    """A lookup to `target`, its relationship named as Salesforce names it: `X__c` is `X__r`, a standard `XId` is `X`."""
    relationship = name[:-3] + "__r" if name.endswith("__c") else name[:-2]
    return Field(name, "reference", label, 18, required=required, reference_to=target, relationship=relationship)


def package_object(*fields: Field, currencies: tuple[str, ...]) -> dict[str, Field]:
    """A managed package's sObject, fields by name: the system fields and Name, `fields`, then its currency (one of
    `currencies`) and the integration's external id."""
    every = [
        *system_fields(),
        Field("Name", "string", "Name", 80),
        *fields,
        Field("CurrencyIsoCode", "picklist", "Currency", 3, picklist=currencies, restricted=True),
        Field(DEFAULT_EXTERNAL_ID_FIELD, "string", "Integration Record ID", 80, external_id=True),
    ]
    return {f.name: f for f in every}


_STRING_TYPES = {"id", "string", "textarea", "url", "phone", "picklist", "reference"}
_NUMBER_TYPES = {"currency", "percent", "double"}


class ApiError(Exception):
    """A whole-request failure, answered as Salesforce's `[{message, errorCode, fields}]` array."""

    def __init__(self, status: int, code: str, message: str, fields: list[str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.fields = status, code, message, fields or []

    def body(self) -> list[dict[str, Any]]:
        error: dict[str, Any] = {"message": self.message, "errorCode": self.code}
        if self.fields:
            error["fields"] = self.fields
        return [error]


def _record_error(code: str, message: str, fields: list[str] | None = None) -> dict[str, Any]:
    # sObject Collections report per-record errors as {statusCode, message, fields}, not errorCode.
    return {"statusCode": code, "message": message, "fields": fields or []}


def salesforce_number(record_id: str) -> int | None:
    """The counter inside an id made by salesforce_id (15 or 18 characters), or None."""
    digits = record_id[5:15]
    if len(record_id) not in (15, 18) or record_id[3:5] != "SB" or not digits.isalnum():
        return None
    number = 0
    for char in digits:
        number = number * 62 + _BASE62.index(char)
    return number


def _is_number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def _is_date(value: Any) -> bool:
    try:
        date.fromisoformat(str(value))
    except ValueError:
        return False
    return len(str(value)) == 10


def _stored(field: Field, value: Any) -> Any:
    if value is None:
        return None
    if field.type in _NUMBER_TYPES:
        return round(float(value), field.scale) if field.scale is not None else float(value)
    if field.type == "datetime":
        return sf_datetime(parse_salesforce_datetime(value))
    if field.type in _STRING_TYPES:
        return str(value)
    return value
