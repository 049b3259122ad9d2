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
"""

from __future__ import annotations

import hmac
import secrets
import xml.etree.ElementTree as ET  # noqa: S405 -- only to build answers; requests are parsed by defusedxml
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from defusedxml.ElementTree import fromstring
from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from connectors.intacct.client import (
    DATE_FORMAT,
    DEFAULT_EXTERNAL_ID_FIELD,
    DTD_VERSION,
    DUPLICATE_CONTROL_ID,
    GATEWAY_PATH,
    LINE_FIELDS,
    OBJECTS,
    QUERY_PAGE_MAX,
    RATE_LIMITED_ERROR,
    WHEN_FORMAT,
    WRITE_BATCH,
)
from connectors.sandbox.app import SandboxApp, json_response
from connectors.sandbox.firm import Firm, minute_stamps

DEMO_CREDENTIALS = {
    "sender_id": "sysgenpro_sandbox",
    "sender_password": "sgp-intacct-sender-Qm4v",
    "company_id": "haldenrowe-demo",
    "user_id": "xml_gateway",
    "user_password": "sgp-intacct-user-7Tz2",
    "entity_id": "",
    "external_id_field": DEFAULT_EXTERNAL_ID_FIELD,
}
POD_PATH = "/pod2" + GATEWAY_PATH  # where getAPISession sends the company's calls
SESSION_TIMEOUT = timedelta(hours=1)
SEED_EPOCH = datetime(2024, 1, 2, 9, 0, 0, tzinfo=UTC)  # seeded records were last modified a minute apart from here

# The sandbox's own error numbers where Intacct's are not published (see the client's assumptions block).
SENDER_REFUSED = "XL03000006"
PARSE_ERROR = "XL03000003"
REQUIRED_MISSING = "BL34000061"
INVALID_REFERENCE = "BL01001973"
DUPLICATE_KEY = "BL01001974"
INVALID_VALUE = "BL01001975"
INVALID_FIELD = "PL04000055"
INVALID_REQUEST = "GW-0011"

TERMS = {"Net 15": 15, "Net 30": 30, "Net 45": 45, "Net 60": 60, "Due on receipt": 0}
BILLING_TYPES = {"Time and materials": "Time & Material", "Fixed fee": "Fixed Fee", "Retainer": "Fixed Fee"}
AUDIT_FIELDS = ("RECORDNO", "WHENMODIFIED")
REQUIRED = {
    "CUSTOMER": ("CUSTOMERID", "NAME"),
    "PROJECT": ("PROJECTID", "NAME", "PROJECTCATEGORY"),
    "EMPLOYEE": ("EMPLOYEEID", "PERSONALINFO.LASTNAME"),
    "ARINVOICE": ("CUSTOMERID", "WHENCREATED"),
}
NUMBER_FIELDS = {"BUDGETAMOUNT", "TOTALENTERED", "TOTALDUE", "RECORDNO"}
ENUMS = {
    "STATUS": ("active", "inactive"),
    "PROJECTCATEGORY": ("Contract", "Capitalized", "Internal Billable", "Internal Non-billable"),
    "BILLINGTYPE": ("Time & Material", "Fixed Fee", "Fixed Fee & Expenses"),
}
READ_ONLY = {"CUSTOMERNAME", "CUSTOMERKEY", "TOTALENTERED", "TOTALDUE", "STATE", "RECORDNO", "WHENMODIFIED"}
COMPARISONS = {
    "equalto": lambda a, b: a == b,
    "notequalto": lambda a, b: a != b,
    "greaterthan": lambda a, b: a is not None and a > b,
    "greaterthanorequalto": lambda a, b: a is not None and a >= b,
    "lessthan": lambda a, b: a is not None and a < b,
    "lessthanorequalto": lambda a, b: a is not None and a <= b,
}


class FunctionFailed(Exception):
    """One function's failure, answered inside its <result>."""

    def __init__(self, errorno: str, description2: str, description: str = ""):
        super().__init__(description2)
        self.errorno, self.description, self.description2 = errorno, description, description2


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(WHEN_FORMAT)


def _us_date(iso: str | None) -> str | None:
    return date.fromisoformat(iso).strftime(DATE_FORMAT) if iso else None


