"""Meetings: scheduling with an agenda, and the scheduled -> live -> ended lifecycle."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from ..errors import BadRequest, Conflict, NotFound
from ..store import AgendaItem, Meeting, utcnow
from ..store.models import as_utc
from .timeline import append_event

MAX_TITLE = 200
MAX_DESCRIPTION = 4000
MAX_AGENDA_ITEMS = 50
CODE_DIGITS = 9

SCHEDULED, LIVE, ENDED = "scheduled", "live", "ended"


@dataclass(frozen=True)
class AgendaDraft:
    title: str
    description: str = ""


@dataclass
class MeetingView:
    """A meeting with its agenda, as the edges show it."""

    meeting: Meeting
    agenda: list[AgendaItem]

    def as_dict(self) -> dict:
        m = self.meeting
        return {
            "id": m.id,
            "code": m.code,
            "title": m.title,
            "status": m.status,
            "starts_at": _iso(m.starts_at),
            "started_at": _iso(m.started_at),
            "ended_at": _iso(m.ended_at),
            "allow_guests": m.allow_guests,
            "agenda": [
                {"id": a.id, "title": a.title, "description": a.description} for a in self.agenda
            ],
        }


def _iso(value: datetime | None) -> str | None:
    value = as_utc(value)
    return value.isoformat() if value else None


def check_title(title: object, what: str = "title", limit: int = MAX_TITLE) -> str:
    if not isinstance(title, str) or not title.strip():
        raise BadRequest(f"the {what} is required")
    title = title.strip()
    if len(title) > limit:
        raise BadRequest(f"the {what} must be at most {limit} characters")
    return title


def parse_agenda(raw: object) -> list[AgendaDraft]:
    """Validate the ``agenda`` list of a create request."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise BadRequest("agenda must be a list of {title, description?}")
    if len(raw) > MAX_AGENDA_ITEMS:
        raise BadRequest(f"an agenda has at most {MAX_AGENDA_ITEMS} items")
    items = []
    for index, entry in enumerate(raw, start=1):
        if not isinstance(entry, dict):
            raise BadRequest(f"agenda item {index} must be an object with a title")
        description = entry.get("description") or ""
        if not isinstance(description, str) or len(description) > MAX_DESCRIPTION:
            raise BadRequest(
                f"agenda item {index}: the description must be text of at most "
                f"{MAX_DESCRIPTION} characters"
            )
        items.append(
            AgendaDraft(check_title(entry.get("title"), f"title of agenda item {index}"),
                        description.strip())
        )
    return items


def parse_time(raw: object) -> datetime | None:
    if raw in (None, ""):
        return None
    if not isinstance(raw, str):
        raise BadRequest("starts_at must be an ISO 8601 date and time")
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError as exc:
        raise BadRequest("starts_at must be an ISO 8601 date and time") from exc
    if value.tzinfo is None:
        raise BadRequest("starts_at needs a time zone, e.g. 2026-12-01T09:00:00+08:00")
    # SQLite keeps no offset: store UTC so every backend reads back the same instant.
    return value.astimezone(UTC)


async def create_meeting(
    db: AsyncSession,
    *,
    title: str,
    agenda: list[AgendaDraft],
    starts_at: datetime | None,
    allow_guests: bool,
    created_by: int | None,
    village_id: int | None = None,
) -> MeetingView:
    meeting = Meeting(
        village_id=village_id,
        code=await _free_code(db),
        title=check_title(title),
        starts_at=starts_at,
        allow_guests=allow_guests,
        created_by=created_by,
    )
    db.add(meeting)
    await db.flush()
    items = [
        AgendaItem(meeting_id=meeting.id, position=i, title=a.title, description=a.description)
        for i, a in enumerate(agenda)
    ]
    db.add_all(items)
    await db.commit()
    return MeetingView(meeting, items)


async def _free_code(db: AsyncSession) -> str:
    for _ in range(20):
        code = "".join(secrets.choice("0123456789") for _ in range(CODE_DIGITS))
        if code[0] != "0" and await find_by_code(db, code) is None:
            return code
    raise Conflict("could not allocate a meeting code; try again")


async def get_meeting(db: AsyncSession, meeting_id: int | str) -> Meeting:
    """Fetch a meeting by id; any id that is not a known meeting is NotFound."""
    try:
        key = int(meeting_id)
    except (TypeError, ValueError):
        raise NotFound(f"no meeting {meeting_id!r}") from None
    meeting = await db.get(Meeting, key) if 0 < key < 2**63 else None
    if meeting is None:
        raise NotFound(f"no meeting {meeting_id!r}")
    return meeting


async def find_by_code(db: AsyncSession, code: str) -> Meeting | None:
    result = await db.exec(select(Meeting).where(Meeting.code == code.replace(" ", "")))
    return result.first()


async def view(db: AsyncSession, meeting: Meeting) -> MeetingView:
    result = await db.exec(
        select(AgendaItem).where(AgendaItem.meeting_id == meeting.id).order_by(AgendaItem.position)
    )
    return MeetingView(meeting, list(result.all()))


async def list_meetings(db: AsyncSession, *, village_id: int | None) -> list[Meeting]:
    """The village's meetings (or, with no village, those open to guests).

    Live first, then scheduled by start time, then the most recently ended.
    """
    query = select(Meeting)
    if village_id is None:
        query = query.where(Meeting.allow_guests == True)  # noqa: E712 (SQL expression)
    else:
        query = query.where(Meeting.village_id == village_id)
    meetings = list((await db.exec(query.order_by(Meeting.id.desc()).limit(500))).all())
    order = {LIVE: 0, SCHEDULED: 1, ENDED: 2}
    far = datetime.max.replace(tzinfo=None)

    def key(m: Meeting):
        when = as_utc(m.starts_at or m.created_at).replace(tzinfo=None)
        if m.status == ENDED:
            ended = as_utc(m.ended_at or m.created_at).replace(tzinfo=None)
            return (2, far - ended)
        return (order.get(m.status, 3), when - datetime.min)

    return sorted(meetings, key=key)


async def start_meeting(db: AsyncSession, meeting: Meeting) -> tuple[Meeting, int | None]:
    """scheduled -> live. Starting a live meeting again is harmless (the host reconnecting).

    Returns the meeting and the seq of the stored status event (None if unchanged).
    """
    if meeting.status == ENDED:
        raise Conflict("the meeting has ended and cannot be started again")
    if meeting.status == LIVE:
        return meeting, None
    meeting.status = LIVE
    meeting.started_at = utcnow()
    seq = await append_event(db, meeting, "meeting:status", {"status": LIVE})
    await db.commit()
    return meeting, seq


async def end_meeting(db: AsyncSession, meeting: Meeting) -> tuple[Meeting, int | None]:
    """live -> ended. Ending an ended meeting again is harmless."""
    if meeting.status == SCHEDULED:
        raise Conflict("the meeting has not started")
    if meeting.status == ENDED:
        return meeting, None
    meeting.status = ENDED
    meeting.ended_at = utcnow()
    seq = await append_event(db, meeting, "meeting:status", {"status": ENDED})
    await db.commit()
    return meeting, seq
