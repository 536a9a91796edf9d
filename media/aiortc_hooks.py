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
    rtx = [c for c in transceiver._codecs if is_rtx(c) and c.parameters.get("apt") in payload_types]
    transceiver._codecs = kept + rtx
    return True


# --------------------------------------------------------------------------
# Sending: packetise once per frame, then per viewer only write the RTP
# header, SRTP-protect and sendto (MEDIA-NOTES: aiortc's sender costs 33-50 µs
# a packet, these three steps under 10 µs). aiortc still negotiates, runs
# DTLS and RTCP for each viewer; its sender gets a track that never yields,
# and we write its RTCP sender-report counters so lip sync keeps working.

import struct  # noqa: E402

from aiortc import RTCRtpCodecParameters  # noqa: E402
from aiortc.codecs import get_encoder  # noqa: E402
from aiortc.rtcrtpparameters import RTCRtpParameters  # noqa: E402
from aiortc.rtp import HeaderExtensionsMap, RtpPacket  # noqa: E402
from aiortc.utils import random16, random32  # noqa: E402

_CLOCK_RATES = {"video/h264": 90000, "video/vp8": 90000, "audio/opus": 48000}
_HISTORY = 512  # packets kept per viewer for NACK retransmission (payloads are shared)


def packetizer(mime: str):
    """A function ``av.Packet -> (payloads, rtp_timestamp)``, aiortc's own packetiser."""
    params = RTCRtpCodecParameters(
        mimeType=mime,
        clockRate=_CLOCK_RATES[mime],
        channels=2 if mime.startswith("audio") else None,
    )
    return get_encoder(params).pack


class RtpForwarder:
    """Sends shared, already packetised frames to one viewer's sender."""

    def __init__(self, transceiver, sender) -> None:
        codec = transceiver._codecs[0]
        self.payload_type = codec.payloadType
        rtx = next(
            (
                c
                for c in transceiver._codecs
                if is_rtx(c) and c.parameters.get("apt") == codec.payloadType
            ),
            None,
        )
        self._rtx_payload_type = rtx.payloadType if rtx else None
        self._rtx_seq = random16()
        self._sender = sender
        self.ssrc = sender._ssrc
        extensions = HeaderExtensionsMap()
        extensions.configure(RTCRtpParameters(headerExtensions=transceiver._headerExtensions))
        template = RtpPacket(payload_type=self.payload_type, ssrc=self.ssrc)
        template.extensions.mid = transceiver.mid
        self._header = bytearray(template.serialize(extensions))  # 12 bytes + the mid extension
        self._seq = random16()
        self._ts_origin = random32()
        self._history: list = [None] * _HISTORY
        self._packets = 0
        self._octets = 0
        self._cached_path = None
        sender._retransmit = self._retransmit

    def _path(self):
        """(protect, send, backlog) once DTLS is up, else None. Cached per ICE pair."""
        dtls = self._sender.transport
        srtp = getattr(dtls, "_tx_srtp", None)
        if srtp is None or dtls.state != "connected":
            return None
        pair = dtls.transport._connection._nominated.get(1)
        if pair is None:
            return None
        cached = self._cached_path
        if cached is not None and cached[0] is pair and cached[1] is srtp:
            return cached[2]
        path = self._build_path(srtp, pair)
        self._cached_path = (pair, srtp, path)
        return path

    @staticmethod
    def _build_path(srtp, pair):
        protocol, addr = pair.protocol, pair.remote_addr
        if type(protocol).send_data is aioice.ice.StunProtocol.send_data:
            transport = protocol.transport

            def send(data: bytes) -> None:
                transport.sendto(data, addr)

            backlog = transport.get_write_buffer_size
        else:  # relayed through TURN: its send is a coroutine

            def send(data: bytes) -> None:
                asyncio.ensure_future(protocol.send_data(data, addr))

            def backlog() -> int:
                return 0

        return srtp.protect, send, backlog

    def ready(self) -> bool:
        return self._path() is not None

    def backlog(self) -> int:
        """Bytes waiting in the socket's user-space buffer (a stalled viewer)."""
        path = self._path()
        return path[2]() if path else 0

    def send_frame(self, payloads: list[bytes], timestamp: int) -> bool:
        """Send one frame's payloads; False when the connection is not (or no longer) up."""
        path = self._path()
        if path is None:
            return False
        protect, send, _ = path
        header, history, pt = self._header, self._history, self.payload_type
        ts = (self._ts_origin + timestamp) & 0xFFFFFFFF
        seq = self._seq
        last = len(payloads) - 1
        for i, payload in enumerate(payloads):
            marker_pt = pt | 0x80 if i == last else pt
            struct.pack_into("!BHI", header, 1, marker_pt, seq, ts)
            history[seq % _HISTORY] = (seq, marker_pt, ts, payload)
            send(protect(bytes(header) + payload))
            self._octets += len(payload)
            seq = (seq + 1) & 0xFFFF
        self._seq = seq
        self._packets += len(payloads)
        # what aiortc's RTCP task puts in its sender reports
        sender = self._sender
        sender._RTCRtpSender__ntp_timestamp = _ntp_now()
        sender._RTCRtpSender__rtp_timestamp = ts
        sender._RTCRtpSender__packet_count = self._packets
        sender._RTCRtpSender__octet_count = self._octets
        return True

    async def _retransmit(self, sequence_number: int) -> None:
        entry = self._history[sequence_number % _HISTORY]
        path = self._path()
        if entry is None or entry[0] != sequence_number or path is None:
            return
        protect, send, _ = path
        seq, marker_pt, ts, payload = entry
        header = bytearray(self._header)
        if self._rtx_payload_type is None:
            struct.pack_into("!BHI", header, 1, marker_pt, seq, ts)
        else:
            marker = marker_pt & 0x80
            struct.pack_into(
                "!BHII",
                header,
                1,
                marker | self._rtx_payload_type,
                self._rtx_seq,
                ts,
                self._sender._rtx_ssrc,
            )
            self._rtx_seq = (self._rtx_seq + 1) & 0xFFFF
            payload = struct.pack("!H", seq) + payload
        send(protect(bytes(header) + payload))


def _ntp_now() -> int:
    from aiortc import clock

    return clock.current_ntp_time()
