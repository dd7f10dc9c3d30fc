"""Client addresses: the proxy-aware request IP and IP allowlists (API keys, rate limits)."""

from __future__ import annotations

import ipaddress
import re

from django.conf import settings

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def allowed_networks(text: str) -> list[IPNetwork]:
    """Parse the admin's allowlist: IPs or CIDRs, one per line or comma-separated."""
    networks = []
    for item in re.split(r"[\s,]+", text.strip()):
        if item:
            networks.append(ipaddress.ip_network(item, strict=False))
    return networks


def ip_allowed(ip: str | None, allowlist: str) -> bool:
    """True when the allowlist is empty or contains the address; an unknown address is refused."""
    networks = allowed_networks(allowlist)
    if not networks:
        return True
    try:
        address = ipaddress.ip_address(ip or "")
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped  # "::ffff:10.0.0.1" from a dual-stack socket
    return any(address in network for network in networks)


def request_ip(request) -> str | None:
    """The client address for allowlists, audit rows and rate limits.

    X-Forwarded-For is only believed when the direct peer is one of TRUSTED_PROXIES; otherwise
    any client could name an allowed address in that header and walk past the allowlist.
    """
    remote = request.META.get("REMOTE_ADDR") or None
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if forwarded and remote and ip_allowed(remote, ",".join(settings.TRUSTED_PROXIES)):
        # The proxy appends the address it saw; earlier entries are the client's own claims.
        candidate = forwarded.split(",")[-1].strip()
        try:
            return str(ipaddress.ip_address(candidate))
        except ValueError:
            return None
    return remote


def ratelimit_client_ip(request) -> str:
    """django-ratelimit's client key (RATELIMIT_IP_META_KEY): the same proxy-aware address,
    and a fixed bucket when the server gives none (unix sockets) instead of a KeyError."""
    return request_ip(request) or "0.0.0.0"  # noqa: S104 - a bucket name, not a bind address
