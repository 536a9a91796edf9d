"""Recordings as the database knows them: parts, their status and post-processing steps.

The media (files, muxing, ffmpeg) is media/'s business; this module only keeps
the record of it, so that every process and every page sees the same status.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from ..errors import Conflict, NotFound
from ..store import Event, Meeting, Recording, utcnow
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
        select(Recording).where(Recording.meeting_id == meeting_id).order_by(Recording.part)
    )
    return list(result.all())


async def get_part(db: AsyncSession, meeting_id: int, part: int) -> Recording:
    result = await db.exec(
        select(Recording).where(Recording.meeting_id == meeting_id, Recording.part == part)
    )
    recording = result.first()
    if recording is None:
        raise NotFound(f"meeting {meeting_id} has no recording part {part}")
    return recording


async def new_part(db: AsyncSession, meeting: Meeting) -> Recording:
    """Open the meeting's next recording part (the first, or one after a restart).

    Two processes choosing the same number meet the (meeting, part) unique
    constraint: the loser takes the next one.
    """
    for _ in range(5):
        existing = await parts(db, meeting.id)
        number = (existing[-1].part + 1) if existing else 1
        recording = Recording(
            meeting_id=meeting.id, part=number, directory=f"{meeting.id}/{number}", status=RECORDING
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


async def origin(db: AsyncSession, meeting: Meeting) -> datetime | None:
    """Where the timeline's ``t`` counts from: the first frame of the first part that has one.

    Before any frame is recorded, the meeting's start.
    """
    result = await db.exec(
        select(Recording.started_at)
        .where(Recording.meeting_id == meeting.id, Recording.started_at.is_not(None))
        .order_by(Recording.part)
        .limit(1)
    )
    started = result.first()
    return as_utc(started) if started else as_utc(meeting.started_at)


async def update(db: AsyncSession, recording_id: int, **fields) -> Recording | None:
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
    entry = {"status": status, "progress": round(progress, 3) if progress is not None else None}
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
        .where(Recording.status.in_((RECORDING, PROCESSING)))
        .order_by(Recording.id)
    )
    return list(result.all())


async def past_retention(db: AsyncSession, days: int) -> list[Recording]:
    """Finished or failed parts whose meeting ended more than ``days`` ago."""
    before = utcnow() - timedelta(days=days)
    result = await db.exec(
        select(Recording)
        .join(Meeting, Meeting.id == Recording.meeting_id)
        .where(
            Recording.status.in_((READY, INTERRUPTED, FAILED)),
            Meeting.ended_at.is_not(None),
            Meeting.ended_at < before,
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
        .order_by(Event.seq)
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
