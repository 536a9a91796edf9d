"""socket.io: the meeting room's live events (namespace ``/``, see docs/api.md)."""

from __future__ import annotations

import asyncio
import logging
from http.cookies import SimpleCookie

import socketio

from media import RoomEvent

from . import keys
from .errors import BadRequest, CunhuiError, Unauthorized
from .services import identity, meetings
from .services.access import check_can_watch
from .services.timeline import events_after
from .services.tokens import Principal

logger = logging.getLogger(__name__)

#: socket.io payloads larger than this are refused by engine.io itself
MAX_PAYLOAD_BYTES = 64 * 1024


def room_of(meeting_id: int | str) -> str:
    return f"meeting:{meeting_id}"


def ok(**fields) -> dict:
    return {"ok": True, **fields}


def refusal(exc: CunhuiError) -> dict:
    return {"ok": False, "error": exc.as_dict()}


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
        if session.get("meeting_id") is not None:
            await self.rt.send_presence(session["meeting_id"])

    async def on_join(self, sid, data=None):
        try:
            return await self._join(sid, data or {})
        except CunhuiError as exc:
            return refusal(exc)

    async def _join(self, sid, data: dict) -> dict:
        if not isinstance(data, dict) or "meeting_id" not in data:
            raise BadRequest("join needs {meeting_id}")
        since = data.get("since_seq")
        if since is not None and (not isinstance(since, int) or since < 0):
            raise BadRequest("since_seq must be a whole number")
        session = await self.get_session(sid)
        principal: Principal | None = session["principal"]
        async with self.rt.database.session() as db:
            meeting = await meetings.get_meeting(db, data["meeting_id"])
            check_can_watch(principal, meeting)
            view = await meetings.view(db, meeting)
            missed = await events_after(db, meeting.id, since) if since is not None else []
        previous = session.get("meeting_id")
        if previous is not None and previous != meeting.id:
            await self.leave_room(sid, room_of(previous))
        session["meeting_id"] = meeting.id
        await self.save_session(sid, session)
        for event in missed:
            await self.emit(event.type, {**event.data, "seq": event.seq}, to=sid)
        await self.enter_room(sid, room_of(meeting.id))
        stats = self.rt.media.stats(str(meeting.id))
        state = {
            "meeting": view.as_dict(),
            "publishing": stats.publishing,
            "viewers": stats.viewers,
        }
        asyncio.get_running_loop().call_soon(
            lambda: asyncio.ensure_future(self.rt.send_presence(meeting.id))
        )
        you = principal.as_dict() if principal else {"id": None, "name": None, "role": "viewer"}
        return ok(you=you, state=state, seq=meeting.last_seq)


class Realtime:
    """The socket.io server and what the rest of the app may broadcast through it."""

    def __init__(self, app) -> None:
        settings = app[keys.SETTINGS]
        manager = socketio.AsyncRedisManager(settings.redis_url) if settings.redis_url else None
        self.sio = socketio.AsyncServer(
            async_mode="aiohttp",
            client_manager=manager,
            max_http_buffer_size=MAX_PAYLOAD_BYTES,
            cors_allowed_origins=[settings.public_url] if settings.public_url else None,
        )
        self.sio.register_namespace(MeetingNamespace(self))
        self.sio.attach(app)
        self._app = app

    @property
    def database(self):
        return self._app[keys.DATABASE]

    @property
    def media(self):
        return self._app[keys.MEDIA]

    async def resolve(self, token: str) -> Principal:
        async with self.database.session() as db:
            return await identity.resolve(db, self._app[keys.TOKENS], token)

    async def meeting_status(self, meeting_id: int, status: str, seq: int, **extra) -> None:
        """Tell the room the meeting's status changed (already committed as ``seq``)."""
        await self.sio.emit(
            "meeting:status", {"status": status, **extra, "seq": seq}, room=room_of(meeting_id)
        )

    async def send_presence(self, meeting_id: int) -> None:
        """Broadcast who is here. Transient: carries no seq."""
        online: set[str] = set()
        remote = anonymous = 0
        for sid, _ in self.sio.manager.get_participants("/", room_of(meeting_id)):
            session = await self.sio.get_session(sid)
            principal = session.get("principal")
            if principal is None:
                anonymous += 1
                continue
            online.add(principal.id)
            if not principal.is_committee:
                remote += 1
        stats = self.media.stats(str(meeting_id))
        await self.sio.emit(
            "presence",
            {
                "online": len(online) + anonymous,
                "remote": remote + anonymous,
                "viewers": stats.viewers,
                "publishing": stats.publishing,
            },
            room=room_of(meeting_id),
        )

    def on_media_event(self, event: RoomEvent) -> None:
        """Media listener: audience or publisher changed; refresh everyone's presence."""
        try:
            meeting_id = int(event.room_id)
        except ValueError:
            return
        asyncio.get_running_loop().create_task(self.send_presence(meeting_id))
