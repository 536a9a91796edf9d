"""Per-meeting rooms: one publisher fanned out to many viewers, encoded.

This is the only part of media/ the server calls. The publisher's frames are
never decoded and never re-encoded: whatever codec the room forwards, every
viewer must receive it (the room pins one video codec, and restricts both
publishers' and viewers' answers to it).

A room has two publisher slots: the main one (the hall's camera and
microphone) and the floor (the voice of the villager who has been given the
floor, audio only). Each viewer m-line is fed by one fan-out, chosen by its
position among the offer's m-lines of its kind (see :data:`VIEWER_FEEDS`).

A new publisher goes on the air with its first frame, not with its offer: until
then the slot's live publisher (if any) keeps serving, and one that never
delivers is hung up after ``MediaConfig.connect_timeout`` (:class:`Slot`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from . import aiortc_hooks as hooks
from .config import MediaConfig
from .errors import CodecMismatch, FloorStopped, InvalidOffer, SessionNotFound
from .fanout import Fanout, KeyframeRequester
from .pending import PendingLimits, Reservation
from .recorder import Recorder, RecordingEvent
from .sdp import OfferSummary
from .session import PeerSession
from .switchable import PrimedTrack, SwitchableTrack

logger = logging.getLogger(__name__)

KINDS = ("audio", "video")
#: the fan-out of the floor speaker's audio (the others are named by their kind)
FLOOR = "floor"
#: which fan-out feeds a viewer's n-th m-line of each kind: the first audio
#: m-line gets the main audio, the first video the main video, the second audio
#: the floor. m-lines beyond these, inactive or disabled ones get nothing (they
#: still count for the position, so a host that wants only the floor offers
#: audio inactive, video inactive, audio recvonly).
VIEWER_FEEDS = {"audio": ("audio", FLOOR), "video": ("video",)}
AUDIO_CODEC = "audio/opus"


@dataclass(frozen=True)
class RoomEvent:
    """Sent to listeners whenever a room's publisher, floor speaker or audience changes."""

    room_id: str
    publishing: bool
    viewers: int
    #: someone's floor audio is being received (a floor session is open)
    floor_publishing: bool = False


Listener = Callable[[RoomEvent], None]


