"""Where the service may send alerts: hub addresses and webhook URLs, checked against an allow-list.

A target registered by a hub makes the server open connections, so an unchecked address lets any
hub point the server at internal machines (server-side request forgery). Every endpoint is parsed
strictly (scheme, host, port 1-65535) and its host must match the configured allow-list
(``[delivery] allow``): a host name listed verbatim, an IP address, or a CIDR network. The default
allows loopback only. Host names are matched by name, not resolved: list the names of your hubs.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

_HOST_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9\-]{0,62}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9\-]{0,62}[A-Za-z0-9])?)*$")
MAX_ENDPOINT_CHARS = 2048


class EndpointError(ValueError):
    """An endpoint that is malformed or not allowed; ``field`` names the request field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class Endpoint:
    scheme: str  # "grpc", "http" or "https"
    host: str    # without brackets
    port: int

    @property
    def authority(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_allow(entries: Iterable[str]) -> tuple[frozenset[str], tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]]:
    """Split an allow-list into host names and IP networks. Raises ValueError on a bad entry."""
    names, nets = set(), []
    for e in entries:
        e = e.strip().strip("[]")
        if not e:
            raise ValueError("empty entry")
        try:
            nets.append(ipaddress.ip_network(e, strict=False))
        except ValueError:
            if not _HOST_RE.match(e):
                raise ValueError(f"{e!r} is neither a host name, an IP address nor a CIDR network") from None
            names.add(e.lower())
    return frozenset(names), tuple(nets)


def host_allowed(host: str, allow: Iterable[str]) -> bool:
    names, nets = parse_allow(allow)
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host.lower() in names
    return any(ip in n for n in nets if n.version == ip.version)


def _host_port(field: str, host: str | None, port_text: str | None, default_port: int | None) -> tuple[str, int]:
    if not host:
        raise EndpointError(field, "has no host")
    host = host.strip("[]")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if not _HOST_RE.match(host):
            raise EndpointError(field, f"host {host[:80]!r} is not a valid host name") from None
    if port_text is None or port_text == "":
        if default_port is None:
            raise EndpointError(field, "has no port")
        return host, default_port
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise EndpointError(field, f"port {port_text[:12]!r} is not 1-65535")
    return host, int(port_text)


def parse_grpc_address(address: str) -> Endpoint:
    """``host:port`` or ``[v6]:port`` of a HubReceiver."""
    field = "grpc_address"
    if not address or len(address) > MAX_ENDPOINT_CHARS:
        raise EndpointError(field, "is empty" if not address else f"is longer than {MAX_ENDPOINT_CHARS} characters")
    m = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\]:([^/:\s]*)|([^:\[\]\s/]*):([^/:\s]*)", address)
    if m is None:
        raise EndpointError(field, f"{address[:80]!r} is not host:port")
    host, port = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
    h, p = _host_port(field, host, port, None)
    return Endpoint("grpc", h, p)


def parse_webhook_url(url: str) -> Endpoint:
    """An ``http://`` or ``https://`` URL with a host (port defaults to 80 / 443)."""
    field = "webhook_url"
    if not url or len(url) > MAX_ENDPOINT_CHARS:
        raise EndpointError(field, "is empty" if not url else f"is longer than {MAX_ENDPOINT_CHARS} characters")
    if any(ord(ch) < 33 or ord(ch) == 127 for ch in url):
        raise EndpointError(field, "contains spaces or control characters")
    try:
        parts = urlsplit(url)
        port_text = parts.netloc.rpartition(":")[2] if re.search(r":[^\]]*$", parts.netloc) else None
    except ValueError as err:
        raise EndpointError(field, f"is not a URL: {err}") from err
    if parts.scheme not in ("http", "https"):
        raise EndpointError(field, f"scheme {parts.scheme!r} is not http or https")
    if parts.username or parts.password:
        raise EndpointError(field, "must not carry credentials (user:password@)")
    h, p = _host_port(field, parts.hostname, port_text, 443 if parts.scheme == "https" else 80)
    return Endpoint(parts.scheme, h, p)


def check_endpoint(grpc_address: str | None, webhook_url: str | None, allow: Iterable[str]) -> Endpoint:
    """Parse the one endpoint given and check its host against the allow-list; raises EndpointError."""
    ep = parse_grpc_address(grpc_address) if grpc_address else parse_webhook_url(webhook_url or "")
    if not host_allowed(ep.host, allow):
        field = "grpc_address" if grpc_address else "webhook_url"
        raise EndpointError(field, f"host {ep.host!r} is not in the delivery allow-list ([delivery] allow in the "
                            "server config; default loopback only)")
    return ep
