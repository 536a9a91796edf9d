"""The member roll and joining: invites, meeting code + PIN, guests."""

from __future__ import annotations

import logging

from aiohttp import web

from .. import keys
from ..errors import BadRequest, NotFound, TooLarge, Unauthorized
from ..services import identity, meetings, members, roll_import
from ..services.ratelimit import GuessLimiter, Limit, address_key
from ..services.tokens import member_principal_id
from ..store import pk
from .api import base_url, read_json
from .auth import require_committee, set_session_cookie

logger = logging.getLogger(__name__)
routes = web.RouteTableDef()

#: Wrong meeting codes or PINs (a guessed 6-digit PIN is a stolen vote), counted before
#: the lookup, on the normalised code (docs/api.md, "Join limits"):
#: - per address and meeting code: 5 in 10 minutes (one phone's typos or guesses);
#: - per address, any meeting: 20 in 10 minutes;
#: - per meeting code, from anywhere: 100 in 10 minutes, a ceiling against guessing
#:   from many addresses at once (villagers' own typos stay far below it).
PIN_LIMITS = {
    "address+code": Limit(5, 10 * 60),
    "address": Limit(20, 10 * 60),
    "code": Limit(100, 10 * 60),
}
PIN_GUESSES: web.AppKey[GuessLimiter] = web.AppKey("pin_guesses")
#: A PIN is valid with the code of any meeting of its village, so the ceiling against
#: guessing from many addresses is also kept per village: 100 wrong in 10 minutes.
PIN_VILLAGE_LIMIT = Limit(100, 10 * 60)
PIN_VILLAGE_GUESSES: web.AppKey[GuessLimiter] = web.AppKey("pin_village_guesses")
#: guest sign-ins per address: Settings.guest_joins_per_address in 10 minutes
GUEST_JOINS: web.AppKey[GuessLimiter] = web.AppKey("guest_joins")
GUEST_WINDOW = 10 * 60


def setup(app: web.Application) -> None:
    app[PIN_GUESSES] = GuessLimiter(PIN_LIMITS, refusal="too many wrong meeting codes or PINs")
    app[PIN_VILLAGE_GUESSES] = GuessLimiter(
        {"village": PIN_VILLAGE_LIMIT}, refusal="too many wrong PINs for this village's meetings"
    )
    app[GUEST_JOINS] = GuessLimiter(
        {"address": Limit(app[keys.SETTINGS].guest_joins_per_address, GUEST_WINDOW)},
        refusal="too many guest sign-ins from this address",
    )
    app.router.add_routes(routes)


@routes.post("/api/members")
async def add_member(request: web.Request) -> web.Response:
    principal = await require_committee(request)
    body = await read_json(request)
    async with request.app[keys.DATABASE].session() as db:
        added = await members.add_member(
            db, request.app[keys.TOKENS], principal.home_village_id, body
        )
    logger.info(
        "member %s added to village %s by %s", added.member.id, principal.village_id, principal.id
    )
    return web.json_response(added.as_dict(base_url(request)), status=201)


MAX_CSV_BYTES = 1024 * 1024


