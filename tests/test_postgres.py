"""The storage against a real PostgreSQL server (the machine starts one on 127.0.0.1:5432).

Each run works in a database of its own, dropped afterwards.
"""

from __future__ import annotations

import asyncio

from server.services import meetings
from server.services.timeline import append_event, events_after


async def test_meeting_lifecycle_on_postgres(pg_database):
    async with pg_database.session() as db:
        view = await meetings.create_meeting(
            db,
            meetings.parse_fields(
                {
                    "title": "村民代表会议",
                    "agenda": [{"title": "议题一"}],
                    "starts_at": "2026-12-01T09:00:00+08:00",
                },
                partial=False,
            ),
            created_by=None,
        )
        meeting_id = view.meeting.id
    async with pg_database.session() as db:
        meeting = await meetings.get_meeting(db, meeting_id)
        assert meeting.starts_at.isoformat() == "2026-12-01T01:00:00+00:00"
        _, seq = await meetings.start_meeting(db, meeting)
        assert seq == 1
    async with pg_database.session() as db:
        shown = (await meetings.view(db, await meetings.get_meeting(db, meeting_id))).as_dict()
        assert shown["status"] == "live" and shown["agenda"][0]["title"] == "议题一"


async def test_concurrent_events_get_consecutive_seqs_on_postgres(pg_database):
    """Twenty writers at once: seqs 1..20, no gap, no duplicate (row lock on the meeting)."""
    async with pg_database.session() as db:
        view = await meetings.create_meeting(
            db, meetings.parse_fields({"title": "t"}, partial=False), created_by=None
        )
    meeting_id = view.meeting.id

    async def write(n: int) -> int:
        async with pg_database.session() as db:
            meeting = await meetings.get_meeting(db, meeting_id)
            seq = await append_event(db, meeting, "test", {"n": n})
            await db.commit()
            return seq

    seqs = await asyncio.gather(*(write(n) for n in range(20)))
    assert sorted(seqs) == list(range(1, 21))
    async with pg_database.session() as db:
        stored = await events_after(db, meeting_id, 0)
    assert [e.seq for e in stored] == list(range(1, 21))
    assert sorted(e.data["n"] for e in stored) == list(range(20))
