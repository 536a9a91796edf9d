"""socket.io: the meeting room's live events (namespace ``/``, see docs/api.md).

Every client event is answered by an ack. Stored events follow one order:
write (commit, with a per-meeting seq), then broadcast, then acknowledge.

Every client event first passes ``MeetingNamespace.trigger_event``: the sender's
token bucket (``SOCKET_EVENT_RATE``/``SOCKET_EVENT_BURST`` per participant), then a
fresh look at their sign-in (a revoked member's open socket can do nothing more).
Room changes of a meeting queue on its ``RoomLock``, where the committee's go first.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from http.cookies import SimpleCookie

import socketio

from media import RoomEvent

from . import keys, socket_packets
from .errors import BadRequest, CunhuiError, Unauthorized
from .services import identity, meetings, room, votes
from .services.access import check_can_watch
from .services.ratelimit import address_key
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
#: hand raises and lowers per participant per window
HAND_CHANGES, HAND_WINDOW = 10, 60.0
#: guests writing from one client address share this many chat lines per CHAT_WINDOW
#: (a guest token costs nothing: sixty of them must not make sixty allowances)
GUEST_CHAT_PER_ADDRESS = 3 * CHAT_BURST
#: chat is refused ("rate_limited") while this many participants' changes already wait
MAX_WAITING = 30
#: any other participant's change (hands, ...) is refused while this many wait; ballots
#: are never shed (each member casts one), nor are the committee's actions
MAX_QUEUED = 200
#: a committee account may send this many times the participants' event rate and burst:
#: one clerk works the meeting from several screens (roll calls, closing votes)
COMMITTEE_EVENT_FACTOR = 10
#: a socket refused this many times its burst within the time its bucket takes to fill
#: (burst / rate: 4 s by default) is not a person tapping: it is disconnected
HAMMER_FACTOR = 10
#: a rejoin replays at most this many missed events; further behind, the snapshot is the state
MAX_REPLAY = 500
#: presence bursts (many joins at once) and vote progress are sent at most this often
PRESENCE_DELAY = 0.25
#: sent to a participant's sockets when their sign-in is revoked, just before they close
REVOKED = "session:revoked"
#: lifecycle events the server itself triggers (a client may not send them)
LIFECYCLE = ("connect", "disconnect")


def room_of(meeting_id: int | str) -> str:
    return f"meeting:{meeting_id}"


def hosts_of(meeting_id: int | str) -> str:
    """The committee's own room in a meeting: who comes and goes is for them."""
    return f"meeting:{meeting_id}:hosts"


def principal_room(principal_id: str) -> str:
    """Every socket of one participant (all their devices, in every process)."""
    return f"principal:{principal_id}"


#: stored events for the committee only: who came and went (a join sent to 500 phones
#: would cost 500 sends), and who voted (never broadcast)
HOST_ONLY = ("attendance:joined", "attendance:left", "vote:ballot")


def ok(**fields) -> dict:
    return {"ok": True, **fields}


def refusal(exc: CunhuiError) -> dict:
    return {"ok": False, "error": exc.as_dict()}


def client_address(environ: dict) -> str:
    """The socket's client address, as the HTTP side sees it.

    engine.io's REMOTE_ADDR is a placeholder; its aiohttp request has passed the
    app's middlewares, so behind TRUSTED_PROXIES its ``remote`` is already the
    address from X-Forwarded-For (server/http/proxies.py), and the peer's otherwise.
    """
    request = environ.get("aiohttp.request")
    remote = getattr(request, "remote", None)
    return remote or environ.get("REMOTE_ADDR") or "unknown"


