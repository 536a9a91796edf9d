"""The meeting's timeline: every stored state change, numbered by a per-meeting seq."""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from ..store import Event, Meeting


async def append_event(db: AsyncSession, meeting: Meeting, type_: str, data: dict) -> int:
    """Add an event in the caller's transaction and return its seq.

    The seq comes from an atomic ``UPDATE meetings SET last_seq = last_seq + 1``:
    it locks the meeting's row until commit, so concurrent writers (several
    processes on PostgreSQL) get consecutive numbers with no gap or duplicate.
    """
    result = await db.execute(
        update(Meeting)
        .where(Meeting.id == meeting.id)
        .values(last_seq=Meeting.last_seq + 1)
        .returning(Meeting.last_seq)
    )
    seq = result.scalar_one()
    set_committed_value(meeting, "last_seq", seq)
    db.add(Event(meeting_id=meeting.id, seq=seq, type=type_, data=data))
    return seq


async def events_after(db: AsyncSession, meeting_id: int, since_seq: int) -> list[Event]:
    result = await db.exec(
        select(Event)
        .where(Event.meeting_id == meeting_id, Event.seq > since_seq)
        .order_by(Event.seq)
    )
    return list(result.all())
