"""The WHIP publisher worker: synthetic moving video (H.264 or VP8) plus an Opus tone.

Frames are precomputed once and cycled, so this process's CPU is mostly the
encoder. aiortc's encoders adapt their bitrate to the receiver's REMB; to
encode at the requested ``--bitrate`` the encoder objects this process creates
get a pinned ``target_bitrate`` (REMB values are recorded, not applied).
Keyframe requests (PLI/FIR) still reach aiortc's sender, which forces a keyframe.
"""

from __future__ import annotations

import asyncio
import fractions
import time

import numpy as np

from .common import loopback_only, run_worker
from .peers import NO_ICE_SERVERS, Pacer, prefer_codec, tone

VIDEO_TIME_BASE = fractions.Fraction(1, 90000)
AUDIO_RATE = 48000
AUDIO_SAMPLES = 960  # 20 ms


class _PresetCodec:
    """A libx264 codec context whose ``options`` always carry an x264 preset."""

    def __init__(self, context, preset: str) -> None:
        object.__setattr__(self, "_context", context)
        object.__setattr__(self, "_preset", preset)

    def __getattr__(self, name):
        return getattr(self._context, name)

    def __setattr__(self, name, value) -> None:
        if name == "options":
            value = {**value, "preset": self._preset}
        setattr(self._context, name, value)


def _pin_encoder_bitrates(bitrate: int, state: dict, x264_preset: str | None = None) -> None:
    """Make every encoder aiortc creates in this process encode at ``bitrate``.

    The encoder keeps aiortc's code; a subclass only ignores REMB (recorded in
    ``state``) and, with ``x264_preset``, adds that preset to the options aiortc
    gives libx264 (aiortc sets none: x264's default "medium").
    """
    import aiortc.rtcrtpsender as rtcrtpsender
    from aiortc.codecs.h264 import H264Encoder

    original = rtcrtpsender.get_encoder
    pinned_classes: dict[type, type] = {}

    def get_encoder(codec):
        encoder = original(codec)
        base = type(encoder)
        prop = getattr(base, "target_bitrate", None)
        if not isinstance(prop, property):
            return encoder  # Opus: no bitrate control in aiortc
        if base not in pinned_classes:

            def setter(self, value):  # a REMB: record it, keep ours
                state["remb_bps"] = int(value)
                state["remb_count"] = state.get("remb_count", 0) + 1

            body = {"target_bitrate": property(prop.fget, setter)}
            if x264_preset and issubclass(base, H264Encoder):

                def get_codec(self):
                    return self.__dict__.get("_bench_codec")

                def set_codec(self, value):
                    self.__dict__["_bench_codec"] = (
                        None if value is None else _PresetCodec(value, x264_preset)
                    )

                body["codec"] = property(get_codec, set_codec)
            pinned_classes[base] = type(f"Pinned{base.__name__}", (base,), body)
        prop.fset(encoder, bitrate)  # clamped by aiortc to its MIN/MAX
        state["encoder_target_bps"] = prop.fget(encoder)
        state["encoder"] = base.__name__
        if x264_preset and issubclass(base, H264Encoder):
            state["x264_preset"] = x264_preset
        encoder.__class__ = pinned_classes[base]
        if "codec" in pinned_classes[base].__dict__:
            encoder.codec = None  # aiortc's __init__ stored it in the instance dict
            encoder.__dict__.pop("codec", None)
        return encoder

    rtcrtpsender.get_encoder = get_encoder


