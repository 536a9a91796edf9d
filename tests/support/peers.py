"""Real aiortc peers for the media tests: a synthetic camera, WHIP and WHEP clients.

What the bench's workers use too is in ``scripts/bench/peers.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import time
from dataclasses import dataclass, field

import av
import numpy as np
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack

from media.aiortc_hooks import receive_encoded
from scripts.bench.peers import NO_ICE_SERVERS, Pacer, consume, prefer_codec, tone

SDP = {"Content-Type": "application/sdp"}


class MovingVideoTrack(VideoStreamTrack):
    """A moving gradient: every frame differs, so a frozen picture would show."""

    def __init__(self, width: int = 640, height: int = 480) -> None:
        super().__init__()
        self.width, self.height = width, height
        self._base = np.add.outer(np.arange(height), np.arange(width)).astype(np.uint8)
        self._n = 0

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        self._n += 1
        y = self._base + np.uint8((self._n * 3) % 256)  # wraps around, as uint8 does
        return gray_frame(y, pts, time_base)


def gray_frame(y: np.ndarray, pts: int, time_base) -> av.VideoFrame:
    """A yuv420p frame of the luma plane ``y`` (no colour)."""
    height, width = y.shape
    uv = np.full((height // 2, width // 2), 128, dtype=np.uint8)
    frame = av.VideoFrame.from_ndarray(
        np.concatenate([y, uv.reshape(-1, width), uv.reshape(-1, width)]), format="yuv420p"
    )
    frame.pts, frame.time_base = pts, time_base
    return frame


class ClockVideoTrack(MovingVideoTrack):
    """Shows the wall clock as 24 black or white blocks: a recording's frame tells when it was shot.

    :func:`read_clock` turns a decoded frame back into that time, so a test can
    check what the replay shows at a given second against when things happened.
    """

    COLS, ROWS, BITS = 6, 4, 24
    TICK = 0.02  # the clock counts 20 ms ticks from ``epoch``

    def __init__(self, epoch: float, width: int = 640, height: int = 480) -> None:
        super().__init__(width, height)
        self.epoch = epoch

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        ticks = int((time.time() - self.epoch) / self.TICK)
        y = np.full((self.height, self.width), 16, dtype=np.uint8)
        bw, bh = self.width // self.COLS, self.height // self.ROWS
        for bit in range(self.BITS):
            if ticks >> bit & 1:
                row, col = divmod(bit, self.COLS)
                y[row * bh : (row + 1) * bh, col * bw : (col + 1) * bw] = 235
        return gray_frame(y, pts, time_base)


def read_clock(gray: np.ndarray, epoch: float) -> float:
    """The wall time a :class:`ClockVideoTrack` frame (as 8-bit gray, any size) was shot."""
    height, width = gray.shape
    bw, bh = width / ClockVideoTrack.COLS, height / ClockVideoTrack.ROWS
    ticks = 0
    for bit in range(ClockVideoTrack.BITS):
        row, col = divmod(bit, ClockVideoTrack.COLS)
        if gray[int((row + 0.5) * bh), int((col + 0.5) * bw)] > 128:
            ticks |= 1 << bit
    return epoch + ticks * ClockVideoTrack.TICK


class ToneAudioTrack(AudioStreamTrack):
    """A 440 Hz tone in 20 ms frames at 48 kHz."""

    RATE = 48000
    SAMPLES = 960

    def __init__(self) -> None:
        super().__init__()
        self._pts = 0
        self._pace = Pacer(time.time)

    async def recv(self) -> av.AudioFrame:
        await self._pace.until(self._pts / self.RATE)
        samples = tone(self._pts, self.SAMPLES, self.RATE)
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = self.RATE
        frame.pts = self._pts
        frame.time_base = fractions.Fraction(1, self.RATE)
        self._pts += self.SAMPLES
        return frame


async def gathered_offer(pc: RTCPeerConnection) -> str:
    """aiortc gathers all candidates in setLocalDescription: a non-trickle offer."""
    await pc.setLocalDescription(await pc.createOffer())
    return pc.localDescription.sdp


@dataclass
class Publisher:
    """A WHIP publisher: synthetic camera and microphone."""

    width: int = 640
    height: int = 480
    pc: RTCPeerConnection = field(default_factory=lambda: RTCPeerConnection(NO_ICE_SERVERS))
    location: str | None = None

    codec: str | None = None  # offer only this video codec, e.g. "video/VP8"
    video: VideoStreamTrack | None = None  # default: a MovingVideoTrack of width x height
    audio: bool = True  # False: a camera without a microphone

    def __post_init__(self) -> None:
        video = self.pc.addTransceiver(
            self.video or MovingVideoTrack(self.width, self.height), direction="sendonly"
        )
        if self.codec:
            prefer_codec(video, self.codec)
        if self.audio:
            self.pc.addTransceiver(ToneAudioTrack(), direction="sendonly")

    async def publish(self, client, meeting_id: int, token: str) -> None:
        offer = await gathered_offer(self.pc)
        response = await client.post(
            f"/whip/{meeting_id}",
            data=offer,
            headers={"Content-Type": "application/sdp", "Authorization": f"Bearer {token}"},
        )
        assert response.status == 201, await response.text()
        self.location = response.headers["Location"]
        answer = await response.text()
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))

    async def close(self) -> None:
        await self.pc.close()


@dataclass
class Viewer:
    """A WHEP viewer that counts what it receives; it decodes unless ``decode=False``."""

    decode: bool = True
    pc: RTCPeerConnection = field(default_factory=lambda: RTCPeerConnection(NO_ICE_SERVERS))
    video_frames: int = 0
    keyframe_first: bool | None = None
    audio_frames: int = 0
    sizes: set = field(default_factory=set)
    first_video_at: float | None = None
    location: str | None = None
    _tasks: list = field(default_factory=list)

    def __post_init__(self) -> None:
        self.pc.addTransceiver("video", direction="recvonly")
        self.pc.addTransceiver("audio", direction="recvonly")
        self.pc.on("track", self._on_track)

    def _on_track(self, track) -> None:
        if not self.decode:
            receive_encoded(track)
        count = self._count_video if track.kind == "video" else self._count_audio
        self._tasks.append(asyncio.ensure_future(consume(track, count)))

    def _count_video(self, frame) -> None:
        self.video_frames += 1
        if self.decode:
            self.sizes.add((frame.width, frame.height))
        elif self.keyframe_first is None:
            self.keyframe_first = frame.keyframe
        if self.first_video_at is None:
            self.first_video_at = time.monotonic()

    def _count_audio(self, frame) -> None:
        self.audio_frames += 1

    async def watch(self, client, meeting_id: int, token: str | None = None) -> None:
        offer = await gathered_offer(self.pc)
        headers = {"Content-Type": "application/sdp"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        response = await client.post(f"/whep/{meeting_id}", data=offer, headers=headers)
        assert response.status == 201, await response.text()
        self.location = response.headers["Location"]
        answer = await response.text()
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))

    async def wait_for(self, *, video: int, audio: int = 1, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while self.video_frames < video or self.audio_frames < audio:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"after {timeout} s: {self.video_frames} video frames (wanted {video}), "
                    f"{self.audio_frames} audio frames (wanted {audio})"
                )
            await asyncio.sleep(0.05)

    async def close(self) -> None:
        await self.pc.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def publisher_offer() -> str:
    publisher = Publisher()
    try:
        return await gathered_offer(publisher.pc)
    finally:
        await publisher.close()


async def viewer_offer() -> str:
    pc = RTCPeerConnection(NO_ICE_SERVERS)
    pc.addTransceiver("video", direction="recvonly")
    pc.addTransceiver("audio", direction="recvonly")
    try:
        return await gathered_offer(pc)
    finally:
        await pc.close()


async def until(predicate, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"after {timeout} s: {what}")
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def closing(*peers):
    """Close ``peers`` (anything with an async ``close``) on the way out, the last first."""
    try:
        yield peers
    finally:
        for peer in reversed(peers):
            await peer.close()
