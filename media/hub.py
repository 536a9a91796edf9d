"""Per-meeting rooms: one publisher fanned out to many viewers.

This is the only part of media/ the server calls. The fan-out behind it
(today aiortc's MediaRelay: decode once, encode per viewer) can change
without the server noticing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from aiortc.contrib.media import MediaBlackhole, MediaRelay

from .aiortc_hooks import restrict_host_addresses
from .config import MediaConfig
from .errors import InvalidOffer, SessionNotFound
from .sdp import OfferSummary
from .session import PeerSession
from .switchable import SwitchableTrack

logger = logging.getLogger(__name__)

KINDS = ("audio", "video")


@dataclass(frozen=True)
class RoomEvent:
    """Sent to listeners whenever a room's publisher or audience changes."""

    room_id: str
    publishing: bool
    viewers: int


Listener = Callable[[RoomEvent], None]


class Room:
    """The media of one meeting: its publisher, its viewers and the fan-out."""

    def __init__(self, room_id: str, hub: MediaHub) -> None:
        self.id = room_id
        self._hub = hub
        self._relay = MediaRelay()
        self._sources = {kind: SwitchableTrack(kind) for kind in KINDS}
        self.publisher: PeerSession | None = None
        self.viewers: dict[str, PeerSession] = {}
        # Keep reading the sources even with no viewer, so the receiver's
        # frame queue never grows without bound.
        self._drain = MediaBlackhole()
        for track in self._sources.values():
            self._drain.addTrack(self._relay.subscribe(track, buffered=False))
        self._drain_started = False

    @property
    def publishing(self) -> bool:
        return self.publisher is not None and not self.publisher.closed

    def session(self, session_id: str) -> PeerSession | None:
        if self.publisher is not None and self.publisher.id == session_id:
            return self.publisher
        return self.viewers.get(session_id)

    async def publish(self, offer_sdp: str) -> PeerSession:
        session = PeerSession(self.id, "publisher", self._hub.config)
        tracks = []

        def on_track(track) -> None:
            if track.kind in self._sources:
                tracks.append(track)

        def prepare(offer: OfferSummary) -> None:
            if not offer.sends:
                raise InvalidOffer("a WHIP offer must send audio or video (sendonly or sendrecv)")

        session.pc.on("track", on_track)
        await session.negotiate(offer_sdp, prepare)
        previous = self.publisher
        self.publisher = session
        for track in tracks:
            self._sources[track.kind].set_source(track)
        session.on_close(self._publisher_closed(tracks))
        if previous is not None:
            logger.info("room %s: %r replaces %r", self.id, session, previous)
            await previous.close()
        if not self._drain_started:
            self._drain_started = True
            await self._drain.start()
        self._hub._notify(self)
        return session

    async def subscribe(self, offer_sdp: str) -> PeerSession:
        session = PeerSession(self.id, "viewer", self._hub.config)

        def prepare(offer: OfferSummary) -> None:
            if not offer.receives:
                raise InvalidOffer("a WHEP offer must receive audio or video (recvonly)")
            for transceiver in session.pc.getTransceivers():
                if transceiver.kind in offer.receives and transceiver.sender.track is None:
                    track = self._relay.subscribe(self._sources[transceiver.kind], buffered=False)
                    session.pc.addTrack(track)

        await session.negotiate(offer_sdp, prepare)
        self.viewers[session.id] = session
        session.on_close(self._viewer_closed)
        self._hub._notify(self)
        return session

    def _publisher_closed(self, tracks):
        def callback(session: PeerSession) -> None:
            for track in tracks:
                self._sources[track.kind].clear_source(track)
            if self.publisher is session:
                self.publisher = None
                self._hub._notify(self)

        return callback

    def _viewer_closed(self, session: PeerSession) -> None:
        if self.viewers.pop(session.id, None) is not None:
            for sender in session.pc.getSenders():
                if sender.track is not None:
                    sender.track.stop()
            self._hub._notify(self)

    async def close(self) -> None:
        sessions = list(self.viewers.values())
        if self.publisher is not None:
            sessions.append(self.publisher)
        await asyncio.gather(*(s.close() for s in sessions), return_exceptions=True)
        await self._drain.stop()
        for track in self._sources.values():
            track.stop()


class MediaHub:
    """All rooms of this process.

    Open it once per server (``await hub.close()`` on shutdown closes every peer
    connection). Listeners hear about publisher and audience changes.
    """

    def __init__(self, config: MediaConfig) -> None:
        self.config = config
        self._rooms: dict[str, Room] = {}
        self._listeners: list[Listener] = []
        restrict_host_addresses(config.host_addresses)

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def room(self, room_id: str) -> Room:
        room = self._rooms.get(room_id)
        if room is None:
            room = self._rooms[room_id] = Room(room_id, self)
        return room

    def stats(self, room_id: str) -> RoomEvent:
        room = self._rooms.get(room_id)
        if room is None:
            return RoomEvent(room_id, publishing=False, viewers=0)
        return RoomEvent(room_id, publishing=room.publishing, viewers=len(room.viewers))

    async def publish(self, room_id: str, offer_sdp: str) -> PeerSession:
        """Start publishing into ``room_id``; a second publisher replaces the first."""
        return await self.room(room_id).publish(offer_sdp)

    async def subscribe(self, room_id: str, offer_sdp: str) -> PeerSession:
        """Add a viewer; it plays whatever the room's current publisher sends."""
        return await self.room(room_id).subscribe(offer_sdp)

    def session(self, room_id: str, session_id: str) -> PeerSession:
        room = self._rooms.get(room_id)
        session = room.session(session_id) if room else None
        if session is None or session.closed:
            raise SessionNotFound(f"no media session {session_id} in room {room_id}")
        return session

    async def close_session(self, room_id: str, session_id: str) -> None:
        await self.session(room_id, session_id).close()

    async def close_room(self, room_id: str) -> None:
        """Hang up everyone in the room (the meeting ended)."""
        room = self._rooms.pop(room_id, None)
        if room is not None:
            await room.close()
            self._notify(room, RoomEvent(room_id, publishing=False, viewers=0))

    async def close(self) -> None:
        for room_id in list(self._rooms):
            await self.close_room(room_id)

    def _notify(self, room: Room, event: RoomEvent | None = None) -> None:
        event = event or RoomEvent(room.id, publishing=room.publishing, viewers=len(room.viewers))
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:
                logger.exception("media listener failed for room %s", room.id)