def _errormessage(parent: ET.Element, errorno: str, description2: str, description: str = "") -> None:
    error = ET.SubElement(ET.SubElement(parent, "errormessage"), "error")
    ET.SubElement(error, "errorno").text = errorno
    ET.SubElement(error, "description").text = description
    support = secrets.token_urlsafe(12)
    ET.SubElement(error, "description2").text = f"{description2} [Support ID: {support}]"
    ET.SubElement(error, "correction").text = ""


def _xml(root: ET.Element, status: int = 200) -> Response:
    body = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return Response(body, status=status, content_type="application/xml; charset=utf-8")


class IntacctSandbox(SandboxApp):
    vendor = "intacct"

    def routes(self) -> list[Rule]:
        return [
            Rule(GATEWAY_PATH, endpoint="gateway", methods=["POST"]),
            Rule(POD_PATH, endpoint="gateway", methods=["POST"]),
        ]

    def reset_state(self) -> None:
        self.records: dict[str, dict[int, dict[str, Any]]] = {name: {} for name in OBJECTS}
        self.next_record_no = 1
        self.sessions: dict[str, tuple[str, datetime]] = {}  # session id -> (endpoint path, expiry)
        self.processed_control_ids: set[str] = set()
        self.answers_to_lose = 0
        self.volume_customers = 0
        self._seed()

    # -- seeding ---------------------------------------------------------------------------------------------

    def _seed(self) -> None:
        firm = self.firm
        stamp = minute_stamps(SEED_EPOCH)

        customers = {c["id"]: c for c in firm.customers()}
        for customer in firm.customers():
            address = customer["billing_address"]
            self._store(
                "CUSTOMER",
                {
                    "CUSTOMERID": customer["number"],
                    "NAME": customer["name"],
                    "STATUS": "active",
                    "TERMNAME": customer["payment_terms"],
                    "CURRENCY": customer["currency"],
                    "DISPLAYCONTACT.EMAIL1": f"accounts@{customer['domain']}",
                    "DISPLAYCONTACT.PHONE1": customer["phone"],
                    "DISPLAYCONTACT.URL1": f"https://{customer['domain']}",
                    "DISPLAYCONTACT.MAILADDRESS.ADDRESS1": address["street"],
                    "DISPLAYCONTACT.MAILADDRESS.CITY": address["city"],
                    "DISPLAYCONTACT.MAILADDRESS.STATE": address["region"] or None,
                    "DISPLAYCONTACT.MAILADDRESS.ZIP": address["postal_code"],
                    "DISPLAYCONTACT.MAILADDRESS.COUNTRY": address["country"],
                },
                stamp(),
            )
        people = firm.erp_people()  # the latest hires are not in the ERP yet
        in_erp = {p["work_email"]: p["employee_number"] for p in people}
        for person in people:
            self._store(
                "EMPLOYEE",
                {
                    "EMPLOYEEID": person["employee_number"],
                    "PERSONALINFO.FIRSTNAME": person["first_name"],
                    "PERSONALINFO.LASTNAME": person["last_name"],
                    "PERSONALINFO.EMAIL1": person["work_email"],
                    "TITLE": person["job_title"],
                    "DEPARTMENTID": person["department"],
                    "LOCATIONID": person["location"],
                    "SUPERVISORID": in_erp.get(person["supervisor_email"] or ""),
                    "STARTDATE": _us_date(person["hire_date"]),
                    "ENDDATE": _us_date(person["termination_date"]),
                    "STATUS": "active" if person["status"] == "Active" else "inactive",
                },
                stamp(),
            )
        for project in firm.erp_projects():  # the last won deals are not set up in the ERP yet
            self._store(
                "PROJECT",
                {
                    "PROJECTID": project["code"],
                    "NAME": project["name"],
                    "CUSTOMERID": customers[project["customer_id"]]["number"],
                    "PROJECTCATEGORY": "Contract",
                    "PROJECTSTATUS": "In Progress",
                    "BILLINGTYPE": BILLING_TYPES.get(project["billing_terms"], "Time & Material"),
                    "BEGINDATE": _us_date(project["start_date"]),
                    "ENDDATE": _us_date(project["end_date"]),
                    "MANAGERID": in_erp.get(project["manager_email"]),
                    "BUDGETAMOUNT": project["budget"],
                    "CURRENCY": project["currency"],
                    "STATUS": "active",
                },
                stamp(),
            )
        project_codes = {p["id"]: p["code"] for p in firm.erp_projects()}
        for invoice in firm.erp_invoices():
            customer = customers[invoice["customer_id"]]
            day = date.fromisoformat(invoice["date"])
            self._store(
                "ARINVOICE",
                {
                    "RECORDID": invoice["number"],
                    "CUSTOMERID": customer["number"],
                    "WHENCREATED": day.strftime(DATE_FORMAT),
                    "WHENDUE": (day + timedelta(days=TERMS.get(customer["payment_terms"], 30))).strftime(DATE_FORMAT),
                    "TERMNAME": customer["payment_terms"],
                    "CURRENCY": invoice["currency"],
                    "DESCRIPTION": invoice["description"],
                    "STATE": "Paid",  # issued before the firm moved its time to the PSA: long since paid
                    "ARINVOICEITEMS": [
                        {
                            "ACCOUNTNO": "4000",
                            "AMOUNT": invoice["amount"],
                            "MEMO": invoice["description"],
                            "PROJECTID": project_codes[invoice["project_id"]],
                        }
                    ],
                },
                stamp(),
            )

    def seed(self, volumes: dict[str, int]) -> dict[str, int]:
        """Volume for paging tests only: synthetic customers after the firm's (the firm has 40)."""
        unknown = set(volumes) - {"customers"}
        if unknown:
            raise ValueError(f"the intacct sandbox seeds customers, not {sorted(unknown)}")
        with self.lock:
            moment = SEED_EPOCH + timedelta(days=400)
            for _ in range(max(0, volumes["customers"] - len(self.records["CUSTOMER"]))):
                self.volume_customers += 1
                number = self.volume_customers
                values = {"CUSTOMERID": f"V{number:06d}", "NAME": f"Volume Customer {number:06d}", "STATUS": "active"}
                self._store("CUSTOMER", values, moment + timedelta(seconds=number))
            return {"customers": len(self.records["CUSTOMER"])}

    def _store(self, object_name: str, values: dict[str, Any], moment: datetime) -> dict[str, Any]:
        record = {k: v for k, v in values.items() if v is not None}
        record["RECORDNO"] = self.next_record_no
        record["WHENMODIFIED"] = _when(moment)
        self.next_record_no += 1
        self._derive(object_name, record)
        self.records[object_name][record["RECORDNO"]] = record
        return record

    def _derive(self, object_name: str, record: dict[str, Any]) -> None:
        if object_name in ("PROJECT", "ARINVOICE") and record.get("CUSTOMERID"):
            customer = self._find("CUSTOMER", "CUSTOMERID", record["CUSTOMERID"])
            record["CUSTOMERNAME"] = customer["NAME"] if customer else None
            if object_name == "PROJECT":
                record["CUSTOMERKEY"] = customer["RECORDNO"] if customer else None
        if object_name == "ARINVOICE":
            total = sum(
                (Decimal(str(line.get("AMOUNT") or 0)) for line in record.get("ARINVOICEITEMS", [])), Decimal(0)
            )
            record["TOTALENTERED"] = str(total)
            record.setdefault("TOTALDUE", str(total))
            record.setdefault("STATE", "Posted")

    def _find(self, object_name: str, field: str, value: Any) -> dict[str, Any] | None:
        return next((r for r in self.records[object_name].values() if str(r.get(field)) == str(value)), None)

    # -- how Intacct says "no" -------------------------------------------------------------------------------

    def rate_limited_response(self, request: Request, retry_after: float) -> Response:
        root = ET.Element("response")
        ET.SubElement(ET.SubElement(root, "control"), "status").text = "failure"
        _errormessage(root, RATE_LIMITED_ERROR, "API rate limit exceeded", "Too many requests")
        return _xml(root, status=429)

    def server_error_response(self, request: Request) -> Response:
        return Response("The Service is Temporarily Off-line", status=503, content_type="text/plain")

    # -- controls of this sandbox ------------------------------------------------------------------------------

    def _control(self, request: Request) -> Response:
        if request.path.rstrip("/") != "/_sandbox/lose_answers":
            return super()._control(request)
        # Carry out the next `count` requests that write, then answer 502 as if the connection had dropped.
        count = int((request.get_json(force=True, silent=True) or {}).get("count", 1))
        with self.lock:
            self.answers_to_lose = count
        return json_response({"lose_answers": count})

    # -- the gateway -------------------------------------------------------------------------------------------

    def gateway(self, request: Request) -> Response:
        response = ET.Element("response")
        control = ET.SubElement(response, "control")
        try:
            root = fromstring(request.get_data())
        except Exception:
            ET.SubElement(control, "status").text = "failure"
            _errormessage(response, PARSE_ERROR, "XML Parse schema error: the request is not well-formed XML.")
            return _xml(response)
        sender = root.findtext("./control/senderid") or ""
        control_id = root.findtext("./control/controlid") or ""
        unique = (root.findtext("./control/uniqueid") or "false").strip().lower() == "true"
        ET.SubElement(control, "status").text = "success"
        for name, value in (("senderid", sender), ("controlid", control_id), ("uniqueid", str(unique).lower())):
            ET.SubElement(control, name).text = value
        ET.SubElement(control, "dtdversion").text = DTD_VERSION

        def refuse(errorno: str, description2: str, description: str = "") -> Response:
            control.find("status").text = "failure"  # type: ignore[union-attr]
            _errormessage(response, errorno, description2, description)
            return _xml(response)

        if not (
            hmac.compare_digest(sender, DEMO_CREDENTIALS["sender_id"])
            and hmac.compare_digest(root.findtext("./control/password") or "", DEMO_CREDENTIALS["sender_password"])
        ):
            return refuse(SENDER_REFUSED, "Incorrect Intacct XML Partner ID or password.", "Sender ID refused")
        functions = root.findall("./operation/content/function")
        if len(functions) > WRITE_BATCH:
            return refuse(INVALID_REQUEST, f"A request may hold at most {WRITE_BATCH} functions.")
        with self.lock:
            if unique and control_id in self.processed_control_ids:
                return refuse(
                    DUPLICATE_CONTROL_ID,
                    f"A request with the control ID {control_id} has already been processed.",
                    "Duplicate control ID",
                )
            operation = ET.SubElement(response, "operation")
            session = self._authenticate(root, request, operation)
            if session is None:
                return _xml(response)
            for function in functions:
                operation.append(self._run(function, session, request))
            if unique:
                self.processed_control_ids.add(control_id)
            writes = any(f.find("create") is not None or f.find("update") is not None for f in functions)
            if writes and self.answers_to_lose > 0:
                self.answers_to_lose -= 1
                return Response("Bad Gateway", status=502, content_type="text/plain")
        return _xml(response)

    def _authenticate(self, root: ET.Element, request: Request, operation: ET.Element) -> dict | None:
        """The session the request runs in, or None after writing the authentication failure."""
        authentication = ET.SubElement(operation, "authentication")
        login = root.find("./operation/authentication/login")
        session_id = (root.findtext("./operation/authentication/sessionid") or "").strip()
        now = datetime.now(UTC)
        if login is not None:
            ok = all(
                hmac.compare_digest(login.findtext(tag) or "", DEMO_CREDENTIALS[key])
                for tag, key in (("userid", "user_id"), ("companyid", "company_id"), ("password", "user_password"))
            )
            session = {"userid": login.findtext("userid") or "", "login": True}
        else:
            known = self.sessions.get(session_id)
            # A session is valid only at the endpoint getAPISession named, and until it times out.
            ok = known is not None and known[0] == request.path and known[1] > now
            session = {"userid": DEMO_CREDENTIALS["user_id"], "login": False}
        ET.SubElement(authentication, "status").text = "success" if ok else "failure"
        ET.SubElement(authentication, "userid").text = session["userid"]
        ET.SubElement(authentication, "companyid").text = DEMO_CREDENTIALS["company_id"]
        ET.SubElement(authentication, "locationid").text = ""
        if not ok:
            message = "Sign-in information is incorrect" if login is not None else "Invalid session"
            _errormessage(operation, SENDER_REFUSED, message)
            return None
        ET.SubElement(authentication, "sessiontimestamp").text = now.isoformat(timespec="seconds")
        return session

    def _run(self, function: ET.Element, session: dict, request: Request) -> ET.Element:
        result = ET.Element("result")
        status = ET.SubElement(result, "status")
        action = function[0] if len(function) else ET.Element("nothing")
        ET.SubElement(result, "function").text = action.tag
        ET.SubElement(result, "controlid").text = function.get("controlid", "")
        try:
            if action.tag == "getAPISession":
                data = self._api_session(request)
            elif action.tag == "query":
                data = self._query(action)
            elif action.tag in ("create", "update"):
                data = self._write(action.tag, action)
            else:
                raise FunctionFailed(INVALID_REQUEST, f"Unknown function {action.tag}.")
        except FunctionFailed as failure:
            status.text = "failure"
            _errormessage(result, failure.errorno, failure.description2, failure.description)
            return result
        status.text = "success"
        result.append(data)
        return result

    def _api_session(self, request: Request) -> ET.Element:
        session_id = secrets.token_urlsafe(24) + ".."
        self.sessions[session_id] = (POD_PATH, datetime.now(UTC) + SESSION_TIMEOUT)
        data = ET.Element("data")
        api = ET.SubElement(data, "api")
        ET.SubElement(api, "sessionid").text = session_id
        ET.SubElement(api, "endpoint").text = request.host_url.rstrip("/") + POD_PATH
        ET.SubElement(api, "locationid").text = ""
        return data

    # -- query -----------------------------------------------------------------------------------------------

    def _fields_of(self, object_name: str) -> set[str]:
        return {*OBJECTS[object_name].fields, *AUDIT_FIELDS, DEFAULT_EXTERNAL_ID_FIELD}

    def _query(self, query: ET.Element) -> ET.Element:
        object_name = (query.findtext("object") or "").strip()
        if object_name not in OBJECTS:
            raise FunctionFailed(INVALID_FIELD, f"Object definition {object_name} not found.")
        known = self._fields_of(object_name)
        select = [(f.text or "").strip() for f in query.findall("./select/field")]
        if not select:
            raise FunctionFailed(
                INVALID_REQUEST, "The select element is required: returning all fields is not supported."
            )
        for name in select:
            if name not in known:
                raise FunctionFailed(INVALID_FIELD, f"Invalid field {name} for object {object_name}.")
        insensitive = (query.findtext("./options/caseinsensitive") or "").strip().lower() == "true"
        condition = query.find("./filter/*")
        rows = [r for r in self.records[object_name].values() if self._matches(object_name, r, condition, insensitive)]
        for order in reversed(query.findall("./orderby/order")):
            name = (order.findtext("field") or "").strip()
            if name not in known:
                raise FunctionFailed(INVALID_FIELD, f"Invalid field {name} in orderby.")
            rows.sort(
                key=lambda r, n=name: _sort_key(object_name, n, r.get(n)), reverse=order.find("descending") is not None
            )
        try:
            size = int(query.findtext("pagesize") or 100)
            offset = int(query.findtext("offset") or 0)
        except ValueError:
            raise FunctionFailed(INVALID_REQUEST, "pagesize and offset must be whole numbers.") from None
        if not 1 <= size <= QUERY_PAGE_MAX:
            raise FunctionFailed(INVALID_REQUEST, f"pagesize must be between 1 and {QUERY_PAGE_MAX}.")
        page = rows[offset : offset + size]
        data = ET.Element("data", listtype=object_name, totalcount=str(len(rows)), offset=str(offset))
        data.set("count", str(len(page)))
        data.set("numremaining", str(max(0, len(rows) - offset - len(page))))
        # Fault injection: every other malformed row loses its RECORDNO, the others get a WHENMODIFIED that is no date.
        broken = {position: n % 2 for n, position in enumerate(sorted(self.malformed_positions(len(page))))}
        for position, record in enumerate(page):
            element = ET.SubElement(data, object_name)
            for name in select:
                value = record.get(name)
                if broken.get(position) == 0 and name == "RECORDNO":
                    continue
                if broken.get(position) == 1 and name == "WHENMODIFIED":
                    value = "sometime last week"
                ET.SubElement(element, name).text = "" if value is None else str(value)
        return data

    def _matches(self, object_name: str, record: dict[str, Any], node: ET.Element | None, insensitive: bool) -> bool:
        if node is None:
            return True
        if node.tag in ("and", "or"):
            parts = [self._matches(object_name, record, child, insensitive) for child in node]
            return all(parts) if node.tag == "and" else any(parts)
        field = (node.findtext("field") or "").strip()
        if field not in self._fields_of(object_name):
            raise FunctionFailed(INVALID_FIELD, f"Invalid field {field} in filter.")
        actual = _comparable(object_name, field, record.get(field), insensitive)
        values = [_comparable(object_name, field, v.text, insensitive) for v in node.findall("value")]
        if node.tag in COMPARISONS:
            return bool(values) and COMPARISONS[node.tag](actual, values[0])
        if node.tag in ("in", "notin"):
            return (actual in values) == (node.tag == "in")
        if node.tag in ("isnull", "isnotnull"):
            return (actual is None) == (node.tag == "isnull")
        if node.tag == "like" and values:
            pattern = str(values[0]).replace("%", "")
            return actual is not None and pattern in str(actual)
        raise FunctionFailed(INVALID_REQUEST, f"Unsupported filter operator {node.tag}.")

    # -- create and update -------------------------------------------------------------------------------------

    def _write(self, action: str, element: ET.Element) -> ET.Element:
        if len(element) != 1 or element[0].tag not in OBJECTS:
            raise FunctionFailed(INVALID_FIELD, f"{action} takes one of {', '.join(OBJECTS)}.")
        body = element[0]
        object_name = body.tag
        values = _flatten(body)
        lines = None
        items = body.find("ARINVOICEITEMS")
        if items is not None:
            lines = [_flatten(line) for line in items]
        known = self._fields_of(object_name)
        for name in values:
            if name not in known or (name in READ_ONLY and name != "RECORDNO"):
                raise FunctionFailed(INVALID_FIELD, f"Field {name} is not valid for {action} of {object_name}.")
        existing = None
        if action == "update":
            record_no = values.pop("RECORDNO", None)
            key = OBJECTS[object_name].key_field
            if record_no:
                existing = self.records[object_name].get(int(record_no)) if str(record_no).isdigit() else None
            elif values.get(key):
                existing = self._find(object_name, key, values[key])
            if existing is None:
                raise FunctionFailed(INVALID_REFERENCE, f"No {object_name} with RECORDNO {record_no} exists.")
        values.pop("RECORDNO", None)
        merged = {**(existing or {}), **values}
        if lines is not None:
            merged["ARINVOICEITEMS"] = lines
        self._validate(object_name, merged, existing)
        if existing is None:
            record = self._store(object_name, merged, datetime.now(UTC))
        else:
            existing.update(merged)
            existing["WHENMODIFIED"] = _when(datetime.now(UTC))
            self._derive(object_name, existing)
            record = existing
        data = ET.Element("data", listtype="objects", count="1")
        written = ET.SubElement(data, object_name.lower())
        ET.SubElement(written, "RECORDNO").text = str(record["RECORDNO"])
        key = OBJECTS[object_name].key_field
        ET.SubElement(written, key).text = str(record.get(key) or "")
        return data

    def _validate(self, object_name: str, record: dict[str, Any], existing: dict[str, Any] | None) -> None:
        for name in REQUIRED[object_name]:
            if not record.get(name):
                raise FunctionFailed(REQUIRED_MISSING, f"Required field {name} is missing.")
        key = OBJECTS[object_name].key_field
        clash = self._find(object_name, key, record.get(key)) if object_name != "ARINVOICE" else None
        if clash is not None and clash is not existing:
            raise FunctionFailed(
                DUPLICATE_KEY, f"Another {object_name} with the given value(s) {record[key]} already exists."
            )
        for name, allowed in ENUMS.items():
            if record.get(name) is not None and name in self._fields_of(object_name) and record[name] not in allowed:
                raise FunctionFailed(
                    INVALID_VALUE, f"Invalid value {record[name]} for {name}; use {', '.join(allowed)}."
                )
        for name in OBJECTS[object_name].date_fields:
            if record.get(name) and _parse_date(record[name]) is None:
                raise FunctionFailed(INVALID_VALUE, f"Invalid date {record[name]} for {name}: use MM/DD/YYYY.")
        references = {
            ("PROJECT", "CUSTOMERID"): ("CUSTOMER", "Customer"),
            ("PROJECT", "MANAGERID"): ("EMPLOYEE", "Project manager"),
            ("PROJECT", "PARENTID"): ("PROJECT", "Parent project"),
            ("EMPLOYEE", "SUPERVISORID"): ("EMPLOYEE", "Supervisor"),
            ("ARINVOICE", "CUSTOMERID"): ("CUSTOMER", "Customer"),
        }
        for (owner, field), (target, label) in references.items():
            if owner == object_name and record.get(field):
                if self._find(target, OBJECTS[target].key_field, record[field]) is None:
                    raise FunctionFailed(INVALID_REFERENCE, f"Invalid {label} {record[field]} specified.")
        if object_name == "PROJECT" and record.get("PROJECTCATEGORY") == "Contract" and not record.get("CUSTOMERID"):
            raise FunctionFailed(REQUIRED_MISSING, "A Contract project requires a customer (CUSTOMERID).")
        if object_name == "ARINVOICE":
            self._validate_invoice(record)

    def _validate_invoice(self, record: dict[str, Any]) -> None:
        if not record.get("WHENDUE") and not record.get("TERMNAME"):
            raise FunctionFailed(REQUIRED_MISSING, "Provide a due date (WHENDUE) or payment terms (TERMNAME).")
        lines = record.get("ARINVOICEITEMS") or []
        if not lines:
            raise FunctionFailed(REQUIRED_MISSING, "An invoice needs at least one line (ARINVOICEITEMS).")
        for number, line in enumerate(lines, 1):
            unknown = set(line) - set(LINE_FIELDS)
            if unknown:
                raise FunctionFailed(INVALID_FIELD, f"Line {number}: unknown field {sorted(unknown)[0]}.")
            if not line.get("ACCOUNTNO") or line.get("AMOUNT") in (None, ""):
                raise FunctionFailed(REQUIRED_MISSING, f"Line {number}: ACCOUNTNO and AMOUNT are required.")
            try:
                Decimal(str(line["AMOUNT"]))
            except InvalidOperation:
                raise FunctionFailed(INVALID_VALUE, f"Line {number}: invalid amount {line['AMOUNT']}.") from None
            if line.get("PROJECTID") and self._find("PROJECT", "PROJECTID", line["PROJECTID"]) is None:
                raise FunctionFailed(
                    INVALID_REFERENCE, f"Line {number}: invalid Project {line['PROJECTID']} specified."
                )

    # -- for tests ---------------------------------------------------------------------------------------------

    def count(self, object_name: str) -> int:
        with self.lock:
            return len(self.records[object_name])

    def find(self, object_name: str, field: str, value: str) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(r) for r in self.records[object_name].values() if str(r.get(field)) == value]


