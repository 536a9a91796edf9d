"""Suggestions: members comment on a meeting or an agenda item; the committee answers.

Members post before and during the meeting; each suggestion and each answer is a
stored event on the meeting's timeline (and its audit chain), so the minutes and
the replay show them.
"""

from __future__ import annotations

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ..errors import BadRequest, Conflict, Forbidden, NotFound, Phrase, TooLong
from ..store import AgendaItem, Meeting, Suggestion, pk, utcnow
from .meetings import CANCELLED, ENDED
from .room import is_village_member, require_host
from .timeline import Recorded, record_event
from .tokens import Principal, member_principal_id

MAX_TEXT = 2000
ANSWERS = ("adopted", "answered", "not_adopted")


def suggestion_dict(s: Suggestion) -> dict:
    return {
        "id": s.id,
        "item_id": s.item_id,
        "author": {"id": member_principal_id(s.member_id), "name": s.author},
        "text": s.text,
        "created_at": s.created_at.isoformat(timespec="seconds"),
        "status": s.status,
        "reply": s.reply,
        "replied_at": s.replied_at.isoformat(timespec="seconds") if s.replied_at else None,
    }


def _text(value: object, what: str, required: bool) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise BadRequest("{what} must be text", params={"what": what})
    value = value.strip()
    if required and not value:
        raise BadRequest("{what} is empty", params={"what": what})
    if len(value) > MAX_TEXT:
        raise TooLong(
            "{what} must be at most {max_text} characters",
            params={"what": what, "max_text": MAX_TEXT},
        )
    return value


async def post(
    db: AsyncSession, meeting: Meeting, principal: Principal | None, body: dict
) -> Recorded:
    if not is_village_member(principal, meeting):
        raise Forbidden("only members of the village make suggestions")
    text = _text(body.get("text"), "text", required=True)
    item_id = body.get("item_id")
    if item_id is not None:
        item = await db.get(AgendaItem, item_id) if isinstance(item_id, int) else None
        if item is None or item.meeting_id != meeting.id:
            raise BadRequest(
                "no agenda item {item_id!r} in this meeting", params={"item_id": item_id}
            )
    if meeting.status in (ENDED, CANCELLED):
        raise Conflict(
            "the meeting is {status}: suggestions are closed",
            params={"status": Phrase(meeting.status)},
        )
    suggestion = Suggestion(
        meeting_id=pk(meeting),
        item_id=item_id,
        member_id=principal.member_id,
        author=principal.name,
        text=text,
    )
    db.add(suggestion)
    await db.flush()

    recorded = await record_event(db, meeting, "suggestion:posted", suggestion_dict(suggestion))
    await db.commit()
    return recorded


async def answer(
    db: AsyncSession, meeting: Meeting, principal: Principal | None, suggestion_id: int, body: dict
) -> Recorded:
    require_host(principal, meeting)
    assert principal is not None, "require_host refuses a caller with no principal"
    status = body.get("status")
    if status not in ANSWERS:
        raise BadRequest("status must be one of {answers}", params={"answers": ", ".join(ANSWERS)})
    reply = _text(body.get("reply"), "reply", required=False)
    suggestion = await db.get(Suggestion, suggestion_id)
    if suggestion is None or suggestion.meeting_id != meeting.id:
        raise NotFound("no suggestion {suggestion_id}", params={"suggestion_id": suggestion_id})
    suggestion.status, suggestion.reply, suggestion.replied_at = status, reply, utcnow()
    db.add(suggestion)
    await db.flush()

    recorded = await record_event(
        db,
        meeting,
        "suggestion:answered",
        {**suggestion_dict(suggestion), "by": principal.as_dict()},
    )
    await db.commit()
    return recorded


async def listed(db: AsyncSession, meeting_id: int) -> list[Suggestion]:
    rows = await db.exec(
        select(Suggestion).where(Suggestion.meeting_id == meeting_id).order_by(col(Suggestion.id))
    )
    return list(rows.all())
