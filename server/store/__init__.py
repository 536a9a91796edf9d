"""Storage: SQLModel tables and the async database handle."""

from .db import Database
from .models import AgendaItem, Event, Meeting, User, utcnow

__all__ = ["AgendaItem", "Database", "Event", "Meeting", "User", "utcnow"]
