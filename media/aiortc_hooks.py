"""Every use of aiortc/aioice internals lives here, so an upgrade breaks in one place.

aiortc is pinned exactly in pyproject.toml; ``tests/test_aiortc_hooks.py`` fails
loudly if a hook no longer attaches.
"""

from __future__ import annotations

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
    import inspect

    source = inspect.getsource(aioice.ice.Connection.gather_candidates)
    return "get_host_addresses(" in source and hasattr(aioice.ice, "get_host_addresses")


# --------------------------------------------------------------------------
# Receiving encoded frames (MEDIA-NOTES: "Receiving encoded frames has no
# public hook"). aiortc decodes in a thread running the module function
# ``decoder_worker``; for the tracks registered here our worker hands over the
# jitter buffer's complete encoded frames instead, and never creates a decoder.

import asyncio  # noqa: E402
import weakref  # noqa: E402

import aiortc.rtcrtpreceiver  # noqa: E402
from aiortc.codecs import is_rtx  # noqa: E402

from .encoded import AUDIO_TIME_BASE, VIDEO_TIME_BASE, EncodedFrame, is_keyframe  # noqa: E402

_encoded_queues: weakref.WeakSet = weakref.WeakSet()
_original_decoder_worker = aiortc.rtcrtpreceiver.decoder_worker


def receive_encoded(track) -> None:
    """Make a remote track's ``recv()`` return :class:`EncodedFrame` objects.

    Call it from the peer connection's ``track`` event: the receiver starts its
    worker thread only once the connection is up.
    """
    _encoded_queues.add(track._queue)


def _decoder_worker(loop, input_q, output_q, decode_error) -> None:
    if output_q not in _encoded_queues:
        return _original_decoder_worker(loop, input_q, output_q, decode_error)
    deliver = output_q.put_nowait
    while True:
        task = input_q.get()
        if task is None:
            _call_soon(loop, deliver, None)  # the track ends
            return
        codec, jitter_frame = task
        mime = codec.mimeType.lower()
        kind = mime.split("/")[0]
        data = jitter_frame.data
        frame = EncodedFrame(
            kind=kind,
            codec=mime,
            data=data,
            pts=jitter_frame.timestamp,
            time_base=VIDEO_TIME_BASE if kind == "video" else AUDIO_TIME_BASE,
            keyframe=is_keyframe(mime, data),
        )
        if not _call_soon(loop, deliver, frame):
            return


def _call_soon(loop: asyncio.AbstractEventLoop, callback, arg) -> bool:
    try:
        loop.call_soon_threadsafe(callback, arg)
        return True
    except RuntimeError:  # the loop is closed: nobody is listening any more
        return False


aiortc.rtcrtpreceiver.decoder_worker = _decoder_worker


def encoded_hook_attached() -> bool:
    """True when aiortc's receiver still starts its worker through the function we replace."""
    import inspect

    source = inspect.getsource(aiortc.rtcrtpreceiver.RTCRtpReceiver.receive)
    return (
        "target=decoder_worker" in source
        and "self._track._queue" in source
        and aiortc.rtcrtpreceiver.decoder_worker is _decoder_worker
    )


# --------------------------------------------------------------------------
# Keyframes. A viewer's PLI/FIR only sets a flag in the sender that pack()
# ignores; we forward it upstream with the receiver's own PLI sender.


def media_ssrc(receiver) -> int | None:
    """The publisher's media SSRC (not its RTX SSRC, whose PLIs are ignored)."""
    rtx = getattr(receiver, "_RTCRtpReceiver__rtx_ssrc", {})
    if rtx:
        return next(iter(rtx.values()))
    for source in receiver.getSynchronizationSources():
        if source.source not in rtx:
            return source.source
    return None


async def send_pli(receiver) -> bool:
    """Ask the publisher for a keyframe. False when no media has arrived yet."""
    ssrc = media_ssrc(receiver)
    if ssrc is None:
        return False
    await receiver._send_rtcp_pli(ssrc)
    return True


def on_keyframe_request(sender, callback) -> None:
    """Call ``callback()`` when the viewer behind ``sender`` sends PLI or FIR."""
    sender._send_keyframe = callback


# --------------------------------------------------------------------------
# Codecs. aiortc's answer follows the offer's codec order, and
# setCodecPreferences cannot be applied to transceivers that setRemoteDescription
# creates; so the negotiated list is narrowed between setRemoteDescription and
# createAnswer.


def negotiated_codecs(transceiver) -> list[str]:
    """Lower-case mime types the offer and aiortc have in common, offer order, no RTX."""
    seen = []
    for codec in transceiver._codecs:
        mime = codec.mimeType.lower()
        if not is_rtx(codec) and mime not in seen:
            seen.append(mime)
    return seen


def restrict_codecs(transceiver, mime: str) -> bool:
    """Keep only ``mime`` (and its RTX) in the answer. False if the offer lacks it."""
    kept = [c for c in transceiver._codecs if c.mimeType.lower() == mime and not is_rtx(c)]
    if not kept:
        return False
    payload_types = {c.payloadType for c in kept}
    rtx = [
        c for c in transceiver._codecs
        if is_rtx(c) and c.parameters.get("apt") in payload_types
    ]
    transceiver._codecs = kept + rtx
    return True
