"""The tables. Times are stored in UTC."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Protocol, overload

from sqlalchemy import JSON, Column, DateTime, UniqueConstraint
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


class _Keyed(Protocol):
    id: int | None


def pk(row: _Keyed) -> int:
    """The id of a row read from the database (or flushed to it): typed ``int``, not ``None``."""
    assert row.id is not None, f"{type(row).__name__} has no id until it is flushed"
    return row.id


@overload
def as_utc(value: datetime) -> datetime: ...
@overload
def as_utc(value: None) -> None: ...
@overload
def as_utc(value: datetime | None) -> datetime | None: ...
def as_utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    if value is None:
        return None
    if value.tzinfo is not None:
        return value.astimezone(UTC)  # a driver or session in another zone: same instant
    return value.replace(tzinfo=UTC)


def _time(nullable: bool = False) -> Any:
    return Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=nullable))


def _now_column() -> Any:
    return Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))


class Village(SQLModel, table=True):
    """A village (村): its committee and members see only its meetings."""

    __tablename__ = "villages"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100, unique=True)
    created_at: datetime = _now_column()


class User(SQLModel, table=True):
    """A committee account (村委会): may schedule, start and run its village's meetings."""

    __tablename__ = "users"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=64, unique=True, index=True)
    password_hash: str
    village_id: int | None = Field(default=None, foreign_key="villages.id", index=True)
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )


class Meeting(SQLModel, table=True):
    __tablename__ = "meetings"

    id: int | None = Field(default=None, primary_key=True)
    #: short digits typed on a phone to find the meeting
    code: str = Field(max_length=16, unique=True, index=True)
    title: str = Field(max_length=200)
    starts_at: datetime | None = _time(nullable=True)
    allow_guests: bool = False
    village_id: int | None = Field(default=None, foreign_key="villages.id", index=True)
    #: villagers_assembly (村民会议), representatives_meeting (村民代表会议) or general
    kind: str = Field(default="general", max_length=32)
    place: str = Field(default="", max_length=200)
    #: when the notice went out (scheduling publishes it); the law counts from here
    notice_published_at: datetime | None = _time(nullable=True)
    #: why a villagers' assembly is announced less than ten days ahead
    emergency_reason: str = Field(default="", max_length=500)
    cancel_reason: str = Field(default="", max_length=500)
    #: scheduled -> live -> ended, or scheduled -> cancelled
    status: str = Field(default="scheduled", max_length=16, index=True)
    created_by: int | None = Field(default=None, foreign_key="users.id")
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )
    started_at: datetime | None = _time(nullable=True)
    ended_at: datetime | None = _time(nullable=True)
    #: the seq of the newest timeline event; bumped in the event's transaction
    last_seq: int = 0
    #: the audit chain's digest: the hash of the newest event (see services/audit.py)
    last_hash: str = Field(default="", max_length=64)
    #: guests (where allowed) may write in the chat
    allow_guest_chat: bool = False
    #: the live room's current state (hand queue, floor, hall attendance, muted chat),
    #: rewritten in each event's transaction while the row is locked by the seq bump
    room_state: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class Member(SQLModel, table=True):
    """A villager on the roll: eligible to vote in the village's meetings."""

    __tablename__ = "members"
    __table_args__ = (UniqueConstraint("village_id", "pin"),)

    id: int | None = Field(default=None, primary_key=True)
    village_id: int = Field(foreign_key="villages.id", index=True)
    name: str = Field(max_length=64)
    phone: str = Field(default="", max_length=32)
    household: str = Field(default="", max_length=64)
    #: quorum rules count adults (18 or over) and representatives
    birth_year: int | None = None
    representative: bool = False
    #: 6 digits typed with the meeting code on a phone; unique in the village
    pin: str = Field(max_length=6)
    #: bumped when the invite is re-issued (lost phone): older tokens stop working
    invite_version: int = 1
    removed_at: datetime | None = _time(nullable=True)
    created_at: datetime = _now_column()


class AgendaItem(SQLModel, table=True):
    __tablename__ = "agenda_items"

    id: int | None = Field(default=None, primary_key=True)
    meeting_id: int = Field(foreign_key="meetings.id", index=True)
    position: int
    title: str = Field(max_length=200)
    description: str = Field(default="", max_length=4000)


class Event(SQLModel, table=True):
    """One stored state change of a meeting, in order (``seq``), for replay and audit."""

    __tablename__ = "events"
    __table_args__ = (UniqueConstraint("meeting_id", "seq"),)

    id: int | None = Field(default=None, primary_key=True)
    meeting_id: int = Field(foreign_key="meetings.id", index=True)
    seq: int
    type: str = Field(max_length=32)
    at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )
    data: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    #: sha256 of the previous event's hash and this event's canonical JSON
    hash: str = Field(default="", max_length=64)


