"""monday.com sandbox: a local WSGI emulator of the GraphQL API (POST /v2) subset the connector and monday's own
Python SDK use.

The token in `Authorization`, `API-Version`, boards, items with their column values (a time tracking column whose
history holds each session logged), users, `me`, `complexity`, cursor pagination (`items_page`, `next_items_page`)
with `query_params` rules on the last-updated column, and the account's complexity budget. Seeded from the firm's
ticket work: a board per support queue, an item per ticket, a session per work log.

`schema` holds the GraphQL schema, the complexity count and the error shapes, `state` the account, `api` the route.
"""

from connectors.monday.sandbox.api import MondaySandbox, create_app
from connectors.monday.sandbox.state import DEMO_CREDENTIALS

__all__ = ["DEMO_CREDENTIALS", "MondaySandbox", "create_app"]
