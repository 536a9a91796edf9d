"""The live room: chat, the hand queue, the floor (the hall's attendance: ``hall``).

The room's state lives in ``meetings.room_state`` and changes only inside the
transaction of the event that records the change (``timeline.change_room``), so
every process sees one hand queue, ordered by the server's time of raising.
Functions here check the caller's role, validate the payload and say what to
store; they know no socket.io.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeGuard

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ..errors import BadRequest, Conflict, Forbidden, Muted, NotFound, Phrase, TooLong
from ..store import AgendaItem, Event, Meeting, Member
from .access import require_host
from .hall import MAX_HALL_COUNT, record_hall, record_presence  # noqa: F401  (callers use room.*)
from .meetings import LIVE, SCHEDULED
from .payload import parse_id
from .timeline import Recorded, change_room
from .tokens import Principal

MAX_CHAT = 500
CHAT_HISTORY = 200
MAX_SPEAKING_SECONDS = 3600


def floor_holder(meeting: Meeting) -> str | None:
    """The participant id (``m12``) holding the floor, or None."""
    floor = (meeting.room_state or {}).get("floor") or {}
    return floor.get("participant_id")


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def is_village_member(principal: Principal | None, meeting: Meeting) -> TypeGuard[Principal]:
    return (
        principal is not None
        and principal.role == "member"
        and principal.village_id == meeting.village_id
    )


def require_member(principal: Principal | None, meeting: Meeting) -> Principal:
    """The caller, if they are a member of the meeting's village; else Forbidden."""
    if not is_village_member(principal, meeting):
        raise Forbidden("only members of the village may do this")
    return principal


def require_live(meeting: Meeting) -> None:
    if meeting.status != LIVE:
        raise Conflict(
            "the meeting is {status}, not live", params={"status": Phrase(meeting.status)}
        )


def _participant_id(payload: dict, key: str = "participant_id") -> str:
    value = payload.get(key)
    if not isinstance(value, str) or not value or len(value) > 40:
        raise BadRequest("{key} must be a participant id", params={"key": key})
    return value


# ------------------------------------------------------------------ the snapshot


@dataclass
class Snapshot:
    """What a (re)joining client needs: the room's state and the chat's tail."""

    state: dict
    chat: list[dict]

    def as_dict(self, principal: Principal | None, meeting: Meeting) -> dict:
        state = self.state
        floor = state.get("floor")
        you = principal.id if principal else None
        out = {
            "hands": list(state.get("hands", [])),
            "floor": floor,
            "in_hall": state.get("in_hall"),
            "hall_members": list(state.get("hall_members", [])),
            "chat": self.chat,
            "muted": you in state.get("muted", []) if you else False,
            "current_item": state.get("current_item"),
        }
        if principal is not None and principal.role == "committee":
            out["muted_participants"] = list(state.get("muted", []))
        return out


async def snapshot(db: AsyncSession, meeting: Meeting) -> Snapshot:
    """The room's state and the last chat lines (deleted ones left out)."""
    rows = await db.exec(
        select(Event)
        .where(
            col(Event.meeting_id) == meeting.id,
            col(Event.type).in_(("chat:message", "chat:deleted")),
            col(Event.seq) <= meeting.last_seq,
        )  # exactly the snapshot: later lines come live
        .order_by(col(Event.seq).desc())
        .limit(CHAT_HISTORY * 2)
    )
    deleted: set[int | None] = set()
    chat: list[dict] = []
    for event in rows.all():
        if event.type == "chat:deleted":
            deleted.add(event.data.get("id"))
        elif event.seq not in deleted and len(chat) < CHAT_HISTORY:
            chat.append({**event.data, "seq": event.seq})
    chat.reverse()
    return Snapshot(copy.deepcopy(meeting.room_state or {}), chat)


# ------------------------------------------------------------------ chat


def check_chat_allowed(principal: Principal | None, meeting: Meeting, state: dict) -> Principal:
    """The caller, if they may write in the meeting's chat now; else why not."""
    if principal is None:
        raise Forbidden("join with your invite or a name to write in the chat")
    if principal.role == "guest":
        if not (meeting.allow_guests and meeting.allow_guest_chat):
            raise Forbidden("guests may not write in this meeting's chat")
    elif principal.role == "member":
        require_member(principal, meeting)
    else:
        require_host(principal, meeting)
    if meeting.status not in (SCHEDULED, LIVE):
        raise Conflict(
            "the meeting is {status}: the chat is closed",
            params={"status": Phrase(meeting.status)},
        )
    if principal.id in state.get("muted", []):
        raise Muted("the committee has muted your chat")
    return principal


