"""Who may see and run which meeting. Another village's meeting is NotFound, not Forbidden:
its existence is none of the caller's business."""

from __future__ import annotations

from typing import TypeGuard

from ..errors import Forbidden, NotFound, Unauthorized
from ..store import Meeting
from .tokens import Principal


def is_host(principal: Principal | None, meeting: Meeting) -> TypeGuard[Principal]:
    """Whether ``principal`` is the committee of the meeting's own village (its hosts)."""
    return (
        principal is not None
        and principal.is_committee
        and principal.village_id == meeting.village_id
    )


def check_can_watch(principal: Principal | None, meeting: Meeting) -> None:
    """The committee and members of its village; anyone, where the meeting admits guests."""
    if principal is None:
        if meeting.allow_guests:
            return
        raise Unauthorized("this meeting is for village members: open your invite link")
    if principal.role in ("committee", "member"):
        if principal.village_id == meeting.village_id:
            return
        if meeting.allow_guests:
            return  # open to anyone with the link
        raise NotFound("no meeting {id}", params={"id": meeting.id})
    if meeting.allow_guests:
        return  # a guest, here or of another open meeting: open to anyone with the link
    raise Forbidden("you may not watch this meeting")


def check_can_run(principal: Principal, meeting: Meeting) -> None:
    """Only the committee of the meeting's own village starts, ends and configures it."""
    if principal.role != "committee":
        raise Forbidden("only the village committee may do this")
    if principal.village_id != meeting.village_id:
        raise NotFound("no meeting {id}", params={"id": meeting.id})


def require_host(principal: Principal | None, meeting: Meeting) -> Principal:
    """The caller, if they are the committee of the meeting's village; else Forbidden."""
    if not is_host(principal, meeting):
        raise Forbidden("only the village committee may do this")
    return principal
