"""URLs every host serves: accounts, health, brand assets."""

from django.urls import include, path

from integrations.webhooks import flow_webhook
from portal import views

urlpatterns = [
    path("", views.landing, name="landing"),
    path("accounts/", include("allauth.urls")),
    path("healthz", views.healthz, name="healthz"),
    path("metrics", views.metrics, name="metrics"),
    path("hooks/<slug:client_slug>/<str:token>", flow_webhook, name="flow_webhook"),
    path("", include("branding.urls")),
]
