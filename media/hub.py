"""All media rooms of this process: what the server drives to publish, watch and record.

Rooms (:class:`~media.room.Room`) are made on first use and identified by an
opaque string (the meeting id); listeners hear about every room's publisher,
floor and audience changes.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from .aiortc_hooks import restrict_host_addresses
from .config import MediaConfig
from .errors import SessionNotFound
from .pending import PendingLimits, Reservation
from .recorder import Recorder, RecordingEvent
from .room import Room, RoomEvent
from .session import PeerSession

logger = logging.getLogger(__name__)

Listener = Callable[[RoomEvent], None]
T = TypeVar("T")


class MediaHub:
    """All rooms of this process.

    Open it once per server (``await hub.close()`` on shutdown closes every peer
    connection). Listeners hear about publisher, floor and audience changes.

    Sessions still connecting are limited per ``client`` (an opaque string the
    caller passes, e.g. the address) and in all (:class:`MediaConfig`
    ``pending_per_client``, ``pending_total``): beyond, :meth:`publish`,
    :meth:`publish_floor` and :meth:`subscribe` raise :class:`TooManyPending`
    before any work is done (publishers are not refused by the total, see
    :meth:`PendingLimits.check`). Callers may ask ``hub.pending.check(client)``
    first, to refuse before work of their own.
    """

    def __init__(self, config: MediaConfig) -> None:
        self.config = config
        self._rooms: dict[str, Room] = {}
        self._listeners: list[Listener] = []
        self.pending = PendingLimits(
            config.pending_per_client, config.pending_total, config.connect_timeout
        )
        restrict_host_addresses(config.host_addresses)

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def room(self, room_id: str) -> Room:
        room = self._rooms.get(room_id)
        if room is None:
            room = self._rooms[room_id] = Room(room_id, self.config, self._notify)
        return room

    def stats(self, room_id: str) -> RoomEvent:
        room = self._rooms.get(room_id)
        if room is None:
            return RoomEvent(room_id, publishing=False, viewers=0)
        return room.event()

    def room_stats(self, room_id: str) -> dict[str, Any] | None:
        room = self._rooms.get(room_id)
        return room.stats() if room else None

    async def publish(
        self, room_id: str, offer_sdp: str, *, client: str | None = None
    ) -> PeerSession:
        """Start publishing into ``room_id``; a second publisher replaces the first.

        The new publisher goes on the air with its first frame (the previous one
        is then hung up); one that delivers nothing within the connect timeout
        is hung up and changes nothing.
        """
        return await self._admitted(
            client, lambda pending: self.room(room_id).publish(offer_sdp, pending), publisher=True
        )

    async def publish_floor(
        self,
        room_id: str,
        offer_sdp: str,
        *,
        owner: str | None = None,
        client: str | None = None,
    ) -> PeerSession:
        """Forward the floor speaker's microphone to every viewer's floor m-line.

        The offer must send audio (else :class:`InvalidOffer`); Opus only. Video
        or further audio m-lines are declined in the answer (inactive). A new
        floor session replaces (hangs up) the previous one, and viewers carry on
        with the new voice without renegotiating. ``owner`` is kept on the
        session for the caller (``session.owner``). Whether the caller may speak
        is the caller's business: call :meth:`stop_floor` whenever the floor is
        taken back or passes to someone else: a floor offer still being
        negotiated when :meth:`stop_floor` runs is hung up and raises
        :class:`FloorStopped`. As for :meth:`publish`, the new voice replaces
        the last one only once it is heard.
        """
        return await self._admitted(
            client,
            lambda pending: self.room(room_id).publish_floor(offer_sdp, owner, pending),
            publisher=True,
        )

    async def stop_floor(self, room_id: str) -> bool:
        """Stop the floor speaker's audio at once and hang up their session.

        Forwarding stops before this returns (the source is detached first,
        then the peer connection closed); listeners hear ``floor_publishing``
        False. A floor offer being negotiated at this moment is refused
        (:class:`FloorStopped`). Idempotent: False when no floor session was
        open. Viewers keep their floor m-line, which receives nothing until
        the next speaker.
        """
        room = self._rooms.get(room_id)
        return await room.stop_floor() if room is not None else False

    async def subscribe(
        self, room_id: str, offer_sdp: str, *, client: str | None = None
    ) -> PeerSession:
        """Add a viewer; it plays whatever the room's current publishers send.

        Its m-lines are fed in order (:data:`VIEWER_FEEDS`): first audio → the
        main audio, first video → the main video, second audio → the floor.
        """
        return await self._admitted(
            client, lambda pending: self.room(room_id).subscribe(offer_sdp, pending)
        )

    async def _admitted(
        self,
        client: str | None,
        start: Callable[[Reservation], Awaitable[T]],
        *,
        publisher: bool = False,
    ) -> T:
        """Run ``start(reservation)`` in a place among the sessions still connecting."""
        reservation = self.pending.reserve(client, publisher=publisher)
        try:
            return await start(reservation)
        except BaseException:
            reservation.release()
            raise

    def start_recording(
        self,
        room_id: str,
        directory: Path,
        on_event: Callable[[RecordingEvent], None],
        *,
        segment_seconds: float = 2.0,
        low_rendition: bool = True,
    ) -> Recorder:
        """Record the room into ``directory`` (raw.mp4 and live HLS) until stopped.

        Frames are muxed without re-encoding H.264 (VP8 is transcoded once);
        ``on_event`` hears "started" (with the wall time of t = 0), then
        "stopped" or "failed". While recording H.264, the publisher is asked
        for a keyframe every ``segment_seconds``. ``low_rendition`` False leaves the
        live HLS's low picture out.
        """
        return self.room(room_id).start_recording(
            directory, on_event, segment_seconds, low_rendition=low_rendition
        )

    async def stop_recording(self, room_id: str) -> bool:
        """Close the room's recording files (False if it was not recording)."""
        room = self._rooms.get(room_id)
        return await room.stop_recording() if room is not None else False

    def recorder(self, room_id: str) -> Recorder | None:
        room = self._rooms.get(room_id)
        return room.recorder if room is not None else None

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
        event = event or room.event()
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:
                logger.exception("media listener failed for room %s", room.id)
