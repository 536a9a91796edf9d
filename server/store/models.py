"""The tables. Times are stored in UTC."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, UniqueConstraint
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def _time(nullable: bool = False) -> Any:
    return Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=nullable))


class User(SQLModel, table=True):
    """A committee account (村委会): may schedule, start and run meetings."""

    __tablename__ = "users"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=64, unique=True, index=True)
    password_hash: str
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
    #: scheduled -> live -> ended
    status: str = Field(default="scheduled", max_length=16, index=True)
    created_by: int | None = Field(default=None, foreign_key="users.id")
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )
    started_at: datetime | None = _time(nullable=True)
    ended_at: datetime | None = _time(nullable=True)
    #: the seq of the newest timeline event; bumped in the event's transaction
    last_seq: int = 0


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
