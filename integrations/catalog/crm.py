"""How each CRM gives a packaged template its companies and won deals."""

from __future__ import annotations

from integrations.catalog.roles import CrmProfile, reference_flow, won_deal_rules
from integrations.catalog.specs import DOMAIN, TRIM

CRM: dict[str, CrmProfile] = {
    "hubspot": CrmProfile(
        companies=reference_flow(
            "crm-companies",
            "CRM companies (reference)",
            "crm",
            "companies",
            "customer",
            [
                ("customer.name", ["name"], [TRIM], True, "Company name"),
                ("customer.domain", ["domain"], [DOMAIN], False, "Domain"),
            ],
        ),
        deals="deals",
        won={"path": "dealstage", "in": ["closedwon"]},
        won_deal_rules=won_deal_rules(
            name="dealname",
            amount="amount",
            currency="deal_currency_code",
            stage="dealstage",
            close="closedate",
            company=("company_ids.0", "companies"),
            code="project_code",
            deal_id="id",
            terms="billing_terms",
        ),
    ),
    "salesforce": CrmProfile(
        companies=reference_flow(
            "crm-companies",
            "CRM companies (reference)",
            "crm",
            "Account",
            "customer",
            [
                ("customer.name", ["Name"], [TRIM], True, "Account name"),
                ("customer.domain", ["Website"], [DOMAIN], False, "Website"),
            ],
        ),
        deals="Opportunity",
        won={"path": "StageName", "in": ["Closed Won"]},
        won_deal_rules=won_deal_rules(
            name="Name",
            amount="Amount",
            currency="CurrencyIsoCode",
            stage="StageName",
            close="CloseDate",
            company=("AccountId", "Account"),
            code="Project_Code__c",
            deal_id="Id",
            terms="Billing_Terms__c",
        ),
    ),
    "dynamics365": CrmProfile(
        companies=reference_flow(
            "crm-companies",
            "CRM companies (reference)",
            "crm",
            "accounts",
            "customer",
            [
                ("customer.name", ["name"], [TRIM], True, "Account name"),
                ("customer.domain", ["websiteurl"], [DOMAIN], False, "Website"),
            ],
        ),
        deals="opportunities",
        won={"path": "statecode", "in": [1]},  # 1: Won (closed through WinOpportunity)
        won_deal_rules=won_deal_rules(
            name="name",
            amount="estimatedvalue",
            currency="isocurrencycode",
            stage="stepname",
            close="actualclosedate",
            company=("_customerid_value", "accounts"),
            code="new_projectcode",
            deal_id="opportunityid",
            terms="new_billingterms",
        ),
    ),
}
