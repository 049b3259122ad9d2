"""A client workspace, mounted under /c/<slug>/ on its partner's host."""

from django.urls import include, path

from api import views as api_views

urlpatterns = [
    path("", include("integrations.urls")),
    path("api-keys/", api_views.workspace_api_keys, name="workspace_api_keys"),
    path("api-keys/<int:pk>/revoke", api_views.workspace_api_key_revoke, name="workspace_api_key_revoke"),
    path("webhooks/", api_views.workspace_webhooks, name="workspace_webhooks"),
    path("webhooks/<int:pk>/delete", api_views.workspace_webhook_delete, name="workspace_webhook_delete"),
]
