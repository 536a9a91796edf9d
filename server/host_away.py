"""The host's connection dropped: tell the room, and ask the committee after a grace period.

The media reports a lost main publisher (``RoomEvent.publisher_lost``: its media
stopped arriving, or its connection failed), as opposed to one that hung up or was
replaced. While it is lost, every phone shows "the host's connection dropped,
reconnecting" (``host:away``); when a publisher delivers again, ``host:back``. After
``grace`` seconds away, the committee is asked whether to end the meeting
(``host:away_long`` to the committee's room), again every ``grace`` seconds while the
host stays away. Nothing ends by itself.

Transient events (no seq, nothing stored); a phone that joins late reads
:meth:`HostAway.state` in its join state.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

logger = logging.getLogger(__name__)

#: emit(event, payload, meeting id, to the committee only?)
Emit = Callable[[str, dict, int, bool], Coroutine[Any, Any, None]]


@dataclass
class _Away:
    since: str  # ISO 8601, UTC
    timer: asyncio.TimerHandle | None = None
    #: the committee has been asked (the grace ran out)
    asked: bool = False


class HostAway:
    """Per meeting: whether the host's connection is lost, since when, and the grace timer."""

    def __init__(self, emit: Emit, grace: float) -> None:
        self._emit = emit
        self.grace = grace
        self._away: dict[int, _Away] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def state(self, meeting_id: int) -> dict | None:
        """For the join state: ``{since, grace_s, asked}`` while the host is away, else None."""
        away = self._away.get(meeting_id)
        if away is None:
            return None
        return {"since": away.since, "grace_s": self.grace, "asked": away.asked}

    def update(self, meeting_id: int, lost: bool) -> None:
        """The media's word on the meeting's main publisher (every RoomEvent)."""
        away = self._away.get(meeting_id)
        if lost and away is None:
            since = datetime.now(UTC).isoformat(timespec="milliseconds")
            self._away[meeting_id] = away = _Away(since)
            self._ask_later(meeting_id, away)
            logger.warning("meeting %s: the host's connection is lost", meeting_id)
            self._spawn(
                self._emit("host:away", {"since": since, "grace_s": self.grace}, meeting_id, False)
            )
        elif not lost and away is not None:
            self.forget(meeting_id)
            logger.info("meeting %s: the host is back", meeting_id)
            self._spawn(self._emit("host:back", {}, meeting_id, False))

    def forget(self, meeting_id: int) -> None:
        """Stop waiting for the host (they are back, or the meeting ended)."""
        away = self._away.pop(meeting_id, None)
        if away is not None and away.timer is not None:
            away.timer.cancel()

    def _ask_later(self, meeting_id: int, away: _Away) -> None:
        def ask() -> None:
            if self._away.get(meeting_id) is not away:
                return
            away.asked = True
            logger.warning(
                "meeting %s: the host has been away since %s; asking the committee",
                meeting_id,
                away.since,
            )
            self._spawn(self._emit("host:away_long", {"since": away.since}, meeting_id, True))
            self._ask_later(meeting_id, away)  # asked again if they keep waiting

        away.timer = asyncio.get_running_loop().call_later(self.grace, ask)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def close(self) -> None:
        for meeting_id in list(self._away):
            self.forget(meeting_id)
        for task in list(self._tasks):
            task.cancel()
