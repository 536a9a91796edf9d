"""The hall: its headcount (people, for the minutes) and the members present there (for votes).

Two numbers, kept apart in ``meetings.room_state``:

- ``in_hall``: how many **people** sit in the hall, a bare headcount the committee types.
  Villagers without a vote, children, guests are people too: the minutes record it, the
  vote rules never read it.
- ``hall_members``: the ids of the **members** present in the hall, ticked on the roll or
  checked in by scanning their printed member card's QR code (``{base}/i/{invite}``).
  Of these, the vote's eligible are the hall's voters (``votes.electorate``).

A headcount below the members checked in cannot be right and is refused with both
numbers. Before issue 14 (wall 3) the rules counted ``in_hall`` as voters; stored
meetings keep their ``in_hall`` as the headcount it always was on screen.
"""

from __future__ import annotations

import copy

from sqlmodel.ext.asyncio.session import AsyncSession

from ..errors import BadRequest, Conflict, Unauthorized
from ..store import Meeting, Member, pk
from .access import require_host
from .meetings import LIVE, SCHEDULED, get_meeting
from .members import INVITE
from .timeline import Recorded, change_room
from .tokens import Principal, TokenService

MAX_HALL_COUNT = 100_000
#: longer than any invite link a card carries: anything longer is not a card
MAX_CARD_TEXT = 2000


def _open(meeting: Meeting) -> None:
    if meeting.status not in (SCHEDULED, LIVE):
        raise Conflict("the meeting is over: its attendance can no longer change")


def headcount_below_members(count: int, members: int) -> BadRequest:
    return BadRequest(
        "the hall headcount {in_hall} is less than the {hall_members} members checked in "
        "there: count the people in the hall again",
        params={"in_hall": count, "hall_members": members},
        details={"in_hall": count, "hall_members": members},
    )


def hall_numbers(state: dict) -> dict:
    """What the hall's event and the snapshot say about it: both numbers, apart."""
    members = list(state.get("hall_members", []))
    return {"in_hall": state.get("in_hall"), "hall_members": members}


async def record_hall(
    db: AsyncSession,
    meeting_id: int,
    principal: Principal | None,
    payload: dict,
    *,
    via: str = "roll",
) -> Recorded | None:
    """The committee counts the people in the hall (``in_hall``) and/or ticks a member
    present there (``member_id``, ``present``); ``via`` says how (``roll`` or ``card``)."""
    count = payload.get("in_hall", ...)
    if (
        count is not ...
        and count is not None
        and (
            not isinstance(count, int)
            or isinstance(count, bool)
            or not 0 <= count <= MAX_HALL_COUNT
        )
    ):
        raise BadRequest("in_hall must be a number of people")
    tick = payload.get("member_id", ...)
    present = payload.get("present", True)
    if tick is not ...:
        if not isinstance(tick, int) or isinstance(tick, bool):
            raise BadRequest("member_id must be a member's id")
        if not isinstance(present, bool):
            raise BadRequest("present must be true or false")
    if count is ... and tick is ...:
        raise BadRequest("send in_hall, or member_id with present")
    member = await db.get(Member, tick) if tick is not ... else None

    def change(meeting: Meeting, state: dict, seq: int) -> tuple[str, dict] | None:
        host = require_host(principal, meeting)
        _open(meeting)
        before = copy.deepcopy(state)
        hall = state.setdefault("hall_members", [])
        data: dict = {}
        if tick is not ...:
            if member is None or member.village_id != meeting.village_id or member.removed_at:
                raise BadRequest(
                    "no member {member_id} in this village", params={"member_id": tick}
                )
            if present and tick not in hall:
                hall.append(tick)
            elif not present and tick in hall:
                hall.remove(tick)
            data["member"] = {"id": tick, "name": member.name, "present": present, "via": via}
        if count is not ...:
            if count is not None and count < len(hall):
                raise headcount_below_members(count, len(hall))
            state["in_hall"] = count
        if state == before:
            return None  # nothing changed
        return "attendance:hall", {**hall_numbers(state), **data, "by": host.as_dict()}

    return await change_room(db, meeting_id, change)


