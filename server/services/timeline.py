"""The meeting's timeline: every stored state change, numbered by a per-meeting seq."""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Row, Select, Text, cast, func, or_, update
from sqlalchemy import select as select_rows
from sqlalchemy.orm import aliased
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ..errors import NotFound
from ..store import Event, Meeting, pk, utcnow
from ..store.models import as_utc
from . import audit
from .replays import origin

#: the most events one timeline request returns (``GET .../timeline?after=&limit=``)
MAX_PAGE = 2000
#: events per query when a whole record is walked (minutes, audit): the rows of one
#: chunk are read on the event loop, so this bounds how long a long record holds it
WALK_CHUNK = 500


async def _next_seq(db: AsyncSession, meeting_id: int) -> tuple[int, str]:
    """Take the meeting's next seq and its chain's last hash.

    An atomic ``UPDATE meetings SET last_seq = last_seq + 1`` locks the meeting's
    row until commit (PostgreSQL) or takes the write lock (SQLite), so concurrent
    writers get consecutive numbers, with no gap or duplicate, and a true previous hash.
    """
    result = await db.execute(
        update(Meeting)
        .where(col(Meeting.id) == meeting_id)
        .values(last_seq=col(Meeting.last_seq) + 1)
        .returning(col(Meeting.last_seq), col(Meeting.last_hash))
    )
    row = result.first()
    if row is None:
        raise NotFound("no meeting {meeting_id}", params={"meeting_id": meeting_id})
    return row[0], row[1] or audit.GENESIS


async def _store(
    db: AsyncSession, meeting_id: int, seq: int, prev_hash: str, type_: str, data: dict
) -> Event:
    at = utcnow()
    digest = audit.chain_hash(prev_hash, meeting_id, seq, type_, at, data)
    event = Event(meeting_id=meeting_id, seq=seq, type=type_, at=at, data=data, hash=digest)
    db.add(event)
    await db.execute(update(Meeting).where(col(Meeting.id) == meeting_id).values(last_hash=digest))
    return event


async def append_event(db: AsyncSession, meeting: Meeting, type_: str, data: dict) -> int:
    """Add an event in the caller's transaction and return its seq."""
    seq, prev = await _next_seq(db, pk(meeting))
    event = await _store(db, pk(meeting), seq, prev, type_, data)
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
        .order_by(col(Event.seq))
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
    seq, prev = await _next_seq(db, meeting_id)
    meeting = await db.get(Meeting, meeting_id, populate_existing=True)
    assert meeting is not None, "the seq bump above found and locked its row"
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
    drop_deleted_chat: bool = False,
) -> Select[int, str, datetime, str]:
    """The events after ``after`` in seq order, with ``data`` as its stored JSON text.

    ``drop_deleted_chat``: no chat line the committee deleted (its ``chat:deleted`` stays).

    The text is decoded with the rest of the CPU work in a thread (:func:`_as_events`),
    not while the rows are read on the event loop.
    """
    query = select_rows(
        col(Event.seq), col(Event.type), col(Event.at), cast(col(Event.data), Text)
    ).where(col(Event.meeting_id) == meeting_id, col(Event.seq) > after)
    if types:
        query = query.where(col(Event.type).in_(tuple(types)))
    if hidden:
        query = query.where(col(Event.type).not_in(tuple(hidden)))
    if drop_deleted_chat:
        deletion = aliased(Event)
        deleted = select_rows(col(deletion.data)["id"].as_integer()).where(
            col(deletion.meeting_id) == meeting_id,
            col(deletion.type) == "chat:deleted",
            col(deletion.data)["id"].as_integer().is_not(None),
        )
        query = query.where(or_(col(Event.type) != "chat:message", col(Event.seq).not_in(deleted)))
    return query.order_by(col(Event.seq)).limit(limit)


def _as_events(rows: Sequence[Row[int, str, datetime, str]], start: datetime | None) -> list[dict]:
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
    """At most ``limit`` (≤ MAX_PAGE) events after seq ``after``, leaving out ``hidden`` types
    and the chat lines the committee deleted (as the room's snapshot does).

    Each event has ``t``: seconds from the recording's first frame. Replay seeks
    the video to ``t``. Before anything is recorded, ``t`` counts from the
    meeting's start; events before the first frame have a negative ``t``.
    """
    limit = max(1, min(limit, MAX_PAGE))
    start = await origin(db, meeting)
    query = _rows(pk(meeting), after, limit + 1, hidden=hidden, drop_deleted_chat=True)
    rows = (await db.execute(query)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    events = await asyncio.to_thread(_as_events, rows, start)
    return Page(events, rows[-1][0] if rows else after, more)


async def walk(
    db: AsyncSession, meeting: Meeting, *, types: Iterable[str] = (), chunk: int = WALK_CHUNK
) -> AsyncIterator[list[dict]]:
    """The whole timeline (only ``types``, if given), as entries like a page's, in chunks."""
    start = await origin(db, meeting)
    after = 0
    while True:
        rows = (await db.execute(_rows(pk(meeting), after, chunk, types=types))).all()
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
            select(Meeting.last_seq, Meeting.last_hash).where(col(Meeting.id) == meeting.id)
        )
    ).one()
    check = audit.ChainCheck(pk(meeting))
    after = 0
    while after < last_seq:
        rows = (
            await db.execute(
                select_rows(
                    col(Event.seq),
                    col(Event.type),
                    col(Event.at),
                    cast(col(Event.data), Text),
                    col(Event.hash),
                )
                .where(
                    col(Event.meeting_id) == meeting.id,
                    col(Event.seq) > after,
                    col(Event.seq) <= last_seq,
                )
                .order_by(col(Event.seq))
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
                    col(Event.meeting_id) == meeting.id, col(Event.seq) > last_seq
                )
            )
        ).scalar()
        if beyond is not None:
            # read after the events: a live meeting's newer entry is counted by now
            counted = (
                await db.execute(select(Meeting.last_seq).where(col(Meeting.id) == meeting.id))
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
