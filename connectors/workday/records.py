"""Workday's SOAP as Human_Resources speaks it: the namespaces, its faults, and a Get_Workers worker as our fields."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import requests
from lxml import etree

from connectors.base import (
    parse_utc_datetime,
)

BSVC = "urn:com.workday/bsvc"


SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"


WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"


NS = {"wd": BSVC, "env": SOAP_ENV}


# XML from a vendor is parsed without entities, DTDs or network access (XXE, entity expansion).
PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


WORKER_FIELDS = (
    "WID",
    "Worker_ID",
    "User_ID",
    "First_Name",
    "Last_Name",
    "Formatted_Name",
    "Email_Address",
    "Business_Title",
    "Position_Title",
    "Worker_Type",
    "Location",
    "Supervisory_Organization",
    "Manager_Worker_ID",
    "Active",
    "Hire_Date",
    "Terminated",
    "Termination_Date",
    "Base_Pay_Amount",
    "Base_Pay_Currency",
    "Base_Pay_Frequency",
    "Cost_Rate_Amount",
    "Cost_Rate_Currency",
    "Transaction_Entry_Moment",
)


# ---------------------------------------------------------------------------------------------------------------
# (unverified) assumptions, kept here and emulated the same way by connectors/workday/sandbox.py:
# - The OAuth token endpoint is {base}/ccx/oauth2/{tenant}/token (grant_type=refresh_token, client id and secret as
#   Basic auth) and SOAP accepts its access token as "Authorization: Bearer".
# - Throttling is HTTP 429 with Retry-After (Workday publishes no limits; ~10 calls/s per tenant is observed).
# - The hourly cost rate is a compensation plan assignment whose plan ID is COST_RATE_PLAN (each tenant names its
#   own plan; a tenant without one leaves Cost_Rate_Amount empty).
# ---------------------------------------------------------------------------------------------------------------
COST_RATE_PLAN = "Hourly_Cost_Rate"


def iso_moment(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Fault:
    code: str  # "SOAP-ENV:Client.validationError"
    message: str  # faultstring, plus the validation detail when there is one


def parse_fault(body: bytes) -> Fault | None:
    """The SOAP fault in a response body, or None when the body is not one."""
    try:
        root = etree.fromstring(body, PARSER)  # noqa: S320 - hardened parser (no entities, DTD or network)
    except etree.XMLSyntaxError:
        return None
    fault = root.find("env:Body/env:Fault", NS)
    if fault is None:
        return None
    code = (fault.findtext("faultcode") or "").strip()
    message = (fault.findtext("faultstring") or "").strip()
    details = [
        (error.findtext("wd:Detail_Message", namespaces=NS) or error.findtext("wd:Message", namespaces=NS) or "")
        for error in fault.iterfind("detail/wd:Validation_Fault/wd:Validation_Error", NS)
    ]
    details = [d.strip() for d in details if d and d.strip() and d.strip() not in message]
    if details:
        message = f"{message} {'; '.join(details)}".strip()
    return Fault(code=code, message=message)


def is_client_fault(response: requests.Response) -> bool:
    """A SOAP fault whose code blames the request (validation, authentication): final, never retried."""
    if response.status_code != 500:
        return False
    fault = parse_fault(response.content)
    return fault is not None and fault.code.split(":")[-1].startswith("Client")


def xml_int(text: str | None) -> int:
    try:
        return int(text or 0)
    except ValueError:
        return 0


def xml_text(node: etree._Element, path: str) -> str | None:
    value = node.findtext(path, namespaces=NS)
    return value.strip() if value and value.strip() else None


def xml_id(node: etree._Element, path: str, id_type: str) -> str | None:
    return xml_text(node, f"{path}/wd:ID[@wd:type='{id_type}']")


def worker_fields(worker: etree._Element) -> tuple[dict[str, Any], str | None]:
    """The worker's fields flattened under Workday's element names, or a reason the worker cannot be used."""
    data: dict[str, Any] = {"WID": xml_id(worker, "wd:Worker_Reference", "WID")}
    if not data["WID"]:
        return data, "The worker has no WID."
    wd = worker.find("wd:Worker_Data", NS)
    if wd is None:
        return data, "The worker has no Worker_Data."
    name = "wd:Personal_Data/wd:Name_Data/wd:Legal_Name_Data/wd:Name_Detail_Data"
    job = "wd:Employment_Data/wd:Worker_Job_Data/wd:Position_Data"
    status = "wd:Employment_Data/wd:Worker_Status_Data"
    name_detail = wd.find(name, NS)
    work_email = next(
        (
            xml_text(email, "wd:Email_Address")
            for email in wd.iterfind("wd:Personal_Data/wd:Contact_Data/wd:Email_Address_Data", NS)
            if xml_id(email, "wd:Usage_Data/wd:Type_Data/wd:Type_Reference", "Communication_Usage_Type_ID") == "WORK"
        ),
        None,
    )
    supervisory = next(
        (
            xml_text(org, "wd:Organization_Name")
            for org in wd.iterfind("wd:Organization_Data/wd:Worker_Organization_Data/wd:Organization_Data", NS)
            if xml_id(org, "wd:Organization_Type_Reference", "Organization_Type_ID") == "Supervisory"
        ),
        None,
    )
    base_pay = cost_rate = None
    for plan in wd.iterfind("wd:Compensation_Data/wd:Employee_Base_Pay_Plan_Assignment_Data", NS):
        plan_id = xml_id(plan, "wd:Compensation_Plan_Reference", "Compensation_Plan_ID")
        if plan_id == COST_RATE_PLAN:
            cost_rate = plan
        elif base_pay is None:
            base_pay = plan
    entries = [
        moment
        for text in wd.xpath(
            "wd:Transaction_Log_Entry_Data/wd:Transaction_Log_Entry/wd:Transaction_Log_Data/wd:Transaction_Entry_Moment/text()",
            namespaces=NS,
        )
        if (moment := parse_utc_datetime(text)) is not None
    ]
    data.update(
        {
            "Worker_ID": xml_text(wd, "wd:Worker_ID"),
            "User_ID": xml_text(wd, "wd:User_ID"),
            "First_Name": xml_text(wd, f"{name}/wd:First_Name"),
            "Last_Name": xml_text(wd, f"{name}/wd:Last_Name"),
            "Formatted_Name": name_detail.get(f"{{{BSVC}}}Formatted_Name") if name_detail is not None else None,
            "Email_Address": work_email,
            "Business_Title": xml_text(wd, f"{job}/wd:Business_Title"),
            "Position_Title": xml_text(wd, f"{job}/wd:Position_Title"),
            "Worker_Type": xml_id(wd, f"{job}/wd:Worker_Type_Reference", "Employee_Type_ID"),
            "Location": xml_text(wd, f"{job}/wd:Business_Site_Summary_Data/wd:Name"),
            "Supervisory_Organization": supervisory,
            "Manager_Worker_ID": xml_id(
                wd, f"{job}/wd:Manager_as_of_last_detected_manager_change_Reference", "Employee_ID"
            ),
            "Active": xml_text(wd, f"{status}/wd:Active") == "1",
            "Hire_Date": xml_text(wd, f"{status}/wd:Hire_Date"),
            "Terminated": xml_text(wd, f"{status}/wd:Terminated") == "1",
            "Termination_Date": xml_text(wd, f"{status}/wd:Termination_Date"),
            "Base_Pay_Amount": xml_text(base_pay, "wd:Amount") if base_pay is not None else None,
            "Base_Pay_Currency": xml_id(base_pay, "wd:Currency_Reference", "Currency_ID")
            if base_pay is not None
            else None,
            "Base_Pay_Frequency": xml_id(base_pay, "wd:Frequency_Reference", "Frequency_ID")
            if base_pay is not None
            else None,
            "Cost_Rate_Amount": xml_text(cost_rate, "wd:Amount") if cost_rate is not None else None,
            "Cost_Rate_Currency": xml_id(cost_rate, "wd:Currency_Reference", "Currency_ID")
            if cost_rate is not None
            else None,
            "Transaction_Entry_Moment": iso_moment(max(entries)) if entries else None,
        }
    )
    if not data["Worker_ID"]:
        return data, "The worker has no Worker_ID (employee number)."
    for field in ("Hire_Date", "Termination_Date"):
        value = data[field]
        if value is not None:
            try:
                datetime.strptime(value[:10], "%Y-%m-%d")
            except ValueError:
                return data, f"{field} is not a date: {value!r}"
            data[field] = value[:10]
    if data["Transaction_Entry_Moment"] is None:
        return data, "The worker has no transaction log entry, so its change time is unknown."
    return data, None
