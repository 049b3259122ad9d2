"""A client workspace, mounted under /c/<slug>/ on its partner's host."""

from django.urls import path

from tenants import views as tenant_views

urlpatterns = [
    path("", tenant_views.workspace_home, name="workspace_home"),
]