def _make_video_frames(width: int, height: int, count: int):
    """``count`` distinct yuv420p frames: a moving gradient with a moving texture."""
    import av

    rng = np.random.default_rng(7)
    texture = rng.integers(0, 48, size=(height, width + 8 * count), dtype=np.uint8)
    ys = np.arange(height, dtype=np.int32)[:, None]
    xs = np.arange(width, dtype=np.int32)[None, :]
    frames = []
    for i in range(count):
        y = ((xs + ys + 6 * i) % 200).astype(np.uint8) + texture[:, 8 * i : 8 * i + width]
        # a bright square moving across the picture, for a visible motion
        x0 = (i * width // count) % max(1, width - height // 4)
        y[height // 3 : height // 3 + height // 4, x0 : x0 + height // 4] = 235
        u = np.full((height // 2, width // 2), 128 + (i % 16), dtype=np.uint8)
        v = np.full((height // 2, width // 2), 128 - (i % 16), dtype=np.uint8)
        planes = np.concatenate([y, u.reshape(-1, width), v.reshape(-1, width)])
        frames.append(av.VideoFrame.from_ndarray(planes, format="yuv420p"))
    return frames


def _make_audio_frames():
    """One second of a 440 Hz tone in 20 ms frames (440 whole periods: it loops cleanly)."""
    return [tone(i, AUDIO_SAMPLES, AUDIO_RATE) for i in range(0, AUDIO_RATE, AUDIO_SAMPLES)]


class Worker:
    def __init__(self) -> None:
        self.pc = None
        self.state: dict = {"frames": 0, "audio_frames": 0}
        self.location: str | None = None
        self.base: str | None = None
        self.token: str | None = None

    async def publish(
        self,
        base: str,
        meeting: str,
        token: str | None,
        codec: str,
        width: int,
        height: int,
        fps: float,
        bitrate: int,
        x264_preset: str | None = None,
    ) -> dict:
        import aiohttp
        from aiortc import RTCPeerConnection, RTCSessionDescription
        from aiortc.mediastreams import MediaStreamTrack

        loopback_only()
        _pin_encoder_bitrates(bitrate, self.state, x264_preset)
        state = self.state
        video_frames = await asyncio.get_running_loop().run_in_executor(
            None, _make_video_frames, width, height, 30
        )
        audio_frames = _make_audio_frames()

        class SyntheticVideo(MediaStreamTrack):
            kind = "video"

            def __init__(self) -> None:
                super().__init__()
                self._n = 0
                self._pace = Pacer()

            async def recv(self):
                await self._pace.until(self._n / fps)
                frame = video_frames[self._n % len(video_frames)]
                frame.pts = int(self._n * 90000 / fps)
                frame.time_base = VIDEO_TIME_BASE
                self._n += 1
                state["frames"] = self._n
                return frame

        class ToneAudio(MediaStreamTrack):
            kind = "audio"

            def __init__(self) -> None:
                super().__init__()
                self._n = 0
                self._pace = Pacer()

            async def recv(self):
                import av

                await self._pace.until(self._n * AUDIO_SAMPLES / AUDIO_RATE)
                frame = av.AudioFrame.from_ndarray(
                    audio_frames[self._n % len(audio_frames)], format="s16", layout="mono"
                )
                frame.sample_rate = AUDIO_RATE
                frame.pts = self._n * AUDIO_SAMPLES
                frame.time_base = fractions.Fraction(1, AUDIO_RATE)
                self._n += 1
                state["audio_frames"] = self._n
                return frame

        self.pc = pc = RTCPeerConnection(NO_ICE_SERVERS)
        prefer_codec(pc.addTransceiver(SyntheticVideo(), direction="sendonly"), codec)
        pc.addTransceiver(ToneAudio(), direction="sendonly")
        connected = asyncio.Event()

        @pc.on("connectionstatechange")
        def _state() -> None:
            state["connection"] = pc.connectionState
            if pc.connectionState == "connected":
                connected.set()

        await pc.setLocalDescription(await pc.createOffer())  # gathers: non-trickle
        headers = {"Content-Type": "application/sdp"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.base, self.token = base, token
        async with aiohttp.ClientSession() as http:
            async with http.post(
                f"{base}/whip/{meeting}", data=pc.localDescription.sdp, headers=headers
            ) as response:
                text = await response.text()
                if response.status != 201:
                    raise RuntimeError(f"WHIP answered {response.status}: {text}")
                self.location = response.headers.get("Location")
        await pc.setRemoteDescription(RTCSessionDescription(sdp=text, type="answer"))
        await asyncio.wait_for(connected.wait(), 20)
        return {"location": self.location, "width": width, "height": height}

    async def stats(self, at: float | None = None) -> dict:
        if at is not None:  # the coordinator's instant (CLOCK_MONOTONIC is system-wide)
            await asyncio.sleep(max(0.0, at - time.monotonic()))
        return dict(self.state)

    async def close(self) -> None:
        if self.pc is not None:
            pc, self.pc = self.pc, None
            if self.location and self.base:
                try:
                    import aiohttp

                    headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
                    async with aiohttp.ClientSession() as http:
                        await http.delete(
                            self.base + self.location,
                            headers=headers,
                            timeout=aiohttp.ClientTimeout(total=5),
                        )
                except Exception:
                    pass
            await pc.close()


def main() -> int:
    worker = Worker()
    return run_worker({"publish": worker.publish, "stats": worker.stats}, cleanup=worker.close)
