"""A meeting's recording as the database knows it, and as clients see it: the replay.

The record of each part (status, post-processing steps), the replay's clock
(:func:`first_frame`: where the timeline's ``t`` counts from) and the contract's
recording object (:func:`describe`, for ``GET …/recording`` and the
``recording:status`` event). The media (files, muxing, ffmpeg) is media/'s
business; this module only keeps the record of it, so that every process and
every page sees the same status.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from media import postprocess
from media.files import AUDIO_PLAYLIST, LOW_PLAYLIST, MASTER_PLAYLIST, PLAYLIST

from ..errors import Conflict, NotFound
from ..store import Event, Meeting, Recording, pk, utcnow
from ..store.models import as_utc

RECORDING, PROCESSING, READY, INTERRUPTED, FAILED, EXPIRED = (
    "recording",
    "processing",
    "ready",
    "interrupted",
    "failed",
    "expired",
)
#: statuses whose files are complete and may be downloaded
FINISHED = (READY, INTERRUPTED)


async def parts(db: AsyncSession, meeting_id: int) -> list[Recording]:
    result = await db.exec(
        select(Recording).where(Recording.meeting_id == meeting_id).order_by(col(Recording.part))
    )
    return list(result.all())


async def get_part(db: AsyncSession, meeting_id: int, part: int) -> Recording:
    result = await db.exec(
        select(Recording).where(Recording.meeting_id == meeting_id, Recording.part == part)
    )
    recording = result.first()
    if recording is None:
        raise NotFound(
            "meeting {meeting_id} has no recording part {part}",
            params={"meeting_id": meeting_id, "part": part},
        )
    return recording


async def new_part(db: AsyncSession, meeting: Meeting) -> Recording:
    """Open the meeting's next recording part (the first, or one after a restart).

    Two processes choosing the same number meet the (meeting, part) unique
    constraint: the loser takes the next one.
    """
    meeting_id = pk(meeting)
    for _ in range(5):
        existing = await parts(db, meeting_id)
        number = (existing[-1].part + 1) if existing else 1
        recording = Recording(
            meeting_id=meeting_id, part=number, directory=f"{meeting_id}/{number}", status=RECORDING
        )
        db.add(recording)
        try:
            await db.commit()
        except IntegrityError:
            await db.rollback()
            continue
        await db.refresh(recording)
        return recording
    raise Conflict("could not number a new recording part")


# ------------------------------------------------------------------ the replay's clock


def first_frame(found: Iterable[Recording]) -> datetime | None:
    """The replay's t = 0: the first frame of the first part (in order) that has one."""
    return next((as_utc(p.started_at) for p in found if p.started_at is not None), None)


async def origin(db: AsyncSession, meeting: Meeting) -> datetime | None:
    """Where the timeline's ``t`` counts from: :func:`first_frame`.

    Before any frame is recorded, the meeting's start.
    """
    return first_frame(await parts(db, pk(meeting))) or as_utc(meeting.started_at)


# ------------------------------------------------------------------ the record


async def update(db: AsyncSession, recording_id: int, **fields: Any) -> Recording | None:
    recording = await db.get(Recording, recording_id, populate_existing=True)
    if recording is None:
        return None
    for name, value in fields.items():
        setattr(recording, name, value)
    db.add(recording)
    await db.commit()
    await db.refresh(recording)
    return recording


async def set_step(
    db: AsyncSession,
    recording_id: int,
    step: str,
    status: str,
    progress: float | None = None,
    error: str = "",
) -> Recording | None:
    recording = await db.get(Recording, recording_id, populate_existing=True)
    if recording is None:
        return None
    steps = dict(recording.steps or {})
    entry: dict[str, Any] = {
        "status": status,
        "progress": round(progress, 3) if progress is not None else None,
    }
    if error:
        entry["error"] = error[:500]
    steps[step] = entry
    recording.steps = steps
    db.add(recording)
    await db.commit()
    return recording


async def clear_step(db: AsyncSession, recording_id: int, step: str) -> Recording | None:
    """Forget a step's entry: it has not run (clients show it as waiting)."""
    recording = await db.get(Recording, recording_id, populate_existing=True)
    if recording is None or step not in (recording.steps or {}):
        return recording
    recording.steps = {name: entry for name, entry in recording.steps.items() if name != step}
    db.add(recording)
    await db.commit()
    return recording


async def unfinished(db: AsyncSession) -> list[Recording]:
    """Parts still recording or processing, as far as the database knows."""
    result = await db.exec(
        select(Recording)
        .where(col(Recording.status).in_((RECORDING, PROCESSING)))
        .order_by(col(Recording.id))
    )
    return list(result.all())


