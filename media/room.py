"""The media of one meeting: its publisher, the floor speaker, its viewers, the fan-outs.

The publisher's frames are never decoded and never re-encoded: whatever codec
the room forwards, every viewer must receive it (the room pins one video codec,
and restricts both publishers' and viewers' answers to it).

A room has two publisher slots (:class:`~media.slot.Slot`): the main one (the
hall's camera and microphone) and the floor (the voice of the villager who has
been given the floor, audio only). Each viewer m-line is fed by one fan-out
(:data:`~media.negotiation.VIEWER_FEEDS`).

A new publisher goes on the air with its first frame, not with its offer: until
then the slot's live publisher (if any) keeps serving, and one that never
delivers is hung up after ``MediaConfig.connect_timeout``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiortc import RTCRtpReceiver
from aiortc.mediastreams import MediaStreamTrack

from .aiortc_hooks import (
    RtpForwarder,
    add_red,
    fresh_after_gaps,
    on_keyframe_request,
    receive_encoded,
    send_pli,
)
from .config import MediaConfig
from .encoded import EncodedFrame
from .errors import FloorStopped, InvalidOffer
from .fanout import Fanout, KeyframeRequester, ViewerTrack
from .negotiation import FLOOR, KINDS, choose_codecs, offered_lines, viewer_feeds
from .opus_fec import OpusFecReencoder
from .pending import Reservation
from .recorder import Recorder, RecordingEvent
from .sdp import OfferSummary
from .session import PeerSession
from .slot import Slot
from .switchable import PrimedTrack, SwitchableTrack

logger = logging.getLogger(__name__)

#: seconds without any frame from the main publisher on the air before its connection
#: counts as lost (a camera and a microphone on a working link never pause this long)
PUBLISHER_SILENCE = 1.5
#: how often the main publisher's silence is checked, in seconds
SILENCE_CHECK = 0.25


@dataclass(frozen=True)
class RoomEvent:
    """Sent to listeners whenever a room's publisher, floor speaker or audience changes."""

    room_id: str
    publishing: bool
    viewers: int
    #: someone's floor audio is being received (a floor session is open)
    floor_publishing: bool = False
    #: the main publisher's open sessions: the one on the air and those negotiated and
    #: waiting for their first frame (a new one is a host publishing, again or anew)
    publishers: int = 0
    #: the main publisher's connection was lost (its media stopped arriving, or its
    #: connection failed) and no publisher has delivered since; a publisher that hung
    #: up (DELETE) or was replaced is not lost
    publisher_lost: bool = False


