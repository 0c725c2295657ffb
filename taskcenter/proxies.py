"""Whose request is this: the client's address behind reverse proxies.

One rule, used by the audit log, the anonymous API throttle, ``/metrics`` and the admin login's
lockout: ``X-Forwarded-For`` counts only when the direct peer is one of ``TRUSTED_PROXIES``.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from django.conf import settings

#: Headers a proxy adds to say whom it forwards for.
FORWARDING_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED", "HTTP_X_REAL_IP")


@lru_cache(maxsize=64)
def _networks(cidrs: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(cidr.strip(), strict=False) for cidr in cidrs)


def _parse(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def in_networks(address: str | None, cidrs) -> bool:
    """Whether ``address`` lies in one of ``cidrs`` (an unparsable or missing address does not)."""
    parsed = _parse(address) if address else None
    return parsed is not None and any(parsed in network for network in _networks(tuple(cidrs)))


def from_trusted_proxy(request) -> bool:
    """Whether the direct peer (REMOTE_ADDR) is one of ``settings.TRUSTED_PROXIES``."""
    return in_networks(request.META.get("REMOTE_ADDR"), settings.TRUSTED_PROXIES)


def client_unknown(request) -> bool:
    """Whether a proxy forwarded ``request`` without its client being known: the peer is not a
    trusted proxy (its address is that proxy's, or a forger's), or the trusted proxies named no
    address beyond themselves. :func:`client_address` then names a proxy, not the client."""
    if not any(request.META.get(header) for header in FORWARDING_HEADERS):
        return False
    return not from_trusted_proxy(request) or in_networks(client_address(request), settings.TRUSTED_PROXIES)


def client_address(request) -> str | None:
    """The address of the client that sent ``request``.

    The direct peer (REMOTE_ADDR), unless it is a trusted proxy: then ``X-Forwarded-For`` is read
    from the right, past the trusted proxies, and the first other address is the client. What
    lies left of it was written by the client itself and is ignored; an unparsable entry ends
    the walk at the last proxy.
    """
    peer = request.META.get("REMOTE_ADDR") or None
    if not from_trusted_proxy(request):
        return peer
    client = peer
    for hop in reversed(request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")):
        address = _parse(hop)
        if address is None:
            break
        client = str(address)
        if not in_networks(client, settings.TRUSTED_PROXIES):
            break
    return client
