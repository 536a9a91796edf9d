"""Server-rendered pages (jinja2). The browser does the rest over the JSON API and socket.io."""

from __future__ import annotations

import io
from collections.abc import Awaitable, Callable
from datetime import datetime
from urllib.parse import quote, urlsplit

import aiohttp_jinja2
import segno
from aiohttp import web
from aiohttp.typedefs import Handler
from sqlmodel.ext.asyncio.session import AsyncSession

from .. import keys
from ..errors import CunhuiError
from ..i18n import LOCALE_COOKIE, LOCALES, current_locale, pick_locale, reset_locale, set_locale
from ..services import meetings, members, replays
from ..services import minutes as minutes_service
from ..services.access import check_can_watch
from ..services.tokens import Principal
from ..store import Meeting, Member, Village, pk
from .api import base_url, meeting_json, meeting_to_run, meeting_to_watch, village_of
from .auth import principal_of
from .reports import verdict as checked_now

routes = web.RouteTableDef()

#: finds the URL's meeting if the caller may see the page (api.meeting_to_run, meeting_to_watch)
MeetingFinder = Callable[[web.Request, AsyncSession], Awaitable[Meeting]]


def village_time(iso: str | None) -> str:
    """An API time ("2026-12-01T01:00:00+00:00") on the village's clock: "2026-12-01 09:00".

    The one rule for times on the pages (the minutes' ``local_date_time``; the
    browser's web/static/lib/format.js shows the same zone, VILLAGE_TIME_ZONE).
    """
    if not iso:
        return ""
    try:
        value = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return iso
    return minutes_service.local_date_time(value)


@web.middleware
async def locale_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    token = set_locale(
        pick_locale(request.cookies.get(LOCALE_COOKIE), request.headers.get("Accept-Language"))
    )
    try:
        return await handler(request)
    finally:
        reset_locale(token)


async def base_context(request: web.Request) -> dict:
    principal = await principal_of(request)
    return {
        "user": principal.as_dict() if principal else None,
        "lang": current_locale(),
        "html_lang": "zh-CN" if current_locale() == "zh_CN" else "en",
        "path": request.path_qs,
    }


def _login_redirect(request: web.Request) -> web.HTTPFound:
    return web.HTTPFound(f"/login?next={quote(request.path_qs)}")


#: characters a URL may carry as they are; anything else in a local path is %-encoded
_URL_SAFE = "/?#&=%+:@!$'()*,;~-._"


def local_path(target: str | None, default: str = "/") -> str:
    r"""``target`` if it is a path on this site, else ``default``: every redirect to a
    user-given URL (``?next=``) goes through here.

    Browsers drop tabs and newlines from URLs and read ``\`` as ``/``, so ``/\t/evil``,
    ``/\evil`` and ``//evil`` all leave the site: any control character or backslash,
    a scheme or a host, and we fall back to ``default``.
    """
    if not target or not target.startswith("/") or target.startswith("//"):
        return default
    if "\\" in target or any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in target):
        return default
    if any(c.isspace() for c in target):  # Unicode spaces: no path of ours has them
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return default
    return quote(target, safe=_URL_SAFE)  # non-ASCII: a header holds only ASCII


@routes.get("/")
async def home(request: web.Request) -> web.Response:
    context = await base_context(request)
    async with request.app[keys.DATABASE].session() as db:
        found = await meetings.list_meetings(db, village_id=village_of(await principal_of(request)))
        views = [meeting_json(request, await meetings.view(db, m)) for m in found]
    context["invite_invalid"] = request.query.get("invite") == "invalid"
    context["live"] = [m for m in views if m["status"] == meetings.LIVE]
    context["upcoming"] = [m for m in views if m["status"] == meetings.SCHEDULED]
    context["past"] = [m for m in views if m["status"] in (meetings.ENDED, meetings.CANCELLED)][:30]
    return aiohttp_jinja2.render_template("home.html", request, context)


@routes.get("/login")
async def login_page(request: web.Request) -> web.Response:
    context = await base_context(request)
    context["next"] = local_path(request.query.get("next"))
    return aiohttp_jinja2.render_template("login.html", request, context)


@routes.get("/meetings/new")
async def new_meeting_page(request: web.Request) -> web.Response:
    context = await base_context(request)
    _require_committee_page(request, context)
    return aiohttp_jinja2.render_template("new_meeting.html", request, context)


