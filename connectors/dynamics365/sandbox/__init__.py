"""Dynamics 365 Sales sandbox: a local emulator of the Dataverse Web API v9.2 subset the connector and the official
`powerplatform-dataverse-client` use, seeded from the shared Firm.

Entra client-credentials tokens (`/{tenant}/oauth2/v2.0/token`), `accounts` and `opportunities` with `$select`,
`$filter`, `$orderby`, `$top`, `$count`, server-driven paging (`Prefer: odata.maxpagesize`, at most 5,000 a page,
`@odata.nextLink` with a `$skiptoken` paging cookie; `$skip` is refused), change tracking (`Prefer:
odata.track-changes` -> `@odata.deltaLink` with a `$deltatoken`, deleted rows as `$deletedEntity`), alternate-key
upsert with `If-Match: *` / `If-None-Match: *`, `$batch` (multipart, at most 1,000 requests, stops at the first
failure unless `Prefer: odata.continue-on-error`), the WinOpportunity and LoseOpportunity actions, the three 429
service-protection answers, and unsigned webhooks authenticated by WebhookKey, HttpHeader or HttpQueryString.

`schema` holds the vocabulary, `state` the rows and writes, `reads` the reads, `batch` $batch, `api` the routes.
"""

from connectors.dynamics365.sandbox.api import DataverseSandbox, create_app
from connectors.dynamics365.sandbox.schema import API, DEMO_CREDENTIALS, ORGANIZATION_ID, TENANT_ID

__all__ = ["API", "DEMO_CREDENTIALS", "ORGANIZATION_ID", "TENANT_ID", "DataverseSandbox", "create_app"]
