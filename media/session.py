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
from .errors import InvalidOffer
from .sdp import (
    OfferSummary,
    check_offer,
    is_loopback_candidate,
    keep_loopback_candidates,
    normalize,
    parse_trickle,
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
    """

    def __init__(
        self, room_id: str, role: Role, config: MediaConfig, owner: str | None = None
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
        self._config = config
        self._closed = False
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

    async def negotiate(
        self, offer_sdp: str, prepare: Callable[[OfferSummary], None]
    ) -> str:
        """Apply the offer, let ``prepare`` attach tracks, return the answer SDP.

        On any failure the peer connection is closed before the error propagates,
        so a bad offer leaves nothing behind.
        """
        try:
            self.offer = check_offer(offer_sdp)
            offer_sdp = normalize(offer_sdp)
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
        self.answer_sdp = self.pc.localDescription.sdp
        self._timeout_task = asyncio.create_task(self._close_if_not_connected())
        return self.answer_sdp

    async def add_trickle(self, fragment: str) -> None:
        """Add the candidates of a trickle-ICE fragment (RFC 8840 / RFC 9725 §4.3)."""
        assert self.offer is not None
        parsed = parse_trickle(fragment, session_ufrag=self.offer.ice_ufrag)
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

    async def _on_state_change(self) -> None:
        state = self.pc.connectionState
        logger.info("%r connection state %s", self, state)
        if state in ("failed", "closed"):
            await self.close()

    async def _close_if_not_connected(self) -> None:
        await asyncio.sleep(self._config.connect_timeout)
        if not self._closed and self.pc.connectionState != "connected":
            logger.warning(
                "%r did not connect within %.0f s; closing it", self, self._config.connect_timeout
            )
            await self.close()
