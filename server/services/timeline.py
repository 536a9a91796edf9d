"""The meeting's timeline: every stored state change, numbered by a per-meeting seq."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import update
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from ..errors import NotFound
from ..store import Event, Meeting, utcnow
from ..store.models import as_utc
from . import audit


async def _next_seq(db: AsyncSession, meeting_id: int) -> tuple[int, str] | None:
    """Take the meeting's next seq and its chain's last hash.

    An atomic ``UPDATE meetings SET last_seq = last_seq + 1`` locks the meeting's
    row until commit (PostgreSQL) or takes the write lock (SQLite), so concurrent
    writers get consecutive numbers, with no gap or duplicate, and a true previous hash.
    """
    result = await db.execute(
        update(Meeting)
        .where(Meeting.id == meeting_id)
        .values(last_seq=Meeting.last_seq + 1)
        .returning(Meeting.last_seq, Meeting.last_hash)
    )
    row = result.first()
    return (row[0], row[1] or audit.GENESIS) if row else None


async def _store(db: AsyncSession, meeting_id: int, seq: int, prev_hash: str,
                 type_: str, data: dict) -> Event:
    at = utcnow()
    digest = audit.chain_hash(prev_hash, meeting_id, seq, type_, at, data)
    event = Event(meeting_id=meeting_id, seq=seq, type=type_, at=at, data=data, hash=digest)
    db.add(event)
    await db.execute(update(Meeting).where(Meeting.id == meeting_id).values(last_hash=digest))
    return event


async def append_event(db: AsyncSession, meeting: Meeting, type_: str, data: dict) -> int:
    """Add an event in the caller's transaction and return its seq."""
    seq, prev = await _next_seq(db, meeting.id)
    event = await _store(db, meeting.id, seq, prev, type_, data)
    set_committed_value(meeting, "last_seq", seq)
    set_committed_value(meeting, "last_hash", event.hash)
    return seq


async def record_event(db: AsyncSession, meeting: Meeting, type_: str, data: dict) -> Recorded:
    """An event that changes no room state, in the caller's transaction (they commit)."""
    return Recorded(await append_event(db, meeting, type_, data), type_, data, meeting)


async def events_after(db: AsyncSession, meeting_id: int, since_seq: int) -> list[Event]:
    result = await db.exec(
        select(Event)
        .where(Event.meeting_id == meeting_id, Event.seq > since_seq)
        .order_by(Event.seq)
    )
    return list(result.all())


@dataclass
class Recorded:
    """A stored event: broadcast it as ``{**data, "seq": seq}``."""

    seq: int
    type: str
    data: dict
    meeting: Meeting

    def payload(self) -> dict:
        return {**self.data, "seq": self.seq}


#: change(meeting, state, seq) mutates ``state`` and returns (type, data) to store,
#: or None for no change; raising a CunhuiError refuses it and stores nothing
RoomChange = Callable[[Meeting, dict, int], "tuple[str, dict] | None"]


async def change_room(db: AsyncSession, meeting_id: int, change: RoomChange) -> Recorded | None:
    """Change the live room's state and record the event, in one transaction.

    The seq bump comes first: it locks the meeting's row (PostgreSQL) or takes
    the write lock (SQLite), so the state read after it is the newest and no other
    writer changes it before this commit. Returns None (nothing stored) when the
    change is a no-op.
    """
    taken = await _next_seq(db, meeting_id)
    if taken is None:
        raise NotFound(f"no meeting {meeting_id}")
    seq, prev = taken
    meeting = await db.get(Meeting, meeting_id, populate_existing=True)
    state = copy.deepcopy(meeting.room_state or {})
    try:
        outcome = change(meeting, state, seq)
    except BaseException:
        await db.rollback()
        raise
    if outcome is None:
        await db.rollback()
        return None
    type_, data = outcome
    meeting.room_state = state
    db.add(meeting)
    await db.flush()
    event = await _store(db, meeting_id, seq, prev, type_, data)
    await db.commit()
    set_committed_value(meeting, "last_hash", event.hash)
    return Recorded(seq, type_, data, meeting)


async def timeline(db: AsyncSession, meeting: Meeting) -> list[dict]:
    """Every stored event in order, each with ``t``: seconds from the recording's first frame.

    Replay seeks the video to ``t``. Before anything is recorded, ``t`` counts
    from the meeting's start; events before the first frame have a negative ``t``.
    """
    from .recordings import origin

    start = await origin(db, meeting)
    out = []
    for event in await events_after(db, meeting.id, 0):
        at = as_utc(event.at)
        t = round((at - start).total_seconds(), 3) if start else None
        out.append({**event.data, "seq": event.seq, "t": t, "type": event.type,
                    "at": at.isoformat(timespec="milliseconds")})
    return out


async def verify_chain(db: AsyncSession, meeting: Meeting) -> audit.Verdict:
    """Recompute the meeting's audit chain from its stored events."""
    return audit.verify(meeting.id, await events_after(db, meeting.id, 0), meeting.last_hash)