class SlidingWindow:
    """At most ``burst`` accepted actions per ``window`` seconds, per key (this process)."""

    def __init__(self, burst: int, window: float, max_keys: int = 20_000) -> None:
        self.burst, self.window, self.max_keys = burst, window, max_keys
        self._times: dict[str, deque[float]] = {}

    def check(self, key: str) -> None:
        """Raise RateLimited if ``key`` has no action left now; record nothing."""
        now = time.monotonic()
        times = self._times.get(key)
        if times is None:
            return
        while times and now - times[0] > self.window:
            times.popleft()
        if len(times) >= self.burst:
            wait = self.window - (now - times[0])
            raise room.RateLimited(
                f"at most {self.burst} messages in {self.window:.0f} s: wait {wait:.0f} s",
                retry_after=wait,
            )

    def record(self, key: str) -> None:
        times = self._times.get(key)
        if times is None:
            if len(self._times) >= self.max_keys:
                self._prune()
            times = self._times[key] = deque()
        times.append(time.monotonic())

    def take(self, key: str) -> None:
        self.check(key)
        self.record(key)

    def _prune(self) -> None:
        """Forget keys with nothing in the window (guest ids and sids come and go)."""
        now = time.monotonic()
        for key in [k for k, t in self._times.items() if not t or now - t[-1] > self.window]:
            del self._times[key]


def take_all(*limits: tuple[SlidingWindow, str]) -> None:
    """Take one action from each (window, key), or from none if any refuses."""
    for window, key in limits:
        window.check(key)
    for window, key in limits:
        window.record(key)


class TokenBuckets:
    """Per key: up to ``burst`` events at once, refilled at ``rate`` per second (this process).

    ``scale`` multiplies both for one key (the committee's larger allowance). A bucket
    left alone for ``burst / rate`` seconds is full again, so it is forgotten.
    """

    def __init__(self, rate: float, burst: int, max_keys: int = 50_000) -> None:
        self.rate, self.burst, self.max_keys = rate, burst, max_keys
        #: key -> [tokens, time of the last take]
        self._buckets: dict[str, list[float]] = {}

    def take(self, key: str, scale: float = 1.0) -> float:
        """Take a token; return 0, or the seconds until one is there (nothing taken)."""
        now = time.monotonic()
        rate, burst = self.rate * scale, self.burst * scale
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_keys:
                self._prune(now)
            bucket = self._buckets[key] = [burst, now]
        tokens = min(burst, bucket[0] + (now - bucket[1]) * rate)
        bucket[1] = now
        if tokens < 1:
            bucket[0] = tokens
            return (1 - tokens) / rate
        bucket[0] = tokens - 1
        return 0.0

    def forget(self, key: str) -> None:
        self._buckets.pop(key, None)

    def __len__(self) -> int:
        return len(self._buckets)

    def _prune(self, now: float) -> None:
        full_after = self.burst / self.rate  # the same for every scale
        for key in [k for k, b in self._buckets.items() if now - b[1] >= full_after]:
            del self._buckets[key]


class RoomLock:
    """One meeting's room changes, one at a time; the committee's turn comes first.

    Participants' changes wait behind every waiting committee change, so however
    many a crowd (or one hostile phone) has queued, the chair's next action is the
    next change made. ``waiting`` counts the participants' changes in line (they
    are shed beyond a limit); ``users`` its holder and waiters (at 0 it is dropped).
    """

    def __init__(self) -> None:
        self._held = False
        self._first: deque[asyncio.Future] = deque()
        self._rest: deque[asyncio.Future] = deque()
        self.users = 0

    @property
    def waiting(self) -> int:
        return len(self._rest)

    def locked(self) -> bool:
        return self._held

    async def acquire(self, first: bool = False) -> None:
        if not self._held and not self._first and not self._rest:
            self._held = True
            return
        turn = asyncio.get_running_loop().create_future()
        line = self._first if first else self._rest
        line.append(turn)
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self.release()  # handed the lock while being cancelled: pass it on
            else:
                try:
                    line.remove(turn)
                except ValueError:
                    pass
            raise

    def release(self) -> None:
        """Hand the lock to the next in line (the committee's first), or free it."""
        for line in (self._first, self._rest):
            while line:
                turn = line.popleft()
                if not turn.done():
                    turn.set_result(None)
                    return
        self._held = False


