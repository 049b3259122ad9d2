"""How each HR system gives a packaged template its employees and their cost rates."""

from __future__ import annotations

from integrations.catalog.roles import HrProfile, hr_rules
from integrations.catalog.specs import DATE, FIRST_WORD, LOWER, NUMBER2, TRIM, default, lookup

HR: dict[str, HrProfile] = {
    "bamboohr": HrProfile(
        employees="employees",
        rules=[
            ("resource.email", ["workEmail"], [TRIM, LOWER], True, "Work email"),
            ("resource.first_name", ["firstName"], [TRIM], True, "First name"),
            ("resource.last_name", ["lastName"], [TRIM], True, "Last name"),
            ("resource.employee_number", ["employeeNumber"], [TRIM, default("")], False, "Employee number"),
            ("resource.department", ["department"], [TRIM], True, "Department"),
            ("resource.practice", ["department"], [lookup("practices")], True, "Practice"),
            ("resource.title", ["jobTitle"], [TRIM, default("")], False, "Job title"),
            ("resource.location", ["location"], [TRIM, default("")], False, "Location"),
            ("resource.status", ["status"], [LOWER, default("active")], False, "Status"),
            ("resource.hire_date", ["hireDate"], [DATE], False, "Hire date"),
            ("resource.termination_date", ["terminationDate"], [DATE], False, "Termination date"),
            ("rate.resource", [], [default("@resource")], False, "Person"),
            ("rate.kind", [], [default("cost")], False, "Rate kind"),
            # Not required: a person without a cost rate still reaches the PSA and ERP, and is one
            # "no cost rate" exception that their time waits on.
            ("rate.amount", ["customCostRate"], [FIRST_WORD, NUMBER2], False, "Cost rate"),
            (
                "rate.currency",
                ["customCostRate"],
                [{"name": "split", "separator": " ", "index": 1}, {"name": "currency", "default": "USD"}],
                False,
                "Cost rate currency",
            ),
            ("rate.effective_from", ["hireDate"], [DATE], True, "Hire date"),
        ],
    ),
    "workday": HrProfile(
        employees="workers",
        rules=hr_rules(
            email="Email_Address",
            first_name="First_Name",
            last_name="Last_Name",
            number="Worker_ID",
            department="Supervisory_Organization",
            title="Business_Title",
            location="Location",
            hire_date="Hire_Date",
            termination_date="Termination_Date",
            cost_rate="Cost_Rate_Amount",
            cost_currency="Cost_Rate_Currency",
            status=("Terminated", [{"name": "boolean", "yes": "terminated", "no": "active"}]),
        ),
    ),
    "adp": HrProfile(
        employees="workers",
        rules=hr_rules(
            email="emailUri",
            first_name="givenName",
            last_name="familyName1",
            number="workerID",
            department="department",
            title="jobTitle",
            location="homeWorkLocation",
            hire_date="originalHireDate",
            termination_date="terminationDate",
            cost_rate="costRate",
            cost_currency="currencyCode",  # the pay currency: ADP keeps the cost rate in it
            status=("workerStatus", [LOWER, default("active")]),  # "Active" or "Terminated"
        ),
    ),
}
