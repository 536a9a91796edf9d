"""The JSON API: login and meetings (docs/api.md lists every route)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging

from aiohttp import web

from .. import keys
from ..errors import BadRequest, Conflict, NotFound
from ..live import Change, hidden_from, status_changed
from ..services import accounts, identity, meetings, notices, payload, suggestions, timeline, votes
from ..services.access import check_can_run, check_can_watch
from ..services.passwords import PasswordPool
from ..services.ratelimit import GuessLimiter, Limit, address_key
from ..services.timeline import Recorded
from ..store import Meeting, pk
from .auth import COOKIE, principal_of, require_committee, require_principal, set_session_cookie
from .reports import REPORTS, ReportGate, gate, verdict

logger = logging.getLogger(__name__)
routes = web.RouteTableDef()

#: Wrong passwords, counted before the hash is checked (docs/api.md, "Login limits"):
#: - per address and account: 10 in 15 minutes (the guesser's own limit; applies to all);
#: - per address, any accounts: 30 in 15 minutes;
#: - per account, from anywhere: 30 in an hour; then only the account's known devices
#:   (browsers with a device cookie from an earlier login) may still log in with the
#:   right password, so a villager cannot lock the clerk out from their own phone.
#: A known device passes the address limits too (a hall's Wi-Fi or a carrier's NAT is
#: one address for the clerk and every villager): it is limited as a device instead.
LOGIN_LIMITS = {
    "address+account": Limit(10, 15 * 60),
    "address": Limit(30, 15 * 60),
    "account": Limit(30, 60 * 60),
    "device": Limit(10, 15 * 60),
}
#: the limits a known device passes (its attempts are still counted there)
KNOWN_DEVICE_PASSES = ("account", "address", "address+account")
LOGIN_GUESSES: web.AppKey[GuessLimiter] = web.AppKey("login_guesses")
#: suggestions per participant: SUGGESTIONS_PER_HOUR an hour, at most 5 in a minute
SUGGESTIONS_PER_HOUR = 30
SUGGESTION_LIMIT: web.AppKey[GuessLimiter] = web.AppKey("suggestion_limit")
#: argon2 in Settings.hash_workers threads, Settings.hash_queue checks waiting (else 503)
PASSWORDS: web.AppKey[PasswordPool] = web.AppKey("passwords")
#: the known-device cookie: sent only to the login route, kept a year
DEVICE_COOKIE = "cunhui_device"


def setup(app: web.Application) -> None:
    app[LOGIN_GUESSES] = GuessLimiter(LOGIN_LIMITS, refusal="too many wrong passwords")
    app[SUGGESTION_LIMIT] = GuessLimiter(
        {"hour": Limit(SUGGESTIONS_PER_HOUR, 3600), "minute": Limit(5, 60)},
        refusal="too many suggestions",
    )
    app.cleanup_ctx.append(_password_pool)
    app[REPORTS] = ReportGate()
    app.router.add_routes(routes)


async def _password_pool(app: web.Application):
    settings = app[keys.SETTINGS]
    app[PASSWORDS] = pool = PasswordPool(settings.hash_workers, settings.hash_queue)
    yield
    pool.close()


async def read_json(request: web.Request) -> dict:
    """The request's JSON object, checked once for what no handler can take (payload.py)."""
    body = payload.loads(await request.read(), "the body")
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    return body


def base_url(request: web.Request) -> str:
    return request.app[keys.SETTINGS].base_url(str(request.url.origin()))


def meeting_json(request: web.Request, view: meetings.MeetingView) -> dict:
    data = view.as_dict()
    data["join_url"] = f"{base_url(request)}/m/{view.meeting.code}"
    media = request.app[keys.MEDIA].stats(str(view.meeting.id))
    data["publishing"] = media.publishing
    data["viewers"] = request.app[keys.LIVE].viewer_count(pk(view.meeting))  # not the committee's
    return data


async def meeting_to_watch(request: web.Request, db) -> Meeting:
    """The meeting of the URL, if the caller may watch it."""
    principal = await principal_of(request)
    meeting = await meetings.get_meeting(db, request.match_info["id"])
    check_can_watch(principal, meeting)
    return meeting


async def meeting_to_run(request: web.Request, db) -> Meeting:
    """The meeting of the URL, if the caller is the committee of its village."""
    principal = await require_committee(request)
    meeting = await meetings.get_meeting(db, request.match_info["id"])
    check_can_run(principal, meeting)
    return meeting


