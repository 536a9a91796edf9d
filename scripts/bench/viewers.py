"""The WHEP viewer worker: many cheap counting viewers, or the one decoding viewer.

A counting viewer is a real aiortc peer connection (ICE, DTLS handshake, SRTCP
all done by aiortc), but its incoming SRTP media never reaches aiortc: SRTP
leaves the 12-byte RTP header in clear, so each datagram is classified right
where aioice receives it (``StunProtocol.datagram_received``), before the STUN
parse, the asyncio queue, SRTP unprotect, RTP parsing, the jitter buffer and
the decoder:

- first byte 128..191 (RTP version 2) and a payload type of the answer's
  video codec: one video packet; the marker bit ends a video frame (whose RTP
  timestamp is kept); gaps in the sequence numbers are counted as lost packets;
- the same with the audio payload type: one audio packet (= one Opus frame);
- anything else (STUN, DTLS, SRTCP: its second byte is the RTCP packet type
  200..206, i.e. payload type 72..78 which no codec here uses) goes to aiortc
  unchanged, so consent checks, DTLS and RTCP keep working.

Counted media is then dropped, and the datagrams queued behind it on that
socket are read and counted in the same call (asyncio would read one per
event-loop pass). With ``BENCH_COALESCE_MS`` the process also gathers a few
milliseconds of datagrams per wake-up (``common.CoalescingSelector``). The
decoding viewer counts the same way but passes everything on to aiortc, which
decodes it.
"""

from __future__ import annotations

import asyncio
import collections
import os
import socket
import time

from .common import loopback_only, payload_types, run_worker
from .peers import NO_ICE_SERVERS, consume, prefer_codec

_monotonic = time.monotonic


class Counter:
    """What one viewer received, counted from clear-text RTP headers."""

    __slots__ = (
        "video_pts",
        "audio_pts",
        "vframes",
        "vpkts",
        "apkts",
        "vpayload",
        "first_video",
        "first_audio",
        "drop",
        "probe",
        "tag",
        "vseq",
        "vlost",
        "vts",
    )

    def __init__(self, drop: bool, probe: bool) -> None:
        self.video_pts: frozenset[int] = frozenset()
        self.audio_pts: frozenset[int] = frozenset()
        self.vframes = 0
        self.vpkts = 0
        self.apkts = 0
        self.vpayload = 0  # video RTP payload bytes (probe viewers only)
        self.first_video: float | None = None
        self.first_audio: float | None = None
        self.drop = drop
        self.probe = probe
        self.tag = 16  # SRTP auth tag length (AEAD GCM); set once DTLS is up
        self.vseq = -1  # last video RTP sequence number
        self.vlost = 0  # video packets missing from the sequence (loss, not window skew)
        self.vts: int | None = None  # RTP timestamp of the last complete video frame


def _install_counting_hook() -> None:
    import aioice.ice

    original = aioice.ice.StunProtocol.datagram_received
    aioice.ice.Connection.bench_counter = None  # class default: not a bench viewer

    def count(self, counter, data, addr) -> bool:
        """Count one datagram; True when it was media and is dropped here."""
        if 127 < data[0] < 192 and len(data) > 12:
            b1 = data[1]
            pt = b1 & 0x7F
            if pt in counter.video_pts:
                counter.vpkts += 1
                seq = (data[2] << 8) | data[3]
                if counter.first_video is None:
                    counter.first_video = _monotonic()
                else:
                    gap = (seq - counter.vseq) & 0xFFFF
                    if 1 < gap < 0x8000:
                        counter.vlost += gap - 1
                counter.vseq = seq
                if b1 & 0x80:
                    counter.vframes += 1
                    counter.vts = int.from_bytes(data[4:8], "big")
                if counter.probe:
                    b0 = data[0]
                    header = 12 + 4 * (b0 & 0x0F)
                    if b0 & 0x10:
                        header += 4 + 4 * int.from_bytes(data[header + 2 : header + 4], "big")
                    counter.vpayload += len(data) - header - counter.tag
                if counter.drop:
                    return True
            elif pt in counter.audio_pts:
                counter.apkts += 1
                if counter.first_audio is None:
                    counter.first_audio = _monotonic()
                if counter.drop:
                    return True
        original(self, data, addr)  # aiortc's own path (and the decoding viewer's media)
        return False

    def datagram_received(self, data, addr):
        counter = self.receiver.bench_counter
        if counter is None:
            return original(self, data, addr)
        if not count(self, counter, data, addr):
            return
        # Media came in: the frame's other packets are likely queued behind it.
        # asyncio reads one datagram per event-loop pass (into a 256 KiB
        # buffer); reading the rest here costs a fraction of that.
        recvfrom = self.transport._sock.recvfrom
        for _ in range(DRAIN_MAX):
            try:
                data, addr = recvfrom(DRAIN_BUFFER)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            count(self, counter, data, addr)

    aioice.ice.StunProtocol.datagram_received = datagram_received


