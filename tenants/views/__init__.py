"""Views of the tenancy pages: the operator console, the partner console and the workspace home.

Thin: check the role (a decorator), validate a form, call one service or selector, render.
"""

from tenants.views.audit import partner_audit_log
from tenants.views.clients import (
    client_detail,
    client_new,
    client_plan_change,
    client_resume,
    client_suspend,
    partner_home,
)
from tenants.views.domains import domain_add, domain_primary, domain_remove, domain_verify, domains
from tenants.views.home import partner_create, platform_home
from tenants.views.plans import plan_delete, plan_edit, plan_list, plan_new
from tenants.views.renewals import renewals, subscription_edit
from tenants.views.revenue import revenue, revenue_csv, statement
from tenants.views.sso import (
    partner_sso,
    partner_sso_domain_add,
    partner_sso_domain_remove,
    partner_sso_domain_verify,
)
from tenants.views.team import team, team_assign, team_invite, team_mfa_policy, team_remove
from tenants.views.templates import (
    template_delete,
    template_deploy,
    template_detail,
    template_edit,
    template_list,
    template_new,
    template_rollout,
    template_upgrade,
    template_upgrade_all,
    template_version_new,
    template_withdraw,
)

__all__ = [
    "client_detail",
    "client_new",
    "client_plan_change",
    "client_resume",
    "client_suspend",
    "domain_add",
    "domain_primary",
    "domain_remove",
    "domain_verify",
    "domains",
    "partner_audit_log",
    "partner_create",
    "partner_home",
    "partner_sso",
    "partner_sso_domain_add",
    "partner_sso_domain_remove",
    "partner_sso_domain_verify",
    "platform_home",
    "plan_delete",
    "plan_edit",
    "plan_list",
    "plan_new",
    "renewals",
    "revenue",
    "revenue_csv",
    "statement",
    "subscription_edit",
    "team",
    "team_assign",
    "team_invite",
    "team_mfa_policy",
    "team_remove",
    "template_delete",
    "template_deploy",
    "template_detail",
    "template_edit",
    "template_list",
    "template_new",
    "template_upgrade",
    "template_rollout",
    "template_upgrade_all",
    "template_version_new",
    "template_withdraw",
]
