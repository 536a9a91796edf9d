"""Opening a vote, and reading votes back."""

from __future__ import annotations

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from ...errors import BadRequest, Conflict, ElectorateTooSmall, NotFound, Phrase
from ...store import AgendaItem, Meeting, Vote, VoteEligible, VoteParticipation, pk
from .. import rules
from ..meetings import LIVE, get_meeting
from ..room import require_host
from ..timeline import Recorded, record_event
from ..tokens import Principal
from .electorate import attendance, eligible_members

DEFAULT_OPTIONS = ["同意", "反对", "弃权"]
MAX_QUESTION = 500
MAX_OPTION = 100
MAX_OPTIONS = 10


async def get_vote(db: AsyncSession, meeting_id: int, vote_id: object) -> Vote:
    if not isinstance(vote_id, int) or isinstance(vote_id, bool):
        raise BadRequest("vote_id must be a vote's id")
    vote = await db.get(Vote, vote_id)
    if vote is None or vote.meeting_id != meeting_id:
        raise NotFound("no vote {id} in this meeting", params={"id": vote_id})
    return vote


def vote_dict(vote: Vote) -> dict:
    return {
        "vote_id": vote.id,
        "item_id": vote.item_id,
        "question": vote.question,
        "options": list(vote.options),
        "secret": vote.secret,
        "rule": vote.rule,
        "eligible": vote.eligible,
        "status": vote.status,
        "cast": vote.cast_count,
        "result": vote.result or None,
    }


def parse_open(payload: dict) -> dict:
    question = payload.get("question")
    if not isinstance(question, str) or not question.strip() or len(question) > MAX_QUESTION:
        raise BadRequest("question must be 1 to {limit} characters", params={"limit": MAX_QUESTION})
    options = payload.get("options") or DEFAULT_OPTIONS
    if (
        not isinstance(options, list)
        or not 2 <= len(options) <= MAX_OPTIONS
        or not all(isinstance(o, str) and o.strip() and len(o) <= MAX_OPTION for o in options)
        or len({o.strip() for o in options}) != len(options)
    ):
        raise BadRequest(
            "options must be 2 to {limit} different texts", params={"limit": MAX_OPTIONS}
        )
    secret = payload.get("secret", False)
    if not isinstance(secret, bool):
        raise BadRequest("secret must be true or false")
    item_id = payload.get("item_id")
    if item_id is not None and (not isinstance(item_id, int) or isinstance(item_id, bool)):
        raise BadRequest("item_id must be an agenda item's id")
    return {
        "question": question.strip(),
        "options": [o.strip() for o in options],
        "secret": secret,
        "item_id": item_id,
        "rule": payload.get("rule"),
    }


async def open_vote(
    db: AsyncSession,
    meeting_id: int,
    principal: Principal | None,
    payload: dict,
    *,
    min_secret_electorate: int,
) -> Recorded:
    """Open a vote; a secret one only if at least ``min_secret_electorate`` may vote in it."""
    fields = parse_open(payload)
    meeting = await get_meeting(db, meeting_id)
    host = require_host(principal, meeting)
    if meeting.status != LIVE:
        raise Conflict(
            "the meeting is {status}, not live", params={"status": Phrase(meeting.status)}
        )
    if fields["item_id"] is not None:
        item = await db.get(AgendaItem, fields["item_id"])
        if item is None or item.meeting_id != meeting_id:
            raise BadRequest(
                "no agenda item {id} in this meeting", params={"id": fields["item_id"]}
            )
    rule = rules.parse_rule(fields["rule"], meeting.kind)
    eligible = await eligible_members(db, meeting, rule)
    if fields["secret"] and len(eligible) < min_secret_electorate:
        # with one eligible voter (say, the only representative) the tally is their ballot
        raise ElectorateTooSmall(
            "a secret vote needs at least {minimum} eligible voters; this one would have "
            "{eligible}, and its result would show how they voted. Hold an open vote, or a "
            "secret one with more voters.",
            params={"minimum": min_secret_electorate, "eligible": len(eligible)},
        )
    vote = Vote(
        meeting_id=meeting_id,
        item_id=fields["item_id"],
        question=fields["question"],
        options=fields["options"],
        secret=fields["secret"],
        rule=rule.as_dict(),
        eligible=len(eligible),
    )
    db.add(vote)
    await db.flush()
    db.add_all(VoteEligible(vote_id=pk(vote), member_id=pk(m)) for m in eligible)
    present, _ = await attendance(db, meeting, {pk(m) for m in eligible})
    recorded = await record_event(
        db,
        meeting,
        "vote:opened",
        {
            "vote_id": vote.id,
            "item_id": vote.item_id,
            "question": vote.question,
            "options": vote.options,
            "secret": vote.secret,
            "rule": vote.rule,
            "eligible": vote.eligible,
            "present": present,
            "by": host.as_dict(),
        },
    )
    await db.commit()
    return recorded


async def present_now(
    db: AsyncSession, meeting: Meeting, vote: Vote, joining: int | None = None
) -> int:
    """Those who may vote in ``vote`` attending now, counted as ``vote:opened``'s ``present``
    (for a phone that joins while the vote is open: its card shows 到会 N 人 too).
    ``joining``: a member whose join is not on the timeline yet, counted if eligible."""
    rows = await db.exec(select(VoteEligible.member_id).where(col(VoteEligible.vote_id) == vote.id))
    eligible = set(rows.all())
    present, known = await attendance(db, meeting, eligible)
    if joining is not None and joining in eligible and joining not in known:
        present = min(present + 1, len(eligible))
    return present


async def meeting_votes(db: AsyncSession, meeting_id: int) -> list[Vote]:
    query = select(Vote).where(col(Vote.meeting_id) == meeting_id).order_by(col(Vote.id))
    return list((await db.exec(query)).all())


async def voted_in(db: AsyncSession, member_id: int, vote_ids: list[int]) -> set[int]:
    """Which of these votes the member has already voted in (for their page after a reload)."""
    if not vote_ids:
        return set()
    rows = await db.exec(
        select(VoteParticipation.vote_id).where(
            col(VoteParticipation.member_id) == member_id,
            col(VoteParticipation.vote_id).in_(vote_ids),
        )
    )
    return set(rows.all())
