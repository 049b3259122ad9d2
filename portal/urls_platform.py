"""The platform operator console's host (PLATFORM_HOSTS)."""

from django.urls import path

from portal.urls_common import urlpatterns as common
from tenants import views as tenant_views

urlpatterns = [
    *common,
    path("platform/", tenant_views.platform_home, name="platform_home"),
    path("platform/partners/new", tenant_views.partner_create, name="platform_partner_create"),
]

handler403 = "portal.views.error_403"
handler404 = "portal.views.error_404"
handler500 = "portal.views.error_500"
