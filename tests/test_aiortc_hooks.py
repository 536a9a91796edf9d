"""The aiortc/aioice internals media/ relies on: fail loudly when an upgrade moves them."""

from __future__ import annotations

from importlib.metadata import version

import aiortc

from media.aiortc_hooks import host_addresses_hook_attached, restrict_host_addresses

from .peers import NO_ICE_SERVERS


def test_aiortc_is_the_pinned_version():
    assert version("aiortc") == "1.16.0", "media/aiortc_hooks.py was written for aiortc 1.16.0"


def test_host_address_hook_still_attaches():
    assert host_addresses_hook_attached()


async def test_restricted_ice_offers_only_loopback():
    restrict_host_addresses(["127.0.0.1"])
    pc = aiortc.RTCPeerConnection(NO_ICE_SERVERS)
    pc.addTransceiver("video", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    candidates = [l for l in pc.localDescription.sdp.splitlines() if l.startswith("a=candidate")]
    await pc.close()
    assert candidates and all(" 127.0.0.1 " in c and "typ host" in c for c in candidates)
