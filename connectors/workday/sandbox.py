"""Workday sandbox: a local emulator of Human_Resources Get_Workers (SOAP), its WSDL, and OAuth for API clients.

Every worker is a history of effective-dated business processes (Hire Employee, Terminate Employee, Change Job,
...), each with the moment it was entered and the date it takes effect. Get_Workers answers as of the request's
As_Of_Effective_Date and As_Of_Entry_DateTime, filters on the transaction log (Updated_From/Through: entered in the
window; Effective_From/Through: taking effect in it), pages by Response_Filter Page/Count (Count at most 999) with
Response_Results, and refuses with SOAP faults (HTTP 500): Client.validationError, Client.authenticationError.
Authentication: WS-Security UsernameToken ("user@tenant") or an OAuth bearer token from /ccx/oauth2/{tenant}/token.
The WSDL is served at the endpoint with ?wsdl, so zeep can call the sandbox. The firm's people are the workers;
those whose HR record has no work email have none here either.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from lxml import etree
from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from connectors.base import parse_utc_datetime
from connectors.sandbox.app import SandboxApp, json_response
from connectors.sandbox.firm import Firm
from connectors.workday.records import BSVC, COST_RATE_PLAN, NS, PARSER, SOAP_ENV, WSSE, iso_moment
from connectors.workday.wsdl import human_resources_wsdl

TENANT = "haldenrowe"
DEMO_CREDENTIALS = {
    "tenant": TENANT,
    "api_version": "v42.0",
    "username": "ISU_Integrations",
    "password": "wd-demo-Isu-7c1e94b2d5",
}
DEMO_OAUTH_CREDENTIALS = {
    "tenant": TENANT,
    "api_version": "v42.0",
    "client_id": "ZTA1YjQ2ZDYtNWQ4My00NjA3",
    "client_secret": "wd-demo-secret-3f9a0c7e5b1d",
    "refresh_token": "wd-demo-refresh-8e2b6a4c0d9f1735",
}
SEED_EPOCH = datetime(2024, 1, 2, 9, 0, 0, tzinfo=UTC)  # the hires were entered two a minute from here
MAX_VERSION = (44, 2)  # newer versions are refused, as some tenants do
TOKEN_SECONDS = 3600


@dataclass
class Event:
    """One business process on a worker: what it changed, when it was entered and when it takes effect."""

    process: str  # "Hire Employee", "Terminate Employee", "Change Job", ...
    entered: datetime
    effective: date
    changes: dict[str, Any]
    wid: str = field(default_factory=lambda: secrets.token_hex(16))


def _wid(*parts: object) -> str:
    return hashlib.sha256(":".join(map(str, parts)).encode()).hexdigest()[:32]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_")


def _fault(code: str, message: str, *, errors: list[tuple[str, str]] = (), status: int = 500) -> Response:
    """A SOAP 1.1 fault as Workday sends it; `errors` are (message, xpath) Validation_Error entries."""
    detail = ""
    if errors:
        items = "".join(
            f"<wd:Validation_Error><wd:Message>{escape(text)}</wd:Message>"
            f"<wd:Detail_Message>{escape(text)}</wd:Detail_Message><wd:Xpath>{escape(xpath)}</wd:Xpath>"
            "</wd:Validation_Error>"
            for text, xpath in errors
        )
        detail = f'<detail><wd:Validation_Fault xmlns:wd="{BSVC}">{items}</wd:Validation_Fault></detail>'
    body = (
        f'<?xml version="1.0" encoding="UTF-8"?><SOAP-ENV:Envelope xmlns:SOAP-ENV="{SOAP_ENV}"><SOAP-ENV:Body>'
        f"<SOAP-ENV:Fault><faultcode>{escape(code)}</faultcode><faultstring>{escape(message)}</faultstring>"
        f"{detail}</SOAP-ENV:Fault></SOAP-ENV:Body></SOAP-ENV:Envelope>"
    )
    return Response(body, status=status, content_type="text/xml; charset=utf-8")


def _validation(message: str, xpath: str) -> Response:
    return _fault("SOAP-ENV:Client.validationError", "Validation error occurred. " + message, errors=[(message, xpath)])


def _bool(text: str | None) -> bool:
    return (text or "").strip().lower() in ("1", "true")


class WorkdaySandbox(SandboxApp):
    vendor = "workday"

    def routes(self) -> list[Rule]:
        return [
            Rule(
                "/ccx/service/<tenant>/Human_Resources/<version>", endpoint="human_resources", methods=["GET", "POST"]
            ),
            Rule("/ccx/oauth2/<tenant>/token", endpoint="token", methods=["POST"]),
        ]

    # -- state ---------------------------------------------------------------------------------------------------

    def reset_state(self) -> None:
        self.workers: dict[int, list[Event]] = {}  # worker number -> its business processes
        self.tokens: dict[str, float] = {}  # access token -> expiry (monotonic)
        people = self.firm.people()
        self.number_by_email = {p["work_email"]: p["id"] for p in people}
        # The firm's HR records without a work email have none here either. Its records without a department
        # do have one: Workday keeps every worker in a supervisory organization.
        no_email = {pid for pid, missing in self.firm.hr_gaps().items() if missing == "work_email"}
        for person in people:
            entered = SEED_EPOCH + timedelta(minutes=(person["id"] - 1) // 2)
            self._hire(person["id"], person, entered=entered, email=person["id"] not in no_email)

    def _hire(self, number: int, person: dict[str, Any], *, entered: datetime, email: bool = True) -> None:
        supervisor = self.number_by_email.get(person["supervisor_email"] or "")
        hire = Event(
            process="Hire Employee",
            entered=entered,
            effective=date.fromisoformat(person["hire_date"]),
            changes={
                "worker_id": person["employee_number"],
                "user_id": person["work_email"].split("@")[0],
                "first_name": person["first_name"],
                "last_name": person["last_name"],
                "email": person["work_email"] if email else None,
                "country": person["country"],
                "position_title": person["job_title"],
                "business_title": person["job_title"],
                "location": person["location"],
                "department": person["department"],
                "manager": supervisor,
                "pay_amount": person["pay_rate"],
                "currency": person["currency"],
                "cost_rate": person["cost_rate"],
                "active": True,
                "terminated": False,
                "hire_date": person["hire_date"],
                "termination_date": None,
            },
            wid=_wid("hire", number),
        )
        self.workers[number] = [hire]
        if person["termination_date"]:
            self.workers[number].append(
                Event(
                    process="Terminate Employee",
                    entered=entered,
                    effective=date.fromisoformat(person["termination_date"]),
                    changes={"active": False, "terminated": True, "termination_date": person["termination_date"]},
                    wid=_wid("terminate", number),
                )
            )

    def seed(self, volumes: dict[str, int]) -> dict[str, int]:
        """{"workers": N}: grow the population to N with more hires shaped like the firm's people."""
        unknown = set(volumes) - {"workers"}
        if unknown:
            raise ValueError(f"the workday sandbox seeds workers only, not {sorted(unknown)}")
        wanted = volumes.get("workers", len(self.workers))
        people = self.firm.people()
        number = max(self.workers)
        while len(self.workers) < wanted:
            number += 1
            model = people[(number - 1) % len(people)]
            local, domain = model["work_email"].split("@")
            person = dict(
                model,
                employee_number=f"E{1000 + number}",
                work_email=f"{local}.{number}@{domain}",
                supervisor_email=model["supervisor_email"],
            )
            self._hire(number, person, entered=SEED_EPOCH + timedelta(minutes=(number - 1) // 2))
        return {"workers": len(self.workers)}

    def view(self, number: int, *, as_of: date, entered_by: datetime) -> dict[str, Any] | None:
        """The worker as of an effective date, counting only what was entered by a moment; None before the hire."""
        events = sorted(
            (e for e in self.workers[number] if e.entered <= entered_by and e.effective <= as_of),
            key=lambda e: (e.effective, e.entered),
        )
        if not events or events[0].process != "Hire Employee":
            return None
        state: dict[str, Any] = {}
        for event in events:
            state.update(event.changes)
        state["events"] = [e for e in self.workers[number] if e.entered <= entered_by]
        state["position_effective"] = max(
            (e.effective for e in events if {"position_title", "business_title", "hire_date"} & set(e.changes)),
            default=events[0].effective,
        )
        return state

    # -- test and demo helpers -----------------------------------------------------------------------------------

    def enter(self, number: int, process: str, *, entered: datetime, effective: date, **changes: Any) -> Event:
        """Enter a business process on a worker (what an HR partner does in Workday), e.g. a Change Job."""
        with self.lock:
            event = Event(process=process, entered=entered, effective=effective, changes=changes)
            self.workers[number].append(event)
            return event

    def wid_of(self, number: int) -> str:
        return _wid("worker", number)

    def expire_tokens(self) -> None:
        with self.lock:
            self.tokens.clear()

    # -- vendor hooks ----------------------------------------------------------------------------------------------

    def rate_limited_response(self, request: Request, retry_after: float) -> Response:
        response = _fault("SOAP-ENV:Server.throttled", "Too many requests. Please retry later.", status=429)
        response.headers["Retry-After"] = str(math.ceil(retry_after))
        return response

    def server_error_response(self, request: Request) -> Response:
        return _fault("SOAP-ENV:Server.processingError", "An internal error occurred (injected by the sandbox).")

    def not_found_response(self, request: Request) -> Response:
        return Response(f"{request.path} was not found", status=404, content_type="text/plain")

    # -- OAuth ---------------------------------------------------------------------------------------------------

    def token(self, request: Request, tenant: str) -> Response:
        auth = request.authorization
        client_ok = (
            tenant == TENANT
            and auth is not None
            and hmac.compare_digest(auth.username or "", DEMO_OAUTH_CREDENTIALS["client_id"])
            and hmac.compare_digest(auth.password or "", DEMO_OAUTH_CREDENTIALS["client_secret"])
        )
        if not client_ok:
            return json_response({"error": "invalid_client", "error_description": "Invalid client credentials"}, 401)
        if request.form.get("grant_type") != "refresh_token":
            return json_response({"error": "unsupported_grant_type"}, 400)
        if not hmac.compare_digest(request.form.get("refresh_token", ""), DEMO_OAUTH_CREDENTIALS["refresh_token"]):
            return json_response({"error": "invalid_grant", "error_description": "Invalid refresh token"}, 400)
        access = secrets.token_urlsafe(32)
        with self.lock:
            self.tokens[access] = time.monotonic() + TOKEN_SECONDS
        return json_response({"access_token": access, "token_type": "Bearer", "expires_in": TOKEN_SECONDS})

    # -- SOAP ----------------------------------------------------------------------------------------------------

    def human_resources(self, request: Request, tenant: str, version: str) -> Response:
        if request.method == "GET":
            if "wsdl" not in request.args and "WSDL" not in request.args:
                return Response("Send ?wsdl for the service description", status=400, content_type="text/plain")
            location = f"{request.host_url.rstrip('/')}/ccx/service/{tenant}/Human_Resources/{version}"
            return Response(human_resources_wsdl(location), content_type="text/xml; charset=utf-8")
        if tenant != TENANT:
            return _fault("SOAP-ENV:Client.authenticationError", "invalid username or password")
        found = re.fullmatch(r"v(\d+)\.(\d+)", version)
        if not found or (int(found[1]), int(found[2])) > MAX_VERSION:
            return _validation(f"The web service version '{version}' is invalid for this tenant.", "/")
        try:
            root = etree.fromstring(request.get_data(), PARSER)  # noqa: S320 - hardened parser
        except etree.XMLSyntaxError as exc:
            return _fault("SOAP-ENV:Client", f"The request is not well-formed XML: {exc}")
        refusal = self._authenticate_soap(request, root)
        if refusal is not None:
            return refusal
        body = root.find("env:Body", NS)
        operation = body[0] if body is not None and len(body) else None
        if operation is None or operation.tag != f"{{{BSVC}}}Get_Workers_Request":
            name = etree.QName(operation).localname if operation is not None else "nothing"
            return _fault("SOAP-ENV:Client", f"This sandbox answers Get_Workers_Request only, not {name}.")
        return self._get_workers(operation, version)

    def _authenticate_soap(self, request: Request, root: etree._Element) -> Response | None:
        bearer = request.headers.get("Authorization", "")
        if bearer.startswith("Bearer "):
            with self.lock:
                expiry = self.tokens.get(bearer[7:].strip())
            if expiry is None or expiry < time.monotonic():
                return _fault("SOAP-ENV:Client.authenticationError", "Invalid or expired OAuth token")
            return None
        token = root.find(f"env:Header/{{{WSSE}}}Security/{{{WSSE}}}UsernameToken", NS)
        user = token.findtext(f"{{{WSSE}}}Username") if token is not None else None
        password = token.findtext(f"{{{WSSE}}}Password") if token is not None else None
        expected_user = f"{DEMO_CREDENTIALS['username']}@{TENANT}"
        if not (
            user
            and password is not None
            and hmac.compare_digest(user, expected_user)
            and hmac.compare_digest(password, DEMO_CREDENTIALS["password"])
        ):
            return _fault("SOAP-ENV:Client.authenticationError", "invalid username or password")
        return None

    def _get_workers(self, operation: etree._Element, version: str) -> Response:
        def text(path: str) -> str | None:
            value = operation.findtext(path, namespaces=NS)
            return value.strip() if value and value.strip() else None

        now = datetime.now(UTC).replace(microsecond=0)
        page = text("wd:Response_Filter/wd:Page") or "1"
        count = text("wd:Response_Filter/wd:Count") or "100"
        if not page.isdigit() or int(page) < 1:
            return _validation(f"Page must be a positive integer, not '{page}'.", "wd:Response_Filter/wd:Page")
        if not count.isdigit() or not 1 <= int(count) <= 999:
            return _validation(f"Count must be between 1 and 999, not '{count}'.", "wd:Response_Filter/wd:Count")
        page_number, per_page = int(page), int(count)
        as_of_text = text("wd:Response_Filter/wd:As_Of_Effective_Date")
        entry_text = text("wd:Response_Filter/wd:As_Of_Entry_DateTime")
        as_of = parse_utc_datetime(as_of_text) if as_of_text else now
        entered_by = parse_utc_datetime(entry_text) if entry_text else now
        if as_of is None or entered_by is None:
            return _validation("As_Of dates must be xsd:date or xsd:dateTime values.", "wd:Response_Filter")

        window = "wd:Request_Criteria/wd:Transaction_Log_Criteria_Data/wd:Transaction_Date_Range_Data"
        bounds = {
            name: text(f"{window}/wd:{name}")
            for name in ("Updated_From", "Updated_Through", "Effective_From", "Effective_Through")
        }
        moments = {name: parse_utc_datetime(value) for name, value in bounds.items() if value}
        if any(moment is None for moment in moments.values()):
            return _validation("Transaction date range values must be xsd:dateTime values.", window)
        exclude_inactive = _bool(text("wd:Request_Criteria/wd:Exclude_Inactive_Workers"))

        with self.lock:
            matched = []
            for number, events in self.workers.items():
                if not self._in_window(events, moments, entered_by):
                    continue
                state = self.view(number, as_of=as_of.date(), entered_by=entered_by)
                if state is None or (exclude_inactive and not state["active"]):
                    continue
                matched.append((number, state))
            total = len(matched)
            chunk = matched[(page_number - 1) * per_page : page_number * per_page]
            workers = [self._worker_xml(number, state) for number, state in chunk]
        for position in self.malformed_positions(len(workers)):
            workers[position] = self._corrupt(workers[position], position)
        pages = max(1, math.ceil(total / per_page))
        body = (
            f'<?xml version="1.0" encoding="UTF-8"?><env:Envelope xmlns:env="{SOAP_ENV}"><env:Body>'
            f'<wd:Get_Workers_Response xmlns:wd="{BSVC}" wd:version={quoteattr(version)}>'
            f"<wd:Response_Filter><wd:As_Of_Effective_Date>{as_of.date().isoformat()}</wd:As_Of_Effective_Date>"
            f"<wd:As_Of_Entry_DateTime>{iso_moment(entered_by)}</wd:As_Of_Entry_DateTime>"
            f"<wd:Page>{page_number}</wd:Page><wd:Count>{per_page}</wd:Count></wd:Response_Filter>"
            f"<wd:Response_Results><wd:Total_Results>{total}</wd:Total_Results><wd:Total_Pages>{pages}</wd:Total_Pages>"
            f"<wd:Page_Results>{len(workers)}</wd:Page_Results><wd:Page>{page_number}</wd:Page></wd:Response_Results>"
            f"<wd:Response_Data>{''.join(workers)}</wd:Response_Data>"
            "</wd:Get_Workers_Response></env:Body></env:Envelope>"
        )
        return Response(body, content_type="text/xml; charset=utf-8")

    @staticmethod
    def _in_window(events: list[Event], moments: dict[str, datetime], entered_by: datetime) -> bool:
        """Whether a worker's transaction log has an entry the request's date range asks for."""
        if not moments:
            return True
        start, end = moments.get("Updated_From"), moments.get("Updated_Through")
        if start or end:
            return any((not start or e.entered >= start) and (not end or e.entered <= end) for e in events)
        start, end = moments.get("Effective_From"), moments.get("Effective_Through")
        for event in events:
            takes_effect = datetime(event.effective.year, event.effective.month, event.effective.day, tzinfo=UTC)
            if (
                event.entered <= entered_by
                and (not start or takes_effect >= start)
                and (not end or takes_effect <= end)
            ):
                return True
        return False

    def _worker_xml(self, number: int, state: dict[str, Any]) -> str:
        wid = self.wid_of(number)
        formatted = f"{state['first_name']} {state['last_name']}"
        manager = ""
        if state.get("manager"):
            boss = self.workers[state["manager"]][0].changes
            manager = (
                "<wd:Manager_as_of_last_detected_manager_change_Reference>"
                f'<wd:ID wd:type="WID">{self.wid_of(state["manager"])}</wd:ID>'
                f'<wd:ID wd:type="Employee_ID">{escape(boss["worker_id"])}</wd:ID>'
                "</wd:Manager_as_of_last_detected_manager_change_Reference>"
            )
        termination = (
            f"<wd:Termination_Date>{state['termination_date']}</wd:Termination_Date>"
            if state.get("termination_date")
            else ""
        )
        plans = [("Salary_Plan", state["pay_amount"], "Annual")]
        if state.get("cost_rate"):
            plans.append((COST_RATE_PLAN, state["cost_rate"], "Hourly"))
        compensation = "".join(
            "<wd:Employee_Base_Pay_Plan_Assignment_Data>"
            f'<wd:Compensation_Plan_Reference><wd:ID wd:type="Compensation_Plan_ID">{plan}</wd:ID>'
            f"</wd:Compensation_Plan_Reference><wd:Amount>{amount}</wd:Amount>"
            f'<wd:Currency_Reference><wd:ID wd:type="Currency_ID">{state["currency"]}</wd:ID></wd:Currency_Reference>'
            f'<wd:Frequency_Reference><wd:ID wd:type="Frequency_ID">{frequency}</wd:ID></wd:Frequency_Reference>'
            "</wd:Employee_Base_Pay_Plan_Assignment_Data>"
            for plan, amount, frequency in plans
        )
        log = "".join(
            "<wd:Transaction_Log_Entry>"
            f'<wd:Transaction_Log_Reference><wd:ID wd:type="WID">{event.wid}</wd:ID></wd:Transaction_Log_Reference>'
            "<wd:Transaction_Log_Data>"
            f"<wd:Transaction_Log_Description>{escape(event.process)}: {escape(formatted)}</wd:Transaction_Log_Description>"
            f"<wd:Transaction_Effective_Moment>{event.effective.isoformat()}T00:00:00Z</wd:Transaction_Effective_Moment>"
            f"<wd:Transaction_Entry_Moment>{iso_moment(event.entered)}</wd:Transaction_Entry_Moment>"
            "<wd:Transaction_Log_Type_Reference>"
            f'<wd:ID wd:type="Business_Process_Type">{escape(event.process)}</wd:ID>'
            "</wd:Transaction_Log_Type_Reference></wd:Transaction_Log_Data></wd:Transaction_Log_Entry>"
            for event in sorted(state["events"], key=lambda e: e.entered)
        )
        contact = (
            "<wd:Contact_Data><wd:Email_Address_Data>"
            f"<wd:Email_Address>{escape(state['email'])}</wd:Email_Address>"
            '<wd:Usage_Data wd:Public="1"><wd:Type_Data wd:Primary="1"><wd:Type_Reference>'
            '<wd:ID wd:type="Communication_Usage_Type_ID">WORK</wd:ID></wd:Type_Reference></wd:Type_Data>'
            "</wd:Usage_Data></wd:Email_Address_Data></wd:Contact_Data>"
            if state["email"]
            else ""  # a worker whose work email was never entered
        )
        return (
            "<wd:Worker>"
            f'<wd:Worker_Reference><wd:ID wd:type="WID">{wid}</wd:ID>'
            f'<wd:ID wd:type="Employee_ID">{escape(state["worker_id"])}</wd:ID></wd:Worker_Reference>'
            f"<wd:Worker_Descriptor>{escape(formatted)}</wd:Worker_Descriptor>"
            "<wd:Worker_Data>"
            f"<wd:Worker_ID>{escape(state['worker_id'])}</wd:Worker_ID>"
            f"<wd:User_ID>{escape(state['user_id'])}</wd:User_ID>"
            "<wd:Personal_Data><wd:Name_Data><wd:Legal_Name_Data>"
            f"<wd:Name_Detail_Data wd:Formatted_Name={quoteattr(formatted)} "
            f"wd:Reporting_Name={quoteattr(state['last_name'] + ', ' + state['first_name'])}>"
            f'<wd:Country_Reference><wd:ID wd:type="ISO_3166-1_Alpha-2_Code">{state["country"]}</wd:ID>'
            "</wd:Country_Reference>"
            f"<wd:First_Name>{escape(state['first_name'])}</wd:First_Name>"
            f"<wd:Last_Name>{escape(state['last_name'])}</wd:Last_Name>"
            "</wd:Name_Detail_Data></wd:Legal_Name_Data></wd:Name_Data>"
            f"{contact}</wd:Personal_Data>"
            "<wd:Employment_Data>"
            '<wd:Worker_Job_Data wd:Primary_Job="1">'
            f'<wd:Position_Data wd:Effective_Date="{state["position_effective"].isoformat()}">'
            f"<wd:Position_ID>P-{escape(state['worker_id'])}</wd:Position_ID>"
            f"<wd:Position_Title>{escape(state['position_title'])}</wd:Position_Title>"
            f"<wd:Business_Title>{escape(state['business_title'])}</wd:Business_Title>"
            '<wd:Worker_Type_Reference><wd:ID wd:type="Employee_Type_ID">Regular</wd:ID></wd:Worker_Type_Reference>'
            "<wd:Business_Site_Summary_Data>"
            f'<wd:Location_Reference><wd:ID wd:type="Location_ID">{_slug(state["location"])}</wd:ID>'
            f"</wd:Location_Reference><wd:Name>{escape(state['location'])}</wd:Name>"
            "</wd:Business_Site_Summary_Data>"
            f"{manager}"
            "</wd:Position_Data></wd:Worker_Job_Data>"
            "<wd:Worker_Status_Data>"
            f"<wd:Active>{int(state['active'])}</wd:Active>"
            f"<wd:Hire_Date>{state['hire_date']}</wd:Hire_Date>"
            f"<wd:Terminated>{int(state['terminated'])}</wd:Terminated>{termination}"
            "</wd:Worker_Status_Data>"
            "</wd:Employment_Data>"
            f"<wd:Compensation_Data>{compensation}</wd:Compensation_Data>"
            "<wd:Organization_Data><wd:Worker_Organization_Data><wd:Organization_Data>"
            f"<wd:Organization_Reference_ID>SUP_{_slug(state['department'])}</wd:Organization_Reference_ID>"
            f"<wd:Organization_Name>{escape(state['department'])}</wd:Organization_Name>"
            '<wd:Organization_Type_Reference><wd:ID wd:type="Organization_Type_ID">Supervisory</wd:ID>'
            "</wd:Organization_Type_Reference>"
            "</wd:Organization_Data></wd:Worker_Organization_Data></wd:Organization_Data>"
            f"<wd:Transaction_Log_Entry_Data>{log}</wd:Transaction_Log_Entry_Data>"
            "</wd:Worker_Data>"
            "</wd:Worker>"
        )

    @staticmethod
    def _corrupt(worker: str, position: int) -> str:
        if position % 2 == 0:
            return re.sub(r'<wd:ID wd:type="WID">[0-9a-f]{32}</wd:ID>', "", worker, count=1)
        return re.sub(r"<wd:Hire_Date>[^<]*</wd:Hire_Date>", "<wd:Hire_Date>31/02/2019</wd:Hire_Date>", worker)


def create_app(firm: Firm | None = None) -> WorkdaySandbox:
    return WorkdaySandbox(firm)
