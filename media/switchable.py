"""A track whose upstream source can be swapped while viewers keep reading it."""

from __future__ import annotations

import asyncio
import fractions
import logging
import time
from collections.abc import Callable

from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

logger = logging.getLogger(__name__)


class SwitchableTrack(MediaStreamTrack):
    """Reads frames from the current source; viewers never see the switch.

    When the host's phone reconnects it publishes on a new peer connection,
    whose track replaces the old one here; when the floor passes to another
    speaker, their microphone replaces the last one's. Timestamps are rebased so
    that they keep increasing across the switch, as a viewer's decoder expects,
    and advance by the time that passed without a source (a jitter buffer reads
    a gap in arrival without one in timestamps as a sudden delay).
    """

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self._source: MediaStreamTrack | None = None
        #: resolved when the source changes or the track stops (wakes recv())
        self._changed: asyncio.Future | None = None
        #: the read in progress from the source, kept across recv() calls
        self._reading: asyncio.Future | None = None
        self._reading_from: MediaStreamTrack | None = None
        self._offset = 0
        self._rebase = False
        self._last_pts: int | None = None
        self._last_duration = 0
        self._last_at = 0.0  # time.monotonic() of the last frame

    @property
    def source(self) -> MediaStreamTrack | None:
        return self._source

    def set_source(self, track: MediaStreamTrack | None) -> None:
        if track is self._source:
            return
        self._source = track
        self._rebase = True
        self._wake()

    def clear_source(self, track: MediaStreamTrack) -> None:
        """Forget ``track`` if it is still the source (its publisher left)."""
        if self._source is track:
            self.set_source(None)

    async def recv(self):
        # A source that is replaced while we wait for its next frame must not
        # hold us: a publisher whose connection never came up never ends its
        # track. So the read is raced against a change of source.
        while self.readyState == "live":
            source = self._source
            if self._reading is not None and self._reading_from is not source:
                self._reading.cancel()  # a read from a source replaced meanwhile
                self._reading = None
            if source is None:
                await self._wait_for_change()
                continue
            if self._reading is None:
                self._reading, self._reading_from = asyncio.ensure_future(source.recv()), source
            reading = self._reading
            if not reading.done():
                changed = self._changed = asyncio.get_running_loop().create_future()
                await asyncio.wait((reading, changed), return_when=asyncio.FIRST_COMPLETED)
                if not reading.done():
                    continue
            self._reading = self._reading_from = None
            try:
                frame = reading.result()
            except MediaStreamError:
                self.clear_source(source)
                continue
            if source is not self._source:
                continue  # a late frame from a source that was just replaced
            return self._restamp(frame)
        raise MediaStreamError

    def stop(self) -> None:
        super().stop()
        if self._reading is not None:
            self._reading.cancel()
            self._reading = self._reading_from = None
        self._wake()

    async def _wait_for_change(self) -> None:
        self._changed = asyncio.get_running_loop().create_future()
        await self._changed

    def _wake(self) -> None:
        if self._changed is not None and not self._changed.done():
            self._changed.set_result(None)

    def _restamp(self, frame):
        if frame.pts is None:
            return frame
        now = time.monotonic()
        if self._rebase:
            self._rebase = False
            if self._last_pts is not None:
                time_base = frame.time_base or fractions.Fraction(1, 90000)
                silent = int((now - self._last_at) / time_base)
                self._offset = self._last_pts + max(self._last_duration, silent) - frame.pts
        pts = frame.pts + self._offset
        if self._last_pts is not None and pts > self._last_pts:
            self._last_duration = pts - self._last_pts
        elif self._last_duration == 0:
            self._last_duration = _default_duration(frame)
        self._last_pts = pts
        self._last_at = now
        frame.pts = pts
        return frame


def _default_duration(frame) -> int:
    samples = getattr(frame, "samples", None)
    if samples:
        return samples
    time_base = frame.time_base or fractions.Fraction(1, 90000)
    return max(1, int(1 / (30 * time_base)))


class PrimedTrack(MediaStreamTrack):
    """A publisher's remote track whose first frame is read ahead.

    That frame is the proof that the publisher delivers: ``on_first_frame`` is
    called when it arrives (not if the track ends first), and ``recv()``
    returns it before the rest. A publisher is put on the air only then.
    """

    def __init__(self, track: MediaStreamTrack, on_first_frame: Callable[[], None]) -> None:
        super().__init__()
        self.kind = track.kind
        self.track = track
        self._on_first_frame = on_first_frame
        self._first: asyncio.Future | None = asyncio.ensure_future(track.recv())
        self._first.add_done_callback(self._arrived)

    def _arrived(self, first: asyncio.Future) -> None:
        if not first.cancelled() and first.exception() is None:
            self._on_first_frame()

    async def recv(self):
        first, self._first = self._first, None
        if first is not None:
            # shielded: a reader that gives up (the source was switched away
            # from) must not cancel the read under the delivery check
            try:
                return await asyncio.shield(first)
            except asyncio.CancelledError:
                if first.cancelled():  # stop(): the track ended, the reader did not
                    raise MediaStreamError from None
                raise
        if self.readyState != "live":
            raise MediaStreamError
        return await self.track.recv()

    def stop(self) -> None:
        super().stop()
        if self._first is not None and not self._first.done():
            self._first.cancel()