def _flatten(element: ET.Element, prefix: str = "") -> dict[str, Any]:
    values: dict[str, Any] = {}
    for child in element:
        if child.tag == "ARINVOICEITEMS" and not prefix:
            continue
        name = f"{prefix}{child.tag}"
        if len(child):
            values.update(_flatten(child, f"{name}."))
        else:
            values[name] = (child.text or "").strip() or None
    return values


def _parse_date(value: str) -> date | None:
    try:
        return datetime.strptime(value, DATE_FORMAT).date()
    except (TypeError, ValueError):
        return None


def _comparable(object_name: str, field: str, value: Any, insensitive: bool) -> Any:
    if value is None or value == "":
        return None
    if field == "WHENMODIFIED":
        try:
            return datetime.strptime(str(value), WHEN_FORMAT)
        except ValueError:
            raise FunctionFailed(INVALID_VALUE, f"Invalid date and time {value} for WHENMODIFIED.") from None
    if field in OBJECTS[object_name].date_fields:
        parsed = _parse_date(str(value))
        if parsed is None:
            raise FunctionFailed(INVALID_VALUE, f"Invalid date {value} for {field}.")
        return parsed
    if field in NUMBER_FIELDS:
        try:
            return Decimal(str(value))
        except InvalidOperation:
            raise FunctionFailed(INVALID_VALUE, f"Invalid number {value} for {field}.") from None
    return str(value).lower() if insensitive else str(value)


def _sort_key(object_name: str, field: str, value: Any) -> tuple[bool, Any]:
    comparable = _comparable(object_name, field, value, False)
    return (comparable is not None, comparable if comparable is not None else 0)


def create_app(firm: Firm | None = None) -> IntacctSandbox:
    return IntacctSandbox(firm)
