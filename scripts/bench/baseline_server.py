"""Baseline: aiortc's stock ``MediaRelay`` (decode once, encode per viewer) behind WHIP/WHEP.

This is how the walking skeleton relayed a meeting before the encoded fan-out.
Run it as ``python scripts/bench_fanout.py --baseline-server --port P``.

- ``POST /whip/{id}``: the publisher's offer -> 201 + answer. Its tracks are
  decoded by aiortc and fed to one ``MediaRelay``; a drain subscriber keeps the
  relay reading even with no viewers (aiortc decodes whether or not anyone reads).
- ``POST /whep/{id}``: a viewer's recvonly offer -> 201 + answer, each kind fed
  by ``relay.subscribe(track, buffered=False)`` and encoded by that viewer's
  own aiortc sender. The video codec is the one the viewer's offer prefers.
- ``DELETE /whep/{id}/{session}``, ``DELETE /whip/{id}/{session}``.
- ``GET /api/meetings/{id}/media``: the same counter shape as Cunhui's
  (``frames.video`` = frames the relay read from the decoder).

Every encoder is pinned to ``--bitrate`` (aiortc would otherwise start at its
default and follow REMB) so both designs send the same bitrate.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import secrets

from .common import LOOPBACK, loopback_only
from .peers import NO_ICE_SERVERS


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench_fanout.py --baseline-server")
    parser.add_argument("--baseline-server", action="store_true")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--bitrate", type=int, default=1_500_000)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )

    from aiohttp import web
    from aiortc import RTCPeerConnection, RTCSessionDescription
    from aiortc.contrib.media import MediaRelay
    from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

    from .publisher import _pin_encoder_bitrates

    loopback_only()
    _pin_encoder_bitrates(args.bitrate, {})
    relay = MediaRelay()

    class Counting(MediaStreamTrack):
        """The decoded source, counting the frames the relay reads."""

        def __init__(self, source) -> None:
            super().__init__()
            self.kind = source.kind
            self.source = source
            self.frames = 0

        async def recv(self):
            frame = await self.source.recv()
            self.frames += 1
            return frame

    class Room:
        def __init__(self) -> None:
            self.sources: dict[str, Counting] = {}
            self.publisher: tuple[str, RTCPeerConnection] | None = None
            self.viewers: dict[str, RTCPeerConnection] = {}
            self.drains: list[asyncio.Task] = []
            self.video_codec: str | None = None

    rooms: dict[str, Room] = {}

    async def drain(track) -> None:
        try:
            while True:
                await track.recv()
        except MediaStreamError:
            pass

    async def answer(pc, offer: str) -> str:
        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        return pc.localDescription.sdp

    def created(kind: str, room_id: str, session: str, sdp: str):
        return web.Response(
            status=201,
            text=sdp,
            content_type="application/sdp",
            headers={"Location": f"/{kind}/{room_id}/{session}"},
        )

    async def whip(request):
        room_id = request.match_info["id"]
        room = rooms.setdefault(room_id, Room())
        offer = await request.text()
        pc = RTCPeerConnection(NO_ICE_SERVERS)

        @pc.on("track")
        def on_track(track) -> None:
            counting = Counting(track)
            room.sources[track.kind] = counting
            room.drains.append(
                asyncio.ensure_future(drain(relay.subscribe(counting, buffered=False)))
            )

        sdp = await answer(pc, offer)
        for transceiver in pc.getTransceivers():
            if transceiver.kind == "video" and transceiver._codecs:  # for the stats only
                room.video_codec = transceiver._codecs[0].mimeType.lower()
        session = secrets.token_urlsafe(16)
        room.publisher = (session, pc)
        return created("whip", room_id, session, sdp)

    async def whep(request):
        room_id = request.match_info["id"]
        room = rooms.get(room_id)
        if room is None or not room.sources:
            return web.json_response(
                {"error": {"code": "conflict", "message": "not publishing"}}, status=409
            )
        offer = await request.text()
        pc = RTCPeerConnection(NO_ICE_SERVERS)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
        for source in room.sources.values():
            pc.addTrack(relay.subscribe(source, buffered=False))
        await pc.setLocalDescription(await pc.createAnswer())
        session = secrets.token_urlsafe(16)
        room.viewers[session] = pc

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc.connectionState in ("failed", "closed"):
                room.viewers.pop(session, None)
                await pc.close()

        return created("whep", room_id, session, pc.localDescription.sdp)

    async def delete(request):
        room = rooms.get(request.match_info["id"])
        session = request.match_info["session"]
        pc = None
        if room is not None:
            if request.match_info["kind"] == "whep":
                pc = room.viewers.pop(session, None)
            elif room.publisher and room.publisher[0] == session:
                pc = room.publisher[1]
                room.publisher = None
        if pc is None:
            return web.json_response(
                {"error": {"code": "not_found", "message": "no session"}}, status=404
            )
        await pc.close()
        return web.json_response({"ok": True})

    async def media(request):
        room = rooms.get(request.match_info["id"])
        if room is None:
            return web.json_response({"publishing": False, "viewers": 0})
        return web.json_response(
            {
                "publishing": room.publisher is not None,
                "viewers": len(room.viewers),
                "video_codec": room.video_codec,
                "frames": {k: s.frames for k, s in room.sources.items()},
                "delivered": None,
                "dropped": None,
                "keyframe_requests": None,
                "keyframes_requested_upstream": None,
            }
        )

    async def healthz(request):
        return web.json_response({"ok": True})

    async def on_shutdown(app) -> None:
        pcs = [pc for room in rooms.values() for pc in room.viewers.values()]
        pcs += [room.publisher[1] for room in rooms.values() if room.publisher]
        await asyncio.gather(*(pc.close() for pc in pcs), return_exceptions=True)
        for room in rooms.values():
            for task in room.drains:
                task.cancel()

    app = web.Application()
    app.router.add_post("/whip/{id}", whip)
    app.router.add_post("/whep/{id}", whep)
    app.router.add_delete("/{kind:whip|whep}/{id}/{session}", delete)
    app.router.add_get("/api/meetings/{id}/media", media)
    app.router.add_get("/healthz", healthz)
    app.on_shutdown.append(on_shutdown)
    web.run_app(app, host=LOOPBACK, port=args.port, print=None, shutdown_timeout=3)
    return 0