#: BENCH_AUDIO_ONLY=1 (bench_fanout.py --audio-only): every viewer is the watch page's
#: "sound only": two audio m-lines (the meeting, the floor), no video, RED offered as
#: Chromium offers it; its "join" is its first audio packet
AUDIO_ONLY = os.environ.get("BENCH_AUDIO_ONLY") == "1"


def offer_red(sdp: str) -> str:
    """Add ``audio/red`` over Opus to each audio m-line, as Chromium's offers have it."""
    out = []
    opus = None
    for line in sdp.split("\r\n"):
        if line.startswith("m="):
            opus = None
            if line.startswith("m=audio "):
                line += " 63"
        elif line.startswith("a=rtpmap:") and "opus/48000" in line.lower():
            opus = line[len("a=rtpmap:") :].split()[0]
        out.append(line)
        if opus is not None and line.startswith("a=rtpmap:" + opus + " "):
            out += ["a=rtpmap:63 red/48000/2", f"a=fmtp:63 {opus}/{opus}"]
    return "\r\n".join(out)


def red_payload_types(sdp: str) -> frozenset[int]:
    """The answer's ``audio/red`` payload types (what a RED viewer's packets carry)."""
    return frozenset(
        int(line[len("a=rtpmap:") :].split()[0])
        for line in sdp.splitlines()
        if line.startswith("a=rtpmap:") and " red/" in line.lower()
    )


DRAIN_MAX = 64  # datagrams read per wake-up, so one busy socket cannot starve the rest
DRAIN_BUFFER = 8192  # media, RTCP and STUN from aiortc are under 1500 bytes
RCVBUF = 1 << 20  # per viewer socket (capped by net.core.rmem_max)


class Viewer:
    def __init__(self, index: int, decode: bool, probe: bool) -> None:
        from aiortc import RTCPeerConnection

        self.index = index
        self.decode = decode
        self.counter = Counter(drop=not decode, probe=probe)
        self.pc = RTCPeerConnection(NO_ICE_SERVERS)
        self.location: str | None = None
        self.t_post: float | None = None
        self.t_answer: float | None = None
        self.t_connected: float | None = None
        self.error: str | None = None
        self.decoded = 0
        self.sizes: collections.Counter = collections.Counter()
        self.audio_decoded = 0
        self._tasks: list[asyncio.Task] = []

    async def join(self, http, base: str, meeting: str, codec: str) -> None:
        from aiortc import RTCSessionDescription

        pc = self.pc
        if AUDIO_ONLY:  # the watch page's sound only: the meeting and the floor, no video
            pc.addTransceiver("audio", direction="recvonly")
            pc.addTransceiver("audio", direction="recvonly")
        else:
            prefer_codec(pc.addTransceiver("video", direction="recvonly"), codec)
            pc.addTransceiver("audio", direction="recvonly")
        if self.decode:
            pc.on("track", self._on_track)

        @pc.on("connectionstatechange")
        def _connected() -> None:
            if pc.connectionState == "connected" and self.t_connected is None:
                self.t_connected = _monotonic()

        await pc.setLocalDescription(await pc.createOffer())  # gathers: non-trickle
        for transceiver in pc.getTransceivers():  # before any media can arrive
            connection = transceiver.receiver.transport.transport.iceGatherer._connection
            connection.bench_counter = self.counter
            if not self.decode:  # room for a keyframe while the process sleeps
                for protocol in connection._protocols:
                    sock = protocol.transport.get_extra_info("socket")
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
        self.t_post = _monotonic()
        offer = pc.localDescription.sdp
        async with http.post(
            f"{base}/whep/{meeting}",
            data=offer_red(offer) if AUDIO_ONLY else offer,
            headers={"Content-Type": "application/sdp"},
        ) as response:
            text = await response.text()
            self.t_answer = _monotonic()
            if response.status != 201:
                raise RuntimeError(f"WHEP answered {response.status}: {text[:300]}")
            self.location = response.headers.get("Location")
        pts = payload_types(text)
        self.counter.video_pts = frozenset(pts.get("video", ()))
        self.counter.audio_pts = frozenset(pts.get("audio", ())) | red_payload_types(text)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=text, type="answer"))

    def _on_track(self, track) -> None:
        count = self._count_video if track.kind == "video" else self._count_audio
        self._tasks.append(asyncio.ensure_future(consume(track, count)))

    def _count_video(self, frame) -> None:
        self.decoded += 1
        self.sizes[(frame.width, frame.height)] += 1

    def _count_audio(self, frame) -> None:
        self.audio_decoded += 1

    def srtp_tag_check(self) -> None:
        """Use the negotiated SRTP profile's tag length for payload bytes (probe only)."""
        try:
            dtls = self.pc.getTransceivers()[0].receiver.transport
            profile = dtls._ssl.get_selected_srtp_profile()
            self.counter.tag = 10 if b"SHA1_80" in profile else 16
        except Exception:
            pass

    def snapshot(self) -> list:
        c = self.counter
        first = c.first_audio if AUDIO_ONLY else c.first_video  # first media packet
        join = None if (first is None or self.t_post is None) else first - self.t_post
        answer = None if self.t_answer is None else self.t_answer - self.t_post
        connected = None if self.t_connected is None else self.t_connected - self.t_post
        return [
            c.vframes,
            c.vpkts,
            c.apkts,
            c.vpayload if c.probe else None,
            join,
            self.error,
            self.pc.connectionState,
            c.vlost,
            answer,
            connected,
            c.vts,
        ]

    async def leave(self, http, base: str) -> None:
        if self.location:
            try:
                async with http.delete(base + self.location) as response:
                    await response.read()
            except Exception:
                pass
        await self.pc.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


