"""The client's real address behind a reverse proxy (TRUSTED_PROXIES).

Lockouts key on the caller's address. Behind nginx every request comes from the
proxy, so without this one villager's wrong PINs would lock out the whole village.
Only requests whose direct peer is a trusted proxy may name another address, so a
phone that connects directly cannot pick an address by sending the header itself.
"""

from __future__ import annotations

from ipaddress import ip_address, ip_network

from aiohttp import web
from aiohttp_remotes import XForwardedFiltered


def forwarded_middleware(trusted: tuple[str, ...]):
    """X-Forwarded-For/-Proto/-Host from trusted proxies; ignored from anyone else."""
    networks = [ip_network(t, strict=False) for t in trusted]
    filtered = XForwardedFiltered(set(trusted))

    def from_proxy(request: web.Request) -> bool:
        try:
            peer = ip_address(request.remote or "")
        except ValueError:
            return False
        return any(peer in network for network in networks)

    @web.middleware
    async def middleware(request: web.Request, handler):
        if from_proxy(request):
            return await filtered.middleware(request, handler)
        return await handler(request)

    return middleware
