"""A publisher slot (the main one or the floor): the live session, and newer ones on trial."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from typing import Any, Protocol

from aiortc.mediastreams import MediaStreamTrack

from .session import PeerSession
from .switchable import PrimedTrack, SwitchableTrack

logger = logging.getLogger(__name__)


class _TimedTrack(PrimedTrack):
    """A :class:`PrimedTrack` that notes when its last frame arrived."""

    last_frame_at = 0.0

    def _arrived(self, first: asyncio.Future) -> None:
        self.last_frame_at = time.monotonic()
        super()._arrived(first)

    async def recv(self) -> Any:
        frame = await super().recv()
        self.last_frame_at = time.monotonic()
        return frame


class SlotOwner(Protocol):
    """What a slot needs of its room."""

    id: str

    def spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        """Run ``coroutine`` in the background (the room waits for it when it closes)."""

    def went_live(self, slot: Slot, session: PeerSession, tracks: list[PrimedTrack]) -> None:
        """``session`` is on the air: its tracks feed the slot's sources."""

    def went_off(self, slot: Slot, session: PeerSession) -> None:
        """The live ``session`` ended: the slot's sources have no feed."""

    def trial_ended(self, slot: Slot) -> None:
        """A session on trial ended before its first frame: nothing else changed."""


class Slot:
    """A publisher slot (main or floor): the live session, and newer ones on trial.

    A new publisher is on trial from its offer until its first frame, which
    puts it on the air: its tracks become the room's sources, the live
    publisher and older trials are hung up. A trial that ends first (ICE failed,
    DELETE, nothing delivered within the connect timeout) changes nothing. So
    a phone that drops mid-handshake, or a second device that connects but
    sends nothing, never silences the meeting; the newest that delivers wins.
    """

    def __init__(self, room: SlotOwner, routes: dict[str, SwitchableTrack]) -> None:
        self._room = room
        #: kind of a publisher's track -> the room source it feeds
        self._routes = routes
        self.live: PeerSession | None = None
        self._live_tracks: list[PrimedTrack] = []
        #: sessions on trial, oldest first, with their tracks
        self._trials: dict[PeerSession, list[PrimedTrack]] = {}

    @property
    def sessions(self) -> list[PeerSession]:
        """Every open session of the slot, the live one first."""
        live = [self.live] if self.live is not None else []
        return live + list(self._trials)

    @property
    def on_trial(self) -> int:
        return len(self._trials)

    def try_out(self, session: PeerSession, tracks: list[MediaStreamTrack]) -> None:
        """Put a negotiated ``session`` on trial; it goes live with its first frame."""
        self._trials[session] = [
            _TimedTrack(track, lambda: self._delivered(session)) for track in tracks
        ]
        session.on_close(self._closed)

    def _delivered(self, session: PeerSession) -> None:
        if session not in self._trials or session.closed:
            return  # already live, or hung up meanwhile
        # Trials are kept oldest first, and all are newer than the live session:
        # the live one and the trials before this one lose to it.
        losers = [self.live] if self.live is not None else []
        for trial in list(self._trials):
            if trial is session:
                break
            losers.append(trial)
            for track in self._trials.pop(trial):
                track.stop()
        for track in self._live_tracks:
            track.stop()
        tracks = self._trials.pop(session)
        self.live, self._live_tracks = session, tracks
        session.mark_ready()
        by_kind = {track.kind: track for track in tracks}
        for kind, source in self._routes.items():
            source.set_source(by_kind.get(kind))
        for loser in losers:
            logger.info("room %s: %r replaces %r", self._room.id, session, loser)
            self._room.spawn(loser.close())
        self._room.went_live(self, session, tracks)

    def _closed(self, session: PeerSession) -> None:
        tracks = self._trials.pop(session, None)
        if tracks is not None:
            for track in tracks:
                track.stop()
            self._room.trial_ended(self)
            return
        if session is not self.live:
            return
        tracks, self.live, self._live_tracks = self._live_tracks, None, []
        by_kind = {track.kind: track for track in tracks}
        for kind, source in self._routes.items():
            if kind in by_kind:
                source.clear_source(by_kind[kind])
        for track in tracks:
            track.stop()
        self._room.went_off(self, session)

    def silent_for(self) -> float | None:
        """Seconds since the live session's last frame (of any kind); None when none is live."""
        if self.live is None or not self._live_tracks:
            return None
        last = max(getattr(track, "last_frame_at", 0.0) for track in self._live_tracks)
        return time.monotonic() - last

    def take_off_air(self) -> list[PeerSession]:
        """Stop forwarding now, and keep every trial off the air; return the sessions to close.

        For the slower hang-up that follows: no frame is forwarded meanwhile.
        """
        sessions = self.sessions
        for track in self._live_tracks:
            for source in self._routes.values():
                source.clear_source(track)
        for tracks in self._trials.values():
            for track in tracks:
                track.stop()
        self._trials.clear()
        return sessions
