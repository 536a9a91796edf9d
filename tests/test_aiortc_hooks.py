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


def test_encoded_receive_hook_still_attaches():
    from media.aiortc_hooks import encoded_hook_attached

    assert encoded_hook_attached(), "aiortc's receiver no longer starts decoder_worker as expected"


def test_keyframe_and_codec_hooks_find_their_attributes():
    from aiortc.rtcrtpreceiver import RTCRtpReceiver
    from aiortc.rtcrtpsender import RTCRtpSender
    from aiortc.rtcrtptransceiver import RTCRtpTransceiver

    assert hasattr(RTCRtpReceiver, "_send_rtcp_pli")
    assert hasattr(RTCRtpSender, "_send_keyframe")
    import inspect

    assert "self._codecs" in inspect.getsource(RTCRtpTransceiver.__init__)
    assert "__rtx_ssrc" in inspect.getsource(RTCRtpReceiver.__init__)
    assert "self._send_keyframe()" in inspect.getsource(RTCRtpSender._handle_rtcp_packet)