def village_of(principal) -> int | None:
    """The village whose meetings the caller sees; None: only meetings open to guests."""
    if principal is not None and principal.role in ("committee", "member"):
        return principal.village_id
    return None


@routes.post("/api/login")
async def login(request: web.Request) -> web.Response:
    body = await read_json(request)
    username, password = body.get("username"), body.get("password")
    if not isinstance(username, str) or not isinstance(password, str):
        raise BadRequest("username and password are required")
    username = username.strip()
    if len(username) > accounts.MAX_USERNAME_LENGTH:
        raise BadRequest(
            "the username has at most {max_username_length} characters",
            params={"max_username_length": accounts.MAX_USERNAME_LENGTH},
        )
    tokens = request.app[keys.TOKENS]
    address, account = address_key(request.remote), username.lower()
    known = identity.is_known_device(tokens, request.cookies.get(DEVICE_COOKIE), username)
    # counted before the first await: a guess still being hashed already counts
    guesses = {"address+account": f"{address} {account}", "address": address, "account": account}
    if known:  # a stolen device cookie still gets only the device's own 10 guesses
        guesses["device"] = hashlib.sha256(request.cookies[DEVICE_COOKIE].encode()).hexdigest()
    with request.app[LOGIN_GUESSES].counting_failures(
        guesses,
        exempt=KNOWN_DEVICE_PASSES if known else (),
    ):
        async with request.app[keys.DATABASE].session() as db:
            user = await accounts.authenticate(db, request.app[PASSWORDS], username, password)
    token = identity.committee_token(tokens, pk(user))
    logger.info("user %s logged in%s", user.id, " (known device)" if known else "")
    response = web.json_response(
        {"token": token, "user": {"id": user.id, "username": user.username}}
    )
    set_session_cookie(response, request, token)
    response.set_cookie(
        DEVICE_COOKIE,
        identity.device_token(tokens, pk(user), user.username),
        max_age=identity.DEVICE_SECONDS,
        httponly=True,
        samesite="Strict",
        secure=request.secure,
        path="/api/login",
    )
    return response


@routes.post("/api/logout")
async def logout(request: web.Request) -> web.Response:
    response = web.json_response({"ok": True})
    response.del_cookie(COOKIE, path="/")
    return response


@routes.get("/api/me")
async def me(request: web.Request) -> web.Response:
    principal = await principal_of(request)
    return web.json_response({"you": principal.as_dict() if principal else None})


@routes.post("/api/meetings")
async def create_meeting(request: web.Request) -> web.Response:
    principal = await require_committee(request)
    fields = meetings.parse_fields(await read_json(request), partial=False)
    async with request.app[keys.DATABASE].session() as db:
        view = await meetings.create_meeting(
            db, fields, created_by=principal.user_id, village_id=principal.village_id
        )
    logger.info("meeting %s created by %s", view.meeting.id, principal.id)
    return web.json_response(meeting_json(request, view), status=201)