class Room:
    """The media of one meeting: its publisher, the floor speaker, its viewers, the fan-outs.

    ``on_change`` is called (on the event loop) whenever what :meth:`event`
    says may have changed.
    """

    def __init__(
        self, room_id: str, config: MediaConfig, on_change: Callable[[Room], None]
    ) -> None:
        self.id = room_id
        self._config = config
        self._on_change = on_change
        self._sources = {kind: SwitchableTrack(kind) for kind in KINDS}
        self._sources[FLOOR] = SwitchableTrack("audio")
        self.main = Slot(self, {kind: self._sources[kind] for kind in KINDS})
        self.floor_slot = Slot(self, {"audio": self._sources[FLOOR]})
        self._tasks: set[asyncio.Task[None]] = set()
        self._video_receiver: RTCRtpReceiver | None = None
        self.keyframes = KeyframeRequester(
            self._ask_publisher_for_keyframe, config.keyframe_interval
        )
        #: "audio" and "video" (the main publisher's), FLOOR (the floor speaker's)
        self.fanouts = {
            name: Fanout(
                source,
                self.keyframes,
                OpusFecReencoder() if config.audio_fec and source.kind == "audio" else None,
            )
            for name, source in self._sources.items()
        }
        #: the video codec this room forwards, pinned by its first publisher or viewer
        self.video_codec: str | None = None
        self._floor_stops = 0  # stop_floor() calls, so a publish in flight can tell
        self.viewers: dict[str, PeerSession] = {}
        self.recorder: Recorder | None = None
        self._keyframe_ticker: asyncio.Task[None] | None = None
        #: see RoomEvent.publisher_lost
        self.publisher_lost = False
        self._silence_watch: asyncio.Task[None] | None = None

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
            publishers=len(self.main.sessions),
            publisher_lost=self.publisher_lost,
        )

    def session(self, session_id: str) -> PeerSession | None:
        for publisher in self.main.sessions + self.floor_slot.sessions:
            if publisher.id == session_id:
                return publisher
        return self.viewers.get(session_id)

    def _choose_codecs(self, transceivers: list[Any]) -> str | None:
        return choose_codecs(transceivers, self.video_codec, self._config.video_codecs)

    async def publish(self, offer_sdp: str, pending: Reservation | None = None) -> PeerSession:
        session = PeerSession(self.id, "publisher", self._config, pending=pending)
        tracks: list[MediaStreamTrack] = []
        chosen: dict[str, str | None] = {}

        def on_track(track: MediaStreamTrack) -> None:
            if track.kind in self._sources:
                receive_encoded(track)
                fresh_after_gaps(session.pc, track)  # the picture is back with the network
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
        self._on_change(self)  # a publisher is coming: a recording can be ready for it
        return session

    async def publish_floor(
        self, offer_sdp: str, owner: str | None = None, pending: Reservation | None = None
    ) -> PeerSession:
        session = PeerSession(self.id, "floor", self._config, owner, pending=pending)
        stops = self._floor_stops
        received: list[MediaStreamTrack] = []

        def prepare(offer: OfferSummary) -> None:
            speaker = next(
                (
                    t
                    for t, line in offered_lines(session, offer)
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
            receive_encoded(track)
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

    # -- what the slots tell the room (SlotOwner) -------------------------------

    def went_live(self, slot: Slot, session: PeerSession, tracks: list[PrimedTrack]) -> None:
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
            self.publisher_lost = False
            if self._silence_watch is None or self._silence_watch.done():
                self._silence_watch = asyncio.ensure_future(self._watch_silence())
            logger.info(
                "room %s: %r on the air (%s)", self.id, session, self.video_codec or "audio only"
            )
        else:
            logger.info("room %s: floor speaker on the air (%r)", self.id, session)
        self._on_change(self)

    def went_off(self, slot: Slot, session: PeerSession) -> None:
        if slot is self.main:
            self._video_receiver = None
            if session.lost and not self.publisher_lost:
                self.publisher_lost = True
                logger.warning("room %s: %r lost its connection", self.id, session)
            elif not session.lost:
                self.publisher_lost = False  # hung up on purpose (even after a silence)
        self.unpin_codec()
        self._on_change(self)

    def trial_ended(self, slot: Slot) -> None:
        self.unpin_codec()
        self._on_change(self)

    def unpin_codec(self) -> None:
        """Nobody left to forward to or from: the next publisher may bring another codec.

        Above all, a publisher that never went on the air must not leave its
        codec pinned for the one that does. A recording that has begun keeps it.
        """
        if self.recorder is not None and self.recorder.started:
            return
        if not (self.main.sessions or self.floor_slot.sessions or self.viewers):
            self.video_codec = None

    async def _watch_silence(self) -> None:
        """While a main publisher is on the air: tell listeners when its media stops, and resumes.

        A phone whose network drops goes silent at once, while the server learns that
        its connection failed only when ICE consent runs out (~30 s).
        """
        while True:
            await asyncio.sleep(SILENCE_CHECK)
            silent = self.main.silent_for()
            if silent is None:
                return  # nobody on the air: went_off said whether it was lost
            lost = silent > PUBLISHER_SILENCE
            if lost != self.publisher_lost:
                self.publisher_lost = lost
                if lost:
                    logger.warning(
                        "room %s: no media from %r for %.1f s", self.id, self.main.live, silent
                    )
                else:
                    logger.info("room %s: media from %r again", self.id, self.main.live)
                self._on_change(self)

    def spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- viewers -----------------------------------------------------------------

    async def subscribe(self, offer_sdp: str, pending: Reservation | None = None) -> PeerSession:
        session = PeerSession(self.id, "viewer", self._config, pending=pending)
        tracks: list[ViewerTrack] = []
        senders = []
        chosen: dict[str, str | None] = {}

        def prepare(offer: OfferSummary) -> None:
            feeds = viewer_feeds(session, offer)
            if not feeds:
                raise InvalidOffer("a WHEP offer must receive audio or video (recvonly)")
            chosen["video"] = self._choose_codecs([t for t, _ in feeds])
            lines = dict(offered_lines(session, offer))
            for transceiver, name in feeds:
                red = lines[transceiver].red if transceiver.kind == "audio" else None
                if red is not None and self._config.audio_red:
                    add_red(transceiver, red)
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
            track.attach(RtpForwarder(transceiver, transceiver.sender))
            if transceiver.kind == "video":
                on_keyframe_request(transceiver.sender, self.keyframes.request)
        self.viewers[session.id] = session
        session.on_close(self._viewer_closed)
        self._on_change(self)
        return session

    def _viewer_closed(self, session: PeerSession) -> None:
        if self.viewers.pop(session.id, None) is not None:
            self._on_change(self)
        for sender in session.pc.getSenders():
            if sender.track is not None:
                sender.track.stop()

    # -- recording ---------------------------------------------------------------

    def start_recording(
        self,
        directory: Path,
        on_event: Callable[[RecordingEvent], None],
        segment_seconds: float,
        *,
        low_rendition: bool = True,
    ) -> Recorder:
        if self.recorder is not None:
            raise RuntimeError(f"room {self.id} is already recording")
        recorder = Recorder(
            self.id,
            directory,
            on_event,
            segment_seconds=segment_seconds,
            expect_video=self._video_receiver is not None or not self.publishing,
            low_rendition=low_rendition,
        )
        recorder.start()
        self.recorder = recorder
        for name, fanout in self.fanouts.items():
            fanout.taps.append(_RecorderTap(recorder, name))
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
            fanout.taps = [
                t
                for t in fanout.taps
                if not (isinstance(t, _RecorderTap) and t.recorder is recorder)
            ]
        if self._keyframe_ticker is not None:
            self._keyframe_ticker.cancel()
            self._keyframe_ticker = None
        await recorder.stop()
        return True

    async def _ask_publisher_for_keyframe(self) -> bool:
        receiver = self._video_receiver
        if receiver is None or not self.publishing:
            return False
        return await send_pli(receiver)

    def stats(self) -> dict[str, Any]:
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
            # frames re-encoded with Opus FEC for the viewers, per audio fan-out
            "audio_fec": {
                name: f.reencode.stats()
                for name, f in self.fanouts.items()
                if isinstance(f.reencode, OpusFecReencoder)
            },
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
        if self._silence_watch is not None:
            self._silence_watch.cancel()
        self.publisher_lost = False
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


class _RecorderTap:
    """A fan-out's tap that queues its frames for ``recorder`` as the source ``name``."""

    def __init__(self, recorder: Recorder, name: str) -> None:
        self.recorder = recorder
        self.name = name

    def __call__(self, frame: EncodedFrame) -> None:
        self.recorder.tap(self.name, frame)


def _percentiles(values: list[int]) -> dict[str, int]:
    """p50/p95/max of ``values`` (for counters operators read), or {} when empty."""
    if not values:
        return {}
    ordered = sorted(values)

    def at(q: float) -> int:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {"p50": at(0.5), "p95": at(0.95), "max": ordered[-1], "n": len(ordered)}
