"""Post-processing of a closed recording, with Debian's ffmpeg as a subprocess.

``ffmpeg-python`` builds each command and ``asyncio.create_subprocess_exec``
runs it, so the event loop never waits on it. Every step writes to a temporary
name and renames it into place only once complete: a published file is never
removed or half-overwritten, and a step interrupted half-way (a crash, a
restart) simply runs again. A step whose output is already newer than its
input is skipped, which makes retrying idempotent. On a full disk a step
raises :class:`DiskFull` before it starts (or when ffmpeg runs out of space):
nothing published is touched, and the step can run again once there is room.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import shutil
import struct
from collections.abc import Callable
from pathlib import Path

import ffmpeg

from .files import (
    DISK_FULL,
    ENDLIST,
    MIN_FREE_BYTES,
    PLAYLIST,
    RAW_MP4,
    VARIANT_PLAYLISTS,
    free_bytes,
    is_disk_full,
    write_atomically,
)

logger = logging.getLogger(__name__)

MP4 = "meeting.mp4"
AUDIO = "audio.m4a"
#: the steps, in the order they run
STEPS = ("hls", "mp4", "audio", "thumbnails")

Progress = Callable[[float], None]


class StepFailed(Exception):
    """A step could not produce its file; the message says why (ffmpeg's own words)."""


class DiskFull(StepFailed):
    """The disk has no room for a step's output: run it again once ``needed`` bytes are free."""

    def __init__(self, message: str, needed: int = 0) -> None:
        super().__init__(message)
        self.needed = needed


def ensure_room(directory: Path, needed: int) -> None:
    """Raise :class:`DiskFull` unless ``needed`` bytes fit and a recording's reserve stays free."""
    needed += MIN_FREE_BYTES
    free = free_bytes(directory)
    if free < needed:
        raise DiskFull(
            f"{DISK_FULL} ({free // 1024} KiB free, {needed // 1024} KiB needed)", needed
        )


def thumbnail_name(key: int | str) -> str:
    return f"thumb_{key}.jpg"


def _fresh(output: Path, source: Path) -> bool:
    return output.exists() and output.stat().st_mtime >= source.stat().st_mtime


async def _exec(
    args: list[str], on_line: Callable[[str], None] | None = None
) -> tuple[int, bytes, bytes]:
    """Run a command; hand each stdout line to ``on_line``; return (code, stdout, stderr).

    Cancelled (the server is stopping), it kills the process and waits for it, so
    no child or pipe outlives the event loop; the step runs again at the next start.
    """
    process = await asyncio.create_subprocess_exec(
        *_DIE_WITH_PARENT, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    stdout, stderr = process.stdout, process.stderr
    assert stdout is not None and stderr is not None  # both are pipes
    out = bytearray()

    async def read_stdout() -> None:
        async for line in stdout:
            out.extend(line)
            if on_line is not None:
                on_line(line.decode(errors="replace").strip())

    try:
        _, errors = await asyncio.gather(read_stdout(), stderr.read())
        code = await process.wait()
    except BaseException:
        if process.returncode is None:
            process.kill()
        try:
            await asyncio.wait_for(asyncio.shield(process.wait()), 5)
        except BaseException:
            pass
        raise
    return code, bytes(out), errors


async def _run(args: list[str], duration: float | None, progress: Progress | None) -> None:
    """Run ffmpeg; report progress (0..1) from its ``-progress`` lines."""
    args = [
        args[0],
        "-hide_banner",
        "-nostdin",
        "-v",
        "error",
        "-y",
        "-progress",
        "pipe:1",
        "-nostats",
        *args[1:],
    ]

    def on_line(line: str) -> None:
        key, _, value = line.partition("=")
        if key == "out_time_us" and duration and progress and value.isdigit():
            progress(min(1.0, int(value) / 1e6 / duration))

    code, _, errors = await _exec(args, on_line)
    message = errors.decode(errors="replace").strip().splitlines()
    if any(is_disk_full(line) for line in message):
        # ffmpeg may exit 0 when only its trailer could not be written
        raise DiskFull(f"{DISK_FULL}: {message[-1]}")
    if code != 0:
        raise StepFailed(message[-1] if message else f"ffmpeg exited {code}")


async def _produce(
    output: Path,
    build: Callable[[Path], list[str]],
    duration: float | None,
    progress: Progress | None,
    *,
    needs: int = 0,
    media: bool = True,
) -> None:
    """Write ``output`` through a temporary file that is renamed into place when complete.

    ``needs``: the bytes the output may take (checked first, so a full disk
    fails the step before ffmpeg starts); ``media``: the output must probe as
    media with a duration before it replaces anything.
    """
    ensure_room(output.parent, needs)
    # a name of its own: an ffmpeg left over from a killed server never shares it
    temporary = output.with_name(
        f".{output.stem}.tmp-{os.getpid()}-{secrets.token_hex(4)}{output.suffix}"
    )
    try:
        await _run(build(temporary), duration, progress)
        if not temporary.exists() or temporary.stat().st_size == 0:
            raise StepFailed(f"ffmpeg wrote no {output.name}")
        if media and not await duration_of(temporary):
            raise StepFailed(f"ffmpeg wrote an unreadable {output.name}")
        os.replace(temporary, output)
    finally:
        temporary.unlink(missing_ok=True)


def remove_temporary(directory: Path) -> int:
    """Remove the half-made files of runs that died (call it holding the folder's lock)."""
    removed = 0
    for path in Path(directory).glob(".*.tmp*"):
        path.unlink(missing_ok=True)
        removed += 1
    return removed


#: run children so the kernel kills them when the server dies, even by kill -9
#: (util-linux's setpriv; PR_SET_PDEATHSIG survives the exec). Otherwise an ffmpeg
#: would run on unseen after a crash, beside the rerun of its step at the next start.
_DIE_WITH_PARENT = ("setpriv", "--pdeathsig", "KILL", "--") if shutil.which("setpriv") else ()


def close_playlist(directory: Path) -> bool:
    """End the live playlists left open by a crash (the full, low and audio renditions),
    so players stop waiting for more; False if the part has no playlist.

    Replaced atomically: on a full disk a playlist stays as it was (DiskFull). The
    master playlist names only playlists that were published, and stays as it is.
    """
    directory = Path(directory)
    for name, source in VARIANT_PLAYLISTS.items():
        playlist = directory / name
        if playlist.exists():
            text = playlist.read_text()
            if ENDLIST not in text and text.startswith("#EXTM3U"):
                try:
                    write_atomically(playlist, text.rstrip("\n") + f"\n{ENDLIST}\n")
                except OSError as exc:
                    if is_disk_full(exc):
                        raise DiskFull(DISK_FULL) from exc
                    raise
        (directory / source).unlink(missing_ok=True)  # the writer's copy
    return (directory / PLAYLIST).exists()


async def faststart_mp4(
    directory: Path, duration: float | None, progress: Progress | None = None
) -> Path:
    """The downloadable MP4: the fragmented recording remuxed, index first (no re-encoding)."""
    directory = Path(directory)
    source, output = directory / RAW_MP4, directory / MP4
    if not source.exists():
        raise StepFailed("the raw recording is missing")
    if _fresh(output, source):
        return output
    segments = _segments(directory)
    if segments and _cut_short(source) and not await duration_of(source):
        # A write that failed on a full disk can cut the MP4 before anything playable
        # reached it (ffmpeg buffers it) while the live HLS has segments: remux those.
        logger.info(
            "%s: %s was cut short: the MP4 is made from the live segments", directory, RAW_MP4
        )
        size = sum(path.stat().st_size for path in segments)
        await _produce(
            output,
            lambda tmp: (
                ffmpeg.input(str(directory / PLAYLIST))
                .output(
                    str(tmp), c="copy", movflags="+faststart", f="mp4", **{"bsf:a": "aac_adtstoasc"}
                )
                .compile()
            ),
            duration,
            progress,
            needs=size,
        )
        return output
    # a remux is the size of its source (faststart moves the index in place)
    await _produce(
        output,
        lambda tmp: (
            ffmpeg.input(str(source), err_detect="ignore_err")
            .output(str(tmp), c="copy", movflags="+faststart", f="mp4")
            .compile()
        ),
        duration,
        progress,
        needs=source.stat().st_size,
    )
    return output


#: the top-level boxes of a fragmented MP4 (anything else: a damaged file, not a cut one)
_MP4_BOXES = {b"ftyp", b"moov", b"moof", b"mdat", b"free", b"skip", b"styp", b"sidx", b"mfra"}


def _cut_short(path: Path) -> bool:
    """Whether ``path`` is an MP4 whose writing stopped (whole boxes, the last maybe cut),
    rather than a file damaged some other way."""
    end = path.stat().st_size
    offset = 0
    with open(path, "rb") as file:
        while offset < end:
            file.seek(offset)
            header = file.read(16)
            if len(header) < 8:
                return True  # cut inside a box's header
            size, kind = struct.unpack(">I4s", header[:8])
            if kind not in _MP4_BOXES or (offset == 0 and kind != b"ftyp"):
                return False
            if size == 1:  # a 64-bit size follows
                if len(header) < 16:
                    return True
                size = struct.unpack(">Q", header[8:16])[0]
            if size < 8:
                return False  # 0 ("to the end") is never written by the fragmenting muxer
            offset += size
    return True


def _listed(directory: Path) -> list[Path]:
    """The HLS segments the part's playlist lists (none if it cannot be read)."""
    try:
        text = (directory / PLAYLIST).read_text()
    except (OSError, UnicodeDecodeError):
        return []
    return [directory / Path(line).name for line in text.splitlines() if line and line[0] != "#"]


def _segments(directory: Path) -> list[Path]:
    """The listed HLS segments that exist."""
    return [path for path in _listed(directory) if path.is_file()]


async def audio_only(
    directory: Path, duration: float | None, progress: Progress | None = None
) -> Path | None:
    """A small AAC-only file (no re-encoding) to share in chat groups; None without audio."""
    directory = Path(directory)
    source, output = directory / MP4, directory / AUDIO
    if not await has_stream(source, "audio"):
        return None
    if not _fresh(output, source):
        # at most a third of the MP4 is its sound (64 kbit/s AAC beside the video)
        await _produce(
            output,
            lambda tmp: (
                ffmpeg.input(str(source)).output(str(tmp), vn=None, c="copy", f="ipod").compile()
            ),
            duration,
            progress,
            needs=source.stat().st_size // 3,
        )
    return output


async def thumbnails(
    directory: Path, moments: dict[str, float], progress: Progress | None = None
) -> dict[str, Path]:
    """One small JPEG per ``moments`` key (an agenda item), taken at its time in seconds."""
    directory = Path(directory)
    source = directory / MP4
    if not moments or not await has_stream(source, "video"):
        return {}
    made = {}
    for n, (key, at) in enumerate(moments.items()):
        output = directory / thumbnail_name(key)
        if not _fresh(output, source):

            def build(tmp: Path, at: float = at) -> list[str]:
                return (
                    ffmpeg.input(str(source), ss=max(0.0, at))
                    .output(str(tmp), vframes=1, vf="scale=320:-2", f="image2")
                    .compile()
                )

            await _produce(
                output,
                build,
                None,
                None,
                needs=64 * 1024,
                media=False,
            )
        made[key] = output
        if progress:
            progress((n + 1) / len(moments))
    return made


async def probe(path: Path) -> dict:
    """ffprobe's JSON for ``path`` (format and streams)."""
    code, out, err = await _exec(
        ["ffprobe", "-v", "error", "-show_format", "-show_streams", "-of", "json", str(path)]
    )
    if code != 0:
        raise StepFailed(err.decode(errors="replace").strip() or "ffprobe failed")
    return json.loads(out or b"{}")


async def duration_of(path: Path) -> float | None:
    try:
        value = (await probe(path)).get("format", {}).get("duration")
    except StepFailed:
        return None
    return round(float(value), 3) if value else None


async def has_stream(path: Path, kind: str) -> bool:
    if not Path(path).exists():
        return False
    try:
        streams = (await probe(path)).get("streams", [])
    except StepFailed:
        return False
    return any(s.get("codec_type") == kind for s in streams)


async def has_media(directory: Path) -> bool:
    """Whether a part's files hold anything to play: a listed segment, or a whole fragment."""
    directory = Path(directory)
    if _listed(directory):
        return True
    raw = directory / RAW_MP4
    try:
        return bool(await duration_of(raw))
    except OSError:  # no ffprobe to ask: never take a file for empty unseen
        return raw.exists() and raw.stat().st_size > 0
