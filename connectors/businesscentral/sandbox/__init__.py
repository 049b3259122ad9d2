"""Business Central sandbox: a local emulator of the Business Central online API v2.0 subset the connector uses.

Entra client-credentials tokens, `/v2.0/{tenant}/{environment}/api/v2.0/companies({id})/...` with customers,
projects, employees, salesInvoices (with `salesInvoiceLines`, deep insert and `$expand`), currencies and
paymentTerms; `$filter`, `$orderby`, `$select`, `$top`, `$skip`, `$count`, server-driven paging (`Prefer:
odata.maxpagesize`, at most 20,000 a page); `@odata.etag` on every entity and `If-Match` required to change or
delete one; JSON `$batch` of at most 100 requests; webhook subscriptions with the validationToken handshake on
create and renew, notifications carrying clientState; 429 when the environment's request queue is full.
Seeded from the firm as its ERP history says: every customer, the ERP's projects, employees and old invoices.

`schema` holds the vocabulary, `state` the company's tables, `webhooks` the subscriptions, `api` the routes.
"""

from connectors.businesscentral.sandbox.api import BusinessCentralSandbox, create_app
from connectors.businesscentral.sandbox.schema import COMPANY_ID, DEMO_CREDENTIALS, ENVIRONMENT, TENANT_ID

__all__ = ["COMPANY_ID", "DEMO_CREDENTIALS", "ENVIRONMENT", "TENANT_ID", "BusinessCentralSandbox", "create_app"]
