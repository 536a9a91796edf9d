"""The meeting room's live side: the one owner of "store, then broadcast".

Every stored room change, whether a socket event, an HTTP request or the server's own
timers, goes through :meth:`Live.record_and_broadcast`: the meeting's turn
(server/room_lock.py, the committee's first), a database session, the change (which
commits it with its seq), then :meth:`Live.announce`: media first (the floor's voice
stops), then the event to its audience (:data:`HOST_ONLY`: the committee's own room),
then timers and presence. Broadcasting under the turn keeps every room in seq order.

No socket.io here: broadcasts go through an :class:`Audience` (server/sockets.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from sqlmodel.ext.asyncio.session import AsyncSession

from media import MediaHub, PeerSession, RoomEvent

from .attendance import Attendance
from .host_away import HostAway
from .room_lock import RoomLock, RoomTurn
from .services import meetings, room, votes
from .services.access import is_host
from .services.timeline import Recorded
from .services.tokens import Principal
from .store import Database, Meeting

logger = logging.getLogger(__name__)

#: any participant's change (hands, ...) is refused while this many wait; ballots
#: are never shed (each member casts one), nor are the committee's actions
MAX_QUEUED = 200
#: presence bursts (many joins at once) and vote progress are sent at most this often
PRESENCE_DELAY = 0.25
#: stored events for the committee only: who came and went (a join sent to 500 phones
#: would cost 500 sends), and who voted (never broadcast)
HOST_ONLY = ("attendance:joined", "attendance:left", "vote:ballot")

#: one change to the room, run in a session: it commits and returns what it stored
Change = Callable[[AsyncSession], Awaitable[Recorded | None]]
#: who makes a change: a participant, an anonymous viewer (None), or the server itself
By = Principal | None | Literal["server"]
SERVER: Literal["server"] = "server"


def room_of(meeting_id: int | str) -> str:
    return f"meeting:{meeting_id}"


def hosts_of(meeting_id: int | str) -> str:
    """The committee's own room in a meeting: who comes and goes is for them."""
    return f"meeting:{meeting_id}:hosts"


def principal_room(principal_id: str) -> str:
    """Every socket of one participant (all their devices, in every process)."""
    return f"principal:{principal_id}"


def audience_of(event_type: str, meeting_id: int) -> str:
    """The room that hears a stored event: the hosts' for HOST_ONLY events."""
    return hosts_of(meeting_id) if event_type in HOST_ONLY else room_of(meeting_id)


def hidden_from(principal: Principal | None, meeting: Meeting) -> tuple[str, ...]:
    """The stored events ``principal`` may not read in the meeting's timeline."""
    return () if is_host(principal, meeting) else HOST_ONLY


def status_changed(meeting: Meeting, seq: int | None, **extra: object) -> Recorded | None:
    """The ``meeting:status`` event a lifecycle change stored as ``seq`` (None: no change)."""
    if seq is None:
        return None
    return Recorded(seq, "meeting:status", {"status": meeting.status, **extra}, meeting)


class Audience(Protocol):
    """Where broadcasts go and who is there (``SocketAudience`` in server/sockets.py)."""

    async def emit(self, event: str, data: dict, room: str) -> None: ...

    async def principals_in(self, room: str) -> list[Principal | None]:
        """Each socket in ``room``: its participant, or None for an anonymous viewer."""
        ...

    async def sign_out(self, principal_id: str, reason: str) -> None:
        """Tell a participant's sockets their sign-in is revoked, and close them."""
        ...


