"""socket.io: the meeting room's live events (namespace ``/``, see docs/api.md).

Every client event is answered by an ack. Stored events follow one order:
write (commit, with a per-meeting seq), then broadcast, then acknowledge.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from http.cookies import SimpleCookie

import socketio

from media import RoomEvent

from . import keys
from .errors import BadRequest, CunhuiError, Unauthorized
from .services import identity, meetings, room, votes
from .services.access import check_can_watch
from .services.timeline import Recorded, events_after
from .services.tokens import Principal

logger = logging.getLogger(__name__)

#: socket.io payloads larger than this are refused by engine.io itself
MAX_PAYLOAD_BYTES = 64 * 1024
#: a dropped phone leaves the room after at most PING_INTERVAL + PING_TIMEOUT seconds
PING_INTERVAL = 15
PING_TIMEOUT = 15
#: chat messages per participant per window
CHAT_BURST, CHAT_WINDOW = 5, 10.0
#: chat is refused ("rate_limited") while this many room changes already wait
MAX_WAITING = 30
#: presence bursts (many joins at once) and vote progress are sent at most this often
PRESENCE_DELAY = 0.25


def room_of(meeting_id: int | str) -> str:
    return f"meeting:{meeting_id}"


def hosts_of(meeting_id: int | str) -> str:
    """The committee's own room in a meeting: who comes and goes is for them."""
    return f"meeting:{meeting_id}:hosts"


#: stored events for the committee only: who came and went (a join sent to 500 phones
#: would cost 500 sends), and who voted (never broadcast)
HOST_ONLY = ("attendance:joined", "attendance:left", "vote:ballot")


def ok(**fields) -> dict:
    return {"ok": True, **fields}


def refusal(exc: CunhuiError) -> dict:
    return {"ok": False, "error": exc.as_dict()}


class SlidingWindow:
    """At most ``burst`` accepted actions per ``window`` seconds, per key (this process)."""

    def __init__(self, burst: int, window: float) -> None:
        self.burst, self.window = burst, window
        self._times: dict[str, deque[float]] = defaultdict(deque)

    def take(self, key: str) -> None:
        now = time.monotonic()
        times = self._times[key]
        while times and now - times[0] > self.window:
            times.popleft()
        if len(times) >= self.burst:
            wait = self.window - (now - times[0])
            raise room.RateLimited(
                f"at most {self.burst} messages in {self.window:.0f} s: wait {wait:.0f} s"
            )
        times.append(now)


Action = Callable[..., Awaitable[Recorded | None]]


