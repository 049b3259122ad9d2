"""Jira Cloud sandbox: a local WSGI emulator of the REST subset the connector and the `jira` library use.

Basic auth (e-mail + API token), serverInfo / myself / field / project, enhanced JQL search (`search/jql`, GET
and POST, nextPageToken pages) over a JQL subset, issue create (single and bulk), get and edit, under both
/rest/api/3 (descriptions in Atlassian Document Format) and /rest/api/2 (plain text), which the `jira` library
uses by default. Rate limits answer 429 with Retry-After and X-RateLimit-* headers. Seeded from the shared Firm:
a Delivery (DEL) kick-off and a Resource Planning (RES) staffing issue per project, Operations (OPS) issues, and
the firm's support tickets (SUP) with the time logged on them as worklogs (`worklog/updated`, `worklog/list`).

`state` holds the site's issues, `worklogs` the worklogs, `query` JQL, `api` the routes and rendering.
"""

from connectors.jira.sandbox.api import JiraSandbox, create_app
from connectors.jira.sandbox.state import ACCOUNT_ID, DEMO_CREDENTIALS

__all__ = ["ACCOUNT_ID", "DEMO_CREDENTIALS", "JiraSandbox", "create_app"]
