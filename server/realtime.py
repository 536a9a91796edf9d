"""socket.io: the meeting room's live events (namespace ``/``, see docs/api.md).

Only the socket.io edge: connecting, joining, each event's checks, the acks, and the
revocation relay. Every stored change goes through server/live.py
(``Live.record_and_broadcast``: write, commit with a per-meeting seq, broadcast),
and then the client's ack is sent.

Every client event first passes ``MeetingNamespace.trigger_event``: the sender's
token bucket (``SOCKET_EVENT_RATE``/``SOCKET_EVENT_BURST`` per participant, in
server/socket_guard.py), then a fresh look at their sign-in (a revoked member's
open socket can do nothing more).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from http.cookies import SimpleCookie

import socketio
from aiohttp import web
from sqlmodel.ext.asyncio.session import AsyncSession

from . import socket_packets
from .errors import BadRequest, Unauthorized
from .i18n import Catalogs
from .live import Live, hidden_from, hosts_of, principal_room, room_of
from .services import hall, identity, meetings, room, votes
from .services.access import check_can_watch, is_host
from .services.ratelimit import address_key
from .services.timeline import Recorded, events_after
from .services.tokens import Principal, TokenService
from .settings import Settings
from .socket_acks import answering_in, client_address, connect_failure, failure, ok, socket_locale
from .socket_guard import SocketGuard
from .sockets import PING_TIMEOUT
from .store import pk

logger = logging.getLogger(__name__)

#: chat is refused ("rate_limited") while this many participants' changes already wait
MAX_WAITING = 30
#: a rejoin replays at most this many missed events; further behind, the snapshot is the state
MAX_REPLAY = 500
#: lifecycle events the server itself triggers (a client may not send them)
LIFECYCLE = ("connect", "disconnect")

#: a room event's change: (db, meeting id, sender, payload) -> what it stored
RoomAction = Callable[[AsyncSession, int, Principal | None, dict], Awaitable[Recorded | None]]


class MeetingNamespace(socketio.AsyncNamespace):
    """One handler per client event: validate, call the domain, store, broadcast, ack."""

    def __init__(self, realtime: Realtime) -> None:
        super().__init__("/")
        self.rt = realtime
        self.live = realtime.live

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
                    gettext = self.rt.gettext_for(socket_locale(environ, auth))
                    raise socketio.exceptions.ConnectionRefusedError(
                        exc.code, exc.as_dict(gettext)
                    ) from exc
            except Exception as exc:  # the database busy or down: refused, with retry_after
                connect_failure(exc, self.rt.gettext_for(socket_locale(environ, auth)))
        await self.save_session(
            sid,
            {
                "principal": principal,
                # kept to look at the sign-in again on every event (revocation)
                "token": token if principal is not None else None,
                "meeting_id": None,
                # keyed as the HTTP lockouts are: an IPv6 client is its /64
                "address": address_key(client_address(environ)),
                # error acks are answered in it (refusal)
                "locale": socket_locale(environ, auth),
            },
        )
        if principal is not None:
            await self.enter_room(sid, principal_room(principal.id))
        self.rt.guard.expect_join(sid)

    async def on_disconnect(self, sid, reason=None):
        self.rt.guard.socket_gone(sid)
        if self.rt.closing:
            return  # a restart, not a leave: they reconnect in seconds (as after a kill -9)
        session = await self.get_session(sid)
        meeting_id = session.get("meeting_id")
        if meeting_id is not None:
            # silent past the ping timeout: it went (at the latest) when the unanswered ping left
            silent = PING_TIMEOUT if reason == self.server.reason.PING_TIMEOUT else 0
            await self.live.device_left(sid, meeting_id, session.get("principal"), silent)
            self.live.schedule_presence(meeting_id)

    # ------------------------------------------------------------- every event

    async def trigger_event(self, event, *args):
        sid = args[0] if args else None
        if event in LIFECYCLE and not self.server.manager.is_connected(sid, self.namespace):
            return await super().trigger_event(event, *args)  # the server's own connect/disconnect
        session = await self.get_session(sid)
        with answering_in(self.rt.gettext_for(session.get("locale", "en"))):
            return await self._acked(self._client_event(event, sid, *args[1:]))

    async def _client_event(self, event, sid, *args) -> dict | None:
        """A client's event: its sender's allowance, their sign-in still valid, then the handler."""
        session = await self.get_session(sid)
        self.rt.guard.admit(sid, session.get("principal"))
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
            self.rt.guard.drop_later(sid)
            raise Unauthorized("your sign-in is no longer valid: ask the committee") from None
        if current != principal:  # e.g. renamed: the room sees the new name
            session["principal"] = current
            await self.save_session(sid, session)

    # ------------------------------------------------------------- join

    async def on_join(self, sid, data=None):
        return await self._acked(self._join(sid, data if data is not None else {}))

    async def _join(self, sid, data) -> dict:
        if not isinstance(data, dict) or "meeting_id" not in data:
            raise BadRequest("join needs a meeting_id")
        since = data.get("since_seq")
        if since is not None and (
            not isinstance(since, int) or isinstance(since, bool) or since < 0
        ):
            raise BadRequest("since_seq must be a whole number")
        session = await self.get_session(sid)
        principal: Principal | None = session["principal"]
        async with self.live.database.session() as db:
            meeting = await meetings.get_meeting(db, data["meeting_id"])
            check_can_watch(principal, meeting)
        meeting_id = pk(meeting)
        previous = session.get("meeting_id")
        if previous is not None and previous != meeting_id:
            await self.leave_room(sid, room_of(previous))
            await self.leave_room(sid, hosts_of(previous))
            await self.live.device_left(sid, previous, principal)
            self.live.schedule_presence(previous)
        session["meeting_id"] = meeting_id
        self.rt.guard.joined(sid)
        await self.save_session(sid, session)
        # In the room before reading: an event committed from here on is broadcast to
        # this client too, so nothing falls between the snapshot and the live stream.
        await self.enter_room(sid, room_of(meeting_id))
        if is_host(principal, meeting):
            await self.enter_room(sid, hosts_of(meeting_id))
        async with self.live.database.session() as db:
            meeting = await meetings.get_meeting(db, meeting_id)
            view = await meetings.view(db, meeting)
            snap = await room.snapshot(db, meeting)
            vote_list, held = await votes.votes_on_join(db, meeting, principal)
            missed = (
                await events_after(db, meeting_id, since, limit=MAX_REPLAY + 1)
                if since is not None
                else []
            )
        # Far behind (or a made-up since_seq of 0 on a long meeting): the snapshot below is
        # the state; replaying thousands of events to one socket would only cost the server.
        replayed = len(missed) <= MAX_REPLAY
        if not replayed:
            missed = []
        hidden = hidden_from(principal, meeting)
        for event in missed:
            if event.type not in hidden:
                await self.emit(event.type, {**event.data, "seq": event.seq}, to=sid)
        self.live.hall_count_is(meeting_id, snap.state.get("in_hall"))
        await self.live.device_joined(sid, meeting_id, principal)
        self.live.expire_floor_later(meeting_id, snap.state.get("floor"))
        stats = self.live.media.stats(str(meeting_id))
        state = {
            "meeting": view.as_dict(),
            "publishing": stats.publishing,
            # the host's connection is lost: {since, grace_s, asked}, else None
            "host_away": self.live.host_away.state(meeting_id),
            "viewers": self.live.viewer_count(meeting_id),
            **snap.as_dict(principal, meeting),
            "votes": vote_list,
            "proxies_held": held,
        }
        self.live.schedule_presence(meeting_id)
        you = principal.as_dict() if principal else {"id": None, "name": None, "role": "viewer"}
        server = self.rt.instance
        return ok(you=you, state=state, seq=meeting.last_seq, replayed=replayed, server=server)

    # ------------------------------------------------------------- room events

    async def _acked(self, work) -> dict:
        """Run a handler; its refusal or a bug becomes an error ack, never a dropped one."""
        try:
            return await work
        except Exception as exc:  # a refusal; the database busy or down (503-like); a bug
            return failure(exc)

    async def _joined(self, sid, data) -> tuple[int, Principal | None, dict]:
        """A room event's prelude: its payload (a JSON object), the meeting this socket joined."""
        payload = {} if data is None else data
        if not isinstance(payload, dict):
            raise BadRequest("the payload must be a JSON object")
        session = await self.get_session(sid)
        meeting_id = session.get("meeting_id")
        if meeting_id is None:
            raise BadRequest("join a meeting first")
        return meeting_id, session.get("principal"), payload

    async def _act(
        self,
        sid: str,
        data: object,
        action: RoomAction,
        before: Callable[[Principal | None, dict], None] | None = None,
        shed_at: int | None = None,
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
            recorded = await self.live.record_and_broadcast(
                meeting_id,
                lambda db: action(db, meeting_id, principal, payload),
                by=principal,
                shed_at=self.live.max_queued if shed_at is None else shed_at,
            )
            if recorded is None:
                return ok()  # nothing changed (e.g. a hand already raised)
            return ok(seq=recorded.seq, **_ack_fields(recorded))

        return await self._acked(work())

    async def on_chat_send(self, sid, data=None):
        address = (await self.get_session(sid)).get("address")

        def limit(principal: Principal | None, payload: dict) -> None:
            self.rt.guard.chat(principal, address)

        return await self._act(sid, data, room.send_chat, before=limit, shed_at=MAX_WAITING)

    async def on_chat_delete(self, sid, data=None):
        return await self._act(sid, data, room.delete_chat)

    async def on_chat_mute(self, sid, data=None):
        return await self._act(sid, data, room.mute_chat)

    def _hand_limit(self, principal: Principal | None, payload: dict) -> None:
        self.rt.guard.hand(principal)

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

    async def on_attendance_checkin(self, sid, data=None):
        """The clerk scanned a member card: ``{invite}`` → ack ``{member: {id, name, already}}``."""

        async def work():
            meeting_id, principal, payload = await self._joined(sid, data)
            found: dict = {}

            async def change(db):
                member, recorded = await hall.check_in(
                    db, self.rt.tokens, meeting_id, principal, payload
                )
                found.update(member)
                return recorded

            recorded = await self.live.record_and_broadcast(
                meeting_id, change, by=principal, shed_at=self.live.max_queued
            )
            seq = {"seq": recorded.seq} if recorded is not None else {}
            return ok(member=found, **seq)

        return await self._acked(work())

    async def on_agenda_goto(self, sid, data=None):
        return await self._act(sid, data, room.goto_item)

    # ------------------------------------------------------------- votes

    async def _vote(self, sid, data, work):
        """Votes' common path: the joined meeting, the payload, then ``work``."""

        async def run():
            return await work(*await self._joined(sid, data))

        return await self._acked(run())

    async def on_vote_open(self, sid, data=None):
        async def work(meeting_id, principal, payload):
            recorded = await self.live.record_and_broadcast(
                meeting_id,
                lambda db: votes.open_vote(
                    db,
                    meeting_id,
                    principal,
                    payload,
                    min_secret_electorate=self.live.secret_vote_minimum,
                ),
                by=principal,
            )
            assert recorded is not None, "an opened vote is always stored"
            return ok(vote_id=recorded.data["vote_id"], seq=recorded.seq)

        return await self._vote(sid, data, work)

    async def on_vote_cast(self, sid, data=None):
        async def work(meeting_id, principal, payload):
            self.rt.guard.cast_limits.take(principal.id if principal else f"sid:{sid}")
            async with self.live.room_turn(meeting_id, principal):  # a ballot is never shed
                cast = await votes.cast_ballot(
                    self.live.database.session, meeting_id, principal, payload
                )
            self.live.schedule_progress(meeting_id, cast.recorded.data["vote_id"], cast.cast)
            return ok(receipt=cast.receipt)

        return await self._vote(sid, data, work)

    async def on_vote_roll(self, sid, data=None):
        async def work(meeting_id, principal, payload):
            member_id = payload.get("member_id")
            if not isinstance(member_id, int) or isinstance(member_id, bool):
                raise BadRequest("member_id must be a member's id")
            async with self.live.room_turn(meeting_id, principal):
                cast = await votes.cast_ballot(
                    self.live.database.session,
                    meeting_id,
                    principal,
                    payload,
                    member_id=member_id,
                    source="hall",
                )
            self.live.schedule_progress(meeting_id, cast.recorded.data["vote_id"], cast.cast)
            return ok()

        return await self._vote(sid, data, work)

    async def on_vote_hall(self, sid, data=None):
        async def work(meeting_id, principal, payload):
            recorded = await self.live.record_and_broadcast(
                meeting_id,
                lambda db: votes.hall_counts(db, meeting_id, principal, payload),
                by=principal,
            )
            assert recorded is not None, "hall counts are always stored"
            return ok(seq=recorded.seq)

        return await self._vote(sid, data, work)

    async def on_vote_close(self, sid, data=None):
        async def work(meeting_id: int, principal: Principal | None, payload: dict) -> dict:
            outcome: dict = {}

            async def close(db: AsyncSession) -> Recorded | None:
                nonlocal outcome
                outcome, recorded = await votes.close_vote(
                    db,
                    meeting_id,
                    principal,
                    payload,
                    min_secret_group=self.live.secret_vote_minimum,
                )
                return recorded

            await self.live.record_and_broadcast(meeting_id, close, by=principal)
            return ok(**outcome)

        return await self._vote(sid, data, work)

    async def on_attendance_list(self, sid, data=None):
        async def work():
            meeting_id, principal, _ = await self._joined(sid, data)
            async with self.live.database.session() as db:
                meeting = await meetings.get_meeting(db, meeting_id)
            room.require_host(principal, meeting)
            return ok(**await self.live.who_is_here(meeting_id))

        return await self._acked(work())


def _ack_fields(recorded: Recorded) -> dict:
    if recorded.type == "chat:message":
        return {"id": recorded.data["id"]}
    return {}


class Realtime:
    """The socket.io side of the app: the namespace, each socket's limits, the Redis check."""

    def __init__(
        self,
        app: web.Application,
        sio: socketio.AsyncServer,
        live: Live,
        tokens: TokenService,
        settings: Settings,
        catalogs: Catalogs | None = None,
    ) -> None:
        self.sio, self.live, self._tokens = sio, live, tokens
        self.tokens = tokens  # the member cards' invites (hall check-in)
        self._redis_url = settings.redis_url
        self.guard = SocketGuard(
            settings.socket_event_rate,
            settings.socket_event_burst,
            settings.socket_join_timeout,
            disconnect=sio.disconnect,
            flood_disconnect=settings.socket_flood_disconnect,
        )
        #: error acks in each socket's language (server/i18n.py)
        self.catalogs = catalogs
        #: the server is stopping (SIGTERM): dropped sockets are not recorded as leaving
        self.closing = False
        #: this process's run: a client that rejoins to another knows its media sessions are gone
        self.instance = secrets.token_hex(6)
        sio.register_namespace(MeetingNamespace(self))
        sio.attach(app)

    def gettext_for(self, locale: str) -> Callable[[str], str] | None:
        return self.catalogs.gettext_for(locale) if self.catalogs is not None else None

    async def resolve(self, token: str) -> Principal:
        async with self.live.database.session() as db:
            return await identity.resolve(db, self._tokens, token)

    async def check_redis(self) -> None:
        """With REDIS_URL, refuse to start unless Redis answers: a silent relay loses broadcasts."""
        url = self._redis_url
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

    async def close(self) -> None:
        self.guard.close()
