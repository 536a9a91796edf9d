"""ICE host candidates: which local addresses aioice offers (process-wide)."""

from __future__ import annotations

import inspect
import ipaddress
import logging
from collections.abc import Callable, Sequence

import aioice.ice

logger = logging.getLogger(__name__)

_original_get_host_addresses: Callable[..., list[str]] = aioice.ice.get_host_addresses


def restrict_host_addresses(addresses: Sequence[str]) -> None:
    """Make ICE offer only ``addresses`` as host candidates (process-wide).

    aioice gathers every interface's address and always drops 127.0.0.1, so a
    test or a loopback-only deployment cannot keep media on loopback without
    this. An empty sequence restores aioice's own behaviour.
    """
    if not addresses:
        aioice.ice.get_host_addresses = _original_get_host_addresses
        return
    parsed = [ipaddress.ip_address(a) for a in addresses]

    def get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [
            str(ip)
            for ip in parsed
            if (ip.version == 4 and use_ipv4) or (ip.version == 6 and use_ipv6)
        ]

    aioice.ice.get_host_addresses = get_host_addresses
    logger.info("ICE host candidates restricted to %s", ", ".join(map(str, parsed)))


def host_addresses_hook_attached() -> bool:
    """True when aioice still gathers host candidates through the function we replace."""
    source = inspect.getsource(aioice.ice.Connection.gather_candidates)
    return "get_host_addresses(" in source and hasattr(aioice.ice, "get_host_addresses")
