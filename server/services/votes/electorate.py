"""Who may vote in a vote (frozen at open), and who of them takes part now."""

from __future__ import annotations

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ...store import Event, Meeting, Member, pk, utcnow
from .. import rules
from .proxies import proxied


def _adult(member: Member, year: int) -> bool:
    return member.birth_year is None or year - member.birth_year >= 18


async def eligible_members(db: AsyncSession, meeting: Meeting, rule: rules.Rule) -> list[Member]:
    """Who may vote: adults for a villagers' assembly, representatives for their meeting."""
    roll = (
        await db.exec(
            select(Member).where(
                col(Member.village_id) == meeting.village_id,
                col(Member.removed_at).is_(None),
            )
        )
    ).all()
    year = utcnow().year
    if rule.profile == rules.REPRESENTATIVES:
        return [m for m in roll if m.representative]
    if rule.profile == rules.VILLAGERS_ASSEMBLY:
        return [m for m in roll if _adult(m, year)]
    return list(roll)


async def present_members(db: AsyncSession, meeting: Meeting) -> set[int]:
    """Members attending now: connected remotely (by the timeline), or ticked in the hall."""
    rows = await db.exec(
        select(Event.type, Event.data)
        .where(
            col(Event.meeting_id) == meeting.id,
            col(Event.type).in_(("attendance:joined", "attendance:left")),
        )
        .order_by(col(Event.seq))
    )
    online: set[int] = set()
    for type_, data in rows.all():
        pid = (data.get("participant") or {}).get("id", "")
        if not pid.startswith("m"):
            continue
        (online.add if type_ == "attendance:joined" else online.discard)(int(pid[1:]))
    hall = set((meeting.room_state or {}).get("hall_members", []))
    return online | hall


def hall_headcount(meeting: Meeting) -> int | None:
    """The people in the hall, as the committee counted them: for the minutes only.

    Villagers without a vote, children and guests sit in the hall too; no rule reads it.
    """
    return (meeting.room_state or {}).get("in_hall")


def hall_present(meeting: Meeting) -> int:
    """The members present in the hall: ticked on the roll or checked in by their card."""
    return len(set((meeting.room_state or {}).get("hall_members", [])))


def hall_voters(meeting: Meeting, eligible: set[int]) -> int:
    """The hall's voters: the eligible members ticked or checked in there.

    The headcount (``in_hall``) never counts: people are not voters.
    """
    return len(set((meeting.room_state or {}).get("hall_members", [])) & eligible)


async def attendance(
    db: AsyncSession, meeting: Meeting, eligible: set[int]
) -> tuple[int, set[int]]:
    """How many of those who may vote take part now, and which of them.

    Eligible members online or present in the hall (ticked on the roll or checked in
    by their card), plus eligible members represented by a registered proxy (委托
    counts as taking part), never more than the eligible. The hall's headcount of
    people, other villagers watching, guests: none of them count.
    """
    online = (await present_members(db, meeting)) & eligible  # the hall's members included
    represented = (await proxied(db, pk(meeting)) & eligible) - online
    known = online | represented
    return min(len(known), len(eligible)), known
