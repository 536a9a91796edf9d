"""Encoded fan-out: the publisher's frames go to every viewer without decoding or encoding.

Each frame becomes one ``av.Packet`` shared by all viewers; aiortc's sender
packetises it (``encoder.pack``) instead of encoding (MEDIA-NOTES). A viewer
that falls behind never slows the others: its queue is bounded, and on
overflow it skips to the next keyframe.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from .encoded import EncodedFrame
from .switchable import SwitchableTrack

logger = logging.getLogger(__name__)

#: frames a viewer may have waiting: ~1 s of 30 fps video, ~1 s of 20 ms audio
VIDEO_QUEUE_FRAMES = 30
AUDIO_QUEUE_FRAMES = 50


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
    """What one viewer's sender reads: shared ``av.Packet`` objects, from a keyframe on."""

    def __init__(self, fanout: Fanout) -> None:
        super().__init__()
        self.kind = fanout.kind
        self._fanout = fanout
        size = VIDEO_QUEUE_FRAMES if self.kind == "video" else AUDIO_QUEUE_FRAMES
        self._queue: asyncio.Queue[av.Packet | None] = asyncio.Queue(maxsize=size)
        self._need_keyframe = self.kind == "video"
        self.delivered = 0
        self.dropped = 0
        #: the fan-out's frame count when this viewer's first frame was queued
        self.first_frame: int | None = None

    def offer(self, packet: av.Packet, keyframe: bool) -> None:
        if self._need_keyframe:
            if not keyframe:
                self.dropped += 1
                return
            self._need_keyframe = False
        if self.first_frame is None:
            self.first_frame = self._fanout.frames
        try:
            self._queue.put_nowait(packet)
        except asyncio.QueueFull:
            self._overflow(packet)

    def _overflow(self, packet: av.Packet) -> None:
        if self.kind == "video":
            # The viewer stalled: what is queued can no longer be decoded in
            # time. Drop it all and start again at the next keyframe.
            self.dropped += self._queue.qsize() + 1
            while not self._queue.empty():
                self._queue.get_nowait()
            self._need_keyframe = True
            self._fanout.keyframes.request()
        else:
            self._queue.get_nowait()  # audio: lose the oldest 20 ms
            self._queue.put_nowait(packet)
            self.dropped += 1

    async def recv(self) -> av.Packet:
        if self.readyState != "live":
            raise MediaStreamError
        packet = await self._queue.get()
        if packet is None:
            raise MediaStreamError
        self.delivered += 1
        return packet

    def stop(self) -> None:
        if self.readyState == "live":
            self._fanout.unsubscribe(self)
            try:
                self._queue.put_nowait(None)
            except asyncio.QueueFull:
                pass
        super().stop()


class Fanout:
    """Reads one kind of the room's source and hands each frame to every viewer."""

    def __init__(self, source: SwitchableTrack, keyframes: KeyframeRequester) -> None:
        self.kind = source.kind
        self.source = source
        self.keyframes = keyframes
        self.viewers: set[ViewerTrack] = set()
        self.frames = 0
        self._task = asyncio.ensure_future(self._pump())

    def subscribe(self) -> ViewerTrack:
        track = ViewerTrack(self)
        self.viewers.add(track)
        if self.kind == "video":
            self.keyframes.request()  # so the newcomer's picture starts soon
        return track

    def unsubscribe(self, track: ViewerTrack) -> None:
        self.viewers.discard(track)

    async def _pump(self) -> None:
        try:
            while True:
                frame: EncodedFrame = await self.source.recv()
                packet = av.Packet(frame.data)
                packet.pts = frame.pts
                packet.time_base = frame.time_base
                self.frames += 1
                for viewer in tuple(self.viewers):
                    viewer.offer(packet, frame.keyframe)
        except MediaStreamError:
            pass
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("%s fan-out stopped", self.kind)

    async def close(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        for viewer in tuple(self.viewers):
            viewer.stop()
