"""A client workspace, mounted under /c/<slug>/ on its partner's host."""

from django.urls import include, path

from api import views as api_views
from tenants.views import changes, sso

urlpatterns = [
    path("", include("integrations.urls")),
    path("api-keys/", api_views.workspace_api_keys, name="workspace_api_keys"),
    path("api-keys/<int:pk>/revoke", api_views.workspace_api_key_revoke, name="workspace_api_key_revoke"),
    path("webhooks/", api_views.workspace_webhooks, name="workspace_webhooks"),
    path("webhooks/<int:pk>/delete", api_views.workspace_webhook_delete, name="workspace_webhook_delete"),
    path("changes/", changes.workspace_changes, name="workspace_changes"),
    path("changes/new", changes.workspace_change_new, name="workspace_change_new"),
    path("changes/<int:number>/", changes.workspace_change, name="workspace_change"),
    path("changes/<int:number>/decide", changes.workspace_change_decide, name="workspace_change_decide"),
    path("changes/<int:number>/withdraw", changes.workspace_change_withdraw, name="workspace_change_withdraw"),
    path("changes/<int:number>/comment", changes.workspace_change_comment, name="workspace_change_comment"),
    path("security/", sso.workspace_security, name="workspace_security"),
    path("security/two-factor", sso.workspace_security_mfa, name="workspace_security_mfa"),
    path("security/domains/add", sso.workspace_sso_domain_add, name="workspace_sso_domain_add"),
    path("security/domains/<int:pk>/verify", sso.workspace_sso_domain_verify, name="workspace_sso_domain_verify"),
    path("security/domains/<int:pk>/remove", sso.workspace_sso_domain_remove, name="workspace_sso_domain_remove"),
]
