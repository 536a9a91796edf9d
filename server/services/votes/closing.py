"""Closing a vote: the count, stored once, and the published receipts."""

from __future__ import annotations

from sqlalchemy import func, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ...errors import ReceiptsWithheld
from ...store import Ballot, Meeting, Member, Vote, VoteEligible, pk, utcnow
from .. import rules
from ..meetings import get_meeting
from ..room import require_host
from ..timeline import Recorded, record_event
from ..tokens import Principal
from .electorate import attendance
from .opening import get_vote


async def close_vote(
    db: AsyncSession,
    meeting_id: int,
    principal: Principal | None,
    payload: dict,
    *,
    min_secret_group: int,
    by_server: bool = False,
) -> tuple[dict, Recorded | None]:
    """Close and count; closing again returns the same result (and stores nothing).

    ``min_secret_group``: a secret vote's sources are shown apart only when none of
    them holds fewer ballots than this (see :func:`secret_sources`).
    """
    vote = await get_vote(db, meeting_id, payload.get("vote_id"))
    meeting = await get_meeting(db, meeting_id)
    if not by_server:
        require_host(principal, meeting)
    flipped = await db.exec(
        update(Vote)
        .where(col(Vote.id) == vote.id, col(Vote.status) == "open")
        .values(status="closed", closed_at=utcnow())
    )
    if flipped.rowcount == 0:
        await db.rollback()
        await db.refresh(vote)
        return vote.result, None
    await db.refresh(vote)
    result = await _count(db, meeting, vote, min_secret_group)
    vote.result = result
    db.add(vote)
    recorded = await record_event(db, meeting, "vote:closed", result)
    await db.commit()
    return result, recorded


def secret_sources(groups: dict[str, dict[str, int]], minimum: int) -> dict[str, dict[str, int]]:
    """A secret vote's split by source, or ``{}`` when a source would show a small group.

    A source holding 1 to ``minimum - 1`` ballots, shown apart from others, tells how
    those few voted (the committee knows who joined by phone; a proxy is registered
    by name), so then no split is shown: the tally is the one count. A single source
    with ballots is the tally itself and shows nothing more.
    """
    sizes = [n for n in (sum(counts.values()) for counts in groups.values()) if n]
    if len(sizes) <= 1 or min(sizes) >= minimum:
        return groups
    return {}


async def _households(db: AsyncSession, vote_id: int, present_ids: set[int]) -> tuple[int, int]:
    """Households with a member on the vote's roll, and how many of them have one present."""
    eligible_rows = (
        await db.exec(
            select(Member.household)
            .join(VoteEligible, col(VoteEligible.member_id) == col(Member.id))
            .where(col(VoteEligible.vote_id) == vote_id)
        )
    ).all()
    households = {h for h in eligible_rows if h}
    present_households = set()
    if present_ids:
        present_households = {
            h
            for h in (
                await db.exec(select(Member.household).where(col(Member.id).in_(present_ids)))
            ).all()
            if h
        }
    return len(present_households & households), len(households)


async def _count(db: AsyncSession, meeting: Meeting, vote: Vote, min_secret_group: int) -> dict:
    rows = (
        await db.exec(
            select(Ballot.choice, Ballot.source, func.count())
            .where(col(Ballot.vote_id) == vote.id)
            .group_by(col(Ballot.choice), col(Ballot.source))
        )
    ).all()
    by_source: dict[str, dict[str, int]] = {
        "remote": dict.fromkeys(vote.options, 0),
        "proxy": dict.fromkeys(vote.options, 0),
        "hall_roll_call": dict.fromkeys(vote.options, 0),
        "hall_show_of_hands": {o: int(vote.hall_counts.get(o, 0)) for o in vote.options},
    }
    for choice, source, n in rows:
        by_source["hall_roll_call" if source == "hall" else source][choice] = n
    tally = {o: sum(s[o] for s in by_source.values()) for o in vote.options}
    merged = False
    if vote.secret:
        # phones and proxies are always one count (a proxy is known by name); and no
        # source small enough to name its voters is shown apart at all
        by_source = secret_sources(
            {
                "ballots": {
                    o: by_source["remote"][o]
                    + by_source["proxy"][o]
                    + by_source["hall_roll_call"][o]
                    for o in vote.options
                },
                "hall_show_of_hands": by_source["hall_show_of_hands"],
            },
            min_secret_group,
        )
        merged = not by_source
    cast = sum(tally.values())
    eligible_ids = set(
        (
            await db.exec(
                select(VoteEligible.member_id).where(col(VoteEligible.vote_id) == vote.id)
            )
        ).all()
    )
    attending, present_ids = await attendance(db, meeting, eligible_ids)
    # never fewer than the ballots cast, never more than may vote (one member is one person)
    present = min(max(attending, cast), vote.eligible)
    households_present, households = await _households(db, pk(vote), present_ids)
    rule = rules.rule_from_dict(vote.rule)
    # one set of numbers for the decision and its explanation
    counts = {
        "yes": tally[vote.options[0]],
        "cast": cast,
        "present": present,
        "eligible": vote.eligible,
        "households_present": households_present,
        "households": households,
    }
    decision = rules.decide(rule, **counts)
    return {
        "vote_id": vote.id,
        "item_id": vote.item_id,
        "question": vote.question,
        "tally": tally,
        "sources": by_source,
        "cast": cast,
        "eligible": vote.eligible,
        "present": present,
        "quorum_met": decision.quorum_met,
        "passed": decision.passed,
        "rule": vote.rule,
        "secret": vote.secret,
        #: True: a secret vote's sources are not shown apart (one would name a small group)
        "sources_merged": merged,
        #: why it passed or failed, in numbers (docs/voting-rules.md, "The explanation")
        "explanation": rules.explain(rule, option=vote.options[0], **counts),
    }


async def receipts(db: AsyncSession, vote: Vote) -> list[dict]:
    """The published list: every ballot's receipt and choice, ordered by receipt (not time).

    Not for a secret vote whose sources are merged: the list is the phones' and
    proxies' split, the very group too small to show.
    """
    if vote.secret and (vote.result or {}).get("sources_merged"):
        raise ReceiptsWithheld(
            "this secret vote's receipts are not published: too few ballots came "
            "by phone or proxy to show them apart from the hall's"
        )
    rows = await db.exec(
        select(Ballot.receipt, Ballot.choice)
        .where(col(Ballot.vote_id) == vote.id, col(Ballot.source).in_(("remote", "proxy")))
        .order_by(col(Ballot.receipt))
    )
    return [{"receipt": r, "choice": c} for r, c in rows.all()]
