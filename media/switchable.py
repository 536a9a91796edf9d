"""A track whose upstream source can be swapped while viewers keep reading it."""

from __future__ import annotations

import asyncio
import fractions
import logging
import time

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
        self._changed = asyncio.Event()
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
        self._changed.set()

    def clear_source(self, track: MediaStreamTrack) -> None:
        """Forget ``track`` if it is still the source (its publisher left)."""
        if self._source is track:
            self.set_source(None)

    async def recv(self):
        while self.readyState == "live":
            source = self._source
            if source is None:
                self._changed.clear()
                await self._changed.wait()
                continue
            try:
                frame = await source.recv()
            except MediaStreamError:
                self.clear_source(source)
                continue
            if source is not self._source:
                continue  # a late frame from a source that was just replaced
            return self._restamp(frame)
        raise MediaStreamError

    def stop(self) -> None:
        super().stop()
        self._changed.set()

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
