"""Meetings: scheduling with an agenda, and the scheduled -> live -> ended lifecycle."""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ..errors import BadRequest, Conflict, NotFound, NoticeTooShort, Phrase
from ..store import AgendaItem, Meeting, pk, utcnow
from ..store.models import as_utc
from ..store.models import utcnow as _now
from .identity import normalize_digits
from .payload import parse_id
from .timeline import append_event

MAX_TITLE = 200
MAX_DESCRIPTION = 4000
MAX_AGENDA_ITEMS = 50
CODE_DIGITS = 9
#: a meeting's start and a searched day lie in these years: far enough for any real
#: meeting, and clear of the ends where adding a day or a time zone overflows
FIRST_YEAR, LAST_YEAR = 1970, 2999

SCHEDULED, LIVE, ENDED, CANCELLED = "scheduled", "live", "ended", "cancelled"

#: 村民会议, 村民代表会议, or any other meeting the committee holds
KINDS = ("villagers_assembly", "representatives_meeting", "general")
#: Organic Law of Village Committees art. 21: a villagers' assembly is announced
#: ten days ahead, except in an emergency.
ASSEMBLY_NOTICE = timedelta(days=10)
MAX_REASON = 500
MAX_PLACE = 200


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
            "allow_guest_chat": m.allow_guest_chat,
            "kind": m.kind,
            "place": m.place,
            "notice_published_at": _iso(m.notice_published_at),
            "emergency_reason": m.emergency_reason,
            "cancel_reason": m.cancel_reason,
            "agenda": [
                {"id": a.id, "title": a.title, "description": a.description} for a in self.agenda
            ],
        }


def _iso(value: datetime | None) -> str | None:
    value = as_utc(value)
    return value.isoformat() if value else None


def check_title(title: object, what: str = "title", limit: int = MAX_TITLE) -> str:
    if not isinstance(title, str) or not title.strip():
        raise BadRequest("the {what} is required", params={"what": what})
    title = title.strip()
    if len(title) > limit:
        raise BadRequest(
            "the {what} must be at most {limit} characters", params={"what": what, "limit": limit}
        )
    return title