class RoomTurn:
    """``async with``: one turn at a meeting's RoomLock, made when entered, dropped when idle.

    ``shed_at``: refuse (``rate_limited``) instead of queueing while that many
    participants' changes already wait. No lock is kept for a meeting nobody is
    changing, so requests naming ever-new meeting ids leave nothing behind.
    """

    def __init__(
        self, locks: dict[int, RoomLock], meeting_id: int, first: bool, shed_at: int | None
    ) -> None:
        self._locks, self.meeting_id, self.first, self.shed_at = locks, meeting_id, first, shed_at
        self._lock: RoomLock | None = None

    async def __aenter__(self) -> None:
        lock = self._locks.get(self.meeting_id)
        if lock is None:
            lock = self._locks[self.meeting_id] = RoomLock()
        if self.shed_at is not None and lock.waiting >= self.shed_at:
            self._drop_if_idle(lock)
            raise room.RateLimited("the room is busy: send it again in a moment", retry_after=1)
        lock.users += 1
        try:
            await lock.acquire(self.first)
        except BaseException:
            lock.users -= 1
            self._drop_if_idle(lock)
            raise
        self._lock = lock

    async def __aexit__(self, *exc) -> None:
        lock, self._lock = self._lock, None
        lock.release()
        lock.users -= 1
        self._drop_if_idle(lock)

    def _drop_if_idle(self, lock: RoomLock) -> None:
        if lock.users == 0 and self._locks.get(self.meeting_id) is lock:
            del self._locks[self.meeting_id]


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
                    raise socketio.exceptions.ConnectionRefusedError(
                        exc.code, exc.as_dict()
                    ) from exc
        await self.save_session(
            sid,
            {
                "principal": principal,
                # kept to look at the sign-in again on every event (revocation)
                "token": token if principal is not None else None,
                "meeting_id": None,
                # keyed as the HTTP lockouts are: an IPv6 client is its /64
                "address": address_key(client_address(environ)),
            },
        )
        if principal is not None:
            await self.enter_room(sid, principal_room(principal.id))
        self.rt.expect_join(sid)

    async def on_disconnect(self, sid, reason=None):
        self.rt.socket_gone(sid)
        session = await self.get_session(sid)
        meeting_id = session.get("meeting_id")
        if meeting_id is not None:
            await self.rt.device_left(sid, meeting_id, session.get("principal"))
            self.rt.schedule_presence(meeting_id)

    # ------------------------------------------------------------- every event

    async def trigger_event(self, event, *args):
        sid = args[0] if args else None
        if event in LIFECYCLE and not self.server.manager.is_connected(sid, self.namespace):
            return await super().trigger_event(event, *args)  # the server's own connect/disconnect
        return await self._guard(self._client_event(event, sid, *args[1:]))

    async def _client_event(self, event, sid, *args) -> dict | None:
        """A client's event: its sender's allowance, their sign-in still valid, then the handler."""
        session = await self.get_session(sid)
        self.rt.admit(sid, session.get("principal"))
        refused = socket_packets.check_event(event, (sid, *args))  # as HTTP bodies: payload.py
        if refused is not None:
            raise refused
        # socket.io event names with ":" map to on_chat_send etc.
        name = event.replace(":", "_") if isinstance(event, str) else ""
        if event in LIFECYCLE or not name or not callable(getattr(self, f"on_{name}", None)):
            raise BadRequest("unknown event")
        await self._still_signed_in(sid, session)
        return await super().trigger_event(name, sid, *args)

    async def _still_signed_in(self, sid, session: dict) -> None:
        """Resolve the socket's token again: one primary-key lookup.

        A member removed or sent a new invite is refused from the first event after
        the change was committed, in every process, even before their sockets close.
        """
        principal: Principal | None = session.get("principal")
        if principal is None:
            return
        try:
            current = await self.rt.resolve(session["token"])
        except Unauthorized:
            self.rt.drop_later(sid)
            raise Unauthorized("your sign-in is no longer valid: ask the committee") from None
        if current != principal:  # e.g. renamed: the room sees the new name
            session["principal"] = current
            await self.save_session(sid, session)

    # ------------------------------------------------------------- join

    async def on_join(self, sid, data=None):
        return await self._guard(self._join(sid, data if data is not None else {}))

    async def _join(self, sid, data) -> dict:
        if not isinstance(data, dict) or "meeting_id" not in data:
            raise BadRequest("join needs {meeting_id}")
        since = data.get("since_seq")
        if since is not None and (
            not isinstance(since, int) or isinstance(since, bool) or since < 0
        ):
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
        self.rt.joined(sid)
        await self.save_session(sid, session)
        # In the room before reading: an event committed from here on is broadcast to
        # this client too, so nothing falls between the snapshot and the live stream.
        await self.enter_room(sid, room_of(meeting.id))
        if (
            principal is not None
            and principal.is_committee
            and principal.village_id == meeting.village_id
        ):
            await self.enter_room(sid, hosts_of(meeting.id))
        async with self.rt.database.session() as db:
            meeting = await meetings.get_meeting(db, meeting.id)
            view = await meetings.view(db, meeting)
            snap = await room.snapshot(db, meeting)
            vote_rows = await votes.meeting_votes(db, meeting.id)
            mine, held = set(), []
            if principal is not None and principal.role == "member":
                mine = await votes.voted_in(db, int(principal.id[1:]), [v.id for v in vote_rows])
                held = [
                    p["member"]
                    for p in await votes.proxies_of(db, meeting.id)
                    if f"m{p['proxy']['id']}" == principal.id
                ]
                for entry in held:  # and whether each represented member has voted
                    entry["voted"] = sorted(
                        await votes.voted_in(db, entry["id"], [v.id for v in vote_rows])
                    )
            missed = (
                await events_after(db, meeting.id, since, limit=MAX_REPLAY + 1)
                if since is not None
                else []
            )
        # Far behind (or a made-up since_seq of 0 on a long meeting): the snapshot below is
        # the state; replaying thousands of events to one socket would only cost the server.
        replayed = len(missed) <= MAX_REPLAY
        if not replayed:
            missed = []
        is_host = bool(
            principal and principal.is_committee and principal.village_id == meeting.village_id
        )
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
        return ok(you=you, state=state, seq=meeting.last_seq, replayed=replayed)

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

    async def _act(
        self, sid, data, action: Action, before=None, shed_at: int | None = None
    ) -> dict:
        """The common path of room events: the joined meeting, ``before`` checks, the change.

        The committee's changes go before every participant's waiting one. A
        participant's change is refused ("the room is busy") while ``shed_at`` of
        theirs already wait (chat sooner than hands), so no storm queues without end.
        """

        async def work():
            meeting_id, principal, payload = await self._joined(sid, data)
            if before is not None:
                before(principal, payload)
            shed = MAX_QUEUED if shed_at is None else shed_at
            async with self.rt.room_turn(meeting_id, principal, shed_at=shed):
                async with self.rt.database.session() as db:
                    recorded = await action(db, meeting_id, principal, payload)
                if recorded is not None:  # broadcast under the lock: in seq order
                    await self.rt.announce(recorded)
            if recorded is None:
                return ok()  # nothing changed (e.g. a hand already raised)
            return ok(seq=recorded.seq, **_ack_fields(recorded))

        return await self._guard(work())

    async def on_chat_send(self, sid, data=None):
        address = (await self.get_session(sid)).get("address")

        def limit(principal, payload):
            if principal is None:
                return
            limits = [(self.rt.chat_limits, principal.id)]
            if principal.role == "guest":  # guests of one address share one allowance
                limits.append((self.rt.guest_chat_limits, f"addr:{address}"))
            take_all(*limits)

        return await self._act(sid, data, room.send_chat, before=limit, shed_at=MAX_WAITING)

    async def on_chat_delete(self, sid, data=None):
        return await self._act(sid, data, room.delete_chat)

    async def on_chat_mute(self, sid, data=None):
        return await self._act(sid, data, room.mute_chat)

    def _hand_limit(self, principal, payload) -> None:
        # each raise or lower is a stored event: a person's hand goes up a few times
        # a minute, not five times a second all meeting long (the committee is not limited)
        if principal is not None and not principal.is_committee:
            self.rt.hand_limits.take(principal.id)

    async def on_hand_raise(self, sid, data=None):
        return await self._act(
            sid, data, lambda db, mid, p, _: room.raise_hand(db, mid, p), before=self._hand_limit
        )

    async def on_hand_lower(self, sid, data=None):
        return await self._act(sid, data, room.lower_hand, before=self._hand_limit)

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
            async with self.rt.room_turn(meeting_id, principal):
                async with self.rt.database.session() as db:
                    recorded = await votes.open_vote(
                        db,
                        meeting_id,
                        principal,
                        payload,
                        min_secret_electorate=self.rt.secret_vote_minimum,
                    )
                await self.rt.announce(recorded)
            return ok(vote_id=recorded.data["vote_id"], seq=recorded.seq)

        return await self._vote(sid, data, work)

    async def on_vote_cast(self, sid, data=None):
        async def work(meeting_id, principal, payload):
            self.rt.cast_limits.take(principal.id if principal else f"sid:{sid}")
            async with self.rt.room_turn(meeting_id, principal):  # a ballot is never shed
                cast = await votes.cast_ballot(
                    self.rt.database.session, meeting_id, principal, payload
                )
            self.rt.schedule_progress(meeting_id, cast.recorded.data["vote_id"], cast.cast)
            return ok(receipt=cast.receipt)

        return await self._vote(sid, data, work)

    async def on_vote_roll(self, sid, data=None):
        async def work(meeting_id, principal, payload):
            member_id = payload.get("member_id")
            if not isinstance(member_id, int) or isinstance(member_id, bool):
                raise BadRequest("member_id must be a member's id")
            async with self.rt.room_turn(meeting_id, principal):
                cast = await votes.cast_ballot(
                    self.rt.database.session,
                    meeting_id,
                    principal,
                    payload,
                    member_id=member_id,
                    source="hall",
                )
            self.rt.schedule_progress(meeting_id, cast.recorded.data["vote_id"], cast.cast)
            return ok()

        return await self._vote(sid, data, work)

    async def on_vote_hall(self, sid, data=None):
        async def work(meeting_id, principal, payload):
            async with self.rt.room_turn(meeting_id, principal):
                async with self.rt.database.session() as db:
                    recorded = await votes.hall_counts(db, meeting_id, principal, payload)
                await self.rt.announce(recorded)
            return ok(seq=recorded.seq)

        return await self._vote(sid, data, work)

    async def on_vote_close(self, sid, data=None):
        async def work(meeting_id, principal, payload):
            async with self.rt.room_turn(meeting_id, principal):
                async with self.rt.database.session() as db:
                    result, recorded = await votes.close_vote(
                        db,
                        meeting_id,
                        principal,
                        payload,
                        min_secret_group=self.rt.secret_vote_minimum,
                    )
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


