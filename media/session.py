"""One WebRTC peer connection of a room: a publisher or floor speaker (WHIP), or a viewer (WHEP)."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Literal

from aiortc import RTCPeerConnection, RTCSessionDescription

from .config import MediaConfig
from .errors import InvalidOffer, InvalidTrickle
from .pending import Reservation
from .sdp import (
    MAX_CANDIDATES,
    OfferSummary,
    check_offer,
    is_loopback_candidate,
    keep_loopback_candidates,
    normalize,
    parse_trickle,
    reject_data_channels,
    without_data_channels,
)

logger = logging.getLogger(__name__)

#: ``publisher`` sends the meeting's camera and microphone, ``floor`` the voice of
#: whoever holds the floor, ``viewer`` receives
Role = Literal["publisher", "floor", "viewer"]


class PeerSession:
    """A negotiated peer connection with an unguessable id.

    The id doubles as the WHIP/WHEP resource name, so it is 128 random bits.
    ``on_close`` callbacks run once, whichever way the session ends (DELETE,
    ICE failure, connect timeout, replacement, room closed, shutdown).

    A session must become *ready* within ``config.connect_timeout`` or it is
    closed: a viewer when its connection is up, a publisher when the room has
    its first frame (:meth:`mark_ready`): connected but silent is not enough.
    ``pending`` (its place among the sessions still connecting) is released
    when the connection is up or the session closes.
    """

    def __init__(
        self,
        room_id: str,
        role: Role,
        config: MediaConfig,
        owner: str | None = None,
        *,
        pending: Reservation | None = None,
    ) -> None:
        self.id = secrets.token_urlsafe(16)
        self.room_id = room_id
        self.role = role
        #: who opened the session, in the caller's own terms (the media library
        #: never reads it; the server checks it before a PATCH or DELETE)
        self.owner = owner
        self.pc = RTCPeerConnection(config.rtc_configuration())
        self.answer_sdp = ""
        self.etag = '"' + secrets.token_hex(8) + '"'
        self.created_at = time.time()
        self.offer: OfferSummary | None = None
        #: remote ICE candidates received, in the offer and trickled (MAX_CANDIDATES)
        self.remote_candidates = 0
        self._config = config
        self._pending = pending
        self._ready = asyncio.Event()
        self._closed = False
        #: the connection failed (ICE consent lost, the peer's network went), as opposed
        #: to a hang-up (DELETE, replaced, the room closed)
        self.lost = False
        self._on_close: list[Callable[[PeerSession], Awaitable[None] | None]] = []
        self._timeout_task: asyncio.Task | None = None
        self.pc.on("connectionstatechange", self._on_state_change)

    def __repr__(self) -> str:
        return f"<PeerSession {self.role} room={self.room_id} id={self.id}>"

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def connection_state(self) -> str:
        return self.pc.connectionState

    def on_close(self, callback: Callable[[PeerSession], Awaitable[None] | None]) -> None:
        self._on_close.append(callback)

    async def negotiate(self, offer_sdp: str, prepare: Callable[[OfferSummary], None]) -> str:
        """Apply the offer, let ``prepare`` attach tracks, return the answer SDP.

        On any failure the peer connection is closed before the error propagates,
        so a bad offer leaves nothing behind.
        """
        try:
            self.offer = check_offer(offer_sdp)
            self.remote_candidates = self.offer.candidates
            offer_sdp, data_channels = without_data_channels(normalize(offer_sdp))
            if self._config.loopback_only:
                offer_sdp = keep_loopback_candidates(offer_sdp)
            try:
                await self.pc.setRemoteDescription(
                    RTCSessionDescription(sdp=offer_sdp, type="offer")
                )
            except Exception as exc:
                raise InvalidOffer(f"the offer was refused: {exc}") from exc
            prepare(self.offer)
            try:
                await self.pc.setLocalDescription(await self.pc.createAnswer())
            except Exception as exc:
                raise InvalidOffer(f"no answer could be made for this offer: {exc}") from exc
        except BaseException:
            await self.close()
            raise
        self.answer_sdp = reject_data_channels(self.pc.localDescription.sdp, data_channels)
        self._timeout_task = asyncio.create_task(self._close_if_not_ready())
        return self.answer_sdp

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    def mark_ready(self) -> None:
        """The session does what it is for (a publisher delivers): no connect timeout."""
        self._ready.set()

    async def add_trickle(self, fragment: str) -> None:
        """Add the candidates of a trickle-ICE fragment (RFC 8840 / RFC 9725 §4.3)."""
        assert self.offer is not None
        parsed = parse_trickle(fragment, session_ufrag=self.offer.ice_ufrag)
        if self.remote_candidates + len(parsed.candidates) > MAX_CANDIDATES:
            raise InvalidTrickle(
                f"this session already has {self.remote_candidates} ICE candidates; at most "
                f"{MAX_CANDIDATES} are accepted per session"
            )
        self.remote_candidates += len(parsed.candidates)
        for candidate in parsed.candidates:
            if self._config.loopback_only and not is_loopback_candidate(candidate):
                continue
            if candidate.sdpMid is None:
                candidate.sdpMid = self._first_mid()
            await self.pc.addIceCandidate(candidate)
        if parsed.end_of_candidates:
            await self.pc.addIceCandidate(None)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._release_pending()
        if self._timeout_task and self._timeout_task is not asyncio.current_task():
            self._timeout_task.cancel()
        try:
            await self.pc.close()
        except Exception:  # closing must never raise into callers
            logger.exception("closing %r failed", self)
        for callback in self._on_close:
            try:
                result = callback(self)
                if asyncio.iscoroutine(result):
                    await result
            except Exception:
                logger.exception("on_close callback of %r failed", self)
        logger.info("closed %r", self)

    def _first_mid(self) -> str | None:
        for transceiver in self.pc.getTransceivers():
            if transceiver.mid is not None:
                return transceiver.mid
        return None

    def _release_pending(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.release()

    async def _on_state_change(self) -> None:
        state = self.pc.connectionState
        logger.info("%r connection state %s", self, state)
        if state == "connected":
            self._release_pending()
            if self.role == "viewer":
                self.mark_ready()
        elif state in ("failed", "closed"):
            if state == "failed" and not self._closed:
                self.lost = True
            await self.close()

    async def _close_if_not_ready(self) -> None:
        try:
            await asyncio.wait_for(self._ready.wait(), self._config.connect_timeout)
        except TimeoutError:
            if self._closed:
                return
            logger.warning(
                "%r did not %s within %.0f s (connection %s); closing it",
                self,
                "connect" if self.role == "viewer" else "deliver media",
                self._config.connect_timeout,
                self.pc.connectionState,
            )
            await self.close()
