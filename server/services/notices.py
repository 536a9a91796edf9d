"""What goes out about a meeting: the calendar invite (and, later, the printed notice)."""

from __future__ import annotations

from datetime import timedelta

from icalendar import Calendar, Event

from ..store.models import as_utc
from .meetings import CANCELLED, MeetingView

#: how long a meeting is shown in calendars when nothing says otherwise
DEFAULT_LENGTH = timedelta(hours=2)


def ics(view: MeetingView, join_url: str) -> bytes:
    """An .ics calendar invite: title, time, place, agenda and the link to watch."""
    meeting = view.meeting
    calendar = Calendar()
    calendar.add("prodid", "-//Cunhui//village meetings//ZH")
    calendar.add("version", "2.0")
    calendar.add("method", "CANCEL" if meeting.status == CANCELLED else "PUBLISH")
    event = Event()
    event.add("uid", f"meeting-{meeting.id}-{meeting.code}@cunhui")
    event.add("summary", meeting.title)
    if meeting.starts_at is not None:
        starts = as_utc(meeting.starts_at)
        event.add("dtstart", starts)
        event.add("dtend", starts + DEFAULT_LENGTH)
    event.add("dtstamp", as_utc(meeting.notice_published_at or meeting.created_at))
    if meeting.place:
        event.add("location", meeting.place)
    lines = [f"{i}. {item.title}" for i, item in enumerate(view.agenda, start=1)]
    lines += ["", join_url, f"会议号 / Meeting code: {meeting.code}"]
    if meeting.status == CANCELLED:
        lines.insert(0, f"已取消 / Cancelled: {meeting.cancel_reason}\n")
        event.add("status", "CANCELLED")
    event.add("description", "\n".join(lines))
    event.add("url", join_url)
    calendar.add_component(event)
    return calendar.to_ical()
