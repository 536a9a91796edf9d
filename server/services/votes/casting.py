"""Ballots: a member's (or their proxy's), the roll call's, and the hall's show of hands."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ...errors import (
    AlreadyVoted,
    BadRequest,
    CunhuiError,
    Forbidden,
    InvalidOption,
    NotEligible,
    Phrase,
    Unauthorized,
    VoteClosed,
)
from ...store import (
    Ballot,
    BallotAttempt,
    Meeting,
    Member,
    Proxy,
    Vote,
    VoteEligible,
    VoteParticipation,
    pk,
)
from ..meetings import LIVE, get_meeting
from ..room import is_village_member, require_host
from ..timeline import Recorded, record_event
from ..tokens import Principal, member_principal_id
from .electorate import hall_voters
from .opening import get_vote

RECEIPT_BYTES = 5  # 10 hex digits


@dataclass
class Cast:
    receipt: str
    cast: int
    recorded: Recorded


async def _attempt(
    db_factory: Callable[[], AsyncSession], vote_id: int, participant_id: str, outcome: str
) -> None:
    async with db_factory() as db:
        db.add(BallotAttempt(vote_id=vote_id, participant_id=participant_id, outcome=outcome))
        await db.commit()


async def cast_ballot(
    db_factory: Callable[[], AsyncSession],
    meeting_id: int,
    principal: Principal | None,
    payload: dict,
    *,
    member_id: int | None = None,
    source: str = "remote",
) -> Cast:
    """A member's ballot (or, with ``member_id`` and source hall, the roll call's).

    Every attempt by a member of the village (or the roll call) on a real vote is
    written to ``ballot_attempts``: an accepted one in the ballot's own transaction,
    a refused one in a transaction of its own. Strangers' noise is not recorded.
    """
    attempt: dict = {}
    try:
        async with db_factory() as db:
            return await _cast(db, meeting_id, principal, payload, member_id, source, attempt)
    except CunhuiError as exc:
        if attempt:
            await _attempt(db_factory, attempt["vote_id"], attempt["who"], exc.code)
        raise


async def _hall_room(
    db: AsyncSession, vote: Vote, meeting: Meeting, voter: int | None = None
) -> tuple[int, int]:
    """The hall voters who have not voted another way, and the roll call's ballots so far.

    The hall's voters (:func:`hall_voters`: the eligible members ticked or checked in
    there, never the headcount of people) less those who voted by phone or proxy: hands
    and roll-call ballots share what is left. ``voter``, about to be roll-called, is not
    taken off (if they voted already, the ballot is refused as ``already_voted``).
    """
    rows = (
        await db.exec(
            select(VoteParticipation.member_id, VoteParticipation.via).where(
                col(VoteParticipation.vote_id) == pk(vote)
            )
        )
    ).all()
    elsewhere = {m for m, via in rows if via != "hall" and m != voter}
    roll_called = sum(1 for _, via in rows if via == "hall")
    eligible = set(
        (
            await db.exec(
                select(VoteEligible.member_id).where(col(VoteEligible.vote_id) == pk(vote))
            )
        ).all()
    )
    in_hall = set((meeting.room_state or {}).get("hall_members", []))
    return hall_voters(meeting, eligible) - len(in_hall & eligible & elsewhere), roll_called


def _too_many(free: int, hands: int, roll_called: int) -> BadRequest:
    numbers = {"hall_voters": free, "counted": hands + roll_called}
    return BadRequest(
        "the hall has {hall_voters} checked-in members who have not voted another way; "
        "the counts add up to {counted} ({hands} by show of hands + {roll_called} by roll call)",
        params={**numbers, "hands": hands, "roll_called": roll_called},
        details=numbers,
    )


async def _cast(
    db: AsyncSession,
    meeting_id: int,
    principal: Principal | None,
    payload: dict,
    member_id: int | None,
    source: str,
    attempt: dict,
) -> Cast:
    vote = await get_vote(db, meeting_id, payload.get("vote_id"))
    vote_id = pk(vote)
    meeting = await get_meeting(db, meeting_id)
    proxy_for = payload.get("for_member_id")
    if member_id is None:
        if not is_village_member(principal, meeting):
            raise Forbidden("only members of the village vote")
        caster = principal
        member_id = caster.member_id
        attempt.update(vote_id=vote_id, who=caster.id)
        if proxy_for is not None:
            # 委托投票: the ballot is the absent member's, cast by their registered proxy
            if not isinstance(proxy_for, int) or isinstance(proxy_for, bool):
                raise BadRequest("for_member_id must be a member's id")
            proxy = await db.get(Proxy, (meeting_id, proxy_for))
            if proxy is None or proxy.proxy_id != member_id:
                raise Forbidden("you are not registered to vote for this member")
            member_id, source = proxy_for, "proxy"
            attempt.update(who=member_principal_id(member_id))
    else:
        # the roll call: the committee records a hall vote
        caster = require_host(principal, meeting)
        attempt.update(vote_id=vote_id, who=member_principal_id(member_id))
        if vote.secret:
            raise BadRequest("a secret ballot has no roll call: count the hall's hands instead")
        if member_id not in (meeting.room_state or {}).get("hall_members", []):
            raise BadRequest("tick the member present in the hall first")
    if meeting.status != LIVE:
        raise VoteClosed(
            "the meeting is {status}: the vote is closed",
            params={"status": Phrase(meeting.status)},
        )
    choice = payload.get("choice")
    if not isinstance(choice, str) or choice not in vote.options:
        raise InvalidOption("choose one of: {options}", params={"options": "、".join(vote.options)})
    # the lock: nothing closes the vote between here and the commit
    bumped = await db.exec(
        update(Vote)
        .where(col(Vote.id) == vote_id, col(Vote.status) == "open")
        .values(cast_count=col(Vote.cast_count) + 1)
        .returning(col(Vote.cast_count))
    )
    cast = bumped.scalar_one_or_none()
    if cast is None:
        await db.rollback()
        raise VoteClosed("the vote is closed")
    if source == "hall":
        await db.refresh(vote)
        hands = sum(vote.hall_counts.values())
        free, roll_called = await _hall_room(db, vote, meeting, member_id)
        if hands + roll_called + 1 > free:
            await db.rollback()
            raise _too_many(free, hands, roll_called + 1)
    elif member_id in (meeting.room_state or {}).get("hall_members", []):
        # A member checked in at the hall votes by phone (or by proxy) after the hall's
        # hands were counted: if the hands already took every hall voter, theirs was one
        # of them, and this ballot would count them twice.
        await db.refresh(vote)
        hands = sum(vote.hall_counts.values())
        if hands:
            free, roll_called = await _hall_room(db, vote, meeting)
            if hands + roll_called > free - 1:
                await db.rollback()
                raise AlreadyVoted(
                    "this member is checked in at the hall, whose show of hands already "
                    "counted all {hall_voters} checked-in members who had not voted another "
                    "way: their vote was counted there",
                    params={"hall_voters": free},
                    details={"hall_voters": free, "counted": hands + roll_called},
                )
    if caster.role == "member":
        # Under the vote's row lock: a removal committed while this ballot was on its way
        # (the socket's own check came before it) still refuses the ballot.
        member = await db.get(Member, caster.member_id)
        if member is None or member.removed_at is not None:
            await db.rollback()
            raise Unauthorized("your sign-in is no longer valid: ask the committee")
    eligible = await db.get(VoteEligible, (vote_id, member_id))
    if eligible is None:
        await db.rollback()
        raise NotEligible("you were not on the roll of voters when this vote opened")
    receipt = secrets.token_hex(RECEIPT_BYTES).upper()
    db.add(VoteParticipation(vote_id=vote_id, member_id=member_id, via=source))
    db.add(
        Ballot(
            receipt=receipt,
            vote_id=vote_id,
            choice=choice,
            source=source,
            member_id=None if vote.secret else member_id,
        )
    )
    try:
        await db.flush()
    except IntegrityError:
        await db.rollback()
        raise AlreadyVoted("this member has already voted") from None
    data: dict[str, object] = {"vote_id": vote_id}
    if not vote.secret:  # a secret ballot: who voted is kept apart (vote_participation)
        data.update(voter=member_principal_id(member_id), source=source, choice=choice)
        if source == "proxy":
            data["by_proxy"] = caster.id
    recorded = await record_event(db, meeting, "vote:ballot", data)
    db.add(
        BallotAttempt(
            vote_id=vote_id,
            participant_id=member_principal_id(member_id),
            outcome="accepted" if source != "proxy" else f"accepted:{caster.id}",
        )
    )
    await db.commit()
    return Cast(receipt, cast, recorded)


async def hall_counts(
    db: AsyncSession, meeting_id: int, principal: Principal | None, payload: dict
) -> Recorded:
    """The committee enters the hall's show-of-hands counts, {option: n}."""
    vote = await get_vote(db, meeting_id, payload.get("vote_id"))
    meeting = await get_meeting(db, meeting_id)
    host = require_host(principal, meeting)
    counts = payload.get("counts")
    if not isinstance(counts, dict) or not all(
        isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in counts.values()
    ):
        raise BadRequest("counts must be {option: number of hands}")
    unknown = set(counts) - set(vote.options)
    if unknown:
        raise InvalidOption(
            "not an option of this vote: {options}", params={"options": "、".join(sorted(unknown))}
        )
    if meeting.status != LIVE:
        raise VoteClosed(
            "the meeting is {status}: the vote is closed",
            params={"status": Phrase(meeting.status)},
        )
    free, roll_called = await _hall_room(db, vote, meeting)
    total = sum(counts.values())
    if total + roll_called > free:
        raise _too_many(free, total, roll_called)
    bumped = await db.exec(
        update(Vote)
        .where(col(Vote.id) == vote.id, col(Vote.status) == "open")
        .values(hall_counts=counts)
    )
    if bumped.rowcount == 0:
        await db.rollback()
        raise VoteClosed("the vote is closed")
    # the numbers the counts were checked against go with them: the hall section shows them
    checked = {"hall_voters": free, "roll_called": roll_called}
    recorded = await record_event(
        db,
        meeting,
        "vote:hall",
        {"vote_id": vote.id, "counts": counts, **checked, "by": host.as_dict()},
    )
    await db.commit()
    return recorded