def _require_committee_page(request: web.Request, context: dict) -> None:
    if context["user"] is None or context["user"]["role"] != "committee":
        raise _login_redirect(request)


async def _committee(request: web.Request, context: dict) -> Principal:
    """The committee user asking for a page (others are sent to log in)."""
    _require_committee_page(request, context)
    principal = await principal_of(request)
    if principal is None:  # (base_context saw one: cached on the request)
        raise _login_redirect(request)
    return principal


@routes.get("/meetings/{id}/edit")
async def edit_meeting_page(request: web.Request) -> web.Response:
    """The schedule form, filled in: a meeting can be edited until it starts."""
    return await _meeting_page(request, meeting_to_run, "new_meeting.html", committee=True)


@routes.get("/meetings/{id}/host")
async def host_page(request: web.Request) -> web.Response:
    """The committee's control page: camera, start and end, the room's tools."""
    return await _meeting_page(request, meeting_to_run, "host.html", committee=True)


@routes.get("/members")
async def members_page(request: web.Request) -> web.Response:
    """The committee's member roll: add, edit, import, re-issue invites, remove."""
    context = await base_context(request)
    village, roll = await _committee_roll(request, context)
    context["village"] = village
    context["members"] = [members.member_dict(m) for m in roll]
    return aiohttp_jinja2.render_template("members.html", request, context)


async def _committee_roll(request: web.Request, context: dict) -> tuple[str, list[Member]]:
    """The committee's village name and current roll (others are sent to log in)."""
    village_id = (await _committee(request, context)).home_village_id
    async with request.app[keys.DATABASE].session() as db:
        village = await db.get(Village, village_id)
        roll = await members.list_members(db, village_id)
    if village is None:
        raise web.HTTPNotFound()
    return village.name, roll


@routes.get("/members/cards")
async def member_cards_page(request: web.Request) -> web.Response:
    """Printable member cards: each with the member's personal QR code (invite link) and PIN.

    ``?ids=3,5`` prints only those members (after adding them or re-issuing an invite).
    """
    context = await base_context(request)
    village, roll = await _committee_roll(request, context)
    wanted = {int(i) for i in request.query.get("ids", "").split(",") if i.strip().isdigit()}
    tokens = request.app[keys.TOKENS]
    base = base_url(request)
    cards = []
    for member in roll:
        if wanted and member.id not in wanted:
            continue
        invite_url = f"{base}/i/{members.invite_for(tokens, member)}"
        cards.append(
            {
                **members.member_dict(member),
                "pin": member.pin,
                # segno's SVG holds only the QR's modules: no user text reaches the markup
                "qr_svg": segno.make(invite_url, error="m").svg_inline(border=2, omitsize=True),
            }
        )
    context.update(village=village, cards=cards, site=base)
    response = aiohttp_jinja2.render_template("member_cards.html", request, context)
    response.headers["Cache-Control"] = "no-store"  # the cards are sign-in credentials
    return response


@routes.get("/m/{code}")
async def watch_page(request: web.Request) -> web.Response:
    context = await base_context(request)
    principal = await principal_of(request)
    async with request.app[keys.DATABASE].session() as db:
        meeting = await meetings.find_by_code(db, request.match_info["code"])
        if meeting is None:
            context["code"] = request.match_info["code"]
            return aiohttp_jinja2.render_template("not_found.html", request, context, status=404)
        try:
            check_can_watch(principal, meeting)
            context["can_watch"] = True
        except CunhuiError:
            context["can_watch"] = False
        watched = meeting_json(request, await meetings.view(db, meeting))
        # the page learns the audience from its room's join; a count in the HTML would give
        # it another ETag at every join and leave, and the phone no 304 on its next visit
        watched.pop("viewers", None)
        context["meeting"] = watched
    return aiohttp_jinja2.render_template("watch.html", request, context)


@routes.get("/m/{code}/qr.svg")
async def meeting_qr(request: web.Request) -> web.Response:
    """The QR code of a meeting's join link (the code is public: it is on the notice board)."""
    async with request.app[keys.DATABASE].session() as db:
        meeting = await meetings.find_by_code(db, request.match_info["code"])
    if meeting is None:
        raise web.HTTPNotFound()
    join_url = f"{base_url(request)}/m/{meeting.code}"
    svg = io.BytesIO()
    segno.make(join_url, error="m").save(svg, kind="svg", scale=10, border=2)
    return web.Response(
        body=svg.getvalue(),
        content_type="image/svg+xml",
        headers={"Cache-Control": "public, max-age=86400"},
    )


