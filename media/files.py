"""A recording's directory: its file names, its lock, the disk's free space, atomic writes.

The writer (:mod:`media.writer`) and post-processing (:mod:`media.postprocess`)
share these, and so does the server, which decides when a recording may start
or must stop for lack of space.
"""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path

RAW_MP4 = "raw.mp4"
PLAYLIST = "index.m3u8"
#: the playlist as ffmpeg writes it (never served): copied to PLAYLIST once complete
LIVE_PLAYLIST = ".live.m3u8"
SEGMENT_PATTERN = "seg_%05d.ts"
#: the live HLS's master playlist, naming the renditions (variant playlists) below
MASTER_PLAYLIST = "master.m3u8"
#: the sound alone: the very AAC packets of PLAYLIST's audio, in segments of their own
AUDIO_PLAYLIST = "audio.m3u8"
AUDIO_LIVE_PLAYLIST = ".audio.live.m3u8"
AUDIO_SEGMENT_PATTERN = "audio_%05d.ts"
#: the low video rendition (about 360p), encoded once per meeting
LOW_PLAYLIST = "low.m3u8"
LOW_LIVE_PLAYLIST = ".low.live.m3u8"
LOW_SEGMENT_PATTERN = "low_%05d.ts"
#: every variant playlist as published, with the name ffmpeg writes it under
VARIANT_PLAYLISTS = {
    PLAYLIST: LIVE_PLAYLIST,
    AUDIO_PLAYLIST: AUDIO_LIVE_PLAYLIST,
    LOW_PLAYLIST: LOW_LIVE_PLAYLIST,
}
LOCK_FILE = ".lock"
ENDLIST = "#EXT-X-ENDLIST"
#: a recording stops (closing its files properly) when the disk has less than this
#: left: room for the last fragment, the trailer and the final playlist
MIN_FREE_BYTES = 1 << 20
#: and starts (or resumes, as a new part) only with this much free, so that a disk
#: on the edge does not make a new part every few seconds
RESUME_FREE_BYTES = 4 << 20
DISK_FULL = "the recordings disk is full"


def free_bytes(path: Path) -> int:
    """Bytes an unprivileged writer may still use on ``path``'s file system."""
    stat = os.statvfs(path)
    return stat.f_bavail * stat.f_frsize


def is_disk_full(exc: BaseException | str) -> bool:
    """Whether ``exc`` (or a message, ffmpeg's say) says the disk or the quota is full."""
    if getattr(exc, "errno", None) in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(exc)
    return "No space left on device" in text or "Disk quota exceeded" in text


class DirectoryLock:
    """An exclusive ``flock`` on a recording directory's lock file.

    The writer holds it while it writes and post-processing while it works; the
    kernel drops it when the process dies, even by ``kill -9``, so whoever can
    take it knows nobody is writing there any more.
    """

    def __init__(self, directory: Path) -> None:
        self.path = Path(directory) / LOCK_FILE
        self._fd: int | None = None

    def acquire(self, blocking: bool = False) -> bool:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def whole_playlist(text: str, directory: Path, checked: str = "") -> bool:
    """An HLS playlist that ends with a full line and whose segments all exist, non-empty.

    Segments listed in ``checked`` (the playlist published before) are not looked at again.
    """
    if not text.startswith("#EXTM3U") or not text.endswith("\n") or "#EXTINF" not in text:
        return False
    known = set(checked.splitlines())
    for line in text.splitlines():
        if line and not line.startswith("#") and line not in known:
            try:
                if (directory / Path(line).name).stat().st_size == 0:
                    return False
            except OSError:
                return False
    return True


def write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` by ``text`` whole or not at all (a temporary file, then a rename)."""
    temporary = path.with_name(f".{path.stem}.tmp{path.suffix}")
    try:
        with open(temporary, "w") as file:
            file.write(text)
            file.flush()
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