def parse_agenda(raw: object) -> list[AgendaDraft]:
    """Validate the ``agenda`` list of a create request."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise BadRequest("agenda must be a list of items with a title (and a description)")
    if len(raw) > MAX_AGENDA_ITEMS:
        raise BadRequest(
            "an agenda has at most {max_agenda_items} items",
            params={"max_agenda_items": MAX_AGENDA_ITEMS},
        )
    items = []
    for index, entry in enumerate(raw, start=1):
        if not isinstance(entry, dict):
            raise BadRequest(
                "agenda item {index} must be an object with a title", params={"index": index}
            )
        description = entry.get("description") or ""
        if not isinstance(description, str) or len(description) > MAX_DESCRIPTION:
            raise BadRequest(
                "agenda item {index}: the description must be text of at most "
                "{max_description} characters",
                params={"index": index, "max_description": MAX_DESCRIPTION},
            )
        items.append(
            AgendaDraft(
                check_title(entry.get("title"), f"title of agenda item {index}"),
                description.strip(),
            )
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
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise BadRequest(
            "starts_at must lie in the years {first_year} to {last_year}",
            params={"first_year": FIRST_YEAR, "last_year": LAST_YEAR},
        )
    # SQLite keeps no offset: store UTC so every backend reads back the same instant.
    return value.astimezone(UTC)


def _text(raw: object, what: str, limit: int) -> str:
    if raw is None:
        return ""
    if not isinstance(raw, str):
        raise BadRequest("{what} must be text", params={"what": what})
    if len(raw.strip()) > limit:
        raise BadRequest(
            "{what} must be at most {limit} characters", params={"what": what, "limit": limit}
        )
    return raw.strip()


def parse_fields(body: dict, *, partial: bool) -> dict:
    """Validate the meeting fields of a create (all) or edit (only those sent) request."""
    fields: dict = {}
    if not partial or "title" in body:
        fields["title"] = check_title(body.get("title"))
    if not partial or "agenda" in body:
        fields["agenda"] = parse_agenda(body.get("agenda"))
    if not partial or "starts_at" in body:
        fields["starts_at"] = parse_time(body.get("starts_at"))
    if not partial or "allow_guests" in body:
        allow = body.get("allow_guests", False)
        if not isinstance(allow, bool):
            raise BadRequest("allow_guests must be true or false")
        fields["allow_guests"] = allow
    if not partial or "allow_guest_chat" in body:
        chat = body.get("allow_guest_chat", False)
        if not isinstance(chat, bool):
            raise BadRequest("allow_guest_chat must be true or false")
        fields["allow_guest_chat"] = chat
    if not partial or "kind" in body:
        kind = body.get("kind") or "general"
        if kind not in KINDS:
            raise BadRequest("kind must be one of {kinds}", params={"kinds": ", ".join(KINDS)})
        fields["kind"] = kind
    if not partial or "place" in body:
        fields["place"] = _text(body.get("place"), "place", MAX_PLACE)
    if not partial or "emergency_reason" in body:
        fields["emergency_reason"] = _text(
            body.get("emergency_reason"), "emergency_reason", MAX_REASON
        )
    return fields


def check_notice(meeting: Meeting) -> None:
    """A villagers' assembly needs ten days' notice, or a stated emergency."""
    if meeting.kind != "villagers_assembly":
        return
    if meeting.starts_at is None:
        raise BadRequest("a villagers' assembly needs a start time (starts_at)")
    published = as_utc(meeting.notice_published_at) or _now()
    if as_utc(meeting.starts_at) - published < ASSEMBLY_NOTICE and not meeting.emergency_reason:
        raise NoticeTooShort(
            "a villagers' assembly must be announced ten days ahead (Organic Law of Village "
            "Committees art. 21); give emergency_reason for a shorter notice"
        )


async def create_meeting(
    db: AsyncSession,
    fields: dict,
    *,
    created_by: int | None,
    village_id: int | None = None,
) -> MeetingView:
    """Schedule a meeting; scheduling publishes its notice."""
    agenda = fields.get("agenda", [])
    meeting = Meeting(
        village_id=village_id,
        code=await _free_code(db),
        created_by=created_by,
        notice_published_at=_now(),
        **{k: v for k, v in fields.items() if k != "agenda"},
    )
    check_notice(meeting)
    db.add(meeting)
    await db.flush()
    items = _agenda_rows(meeting, agenda)
    db.add_all(items)
    await db.commit()
    return MeetingView(meeting, items)


def _agenda_rows(meeting: Meeting, agenda: list[AgendaDraft]) -> list[AgendaItem]:
    return [
        AgendaItem(meeting_id=pk(meeting), position=i, title=a.title, description=a.description)
        for i, a in enumerate(agenda)
    ]


async def update_meeting(db: AsyncSession, meeting: Meeting, fields: dict) -> MeetingView:
    """Edit a meeting until it starts. A new agenda replaces the old one."""
    if meeting.status != SCHEDULED:
        raise Conflict(
            "the meeting is {status}; only a scheduled meeting can be edited",
            params={"status": Phrase(meeting.status)},
        )
    for name, value in fields.items():
        if name != "agenda":
            setattr(meeting, name, value)
    check_notice(meeting)
    if "agenda" in fields:
        old = await db.exec(select(AgendaItem).where(AgendaItem.meeting_id == meeting.id))
        for item in old.all():
            await db.delete(item)
        await db.flush()
        db.add_all(_agenda_rows(meeting, fields["agenda"]))
    db.add(meeting)
    await db.commit()
    return await view(db, meeting)


async def cancel_meeting(db: AsyncSession, meeting: Meeting, reason: object) -> int:
    """scheduled -> cancelled, with the reason members are shown. Returns the event's seq."""
    reason = _text(reason, "reason", MAX_REASON)
    if not reason:
        raise BadRequest("say why the meeting is cancelled (reason)")
    if meeting.status != SCHEDULED:
        raise Conflict(
            "the meeting is {status}; only a scheduled meeting can be cancelled",
            params={"status": Phrase(meeting.status)},
        )
    meeting.status = CANCELLED
    meeting.cancel_reason = reason
    seq = await append_event(db, meeting, "meeting:status", {"status": CANCELLED, "reason": reason})
    await db.commit()
    return seq


