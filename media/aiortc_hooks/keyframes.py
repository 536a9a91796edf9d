"""Keyframes: a viewer's PLI/FIR only sets a flag in the sender that ``pack()`` ignores.

We forward it upstream with the receiver's own PLI sender.
"""

from __future__ import annotations

from collections.abc import Callable

from aiortc import RTCRtpReceiver, RTCRtpSender


def media_ssrc(receiver: RTCRtpReceiver) -> int | None:
    """The publisher's media SSRC (not its RTX SSRC, whose PLIs are ignored)."""
    rtx = getattr(receiver, "_RTCRtpReceiver__rtx_ssrc", {})
    if rtx:
        return next(iter(rtx.values()))
    for source in receiver.getSynchronizationSources():
        if source.source not in rtx:
            return source.source
    return None


async def send_pli(receiver: RTCRtpReceiver) -> bool:
    """Ask the publisher for a keyframe. False when no media has arrived yet."""
    ssrc = media_ssrc(receiver)
    if ssrc is None:
        return False
    await receiver._send_rtcp_pli(ssrc)
    return True


def on_keyframe_request(sender: RTCRtpSender, callback: Callable[[], None]) -> None:
    """Call ``callback()`` when the viewer behind ``sender`` sends PLI or FIR."""
    sender._send_keyframe = callback  # type: ignore[method-assign]  # the hook itself
