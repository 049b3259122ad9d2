"""A partner's host: the partner console and, under /c/<slug>/, its client workspaces."""

from django.urls import include, path

from api import views as api_views
from api.urls import api
from branding import views as brand_views
from portal.urls_common import urlpatterns as common
from tenants import views as tenant_views
from tenants.views import changes as change_views

partner_console = [
    path("", tenant_views.partner_home, name="partner_home"),
    path("clients/new", tenant_views.client_new, name="partner_client_new"),
    path("clients/<slug:slug>/", tenant_views.client_detail, name="partner_client"),
    path("clients/<slug:slug>/suspend", tenant_views.client_suspend, name="partner_client_suspend"),
    path("clients/<slug:slug>/resume", tenant_views.client_resume, name="partner_client_resume"),
    path("clients/<slug:slug>/plan", tenant_views.client_plan_change, name="partner_client_plan"),
    path("clients/<slug:slug>/subscription", tenant_views.subscription_edit, name="partner_subscription"),
    path("plans/", tenant_views.plan_list, name="partner_plans"),
    path("plans/new", tenant_views.plan_new, name="partner_plan_new"),
    path("plans/<int:pk>/", tenant_views.plan_edit, name="partner_plan_edit"),
    path("plans/<int:pk>/delete", tenant_views.plan_delete, name="partner_plan_delete"),
    path("renewals/", tenant_views.renewals, name="partner_renewals"),
    path("changes/", change_views.partner_changes, name="partner_changes"),
    path("changes/<int:pk>/", change_views.partner_change, name="partner_change"),
    path("changes/<int:pk>/quote", change_views.partner_change_quote, name="partner_change_quote"),
    path("changes/<int:pk>/deliver", change_views.partner_change_deliver, name="partner_change_deliver"),
    path("changes/<int:pk>/comment", change_views.partner_change_comment, name="partner_change_comment"),
    path("revenue/", tenant_views.revenue, name="partner_revenue"),
    path("revenue/statements.csv", tenant_views.revenue_csv, name="partner_revenue_csv"),
    path("revenue/<slug:slug>/", tenant_views.statement, name="partner_statement"),
    path("team/", tenant_views.team, name="partner_team"),
    path("team/invite", tenant_views.team_invite, name="partner_team_invite"),
    path("team/two-factor", tenant_views.team_mfa_policy, name="partner_team_mfa_policy"),
    path("team/sign-on/", tenant_views.partner_sso, name="partner_sso"),
    path("team/sign-on/domains/add", tenant_views.partner_sso_domain_add, name="partner_sso_domain_add"),
    path(
        "team/sign-on/domains/<int:pk>/verify", tenant_views.partner_sso_domain_verify, name="partner_sso_domain_verify"
    ),
    path(
        "team/sign-on/domains/<int:pk>/remove", tenant_views.partner_sso_domain_remove, name="partner_sso_domain_remove"
    ),
    path("team/<int:pk>/clients", tenant_views.team_assign, name="partner_team_assign"),
    path("team/<int:pk>/remove", tenant_views.team_remove, name="partner_team_remove"),
    path("templates/", tenant_views.template_list, name="partner_templates"),
    path("templates/new", tenant_views.template_new, name="partner_template_new"),
    path("templates/<int:pk>/", tenant_views.template_detail, name="partner_template"),
    path("templates/<int:pk>/versions/new", tenant_views.template_version_new, name="partner_template_version_new"),
    path("templates/<int:pk>/deploy", tenant_views.template_deploy, name="partner_template_deploy"),
    path("templates/<int:pk>/upgrade", tenant_views.template_upgrade_all, name="partner_template_upgrade_all"),
    path("templates/<int:pk>/rollout", tenant_views.template_rollout, name="partner_template_rollout"),
    path(
        "templates/<int:pk>/deployments/<int:deployment>/upgrade",
        tenant_views.template_upgrade,
        name="partner_template_upgrade",
    ),
    path("templates/<int:pk>/edit", tenant_views.template_edit, name="partner_template_edit"),
    path("templates/<int:pk>/delete", tenant_views.template_delete, name="partner_template_delete"),
    path(
        "templates/<int:pk>/deployments/<int:deployment>/withdraw",
        tenant_views.template_withdraw,
        name="partner_template_withdraw",
    ),
    path("audit/", tenant_views.partner_audit_log, name="partner_audit"),
    path("api-keys/", api_views.partner_api_keys, name="partner_api_keys"),
    path("api-keys/<int:pk>/revoke", api_views.partner_api_key_revoke, name="partner_api_key_revoke"),
    path("webhooks/", api_views.partner_webhooks, name="partner_webhooks"),
    path("webhooks/<int:pk>/delete", api_views.partner_webhook_delete, name="partner_webhook_delete"),
    path("brand/", brand_views.brand_editor, name="brand_editor"),
    path("brand/preview", brand_views.brand_preview, name="brand_preview"),
    path("brand/preview.css", brand_views.brand_preview_css, name="brand_preview_css"),
    path("domains/", tenant_views.domains, name="partner_domains"),
    path("domains/add", tenant_views.domain_add, name="partner_domain_add"),
    path("domains/<int:pk>/verify", tenant_views.domain_verify, name="partner_domain_verify"),
    path("domains/<int:pk>/primary", tenant_views.domain_primary, name="partner_domain_primary"),
    path("domains/<int:pk>/remove", tenant_views.domain_remove, name="partner_domain_remove"),
]

urlpatterns = [
    *common,
    path("partner/", include(partner_console)),
    path("api/v1/", api.urls),
    path("c/<slug:client_slug>/", include("portal.urls_workspace")),
]

handler403 = "portal.views.error_403"
handler404 = "portal.views.error_404"
handler500 = "portal.views.error_500"
