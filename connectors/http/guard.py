"""The destination guard: no private, loopback or otherwise internal address is reached unless allow-listed
(the sandboxes), checked on the URL and again on the addresses each connection opens."""

from __future__ import annotations

import ipaddress
import posixpath
import re
import socket
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote, urlsplit

import requests
import requests.adapters
import urllib3
import urllib3.connection

from connectors.errors import DestinationRefused


def port_of(parts) -> int:
    return parts.port or (443 if parts.scheme == "https" else 80)


def host_port(host: str, port: int) -> str:
    host = host.lower()
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _address_problem(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why an address must not be reached from a multi-tenant server, or None when it is public."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    if address.is_unspecified:
        return "unspecified addresses are not allowed"
    if address.is_loopback:
        return "loopback addresses are not allowed"
    if address.is_link_local:
        return "link-local addresses (such as cloud metadata services) are not allowed"
    if address.is_private:
        return "private network addresses are not allowed"
    if address.is_multicast or address.is_reserved or not address.is_global:
        return "reserved addresses are not allowed"
    return None


# The vendor sandboxes' control endpoints (faults, stats, reset, seed): tests and the demo drive them
# directly; a connection that is allowed to reach a sandbox must never reach these.
SANDBOX_CONTROL_PATH = "/_sandbox"


def _is_sandbox_control(path: str) -> bool:
    # As the sandbox's router will read it: percent-decoded, dot segments and doubled slashes resolved.
    normalised = posixpath.normpath("/" + unquote(path or "/")).lower()
    normalised = re.sub(r"/{2,}", "/", normalised)
    return normalised == SANDBOX_CONTROL_PATH or normalised.startswith(SANDBOX_CONTROL_PATH + "/")


def check_destination(url: str, allowed_hosts: frozenset[str] = frozenset()) -> None:
    """Raise DestinationRefused unless `url` resolves only to public addresses or its host is allow-listed."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise DestinationRefused(f"Refused to connect to {parts.scheme or 'a'} URL: only http and https are allowed")
    host = (parts.hostname or "").lower()
    if not host:
        raise DestinationRefused("Refused to connect: the URL has no host name")
    if _is_sandbox_control(parts.path):
        raise DestinationRefused("Refused to connect: /_sandbox/ paths control a vendor sandbox, not a vendor API")
    destination_addresses(host, port_of(parts), allowed_hosts, show_port=parts.port is not None)


def destination_addresses(
    host: str, port: int, allowed_hosts: frozenset[str] = frozenset(), *, show_port: bool = True
) -> list[str] | None:
    """The addresses `host:port` resolves to, each one checked: DestinationRefused when any is private,
    loopback or otherwise internal and not allow-listed. None when the name itself is allow-listed."""
    host = host.lower().strip("[]")
    if host in allowed_hosts or host_port(host, port) in allowed_hosts:
        return None
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [literal]
    else:
        try:
            infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
        except (socket.gaierror, UnicodeError) as exc:
            raise DestinationRefused(f"Refused to connect to {host}: the name does not resolve ({exc})") from None
        addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
    for address in addresses:
        problem = _address_problem(address)
        if problem is None:
            continue
        # A name that resolves to an allow-listed address (localhost -> 127.0.0.1) is as good as the address.
        if str(address) in allowed_hosts or host_port(str(address), port) in allowed_hosts:
            continue
        shown = host_port(host, port) if show_port else host
        if literal is None:
            shown += f" ({address})"
        raise DestinationRefused(f"Refused to connect to {shown}: {problem}")
    return [str(address) for address in addresses]


class _PinnedConnectionMixin:
    """Resolves the host when the socket opens, checks every address and connects to one of those.

    The check in VendorSession.send resolves the name once; the connection would resolve it again.
    A DNS server that answers with a public address first and 127.0.0.1 the second time (DNS
    rebinding) would slip past a check that is not the connection's own, so the connection checks
    the very addresses it connects to.
    """

    allowed_hosts: Callable[[], frozenset[str]]

    def _new_conn(self):
        if getattr(self, "_tunnel_host", None):  # through an egress proxy: the proxy resolves the name
            return super()._new_conn()
        addresses = destination_addresses(self._dns_host.rstrip("."), self.port, self.allowed_hosts())
        if addresses is None:
            return super()._new_conn()
        name = self._dns_host
        self._dns_host = addresses[0]  # the address checked above; `host` (TLS name, Host header) is restored
        try:
            return super()._new_conn()
        finally:
            self._dns_host = name


class PinnedAdapter(requests.adapters.HTTPAdapter):
    """requests' adapter with connections that check and pin the addresses they connect to."""

    def __init__(self, allowed_hosts: Callable[[], frozenset[str]] | None):
        self._allowed_hosts = allowed_hosts
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        if self._allowed_hosts is None:  # a sandbox's own control session: nothing to guard
            return
        mixin = {"allowed_hosts": staticmethod(self._allowed_hosts)}
        http = type("PinnedHTTPConnection", (_PinnedConnectionMixin, urllib3.connection.HTTPConnection), mixin)
        https = type("PinnedHTTPSConnection", (_PinnedConnectionMixin, urllib3.connection.HTTPSConnection), mixin)
        self.poolmanager.pool_classes_by_scheme = {
            "http": type("PinnedHTTPPool", (urllib3.HTTPConnectionPool,), {"ConnectionCls": http}),
            "https": type("PinnedHTTPSPool", (urllib3.HTTPSConnectionPool,), {"ConnectionCls": https}),
        }
