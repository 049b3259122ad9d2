"""A client workspace, mounted under /c/<slug>/ on its partner's host."""

from django.urls import include, path

urlpatterns = [
    path("", include("integrations.urls")),
]
