"""Asana sandbox: a local WSGI emulator of the REST API 1.0 subset the connector and the `asana` library use.

Bearer personal access tokens, `opt_fields`, offset pages (`limit` up to 100, an opaque `next_page.offset`),
users/me, workspaces, projects, tasks (with `modified_since`) and time tracking entries (listed per task,
created, read and edited). Seeded from the firm's ticket work: a project per support queue, a task per ticket,
an entry per work log. Errors come as {"errors": [{"message"}]}, rate limits as 429 with Retry-After.

`state` holds the workspace, `api` the routes and rendering.
"""

from connectors.asana.sandbox.api import AsanaSandbox, create_app
from connectors.asana.sandbox.state import DEMO_CREDENTIALS

__all__ = ["DEMO_CREDENTIALS", "AsanaSandbox", "create_app"]
