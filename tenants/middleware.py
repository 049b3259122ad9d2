"""Request routing: the host names the partner, the path /c/<slug>/ names the client workspace.

HostRoutingMiddleware runs first: it puts the connection on the public schema, finds the
partner whose domain the request came to (or the platform console's host) and picks that
surface's URL map. Unknown hosts get a brand-neutral 404.

WorkspaceMiddleware runs after authentication: for /c/<slug>/ it loads the client of *this*
partner, checks the user's right to enter it and only then switches the connection to the
client's schema. One session cookie per partner host serves every workspace under it.
"""

from __future__ import annotations

import re

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import DisallowedHost
from django.db import connection
from django.http import Http404, HttpResponseNotFound
from django.template.loader import render_to_string
from django.urls import set_urlconf

from tenants.models import Client, PartnerDomain
from tenants.selectors.access import request_standing

WORKSPACE_PATH = re.compile(r"^/c/(?P<slug>[a-z0-9-]+)(?:/|$)")
HOST_INDEPENDENT_PATHS = ("/healthz", "/metrics")


def request_host(request) -> str:
    return request.get_host().rsplit(":", 1)[0].lower().rstrip(".")


class HostRoutingMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        connection.set_schema_to_public()
        request.partner = None
        request.client = None
        request.workspace_role = None
        try:
            host = request_host(request)
        except DisallowedHost:
            return HttpResponseNotFound(render_to_string("unknown_host.html", {"host": ""}))

        if host in settings.PLATFORM_HOSTS:
            request.surface = "platform"
            request.urlconf = "portal.urls_platform"
        else:
            # The brand comes along: every page's shell shows it (one query fewer per request).
            domain = (
                PartnerDomain.objects.serving().select_related("partner", "partner__brand").filter(domain=host).first()
            )
            if domain is None or not domain.partner.is_active:
                if request.path_info.rstrip("/") in HOST_INDEPENDENT_PATHS:
                    request.surface = "platform"
                    request.urlconf = "portal.urls_platform"
                    return self.get_response(request)
                return HttpResponseNotFound(render_to_string("unknown_host.html", {"host": host}))
            request.partner = domain.partner
            request.surface = "partner"
            request.urlconf = "portal.urls_partner"
        # Set now, not only when Django resolves the view: pages rendered for errors raised in
        # later middleware must reverse this host's URL names too.
        set_urlconf(request.urlconf)
        try:
            return self.get_response(request)
        finally:
            # A worker thread serves the next request on the same connection: never let it
            # start inside this request's client schema.
            connection.set_schema_to_public()
            set_urlconf(None)


class WorkspaceMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        match = WORKSPACE_PATH.match(request.path_info)
        if match and request.partner is not None:
            if not request.user.is_authenticated:
                # Before the slug is looked up: to an anonymous visitor a workspace that exists and
                # one that does not look alike, so names cannot be probed.
                return redirect_to_login(request.get_full_path())
            client = (
                Client.objects.select_related("partner", "plan")
                .filter(partner=request.partner, slug=match["slug"])
                .first()
            )
            if client is None:
                raise Http404("No such workspace")
            # One query answers the role here and, later, the shell's partner link and switcher.
            role = request_standing(request).role_in(client)
            if role is None:
                # Same answer as a workspace that does not exist: no probing for names.
                raise Http404("No such workspace")
            request.client = client
            request.tenant = client
            request.workspace_role = role
            request.surface = "workspace"
            connection.set_tenant(client)
        return self.get_response(request)
