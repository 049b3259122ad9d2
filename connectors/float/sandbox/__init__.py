"""Float sandbox: a local emulator of the Float API v3 subset the connector uses.

A Bearer token and a User-Agent naming the application and a contact email on every call (refused without
one); `page` and `per-page` (200 at most) with `X-Pagination-Total-Count`, `-Page-Count`, `-Current-Page` and
`-Per-Page` headers; `modified_since`; people, clients, projects and allocations (`tasks`) to list, create and
change; logged time and departments to list; 429 with Retry-After. No webhooks, as Float has none. Seeded from
the firm as its scheduling tool holds it: every customer as a client, every person, every project (the PSA-only
phases too, with their project codes), an allocation per person and project they booked time on, and the firm's
time entries as logged time computed from their index (locked once approved).

`state` holds the account and its writes, `api` the routes and Float's refusals.
"""

from connectors.float.sandbox.api import FloatSandbox, create_app
from connectors.float.sandbox.state import DEMO_CREDENTIALS

__all__ = ["DEMO_CREDENTIALS", "FloatSandbox", "create_app"]