async def _free_code(db: AsyncSession) -> str:
    for _ in range(20):
        code = "".join(secrets.choice("0123456789") for _ in range(CODE_DIGITS))
        if code[0] != "0" and await find_by_code(db, code) is None:
            return code
    raise Conflict("could not allocate a meeting code; try again")


async def get_meeting(db: AsyncSession, meeting_id: int | str) -> Meeting:
    """Fetch a meeting by id; any id that is not a known meeting is NotFound."""
    key = parse_id(meeting_id)
    meeting = await db.get(Meeting, key) if key is not None else None
    if meeting is None:
        raise NotFound("no meeting {id!r}", params={"id": str(meeting_id)[:20]})
    return meeting


async def live_meeting_ids(db: AsyncSession) -> list[int]:
    result = await db.exec(select(Meeting.id).where(Meeting.status == LIVE))
    # a stored id is never NULL: the test only narrows ``int | None`` to ``int``
    return [meeting_id for meeting_id in result.all() if meeting_id is not None]


async def find_by_code(db: AsyncSession, code: str) -> Meeting | None:
    """The meeting of a code as typed: spaces, dashes and full-width digits are fine."""
    code = normalize_digits(code)
    if not code.isdigit() or len(code) > 32:
        return None
    result = await db.exec(select(Meeting).where(Meeting.code == code))
    return result.first()


async def view(db: AsyncSession, meeting: Meeting) -> MeetingView:
    result = await db.exec(
        select(AgendaItem)
        .where(AgendaItem.meeting_id == meeting.id)
        .order_by(col(AgendaItem.position))
    )
    return MeetingView(meeting, list(result.all()))


LOCAL_ZONE: tzinfo
try:
    from zoneinfo import ZoneInfo

    #: the villages' clock: a searched date is a calendar day in China Standard Time
    LOCAL_ZONE = ZoneInfo("Asia/Shanghai")
except Exception:  # no tz database on this machine; China keeps no daylight saving time
    LOCAL_ZONE = timezone(timedelta(hours=8), "CST")

MAX_SEARCH = 200
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True)
class ListFilter:
    """What ``GET /api/meetings`` may narrow the list by (all optional)."""

    #: a case-insensitive substring of the title
    title: str = ""
    #: the meeting's start (when it started, else when it is scheduled) is at or after this
    since: datetime | None = None
    #: ... and before this (UTC; the day after the ``to`` date, at midnight local time)
    until: datetime | None = None
    statuses: tuple[str, ...] = ()


def _parse_day(raw: str, what: str) -> date:
    raw = raw.strip()
    try:
        if not _DATE.match(raw):
            raise ValueError(raw)
        day = date.fromisoformat(raw)
    except ValueError:
        raise BadRequest(
            "{what} must be a date like 2026-12-01 (YYYY-MM-DD), not {raw!r}",
            params={"what": what, "raw": raw[:40]},
        ) from None
    if not FIRST_YEAR <= day.year <= LAST_YEAR:
        raise BadRequest(
            "{what} must lie in the years {first_year} to {last_year}, not {raw}",
            params={"what": what, "first_year": FIRST_YEAR, "last_year": LAST_YEAR, "raw": raw},
        )
    return day


def _local_midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=LOCAL_ZONE).astimezone(UTC)