@routes.get("/meetings/{id}/notice")
async def notice_page(request: web.Request) -> web.Response:
    """The A4 notice for the village notice board: print it, or share the page."""
    return await _meeting_page(request, meeting_to_watch, "notice.html")


async def _meeting_context(
    request: web.Request, find: MeetingFinder, committee: bool = False
) -> tuple[dict, Meeting]:
    """The context of a page about the URL's meeting; any refusal is a plain 404 page.

    ``committee``: the page is the committee's (anyone else is sent to log in first).
    """
    context = await base_context(request)
    if committee:
        _require_committee_page(request, context)
    async with request.app[keys.DATABASE].session() as db:
        try:
            meeting = await find(request, db)
        except CunhuiError:
            raise web.HTTPNotFound() from None
        context["meeting"] = meeting_json(request, await meetings.view(db, meeting))
    return context, meeting


async def _meeting_page(
    request: web.Request, find: MeetingFinder, template: str, committee: bool = False
) -> web.Response:
    """Render a page about the URL's meeting (see ``_meeting_context``)."""
    context, _meeting = await _meeting_context(request, find, committee)
    return aiohttp_jinja2.render_template(template, request, context)


@routes.get("/meetings/{id}/replay")
async def replay_page(request: web.Request) -> web.Response:
    """Replay: the recording with agenda chapters, the timeline in step, downloads.

    The page reads the recording, timeline and votes over the JSON API.
    """
    return await _meeting_page(request, meeting_to_watch, "replay.html")


#: recording statuses of a meeting's parts, most telling first, for the past meetings' list
_RECORDING_SUMMARY = ("recording", "processing", "failed", "interrupted", "ready", "expired")


@routes.get("/meetings/past")
async def past_meetings_page(request: web.Request) -> web.Response:
    """Ended meetings the caller may see, searched by title and date (as ``GET /api/meetings``)."""
    context = await base_context(request)
    form = {name: request.query.get(name, "").strip()[:200] for name in ("q", "from", "to")}
    context["form"] = form
    context["bad_dates"] = False
    context["found"] = []
    try:
        filters = meetings.parse_list_filter({**form, "status": meetings.ENDED})
    except CunhuiError:
        context["bad_dates"] = True
        return aiohttp_jinja2.render_template("past_meetings.html", request, context, status=400)
    async with request.app[keys.DATABASE].session() as db:
        found = await meetings.list_meetings(
            db, village_id=village_of(await principal_of(request)), filters=filters
        )
        for meeting in found[:100]:
            statuses = {p.status for p in await replays.parts(db, pk(meeting))}
            summary = next((s for s in _RECORDING_SUMMARY if s in statuses), None)
            context["found"].append(
                {
                    **meeting_json(request, await meetings.view(db, meeting)),
                    "recording": summary,
                }
            )
    context["searched"] = any(form.values())
    context["more"] = len(found) > 100
    return aiohttp_jinja2.render_template("past_meetings.html", request, context)


@routes.get("/meetings/{id}/audit")
async def audit_page(request: web.Request) -> web.Response:
    """The record's digest as text and QR code (print it for the notice board), checked now."""
    context, meeting = await _meeting_context(request, meeting_to_watch)
    # off the loop, shared with concurrent askers, within the report gate (reports.py)
    verdict = await checked_now(request, meeting)
    context["verdict"] = verdict.as_dict()
    context["digest_qr"] = segno.make(verdict.digest or "-", error="m").svg_inline(
        border=2, omitsize=True
    )
    return aiohttp_jinja2.render_template("audit.html", request, context)


@routes.get("/favicon.ico")
async def favicon(request: web.Request) -> web.Response:
    """Browsers ask for /favicon.ico where a page names none (base.html names the SVG)."""
    raise web.HTTPMovedPermanently("/static/favicon.svg")


@routes.get("/lang/{locale}")
async def switch_language(request: web.Request) -> web.Response:
    locale = request.match_info["locale"]
    if locale not in LOCALES:
        raise web.HTTPNotFound()
    response = web.HTTPFound(local_path(request.query.get("next")))
    response.set_cookie(LOCALE_COOKIE, locale, max_age=365 * 24 * 3600, samesite="Lax", path="/")
    raise response
