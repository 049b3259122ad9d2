"""The Salesforce platform's REST API, emulated once for every vendor that lives on it (Salesforce, Certinia).

An org (`PlatformOrg`) holds a schema of sObjects and their records; `PlatformSandbox` serves the OAuth token
endpoint, SOQL with `nextRecordsUrl` paging, sObject describe/create/update/upsert and sObject Collections
(200 a call) over it. A vendor sandbox subclasses both: its schema, its seed and its package's rules. Objects
too large to hold (100,000 timecards) are `LazyTable`s whose seeded rows are computed from their index.

`schema` holds ids, fields and errors, `query` SOQL, `state` the org's records, `api` the REST routes.
"""

from connectors.salesforce_platform.org.api import PlatformSandbox
from connectors.salesforce_platform.org.query import SoqlQuery, parse_soql
from connectors.salesforce_platform.org.schema import (
    ORG_ID,
    USER_ID,
    ApiError,
    Field,
    lookup_field,
    now_utc,
    package_object,
    salesforce_id,
    salesforce_number,
    sf_datetime,
    system_fields,
)
from connectors.salesforce_platform.org.state import LazyTable, PlatformOrg

__all__ = [
    "ORG_ID",
    "USER_ID",
    "ApiError",
    "Field",
    "LazyTable",
    "PlatformOrg",
    "PlatformSandbox",
    "SoqlQuery",
    "lookup_field",
    "now_utc",
    "package_object",
    "parse_soql",
    "salesforce_id",
    "salesforce_number",
    "sf_datetime",
    "system_fields",
]
