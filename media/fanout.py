"""Encoded fan-out: the publisher's frames go to every viewer without decoding or encoding.

Each frame is packetised into RTP payloads once, with aiortc's own
packetiser, and the same payload bytes go to every viewer; per viewer only the
RTP header, SRTP and ``sendto`` remain. A viewer that falls behind never
slows the others: sending never waits, and a viewer whose socket stops
draining skips to the next keyframe.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from .aiortc_hooks import Packetizer, packetizer
from .encoded import EncodedFrame
from .switchable import SwitchableTrack

logger = logging.getLogger(__name__)

#: bytes a viewer's socket may have waiting before it skips to the next keyframe
#: (~1.4 s of 1.5 Mbit/s video)
MAX_BACKLOG_BYTES = 256 * 1024


class KeyframeRequester:
    """Asks the publisher for keyframes, at most once per ``min_interval`` seconds.

    Hundreds of viewers joining or losing packets at once must not flood the
    host's phone (a keyframe costs it several times a normal frame's bits):
    requests inside the interval are merged into one sent when it ends.
    """

    def __init__(self, send: Callable[[], Awaitable[bool]], min_interval: float = 1.0) -> None:
        self._send = send
        self.min_interval = min_interval
        self._last = -float("inf")
        self._pending: asyncio.TimerHandle | None = None
        self.requested = 0  # calls to request()
        self.sent = 0  # requests that went upstream

    def request(self) -> None:
        self.requested += 1
        if self._pending is not None:
            return  # merged into the request already waiting
        loop = asyncio.get_running_loop()
        wait = self._last + self.min_interval - time.monotonic()
        if wait <= 0:
            self._fire()
        else:
            self._pending = loop.call_later(wait, self._fire)

    def _fire(self) -> None:
        self._pending = None
        self._last = time.monotonic()
        self.sent += 1
        asyncio.ensure_future(self._send_safely())

    async def _send_safely(self) -> None:
        try:
            await self._send()
        except Exception:  # a closing publisher: the next one gets asked anew
            logger.debug("keyframe request failed", exc_info=True)

    def close(self) -> None:
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None


class ViewerTrack(MediaStreamTrack):
    """One viewer's end of the fan-out.

    aiortc's sender holds this track for negotiation and RTCP, but ``recv()``
    never yields: the fan-out hands each frame, already packetised, to the
    viewer's :class:`~media.aiortc_hooks.RtpForwarder`, which only writes
    headers, encrypts and sends.
    """

    def __init__(self, fanout: Fanout) -> None:
        super().__init__()
        self.kind = fanout.kind
        self._fanout = fanout
        self._forwarder = None
        self._stopped = asyncio.Event()
        self._need_keyframe = self.kind == "video"
        self.delivered = 0
        self.dropped = 0
        #: the fan-out's frame count when this viewer's connection was up, and
        #: when its first frame went out: the difference is its wait for a keyframe
        self.ready_frame: int | None = None
        self.first_frame: int | None = None

    def attach(self, forwarder) -> None:
        self._forwarder = forwarder

    def forward(self, payloads: list[bytes], timestamp: int, keyframe: bool) -> None:
        forwarder = self._forwarder
        if forwarder is None or self.readyState != "live" or not forwarder.ready():
            self.dropped += 1  # still connecting
            return
        if self.ready_frame is None:
            self.ready_frame = self._fanout.frames
        if forwarder.backlog() > MAX_BACKLOG_BYTES:
            # The viewer's socket is not draining (a stalled or far too slow
            # link). Skip frames and restart at a keyframe once it drains.
            self.dropped += 1
            self._need_keyframe = self.kind == "video"
            return
        if self._need_keyframe and not keyframe:
            # Connected and waiting for a picture to start at: ask now, not at join
            # time (a keyframe sent before DTLS is up would be wasted). Merged and
            # rate-limited with everyone else's requests.
            self.dropped += 1
            self._fanout.keyframes.request()
            return
        if not forwarder.send_frame(payloads, timestamp):
            self.dropped += 1
            return
        self._need_keyframe = False
        if self.first_frame is None:
            self.first_frame = self._fanout.frames
        self.delivered += 1

    async def recv(self):
        await self._stopped.wait()
        raise MediaStreamError

    def stop(self) -> None:
        if self.readyState == "live":
            self._fanout.unsubscribe(self)
            self._stopped.set()
        super().stop()


class Fanout:
    """Reads one kind of the room's source, packetises each frame once, sends it to all."""

    def __init__(
        self,
        source: SwitchableTrack,
        keyframes: KeyframeRequester,
        reencode: Callable[[EncodedFrame], list[EncodedFrame]] | None = None,
    ) -> None:
        self.kind = source.kind
        self.source = source
        self.keyframes = keyframes
        self.viewers: set[ViewerTrack] = set()
        self.frames = 0
        #: callables given every frame as it is forwarded (the recorder's queue)
        self.taps: list[Callable[[EncodedFrame], None]] = []
        #: what viewers get instead of the source's frames (Opus with FEC, made once
        #: for all of them); the taps still get the source's own frames
        self.reencode = reencode
        self._codec: str | None = None
        self._pack: Packetizer | None = None
        self._task = asyncio.ensure_future(self._pump())

    def subscribe(self) -> ViewerTrack:
        track = ViewerTrack(self)
        self.viewers.add(track)
        return track

    def unsubscribe(self, track: ViewerTrack) -> None:
        self.viewers.discard(track)

    async def _pump(self) -> None:
        try:
            while True:
                frame: EncodedFrame = await self.source.recv()
                self.frames += 1
                for tap in self.taps:
                    tap(frame)
                if not self.viewers:
                    continue
                outgoing = self.reencode(frame) if self.reencode is not None else (frame,)
                for out in outgoing:
                    self._send(out)
        except MediaStreamError:
            pass
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("%s fan-out stopped", self.kind)

    def _send(self, frame: EncodedFrame) -> None:
        """Packetise ``frame`` once and hand the payloads to every viewer."""
        pack = self._pack
        if frame.codec != self._codec or pack is None:
            self._codec, self._pack = frame.codec, (pack := packetizer(frame.codec))
        packet = av.Packet(frame.data)
        packet.pts = frame.pts
        packet.time_base = frame.time_base
        payloads, timestamp = pack(packet)
        for viewer in tuple(self.viewers):
            viewer.forward(payloads, timestamp, frame.keyframe)

    async def close(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        for viewer in tuple(self.viewers):
            viewer.stop()
