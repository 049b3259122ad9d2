"""Writes on the public schema: partners, client workspaces, people and their roles, plans, usage, domains.

One module per subject; the names most callers use are re-exported here (`from tenants import services`).
"""

from tenants.services.audit import client_audit_record, partner_audit_record
from tenants.services.changes import (
    ChangeRequestRefused,
    change_request_approve,
    change_request_comment,
    change_request_create,
    change_request_decline,
    change_request_deliver,
    change_request_quote,
    change_request_withdraw,
)
from tenants.services.clients import (
    client_create,
    client_plan_change,
    client_resume,
    client_suspend,
    schema_name_for,
    usage_record_upsert,
)
from tenants.services.domains import DomainCheck, domain_add, domain_make_primary, domain_remove, domain_verify
from tenants.services.invitations import (
    InvitationRefused,
    account_email_verify,
    invitation_accept,
    invitation_offer,
    invitation_send,
    invitation_token_hash,
    user_invite,
)
from tenants.services.links import partner_base_url, site_base_url
from tenants.services.partners import partner_create, partner_mfa_policy_set
from tenants.services.plans import PLAN_FIELDS, PlanInUse, plan_create, plan_delete, plan_update
from tenants.services.schedules import client_periodic_task_upsert
from tenants.services.subscriptions import (
    SubscriptionRefused,
    renewal_reminders_send,
    subscription_set,
    subscriptions_renew,
)
from tenants.services.team import MemberRemovalRefused, partner_member_remove, staff_assign, staff_invite

__all__ = [
    "PLAN_FIELDS",
    "ChangeRequestRefused",
    "DomainCheck",
    "InvitationRefused",
    "MemberRemovalRefused",
    "PlanInUse",
    "SubscriptionRefused",
    "account_email_verify",
    "change_request_approve",
    "change_request_comment",
    "change_request_create",
    "change_request_decline",
    "change_request_deliver",
    "change_request_quote",
    "change_request_withdraw",
    "client_audit_record",
    "client_create",
    "client_periodic_task_upsert",
    "client_plan_change",
    "client_resume",
    "client_suspend",
    "domain_add",
    "domain_make_primary",
    "domain_remove",
    "domain_verify",
    "invitation_accept",
    "invitation_offer",
    "invitation_send",
    "invitation_token_hash",
    "partner_audit_record",
    "partner_base_url",
    "partner_create",
    "partner_member_remove",
    "partner_mfa_policy_set",
    "plan_create",
    "plan_delete",
    "plan_update",
    "renewal_reminders_send",
    "schema_name_for",
    "site_base_url",
    "staff_assign",
    "staff_invite",
    "subscription_set",
    "subscriptions_renew",
    "usage_record_upsert",
    "user_invite",
]