@routes.post("/api/members/import")
async def import_members(request: web.Request) -> web.Response:
    """A CSV of the roll (UTF-8 or GBK): all rows added, or none with a per-row report."""
    principal = await require_committee(request)
    if request.content_length is not None and request.content_length > MAX_CSV_BYTES:
        raise TooLarge("the file is larger than {kb} KB", params={"kb": MAX_CSV_BYTES // 1024})
    data = await request.content.read(MAX_CSV_BYTES + 1)
    if len(data) > MAX_CSV_BYTES:
        raise TooLarge("the file is larger than {kb} KB", params={"kb": MAX_CSV_BYTES // 1024})
    async with request.app[keys.DATABASE].session() as db:
        added = await roll_import.import_roll(
            db, request.app[keys.TOKENS], principal.home_village_id, data
        )
    logger.info(
        "%d members imported into village %s by %s", len(added), principal.village_id, principal.id
    )
    base = base_url(request)
    return web.json_response({"added": [a.as_dict(base) for a in added]}, status=201)


@routes.get("/api/members")
async def list_members(request: web.Request) -> web.Response:
    principal = await require_committee(request)
    async with request.app[keys.DATABASE].session() as db:
        roll = await members.list_members(db, principal.home_village_id)
    return web.json_response({"members": [members.member_dict(m) for m in roll]})


@routes.patch("/api/members/{id}")
async def edit_member(request: web.Request) -> web.Response:
    principal = await require_committee(request)
    body = await read_json(request)
    async with request.app[keys.DATABASE].session() as db:
        member = await members.village_member(
            db, principal.home_village_id, request.match_info["id"]
        )
        await members.edit_member(db, member, body)
    logger.info("member %s edited by %s", member.id, principal.id)
    return web.json_response(members.member_dict(member))


@routes.delete("/api/members/{id}")
async def remove_member(request: web.Request) -> web.Response:
    principal = await require_committee(request)
    async with request.app[keys.DATABASE].session() as db:
        member = await members.village_member(
            db, principal.home_village_id, request.match_info["id"]
        )
        await members.remove_member(db, member)
    logger.info("member %s removed by %s", member.id, principal.id)
    # committed: their open sockets (in every process) close now
    await request.app[keys.LIVE].revoke(member_principal_id(pk(member)), "removed")
    return web.json_response({"ok": True})


@routes.post("/api/members/{id}/invite")
async def reissue_invite(request: web.Request) -> web.Response:
    principal = await require_committee(request)
    async with request.app[keys.DATABASE].session() as db:
        member = await members.village_member(
            db, principal.home_village_id, request.match_info["id"]
        )
        renewed = await members.reissue_invite(db, request.app[keys.TOKENS], member)
    logger.info("invite of member %s re-issued by %s", member.id, principal.id)
    # the old sign-ins are revoked (committed): their open sockets close now
    await request.app[keys.LIVE].revoke(member_principal_id(pk(member)), "invite_reissued")
    return web.json_response(renewed.as_dict(base_url(request)))


@routes.post("/api/join")
async def join(request: web.Request) -> web.Response:
    body = await read_json(request)
    tokens = request.app[keys.TOKENS]
    if "invite" in body:
        if not isinstance(body["invite"], str):
            raise BadRequest("invite must be text")
        # a signed invite cannot be guessed: no counting needed
        async with request.app[keys.DATABASE].session() as db:
            member = await identity.join_with_invite(db, tokens, body["invite"])
    else:
        code = body.get("meeting_code")
        if not isinstance(code, str) or not code.strip():
            raise BadRequest(
                "send an invite, a meeting_code with a pin, or a meeting_code with a name"
            )
        code = identity.normalize_digits(code)
        if "pin" in body:
            member = await _join_with_pin(request, code, body["pin"])
        else:
            return await _join_as_guest(request, code, body.get("name"))
    token = identity.member_token(tokens, member)
    participant = {"id": member_principal_id(pk(member)), "name": member.name, "role": "member"}
    return _joined(request, token, participant, identity.MEMBER)


async def _join_with_pin(request: web.Request, code: str, pin: object):
    """The member of the code's meeting with this PIN; counted before anything is looked up."""
    address = address_key(request.remote)
    guesses = {"address": address}
    if code.isdigit() and len(code) == meetings.CODE_DIGITS:
        # a code that cannot exist gets no counters of its own: only the address's
        guesses.update({"address+code": f"{address} {code}", "code": code})
    with request.app[PIN_GUESSES].counting_failures(guesses):
        if not isinstance(pin, str) or len(guesses) == 1:
            raise Unauthorized("wrong meeting code or PIN")
        async with request.app[keys.DATABASE].session() as db:
            meeting = await meetings.find_by_code(db, code)
            if meeting is None:
                raise Unauthorized("wrong meeting code or PIN")
            # reserved before the PIN is compared, like the others; kept only if wrong
            with request.app[PIN_VILLAGE_GUESSES].counting_failures(
                {"village": str(meeting.village_id)}, tell_tries_left=False
            ):
                return await identity.join_with_pin(db, meeting, identity.normalize_digits(pin))


async def _join_as_guest(request: web.Request, code: str, name: object) -> web.Response:
    """A guest's token, for a meeting that admits guests; counted per address beforehand."""
    tokens = request.app[keys.TOKENS]
    with request.app[GUEST_JOINS].counting({"address": address_key(request.remote)}):
        async with request.app[keys.DATABASE].session() as db:
            meeting = await meetings.find_by_code(db, code)
        if meeting is None:
            raise NotFound("no meeting with the code {code}", params={"code": code})
        token, guest = identity.guest_token(tokens, meeting, name)
    return _joined(request, token, guest.as_dict(), identity.GUEST)


@routes.get("/api/meeting-codes/{code}")
async def meeting_code_exists(request: web.Request) -> web.Response:
    """Whether a meeting has this code (as the watch page ``/m/{code}`` tells anyone):
    the PIN form tells an unknown code apart from a wrong PIN, with a 200 either way."""
    code = identity.normalize_digits(request.match_info["code"])
    found = None
    if code.isdigit() and len(code) == meetings.CODE_DIGITS:
        async with request.app[keys.DATABASE].session() as db:
            found = await meetings.find_by_code(db, code)
    return web.json_response({"code": code, "exists": found is not None})


def _joined(request: web.Request, token: str, participant: dict, kind: str) -> web.Response:
    response = web.json_response({"token": token, "participant": participant})
    set_session_cookie(response, request, token, kind)
    return response


@routes.get("/i/{invite}")
async def open_invite(request: web.Request) -> web.Response:
    """A member's personal link or QR code: sign this phone in and go to the meeting.

    Straight to the watch page of the village's meeting that is live now, if exactly
    one is; else to the home page, which lists the member's meetings.
    """
    tokens = request.app[keys.TOKENS]
    async with request.app[keys.DATABASE].session() as db:
        try:
            member = await identity.join_with_invite(db, tokens, request.match_info["invite"])
        except Unauthorized:
            raise web.HTTPFound("/?invite=invalid") from None
        live = await meetings.list_meetings(
            db, village_id=member.village_id, filters=meetings.ListFilter(statuses=(meetings.LIVE,))
        )
    response = web.HTTPFound(f"/m/{live[0].code}" if len(live) == 1 else "/")
    set_session_cookie(response, request, identity.member_token(tokens, member), identity.MEMBER)
    raise response
