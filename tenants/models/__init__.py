"""Public-schema records: who the partners and clients are, who the users are, and who may do what. One module a
subject; every model is imported here, where Django and the migrations look for them."""

from tenants.models.accounts import (
    CLIENT_ROLES,
    INVITATION_DAYS,
    PARTNER_ROLES,
    Invitation,
    Membership,
    Role,
    User,
    UserManager,
    invitation_expiry,
)
from tenants.models.changes import ChangeRequest, ChangeRequestComment
from tenants.models.clients import PLAN_FIELDS, Client, Plan, SchemaScript, UsageRecord
from tenants.models.partners import (
    MfaPolicy,
    Partner,
    PartnerAuditEvent,
    PartnerDomain,
    PartnerDomainQuerySet,
    domain_verification_token,
    slug_validator,
)
from tenants.models.sso import SsoConnection, SsoDomain
from tenants.models.subscriptions import RenewalReminder, Subscription, SubscriptionTerm
from tenants.models.templates import (
    IntegrationTemplate,
    IntegrationTemplateVersion,
    TemplateDeployment,
    TemplateRollout,
)

__all__ = [
    "CLIENT_ROLES",
    "INVITATION_DAYS",
    "PARTNER_ROLES",
    "PLAN_FIELDS",
    "ChangeRequest",
    "ChangeRequestComment",
    "Client",
    "IntegrationTemplate",
    "IntegrationTemplateVersion",
    "Invitation",
    "Membership",
    "MfaPolicy",
    "Partner",
    "PartnerAuditEvent",
    "PartnerDomain",
    "PartnerDomainQuerySet",
    "Plan",
    "RenewalReminder",
    "Role",
    "SsoConnection",
    "SsoDomain",
    "Subscription",
    "SubscriptionTerm",
    "TemplateDeployment",
    "TemplateRollout",
    "SchemaScript",
    "UsageRecord",
    "User",
    "UserManager",
    "domain_verification_token",
    "invitation_expiry",
    "slug_validator",
]
