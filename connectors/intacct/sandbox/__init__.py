"""Sage Intacct sandbox: a local emulator of the XML Web Services gateway subset the connector uses.

One POST endpoint taking `<request>` documents: the control block (sender id and password, `controlid`,
`uniqueid`: a resubmitted control id is refused), sign-in by `login` or `sessionid`, `getAPISession` (whose
answer sends later calls to another endpoint, the company's pod, where the session is valid), and the functions
`query` (filters, order, pages of up to 2,000 rows with `offset`, `totalcount` and `numremaining`), `create` and
`update` of CUSTOMER, PROJECT, EMPLOYEE and ARINVOICE (with its ARINVOICEITEMS), with Intacct's referential
checks. Failures come inside HTTP 200 at the level they happen (control, authentication, one function); only
throttling is HTTP 429 (GW-0010). Seeded from the shared Firm as the ERP holds it: every customer, the projects
set up before the last deals were won, every employee but the latest hires, and the invoices issued before the
firm kept its time in the PSA. The company keeps our external id in the custom field INTEGRATION_RECORD_ID.

`state` holds the company's objects and writes, `query` the query function, `api` the gateway.
"""

from connectors.intacct.sandbox.api import IntacctSandbox, create_app
from connectors.intacct.sandbox.state import DEMO_CREDENTIALS, POD_PATH

__all__ = ["DEMO_CREDENTIALS", "POD_PATH", "IntacctSandbox", "create_app"]