class Slot:
    """A publisher slot (main or floor): the live session, and newer ones on trial.

    A new publisher is on trial from its offer until its first frame, which
    puts it on the air: its tracks become the room's sources, the live
    publisher and older trials are hung up. A trial that ends first (ICE failed,
    DELETE, nothing delivered within the connect timeout) changes nothing. So
    a phone that drops mid-handshake, or a second device that connects but
    sends nothing, never silences the meeting; the newest that delivers wins.
    """

    def __init__(self, room: Room, routes: dict[str, str]) -> None:
        self._room = room
        #: kind of a publisher's track -> the name of the room source it feeds
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

    def try_out(self, session: PeerSession, tracks: list) -> None:
        """Put a negotiated ``session`` on trial; it goes live with its first frame."""
        self._trials[session] = [
            PrimedTrack(track, lambda: self._delivered(session)) for track in tracks
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
        for kind, name in self._routes.items():
            self._room._sources[name].set_source(by_kind.get(kind))
        for loser in losers:
            logger.info("room %s: %r replaces %r", self._room.id, session, loser)
            self._room._spawn(loser.close())
        self._room._went_live(self, session, tracks)

    def _closed(self, session: PeerSession) -> None:
        tracks = self._trials.pop(session, None)
        if tracks is not None:
            for track in tracks:
                track.stop()
            self._room._unpin_codec()
            return
        if session is not self.live:
            return
        tracks, self.live, self._live_tracks = self._live_tracks, None, []
        by_kind = {track.kind: track for track in tracks}
        for kind, name in self._routes.items():
            if kind in by_kind:
                self._room._sources[name].clear_source(by_kind[kind])
        for track in tracks:
            track.stop()
        self._room._went_off(self, session)

    def take_off_air(self) -> list[PeerSession]:
        """Stop forwarding now, and keep every trial off the air; return the sessions to close.

        For the slower hang-up that follows: no frame is forwarded meanwhile.
        """
        sessions = self.sessions
        for track in self._live_tracks:
            for name in self._routes.values():
                self._room._sources[name].clear_source(track)
        for tracks in self._trials.values():
            for track in tracks:
                track.stop()
        self._trials.clear()
        return sessions


class Room:
    """The media of one meeting: its publisher, the floor speaker, its viewers, the fan-outs."""

    def __init__(self, room_id: str, hub: MediaHub) -> None:
        self.id = room_id
        self._hub = hub
        self._sources = {kind: SwitchableTrack(kind) for kind in KINDS}
        self._sources[FLOOR] = SwitchableTrack("audio")
        self.main = Slot(self, {kind: kind for kind in KINDS})
        self.floor_slot = Slot(self, {"audio": FLOOR})
        self._tasks: set[asyncio.Task] = set()
        self._video_receiver = None
        self.keyframes = KeyframeRequester(
            self._ask_publisher_for_keyframe, hub.config.keyframe_interval
        )
        #: "audio" and "video" (the main publisher's), FLOOR (the floor speaker's)
        self.fanouts = {
            name: Fanout(source, self.keyframes) for name, source in self._sources.items()
        }
        #: the video codec this room forwards, pinned by its first publisher or viewer
        self.video_codec: str | None = None
        self._floor_stops = 0  # stop_floor() calls, so a publish in flight can tell
        self.viewers: dict[str, PeerSession] = {}
        self.recorder: Recorder | None = None
        self._keyframe_ticker: asyncio.Task | None = None

    @property
    def publisher(self) -> PeerSession | None:
        """The main publisher on the air (it has delivered media)."""
        return self.main.live

    @property
    def floor(self) -> PeerSession | None:
        """The floor speaker on the air (their voice has arrived)."""
        return self.floor_slot.live

    @property
    def publishing(self) -> bool:
        return self.publisher is not None and not self.publisher.closed

    @property
    def floor_publishing(self) -> bool:
        return self.floor is not None and not self.floor.closed

    def event(self) -> RoomEvent:
        return RoomEvent(
            self.id,
            publishing=self.publishing,
            viewers=len(self.viewers),
            floor_publishing=self.floor_publishing,
        )

    def session(self, session_id: str) -> PeerSession | None:
        for publisher in self.main.sessions + self.floor_slot.sessions:
            if publisher.id == session_id:
                return publisher
        return self.viewers.get(session_id)

    def _choose_codecs(self, transceivers) -> str | None:
        """Narrow each of ``transceivers`` to the room's codecs; return the video one."""
        video_codec = None
        for transceiver in transceivers:
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

    async def publish(self, offer_sdp: str, pending: Reservation | None = None) -> PeerSession:
        session = PeerSession(self.id, "publisher", self._hub.config, pending=pending)
        tracks = []
        chosen: dict[str, str | None] = {}

        def on_track(track) -> None:
            if track.kind in self._sources:
                hooks.receive_encoded(track)
                tracks.append(track)

        def prepare(offer: OfferSummary) -> None:
            if not offer.sends:
                raise InvalidOffer("a WHIP offer must send audio or video (sendonly or sendrecv)")
            chosen["video"] = self._choose_codecs(
                [t for t in session.pc.getTransceivers() if t.kind in offer.sends]
            )

        session.pc.on("track", on_track)
        await session.negotiate(offer_sdp, prepare)
        if chosen.get("video"):
            self.video_codec = chosen["video"]
        self.main.try_out(session, tracks)
        logger.info(
            "room %s: %r negotiated (%s), on the air with its first frame",
            self.id,
            session,
            chosen.get("video") or "audio only",
        )
        return session

    async def publish_floor(
        self, offer_sdp: str, owner: str | None = None, pending: Reservation | None = None
    ) -> PeerSession:
        session = PeerSession(self.id, "floor", self._hub.config, owner, pending=pending)
        stops = self._floor_stops
        received = []

        def prepare(offer: OfferSummary) -> None:
            speaker = next(
                (
                    t
                    for t, line in _offered_lines(session, offer)
                    if line.kind == "audio" and line.sends
                ),
                None,
            )
            if speaker is None:
                raise InvalidOffer(
                    "a floor offer must send audio (an audio m-line, sendonly or sendrecv)"
                )
            self._choose_codecs([speaker])
            # Only the speaker's microphone is taken: a camera or a second audio
            # m-line is declined in the answer (inactive), never received.
            for transceiver in session.pc.getTransceivers():
                transceiver.direction = "recvonly" if transceiver is speaker else "inactive"
            track = speaker.receiver.track
            hooks.receive_encoded(track)
            received.append(track)

        await session.negotiate(offer_sdp, prepare)
        if self._floor_stops != stops:
            # The floor was taken back (or passed on) while we negotiated: this
            # voice must not come back, nor replace the next speaker's.
            await session.close()
            raise FloorStopped("the floor was taken back while connecting")
        self.floor_slot.try_out(session, received)
        logger.info(
            "room %s: floor %r negotiated, on the air with its first frame", self.id, session
        )
        return session

    async def stop_floor(self) -> bool:
        """Stop forwarding the floor speaker's audio now and hang up; False if there was none."""
        self._floor_stops += 1
        sessions = self.floor_slot.take_off_air()  # before the (slower) hang-up
        if not sessions:
            return False
        await asyncio.gather(*(s.close() for s in sessions))
        logger.info("room %s: floor stopped", self.id)
        return True

    def _went_live(self, slot: Slot, session: PeerSession, tracks: list[PrimedTrack]) -> None:
        if slot is self.main:
            received = {track.track for track in tracks}
            self._video_receiver = next(
                (
                    t.receiver
                    for t in session.pc.getTransceivers()
                    if t.kind == "video" and t.receiver.track in received
                ),
                None,
            )
            if self.recorder is not None and not self.recorder.started:
                self.recorder.expect_video = self._video_receiver is not None
            logger.info(
                "room %s: %r on the air (%s)", self.id, session, self.video_codec or "audio only"
            )
        else:
            logger.info("room %s: floor speaker on the air (%r)", self.id, session)
        self._hub._notify(self)

    def _went_off(self, slot: Slot, session: PeerSession) -> None:
        if slot is self.main:
            self._video_receiver = None
        self._unpin_codec()
        self._hub._notify(self)

    def _unpin_codec(self) -> None:
        """Nobody left to forward to or from: the next publisher may bring another codec.

        Above all, a publisher that never went on the air must not leave its
        codec pinned for the one that does. A recording that has begun keeps it.
        """
        if self.recorder is not None and self.recorder.started:
            return
        if not (self.main.sessions or self.floor_slot.sessions or self.viewers):
            self.video_codec = None

    def _spawn(self, coroutine) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def subscribe(self, offer_sdp: str, pending: Reservation | None = None) -> PeerSession:
        session = PeerSession(self.id, "viewer", self._hub.config, pending=pending)
        tracks = []
        senders = []
        chosen: dict[str, str | None] = {}

        def prepare(offer: OfferSummary) -> None:
            feeds = _viewer_feeds(session, offer)
            if not feeds:
                raise InvalidOffer("a WHEP offer must receive audio or video (recvonly)")
            chosen["video"] = self._choose_codecs([t for t, _ in feeds])
            for transceiver, name in feeds:
                track = self.fanouts[name].subscribe()
                tracks.append(track)
                # the server only ever sends to a viewer
                transceiver.sender.replaceTrack(track)
                transceiver.direction = "sendonly"
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

    def start_recording(self, directory, on_event, segment_seconds: float) -> Recorder:
        if self.recorder is not None:
            raise RuntimeError(f"room {self.id} is already recording")
        recorder = Recorder(
            self.id,
            directory,
            on_event,
            segment_seconds=segment_seconds,
            expect_video=self._video_receiver is not None or not self.publishing,
        )
        recorder.start()
        self.recorder = recorder
        for name, fanout in self.fanouts.items():
            fanout.taps.append(_tap(recorder, name))
        self._keyframe_ticker = asyncio.ensure_future(self._tick_keyframes(segment_seconds))
        return recorder

    async def _tick_keyframes(self, seconds: float) -> None:
        """HLS and MP4 fragments cut at keyframes; the publisher sends one only on request."""
        while True:
            recorder = self.recorder
            # H.264 is cut where the publisher's keyframes fall; VP8 is re-encoded with
            # keyframes of our own, but the recorder still needs one to start (again) at
            if self.video_codec == "video/h264" or (
                recorder is not None and recorder.waiting_for_keyframe
            ):
                self.keyframes.request()
            await asyncio.sleep(seconds)

    async def stop_recording(self) -> bool:
        recorder, self.recorder = self.recorder, None
        if recorder is None:
            return False
        for fanout in self.fanouts.values():
            fanout.taps = [t for t in fanout.taps if getattr(t, "recorder", None) is not recorder]
        if self._keyframe_ticker is not None:
            self._keyframe_ticker.cancel()
            self._keyframe_ticker = None
        await recorder.stop()
        return True

    async def _ask_publisher_for_keyframe(self) -> bool:
        receiver = self._video_receiver
        if receiver is None or not self.publishing:
            return False
        return await hooks.send_pli(receiver)

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
            "floor_publishing": self.floor_publishing,
            # negotiated, not yet on the air (no frame yet): dropped after the connect timeout
            "publishers_on_trial": self.main.on_trial + self.floor_slot.on_trial,
            "viewers": len(self.viewers),
            "video_codec": self.video_codec,
            "frames": {k: f.frames for k, f in self.fanouts.items()},
            "delivered": sum(t.delivered for t in tracks),
            "dropped": sum(t.dropped for t in tracks),
            "keyframe_requests": self.keyframes.requested,
            "keyframes_requested_upstream": self.keyframes.sent,
            "keyframe_wait_frames": _percentiles(
                [
                    t.first_frame - t.ready_frame
                    for t in self.fanouts["video"].viewers
                    if t.first_frame is not None and t.ready_frame is not None
                ]
            ),
        }

    async def close(self) -> None:
        await self.stop_recording()
        sessions = list(self.viewers.values())
        sessions += self.main.sessions + self.floor_slot.sessions
        await asyncio.gather(*(s.close() for s in sessions), return_exceptions=True)
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.keyframes.close()
        for fanout in self.fanouts.values():
            await fanout.close()
        for track in self._sources.values():
            track.stop()