# ------------------------------------------------------------------ check-in by card


def card_token(text: str) -> str:
    """The invite token in what a card's QR code holds: ``{base}/i/{token}`` (or the token)."""
    text = text.strip()
    if "/i/" in text:
        text = text.rsplit("/i/", 1)[1]
    return text.split("?", 1)[0].split("#", 1)[0].strip("/")


def not_a_card() -> BadRequest:
    return BadRequest(
        "this QR code is not a member card of this village", details={"reason": "not_a_card"}
    )


async def card_member(
    db: AsyncSession, tokens: TokenService, meeting: Meeting, text: str
) -> Member:
    """The member whose current card this is, on the meeting's village roll; else why not."""
    try:
        payload = tokens.verify(card_token(text), expires=False)
    except Unauthorized:
        raise not_a_card() from None
    subject = payload.get("s")
    if payload["k"] != INVITE or not isinstance(subject, str) or not subject.isdigit():
        raise not_a_card()
    member = await db.get(Member, int(subject)) if len(subject) < 10 else None
    if member is None:
        raise not_a_card()
    if member.village_id != meeting.village_id:
        raise BadRequest(
            "this member card belongs to another village", details={"reason": "other_village"}
        )
    if member.removed_at is not None:
        raise BadRequest(
            "{name} is no longer on the village's roll",
            params={"name": member.name},
            details={"reason": "removed"},
        )
    if member.invite_version != payload.get("v"):
        raise BadRequest(
            "this card of {name} has been replaced by a newer one: scan the new card",
            params={"name": member.name},
            details={"reason": "replaced"},
        )
    return member


async def check_in(
    db: AsyncSession,
    tokens: TokenService,
    meeting_id: int,
    principal: Principal | None,
    payload: dict,
) -> tuple[dict, Recorded | None]:
    """The clerk scanned a member card at the door: tick its member present in the hall.

    Returns the member (``{"id", "name", "already"}``) and the stored change (None when
    they were checked in already).
    """
    meeting = await get_meeting(db, meeting_id)
    require_host(principal, meeting)  # before reading the card: a stranger learns nothing from it
    invite = payload.get("invite")
    if not isinstance(invite, str) or not invite.strip() or len(invite) > MAX_CARD_TEXT:
        raise not_a_card()
    member = await card_member(db, tokens, meeting, invite)
    found = {"id": pk(member), "name": member.name}  # read now: the change ends the transaction
    recorded = await record_hall(
        db, meeting_id, principal, {"member_id": found["id"], "present": True}, via="card"
    )
    return {**found, "already": recorded is None}, recorded


# ------------------------------------------------------------------ remote presence


async def record_presence(
    db: AsyncSession,
    meeting_id: int,
    principal: Principal,
    joined: bool,
    *,
    left_at: str | None = None,
) -> Recorded | None:
    """A remote participant's first device joined, or their last one left.

    ``left_at``: when the last device went (ISO 8601), a leave being recorded after its
    grace (server/attendance.py); it is stored in the leave's data.
    """

    def change(meeting: Meeting, state: dict, seq: int) -> tuple[str, dict] | None:
        if meeting.status not in (SCHEDULED, LIVE):
            return None  # replay viewers of an ended meeting are not attendance
        if principal.role != "guest" and principal.village_id != meeting.village_id:
            return None  # another village's people watch an open meeting; they are not attending
        # the floor outlives a dropped phone (it may come back); the chair revokes it
        # Who is recorded as here is kept with the room, so a rejoin after a restart (or
        # through another process) is not a second join, nor a leave without a join a
        # second leave. Meetings from before this list existed record as they did.
        attending = state.get("attending")
        if attending is not None and (principal.id in attending) == joined:
            return None
        here = set(attending or ())
        if joined:
            here.add(principal.id)
        else:
            here.discard(principal.id)
        state["attending"] = sorted(here)
        if joined:
            return "attendance:joined", {"participant": principal.as_dict()}
        left: dict[str, object] = {"participant": principal.as_dict()}
        if left_at is not None:
            left["left_at"] = left_at
        return "attendance:left", left

    return await change_room(db, meeting_id, change)