def parse_list_filter(query: Mapping[str, str]) -> ListFilter:
    """``q``, ``from``, ``to`` (YYYY-MM-DD, days in China Standard Time) and ``status``.

    ``status`` may list several, comma-separated. Bad values raise BadRequest.
    """
    title = (query.get("q") or "").strip()
    if len(title) > MAX_SEARCH:
        raise BadRequest(
            "q must be at most {max_search} characters", params={"max_search": MAX_SEARCH}
        )
    first = _parse_day(query["from"], "from") if query.get("from", "").strip() else None
    last = _parse_day(query["to"], "to") if query.get("to", "").strip() else None
    if first and last and first > last:
        raise BadRequest(
            "from ({first}) is after to ({last})", params={"first": first, "last": last}
        )
    statuses = tuple(s.strip() for s in (query.get("status") or "").split(",") if s.strip())
    for status in statuses:
        if status not in (SCHEDULED, LIVE, ENDED, CANCELLED):
            raise BadRequest(
                "status must be scheduled, live, ended or cancelled (comma-separated), "
                "not {status!r}",
                params={"status": status},
            )
    return ListFilter(
        title=title,
        since=_local_midnight(first) if first else None,
        until=_local_midnight(last + timedelta(days=1)) if last else None,
        statuses=statuses,
    )


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def list_meetings(
    db: AsyncSession, *, village_id: int | None, filters: ListFilter | None = None
) -> list[Meeting]:
    """The village's meetings (or, with no village, those open to guests), maybe filtered.

    Live first, then scheduled by start time, then the most recently ended.
    """
    query = select(Meeting)
    if village_id is None:
        query = query.where(Meeting.allow_guests == True)  # noqa: E712 (SQL expression)
    else:
        query = query.where(Meeting.village_id == village_id)
    if filters is not None:
        if filters.title:
            query = query.where(
                col(Meeting.title).ilike(f"%{_escape_like(filters.title)}%", escape="\\")
            )
        start = func.coalesce(Meeting.started_at, Meeting.starts_at, Meeting.created_at)
        if filters.since is not None:
            query = query.where(start >= filters.since)
        if filters.until is not None:
            query = query.where(start < filters.until)
        if filters.statuses:
            query = query.where(col(Meeting.status).in_(filters.statuses))
    meetings = list((await db.exec(query.order_by(col(Meeting.id).desc()).limit(500))).all())
    order = {LIVE: 0, SCHEDULED: 1, ENDED: 2, CANCELLED: 2}
    far = datetime.max.replace(tzinfo=None)

    def key(m: Meeting):
        when = as_utc(m.starts_at or m.created_at).replace(tzinfo=None)
        if m.status in (ENDED, CANCELLED):
            ended = as_utc(m.ended_at or m.created_at).replace(tzinfo=None)
            return (2, far - ended)
        return (order.get(m.status, 3), when - datetime.min)

    return sorted(meetings, key=key)


async def start_meeting(db: AsyncSession, meeting: Meeting) -> tuple[Meeting, int | None]:
    """scheduled -> live. Starting a live meeting again is harmless (the host reconnecting).

    Returns the meeting and the seq of the stored status event (None if unchanged).
    """
    if meeting.status in (ENDED, CANCELLED):
        raise Conflict(
            "the meeting is {status} and cannot be started",
            params={"status": Phrase(meeting.status)},
        )
    if meeting.status != LIVE:
        meeting.started_at = utcnow()
    return meeting, await _store_status(db, meeting, LIVE)


async def end_meeting(db: AsyncSession, meeting: Meeting) -> tuple[Meeting, int | None]:
    """live -> ended. Ending an ended meeting again is harmless."""
    if meeting.status in (SCHEDULED, CANCELLED):
        raise Conflict(
            "the meeting is {status}, not live", params={"status": Phrase(meeting.status)}
        )
    if meeting.status != ENDED:
        meeting.ended_at = utcnow()
    return meeting, await _store_status(db, meeting, ENDED)


async def _store_status(db: AsyncSession, meeting: Meeting, status: str) -> int | None:
    """Move the meeting to ``status`` and store the event; its seq, or None if already there."""
    if meeting.status == status:
        return None
    meeting.status = status
    seq = await append_event(db, meeting, "meeting:status", {"status": status})
    await db.commit()
    return seq
