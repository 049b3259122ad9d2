"""URLs every host serves: accounts, health, brand assets."""

from django.urls import include, path, re_path

from integrations.webhooks import flow_webhook
from portal import views
from tenants.views import invitations, sso

urlpatterns = [
    path("", views.landing, name="landing"),
    path("accounts/invitations/<str:token>/", invitations.invitation_accept, name="invitation_accept"),
    # Ahead of allauth's own: the same page, answering only on the account's home host.
    re_path(
        r"^accounts/password/reset/key/(?P<uidb36>[0-9A-Za-z]+)-(?P<key>.+)/$",
        invitations.password_reset_from_key,
        name="account_reset_password_from_key",
    ),
    path("accounts/sso/", sso.sso_discover, name="sso_discover"),
    path("accounts/", include("allauth.urls")),
    path("healthz", views.healthz, name="healthz"),
    path("metrics", views.metrics, name="metrics"),
    path("hooks/<slug:client_slug>/<str:token>", flow_webhook, name="flow_webhook"),
    path("", include("branding.urls")),
]
