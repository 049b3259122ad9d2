"""A partner's host: the partner console and, under /c/<slug>/, its client workspaces."""

from django.urls import include, path

from portal.urls_common import urlpatterns as common
from tenants import views as tenant_views

urlpatterns = [
    *common,
    path("partner/", tenant_views.partner_home, name="partner_home"),
    path("c/<slug:client_slug>/", include("portal.urls_workspace")),
]

handler403 = "portal.views.error_403"
handler404 = "portal.views.error_404"
handler500 = "portal.views.error_500"
