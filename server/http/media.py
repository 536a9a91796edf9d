"""WHIP (RFC 9725) ingest and WHEP playback endpoints.

WHIP with a committee token publishes the meeting's camera and microphone;
with the token of the member who holds the floor, that member's microphone
(the media hub's floor slot), which every viewer hears on its offer's second
audio m-line.

A session's resource URL (``Location``) carries 128 random bits and is the
capability to PATCH or DELETE it; WHIP resources also require the token that
may have created them (the committee's, or the floor speaker's own).

Sessions still connecting are limited per client address
(MEDIA_PENDING_PER_ADDRESS, beyond: 429 ``rate_limited``) and in all
(MEDIA_PENDING_TOTAL, beyond: 503 ``busy``), both with ``Retry-After``; one
that has not connected (a publisher: not delivered media) within
MEDIA_CONNECT_TIMEOUT is closed.
"""

from __future__ import annotations

import ipaddress
import logging

from aiohttp import web

from media import (
    CodecMismatch,
    FloorStopped,
    InvalidOffer,
    InvalidTrickle,
    MediaHub,
    PeerSession,
    SessionNotFound,
    TooManyPending,
)
from media.errors import IceRestartUnsupported
from media.sdp import MAX_SDP_BYTES

from .. import keys
from ..errors import (
    BadRequest,
    Busy,
    Conflict,
    Forbidden,
    NotFound,
    Phrase,
    RateLimited,
    TooLarge,
    Unprocessable,
    UnsupportedCodec,
    UnsupportedMediaType,
)
from ..services import meetings
from ..services.access import check_can_run, check_can_watch
from ..services.room import floor_holder
from ..services.tokens import Principal
from ..store import Meeting, pk
from .auth import principal_of, require_principal

logger = logging.getLogger(__name__)
routes = web.RouteTableDef()

CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, PATCH, DELETE, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Type, If-Match",
    "Access-Control-Expose-Headers": "Location, Link, ETag, Accept-Patch, Accept-Post",
    "Access-Control-Max-Age": "86400",
}
SDP = "application/sdp"
WHIP_ROLES = ("publisher", "floor")
SDPFRAG = "application/trickle-ice-sdpfrag"


async def _read_body(request: web.Request, content_type: str) -> str:
    if request.content_length is not None and request.content_length > MAX_SDP_BYTES:
        raise TooLarge(
            "the body is larger than {max_sdp_bytes} bytes", params={"max_sdp_bytes": MAX_SDP_BYTES}
        )
    if request.content_type != content_type:
        raise UnsupportedMediaType(
            "send the body as Content-Type: {content_type}", params={"content_type": content_type}
        )
    # read() returns what has arrived so far: on a slow link an offer comes in several
    # TCP segments (the first 1,448 bytes alone are no offer), so read until the end
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.read(MAX_SDP_BYTES + 1 - size):
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_SDP_BYTES:
            raise TooLarge(
                "the body is larger than {max_sdp_bytes} bytes",
                params={"max_sdp_bytes": MAX_SDP_BYTES},
            )
    body = b"".join(chunks)
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest("the body is not UTF-8 text") from exc


async def _live_meeting(request: web.Request) -> Meeting:
    async with request.app[keys.DATABASE].session() as db:
        meeting = await meetings.get_meeting(db, request.match_info["meeting_id"])
    return meeting


def _require_live(meeting: Meeting) -> None:
    if meeting.status != meetings.LIVE:
        raise Conflict(
            "the meeting is {status}, not live", params={"status": Phrase(meeting.status)}
        )


def _require_floor(principal: Principal, meeting: Meeting) -> None:
    if principal.village_id != meeting.village_id or floor_holder(meeting) != principal.id:
        raise Forbidden("you do not hold the floor")


def _require_publisher_role(principal: Principal) -> None:
    if principal.role not in ("committee", "member"):
        raise Forbidden("only the village committee, or the member holding the floor, may publish")


