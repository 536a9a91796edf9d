"""The meeting's timeline: every stored state change, numbered by a per-meeting seq."""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass

from sqlalchemy import Text, cast, func, update
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from ..errors import NotFound
from ..store import Event, Meeting, utcnow
from ..store.models import as_utc
from . import audit

#: the most events one timeline request returns (``GET .../timeline?after=&limit=``)
MAX_PAGE = 2000
#: events per query when a whole record is walked (minutes, audit): the rows of one
#: chunk are read on the event loop, so this bounds how long a long record holds it
WALK_CHUNK = 500


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


async def _store(
    db: AsyncSession, meeting_id: int, seq: int, prev_hash: str, type_: str, data: dict
) -> Event:
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


async def events_after(
    db: AsyncSession, meeting_id: int, since_seq: int, limit: int | None = None
) -> list[Event]:
    query = (
        select(Event)
        .where(Event.meeting_id == meeting_id, Event.seq > since_seq)
        .order_by(Event.seq)
    )
    if limit is not None:
        query = query.limit(limit)
    result = await db.exec(query)
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


def _rows(
    meeting_id: int,
    after: int,
    limit: int,
    *,
    types: Iterable[str] = (),
    hidden: Iterable[str] = (),
):
    """The events after ``after`` in seq order, with ``data`` as its stored JSON text.

    The text is decoded with the rest of the CPU work in a thread (:func:`_as_events`),
    not while the rows are read on the event loop.
    """
    query = select(Event.seq, Event.type, Event.at, cast(Event.data, Text)).where(
        Event.meeting_id == meeting_id, Event.seq > after
    )
    if types:
        query = query.where(Event.type.in_(tuple(types)))
    if hidden:
        query = query.where(Event.type.not_in(tuple(hidden)))
    return query.order_by(Event.seq).limit(limit)


def _as_events(rows, start) -> list[dict]:
    """Timeline entries from :func:`_rows`' rows (CPU only: runs in a thread)."""
    out = []
    for seq, type_, at, data in rows:
        at = as_utc(at)
        t = round((at - start).total_seconds(), 3) if start else None
        out.append(
            {
                **json.loads(data),
                "seq": seq,
                "t": t,
                "type": type_,
                "at": at.isoformat(timespec="milliseconds"),
            }
        )
    return out


@dataclass
class Page:
    """One page of a timeline: ask for the next with ``after=next_after`` while ``more``."""

    events: list[dict]
    next_after: int
    more: bool

    def as_dict(self) -> dict:
        return {"events": self.events, "next_after": self.next_after, "more": self.more}


async def timeline_page(
    db: AsyncSession,
    meeting: Meeting,
    *,
    after: int = 0,
    limit: int = MAX_PAGE,
    hidden: Iterable[str] = (),
) -> Page:
    """At most ``limit`` (≤ MAX_PAGE) events after seq ``after``, leaving out ``hidden`` types.

    Each event has ``t``: seconds from the recording's first frame. Replay seeks
    the video to ``t``. Before anything is recorded, ``t`` counts from the
    meeting's start; events before the first frame have a negative ``t``.
    """
    from .recordings import origin

    limit = max(1, min(limit, MAX_PAGE))
    start = await origin(db, meeting)
    rows = (await db.execute(_rows(meeting.id, after, limit + 1, hidden=hidden))).all()
    more = len(rows) > limit
    rows = rows[:limit]
    events = await asyncio.to_thread(_as_events, rows, start)
    return Page(events, rows[-1][0] if rows else after, more)


async def walk(
    db: AsyncSession, meeting: Meeting, *, types: Iterable[str] = (), chunk: int = WALK_CHUNK
) -> AsyncIterator[list[dict]]:
    """The whole timeline (only ``types``, if given), as entries like a page's, in chunks."""
    from .recordings import origin

    start = await origin(db, meeting)
    after = 0
    while True:
        rows = (await db.execute(_rows(meeting.id, after, chunk, types=types))).all()
        if not rows:
            return
        yield await asyncio.to_thread(_as_events, rows, start)
        if len(rows) < chunk:
            return
        after = rows[-1][0]


async def verify_chain(
    db: AsyncSession, meeting: Meeting, *, chunk: int = WALK_CHUNK
) -> audit.Verdict:
    """Recompute the meeting's audit chain from its stored events.

    Read in chunks, each hashed in a thread, so a record of 40,000 events does not
    hold the event loop. The chain is checked up to the meeting's newest entry as
    read first (a live meeting's later events are for the next check); an event
    stored beyond the entries the meeting counts is found as tampering.
    """
    last_seq, digest = (
        await db.execute(
            select(Meeting.last_seq, Meeting.last_hash).where(Meeting.id == meeting.id)
        )
    ).one()
    check = audit.ChainCheck(meeting.id)
    after = 0
    while after < last_seq:
        rows = (
            await db.execute(
                select(Event.seq, Event.type, Event.at, cast(Event.data, Text), Event.hash)
                .where(Event.meeting_id == meeting.id, Event.seq > after, Event.seq <= last_seq)
                .order_by(Event.seq)
                .limit(chunk)
            )
        ).all()
        if not rows or not await asyncio.to_thread(check.feed, rows):
            break
        after = rows[-1][0]
    verdict = check.verdict(digest or audit.GENESIS)
    if verdict.ok:
        beyond = (
            await db.execute(
                select(func.max(Event.seq)).where(
                    Event.meeting_id == meeting.id, Event.seq > last_seq
                )
            )
        ).scalar()
        if beyond is not None:
            # read after the events: a live meeting's newer entry is counted by now
            counted = (
                await db.execute(select(Meeting.last_seq).where(Meeting.id == meeting.id))
            ).scalar_one()
            if beyond > counted:
                return audit.Verdict(
                    False,
                    verdict.events,
                    verdict.digest,
                    counted + 1,
                    f"event {beyond} is stored after the meeting's last "
                    f"entry ({counted}): events were added",
                )
    return verdict