class Live:
    """The per-meeting locks, broadcasts, timers and presence of every live meeting."""

    def __init__(
        self,
        audience: Audience,
        database: Callable[[], Database],
        media: Callable[[], MediaHub],
        secret_vote_minimum: int,
        host_away_grace: float = 120.0,
        attendance_leave_grace: float = 60.0,
    ) -> None:
        self.audience = audience
        #: getters: the database and the media hub are opened after the app is built
        self._database, self._media = database, media
        #: Settings.secret_vote_min_electorate: a secret vote's smallest electorate and group
        self.secret_vote_minimum = secret_vote_minimum
        #: a participant's change is refused ("the room is busy") while this many wait
        self.max_queued = MAX_QUEUED
        #: meeting id -> its lock, only while a change holds or waits for it
        self._locks: dict[int, RoomLock] = {}
        #: who is here on this process's sockets, and leaves in their grace (server/attendance.py)
        self.attendance = Attendance(self._record_presence, attendance_leave_grace)
        #: meeting id -> participant id -> this process's connected sids
        self._devices: dict[int, dict[str, set[str]]] = self.attendance.devices
        self._presence_due: set[int] = set()
        #: vote id -> (meeting id, newest count) waiting to be sent as vote:progress
        self._progress_due: dict[int, tuple[int, int]] = {}
        self._floor_timers: dict[int, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.hall_counts: dict[int, int | None] = {}
        #: meeting id -> ids of the WHEP sessions the committee's own devices opened
        self._committee_viewers: dict[int, set[str]] = {}
        #: the host's lost connection: host:away / host:back, and the committee's prompt
        self.host_away = HostAway(self._emit_host_away, host_away_grace)

    @property
    def database(self) -> Database:
        return self._database()

    @property
    def media(self) -> MediaHub:
        return self._media()

    # ------------------------------------------------------------- turns

    def room_lock(
        self, meeting_id: int, first: bool = False, shed_at: int | None = None
    ) -> RoomTurn:
        """Room changes of one meeting queue here instead of contending for the database.

        ``first``: the committee's (or the server's own) change, served before every
        participant's waiting one. ``shed_at``: see RoomTurn.
        """
        return RoomTurn(self._locks, meeting_id, first, shed_at)

    def room_turn(self, meeting_id: int, by: By, shed_at: int | None = None) -> RoomTurn:
        """A change's turn: the server's and the committee's go first and are never shed."""
        if isinstance(by, str) or (by is not None and by.is_committee):
            return self.room_lock(meeting_id, first=True)
        return self.room_lock(meeting_id, shed_at=shed_at)

    async def record_and_broadcast(
        self, meeting_id: int, change: Change, *, by: By = SERVER, shed_at: int | None = None
    ) -> Recorded | None:
        """Take the meeting's turn, run ``change`` in a session, then announce what it stored.

        ``by``: whose change (the server's by default); ``shed_at``: a participant's
        change is refused ("the room is busy") while that many of theirs wait.
        """
        async with self.room_turn(meeting_id, by, shed_at):
            async with self.database.session() as db:
                recorded = await change(db)
            if recorded is not None:  # broadcast under the turn: in seq order
                await self.announce(recorded)
        return recorded

    # ------------------------------------------------------------- broadcasting

    async def announce(self, recorded: Recorded) -> None:
        """After the commit: act on media, broadcast to the room, then timers and presence."""
        meeting_id = recorded.meeting.id
        assert meeting_id is not None, "a stored event's meeting is a stored row"
        if recorded.type == "floor:changed":
            data = recorded.data
            if data.get("ended") or data.get("participant_id") is None:
                # the old speaker's voice stops before anyone is told the floor changed
                await self.media.stop_floor(str(meeting_id))
        await self.audience.emit(
            recorded.type, recorded.payload(), audience_of(recorded.type, meeting_id)
        )
        if recorded.type == "floor:changed":
            self.expire_floor_later(meeting_id, (recorded.meeting.room_state or {}).get("floor"))
        elif recorded.type == "attendance:hall":
            self.hall_count_is(meeting_id, recorded.data.get("in_hall"))
            self.schedule_presence(meeting_id)

    async def emit_transient(self, event: str, payload: dict, meeting_id: int) -> None:
        """A broadcast that is not a stored event (no seq), e.g. ``recording:status``."""
        await self.audience.emit(event, payload, room_of(meeting_id))

    async def take_floor_back(self, meeting_id: int, **why: Any) -> None:
        """The server ends the floor (``reason``, ``only_since``, ``only_holder``)."""
        await self.record_and_broadcast(
            meeting_id, lambda db: room.revoke_floor(db, meeting_id, None, by_server=True, **why)
        )

    async def meeting_ended(self, meeting_id: int) -> None:
        """After the end: the floor ends and open votes close, each announced in turn."""
        await self.take_floor_back(meeting_id, reason="meeting_ended")
        await self._close_open_votes(meeting_id)
        self.hall_counts.pop(meeting_id, None)
        self.host_away.forget(meeting_id)

    async def _close_open_votes(self, meeting_id: int) -> None:
        """Ending the meeting closes its open votes, each with its result announced.

        One turn for all of them (not ``record_and_broadcast`` per vote): no
        participant's change may slip in between the end and the last result.
        """
        async with self.room_lock(meeting_id, first=True):
            async with self.database.session() as db:
                open_ids = [
                    v.id for v in await votes.meeting_votes(db, meeting_id) if v.status == "open"
                ]
            for vote_id in open_ids:
                async with self.database.session() as db:
                    _, recorded = await votes.close_vote(
                        db,
                        meeting_id,
                        None,
                        {"vote_id": vote_id},
                        by_server=True,
                        min_secret_group=self.secret_vote_minimum,
                    )
                if recorded is not None:
                    await self.announce(recorded)

    async def revoke(self, principal_id: str, reason: str) -> None:
        """A participant's sign-in was revoked (and committed): close their sockets now.

        Until they close (a message in flight), every event re-checks the sign-in anyway.
        A revoked member who holds the floor loses it: their voice stops for everyone.
        """
        await self.audience.sign_out(principal_id, reason)
        async with self.database.session() as db:
            live = await meetings.live_meeting_ids(db)
        for meeting_id in live:
            await self.take_floor_back(meeting_id, reason="revoked", only_holder=principal_id)

    # ------------------------------------------------------------- the floor's time limit

    def expire_floor_later(self, meeting_id: int, floor: dict | None) -> None:
        """Take the floor back when its speaking time runs out (now, if it already has)."""
        timer = self._floor_timers.pop(meeting_id, None)
        if timer is not None:
            timer.cancel()
        if not floor or not floor.get("until"):
            return
        delay = (datetime.fromisoformat(floor["until"]) - datetime.now(UTC)).total_seconds()
        since = floor["since"]

        def expire() -> None:
            self._floor_timers.pop(meeting_id, None)
            self._spawn(self.take_floor_back(meeting_id, reason="time_up", only_since=since))

        self._floor_timers[meeting_id] = asyncio.get_running_loop().call_later(
            max(delay, 0), expire
        )

    # ------------------------------------------------------------- attendance and presence

    async def device_joined(self, sid: str, meeting_id: int, principal: Principal | None) -> None:
        """A participant's first device in the room is a join on the timeline (one back
        within ATTENDANCE_LEAVE_GRACE of their last one going: nothing)."""
        await self.attendance.joined(sid, meeting_id, principal)

    async def device_left(
        self, sid: str, meeting_id: int, principal: Principal | None, silent: float = 0
    ) -> None:
        """A participant's last device gone (closed, or ``silent`` seconds past the ping
        timeout): their leave is recorded once the grace has run out with none back."""
        await self.attendance.left(sid, meeting_id, principal, silent)

    async def _record_presence(
        self, meeting_id: int, principal: Principal, joined: bool, left_at: str | None = None
    ) -> None:
        await self.record_and_broadcast(
            meeting_id,
            lambda db: room.record_presence(db, meeting_id, principal, joined, left_at=left_at),
            by=principal,
        )

    async def who_is_here(self, meeting_id: int) -> dict:
        participants: dict[str, dict] = {}
        anonymous = 0
        for principal in await self.audience.principals_in(room_of(meeting_id)):
            if principal is None:
                anonymous += 1
                continue
            entry = participants.setdefault(principal.id, {**principal.as_dict(), "devices": 0})
            entry["devices"] += 1
        return {"participants": list(participants.values()), "anonymous": anonymous}

    def schedule_progress(self, meeting_id: int, vote_id: int, cast: int) -> None:
        """Send ``vote:progress`` soon: 500 ballots in a second become a few messages."""
        pending = self._progress_due.get(vote_id)
        self._progress_due[vote_id] = (meeting_id, max(cast, pending[1] if pending else 0))
        if pending is not None:
            return

        async def later() -> None:
            await asyncio.sleep(PRESENCE_DELAY)
            meeting, count = self._progress_due.pop(vote_id)
            await self.audience.emit(
                "vote:progress", {"vote_id": vote_id, "cast": count}, room_of(meeting)
            )

        self._spawn(later())

    def hall_count_is(self, meeting_id: int, in_hall: int | None) -> None:
        """The hall's headcount, as stored: ``presence`` carries it to every screen."""
        self.hall_counts[meeting_id] = in_hall

    def schedule_presence(self, meeting_id: int) -> None:
        """Send ``presence`` soon; a burst of joins becomes one message."""
        if meeting_id in self._presence_due:
            return
        self._presence_due.add(meeting_id)

        async def later() -> None:
            await asyncio.sleep(PRESENCE_DELAY)
            self._presence_due.discard(meeting_id)
            await self.send_presence(meeting_id)

        self._spawn(later())

    def committee_watching(self, meeting_id: int, session: PeerSession) -> None:
        """A committee member's own device plays the meeting (a WHEP session): not a viewer."""
        watching = self._committee_viewers.setdefault(meeting_id, set())
        watching.add(session.id)

        def closed(_: PeerSession) -> None:
            watching.discard(session.id)
            if not watching and self._committee_viewers.get(meeting_id) is watching:
                del self._committee_viewers[meeting_id]

        session.on_close(closed)

    def viewer_count(self, meeting_id: int) -> int:
        """The media's viewers (WHEP sessions) of the meeting, the committee's own left out."""
        viewers = self.media.stats(str(meeting_id)).viewers
        return max(0, viewers - len(self._committee_viewers.get(meeting_id, ())))

    async def send_presence(self, meeting_id: int) -> None:
        """Broadcast who is here. Transient: carries no seq. One person on two devices is one.

        ``online`` and ``remote`` count the people watching, not the committee: each
        member or guest once however many devices, plus each anonymous viewer's socket;
        ``committee`` is how many committee accounts are in the room; ``viewers`` is
        the media's viewer sessions, the committee's own devices left out.
        """
        here = await self.who_is_here(meeting_id)
        people = here["participants"]
        if not people and not here["anonymous"]:
            self.hall_counts.pop(meeting_id, None)  # nobody here to show it to
        committee = sum(1 for p in people if p["role"] == "committee")
        remote = len(people) - committee + here["anonymous"]
        stats = self.media.stats(str(meeting_id))
        payload = {
            "online": remote,
            "remote": remote,
            "committee": committee,
            "viewers": self.viewer_count(meeting_id),
            "publishing": stats.publishing,
        }
        if self.hall_counts.get(meeting_id) is not None:
            payload["in_hall"] = self.hall_counts[meeting_id]
        await self.audience.emit("presence", payload, room_of(meeting_id))

    def on_media_event(self, event: RoomEvent) -> None:
        """Media listener: audience or publisher changed; refresh everyone's presence."""
        try:
            meeting_id = int(event.room_id)
        except ValueError:
            return
        self.schedule_presence(meeting_id)
        self.host_away.update(meeting_id, event.publisher_lost)

    async def _emit_host_away(
        self, event: str, payload: dict, meeting_id: int, committee: bool
    ) -> None:
        await self.audience.emit(
            event, payload, hosts_of(meeting_id) if committee else room_of(meeting_id)
        )

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        await self.attendance.close()  # leaves in their grace are recorded now
        self.host_away.close()
        for timer in self._floor_timers.values():
            timer.cancel()
        for task in list(self._tasks):
            task.cancel()