def _ice_links(request: web.Request) -> list[str]:
    links = []
    for server in request.app[keys.SETTINGS].media_config().ice_servers:
        urls = server.urls if isinstance(server.urls, list) else [server.urls]
        for url in urls:
            link = f'<{url}>; rel="ice-server"'
            if server.username:
                link += f'; username="{server.username}"; credential="{server.credential}"'
                link += '; credential-type="password"'
            links.append(link)
    return links


def _created(request: web.Request, kind: str, meeting: Meeting, session: PeerSession):
    location = f"/{kind}/{meeting.id}/{session.id}"
    response = web.Response(
        status=201,
        body=session.answer_sdp.encode(),
        content_type=SDP,
        headers={
            **CORS_HEADERS,
            "Location": location,
            "ETag": session.etag,
            "Accept-Patch": SDPFRAG,
        },
    )
    for link in _ice_links(request):
        response.headers.add("Link", link)
    return response


def client_key(request: web.Request) -> str | None:
    """The address pending sessions are counted by: IPv4 as is, IPv6 by its /64.

    One IPv6 host is handed a whole /64 and may pick a new address per request.
    ``request.remote`` is already the client's own address behind a trusted proxy.
    """
    remote = request.remote
    try:
        address = ipaddress.ip_address(remote or "")
    except ValueError:
        return remote  # a Unix socket or an unusual transport: as given
    if address.version == 6:
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def _too_many(request: web.Request, exc: TooManyPending) -> Exception:
    logger.info(
        "%s %s refused (%s): %s",
        request.method,
        request.path,
        client_key(request) if exc.per_client else "all clients",
        exc,
    )
    error = RateLimited if exc.per_client else Busy
    return error(str(exc), retry_after=exc.retry_after)


def _check_pending(request: web.Request, *, publisher: bool = False) -> None:
    """Refuse a client over its limit before any work (database, body, SDP) is done."""
    try:
        request.app[keys.MEDIA].pending.check(client_key(request), publisher=publisher)
    except TooManyPending as exc:
        raise _too_many(request, exc) from exc


async def _start(request, kind, meeting, start) -> PeerSession:
    offer = await _read_body(request, SDP)
    try:
        session = await start(str(meeting.id), offer, client=client_key(request))
    except TooManyPending as exc:  # the check at the top, made again now it counts
        raise _too_many(request, exc) from exc
    except CodecMismatch as exc:
        logger.info("%s meeting %s: codec mismatch: %s", kind, meeting.id, exc)
        raise UnsupportedCodec(
            "the offer lacks the meeting's video codec: {detail}", params={"detail": str(exc)}
        ) from exc
    except InvalidOffer as exc:
        logger.info("%s meeting %s: bad offer: %s", kind, meeting.id, exc)
        raise BadRequest(
            "the SDP offer cannot be used: {detail}", params={"detail": str(exc)}
        ) from exc
    except FloorStopped as exc:
        logger.info("%s meeting %s: %s", kind, meeting.id, exc)
        raise Forbidden("you do not hold the floor") from exc
    logger.info("%s meeting %s: %s session %s created", kind, meeting.id, session.role, session.id)
    return session


async def _negotiate(request, kind, meeting, start) -> web.Response:
    return _created(request, kind, meeting, await _start(request, kind, meeting, start))


@routes.post("/whip/{meeting_id}")
async def whip_publish(request: web.Request) -> web.Response:
    _check_pending(request, publisher=True)
    principal = await require_principal(request)
    _require_publisher_role(principal)
    meeting = await _live_meeting(request)
    hub: MediaHub = request.app[keys.MEDIA]
    if principal.is_committee:
        check_can_run(principal, meeting)
        _require_live(meeting)
        # recorded once it is on the air (the archive hears the media hub's room events)
        return await _negotiate(request, "whip", meeting, hub.publish)
    # a member: only their own voice, only while they hold the floor
    check_can_watch(principal, meeting)
    _require_live(meeting)
    _require_floor(principal, meeting)

    async def publish_floor(room_id: str, offer: str, client: str | None) -> PeerSession:
        return await hub.publish_floor(room_id, offer, owner=principal.id, client=client)

    session = await _start(request, "whip", meeting, publish_floor)
    # The floor may have been taken back while we negotiated. Whoever takes it
    # back commits first and then calls hub.stop_floor: a call during the
    # negotiation refuses it (FloorStopped above), a later one finds this
    # session, and one before it is seen by this second look.
    meeting = await _live_meeting(request)
    if meeting.status != meetings.LIVE or floor_holder(meeting) != principal.id:
        await session.close()
        raise Forbidden("you do not hold the floor")
    return _created(request, "whip", meeting, session)


