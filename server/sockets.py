"""The socket.io server: its Redis relay, and the audience server/live.py broadcasts to."""

from __future__ import annotations

import asyncio

import socketio

from . import socket_packets
from .live import principal_room
from .services.tokens import Principal
from .settings import Settings

#: socket.io payloads larger than this are refused by engine.io itself
MAX_PAYLOAD_BYTES = 64 * 1024
#: a dropped phone leaves the room after at most PING_INTERVAL + PING_TIMEOUT seconds
PING_INTERVAL = 15
PING_TIMEOUT = 15
#: sent to a participant's sockets when their sign-in is revoked, just before they close
REVOKED = "session:revoked"
#: sent to every socket when the server stops (SIGTERM): ``{reconnect_in_s}``, then the
#: connection drops; the client reconnects in about that many seconds
RESTARTING = "server:restarting"
RECONNECT_IN_S = 3


def socket_server(settings: Settings) -> socketio.AsyncServer:
    """The socket.io server; with REDIS_URL, its broadcasts are relayed to every process."""
    manager = (
        RevokingRedisManager(settings.redis_url, channel=settings.redis_channel)
        if settings.redis_url
        else None
    )
    return socketio.AsyncServer(
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


async def close_sockets_of(sio: socketio.AsyncServer, room_name: str) -> None:
    """Disconnect this process's sockets in ``room_name``."""
    sids = [sid for sid, _ in sio.manager.get_participants("/", room_name)]
    for sid in sids:
        await sio.disconnect(sid)


async def drop_for_restart(sio: socketio.AsyncServer) -> int:
    """Shutdown: tell this process's sockets to reconnect soon, then drop their connections.

    Not a socket.io disconnect: a client does not come back by itself after one. Each
    transport is closed under it, as when a network drops, once what is queued for it
    (the notice) is sent; clients then reconnect with their usual back-off, to this
    server once it is back or to another process. Returns how many were dropped.
    """
    # this process's sockets only (ignore_queue: not relayed through Redis to the others)
    await sio.emit(RESTARTING, {"reconnect_in_s": RECONNECT_IN_S}, ignore_queue=True)
    sockets = list(sio.eio.sockets.items())
    for eio_sid, socket in sockets:
        try:
            await socket.close(wait=False, abort=True)  # no engine.io "close" packet
            await socket.queue.put(None)  # its writer sends what is queued, then closes
        except Exception:  # engine.io's internals changed: an ordinary disconnect
            await sio.eio.disconnect(eio_sid)
    return len(sockets)


class SocketAudience:
    """live.Audience through the socket.io server (relayed by Redis to every process)."""

    def __init__(self, sio: socketio.AsyncServer) -> None:
        self.sio = sio

    async def emit(self, event: str, data: dict, room: str) -> None:
        await self.sio.emit(event, data, room=room)

    async def principals_in(self, room: str) -> list[Principal | None]:
        sids = [sid for sid, _ in self.sio.manager.get_participants("/", room)]
        return [(await self.sio.get_session(sid)).get("principal") for sid in sids]

    async def sign_out(self, principal_id: str, reason: str) -> None:
        """Their sockets hear ``session:revoked`` and are disconnected, in every process:
        through Redis, each process's manager closes its own (RevokingRedisManager)."""
        await self.sio.emit(REVOKED, {"reason": reason}, room=principal_room(principal_id))
        if not isinstance(self.sio.manager, RevokingRedisManager):
            await close_sockets_of(self.sio, principal_room(principal_id))


class RevokingRedisManager(socketio.AsyncRedisManager):
    """socket.io's Redis relay; a ``session:revoked`` emit also closes this process's sockets.

    Every process handles every relayed emit here (the sender's own included), so
    the sockets of a revoked sign-in close in every process, not just the one that
    served ``DELETE /api/members/{id}``.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
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
            task = asyncio.get_running_loop().create_task(close_sockets_of(self.server, room_name))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