class Vote(SQLModel, table=True):
    """A vote on an agenda item. Its result is frozen when it closes."""

    __tablename__ = "votes"

    id: int | None = Field(default=None, primary_key=True)
    meeting_id: int = Field(foreign_key="meetings.id", index=True)
    item_id: int | None = Field(default=None, foreign_key="agenda_items.id")
    question: str = Field(max_length=500)
    options: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    secret: bool = False
    #: the rule profile and its thresholds (services/rules.py)
    rule: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    #: open -> closed
    status: str = Field(default="open", max_length=16)
    opened_at: datetime = _now_column()
    closed_at: datetime | None = _time(nullable=True)
    #: members eligible when it opened (frozen; the list is vote_eligibles)
    eligible: int = 0
    #: accepted ballots; bumped in each ballot's transaction, which locks this row
    cast_count: int = 0
    #: the hall's show-of-hands counts entered by the committee, {option: n}
    hall_counts: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    result: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class VoteEligible(SQLModel, table=True):
    """Who may vote, frozen when the vote opens."""

    __tablename__ = "vote_eligibles"

    vote_id: int = Field(foreign_key="votes.id", primary_key=True)
    member_id: int = Field(foreign_key="members.id", primary_key=True)


class VoteParticipation(SQLModel, table=True):
    """Who voted: one row per member per vote, enforced by the primary key.

    Kept apart from the choices and without times or a row order (WITHOUT ROWID
    on SQLite), so nothing pairs a member with a secret ballot.
    """

    __tablename__ = "vote_participation"
    __table_args__ = {"sqlite_with_rowid": False}

    vote_id: int = Field(foreign_key="votes.id", primary_key=True)
    member_id: int = Field(foreign_key="members.id", primary_key=True)
    #: remote (their phone), hall (roll call by the committee)
    via: str = Field(default="remote", max_length=16)


class Ballot(SQLModel, table=True):
    """One choice. Keyed by its random receipt; a secret ballot names no member."""

    __tablename__ = "ballots"
    __table_args__ = {"sqlite_with_rowid": False}

    receipt: str = Field(primary_key=True, max_length=16)
    vote_id: int = Field(foreign_key="votes.id", index=True)
    choice: str = Field(max_length=100)
    #: remote or hall (roll call)
    source: str = Field(default="remote", max_length=16)
    #: open ballots only: who chose this (for the minutes)
    member_id: int | None = Field(default=None, foreign_key="members.id")


class BallotAttempt(SQLModel, table=True):
    """Every attempt to vote, accepted or refused, for the audit (never the choice)."""

    __tablename__ = "ballot_attempts"

    id: int | None = Field(default=None, primary_key=True)
    vote_id: int = Field(index=True)
    participant_id: str = Field(max_length=40)
    at: datetime = _now_column()
    #: "accepted" or the refusal's error code
    outcome: str = Field(max_length=32)


class Suggestion(SQLModel, table=True):
    """A member's suggestion or comment on a meeting (or an agenda item of it), and the answer."""

    __tablename__ = "suggestions"

    id: int | None = Field(default=None, primary_key=True)
    meeting_id: int = Field(foreign_key="meetings.id", index=True)
    item_id: int | None = Field(default=None, foreign_key="agenda_items.id")
    member_id: int = Field(foreign_key="members.id")
    author: str = Field(max_length=64)
    text: str = Field(max_length=2000)
    created_at: datetime = _now_column()
    #: open, adopted (采纳), answered (已答复), not_adopted (不采纳)
    status: str = Field(default="open", max_length=16)
    reply: str = Field(default="", max_length=2000)
    replied_at: datetime | None = _time(nullable=True)


class Proxy(SQLModel, table=True):
    """委托投票: for this meeting, ``proxy_id`` votes on behalf of ``member_id``."""

    __tablename__ = "proxies"

    meeting_id: int = Field(foreign_key="meetings.id", primary_key=True)
    member_id: int = Field(foreign_key="members.id", primary_key=True)
    proxy_id: int = Field(foreign_key="members.id", index=True)
    created_at: datetime = _now_column()


class Recording(SQLModel, table=True):
    """One recorded part of a meeting's media (a second part follows a server restart).

    The files live in ``RECORDINGS_DIR/<directory>``; part 1's ``started_at``
    (the wall time of its first frame) is where the timeline's ``t`` counts from.
    """

    __tablename__ = "recordings"
    __table_args__ = (UniqueConstraint("meeting_id", "part"),)

    id: int | None = Field(default=None, primary_key=True)
    meeting_id: int = Field(foreign_key="meetings.id", index=True)
    part: int = 1
    #: recording -> processing -> ready | interrupted | failed; expired once retention
    #: removed the media (the minutes and events stay)
    status: str = Field(default="recording", max_length=16, index=True)
    #: the server stopped without closing it (a crash): listed as interrupted when processed
    interrupted: bool = False
    directory: str = Field(max_length=200)
    started_at: datetime | None = _time(nullable=True)
    ended_at: datetime | None = _time(nullable=True)
    duration: float | None = None
    video_codec: str = Field(default="", max_length=32)
    #: post-processing, per step: {"mp4": {"status", "progress", "error"}, ...}
    steps: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    error: str = Field(default="", max_length=2000)
    created_at: datetime = _now_column()