class MeetingNamespace(socketio.AsyncNamespace):
    """One handler per client event: validate, call the domain, store, broadcast, ack."""

    def __init__(self, realtime: Realtime) -> None:
        super().__init__("/")
        self.rt = realtime

    async def on_connect(self, sid, environ, auth=None):
        token = auth.get("token") if isinstance(auth, dict) else None
        if not token:
            cookie = SimpleCookie(environ.get("HTTP_COOKIE", ""))
            morsel = cookie.get("cunhui_session")
            token = morsel.value if morsel else None
        principal = None
        if token:
            try:
                principal = await self.rt.resolve(token)
            except Unauthorized as exc:
                if auth and auth.get("token"):
                    # the client's connect_error gets {"message": code, "data": {code, message}}
                    raise socketio.exceptions.ConnectionRefusedError(exc.code, exc.as_dict()) from exc
        await self.save_session(sid, {"principal": principal, "meeting_id": None})

    async def on_disconnect(self, sid, reason=None):
        session = await self.get_session(sid)
        meeting_id = session.get("meeting_id")
        if meeting_id is not None:
            await self.rt.device_left(sid, meeting_id, session.get("principal"))
            self.rt.schedule_presence(meeting_id)

    # ------------------------------------------------------------- join

    async def on_join(self, sid, data=None):
        return await self._guard(self._join(sid, data if data is not None else {}))

    async def _join(self, sid, data) -> dict:
        if not isinstance(data, dict) or "meeting_id" not in data:
            raise BadRequest("join needs {meeting_id}")
        since = data.get("since_seq")
        if since is not None and (not isinstance(since, int) or isinstance(since, bool) or since < 0):
            raise BadRequest("since_seq must be a whole number")
        session = await self.get_session(sid)
        principal: Principal | None = session["principal"]
        async with self.rt.database.session() as db:
            meeting = await meetings.get_meeting(db, data["meeting_id"])
            check_can_watch(principal, meeting)
        previous = session.get("meeting_id")
        if previous is not None and previous != meeting.id:
            await self.leave_room(sid, room_of(previous))
            await self.leave_room(sid, hosts_of(previous))
            await self.rt.device_left(sid, previous, principal)
            self.rt.schedule_presence(previous)
        session["meeting_id"] = meeting.id
        await self.save_session(sid, session)
        # In the room before reading: an event committed from here on is broadcast to
        # this client too, so nothing falls between the snapshot and the live stream.
        await self.enter_room(sid, room_of(meeting.id))
        if principal is not None and principal.is_committee and principal.village_id == meeting.village_id:
            await self.enter_room(sid, hosts_of(meeting.id))
        async with self.rt.database.session() as db:
            meeting = await meetings.get_meeting(db, meeting.id)
            view = await meetings.view(db, meeting)
            snap = await room.snapshot(db, meeting)
            vote_rows = await votes.meeting_votes(db, meeting.id)
            mine, held = set(), []
            if principal is not None and principal.role == "member":
                mine = await votes.voted_in(db, int(principal.id[1:]), [v.id for v in vote_rows])
                held = [p["member"] for p in await votes.proxies_of(db, meeting.id)
                        if f"m{p['proxy']['id']}" == principal.id]
                for entry in held:  # and whether each represented member has voted
                    entry["voted"] = sorted(await votes.voted_in(db, entry["id"], [v.id for v in vote_rows]))
            missed = await events_after(db, meeting.id, since) if since is not None else []
        is_host = bool(principal and principal.is_committee
                       and principal.village_id == meeting.village_id)
        for event in missed:
            if is_host or event.type not in HOST_ONLY:
                await self.emit(event.type, {**event.data, "seq": event.seq}, to=sid)
        self.rt.hall_counts[meeting.id] = snap.state.get("in_hall")
        await self.rt.device_joined(sid, meeting.id, principal)
        self.rt.expire_floor_later(meeting.id, snap.state.get("floor"))
        stats = self.rt.media.stats(str(meeting.id))
        state = {
            "meeting": view.as_dict(),
            "publishing": stats.publishing,
            "viewers": stats.viewers,
            **snap.as_dict(principal, meeting),
            "votes": [{**votes.vote_dict(v), "you_voted": v.id in mine} for v in vote_rows],
            "proxies_held": held,
        }
        self.rt.schedule_presence(meeting.id)
        you = principal.as_dict() if principal else {"id": None, "name": None, "role": "viewer"}
        return ok(you=you, state=state, seq=meeting.last_seq)

    # ------------------------------------------------------------- room events

    async def _guard(self, work) -> dict:
        """Run a handler; its refusal or a bug becomes an error ack, never a dropped one."""
        try:
            return await work
        except CunhuiError as exc:
            return refusal(exc)
        except Exception:
            logger.exception("socket.io handler failed")
            return {"ok": False, "error": {"code": "internal_error", "message": "server error"}}

    async def _joined(self, sid, data) -> tuple[int, Principal | None, dict]:
        """A room event's prelude: its payload (a JSON object) and the meeting this socket joined."""
        payload = {} if data is None else data
        if not isinstance(payload, dict):
            raise BadRequest("the payload must be a JSON object")
        session = await self.get_session(sid)
        meeting_id = session.get("meeting_id")
        if meeting_id is None:
            raise BadRequest("join a meeting first")
        return meeting_id, session.get("principal"), payload

    async def _act(self, sid, data, action: Action, before=None, sheddable=False) -> dict:
        """The common path of room events: the joined meeting, ``before`` checks, the change.

        ``sheddable`` (chat) is refused while too many changes wait for the room, so a
        chat storm cannot queue the chair's hand, floor and vote actions behind it.
        """

        async def work():
            meeting_id, principal, payload = await self._joined(sid, data)
            if before is not None:
                before(principal, payload)
            if sheddable and self.rt.waiting[meeting_id] >= MAX_WAITING:
                raise room.RateLimited("the room is busy: send it again in a moment")
            self.rt.waiting[meeting_id] += 1
            try:
                async with self.rt.room_lock(meeting_id):
                    async with self.rt.database.session() as db:
                        recorded = await action(db, meeting_id, principal, payload)
                    if recorded is not None:  # broadcast under the lock: in seq order
                        await self.rt.announce(recorded)
            finally:
                self.rt.waiting[meeting_id] -= 1
            if recorded is None:
                return ok()  # nothing changed (e.g. a hand already raised)
            return ok(seq=recorded.seq, **_ack_fields(recorded))

        return await self._guard(work())

    async def on_chat_send(self, sid, data=None):
        def limit(principal, payload):
            if principal is not None:
                self.rt.chat_limits.take(principal.id)

        return await self._act(sid, data, room.send_chat, before=limit, sheddable=True)

    async def on_chat_delete(self, sid, data=None):
        return await self._act(sid, data, room.delete_chat)

    async def on_chat_mute(self, sid, data=None):
        return await self._act(sid, data, room.mute_chat)

    async def on_hand_raise(self, sid, data=None):
        return await self._act(sid, data, lambda db, mid, p, _: room.raise_hand(db, mid, p))

    async def on_hand_lower(self, sid, data=None):
        return await self._act(sid, data, room.lower_hand)

    async def on_floor_grant(self, sid, data=None):
        return await self._act(sid, data, room.grant_floor)

    async def on_floor_revoke(self, sid, data=None):
        return await self._act(sid, data, lambda db, mid, p, _: room.revoke_floor(db, mid, p))

    async def on_attendance_hall(self, sid, data=None):
        return await self._act(sid, data, room.record_hall)

    async def on_agenda_goto(self, sid, data=None):
        return await self._act(sid, data, room.goto_item)

    # ------------------------------------------------------------- votes

    async def _vote(self, sid, data, work):
        """Votes' common path: the joined meeting, the payload, then ``work``."""

        async def run():
            return await work(*await self._joined(sid, data))

        return await self._guard(run())

    async def on_vote_open(self, sid, data=None):
        async def work(meeting_id, principal, payload):
            async with self.rt.room_lock(meeting_id):
                async with self.rt.database.session() as db:
                    recorded = await votes.open_vote(db, meeting_id, principal, payload)
                await self.rt.announce(recorded)
            return ok(vote_id=recorded.data["vote_id"], seq=recorded.seq)

        return await self._vote(sid, data, work)

    async def on_vote_cast(self, sid, data=None):
        async def work(meeting_id, principal, payload):
            self.rt.cast_limits.take(principal.id if principal else f"sid:{sid}")
            async with self.rt.room_lock(meeting_id):
                cast = await votes.cast_ballot(
                    self.rt.database.session, meeting_id, principal, payload)
            self.rt.schedule_progress(meeting_id, cast.recorded.data["vote_id"], cast.cast)
            return ok(receipt=cast.receipt)

        return await self._vote(sid, data, work)

    async def on_vote_roll(self, sid, data=None):
        async def work(meeting_id, principal, payload):
            member_id = payload.get("member_id")
            if not isinstance(member_id, int) or isinstance(member_id, bool):
                raise BadRequest("member_id must be a member's id")
            async with self.rt.room_lock(meeting_id):
                cast = await votes.cast_ballot(
                    self.rt.database.session, meeting_id, principal, payload,
                    member_id=member_id, source="hall")
            self.rt.schedule_progress(meeting_id, cast.recorded.data["vote_id"], cast.cast)
            return ok()

        return await self._vote(sid, data, work)

    async def on_vote_hall(self, sid, data=None):
        async def work(meeting_id, principal, payload):
            async with self.rt.room_lock(meeting_id):
                async with self.rt.database.session() as db:
                    recorded = await votes.hall_counts(db, meeting_id, principal, payload)
                await self.rt.announce(recorded)
            return ok(seq=recorded.seq)

        return await self._vote(sid, data, work)

    async def on_vote_close(self, sid, data=None):
        async def work(meeting_id, principal, payload):
            async with self.rt.room_lock(meeting_id):
                async with self.rt.database.session() as db:
                    result, recorded = await votes.close_vote(db, meeting_id, principal, payload)
                if recorded is not None:
                    await self.rt.announce(recorded)
            return ok(**result)

        return await self._vote(sid, data, work)

    async def on_attendance_list(self, sid, data=None):
        async def work():
            meeting_id, principal, _ = await self._joined(sid, data)
            async with self.rt.database.session() as db:
                meeting = await meetings.get_meeting(db, meeting_id)
            room.require_host(principal, meeting)
            return ok(**await self.rt.who_is_here(meeting_id))

        return await self._guard(work())

    async def trigger_event(self, event, *args):
        # socket.io event names with ":" map to on_chat_send etc.
        return await super().trigger_event(event.replace(":", "_"), *args)


