"""Storage: SQLModel tables and the async database handle."""

from .db import Database
from .models import (
    AgendaItem,
    Ballot,
    BallotAttempt,
    Event,
    Meeting,
    Member,
    Proxy,
    Recording,
    Suggestion,
    User,
    Village,
    Vote,
    VoteEligible,
    VoteParticipation,
    pk,
    utcnow,
)

__all__ = [
    "AgendaItem",
    "Ballot",
    "BallotAttempt",
    "Database",
    "Event",
    "Meeting",
    "Member",
    "User",
    "Proxy",
    "Recording",
    "Suggestion",
    "Village",
    "Vote",
    "VoteEligible",
    "VoteParticipation",
    "pk",
    "utcnow",
]
