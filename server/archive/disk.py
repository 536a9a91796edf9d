"""The recordings disk: free space, a full disk's episode, and removing a part's files.

A full recordings disk never ends a meeting and never costs what was recorded:
the recorder closes its files while they still fit, the part is kept (listed
as interrupted, with the reason), post-processing waits for space instead of
failing, and recording resumes as a new part once space is freed.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from media.files import DISK_FULL, MIN_FREE_BYTES, RESUME_FREE_BYTES, free_bytes, is_disk_full

logger = logging.getLogger(__name__)

#: a part's ``error`` when the disk filled during it, and while its processing waits
STOPPED_DISK_FULL = "the recordings disk filled up: recorded until then"
WAITING_FOR_SPACE = "post-processing waits for free space on the recordings disk"


class Disk:
    """RECORDINGS_DIR's free space, and whether it is known to be full."""

    def __init__(self, root: Path) -> None:
        self.root = root
        #: the disk is known to be full (logged once, until space is back)
        self.full = False

    def free(self) -> int:
        return free_bytes(self.root)

    def has_room(self, needed: int = MIN_FREE_BYTES) -> bool:
        try:
            return self.free() >= needed
        except OSError:
            return False

    def note_full(self, what: str) -> None:
        """Warn once per episode (not once per part, step or frame)."""
        if not self.full:
            self.full = True
            logger.warning("%s in %s: %s", DISK_FULL, self.root, what)
        else:
            logger.info("%s", what)

    def note_space(self, free: int) -> None:
        """Space was freed: the episode is over (said once)."""
        if self.full:
            logger.warning(
                "the recordings disk has space again (%s MiB free in %s): recording resumes",
                free >> 20,
                self.root,
            )
            self.full = False

    def check(self) -> str:
        """Why recordings cannot be written now; empty if they can.

        A small write, not only the free-space figure: a read-only mount or a
        quota shows too. Blocking: run it in an executor.
        """
        root = self.root
        try:
            free = free_bytes(root)
            # full: too little to record, or too little to resume a recording it stopped
            if free < MIN_FREE_BYTES or (self.full and free < RESUME_FREE_BYTES):
                return f"full ({free // 1024} KiB free)"
            probe = root / f".health-{os.getpid()}"
            try:
                with open(probe, "wb") as file:
                    file.write(b"\0" * 4096)
            finally:
                probe.unlink(missing_ok=True)
        except OSError as exc:
            if is_disk_full(exc):
                return "full"
            return f"not writable ({exc.strerror or exc})"
        return ""


def remove_media(directory: Path) -> None:
    """Remove a part's files, all but its lock (blocking: gigabytes)."""
    for path in directory.iterdir():
        if path.name != ".lock":
            path.unlink()


def remove_unplayable(directory: Path) -> None:
    """Remove a part's files that hold no media (checked by the caller), then the folder."""
    try:
        for path in directory.iterdir():
            if path.name != ".lock":
                path.unlink(missing_ok=True)
    except OSError:
        pass
    remove_empty(directory)


def remove_empty(directory: Path) -> None:
    """Remove a part's directory if only the lock file is left (best effort)."""
    try:
        for path in directory.iterdir():
            if path.name != ".lock":
                return
        (directory / ".lock").unlink(missing_ok=True)
        directory.rmdir()
    except OSError:
        pass
