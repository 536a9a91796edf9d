"""Votes: open, cast, hall counts, close — with the database as the referee.

- One ballot per member per vote: ``vote_participation``'s primary key refuses a
  second row, on SQLite and PostgreSQL alike; a duplicate rolls the ballot back.
- No ballot after close: a ballot's transaction starts with
  ``UPDATE votes SET cast_count = cast_count + 1 WHERE id = ? AND status = 'open'``,
  which locks the vote's row; closing flips the status under the same lock, so a
  ballot either committed before the close (and is counted) or finds it closed.
- Close is idempotent: the result is computed once, stored, and returned again.
- Eligibility is frozen at open (``vote_eligibles``).
- Secret ballots carry no member; who voted is kept in ``vote_participation``.
- A secret vote needs an electorate of at least ``min_secret_electorate`` (setting
  SECRET_VOTE_MIN_ELECTORATE), and its result shows no group of ballots smaller
  than that apart (docs/voting-rules.md, "Secret votes").
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy import func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from ..errors import BadRequest, Conflict, CunhuiError, Forbidden, NotFound, Unauthorized
from ..store import (
    AgendaItem,
    Ballot,
    BallotAttempt,
    Event,
    Meeting,
    Member,
    Proxy,
    Vote,
    VoteEligible,
    VoteParticipation,
    utcnow,
)
from . import rules
from .meetings import LIVE
from .room import is_village_member, require_host
from .timeline import Recorded, record_event
from .tokens import Principal

DEFAULT_OPTIONS = ["同意", "反对", "弃权"]
MAX_QUESTION = 500
MAX_OPTION = 100
MAX_OPTIONS = 10
RECEIPT_BYTES = 5  # 10 hex digits


class VoteError(CunhuiError):
    status = 409


def _error(code: str, message: str, status: int = 409) -> CunhuiError:
    exc = VoteError(message, code=code)
    exc.status = status
    return exc


# ------------------------------------------------------------------ helpers


async def get_vote(db: AsyncSession, meeting_id: int, vote_id: object) -> Vote:
    if not isinstance(vote_id, int) or isinstance(vote_id, bool):
        raise BadRequest("vote_id must be a vote's id")
    vote = await db.get(Vote, vote_id)
    if vote is None or vote.meeting_id != meeting_id:
        raise NotFound(f"no vote {vote_id} in this meeting")
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


def _adult(member: Member, year: int) -> bool:
    return member.birth_year is None or year - member.birth_year >= 18


async def _eligible_members(db: AsyncSession, meeting: Meeting, rule: rules.Rule) -> list[Member]:
    """Who may vote: adults for a villagers' assembly, representatives for their meeting."""
    roll = (
        await db.exec(
            select(Member).where(
                Member.village_id == meeting.village_id,
                Member.removed_at == None,  # noqa: E711
            )
        )
    ).all()
    year = utcnow().year
    if rule.profile == rules.REPRESENTATIVES:
        return [m for m in roll if m.representative]
    if rule.profile == rules.VILLAGERS_ASSEMBLY:
        return [m for m in roll if _adult(m, year)]
    return list(roll)


# ------------------------------------------------------------------ open


def parse_open(payload: dict) -> dict:
    question = payload.get("question")
    if not isinstance(question, str) or not question.strip() or len(question) > MAX_QUESTION:
        raise BadRequest(f"question must be 1 to {MAX_QUESTION} characters")
    options = payload.get("options") or DEFAULT_OPTIONS
    if (
        not isinstance(options, list)
        or not 2 <= len(options) <= MAX_OPTIONS
        or not all(isinstance(o, str) and o.strip() and len(o) <= MAX_OPTION for o in options)
        or len({o.strip() for o in options}) != len(options)
    ):
        raise BadRequest(f"options must be 2 to {MAX_OPTIONS} different texts")
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
    meeting = await db.get(Meeting, meeting_id)
    require_host(principal, meeting)
    if meeting.status != LIVE:
        raise Conflict(f"the meeting is {meeting.status}, not live")
    if fields["item_id"] is not None:
        item = await db.get(AgendaItem, fields["item_id"])
        if item is None or item.meeting_id != meeting_id:
            raise BadRequest(f"no agenda item {fields['item_id']} in this meeting")
    rule = rules.parse_rule(fields["rule"], meeting.kind)
    eligible = await _eligible_members(db, meeting, rule)
    if fields["secret"] and len(eligible) < min_secret_electorate:
        # with one eligible voter (say, the only representative) the tally is their ballot
        raise Conflict(
            f"a secret vote needs at least {min_secret_electorate} eligible voters; this one "
            f"would have {len(eligible)}, and its result would show how they voted. "
            "Hold an open vote, or a secret one with more voters.",
            code="electorate_too_small",
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
    db.add_all(VoteEligible(vote_id=vote.id, member_id=m.id) for m in eligible)
    present, _ = await attendance(db, meeting, {m.id for m in eligible})
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
            "by": principal.as_dict(),
        },
    )
    await db.commit()
    return recorded


