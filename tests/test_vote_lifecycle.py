"""A Hypothesis state machine over a vote's life, against the real service and SQLite.

Steps: open a vote, cast (eligible or not, again after a "reconnect"), add a member
late, count the hall, close (again and again). After every step the invariants hold:
ballots ≤ eligible, at most one per member, none after close, the tally equals a
recount of the stored rows, and the decision is what the rule says for that recount.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from sqlalchemy import text

from server.errors import CunhuiError
from server.services import meetings, rules, votes
from server.services.tokens import Principal
from server.store import Database, Member, Village

OPTIONS = ["同意", "反对", "弃权"]
PROFILES = [
    rules.SIMPLE_MAJORITY,
    rules.TWO_THIRDS,
    rules.VILLAGERS_ASSEMBLY,
    rules.REPRESENTATIVES,
]
#: the machine's SECRET_VOTE_MIN_ELECTORATE: small, so it opens secret votes of both sizes
MIN_SECRET = 3


class VoteLifecycle(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.tmp = tempfile.TemporaryDirectory()
        self.database = Database(f"sqlite+aiosqlite:///{Path(self.tmp.name) / 'votes.db'}")
        self.run(self.database.migrate())
        self.vote_id = None
        self.closed_result = None
        self.accepted: dict[int, str] = {}  # member id -> choice, as the model expects
        self.hall: dict[str, int] = {}
        self.eligible_ids: set[int] = set()
        self.in_hall: set[int] = set()  # the members ticked present in the hall

    def run(self, coro):
        return self.loop.run_until_complete(coro)

    def teardown(self) -> None:
        self.run(self.database.close())
        self.loop.close()
        self.tmp.cleanup()

    @initialize(n=st.integers(min_value=1, max_value=8), reps=st.integers(min_value=0, max_value=8))
    def a_village_with_a_live_meeting(self, n, reps):
        async def setup():
            async with self.database.session() as db:
                village = Village(name="张家村")
                db.add(village)
                await db.flush()
                self.village_id = village.id
                self.members = []
                self.reps = min(reps, n)
                for i in range(n):
                    member = Member(
                        village_id=village.id,
                        name=f"村民{i}",
                        pin=f"{i:06d}",
                        household=f"{i % 3}组",
                        representative=i < reps,
                    )
                    db.add(member)
                    await db.flush()
                    self.members.append(member.id)
                await db.commit()
                view = await meetings.create_meeting(
                    db,
                    meetings.parse_fields({"title": "会"}, partial=False),
                    created_by=None,
                    village_id=village.id,
                )
                self.meeting_id = view.meeting.id
                await meetings.start_meeting(db, view.meeting)

        self.run(setup())
        self.host = Principal(id="u1", name="文书", role="committee", village_id=self.village_id)

    def member(self, member_id: int) -> Principal:
        return Principal(id=f"m{member_id}", name="村民", role="member", village_id=self.village_id)

    @precondition(lambda self: self.vote_id is None)
    @rule(secret=st.booleans(), profile=st.sampled_from(PROFILES))
    def open(self, secret, profile):
        async def go():
            async with self.database.session() as db:
                recorded = await votes.open_vote(
                    db,
                    self.meeting_id,
                    self.host,
                    {"question": "同意吗?", "options": OPTIONS, "secret": secret, "rule": profile},
                    min_secret_electorate=MIN_SECRET,
                )
            async with self.database.session() as db:
                rows = await db.execute(
                    text("SELECT member_id FROM vote_eligibles WHERE vote_id = :v"),
                    {"v": recorded.data["vote_id"]},
                )
                return recorded.data["vote_id"], {r[0] for r in rows}

        # representatives are among the first members; late ones are not representatives
        electorate = self.reps if profile == rules.REPRESENTATIVES else len(self.members)
        too_small = secret and electorate < MIN_SECRET
        try:
            vote_id, eligible_ids = self.run(go())
        except CunhuiError as exc:
            assert exc.code == "electorate_too_small" and too_small, (exc.code, electorate)
            return
        assert not too_small and len(eligible_ids) == electorate
        self.vote_id, self.eligible_ids, self.secret = vote_id, eligible_ids, secret

    @precondition(lambda self: self.vote_id is not None)
    @rule(index=st.integers(min_value=0, max_value=20), choice=st.sampled_from([*OPTIONS, "乱选"]))
    def cast(self, index, choice):
        member_id = self.members[index % len(self.members)]
        if choice not in OPTIONS:
            expected = "invalid_option"
        elif self.closed_result is not None:
            expected = "vote_closed"
        elif member_id not in self.eligible_ids:
            expected = "not_eligible"
        elif member_id in self.accepted:
            expected = "already_voted"  # e.g. the same phone after a reconnect
        else:
            expected = "ok"
        try:
            self.run(
                votes.cast_ballot(
                    self.database.session,
                    self.meeting_id,
                    self.member(member_id),
                    {"vote_id": self.vote_id, "choice": choice},
                )
            )
            outcome = "ok"
        except CunhuiError as exc:
            outcome = exc.code
        assert outcome == expected, (member_id, choice, outcome, expected)
        if outcome == "ok":
            self.accepted[member_id] = choice

    @rule()
    def a_member_joins_the_roll_late(self):
        async def add():
            async with self.database.session() as db:
                member = Member(
                    village_id=self.village_id, name="新来的", pin=f"{900000 + len(self.members)}"
                )
                db.add(member)
                await db.commit()
                return member.id

        self.members.append(self.run(add()))  # not eligible for a vote already open

    @rule(n=st.integers(min_value=0, max_value=10))
    def the_hall_is_counted(self, n):
        """A headcount of people: refused below the members ticked there; votes ignore it."""
        try:
            self.run(self._hall({"in_hall": n}))
            ok = True
        except CunhuiError as exc:
            assert exc.code == "bad_request", exc.code
            ok = False
        assert ok == (n >= len(self.in_hall)), (n, self.in_hall)

    @rule(index=st.integers(min_value=0, max_value=20), present=st.booleans())
    def a_member_is_ticked_in_the_hall(self, index, present):
        member_id = self.members[index % len(self.members)]
        self.run(self._hall({"member_id": member_id, "present": present}))
        (self.in_hall.add if present else self.in_hall.discard)(member_id)

    async def _hall(self, payload):
        from server.services import room

        async with self.database.session() as db:
            await room.record_hall(db, self.meeting_id, self.host, payload)

    @precondition(lambda self: self.vote_id is not None and self.closed_result is None)
    @rule(yes=st.integers(min_value=0, max_value=6), no=st.integers(min_value=0, max_value=6))
    def hands_in_the_hall(self, yes, no):
        counts = {"同意": yes, "反对": no}
        try:
            self.run(self._hands(counts))
            ok = True
        except CunhuiError as exc:
            assert exc.code == "bad_request", exc.code
            ok = False
        # the hall's voters: the eligible ticked there who have not voted by phone
        room = len((self.in_hall & self.eligible_ids) - set(self.accepted))
        assert ok == (yes + no <= room), (counts, self.in_hall, room)
        if ok:
            self.hall = counts

    async def _hands(self, counts):
        async with self.database.session() as db:
            await votes.hall_counts(
                db, self.meeting_id, self.host, {"vote_id": self.vote_id, "counts": counts}
            )

    @precondition(lambda self: self.vote_id is not None)
    @rule()
    def close(self):
        async def go():
            async with self.database.session() as db:
                return await votes.close_vote(
                    db,
                    self.meeting_id,
                    self.host,
                    {"vote_id": self.vote_id},
                    min_secret_group=MIN_SECRET,
                )

        result, _ = self.run(go())
        if self.closed_result is None:
            self.closed_result = result
        assert result == self.closed_result  # closing again returns the same result
        expected = {
            o: sum(1 for c in self.accepted.values() if c == o) + self.hall.get(o, 0)
            for o in OPTIONS
        }
        assert result["tally"] == expected
        assert result["cast"] == sum(expected.values())
        if self.secret:  # no source that holds a small group is shown apart
            groups = [n for n in (sum(c.values()) for c in result["sources"].values()) if n]
            assert len(groups) <= 1 or min(groups) >= MIN_SECRET, result["sources"]
            assert result["sources_merged"] == (not result["sources"])
        decision = rules.decide(
            rules.rule_from_dict(result["rule"]),
            yes=expected["同意"],
            cast=result["cast"],
            present=result["present"],
            eligible=result["eligible"],
        )
        if not rules.rule_from_dict(result["rule"]).households_quorum:
            assert (result["quorum_met"], result["passed"]) == (
                decision.quorum_met,
                decision.passed,
            )
        elif decision.quorum_met:  # art. 22 may also be met by households
            assert result["quorum_met"] and result["passed"] == decision.passed

    @invariant()
    def the_stored_rows_agree(self):
        if self.vote_id is None:
            return

        async def rows():
            async with self.database.session() as db:
                ballots = (
                    await db.execute(
                        text("SELECT choice, member_id FROM ballots WHERE vote_id = :v"),
                        {"v": self.vote_id},
                    )
                ).all()
                voted = (
                    await db.execute(
                        text("SELECT member_id FROM vote_participation WHERE vote_id = :v"),
                        {"v": self.vote_id},
                    )
                ).all()
                return ballots, [r[0] for r in voted]

        ballots, voted = self.run(rows())
        assert len(ballots) == len(voted) == len(self.accepted)
        assert len(voted) == len(set(voted))  # at most one ballot per member
        assert set(voted) <= self.eligible_ids  # only the eligible
        assert len(ballots) <= len(self.eligible_ids)
        assert sorted(c for c, _ in ballots) == sorted(self.accepted.values())


VoteLifecycle.TestCase.settings = settings(
    max_examples=15,  # about 40 s; more examples belong in a longer local run
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_vote_lifecycle = VoteLifecycle.TestCase