async def past_retention(db: AsyncSession, days: int) -> list[Recording]:
    """Finished or failed parts whose meeting ended more than ``days`` ago."""
    before = utcnow() - timedelta(days=days)
    result = await db.exec(
        select(Recording)
        .join(Meeting, col(Meeting.id) == col(Recording.meeting_id))
        .where(
            col(Recording.status).in_((READY, INTERRUPTED, FAILED)),
            col(Meeting.ended_at).is_not(None),
            col(Meeting.ended_at) < before,
        )
    )
    return list(result.all())


async def agenda_moments(db: AsyncSession, recording: Recording) -> dict[str, float]:
    """Seconds into this part at which each agenda item was first taken up."""
    start = as_utc(recording.started_at)
    if start is None:
        return {}
    result = await db.exec(
        select(Event)
        .where(Event.meeting_id == recording.meeting_id, Event.type == "agenda:current")
        .order_by(col(Event.seq))
    )
    moments: dict[str, float] = {}
    for event in result.all():
        item = (event.data or {}).get("item_id")
        at = (as_utc(event.at) - start).total_seconds()
        if item is None or str(item) in moments:
            continue
        if at < 0 and recording.part > 1:
            continue  # taken up before this part began: its picture is in an earlier part
        if recording.duration is None or at <= recording.duration:
            moments[str(item)] = max(0.0, round(at, 3))
    return moments


# ------------------------------------------------------------------ as clients see it


def file_url(meeting_id: int, part: int, name: str) -> str:
    return f"/recordings/{meeting_id}/{part}/{name}"


def describe(meeting_id: int, found: list[Recording], root: Path) -> dict[str, Any]:
    """The contract's recording object: part 1 at the top level, every part in ``parts``.

    ``found`` is the meeting's parts in order (at least one); ``root`` is RECORDINGS_DIR.
    """
    start = first_frame(found)
    described = [_part(p, start, root) for p in found]
    first = dict(described[0])
    return {**first, "meeting_id": meeting_id, "parts": described}


def _part(recording: Recording, start: datetime | None, root: Path) -> dict[str, Any]:
    finished = recording.status in FINISHED
    renditions = _renditions(recording, root)
    started = as_utc(recording.started_at)
    return {
        "part": recording.part,
        "status": recording.status,
        "interrupted": recording.interrupted,
        "started_at": started.isoformat(timespec="milliseconds") if started else None,
        "offset": round((started - start).total_seconds(), 3) if started and start else None,
        "duration": _duration(recording),
        "video_codec": recording.video_codec or None,
        # the master playlist (a part recorded before it existed: its only playlist)
        "hls": renditions.get("master") or renditions.get("full"),
        "renditions": {k: v for k, v in renditions.items() if k != "master"},
        "mp4": file_url(recording.meeting_id, recording.part, postprocess.MP4)
        if finished
        else None,
        "audio": file_url(recording.meeting_id, recording.part, postprocess.AUDIO)
        if finished and (recording.steps or {}).get("audio", {}).get("status") == "done"
        else None,
        "steps": recording.steps or {},
        "error": recording.error or None,
    }


def _renditions(recording: Recording, root: Path) -> dict[str, str]:
    """The part's live HLS playlists that exist: "master", "full", "low", "audio".

    Each is written once its first segment is complete (~2 s after the first
    picture; the master once each playlist it names is): a player given a URL
    earlier would only get a 404. A part with no picture has its sound in "full",
    which is then "audio" too.
    """
    if recording.started_at is None or recording.status == EXPIRED:
        return {}
    directory = root / recording.directory
    found = {}
    for key, name in (
        ("master", MASTER_PLAYLIST),
        ("full", PLAYLIST),
        ("low", LOW_PLAYLIST),
        ("audio", AUDIO_PLAYLIST),
    ):
        if (directory / name).exists():
            found[key] = file_url(recording.meeting_id, recording.part, name)
    if "master" in found and "low" in found:
        # a low rendition that failed (a full disk, its encoder) is ended and taken out of
        # the master, but its playlist stays: pinned to it, a player would play a still end
        try:
            named = LOW_PLAYLIST in (directory / MASTER_PLAYLIST).read_text()
        except OSError:
            named = False
        if not named:
            del found["low"]
    if "full" in found and "audio" not in found and not recording.video_codec:
        found["audio"] = found["full"]
    return found


def _duration(recording: Recording) -> float | None:
    started = as_utc(recording.started_at)
    if recording.status == RECORDING and started is not None:
        return round((utcnow() - started).total_seconds(), 1)
    return recording.duration