def _ack_fields(recorded: Recorded) -> dict:
    if recorded.type == "chat:message":
        return {"id": recorded.data["id"]}
    return {}


class Realtime:
    """The socket.io server and what the rest of the app may broadcast through it."""

    def __init__(self, app) -> None:
        settings = app[keys.SETTINGS]
        manager = (
            RevokingRedisManager(
                settings.redis_url, channel=settings.redis_channel, on_revoked=self.close_sockets_of
            )
            if settings.redis_url
            else None
        )
        self._relayed = manager is not None
        self.sio = socketio.AsyncServer(
            async_mode="aiohttp",
            client_manager=manager,
            max_http_buffer_size=MAX_PAYLOAD_BYTES,
            ping_interval=PING_INTERVAL,
            ping_timeout=PING_TIMEOUT,
            cors_allowed_origins=[settings.public_url] if settings.public_url else None,
            # hostile packets (deep nesting, huge numbers, NUL...) are refused, not raised
            serializer=socket_packets.CheckedPacket,
            json=socket_packets.CheckedJSON,
        )
        self.sio.register_namespace(MeetingNamespace(self))
        self.sio.attach(app)
        self._app = app
        self.chat_limits = SlidingWindow(CHAT_BURST, CHAT_WINDOW)
        self.guest_chat_limits = SlidingWindow(GUEST_CHAT_PER_ADDRESS, CHAT_WINDOW)
        #: ballots (and refused attempts) per participant: a voter needs a few, not hundreds
        self.cast_limits = SlidingWindow(30, 10.0)
        #: hand raises and lowers per participant (each one is stored)
        self.hand_limits = SlidingWindow(HAND_CHANGES, HAND_WINDOW)
        #: every client event, per participant (per socket for anonymous viewers)
        self.event_limits = TokenBuckets(settings.socket_event_rate, settings.socket_event_burst)
        #: sid -> [start, events refused since] (a socket hammering past its limit is closed)
        self._refused: dict[str, list[float]] = {}
        self._join_timeout = settings.socket_join_timeout
        #: sid -> the timer that closes a connection that never joins a meeting
        self._join_timers: dict[str, asyncio.TimerHandle] = {}
        #: meeting id -> participant id -> this process's connected sids
        self._devices: dict[int, dict[str, set[str]]] = {}
        #: meeting id -> its lock, only while a change holds or waits for it
        self._locks: dict[int, RoomLock] = {}
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
    def secret_vote_minimum(self) -> int:
        """Settings.secret_vote_min_electorate: a secret vote's smallest electorate and group."""
        return self._app[keys.SETTINGS].secret_vote_min_electorate

    @property
    def media(self):
        return self._app[keys.MEDIA]

    def room_lock(
        self, meeting_id: int, first: bool = False, shed_at: int | None = None
    ) -> RoomTurn:
        """Room changes of one meeting queue here instead of contending for the database.

        ``first``: the committee's (or the server's own) change, served before every
        participant's waiting one. ``shed_at``: see RoomTurn.
        """
        return RoomTurn(self._locks, meeting_id, first, shed_at)

    def room_turn(
        self, meeting_id: int, principal: Principal | None, shed_at: int | None = None
    ) -> RoomTurn:
        """A socket event's turn: the committee first and never shed."""
        if principal is not None and principal.is_committee:
            return self.room_lock(meeting_id, first=True)
        return self.room_lock(meeting_id, shed_at=shed_at)

    # ------------------------------------------------------------- sockets' limits

    def admit(self, sid: str, principal: Principal | None) -> None:
        """Take one event from the sender's bucket, or refuse it (``rate_limited``).

        A socket refused HAMMER_FACTOR times its burst within burst / rate seconds
        is closed: no person taps that fast, and each refusal still costs an ack.
        """
        key = principal.id if principal is not None else f"sid:{sid}"
        scale = COMMITTEE_EVENT_FACTOR if principal is not None and principal.is_committee else 1
        wait = self.event_limits.take(key, scale)
        if not wait:
            return
        now = time.monotonic()
        refused = self._refused.get(sid)
        if refused is None or now - refused[0] > self.event_limits.burst / self.event_limits.rate:
            refused = self._refused[sid] = [now, 0]
        refused[1] += 1
        if refused[1] == HAMMER_FACTOR * self.event_limits.burst * scale:
            logger.info(
                "socket %s of %s closed: %d events refused in %.1f s",
                sid,
                key,
                refused[1],
                now - refused[0],
            )
            self.drop_later(sid)
        raise room.RateLimited(
            f"too many events: at most {self.event_limits.burst * scale} at once and "
            f"{self.event_limits.rate * scale:g} a second",
            retry_after=wait,
        )

    def drop_later(self, sid: str) -> None:
        """Close a socket once the current event's ack has been sent."""
        self._spawn(self._drop(sid))

    async def _drop(self, sid: str) -> None:
        await asyncio.sleep(0.05)  # the refusal's ack goes out first
        await self.sio.disconnect(sid)

    def expect_join(self, sid: str) -> None:
        """A connection that joins no meeting within SOCKET_JOIN_TIMEOUT is closed."""
        self._join_timers[sid] = asyncio.get_running_loop().call_later(
            self._join_timeout, lambda: self._spawn(self._join_too_late(sid))
        )

    async def _join_too_late(self, sid: str) -> None:
        if self._join_timers.pop(sid, None) is not None:
            logger.info("socket %s closed: no join within %s s", sid, self._join_timeout)
            await self.sio.disconnect(sid)

    def joined(self, sid: str) -> None:
        timer = self._join_timers.pop(sid, None)
        if timer is not None:
            timer.cancel()

    def socket_gone(self, sid: str) -> None:
        """Forget a closed socket's timer and counters."""
        self.joined(sid)
        self._refused.pop(sid, None)
        self.event_limits.forget(f"sid:{sid}")

    # ------------------------------------------------------------- revocation

    async def revoke(self, principal_id: str, reason: str) -> None:
        """A participant's sign-in was revoked (and committed): close their sockets now.

        Their sockets hear ``session:revoked`` and are disconnected, in every process:
        through Redis, each process's manager closes its own (RevokingRedisManager).
        Until then (a message in flight), every event re-checks the sign-in anyway.
        """
        await self.sio.emit(REVOKED, {"reason": reason}, room=principal_room(principal_id))
        if not self._relayed:
            await self.close_sockets_of(principal_room(principal_id))
        # A revoked member who holds the floor loses it: their voice stops for everyone.
        async with self.database.session() as db:
            live = await meetings.live_meeting_ids(db)
        for meeting_id in live:
            await self.record_and_broadcast(
                meeting_id,
                room.revoke_floor,
                None,
                reason="revoked",
                by_server=True,
                only_holder=principal_id,
            )

    async def close_sockets_of(self, room_name: str) -> None:
        """Disconnect this process's sockets in ``room_name``."""
        sids = [sid for sid, _ in self.sio.manager.get_participants("/", room_name)]
        for sid in sids:
            await self.sio.disconnect(sid)

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

    async def record_and_broadcast(
        self, meeting_id: int, action: Action, *args, first: bool = True, **kwargs
    ) -> None:
        """A change the server makes (timers, attendance); ``first``: before participants'."""
        async with self.room_lock(meeting_id, first=first):
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
        self.hall_counts.pop(meeting_id, None)

    async def _close_open_votes(self, meeting_id: int) -> None:
        """Ending the meeting closes its open votes, each with its result announced."""
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
            self._spawn(
                self.record_and_broadcast(
                    meeting_id,
                    room.revoke_floor,
                    None,
                    reason="time_up",
                    only_since=since,
                    by_server=True,
                )
            )

        self._floor_timers[meeting_id] = asyncio.get_running_loop().call_later(
            max(delay, 0), expire
        )

    # ------------------------------------------------------------- attendance and presence

    async def device_joined(self, sid: str, meeting_id: int, principal: Principal | None) -> None:
        """A participant's first device in the room is a join on the timeline."""
        if principal is None:
            return
        devices = self._devices.setdefault(meeting_id, {}).setdefault(principal.id, set())
        first = not devices
        devices.add(sid)
        if first:
            await self.record_and_broadcast(
                meeting_id, room.record_presence, principal, True, first=principal.is_committee
            )

    async def device_left(self, sid: str, meeting_id: int, principal: Principal | None) -> None:
        """A participant's last device gone (closed, or silent past the ping timeout)."""
        if principal is None:
            return
        here = self._devices.get(meeting_id, {})
        devices = here.get(principal.id)
        if not devices or sid not in devices:
            return
        devices.discard(sid)
        if not devices:
            del here[principal.id]
            if not here:  # nobody of this meeting left in this process
                del self._devices[meeting_id]
            try:
                await self.record_and_broadcast(
                    meeting_id, room.record_presence, principal, False, first=principal.is_committee
                )
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
            await self.sio.emit(
                "vote:progress", {"vote_id": vote_id, "cast": count}, room=room_of(meeting)
            )

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
        if not people and not here["anonymous"]:
            self.hall_counts.pop(meeting_id, None)  # nobody here to show it to
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
        for timer in [*self._floor_timers.values(), *self._join_timers.values()]:
            timer.cancel()
        for task in list(self._tasks):
            task.cancel()


class RevokingRedisManager(socketio.AsyncRedisManager):
    """socket.io's Redis relay; a ``session:revoked`` emit also closes this process's sockets.

    Every process handles every relayed emit here (the sender's own included), so
    the sockets of a revoked sign-in close in every process, not just the one that
    served ``DELETE /api/members/{id}``.
    """

    def __init__(self, *args, on_revoked: Callable[[str], Awaitable[None]], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._on_revoked = on_revoked
        self._closing: set[asyncio.Task] = set()

    async def _handle_emit(self, message):
        await super()._handle_emit(message)
        room_name = message.get("room")
        if (
            message.get("event") == REVOKED
            and isinstance(room_name, str)
            and room_name.startswith("principal:")
        ):
            # in the background: closing sockets records leaves under the room's lock,
            # and the relay of every other broadcast must not wait for that
            task = asyncio.get_running_loop().create_task(self._on_revoked(room_name))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