class Worker:
    def __init__(self) -> None:
        self.viewers: list[Viewer] = []
        self.http = None
        self.base = ""

    async def setup(self) -> None:
        import aiohttp

        loopback_only()
        _install_counting_hook()
        self.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))

    async def join(
        self, base: str, meeting: str, codec: str, count: int, batch: int, decode: bool = False
    ) -> dict:
        """Add ``count`` viewers, ``batch`` WHEP requests at a time; don't wait for media."""
        self.base = base
        new = []
        for _ in range(count):
            viewer = Viewer(len(self.viewers), decode=decode, probe=(len(self.viewers) == 0))
            self.viewers.append(viewer)
            new.append(viewer)
        for i in range(0, len(new), batch):
            group = new[i : i + batch]
            results = await asyncio.gather(
                *(v.join(self.http, base, meeting, codec) for v in group), return_exceptions=True
            )
            for viewer, result in zip(group, results, strict=True):
                if isinstance(result, BaseException):
                    viewer.error = repr(result)[:300]
        return {
            "joined": [v.index for v in new if v.error is None],
            "errors": [v.error for v in new if v.error is not None],
        }

    async def snapshot(self, at: float | None = None) -> dict:
        if at is not None:  # the coordinator's instant (CLOCK_MONOTONIC is system-wide)
            await asyncio.sleep(max(0.0, at - _monotonic()))
        t = _monotonic()
        for viewer in self.viewers:
            if viewer.counter.probe and viewer.pc.connectionState == "connected":
                viewer.srtp_tag_check()
        result = {"t": t, "viewers": [v.snapshot() for v in self.viewers]}
        decoders = [v for v in self.viewers if v.decode]
        if decoders:
            d = decoders[0]
            size = d.sizes.most_common(1)[0][0] if d.sizes else (None, None)
            result["decoded"] = {
                "frames": d.decoded,
                "width": size[0],
                "height": size[1],
                "sizes": [[w, h, n] for (w, h), n in d.sizes.items()],
                "audio_frames": d.audio_decoded,
            }
        return result

    async def leave(self) -> dict:
        viewers, self.viewers = self.viewers, []
        for i in range(0, len(viewers), 20):
            await asyncio.gather(
                *(v.leave(self.http, self.base) for v in viewers[i : i + 20]),
                return_exceptions=True,
            )
        return {"left": len(viewers)}

    async def cleanup(self) -> None:
        if self.viewers:
            await self.leave()
        if self.http is not None:
            await self.http.close()
            self.http = None


def main() -> int:
    worker = Worker()
    coalesce = float(os.environ.get("BENCH_COALESCE_MS", "0")) / 1000
    return run_worker(
        {"join": worker.join, "snapshot": worker.snapshot, "leave": worker.leave},
        setup=worker.setup,
        cleanup=worker.cleanup,
        coalesce=coalesce,
    )
