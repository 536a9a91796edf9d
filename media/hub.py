"""Per-meeting rooms: one publisher fanned out to many viewers, encoded.

This is the only part of media/ the server calls. The publisher's frames are
never decoded and never re-encoded: whatever codec the room forwards, every
viewer must receive it (the room pins one video codec, and restricts both
publishers' and viewers' answers to it).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from . import aiortc_hooks as hooks
from .config import MediaConfig
from .errors import CodecMismatch, InvalidOffer, SessionNotFound
from .fanout import Fanout, KeyframeRequester
from .sdp import OfferSummary
from .session import PeerSession
from .switchable import SwitchableTrack

logger = logging.getLogger(__name__)

KINDS = ("audio", "video")
AUDIO_CODEC = "audio/opus"


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
        self._sources = {kind: SwitchableTrack(kind) for kind in KINDS}
        self._video_receiver = None
        self.keyframes = KeyframeRequester(self._ask_publisher_for_keyframe,
                                           hub.config.keyframe_interval)
        self.fanouts = {kind: Fanout(self._sources[kind], self.keyframes) for kind in KINDS}
        #: the video codec this room forwards, pinned by its first publisher or viewer
        self.video_codec: str | None = None
        self.publisher: PeerSession | None = None
        self.viewers: dict[str, PeerSession] = {}

    @property
    def publishing(self) -> bool:
        return self.publisher is not None and not self.publisher.closed

    def session(self, session_id: str) -> PeerSession | None:
        if self.publisher is not None and self.publisher.id == session_id:
            return self.publisher
        return self.viewers.get(session_id)

    def _choose_codecs(self, session: PeerSession, kinds: frozenset[str]) -> str | None:
        """Narrow each transceiver of ``kinds`` to the room's codecs; return the video one."""
        video_codec = None
        for transceiver in session.pc.getTransceivers():
            if transceiver.kind not in kinds:
                continue
            if transceiver.kind == "audio":
                wanted = AUDIO_CODEC
            else:
                offered = hooks.negotiated_codecs(transceiver)
                wanted = self.video_codec or next(
                    (c for c in self._hub.config.video_codecs if c in offered), None
                )
                video_codec = wanted
            if wanted is None or not hooks.restrict_codecs(transceiver, wanted):
                raise CodecMismatch(
                    f"this meeting is forwarded as {wanted or 'H.264 or VP8'} "
                    f"({transceiver.kind}) without re-encoding, and the offer does not include it"
                )
        return video_codec

    async def publish(self, offer_sdp: str) -> PeerSession:
        session = PeerSession(self.id, "publisher", self._hub.config)
        tracks = []
        chosen: dict[str, str | None] = {}

        def on_track(track) -> None:
            if track.kind in self._sources:
                hooks.receive_encoded(track)
                tracks.append(track)

        def prepare(offer: OfferSummary) -> None:
            if not offer.sends:
                raise InvalidOffer("a WHIP offer must send audio or video (sendonly or sendrecv)")
            chosen["video"] = self._choose_codecs(session, offer.sends)

        session.pc.on("track", on_track)
        await session.negotiate(offer_sdp, prepare)
        if chosen.get("video"):
            self.video_codec = chosen["video"]
        previous = self.publisher
        self.publisher = session
        for track in tracks:
            self._sources[track.kind].set_source(track)
        self._video_receiver = next(
            (t.receiver for t in session.pc.getTransceivers() if t.kind == "video"), None
        )
        session.on_close(self._publisher_closed(tracks))
        if previous is not None:
            logger.info("room %s: %r replaces %r", self.id, session, previous)
            await previous.close()
        logger.info("room %s: publishing %s", self.id, self.video_codec or "audio only")
        self._hub._notify(self)
        return session

    async def subscribe(self, offer_sdp: str) -> PeerSession:
        session = PeerSession(self.id, "viewer", self._hub.config)
        tracks = []
        senders = []
        chosen: dict[str, str | None] = {}

        def prepare(offer: OfferSummary) -> None:
            if not offer.receives:
                raise InvalidOffer("a WHEP offer must receive audio or video (recvonly)")
            chosen["video"] = self._choose_codecs(session, offer.receives)
            for transceiver in session.pc.getTransceivers():
                if transceiver.kind in offer.receives and transceiver.sender.track is None:
                    track = self.fanouts[transceiver.kind].subscribe()
                    tracks.append(track)
                    session.pc.addTrack(track)
                    senders.append((transceiver, track))

        try:
            await session.negotiate(offer_sdp, prepare)
        except BaseException:
            for track in tracks:
                track.stop()
            raise
        if chosen.get("video") and self.video_codec is None:
            self.video_codec = chosen["video"]
        for transceiver, track in senders:
            # the answer fixed the payload type, SSRC and mid: now the forwarder can be built
            track.attach(hooks.RtpForwarder(transceiver, transceiver.sender))
            if transceiver.kind == "video":
                hooks.on_keyframe_request(transceiver.sender, self.keyframes.request)
        self.viewers[session.id] = session
        session.on_close(self._viewer_closed)
        self._hub._notify(self)
        return session

    async def _ask_publisher_for_keyframe(self) -> bool:
        receiver = self._video_receiver
        if receiver is None or not self.publishing:
            return False
        return await hooks.send_pli(receiver)

    def _publisher_closed(self, tracks):
        def callback(session: PeerSession) -> None:
            for track in tracks:
                self._sources[track.kind].clear_source(track)
            if self.publisher is session:
                self.publisher = None
                self._video_receiver = None
                self._hub._notify(self)

        return callback

    def _viewer_closed(self, session: PeerSession) -> None:
        if self.viewers.pop(session.id, None) is not None:
            self._hub._notify(self)
        for sender in session.pc.getSenders():
            if sender.track is not None:
                sender.track.stop()

    def stats(self) -> dict:
        """Counters for operators, tests and benchmarks."""
        tracks = [t for f in self.fanouts.values() for t in f.viewers]
        return {
            "publishing": self.publishing,
            "viewers": len(self.viewers),
            "video_codec": self.video_codec,
            "frames": {k: f.frames for k, f in self.fanouts.items()},
            "delivered": sum(t.delivered for t in tracks),
            "dropped": sum(t.dropped for t in tracks),
            "keyframe_requests": self.keyframes.requested,
            "keyframes_requested_upstream": self.keyframes.sent,
            "keyframe_wait_frames": _percentiles(
                [t.first_frame - t.ready_frame for t in self.fanouts["video"].viewers
                 if t.first_frame is not None and t.ready_frame is not None]
            ),
        }

    async def close(self) -> None:
        sessions = list(self.viewers.values())
        if self.publisher is not None:
            sessions.append(self.publisher)
        await asyncio.gather(*(s.close() for s in sessions), return_exceptions=True)
        self.keyframes.close()
        for fanout in self.fanouts.values():
            await fanout.close()
        for track in self._sources.values():
            track.stop()


def _percentiles(values: list[int]) -> dict:
    """p50/p95/max of ``values`` (for counters operators read), or {} when empty."""
    if not values:
        return {}
    ordered = sorted(values)

    def at(q: float) -> int:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {"p50": at(0.5), "p95": at(0.95), "max": ordered[-1], "n": len(ordered)}


class MediaHub:
    """All rooms of this process.

    Open it once per server (``await hub.close()`` on shutdown closes every peer
    connection). Listeners hear about publisher and audience changes.
    """

    def __init__(self, config: MediaConfig) -> None:
        self.config = config
        self._rooms: dict[str, Room] = {}
        self._listeners: list[Listener] = []
        hooks.restrict_host_addresses(config.host_addresses)

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

    def room_stats(self, room_id: str) -> dict | None:
        room = self._rooms.get(room_id)
        return room.stats() if room else None

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