# ------------------------------------------------------------------ cast


@dataclass
class Cast:
    receipt: str
    cast: int
    recorded: Recorded


async def _attempt(db_factory, vote_id: int, participant_id: str, outcome: str) -> None:
    async with db_factory() as db:
        db.add(BallotAttempt(vote_id=vote_id, participant_id=participant_id, outcome=outcome))
        await db.commit()


async def cast_ballot(
    db_factory,
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
    meeting = await db.get(Meeting, meeting_id)
    proxy_for = payload.get("for_member_id")
    if member_id is None:
        if (
            principal is None
            or principal.role != "member"
            or not is_village_member(principal, meeting)
        ):
            raise Forbidden("only members of the village vote")
        member_id = int(principal.id[1:])
        attempt.update(vote_id=vote.id, who=principal.id)
        if proxy_for is not None:
            # 委托投票: the ballot is the absent member's, cast by their registered proxy
            if not isinstance(proxy_for, int) or isinstance(proxy_for, bool):
                raise BadRequest("for_member_id must be a member's id")
            proxy = await db.get(Proxy, (meeting_id, proxy_for))
            if proxy is None or proxy.proxy_id != member_id:
                raise Forbidden("you are not registered to vote for this member")
            member_id, source = proxy_for, "proxy"
            attempt.update(who=f"m{member_id}")
    else:
        require_host(principal, meeting)  # the roll call: the committee records a hall vote
        attempt.update(vote_id=vote.id, who=f"m{member_id}")
        if vote.secret:
            raise BadRequest("a secret ballot has no roll call: count the hall's hands instead")
        if member_id not in (meeting.room_state or {}).get("hall_members", []):
            raise BadRequest("tick the member present in the hall first")
    if meeting.status != LIVE:
        raise _error("vote_closed", f"the meeting is {meeting.status}: the vote is closed")
    choice = payload.get("choice")
    if not isinstance(choice, str) or choice not in vote.options:
        raise _error("invalid_option", f"choose one of: {', '.join(vote.options)}", 400)
    # the lock: nothing closes the vote between here and the commit
    bumped = await db.execute(
        update(Vote)
        .where(Vote.id == vote.id, Vote.status == "open")
        .values(cast_count=Vote.cast_count + 1)
        .returning(Vote.cast_count)
    )
    cast = bumped.scalar_one_or_none()
    if cast is None:
        await db.rollback()
        raise _error("vote_closed", "the vote is closed")
    if source == "hall":
        roll_called = (
            await db.exec(
                select(func.count())
                .select_from(Ballot)
                .where(Ballot.vote_id == vote.id, Ballot.source == "hall")
            )
        ).one()
        await db.refresh(vote)
        hands = sum(vote.hall_counts.values())
        hall = _hall_present(meeting)
        if hands + roll_called + 1 > hall:
            await db.rollback()
            raise BadRequest(
                f"{hands} hands and {roll_called} roll-call ballots already count "
                f"for the {hall} people recorded in the hall"
            )
    if principal is not None and principal.role == "member":
        # Under the vote's row lock: a removal committed while this ballot was on its way
        # (the socket's own check came before it) still refuses the ballot.
        caster = await db.get(Member, int(principal.id[1:]))
        if caster is None or caster.removed_at is not None:
            await db.rollback()
            raise Unauthorized("your sign-in is no longer valid: ask the committee")
    eligible = await db.get(VoteEligible, (vote.id, member_id))
    if eligible is None:
        await db.rollback()
        raise _error(
            "not_eligible", "you were not on the roll of voters when this vote opened", 403
        )
    receipt = secrets.token_hex(RECEIPT_BYTES).upper()
    db.add(VoteParticipation(vote_id=vote.id, member_id=member_id, via=source))
    db.add(
        Ballot(
            receipt=receipt,
            vote_id=vote.id,
            choice=choice,
            source=source,
            member_id=None if vote.secret else member_id,
        )
    )
    try:
        await db.flush()
    except IntegrityError:
        await db.rollback()
        raise _error("already_voted", "this member has already voted") from None
    if vote.secret:
        data = {"vote_id": vote.id}  # who voted is kept apart (vote_participation)
    else:
        data = {"vote_id": vote.id, "voter": f"m{member_id}", "source": source, "choice": choice}
        if source == "proxy":
            data["by_proxy"] = principal.id
    recorded = await record_event(db, meeting, "vote:ballot", data)
    db.add(
        BallotAttempt(
            vote_id=vote.id,
            participant_id=f"m{member_id}",
            outcome="accepted" if source != "proxy" else f"accepted:{principal.id}",
        )
    )
    await db.commit()
    return Cast(receipt, cast, recorded)


# ------------------------------------------------------------------ the hall


async def hall_counts(
    db: AsyncSession, meeting_id: int, principal: Principal | None, payload: dict
) -> Recorded:
    """The committee enters the hall's show-of-hands counts, {option: n}."""
    vote = await get_vote(db, meeting_id, payload.get("vote_id"))
    meeting = await db.get(Meeting, meeting_id)
    require_host(principal, meeting)
    counts = payload.get("counts")
    if not isinstance(counts, dict) or not all(
        isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in counts.values()
    ):
        raise BadRequest("counts must be {option: number of hands}")
    unknown = set(counts) - set(vote.options)
    if unknown:
        raise _error(
            "invalid_option", f"not an option of this vote: {', '.join(sorted(unknown))}", 400
        )
    if meeting.status != LIVE:
        raise _error("vote_closed", f"the meeting is {meeting.status}: the vote is closed")
    present = _hall_present(meeting)
    roll_called = (
        await db.exec(
            select(func.count())
            .select_from(Ballot)
            .where(Ballot.vote_id == vote.id, Ballot.source == "hall")
        )
    ).one()
    total = sum(counts.values())
    if total + roll_called > present:
        raise BadRequest(
            f"{total} hands counted (+{roll_called} by roll call) but only {present} people "
            "are recorded in the hall: enter the hall count first",
        )
    bumped = await db.execute(
        update(Vote).where(Vote.id == vote.id, Vote.status == "open").values(hall_counts=counts)
    )
    if bumped.rowcount == 0:
        await db.rollback()
        raise _error("vote_closed", "the vote is closed")
    recorded = await record_event(
        db, meeting, "vote:hall", {"vote_id": vote.id, "counts": counts, "by": principal.as_dict()}
    )
    await db.commit()
    return recorded


# ------------------------------------------------------------------ close


async def present_members(db: AsyncSession, meeting: Meeting) -> set[int]:
    """Members attending now: connected remotely (by the timeline), or ticked in the hall."""
    rows = await db.exec(
        select(Event.type, Event.data)
        .where(
            Event.meeting_id == meeting.id,
            Event.type.in_(("attendance:joined", "attendance:left")),
        )
        .order_by(Event.seq)
    )
    online: set[int] = set()
    for type_, data in rows.all():
        pid = (data.get("participant") or {}).get("id", "")
        if not pid.startswith("m"):
            continue
        (online.add if type_ == "attendance:joined" else online.discard)(int(pid[1:]))
    hall = set((meeting.room_state or {}).get("hall_members", []))
    return online | hall


def _hall_present(meeting: Meeting) -> int:
    """The hall: the count the committee entered, else the members ticked there."""
    state = meeting.room_state or {}
    in_hall = state.get("in_hall")
    return in_hall if in_hall is not None else len(state.get("hall_members", []))


async def attendance(
    db: AsyncSession, meeting: Meeting, eligible: set[int]
) -> tuple[int, set[int]]:
    """How many of those who may vote take part now, and which of them we know by name.

    Eligible members online (not ticked in the hall), plus the hall — its count if the
    committee entered one (a bare number: the clerk counts voters), else the eligible
    members ticked there — plus eligible members represented by a registered proxy
    (委托 counts as taking part). Other villagers watching do not count.
    """
    online = (await present_members(db, meeting)) & eligible
    hall_ticked = set((meeting.room_state or {}).get("hall_members", []))
    if (meeting.room_state or {}).get("in_hall") is not None:
        hall = _hall_present(meeting)
    else:
        hall = len(hall_ticked & eligible)
    proxied = (await _proxied(db, meeting.id) & eligible) - online - hall_ticked
    known = online | (hall_ticked & eligible) | proxied
    return len(online - hall_ticked) + hall + len(proxied), known


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
    meeting = await db.get(Meeting, meeting_id)
    if not by_server:
        require_host(principal, meeting)
    flipped = await db.execute(
        update(Vote)
        .where(Vote.id == vote.id, Vote.status == "open")
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


async def _count(db: AsyncSession, meeting: Meeting, vote: Vote, min_secret_group: int) -> dict:
    rows = (
        await db.exec(
            select(Ballot.choice, Ballot.source, func.count())
            .where(Ballot.vote_id == vote.id)
            .group_by(Ballot.choice, Ballot.source)
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
        (await db.exec(select(VoteEligible.member_id).where(VoteEligible.vote_id == vote.id))).all()
    )
    attending, present_ids = await attendance(db, meeting, eligible_ids)
    present = max(attending, cast)  # never fewer than the ballots cast
    eligible_rows = (
        await db.exec(
            select(Member.household)
            .join(VoteEligible, VoteEligible.member_id == Member.id)
            .where(VoteEligible.vote_id == vote.id)
        )
    ).all()
    households = {h for h in eligible_rows if h}
    present_households = set()
    if present_ids:
        present_households = {
            h
            for h in (
                await db.exec(select(Member.household).where(Member.id.in_(present_ids)))
            ).all()
            if h
        }
    rule = rules.rule_from_dict(vote.rule)
    decision = rules.decide(
        rule,
        yes=tally[vote.options[0]],
        cast=cast,
        present=present,
        eligible=vote.eligible,
        households_present=len(present_households & households),
        households=len(households),
    )
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
    }


async def receipts(db: AsyncSession, vote: Vote) -> list[dict]:
    """The published list: every ballot's receipt and choice, ordered by receipt (not time).

    Not for a secret vote whose sources are merged: the list is the phones' and
    proxies' split, the very group too small to show.
    """
    if vote.secret and (vote.result or {}).get("sources_merged"):
        raise Conflict(
            "this secret vote's receipts are not published: too few ballots came "
            "by phone or proxy to show them apart from the hall's",
            code="receipts_withheld",
        )
    rows = await db.exec(
        select(Ballot.receipt, Ballot.choice)
        .where(Ballot.vote_id == vote.id, Ballot.source.in_(("remote", "proxy")))
        .order_by(Ballot.receipt)
    )
    return [{"receipt": r, "choice": c} for r, c in rows.all()]


async def meeting_votes(db: AsyncSession, meeting_id: int) -> list[Vote]:
    return list(
        (await db.exec(select(Vote).where(Vote.meeting_id == meeting_id).order_by(Vote.id))).all()
    )


async def voted_in(db: AsyncSession, member_id: int, vote_ids: list[int]) -> set[int]:
    """Which of these votes the member has already voted in (for their page after a reload)."""
    if not vote_ids:
        return set()
    rows = await db.exec(
        select(VoteParticipation.vote_id).where(
            VoteParticipation.member_id == member_id, VoteParticipation.vote_id.in_(vote_ids)
        )
    )
    return set(rows.all())


# ------------------------------------------------------------------ proxies (委托投票)


async def _proxied(db: AsyncSession, meeting_id: int) -> set[int]:
    """Members represented by a proxy: they count as present (委托 is taking part)."""
    rows = await db.exec(select(Proxy.member_id).where(Proxy.meeting_id == meeting_id))
    return set(rows.all())


async def register_proxy(
    db: AsyncSession, meeting: Meeting, principal: Principal | None, body: dict
) -> Recorded:
    """The committee records that ``proxy_id`` votes for ``member_id`` in this meeting."""
    require_host(principal, meeting)
    member_id, proxy_id = body.get("member_id"), body.get("proxy_id")
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (member_id, proxy_id)):
        raise BadRequest("member_id and proxy_id must be members' ids")
    if member_id == proxy_id:
        raise BadRequest("a member cannot be their own proxy")
    people = {}
    for key in (member_id, proxy_id):
        person = await db.get(Member, key)
        if person is None or person.village_id != meeting.village_id or person.removed_at:
            raise BadRequest(f"no member {key} in this village")
        people[key] = person
    if meeting.status not in ("scheduled", LIVE):
        raise Conflict(f"the meeting is {meeting.status}")
    if await db.get(Proxy, (meeting.id, member_id)) is not None:
        raise Conflict(f"{people[member_id].name} already has a proxy in this meeting")
    if await db.get(Proxy, (meeting.id, proxy_id)) is not None:
        raise BadRequest(f"{people[proxy_id].name} has given their own vote to a proxy")
    db.add(Proxy(meeting_id=meeting.id, member_id=member_id, proxy_id=proxy_id))
    try:
        await db.flush()
    except IntegrityError:
        await db.rollback()
        raise Conflict(f"{people[member_id].name} already has a proxy in this meeting") from None
    recorded = await record_event(
        db,
        meeting,
        "proxy:registered",
        {
            "member": {"id": member_id, "name": people[member_id].name},
            "proxy": {"id": proxy_id, "name": people[proxy_id].name},
            "by": principal.as_dict(),
        },
    )
    await db.commit()
    return recorded


async def proxies_of(db: AsyncSession, meeting_id: int) -> list[dict]:
    rows = await db.exec(
        select(Proxy, Member)
        .join(Member, Member.id == Proxy.member_id)
        .where(Proxy.meeting_id == meeting_id)
    )
    out = []
    for proxy, member in rows.all():
        holder = await db.get(Member, proxy.proxy_id)
        out.append(
            {
                "member": {"id": member.id, "name": member.name},
                "proxy": {"id": holder.id, "name": holder.name},
            }
        )
    return out
