"""Sage Intacct sandbox gateway: the control block, sign-in and sessions, function dispatch and Intacct's refusals."""

from __future__ import annotations

import hmac
import secrets
import xml.etree.ElementTree as ET  # noqa: S405 -- only to build answers; requests are parsed by defusedxml
from datetime import UTC, datetime

from defusedxml.ElementTree import fromstring
from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from connectors.intacct.client import DUPLICATE_CONTROL_ID, GATEWAY_PATH, WRITE_BATCH
from connectors.intacct.records import DTD_VERSION, RATE_LIMITED_ERROR
from connectors.intacct.sandbox.query import IntacctQuery
from connectors.intacct.sandbox.state import (
    DEMO_CREDENTIALS,
    INVALID_REQUEST,
    PARSE_ERROR,
    POD_PATH,
    SENDER_REFUSED,
    SESSION_TIMEOUT,
    FunctionFailed,
    IntacctState,
)
from connectors.sandbox.app import SandboxApp, json_response
from connectors.sandbox.firm import Firm


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


class IntacctSandbox(IntacctState, IntacctQuery, SandboxApp):
    vendor = "intacct"

    def routes(self) -> list[Rule]:
        return [
            Rule(GATEWAY_PATH, endpoint="gateway", methods=["POST"]),
            Rule(POD_PATH, endpoint="gateway", methods=["POST"]),
        ]

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


def create_app(firm: Firm | None = None) -> IntacctSandbox:
    return IntacctSandbox(firm)
