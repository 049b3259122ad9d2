"""How each ERP gives a packaged template its customers, projects and employees, and takes invoices."""

from __future__ import annotations

from integrations.catalog.roles import ErpProfile, Write, reference_flow
from integrations.catalog.specs import DOMAIN, LOWER, NUMBER2, TRIM, UPPER, WRAP, default, ref

ERP: dict[str, ErpProfile] = {
    "netsuite": ErpProfile(
        customers=reference_flow(
            "erp-customers",
            "ERP customers (reference)",
            "erp",
            "customer",
            "customer",
            [
                ("customer.name", ["companyName"], [TRIM], True, "Customer name"),
                ("customer.domain", ["url"], [DOMAIN], False, "Web address"),
            ],
        ),
        projects=reference_flow(
            "erp-projects",
            "ERP projects (reference)",
            "erp",
            "job",
            "project",
            [
                ("project.code", ["entityId"], [TRIM, UPPER], True, "Project code"),
                ("project.name", ["companyName"], [TRIM], True, "Project name"),
                ("project.customer", ["parent.id"], [ref("customer", "customer")], False, "Customer"),
            ],
        ),
        employees=reference_flow(
            "erp-employees",
            "ERP employees (reference)",
            "erp",
            "employee",
            "resource",
            [
                ("resource.email", ["email"], [TRIM, LOWER], True, "Email"),
                ("resource.employee_number", ["entityId"], [TRIM, default("")], False, "Employee id"),
                ("resource.first_name", ["firstName"], [TRIM], False, "First name"),
                ("resource.last_name", ["lastName"], [TRIM], False, "Last name"),
            ],
        ),
        customer=Write(
            "customer",
            [
                ("entityId", ["key"], [], True, "Customer id"),
                ("companyName", ["name"], [], True, "Company name"),
                ("subsidiary", [], [default({"id": "1"})], False, "Subsidiary"),
            ],
        ),
        project=Write(
            "job",
            [
                ("entityId", ["code"], [], True, "Project code"),
                ("companyName", ["name"], [], True, "Project name"),
                ("parent", ["customer.ref"], [WRAP], True, "Customer in the ERP"),
                ("subsidiary", [], [default({"id": "1"})], False, "Subsidiary"),
            ],
        ),
        employee=Write(
            "employee",
            [
                ("entityId", ["employee_number"], [{"name": "fallback", "source": "key"}], True, "Employee id"),
                ("firstName", ["first_name"], [], True, "First name"),
                ("lastName", ["last_name"], [], True, "Last name"),
                ("email", ["email"], [], True, "Email"),
                ("title", ["title"], [], False, "Title"),
                ("hireDate", ["hire_date"], [], False, "Hire date"),
                ("releaseDate", ["termination_date"], [], False, "Release date"),
                ("laborCost", ["cost_rate"], [NUMBER2], False, "Labor cost"),
                ("subsidiary", [], [default({"id": "1"})], False, "Subsidiary"),
            ],
        ),
        invoice=Write(
            "invoice",
            [
                ("entity", ["customer.ref"], [WRAP], True, "Customer in the ERP"),
                ("tranDate", ["period_end"], [], True, "Invoice date"),
                ("memo", ["number"], [], False, "Memo"),
                ("subsidiary", [], [default({"id": "1"})], False, "Subsidiary"),
                (
                    "item",
                    ["lines"],
                    [
                        {
                            "name": "sublist",
                            "key": "items",
                            "constants": {"item": {"id": "1"}},
                            "fields": {
                                "description": "description",
                                "quantity": "quantity",
                                "rate": "rate",
                                "amount": "amount",
                            },
                        }
                    ],
                    True,
                    "Lines",
                ),
            ],
        ),
    ),
    "businesscentral": ErpProfile(
        customers=reference_flow(
            "erp-customers",
            "ERP customers (reference)",
            "erp",
            "customers",
            "customer",
            [
                ("customer.name", ["displayName"], [TRIM], True, "Customer name"),
                ("customer.domain", ["website"], [DOMAIN], False, "Website"),
            ],
        ),
        projects=reference_flow(
            "erp-projects",
            "ERP projects (reference)",
            "erp",
            "projects",
            "project",
            [
                ("project.code", ["number"], [TRIM, UPPER], True, "Project No."),
                ("project.name", ["displayName"], [TRIM], True, "Project name"),
            ],
        ),
        employees=reference_flow(
            "erp-employees",
            "ERP employees (reference)",
            "erp",
            "employees",
            "resource",
            [
                ("resource.email", ["email"], [TRIM, LOWER], True, "Email"),
                ("resource.employee_number", ["number"], [TRIM, default("")], False, "Employee No."),
                ("resource.first_name", ["givenName"], [TRIM], False, "First name"),
                ("resource.last_name", ["surname"], [TRIM], False, "Last name"),
            ],
        ),
        # Business Central has no external-id field: customers, projects and employees are upserted by their No.
        customer=Write(
            "customers",
            [
                ("number", ["key"], [UPPER], True, "Customer No."),
                ("displayName", ["name"], [], True, "Customer name"),
            ],
        ),
        project=Write(
            "projects",
            [
                ("number", ["code"], [], True, "Project No."),
                ("displayName", ["name"], [], True, "Project name"),
            ],
        ),
        employee=Write(
            "employees",
            [
                ("number", ["employee_number"], [{"name": "fallback", "source": "key"}], True, "Employee No."),
                ("givenName", ["first_name"], [], True, "First name"),
                ("surname", ["last_name"], [], True, "Last name"),
                ("email", ["email"], [], True, "Email"),
                ("employmentDate", ["hire_date"], [], False, "Employment date"),
            ],
        ),
        invoice=Write(
            "salesInvoices",
            [
                ("externalDocumentNumber", ["number"], [], True, "External document No."),
                ("customerId", ["customer.ref"], [], True, "Customer in the ERP"),
                ("invoiceDate", ["period_end"], [], True, "Invoice date"),
                (
                    "salesInvoiceLines",
                    ["lines"],
                    [
                        {
                            "name": "sublist",
                            # Time and expenses post to the consulting revenue account of the firm's chart.
                            "constants": {"lineType": "Account", "lineObjectNumber": "40100"},
                            "fields": {"description": "description", "quantity": "quantity", "unitPrice": "rate"},
                        }
                    ],
                    True,
                    "Lines",
                ),
            ],
        ),
    ),
    "intacct": ErpProfile(
        customers=reference_flow(
            "erp-customers",
            "ERP customers (reference)",
            "erp",
            "CUSTOMER",
            "customer",
            [
                ("customer.name", ["NAME"], [TRIM], True, "Customer name"),
                ("customer.domain", ["DISPLAYCONTACT.URL1"], [DOMAIN], False, "Web address"),
            ],
        ),
        projects=reference_flow(
            "erp-projects",
            "ERP projects (reference)",
            "erp",
            "PROJECT",
            "project",
            [
                ("project.code", ["PROJECTID"], [TRIM, UPPER], True, "Project ID"),
                ("project.name", ["NAME"], [TRIM], True, "Project name"),
                ("project.customer", ["CUSTOMERKEY"], [ref("customer", "CUSTOMER")], False, "Customer"),
            ],
        ),
        employees=reference_flow(
            "erp-employees",
            "ERP employees (reference)",
            "erp",
            "EMPLOYEE",
            "resource",
            [
                ("resource.email", ["PERSONALINFO.EMAIL1"], [TRIM, LOWER], True, "Email"),
                ("resource.employee_number", ["EMPLOYEEID"], [TRIM, default("")], False, "Employee ID"),
                ("resource.first_name", ["PERSONALINFO.FIRSTNAME"], [TRIM], False, "First name"),
                ("resource.last_name", ["PERSONALINFO.LASTNAME"], [TRIM], False, "Last name"),
            ],
        ),
        customer=Write(
            "CUSTOMER",
            [
                ("CUSTOMERID", ["key"], [UPPER], True, "Customer ID"),
                ("NAME", ["name"], [], True, "Customer name"),
            ],
        ),
        project=Write(
            "PROJECT",
            [
                ("PROJECTID", ["code"], [], True, "Project ID"),
                ("NAME", ["name"], [], True, "Project name"),
                ("PROJECTCATEGORY", [], [default("Contract")], True, "Project category"),
                # The customer as the RECORDNO the reference flow read; the connector sends its CUSTOMERID.
                ("CUSTOMERID", ["customer.ref"], [{"name": "wrap", "key": "RECORDNO"}], True, "Customer in the ERP"),
                ("CURRENCY", ["currency"], [], False, "Currency"),
            ],
        ),
        employee=Write(
            "EMPLOYEE",
            [
                ("EMPLOYEEID", ["employee_number"], [{"name": "fallback", "source": "key"}], True, "Employee ID"),
                ("PERSONALINFO.FIRSTNAME", ["first_name"], [], True, "First name"),
                ("PERSONALINFO.LASTNAME", ["last_name"], [], True, "Last name"),
                ("PERSONALINFO.EMAIL1", ["email"], [], True, "Email"),
                ("TITLE", ["title"], [], False, "Title"),
                ("STARTDATE", ["hire_date"], [], False, "Start date"),
                ("ENDDATE", ["termination_date"], [], False, "End date"),
            ],
        ),
        invoice=Write(
            "ARINVOICE",
            [
                ("RECORDID", ["number"], [], True, "Invoice number"),
                ("CUSTOMERID", ["customer.ref"], [{"name": "wrap", "key": "RECORDNO"}], True, "Customer in the ERP"),
                ("WHENCREATED", ["period_end"], [], True, "Invoice date"),
                ("TERMNAME", [], [default("Net 30")], True, "Payment terms"),
                ("CURRENCY", ["currency"], [], False, "Currency"),
                ("DESCRIPTION", ["number"], [], False, "Description"),
                (
                    "ARINVOICEITEMS",
                    ["lines"],
                    [
                        {
                            "name": "sublist",
                            "constants": {"ACCOUNTNO": "4000"},  # the firm's services revenue account
                            "fields": {"MEMO": "description", "AMOUNT": "amount"},
                        }
                    ],
                    True,
                    "Lines",
                ),
            ],
        ),
    ),
    # Acumatica upserts by key fields: customers, projects and employees by their own ids (which the reads give as
    # external ids, so a project's Customer is the customers' read), invoices by CustomerOrder, our invoice number.
    "acumatica": ErpProfile(
        customers=reference_flow(
            "erp-customers",
            "ERP customers (reference)",
            "erp",
            "Customer",
            "customer",
            [
                ("customer.name", ["CustomerName"], [TRIM], True, "Customer name"),
                ("customer.domain", ["MainContact.WebSite"], [DOMAIN], False, "Web site"),
            ],
        ),
        projects=reference_flow(
            "erp-projects",
            "ERP projects (reference)",
            "erp",
            "Project",
            "project",
            [
                ("project.code", ["ProjectID"], [TRIM, UPPER], True, "Project ID"),
                ("project.name", ["Description"], [TRIM], True, "Project description"),
                ("project.customer", ["Customer"], [ref("customer", "Customer")], False, "Customer"),
            ],
        ),
        employees=reference_flow(
            "erp-employees",
            "ERP employees (reference)",
            "erp",
            "Employee",
            "resource",
            [
                ("resource.email", ["ContactInfo.Email"], [TRIM, LOWER], True, "Email"),
                ("resource.employee_number", ["EmployeeID"], [TRIM, default("")], False, "Employee ID"),
                ("resource.first_name", ["ContactInfo.FirstName"], [TRIM], False, "First name"),
                ("resource.last_name", ["ContactInfo.LastName"], [TRIM], False, "Last name"),
            ],
        ),
        customer=Write(
            "Customer",
            [
                ("CustomerID", ["key"], [UPPER], True, "Customer ID"),
                ("CustomerName", ["name"], [], True, "Customer name"),
            ],
        ),
        project=Write(
            "Project",
            [
                ("ProjectID", ["code"], [], True, "Project ID"),
                ("Description", ["name"], [], True, "Project description"),
                ("Customer", ["customer.ref"], [], True, "Customer in the ERP"),
                ("Status", [], [default("Active")], False, "Status"),
            ],
        ),
        employee=Write(
            "Employee",
            [
                (
                    "EmployeeID",
                    ["employee_number"],
                    [{"name": "fallback", "source": "key"}, UPPER],
                    True,
                    "Employee ID",
                ),
                ("ContactInfo.FirstName", ["first_name"], [], False, "First name"),
                ("ContactInfo.LastName", ["last_name"], [], True, "Last name"),
                ("ContactInfo.Email", ["email"], [], True, "Email"),
                ("ContactInfo.JobTitle", ["title"], [], False, "Job title"),
                # The tenant's employee class and branch (the sandbox's); a client sets its own in the mapping.
                ("EmployeeSettings.EmployeeClass", [], [default("EMPSTAND")], True, "Employee class"),
                ("EmployeeSettings.Branch", [], [default("HQ")], True, "Branch"),
            ],
        ),
        invoice=Write(
            "Invoice",
            [
                ("Type", [], [default("Invoice")], True, "Type"),
                ("CustomerOrder", ["number"], [], True, "Customer order (our invoice number)"),
                ("Customer", ["customer.ref"], [], True, "Customer in the ERP"),
                ("Date", ["period_end"], [], True, "Invoice date"),
                ("Description", ["number"], [], False, "Description"),
                ("Hold", [], [default(False)], False, "On hold"),
                (
                    "Details",
                    ["lines"],
                    [
                        {
                            "name": "sublist",
                            "fields": {"TransactionDescription": "description", "Qty": "quantity", "UnitPrice": "rate"},
                        }
                    ],
                    True,
                    "Lines",
                ),
            ],
        ),
    ),
}
