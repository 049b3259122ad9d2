"""ServiceNow sandbox: a local WSGI emulator of the Table API subset the connector and `pysnc` use.

Basic auth; `sysparm_query` (encoded queries with ^, ^OR, ^NQ, ORDERBY and dot-walking), `sysparm_fields`,
`sysparm_limit`/`sysparm_offset` with Link and X-Total-Count headers, offsets that stop at 10,000 rows,
`sysparm_display_value`, 429 with Retry-After and X-RateLimit-* headers, errors as {"error", "status"}. Seeded
from the firm's ticket work: an assignment group per support queue, an incident per ticket, a task_time_worked
record per work log.

`state` holds the instance's rows, `query` encoded queries, `api` the routes and rendering.
"""

from connectors.servicenow.sandbox.api import ServiceNowSandbox, create_app
from connectors.servicenow.sandbox.state import DEMO_CREDENTIALS

__all__ = ["DEMO_CREDENTIALS", "ServiceNowSandbox", "create_app"]