def query_int(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    """A whole-number query parameter; above ``high`` it is ``high`` (e.g. a page's size)."""
    raw = request.query.get(name, "").strip()
    if not raw:
        return default
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 12:
        raise BadRequest(
            "{name} must be a whole number from {low} to {high}",
            params={"name": name, "low": low, "high": high},
        )
    return max(low, min(int(raw), high))


@routes.get("/api/meetings/{id}/timeline")
async def meeting_timeline(request: web.Request) -> web.Response:
    """A page of the timeline: ``after`` (a seq, default 0), ``limit`` (default and at most
    timeline.MAX_PAGE); ``more`` says whether to ask again with ``after=next_after``."""
    after = query_int(request, "after", 0, 0, payload.MAX_INT)
    limit = query_int(request, "limit", timeline.MAX_PAGE, 1, timeline.MAX_PAGE)
    principal = await principal_of(request)
    async with request.app[keys.DATABASE].session() as db:
        meeting = await meeting_to_watch(request, db)
    async with gate(request).slot():  # no database connection is held while waiting
        async with request.app[keys.DATABASE].session() as db:
            # who came and went, and who voted, are for the committee's record
            page = await timeline.timeline_page(
                db, meeting, after=after, limit=limit, hidden=hidden_from(principal, meeting)
            )
        body = await asyncio.to_thread(json.dumps, page.as_dict())
    return web.Response(text=body, content_type="application/json")


async def _listed(request: web.Request, name: str, read, present=None) -> web.Response:
    """``{name: [...]}``: what ``read(db, meeting_id)`` finds in a meeting the caller may watch."""
    async with request.app[keys.DATABASE].session() as db:
        meeting = await meeting_to_watch(request, db)
        found = await read(db, pk(meeting))
    return web.json_response({name: [present(x) for x in found] if present else found})


@routes.get("/api/meetings/{id}/votes")
async def meeting_votes(request: web.Request) -> web.Response:
    """The meeting's votes, each with its result once closed."""
    return await _listed(request, "votes", votes.meeting_votes, votes.vote_dict)


@routes.get("/api/meetings/{id}/votes/{vote_id}/receipts")
async def vote_receipts(request: web.Request) -> web.Response:
    """The published receipts of a closed vote: voters check theirs is counted as cast."""
    async with request.app[keys.DATABASE].session() as db:
        meeting = await meeting_to_watch(request, db)
        try:
            vote_id = int(request.match_info["vote_id"])
        except ValueError:
            raise NotFound("no such vote") from None
        vote = await votes.get_vote(db, pk(meeting), vote_id)
        if vote.status != "closed":
            raise Conflict("receipts are published when the vote closes")
        listed = await votes.receipts(db, vote)
    return web.json_response({"vote_id": vote.id, "receipts": listed})


@routes.get("/api/meetings/{id}/audit")
async def meeting_audit(request: web.Request) -> web.Response:
    """The audit chain recomputed now: its digest, and the first entry that does not match."""
    async with request.app[keys.DATABASE].session() as db:
        meeting = await meeting_to_watch(request, db)
    checked = await verdict(request, meeting)  # off the loop, shared, within the report gate
    return web.json_response({"meeting_id": meeting.id, **checked.as_dict()})


@routes.get("/api/meetings/{id}/proxies")
async def list_proxies(request: web.Request) -> web.Response:
    return await _listed(request, "proxies", votes.proxies_of)


async def record_and_broadcast(request: web.Request, change: Change) -> Recorded | None:
    """A change to the URL's meeting, in its turn: committed and broadcast in seq order.

    Credentials are checked first (a bad token is 401 before any turn); the
    committee's requests go before participants' waiting changes. The meeting's
    lock exists only while held or awaited, so a flood of requests naming meetings
    that do not exist leaves nothing behind.
    """
    # the error middleware has answered 404 already for an {id} that is not a row id
    meeting_id = int(request.match_info["id"])
    # Every route that changes the room needs a caller: no anonymous request may stand
    # in the meeting's queue (nor count towards the participants' "room is busy").
    principal = await require_principal(request)
    # as a socket event's turn: a participant's change over HTTP is shed like theirs
    live = request.app[keys.LIVE]
    return await live.record_and_broadcast(
        meeting_id, change, by=principal, shed_at=live.max_queued
    )


async def _stored_change(request: web.Request, find, change, status: int = 200) -> web.Response:
    """A change made over HTTP that is also a room event: store it, tell the room, answer."""
    body = await read_json(request)

    async def stored(db) -> Recorded:
        meeting = await find(request, db)
        return await change(db, meeting, await principal_of(request), body)

    recorded = await record_and_broadcast(request, stored)
    assert recorded is not None, "these changes always store an event"
    return web.json_response(recorded.data, status=status)


@routes.post("/api/meetings/{id}/proxies")
async def register_proxy(request: web.Request) -> web.Response:
    """委托投票: the committee records who votes for an absent member in this meeting."""
    return await _stored_change(request, meeting_to_run, votes.register_proxy, status=201)


@routes.get("/api/meetings/{id}/suggestions")
async def list_suggestions(request: web.Request) -> web.Response:
    return await _listed(request, "suggestions", suggestions.listed, suggestions.suggestion_dict)


@routes.post("/api/meetings/{id}/suggestions")
async def post_suggestion(request: web.Request) -> web.Response:
    """A member's suggestion, before or during the meeting (stored, then broadcast)."""
    principal = await require_principal(request)
    # each one is a stored, broadcast event: a member writes a few, not a flood
    with request.app[SUGGESTION_LIMIT].counting({"hour": principal.id, "minute": principal.id}):
        return await _stored_change(request, meeting_to_watch, suggestions.post, status=201)


@routes.post("/api/meetings/{id}/suggestions/{suggestion_id}/answer")
async def answer_suggestion(request: web.Request) -> web.Response:
    try:
        suggestion_id = int(request.match_info["suggestion_id"])
    except ValueError:
        raise NotFound("no such suggestion") from None

    async def answer(db, meeting, principal, body):
        return await suggestions.answer(db, meeting, principal, suggestion_id, body)

    return await _stored_change(request, meeting_to_run, answer)


@routes.patch("/api/meetings/{id}")
async def edit_meeting(request: web.Request) -> web.Response:
    fields = meetings.parse_fields(await read_json(request), partial=True)
    async with request.app[keys.DATABASE].session() as db:
        view = await meetings.update_meeting(db, await meeting_to_run(request, db), fields)
    return web.json_response(meeting_json(request, view))


@routes.post("/api/meetings/{id}/cancel")
async def cancel_meeting(request: web.Request) -> web.Response:
    body = await read_json(request)
    view: meetings.MeetingView | None = None

    async def cancel(db) -> Recorded | None:
        nonlocal view
        meeting = await meeting_to_run(request, db)
        seq = await meetings.cancel_meeting(db, meeting, body.get("reason"))
        view = await meetings.view(db, meeting)
        logger.info("meeting %s cancelled", meeting.id)
        return status_changed(meeting, seq, reason=meeting.cancel_reason)

    await record_and_broadcast(request, cancel)
    assert view is not None, "cancel ran (or raised)"
    return web.json_response(meeting_json(request, view))


@routes.get("/api/meetings/{id}/invite.ics")
async def calendar_invite(request: web.Request) -> web.Response:
    async with request.app[keys.DATABASE].session() as db:
        meeting = await meeting_to_watch(request, db)
        view = await meetings.view(db, meeting)
    body = notices.ics(view, f"{base_url(request)}/m/{meeting.code}")
    return web.Response(
        body=body,
        content_type="text/calendar",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="meeting-{meeting.code}.ics"'},
    )


@routes.get("/api/meetings")
async def list_meetings(request: web.Request) -> web.Response:
    """Optionally narrowed by ``q`` (title), ``from``/``to`` (YYYY-MM-DD) and ``status``."""
    principal = await principal_of(request)
    filters = meetings.parse_list_filter(request.query)
    async with request.app[keys.DATABASE].session() as db:
        found = await meetings.list_meetings(db, village_id=village_of(principal), filters=filters)
        views = [await meetings.view(db, m) for m in found]
    return web.json_response({"meetings": [meeting_json(request, v) for v in views]})


@routes.get("/api/meetings/{id}")
async def get_meeting(request: web.Request) -> web.Response:
    async with request.app[keys.DATABASE].session() as db:
        view = await meetings.view(db, await meeting_to_watch(request, db))
    return web.json_response(meeting_json(request, view))


async def _change_status(
    request: web.Request, step, done: str
) -> tuple[meetings.MeetingView, bool]:
    """Start or end the URL's meeting: its view, and whether its status changed."""
    view: meetings.MeetingView | None = None

    async def change(db) -> Recorded | None:
        nonlocal view
        meeting, seq = await step(db, await meeting_to_run(request, db))
        view = await meetings.view(db, meeting)
        if seq is not None:
            logger.info("meeting %s %s", meeting.id, done)
        return status_changed(meeting, seq)

    changed = await record_and_broadcast(request, change) is not None
    assert view is not None, "the change ran (or raised)"
    return view, changed


@routes.post("/api/meetings/{id}/start")
async def start_meeting(request: web.Request) -> web.Response:
    view, _ = await _change_status(request, meetings.start_meeting, "is live")
    return web.json_response(meeting_json(request, view))


@routes.post("/api/meetings/{id}/end")
async def end_meeting(request: web.Request) -> web.Response:
    # leaves still in their grace (ATTENDANCE_LEAVE_GRACE) are recorded before the end:
    # an ended meeting records no attendance
    async with request.app[keys.DATABASE].session() as db:
        meeting_id = pk(await meeting_to_run(request, db))
    await request.app[keys.LIVE].attendance.leave_now(meeting_id, within=2.0)
    view, ended = await _change_status(request, meetings.end_meeting, "ended")
    if ended:
        meeting_id = pk(view.meeting)
        await request.app[keys.ARCHIVE].stop_recording(meeting_id)
        await request.app[keys.MEDIA].close_room(str(meeting_id))
        await request.app[keys.LIVE].meeting_ended(meeting_id)
    return web.json_response(meeting_json(request, view))


@routes.get("/api/meetings/{id}/media")
async def media_stats(request: web.Request) -> web.Response:
    """The meeting's live media counters (extension: for operators and benchmarks)."""
    async with request.app[keys.DATABASE].session() as db:
        meeting = await meeting_to_run(request, db)
    stats = request.app[keys.MEDIA].room_stats(str(meeting.id))
    return web.json_response(stats or {"publishing": False, "viewers": 0})
