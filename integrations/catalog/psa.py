"""How each PSA gives a packaged template its projects, people, approved time and expenses."""

from __future__ import annotations

from integrations.catalog.roles import PsaProfile, Write, reference_flow
from integrations.catalog.specs import (
    BOOL,
    CENTS,
    DATE,
    DOMAIN,
    FIRST_WORD,
    LOWER,
    MINUTES,
    NUMBER2,
    TRIM,
    UPPER,
    default,
    lookup,
    ref,
)

PSA: dict[str, PsaProfile] = {
    "kantata": PsaProfile(
        projects=reference_flow(
            "psa-projects",
            "PSA projects (reference)",
            "psa",
            "workspaces",
            "project",
            [
                ("project.code", ["title"], [FIRST_WORD, UPPER], True, "Project code"),
                # Titles are "<code> <name>", as lead-to-project writes them: the name is what follows the code,
                # so it matches the CRM's (which owns it) instead of raising a conflict on every project.
                (
                    "project.name",
                    ["title"],
                    [{"name": "split", "separator": " ", "index": 1, "rest": True}],
                    True,
                    "Project name",
                ),
            ],
        ),
        people=reference_flow(
            "psa-people",
            "PSA people (reference)",
            "psa",
            "users",
            "resource",
            [
                ("resource.email", ["email_address"], [TRIM, LOWER], True, "Email"),
                ("resource.first_name", ["full_name"], [FIRST_WORD], False, "First name"),
                (
                    "resource.last_name",
                    ["full_name"],
                    [{"name": "split", "separator": " ", "index": -1}],
                    False,
                    "Last name",
                ),
            ],
        ),
        time_entries=(
            "time_entries",
            [
                (
                    "time_entry.project",
                    ["workspace_id"],
                    [ref("project", "workspaces"), lookup("project-codes", keep=True)],
                    True,
                    "Project",
                ),
                ("time_entry.resource", ["user_id"], [ref("resource", "users")], True, "Person"),
                ("time_entry.date", ["date_performed"], [DATE], True, "Date"),
                ("time_entry.hours", ["time_in_minutes"], [MINUTES], True, "Hours"),
                ("time_entry.billable", ["billable"], [BOOL], False, "Billable"),
                ("time_entry.approved", ["approved"], [BOOL, default(True)], False, "Approved"),
                ("time_entry.notes", ["notes"], [TRIM, default("")], False, "Notes"),
                ("time_entry.bill_rate", ["rate_in_cents"], [CENTS], False, "Bill rate"),
                ("time_entry.cost_rate", ["cost_rate_in_cents"], [CENTS], False, "Cost rate"),
                ("time_entry.currency", ["currency"], [{"name": "currency", "default": "USD"}], False, "Currency"),
            ],
            {"path": "approved", "in": [True, "true"]},
        ),
        expenses=(
            "expenses",
            [
                (
                    "expense.project",
                    ["workspace_id"],
                    [ref("project", "workspaces"), lookup("project-codes", keep=True)],
                    True,
                    "Project",
                ),
                ("expense.resource", ["user_id"], [ref("resource", "users")], True, "Person"),
                ("expense.date", ["date"], [DATE], True, "Date"),
                ("expense.amount", ["amount_in_cents"], [CENTS], True, "Amount"),
                ("expense.currency", ["currency"], [{"name": "currency", "default": "USD"}], False, "Currency"),
                ("expense.category", ["category"], [TRIM, default("")], False, "Category"),
                ("expense.billable", ["is_billable"], [BOOL], False, "Billable"),
                ("expense.reimbursable", ["reimbursable"], [BOOL], False, "Reimbursable"),
                ("expense.notes", ["notes"], [TRIM, default("")], False, "Notes"),
            ],
            {},
        ),
        project=Write(
            "workspaces",
            [
                ("title", ["code", "name"], [{"name": "concat", "separator": " "}], True, "Title"),
                ("currency", ["currency"], [], False, "Currency"),
            ],
        ),
        resource=Write(
            "users",
            [
                ("full_name", ["first_name", "last_name"], [{"name": "concat", "separator": " "}], True, "Name"),
                ("email_address", ["email"], [], True, "Email"),
                ("headline", ["title"], [], False, "Title"),
                ("cost_rate_in_cents", ["cost_rate"], [{"name": "amount_to_cents"}], False, "Cost rate"),
            ],
        ),
        # Kantata prices an entry from the person's rate on its project; approval happens in Kantata.
        time_entry=Write(
            "time_entries",
            [
                ("workspace_id", ["project.ref"], [], True, "Project in Kantata"),
                ("user_id", ["resource.ref"], [], True, "Person in Kantata"),
                ("date_performed", ["date"], [], True, "Date"),
                ("time_in_minutes", ["hours"], [{"name": "hours_to_minutes"}], True, "Minutes"),
                ("billable", ["billable"], [], False, "Billable"),
                ("notes", ["notes"], [], False, "Notes"),
            ],
        ),
    ),
    "certinia": PsaProfile(
        customers=reference_flow(
            "psa-customers",
            "PSA accounts (reference)",
            "psa",
            "Account",
            "customer",
            [
                ("customer.name", ["Name"], [TRIM], True, "Account name"),
                ("customer.domain", ["Website"], [DOMAIN], False, "Website"),
            ],
        ),
        projects=reference_flow(
            "psa-projects",
            "PSA projects (reference)",
            "psa",
            "pse__Proj__c",
            "project",
            [
                ("project.code", ["pse__Project_ID__c"], [TRIM, UPPER], True, "Project ID"),
                ("project.name", ["Name"], [TRIM], True, "Project name"),
                ("project.customer", ["pse__Account__c"], [ref("customer", "Account")], False, "Account"),
            ],
        ),
        people=reference_flow(
            "psa-people",
            "PSA people (reference)",
            "psa",
            "Contact",
            "resource",
            [
                ("resource.email", ["Email"], [TRIM, LOWER], True, "Email"),
                ("resource.employee_number", ["Employee_Number__c"], [TRIM, default("")], False, "Employee number"),
                ("resource.first_name", ["FirstName"], [TRIM], False, "First name"),
                ("resource.last_name", ["LastName"], [TRIM], False, "Last name"),
            ],
        ),
        # Approved weekly timecards, one record per day worked, with the rates of the resource's assignment.
        time_entries=(
            "timecard_days",
            [
                (
                    "time_entry.project",
                    ["pse__Project__c"],
                    [ref("project", "pse__Proj__c"), lookup("project-codes", keep=True)],
                    True,
                    "Project",
                ),
                ("time_entry.resource", ["pse__Resource__c"], [ref("resource", "Contact")], True, "Resource"),
                ("time_entry.date", ["Date"], [DATE], True, "Date"),
                ("time_entry.hours", ["Hours"], [NUMBER2], True, "Hours"),
                ("time_entry.billable", ["pse__Billable__c"], [BOOL], False, "Billable"),
                ("time_entry.approved", ["pse__Approved__c"], [BOOL, default(True)], False, "Approved"),
                ("time_entry.notes", ["Notes"], [TRIM, default("")], False, "Notes"),
                ("time_entry.bill_rate", ["pse__Assignment__r.pse__Bill_Rate__c"], [NUMBER2], False, "Bill rate"),
                (
                    "time_entry.cost_rate",
                    ["pse__Assignment__r.pse__Cost_Rate_Amount__c"],
                    [NUMBER2],
                    False,
                    "Cost rate",
                ),
                (
                    "time_entry.currency",
                    ["pse__Assignment__r.CurrencyIsoCode"],
                    [{"name": "currency", "default": "USD"}],
                    False,
                    "Currency",
                ),
            ],
            {"path": "pse__Status__c", "in": ["Approved"]},
        ),
        expenses=(
            "pse__Expense__c",
            [
                (
                    "expense.project",
                    ["pse__Project__c"],
                    [ref("project", "pse__Proj__c"), lookup("project-codes", keep=True)],
                    True,
                    "Project",
                ),
                ("expense.resource", ["pse__Resource__c"], [ref("resource", "Contact")], True, "Resource"),
                ("expense.date", ["pse__Expense_Date__c"], [DATE], True, "Date"),
                ("expense.amount", ["pse__Amount__c"], [NUMBER2], True, "Amount"),
                ("expense.currency", ["CurrencyIsoCode"], [{"name": "currency", "default": "USD"}], False, "Currency"),
                ("expense.category", ["pse__Type__c"], [TRIM, default("")], False, "Type"),
                ("expense.billable", ["pse__Billable__c"], [BOOL], False, "Billable"),
                ("expense.notes", ["pse__Description__c"], [TRIM, default("")], False, "Description"),
            ],
            {"path": "pse__Status__c", "in": ["Approved"]},
        ),
        project=Write(
            "pse__Proj__c",
            [
                ("pse__Project_ID__c", ["code"], [], True, "Project ID"),
                ("Name", ["name"], [], True, "Project name"),
                ("CurrencyIsoCode", ["currency"], [], False, "Currency"),
                ("pse__Is_Active__c", [], [default(True)], False, "Active"),
                ("pse__Is_Billable__c", [], [default(True)], False, "Billable"),
            ],
        ),
        resource=Write(
            "Contact",
            [
                ("FirstName", ["first_name"], [], False, "First name"),
                ("LastName", ["last_name"], [], True, "Last name"),
                ("Email", ["email"], [], True, "Email"),
                ("Title", ["title"], [], False, "Title"),
                ("Department", ["department"], [], False, "Department"),
                ("Employee_Number__c", ["employee_number"], [], False, "Employee number"),
                ("pse__Is_Resource__c", [], [default(True)], True, "Is resource"),
                ("pse__Is_Resource_Active__c", [], [default(True)], False, "Resource active"),
                ("pse__Default_Cost_Rate__c", ["cost_rate"], [NUMBER2], False, "Default cost rate"),
                ("pse__Start_Date__c", ["hire_date"], [], False, "Start date"),
            ],
        ),
    ),
    # Kimble's statuses are lookups to reference data: approved time and expenses are read as such (the
    # connection reads approved ones only by default) and kept by the filter on the status's enum.
    "kimble": PsaProfile(
        customers=reference_flow(
            "psa-customers",
            "PSA accounts (reference)",
            "psa",
            "Account",
            "customer",
            [
                ("customer.name", ["Name"], [TRIM], True, "Account name"),
                ("customer.domain", ["Website"], [DOMAIN], False, "Website"),
            ],
        ),
        projects=reference_flow(
            "psa-projects",
            "PSA engagements (reference)",
            "psa",
            "KimbleOne__DeliveryGroup__c",
            "project",
            [
                ("project.code", ["KimbleOne__Reference__c"], [TRIM, UPPER], True, "Reference"),
                ("project.name", ["Name"], [TRIM], True, "Engagement name"),
                ("project.customer", ["KimbleOne__Account__c"], [ref("customer", "Account")], False, "Account"),
            ],
        ),
        people=reference_flow(
            "psa-people",
            "PSA resources (reference)",
            "psa",
            "KimbleOne__Resource__c",
            "resource",
            [
                ("resource.email", ["KimbleOne__Email__c"], [TRIM, LOWER], True, "Email"),
                ("resource.employee_number", ["Employee_Number__c"], [TRIM, default("")], False, "Employee number"),
                ("resource.first_name", ["KimbleOne__FirstName__c"], [TRIM], False, "First name"),
                ("resource.last_name", ["KimbleOne__LastName__c"], [TRIM], False, "Last name"),
            ],
        ),
        time_entries=(
            "KimbleOne__TimeEntry__c",
            [
                (
                    "time_entry.project",
                    ["KimbleOne__DeliveryElement__r.KimbleOne__DeliveryGroup__c"],
                    [ref("project", "KimbleOne__DeliveryGroup__c"), lookup("project-codes", keep=True)],
                    True,
                    "Engagement",
                ),
                (
                    "time_entry.resource",
                    ["KimbleOne__Resource__c"],
                    [ref("resource", "KimbleOne__Resource__c")],
                    True,
                    "Resource",
                ),
                ("time_entry.date", ["KimbleOne__TimePeriod__r.KimbleOne__StartDate__c"], [DATE], True, "Date"),
                ("time_entry.hours", ["KimbleOne__EntryUnits__c"], [NUMBER2], True, "Hours"),
                ("time_entry.billable", ["KimbleOne__IsChargeable__c"], [BOOL], False, "Chargeable"),
                ("time_entry.approved", [], [default(True)], False, "Approved"),  # only approved ones pass the filter
                ("time_entry.notes", ["KimbleOne__Notes__c"], [TRIM, default("")], False, "Notes"),
                (
                    "time_entry.bill_rate",
                    ["KimbleOne__ActivityAssignment__r.KimbleOne__ForecastRevenueRate__c"],
                    [NUMBER2],
                    False,
                    "Revenue rate",
                ),
                (
                    "time_entry.cost_rate",
                    ["KimbleOne__ActivityAssignment__r.KimbleOne__ForecastCostRate__c"],
                    [NUMBER2],
                    False,
                    "Cost rate",
                ),
                (
                    "time_entry.currency",
                    ["KimbleOne__ActivityAssignment__r.CurrencyIsoCode"],
                    [{"name": "currency", "default": "USD"}],
                    False,
                    "Currency",
                ),
            ],
            {"path": "KimbleOne__Status__r.KimbleOne__Enum__c", "in": ["Approved"]},
        ),
        expenses=(
            "KimbleOne__ExpenseItem__c",
            [
                (
                    "expense.project",
                    ["KimbleOne__DeliveryElement__r.KimbleOne__DeliveryGroup__c"],
                    [ref("project", "KimbleOne__DeliveryGroup__c"), lookup("project-codes", keep=True)],
                    True,
                    "Engagement",
                ),
                (
                    "expense.resource",
                    ["KimbleOne__Resource__c"],
                    [ref("resource", "KimbleOne__Resource__c")],
                    True,
                    "Resource",
                ),
                ("expense.date", ["KimbleOne__ExpenseDate__c"], [DATE], True, "Date"),
                ("expense.amount", ["KimbleOne__IncurredAmount__c"], [NUMBER2], True, "Amount"),
                ("expense.currency", ["CurrencyIsoCode"], [{"name": "currency", "default": "USD"}], False, "Currency"),
                ("expense.category", ["KimbleOne__Category__c"], [TRIM, default("")], False, "Category"),
                ("expense.billable", ["KimbleOne__IsChargeable__c"], [BOOL], False, "Chargeable"),
                ("expense.notes", ["KimbleOne__Notes__c"], [TRIM, default("")], False, "Notes"),
            ],
            {"path": "KimbleOne__Status__r.KimbleOne__Enum__c", "in": ["Approved"]},
        ),
        project=Write(
            "KimbleOne__DeliveryGroup__c",
            [
                ("KimbleOne__Reference__c", ["code"], [], True, "Reference"),
                ("Name", ["name"], [], True, "Engagement name"),
                ("KimbleOne__InvoicingCurrencyIsoCode__c", ["currency"], [], False, "Invoicing currency"),
                ("CurrencyIsoCode", ["currency"], [], False, "Currency"),
            ],
        ),
        resource=Write(
            "KimbleOne__Resource__c",
            [
                ("KimbleOne__FirstName__c", ["first_name"], [], False, "First name"),
                ("KimbleOne__LastName__c", ["last_name"], [], True, "Last name"),
                ("KimbleOne__Email__c", ["email"], [], True, "Email"),
                ("KimbleOne__Grade__c", ["title"], [], False, "Grade"),
                ("KimbleOne__BusinessUnit__c", ["department"], [], False, "Business unit"),
                ("Employee_Number__c", ["employee_number"], [], False, "Employee number"),
                ("KimbleOne__StartDate__c", ["hire_date"], [], True, "Start date"),
                ("KimbleOne__CostRate__c", ["cost_rate"], [NUMBER2], False, "Cost rate"),
            ],
        ),
    ),
    # Float is resource scheduling: it takes the PSA role of lead-to-project (projects) and employee to resource
    # (people), not of approved time to invoice. Its logged time has no approval (only locked periods) and carries no
    # rate (a person has one default hourly rate, in the account's single currency, where the firm bills each
    # project in its own currency at the person's converted rate), and Float keeps no expenses: the profile leaves
    # time entries and expenses out, so the templates that need them do not offer Float.
    "float": PsaProfile(
        projects=reference_flow(
            "psa-projects",
            "PSA projects (reference)",
            "psa",
            "projects",
            "project",
            [
                ("project.code", ["project_code"], [TRIM, UPPER], True, "Project code"),
                ("project.name", ["name"], [TRIM], True, "Project name"),
            ],
        ),
        people=reference_flow(
            "psa-people",
            "PSA people (reference)",
            "psa",
            "people",
            "resource",
            [
                ("resource.email", ["email"], [TRIM, LOWER], True, "Email"),
                ("resource.first_name", ["name"], [FIRST_WORD], False, "First name"),
                (
                    "resource.last_name",
                    ["name"],
                    [{"name": "split", "separator": " ", "index": -1}],
                    False,
                    "Last name",
                ),
            ],
        ),
        # Float finds a project by its code and a person by email before it creates one (connectors/float).
        project=Write(
            "projects",
            [
                ("project_code", ["code"], [], True, "Project code"),
                ("name", ["name"], [], True, "Project name"),
            ],
        ),
        resource=Write(
            "people",
            [
                ("name", ["first_name", "last_name"], [{"name": "concat", "separator": " "}], True, "Name"),
                ("email", ["email"], [], True, "Email"),
                ("job_title", ["title"], [], False, "Job title"),
            ],
        ),
    ),
}
