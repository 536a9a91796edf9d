"""Helpers for the recording tests: ffprobe, frames and sound read back from files, waiting."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import time
from datetime import datetime
from pathlib import Path

import numpy as np

from .api import auth
from .peers import Publisher

SEGMENT = 2.0  # the recorder's segment length: durations must agree within one


def probe(path: Path) -> dict:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_format", "-show_streams", "-of", "json", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return json.loads(out.stdout)


def duration(path: Path) -> float:
    return float(probe(path)["format"]["duration"])


def codecs(path: Path) -> list[tuple[str, str]]:
    return [(s["codec_type"], s["codec_name"]) for s in probe(path)["streams"]]


def playlist_seconds(path: Path) -> float:
    """The sum of a playlist's segment durations (#EXTINF)."""
    return sum(
        float(line.split(":", 1)[1].rstrip(",").split(",")[0])
        for line in path.read_text().splitlines()
        if line.startswith("#EXTINF:")
    )


def master_variants(text: str) -> list[tuple[str, str]]:
    """A master playlist's (variant playlist, its #EXT-X-STREAM-INF attributes), in order."""
    lines = text.splitlines()
    return [
        (lines[n + 1], line.split(":", 1)[1])
        for n, line in enumerate(lines)
        if line.startswith("#EXT-X-STREAM-INF:")
    ]


def measured_kbps(playlist: Path) -> float:
    """A variant's bitrate as stored: its segments' bytes over its playlist's seconds."""
    names = [line for line in playlist.read_text().splitlines() if line and line[0] != "#"]
    size = sum((playlist.parent / name).stat().st_size for name in names)
    return round(size * 8 / playlist_seconds(playlist) / 1000, 1)


def frame_at(path: Path, t: float, width: int = 320, height: int = 240) -> np.ndarray:
    """The picture a player shows at ``t`` seconds, as 8-bit gray."""
    out = subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-ss",
            f"{t:.3f}",
            "-i",
            str(path),
            "-frames:v",
            "1",
            "-vf",
            f"scale={width}:{height}",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "gray",
            "-",
        ],
        capture_output=True,
        timeout=30,
        check=True,
    )
    return np.frombuffer(out.stdout, np.uint8)[: width * height].reshape(height, width)


def audio_samples(path: Path, rate: int = 16000) -> np.ndarray:
    """The file's audio, mono float, at ``rate``."""
    out = subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-i",
            str(path),
            "-vn",
            "-ac",
            "1",
            "-ar",
            str(rate),
            "-f",
            "f32le",
            "-",
        ],
        capture_output=True,
        timeout=60,
        check=True,
    )
    return np.frombuffer(out.stdout, np.float32)


def tone_level(samples: np.ndarray, rate: int, frequency: float) -> float:
    """Relative strength of ``frequency`` in ``samples`` (its share of the spectrum's energy)."""
    if samples.size == 0:
        return 0.0
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(samples.size)))
    bins = np.fft.rfftfreq(samples.size, 1 / rate)
    near = np.abs(bins - frequency) < 15
    return float(spectrum[near].sum() / (spectrum.sum() + 1e-9))


def at_time(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


async def recording_of(client, token: str, meeting_id: int) -> tuple[int, dict]:
    response = await client.get(f"/api/meetings/{meeting_id}/recording", headers=auth(token))
    return response.status, await response.json()


async def wait_recording(
    client, token: str, meeting_id: int, predicate, timeout: float = 60.0
) -> dict:
    deadline = time.monotonic() + timeout
    body: dict = {}
    while time.monotonic() < deadline:
        status, body = await recording_of(client, token, meeting_id)
        if status == 200 and predicate(body):
            return body
        await asyncio.sleep(0.1)
    raise AssertionError(f"the recording never got there: {body}")


async def sleep_until(wall: float) -> None:
    await asyncio.sleep(max(0.0, wall - time.time()))


@contextlib.asynccontextmanager
async def publishing(client, token: str, meeting_id: int, **publisher_args):
    """A real aiortc publisher sending into the meeting; yields the recording's t = 0 (wall)."""
    publisher = Publisher(**{"width": 320, "height": 240, **publisher_args})
    try:
        await publisher.publish(client, meeting_id, token)
        live = await wait_recording(
            client, token, meeting_id, lambda r: r["started_at"], timeout=15
        )
        yield at_time(live["started_at"])
    finally:
        await publisher.close()
