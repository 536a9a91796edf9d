"""Proxies (委托投票): a member absent from the meeting gives their vote to another."""

from __future__ import annotations

from typing import TypeGuard

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ...errors import BadRequest, Conflict, Phrase
from ...store import Meeting, Member, Proxy, pk
from ..meetings import LIVE
from ..room import require_host
from ..timeline import Recorded, record_event
from ..tokens import Principal


async def proxied(db: AsyncSession, meeting_id: int) -> set[int]:
    """Members represented by a proxy: they count as present (委托 is taking part)."""
    rows = await db.exec(select(Proxy.member_id).where(col(Proxy.meeting_id) == meeting_id))
    return set(rows.all())


async def register_proxy(
    db: AsyncSession, meeting: Meeting, principal: Principal | None, body: dict
) -> Recorded:
    """The committee records that ``proxy_id`` votes for ``member_id`` in this meeting."""
    host = require_host(principal, meeting)
    member_id, proxy_id = body.get("member_id"), body.get("proxy_id")
    if not (_is_id(member_id) and _is_id(proxy_id)):
        raise BadRequest("member_id and proxy_id must be members' ids")
    if member_id == proxy_id:
        raise BadRequest("a member cannot be their own proxy")
    people = {}
    for key in (member_id, proxy_id):
        person = await db.get(Member, key)
        if person is None or person.village_id != meeting.village_id or person.removed_at:
            raise BadRequest("no member {key} in this village", params={"key": key})
        people[key] = person
    if meeting.status not in ("scheduled", LIVE):
        raise Conflict("the meeting is {status}", params={"status": Phrase(meeting.status)})
    if await db.get(Proxy, (meeting.id, member_id)) is not None:
        raise Conflict(
            "{name} already has a proxy in this meeting", params={"name": people[member_id].name}
        )
    if await db.get(Proxy, (meeting.id, proxy_id)) is not None:
        raise BadRequest(
            "{name} has given their own vote to a proxy", params={"name": people[proxy_id].name}
        )
    db.add(Proxy(meeting_id=pk(meeting), member_id=member_id, proxy_id=proxy_id))
    try:
        await db.flush()
    except IntegrityError:
        await db.rollback()
        raise Conflict(
            "{name} already has a proxy in this meeting", params={"name": people[member_id].name}
        ) from None
    recorded = await record_event(
        db,
        meeting,
        "proxy:registered",
        {
            "member": {"id": member_id, "name": people[member_id].name},
            "proxy": {"id": proxy_id, "name": people[proxy_id].name},
            "by": host.as_dict(),
        },
    )
    await db.commit()
    return recorded


def _is_id(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


async def proxies_of(db: AsyncSession, meeting_id: int) -> list[dict]:
    rows = await db.exec(
        select(Proxy, Member)
        .join(Member, col(Member.id) == col(Proxy.member_id))
        .where(col(Proxy.meeting_id) == meeting_id)
    )
    out = []
    for proxy, member in rows.all():
        holder = await db.get(Member, proxy.proxy_id)
        assert holder is not None, "proxies.proxy_id is a foreign key to members"
        out.append(
            {
                "member": {"id": member.id, "name": member.name},
                "proxy": {"id": holder.id, "name": holder.name},
            }
        )
    return out
