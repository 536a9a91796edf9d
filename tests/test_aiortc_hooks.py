"""The aiortc/aioice internals media/ relies on: fail loudly when an upgrade moves them."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import aiortc

from media import install_aiortc_patches
from media.aiortc_hooks import (
    encoded_hook_attached,
    host_addresses_hook_attached,
    restrict_host_addresses,
)

from .support.peers import NO_ICE_SERVERS


def test_aiortc_is_the_pinned_version():
    assert version("aiortc") == "1.16.0", "media/aiortc_hooks/ was written for aiortc 1.16.0"


def test_host_address_hook_still_attaches():
    assert host_addresses_hook_attached()


async def test_restricted_ice_offers_only_loopback():
    restrict_host_addresses(["127.0.0.1"])
    pc = aiortc.RTCPeerConnection(NO_ICE_SERVERS)
    pc.addTransceiver("video", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    sdp_lines = pc.localDescription.sdp.splitlines()
    candidates = [line for line in sdp_lines if line.startswith("a=candidate")]
    await pc.close()
    assert candidates and all(" 127.0.0.1 " in c and "typ host" in c for c in candidates)


def test_encoded_receive_hook_still_attaches():
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


def test_importing_media_patches_nothing_and_installing_twice_changes_nothing():
    import aiortc.rtcrtpreceiver

    fresh = subprocess.run(
        [
            sys.executable,
            "-c",
            "import media, aiortc.rtcrtpreceiver as r; print(r.decoder_worker.__module__)",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert fresh.stdout.strip() == "aiortc.rtcrtpreceiver"
    install_aiortc_patches()  # conftest installed them already
    worker = aiortc.rtcrtpreceiver.decoder_worker
    install_aiortc_patches()
    assert aiortc.rtcrtpreceiver.decoder_worker is worker
    assert encoded_hook_attached()
