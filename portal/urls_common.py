"""URLs every host serves: accounts, health, brand assets."""

from django.urls import include, path

from portal import views

urlpatterns = [
    path("", views.landing, name="landing"),
    path("accounts/", include("allauth.urls")),
    path("healthz", views.healthz, name="healthz"),
    path("metrics", views.metrics, name="metrics"),
    path("", include("branding.urls")),
]
