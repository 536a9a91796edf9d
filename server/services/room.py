"""The live room's state: hand queue, floor, hall attendance, muted chat.

The state lives in ``meetings.room_state`` and changes only inside an event's
transaction (see ``timeline.record``), so every process sees the same queue.
"""

from __future__ import annotations

from ..store import Meeting


def floor_holder(meeting: Meeting) -> str | None:
    """The participant id (``m12``) holding the floor, or None."""
    floor = (meeting.room_state or {}).get("floor") or {}
    return floor.get("participant_id")
