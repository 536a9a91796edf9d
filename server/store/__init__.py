"""Storage: SQLModel tables and the async database handle."""

from .db import Database
from .models import AgendaItem, Event, Meeting, Member, User, Village, utcnow

__all__ = [
    "AgendaItem", "Database", "Event", "Meeting", "Member", "User", "Village", "utcnow",
]