def parse_chat_text(payload: dict) -> str:
    text = payload.get("text")
    if not isinstance(text, str):
        raise BadRequest("text must be text")
    if not text.strip():
        raise BadRequest("the message is empty")
    if len(text) > MAX_CHAT:
        raise TooLong("a message is at most {limit} characters", params={"limit": MAX_CHAT})
    return text


async def send_chat(
    db: AsyncSession, meeting_id: int, principal: Principal | None, payload: dict
) -> Recorded | None:
    text = parse_chat_text(payload)

    def change(meeting: Meeting, state: dict, seq: int) -> tuple[str, dict]:
        author = check_chat_allowed(principal, meeting, state)
        # stored and sent exactly as typed; pages render it as text
        return "chat:message", {
            "id": seq,
            "author": author.as_dict(),
            "text": text,
            "at": now_iso(),
        }

    return await change_room(db, meeting_id, change)


async def delete_chat(
    db: AsyncSession, meeting_id: int, principal: Principal | None, payload: dict
) -> Recorded | None:
    message_id = payload.get("id")
    if not isinstance(message_id, int) or isinstance(message_id, bool):
        raise BadRequest("id must be the chat message's id")

    async def exists() -> bool:
        found = await db.exec(
            select(Event.id).where(
                Event.meeting_id == meeting_id,
                Event.seq == message_id,
                Event.type == "chat:message",
            )
        )
        return found.first() is not None

    async def deleted() -> bool:
        found = await db.exec(
            select(Event.id).where(
                Event.meeting_id == meeting_id,
                Event.type == "chat:deleted",
                Event.data["id"].as_integer() == message_id,
            )
        )
        return found.first() is not None

    def change(meeting: Meeting, state: dict, seq: int) -> tuple[str, dict]:
        host = require_host(principal, meeting)
        return "chat:deleted", {"id": message_id, "by": host.as_dict()}

    if not await exists():
        raise NotFound("no chat message {id}", params={"id": message_id})
    if await deleted():
        return None  # already gone
    return await change_room(db, meeting_id, change)


async def mute_chat(
    db: AsyncSession, meeting_id: int, principal: Principal | None, payload: dict
) -> Recorded | None:
    target = _participant_id(payload)
    muted = payload.get("muted", True)
    if not isinstance(muted, bool):
        raise BadRequest("muted must be true or false")

    def change(meeting: Meeting, state: dict, seq: int) -> tuple[str, dict] | None:
        host = require_host(principal, meeting)
        current = state.setdefault("muted", [])
        if (target in current) == muted:
            return None  # already so
        if muted:
            current.append(target)
        else:
            current.remove(target)
        return "chat:muted", {"participant_id": target, "muted": muted, "by": host.as_dict()}

    return await change_room(db, meeting_id, change)


# ------------------------------------------------------------------ hands


def _queue_event(
    state: dict, action: str, who: dict, by: Principal | None = None
) -> tuple[str, dict]:
    data = {"queue": list(state.get("hands", [])), "action": action, "participant": who}
    if by is not None:
        data["by"] = by.as_dict()
    return "hand:queue", data


async def raise_hand(
    db: AsyncSession, meeting_id: int, principal: Principal | None
) -> Recorded | None:
    def change(meeting: Meeting, state: dict, seq: int) -> tuple[str, dict] | None:
        member = require_member(principal, meeting)
        require_live(meeting)
        hands = state.setdefault("hands", [])
        if any(h["participant_id"] == member.id for h in hands):
            return None  # already in the queue: keep the place
        hands.append({"participant_id": member.id, "name": member.name, "since": now_iso()})
        return _queue_event(state, "raise", member.as_dict())

    return await change_room(db, meeting_id, change)


async def lower_hand(
    db: AsyncSession, meeting_id: int, principal: Principal | None, payload: dict
) -> Recorded | None:
    """A member lowers their own hand; the committee may lower anyone's (``participant_id``)."""
    target = payload.get("participant_id")

    def change(meeting: Meeting, state: dict, seq: int) -> tuple[str, dict] | None:
        nonlocal target
        by = None
        if target is None or (principal is not None and target == principal.id):
            target = require_member(principal, meeting).id
        else:
            target = _participant_id(payload)
            by = require_host(principal, meeting)
        hands = state.setdefault("hands", [])
        lowered = next((h for h in hands if h["participant_id"] == target), None)
        if lowered is None:
            return None
        hands.remove(lowered)
        who = {"id": target, "name": lowered["name"], "role": "member"}
        return _queue_event(state, "lower", who, by)

    return await change_room(db, meeting_id, change)


# ------------------------------------------------------------------ floor