@routes.post("/whep/{meeting_id}")
async def whep_subscribe(request: web.Request) -> web.Response:
    _check_pending(request)
    principal = await principal_of(request)
    meeting = await _live_meeting(request)
    check_can_watch(principal, meeting)
    _require_live(meeting)
    hub: MediaHub = request.app[keys.MEDIA]
    session = await _start(request, "whep", meeting, hub.subscribe)
    if principal is not None and principal.is_committee:  # not counted as a viewer
        request.app[keys.LIVE].committee_watching(pk(meeting), session)
    return _created(request, "whep", meeting, session)


def _session(request: web.Request, roles: tuple[str, ...]) -> PeerSession:
    hub: MediaHub = request.app[keys.MEDIA]
    try:
        session = hub.session(request.match_info["meeting_id"], request.match_info["session_id"])
    except SessionNotFound as exc:
        raise NotFound("no such session (it ended or never existed)") from exc
    if session.role not in roles:
        raise NotFound("no such session (it ended or never existed)")
    return session


async def _whip_session(request: web.Request) -> PeerSession:
    """A WHIP session, for the committee or for the member who opened it (the floor)."""
    principal = await require_principal(request)
    _require_publisher_role(principal)
    session = _session(request, WHIP_ROLES)
    if principal.is_committee or (session.role == "floor" and session.owner == principal.id):
        return session
    raise Forbidden("this is not your session")


async def _patch(request: web.Request, session: PeerSession) -> web.Response:
    if_match = request.headers.get("If-Match")
    if if_match not in (None, "*", session.etag):
        raise web.HTTPPreconditionFailed(headers=CORS_HEADERS)
    fragment = await _read_body(request, SDPFRAG)
    try:
        await session.add_trickle(fragment)
    except IceRestartUnsupported as exc:
        raise Unprocessable("ICE restart is not supported: publish again instead") from exc
    except InvalidTrickle as exc:
        raise BadRequest(
            "the trickle fragment cannot be used: {detail}", params={"detail": str(exc)}
        ) from exc
    return web.Response(status=204, headers=CORS_HEADERS)


async def _delete(session: PeerSession) -> web.Response:
    logger.info(
        "%s session %s of room %s closed by the client", session.role, session.id, session.room_id
    )
    await session.close()
    return web.Response(status=200, headers=CORS_HEADERS)


@routes.patch("/whip/{meeting_id}/{session_id}")
async def whip_patch(request: web.Request) -> web.Response:
    return await _patch(request, await _whip_session(request))


@routes.delete("/whip/{meeting_id}/{session_id}")
async def whip_delete(request: web.Request) -> web.Response:
    return await _delete(await _whip_session(request))


@routes.patch("/whep/{meeting_id}/{session_id}")
async def whep_patch(request: web.Request) -> web.Response:
    return await _patch(request, _session(request, ("viewer",)))


@routes.delete("/whep/{meeting_id}/{session_id}")
async def whep_delete(request: web.Request) -> web.Response:
    return await _delete(_session(request, ("viewer",)))


@routes.route("OPTIONS", "/whip/{tail:.*}")
@routes.route("OPTIONS", "/whep/{tail:.*}")
async def preflight(request: web.Request) -> web.Response:
    return web.Response(status=204, headers={**CORS_HEADERS, "Accept-Post": SDP})