def _ack_fields(recorded: Recorded) -> dict:
    if recorded.type == "chat:message":
        return {"id": recorded.data["id"]}
    return {}


class Realtime:
    """The socket.io server and what the rest of the app may broadcast through it."""

    def __init__(self, app) -> None:
        settings = app[keys.SETTINGS]
        manager = (
            socketio.AsyncRedisManager(settings.redis_url, channel=settings.redis_channel)
            if settings.redis_url else None
        )
        self.sio = socketio.AsyncServer(
            async_mode="aiohttp",
            client_manager=manager,
            max_http_buffer_size=MAX_PAYLOAD_BYTES,
            ping_interval=PING_INTERVAL,
            ping_timeout=PING_TIMEOUT,
            cors_allowed_origins=[settings.public_url] if settings.public_url else None,
        )
        self.sio.register_namespace(MeetingNamespace(self))
        self.sio.attach(app)
        self._app = app
        self.chat_limits = SlidingWindow(CHAT_BURST, CHAT_WINDOW)
        #: ballots (and refused attempts) per participant: a voter needs a few, not hundreds
        self.cast_limits = SlidingWindow(30, 10.0)
        #: meeting id -> participant id -> this process's connected sids
        self._devices: dict[int, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
        self._locks: dict[int, asyncio.Lock] = defaultdict(asyncio.Lock)
        #: room changes of each meeting waiting for (or holding) its lock
        self.waiting: dict[int, int] = defaultdict(int)
        self._presence_due: set[int] = set()
        #: vote id -> (meeting id, newest count) waiting to be sent as vote:progress
        self._progress_due: dict[int, tuple[int, int]] = {}
        self._floor_timers: dict[int, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task] = set()
        self.hall_counts: dict[int, int | None] = {}

    @property
    def database(self):
        return self._app[keys.DATABASE]

    @property
    def media(self):
        return self._app[keys.MEDIA]

    def room_lock(self, meeting_id: int) -> asyncio.Lock:
        """Room changes of one meeting queue here instead of contending for the database."""
        return self._locks[meeting_id]

    def _spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def check_redis(self) -> None:
        """With REDIS_URL, refuse to start unless Redis answers: a silent relay loses broadcasts."""
        url = self._app[keys.SETTINGS].redis_url
        if not url:
            return
        import redis.asyncio as aioredis

        client = aioredis.from_url(url, socket_connect_timeout=3)
        try:
            await client.ping()
        except Exception as exc:
            raise RuntimeError(f"REDIS_URL {url} does not answer: {exc}") from exc
        finally:
            await client.aclose()
        logger.info("socket.io relays through Redis at %s", url)

    async def resolve(self, token: str) -> Principal:
        async with self.database.session() as db:
            return await identity.resolve(db, self._app[keys.TOKENS], token)

    # ------------------------------------------------------------- broadcasting

    async def announce(self, recorded: Recorded) -> None:
        """After the commit: act on media, broadcast to the room, then timers and presence."""
        meeting_id = recorded.meeting.id
        if recorded.type == "floor:changed":
            data = recorded.data
            if data.get("ended") or data.get("participant_id") is None:
                # the old speaker's voice stops before anyone is told the floor changed
                await self.media.stop_floor(str(meeting_id))
        audience = hosts_of(meeting_id) if recorded.type in HOST_ONLY else room_of(meeting_id)
        await self.sio.emit(recorded.type, recorded.payload(), room=audience)
        if recorded.type == "floor:changed":
            self.expire_floor_later(meeting_id, recorded.meeting.room_state.get("floor"))
        elif recorded.type == "attendance:hall":
            self.hall_counts[meeting_id] = recorded.data.get("in_hall")
            self.schedule_presence(meeting_id)

    async def record_and_broadcast(self, meeting_id: int, action: Action, *args, **kwargs) -> None:
        async with self.room_lock(meeting_id):
            async with self.database.session() as db:
                recorded = await action(db, meeting_id, *args, **kwargs)
            if recorded is not None:
                await self.announce(recorded)

    async def meeting_status(self, meeting_id: int, status: str, seq: int, **extra) -> None:
        """Tell the room the meeting's status changed (already committed as ``seq``).

        Callers hold the meeting's room lock, so the room hears changes in seq order.
        """
        await self.sio.emit(
            "meeting:status", {"status": status, **extra, "seq": seq}, room=room_of(meeting_id)
        )

    async def meeting_ended(self, meeting_id: int) -> None:
        """After the end: the floor ends and open votes close, each announced in turn."""
        await self.record_and_broadcast(
            meeting_id, room.revoke_floor, None, reason="meeting_ended", by_server=True
        )
        await self._close_open_votes(meeting_id)

    async def _close_open_votes(self, meeting_id: int) -> None:
        """Ending the meeting closes its open votes, each with its result announced."""
        async with self.room_lock(meeting_id):
            async with self.database.session() as db:
                open_ids = [v.id for v in await votes.meeting_votes(db, meeting_id)
                            if v.status == "open"]
            for vote_id in open_ids:
                async with self.database.session() as db:
                    _, recorded = await votes.close_vote(
                        db, meeting_id, None, {"vote_id": vote_id}, by_server=True)
                if recorded is not None:
                    await self.announce(recorded)

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
            self._spawn(self.record_and_broadcast(
                meeting_id, room.revoke_floor, None, reason="time_up", only_since=since,
                by_server=True,
            ))

        self._floor_timers[meeting_id] = asyncio.get_running_loop().call_later(
            max(delay, 0), expire
        )

    # ------------------------------------------------------------- attendance and presence

    async def device_joined(self, sid: str, meeting_id: int, principal: Principal | None) -> None:
        """A participant's first device in the room is a join on the timeline."""
        if principal is None:
            return
        devices = self._devices[meeting_id][principal.id]
        first = not devices
        devices.add(sid)
        if first:
            await self.record_and_broadcast(meeting_id, room.record_presence, principal, True)

    async def device_left(self, sid: str, meeting_id: int, principal: Principal | None) -> None:
        """A participant's last device gone (closed, or silent past the ping timeout)."""
        if principal is None:
            return
        devices = self._devices[meeting_id].get(principal.id)
        if not devices or sid not in devices:
            return
        devices.discard(sid)
        if not devices:
            del self._devices[meeting_id][principal.id]
            try:
                await self.record_and_broadcast(meeting_id, room.record_presence, principal, False)
            except CunhuiError:
                logger.info("leave of %s in meeting %s not recorded", principal.id, meeting_id)

    async def who_is_here(self, meeting_id: int) -> dict:
        participants: dict[str, dict] = {}
        anonymous = 0
        for sid, _ in self.sio.manager.get_participants("/", room_of(meeting_id)):
            principal = (await self.sio.get_session(sid)).get("principal")
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
            await self.sio.emit("vote:progress", {"vote_id": vote_id, "cast": count},
                                room=room_of(meeting))

        self._spawn(later())

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

    async def send_presence(self, meeting_id: int) -> None:
        """Broadcast who is here. Transient: carries no seq. One person on two devices is one."""
        here = await self.who_is_here(meeting_id)
        people = here["participants"]
        remote = sum(1 for p in people if p["role"] != "committee") + here["anonymous"]
        stats = self.media.stats(str(meeting_id))
        payload = {
            "online": len(people) + here["anonymous"],
            "remote": remote,
            "viewers": stats.viewers,
            "publishing": stats.publishing,
        }
        if self.hall_counts.get(meeting_id) is not None:
            payload["in_hall"] = self.hall_counts[meeting_id]
        await self.sio.emit("presence", payload, room=room_of(meeting_id))

    async def emit_transient(self, event: str, payload: dict, meeting_id: int) -> None:
        """A broadcast that is not a stored event (no seq), e.g. ``recording:status``."""
        await self.sio.emit(event, payload, room=room_of(meeting_id))

    def on_media_event(self, event: RoomEvent) -> None:
        """Media listener: audience or publisher changed; refresh everyone's presence."""
        try:
            meeting_id = int(event.room_id)
        except ValueError:
            return
        self.schedule_presence(meeting_id)

    async def close(self) -> None:
        for timer in self._floor_timers.values():
            timer.cancel()
        for task in list(self._tasks):
            task.cancel()