def _seconds_between(since: str, until: datetime) -> float:
    return round((until - datetime.fromisoformat(since)).total_seconds(), 1)


def _end_floor(state: dict, reason: str) -> dict | None:
    floor = state.get("floor")
    if not floor:
        return None
    state["floor"] = None
    return {
        "participant_id": floor["participant_id"],
        "name": floor["name"],
        "seconds": _seconds_between(floor["since"], datetime.now(UTC)),
        "reason": reason,
    }


def _floor_event(state: dict, ended: dict | None, by: Principal | None) -> tuple[str, dict]:
    floor = state.get("floor") or {}
    data = {
        "participant_id": floor.get("participant_id"),
        "name": floor.get("name"),
        "since": floor.get("since"),
        "until": floor.get("until"),
    }
    if ended:
        data["ended"] = ended
    if by is not None:
        data["by"] = by.as_dict()
    return "floor:changed", data


async def grant_floor(
    db: AsyncSession, meeting_id: int, principal: Principal | None, payload: dict
) -> Recorded | None:
    target = _participant_id(payload)
    seconds = payload.get("seconds")
    if seconds is not None and (
        not isinstance(seconds, int)
        or isinstance(seconds, bool)
        or not 1 <= seconds <= MAX_SPEAKING_SECONDS
    ):
        raise BadRequest(
            "seconds must be a whole number from 1 to {limit}",
            params={"limit": MAX_SPEAKING_SECONDS},
        )
    member_id = parse_id(target[1:]) if target.startswith("m") else None
    if member_id is None:  # an id no row can have (e.g. past 2**31) is no member either
        raise BadRequest("the floor goes to a member of the village")
    member = await db.get(Member, member_id)

    def change(meeting: Meeting, state: dict, seq: int) -> tuple[str, dict] | None:
        host = require_host(principal, meeting)
        require_live(meeting)
        if member is None or member.village_id != meeting.village_id or member.removed_at:
            raise BadRequest("the floor goes to a member of the village")
        floor = state.get("floor") or {}
        if floor.get("participant_id") == target and seconds is None and floor.get("until") is None:
            return None  # they already hold it, with no time limit
        ended = _end_floor(state, "replaced")
        since = datetime.now(UTC)
        until = since + timedelta(seconds=seconds) if seconds else None
        state["floor"] = {
            "participant_id": target,
            "name": member.name,
            "since": since.isoformat(timespec="milliseconds"),
            "until": until.isoformat(timespec="milliseconds") if until else None,
        }
        # given the floor, their hand comes down: the event carries the new queue
        state["hands"] = [h for h in state.get("hands", []) if h["participant_id"] != target]
        kind, data = _floor_event(state, ended, host)
        return kind, {**data, "queue": list(state["hands"])}

    return await change_room(db, meeting_id, change)


async def revoke_floor(
    db: AsyncSession,
    meeting_id: int,
    principal: Principal | None,
    *,
    reason: str = "revoked",
    only_since: str | None = None,
    by_server: bool = False,
    only_holder: str | None = None,
) -> Recorded | None:
    """End the floor: the chair revokes it, or (``by_server``) its time ran out, or
    (``only_holder``) the holder's sign-in was revoked."""

    def change(meeting: Meeting, state: dict, seq: int) -> tuple[str, dict] | None:
        if not by_server:
            require_host(principal, meeting)
        floor = state.get("floor")
        if not floor or (only_since is not None and floor.get("since") != only_since):
            return None
        if only_holder is not None and floor.get("participant_id") != only_holder:
            return None
        return _floor_event(state, _end_floor(state, reason), None if by_server else principal)

    return await change_room(db, meeting_id, change)


# ------------------------------------------------------------------ the agenda


async def goto_item(
    db: AsyncSession, meeting_id: int, principal: Principal | None, payload: dict
) -> Recorded | None:
    item_id = payload.get("item_id")
    if item_id is not None and (not isinstance(item_id, int) or isinstance(item_id, bool)):
        raise BadRequest("item_id must be an agenda item's id (or null)")
    item = await db.get(AgendaItem, item_id) if item_id is not None else None

    def change(meeting: Meeting, state: dict, seq: int) -> tuple[str, dict] | None:
        host = require_host(principal, meeting)
        require_live(meeting)
        if item_id is not None and (item is None or item.meeting_id != meeting.id):
            raise BadRequest("no agenda item {id} in this meeting", params={"id": item_id})
        if state.get("current_item") == item_id:
            return None
        state["current_item"] = item_id
        return "agenda:current", {
            "item_id": item_id,
            "title": item.title if item else None,
            "by": host.as_dict(),
        }

    return await change_room(db, meeting_id, change)
