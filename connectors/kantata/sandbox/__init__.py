"""A local emulator of the Kantata OX (Mavenlink) API v1 subset the connector uses, seeded from the shared Firm.

Faithful to developer.kantata.com: Bearer auth, `/api/v1/<collection>[.json]`, the response format
`{count, meta:{count, page_count, page_number, page_size}, results:[{key, id}], <key>:{"<id>": {...}}}`,
`page`/`per_page` (default 20, max 200) or `limit`/`offset`, `include=` side-loading (external_references,
user, workspace, cost_rates), `only=`, `order=`, the `updated_after`/`approved` and external-reference filters,
bulk create of up to 100 objects under the plural key, errors as `{"errors":[{type, message, field?}]}`
(`oauth` 401, `validation` 422, `system` otherwise) and 429 when calls come too fast.

Time entries and expenses are computed from the Firm by index (ids are a fixed base + index + 1), so the
sandbox serves 100,000 of them with almost no memory; only records written through the API are stored.

`state` holds the records, `query` the listings, `entries` time entries, expenses and references, `api` the rest.
"""

from connectors.kantata.sandbox.api import KantataSandbox, create_app
from connectors.kantata.sandbox.state import (
    DEMO_CREDENTIALS,
    EXPENSE_BASE,
    MEMBERSHIP_BASE,
    TIME_ENTRY_BASE,
    USER_BASE,
    WORKSPACE_BASE,
)

__all__ = [
    "DEMO_CREDENTIALS",
    "EXPENSE_BASE",
    "MEMBERSHIP_BASE",
    "TIME_ENTRY_BASE",
    "USER_BASE",
    "WORKSPACE_BASE",
    "KantataSandbox",
    "create_app",
]
