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

The modules: ``opening`` (open, read back), ``casting`` (ballots, roll call, the
hall's hands), ``closing`` (the count, receipts), ``electorate`` (who may vote, who
takes part), ``proxies`` (委托投票), ``joining`` (what a joining phone learns).
Callers use the names below: ``votes.open_vote``.
"""

from __future__ import annotations

from .casting import Cast, cast_ballot, hall_counts
from .closing import close_vote, receipts
from .joining import votes_on_join
from .opening import get_vote, meeting_votes, open_vote, present_now, vote_dict, voted_in
from .proxies import proxies_of, register_proxy

__all__ = [
    "Cast",
    "cast_ballot",
    "close_vote",
    "get_vote",
    "hall_counts",
    "meeting_votes",
    "open_vote",
    "present_now",
    "proxies_of",
    "receipts",
    "register_proxy",
    "vote_dict",
    "votes_on_join",
    "voted_in",
]