def _tap(recorder: Recorder, name: str):
    def tap(frame) -> None:
        recorder.tap(name, frame)

    tap.recorder = recorder
    return tap


def _offered_lines(session: PeerSession, offer: OfferSummary) -> list:
    """Pair each of the session's transceivers with the offer's m-line it answers."""
    by_mid = {line.mid: line for line in offer.lines if line.mid is not None}
    pairs = []
    for index, transceiver in enumerate(session.pc.getTransceivers()):
        line = by_mid.get(transceiver.mid) if transceiver.mid is not None else None
        if line is None and index < len(offer.lines):
            line = offer.lines[index]  # an offer without a=mid: aiortc keeps the order
        if line is not None and line.kind == transceiver.kind:
            pairs.append((transceiver, line))
    return pairs


def _viewer_feeds(session: PeerSession, offer: OfferSummary) -> list:
    """``(transceiver, fan-out name)`` for each viewer m-line that gets media (VIEWER_FEEDS)."""
    feeds = []
    position = {kind: 0 for kind in VIEWER_FEEDS}
    for transceiver, line in _offered_lines(session, offer):
        names = VIEWER_FEEDS.get(line.kind, ())
        index = position.get(line.kind, 0)
        position[line.kind] = index + 1
        if index < len(names) and line.receives:
            feeds.append((transceiver, names[index]))
    return feeds


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
        return room.event()

    def room_stats(self, room_id: str) -> dict | None:
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

    async def _admitted(self, client: str | None, start, *, publisher: bool = False):
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
        directory,
        on_event: Callable[[RecordingEvent], None],
        *,
        segment_seconds: float = 2.0,
    ) -> Recorder:
        """Record the room into ``directory`` (raw.mp4 and live HLS) until stopped.

        Frames are muxed without re-encoding H.264 (VP8 is transcoded once);
        ``on_event`` hears "started" (with the wall time of t = 0), then
        "stopped" or "failed". While recording H.264, the publisher is asked
        for a keyframe every ``segment_seconds``.
        """
        return self.room(room_id).start_recording(directory, on_event, segment_seconds)

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
