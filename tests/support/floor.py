"""The floor speaker's media: a villager's phone publishing its voice, listeners per m-line."""

from __future__ import annotations

import asyncio
import time
from functools import partial

from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.sdp import SessionDescription

from media.aiortc_hooks import receive_encoded
from scripts.bench.peers import consume
from server.keys import DATABASE
from server.store import Meeting

from .api import auth
from .peers import NO_ICE_SERVERS, SDP, MovingVideoTrack, ToneAudioTrack, gathered_offer

#: the m-lines a viewer's page offers: the hall, and the floor speaker's voice
VIEWER = (("audio", "recvonly"), ("video", "recvonly"), ("audio", "recvonly"))
#: the host page's offer: it hears only the floor speaker
HOST = (("audio", "inactive"), ("video", "inactive"), ("audio", "recvonly"))


async def give_floor(client, meeting_id: int, member_id: int | None) -> None:
    """What floor:grant stores (the socket.io side is another test's business)."""
    async with client.app[DATABASE].session() as db:
        meeting = await db.get(Meeting, meeting_id)
        floor = (
            None
            if member_id is None
            else {
                "participant_id": f"m{member_id}",
                "name": "x",
                "since": "2024-01-01T00:00:00.000+00:00",
                "until": None,
            }
        )
        meeting.room_state = {**(meeting.room_state or {}), "floor": floor}  # a new dict: JSON
        db.add(meeting)
        await db.commit()


class Speaker:
    """A villager's phone: its microphone (a tone), optionally a camera, sendonly."""

    def __init__(self, *, camera: bool = False) -> None:
        self.pc = RTCPeerConnection(NO_ICE_SERVERS)
        self.pc.addTransceiver(ToneAudioTrack(), direction="sendonly")
        if camera:
            self.pc.addTransceiver(MovingVideoTrack(160, 120), direction="sendonly")
        self.location: str | None = None
        self.answer = ""

    async def post(self, client, meeting_id: int, token: str):
        return await client.post(
            f"/whip/{meeting_id}",
            data=await gathered_offer(self.pc),
            headers={**SDP, **auth(token)},
        )

    async def publish(self, client, meeting_id: int, token: str) -> None:
        response = await self.post(client, meeting_id, token)
        assert response.status == 201, await response.text()
        self.location = response.headers["Location"]
        self.answer = await response.text()
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=self.answer, type="answer"))

    async def close(self) -> None:
        await self.pc.close()


class Listener:
    """A WHEP client with the given m-lines; counts encoded frames per m-line."""

    def __init__(self, lines) -> None:
        self.pc = RTCPeerConnection(NO_ICE_SERVERS)
        for kind, direction in lines:
            self.pc.addTransceiver(kind, direction=direction)
        self.frames = [0] * len(lines)
        #: (arrival, RTP timestamp as aiortc maps it) of every frame, per m-line
        self.arrivals: list[list[tuple[float, int]]] = [[] for _ in lines]
        self.answer = ""
        self.location: str | None = None
        self._tasks: list[asyncio.Future] = []
        self.pc.on("track", self._on_track)

    def _on_track(self, track) -> None:
        index = next(
            i for i, t in enumerate(self.pc.getTransceivers()) if t.receiver.track is track
        )
        receive_encoded(track)  # count what arrives, decode nothing
        self._tasks.append(asyncio.ensure_future(consume(track, partial(self._count, index))))

    def _count(self, index: int, frame) -> None:
        self.frames[index] += 1
        self.arrivals[index].append((time.monotonic(), frame.pts))

    async def watch(self, client, meeting_id: int, token: str | None = None) -> None:
        headers = {**SDP, **(auth(token) if token else {})}
        response = await client.post(
            f"/whep/{meeting_id}", data=await gathered_offer(self.pc), headers=headers
        )
        assert response.status == 201, await response.text()
        self.location = response.headers["Location"]
        self.answer = await response.text()
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=self.answer, type="answer"))

    def ssrcs(self, index: int) -> set[int]:
        receiver = self.pc.getTransceivers()[index].receiver
        return {source.source for source in receiver.getSynchronizationSources()}

    async def close(self) -> None:
        await self.pc.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


SOUND_ONLY = (("audio", "recvonly"), ("audio", "recvonly"))


class Counted(Listener):
    """A :class:`Listener` that also counts the RTP packets reaching it, per payload type."""

    def __init__(self, lines, *, data_channel: bool = False) -> None:
        super().__init__(lines)
        if data_channel:
            self.pc.createDataChannel("chat")  # an m=application line in the offer
        self.packets: dict[int, int] = {}

    async def watch(self, client, meeting_id: int, token: str | None = None, munge=None) -> None:
        """WHEP with this peer's offer (``munge(offer)`` instead, if given)."""
        offer = await gathered_offer(self.pc)
        if munge is not None:
            offer = munge(offer)
        for transceiver in self.pc.getTransceivers()[:1]:  # bundled: one ICE connection
            connection = transceiver.receiver.transport.transport.iceGatherer._connection
            for protocol in connection._protocols:
                protocol.datagram_received = self._counting(protocol.datagram_received)
        response = await client.post(f"/whep/{meeting_id}", data=offer, headers=SDP)
        assert response.status == 201, await response.text()
        self.location = response.headers["Location"]
        self.answer = await response.text()
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=self.answer, type="answer"))

    def _counting(self, received):
        def datagram_received(data: bytes, addr) -> None:
            # RTP (version 2), not RTCP (whose second byte reads as payload types 72-78)
            if 127 < data[0] < 192 and len(data) > 12 and not 72 <= data[1] & 0x7F <= 78:
                pt = data[1] & 0x7F
                self.packets[pt] = self.packets.get(pt, 0) + 1
            received(data, addr)

        return datagram_received

    def answered(self) -> list:
        return SessionDescription.parse(self.answer).media
