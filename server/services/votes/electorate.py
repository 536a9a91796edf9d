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


def hall_present(meeting: Meeting) -> int:
    """The hall: the count the committee entered, else the members ticked there."""
    state = meeting.room_state or {}
    in_hall = state.get("in_hall")
    return in_hall if in_hall is not None else len(state.get("hall_members", []))


def hall_voters(meeting: Meeting, eligible: set[int]) -> int:
    """The hall's voters: the count the committee entered (it includes the members
    ticked there), else the eligible members ticked there."""
    state = meeting.room_state or {}
    if state.get("in_hall") is not None:
        return hall_present(meeting)
    return len(set(state.get("hall_members", [])) & eligible)


async def attendance(
    db: AsyncSession, meeting: Meeting, eligible: set[int]
) -> tuple[int, set[int]]:
    """How many of those who may vote take part now, and which of them we know by name.

    Eligible members online (not ticked in the hall), plus the hall — its count if the
    committee entered one (a bare number: the clerk counts voters), else the eligible
    members ticked there — plus eligible members represented by a registered proxy
    (委托 counts as taking part), and never more than the eligible. Other villagers
    watching do not count.
    """
    online = (await present_members(db, meeting)) & eligible
    hall_ticked = set((meeting.room_state or {}).get("hall_members", []))
    hall = hall_voters(meeting, eligible)
    represented = (await proxied(db, pk(meeting)) & eligible) - online - hall_ticked
    known = online | (hall_ticked & eligible) | represented
    # never more than may vote: a hall count above the roll is people, not voters
    return min(len(online - hall_ticked) + hall + len(represented), len(eligible)), known
