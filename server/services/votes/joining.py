"""What a phone joining the room learns about the meeting's votes."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from ...store import Meeting, pk
from ..tokens import Principal
from .opening import meeting_votes, present_now, vote_dict, voted_in
from .proxies import proxies_of


async def votes_on_join(
    db: AsyncSession, meeting: Meeting, principal: Principal | None
) -> tuple[list[dict], list[dict]]:
    """The meeting's votes (each with ``you_voted``; an open one with ``present`` now,
    the joining member counted, so a phone that joins while it is open shows 到会 N 人
    too), and the members this member holds a proxy for (each with the votes they have
    voted in, for a page after a reload)."""
    rows = await meeting_votes(db, pk(meeting))
    ids = [pk(v) for v in rows]
    mine: set[int] = set()
    held: list[dict] = []
    joining = None
    if principal is not None and principal.role == "member":
        joining = principal.member_id
        mine = await voted_in(db, principal.member_id, ids)
        held = [
            p["member"]
            for p in await proxies_of(db, pk(meeting))
            if p["proxy"]["id"] == principal.member_id
        ]
        for entry in held:
            entry["voted"] = sorted(await voted_in(db, entry["id"], ids))
    listed = []
    for vote in rows:
        entry = {**vote_dict(vote), "you_voted": pk(vote) in mine}
        if vote.status == "open":
            entry["present"] = await present_now(db, meeting, vote, joining)
        listed.append(entry)
    return listed, held
