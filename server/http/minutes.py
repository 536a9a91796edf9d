"""The minutes of a meeting: ``/api/meetings/{id}/minutes.md`` and ``.html``.

Who may read them is who may watch the meeting, as for its timeline: the
committee and members of its village, and guests where the meeting allows them
(``meeting_to_watch``). The names of those who joined remotely are the
committee's record, as on the timeline; everyone else gets their number.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import cast

import aiohttp_jinja2
import segno
from aiohttp import web

from .. import keys
from ..services import minutes as minutes_service
from ..services import minutes_md
from ..services.access import is_host
from .api import base_url, meeting_to_watch
from .auth import principal_of
from .pages import base_context
from .reports import gate, verdict

routes = web.RouteTableDef()


async def _gather(request: web.Request) -> minutes_service.Minutes:
    """The minutes' content, read in a report slot (reports.py): in bounded chunks,
    with the audit shared with whoever asks for the same meeting meanwhile."""
    principal = await principal_of(request)
    async with request.app[keys.DATABASE].session() as db:
        meeting = await meeting_to_watch(request, db)
    own_committee = is_host(principal, meeting)
    checked = await verdict(request, meeting)
    async with gate(request).slot():
        async with request.app[keys.DATABASE].session() as db:
            return await minutes_service.gather(
                db, meeting, attendance_names=own_committee, verdict=checked
            )


def _gettext(request: web.Request) -> Callable[..., str]:
    """The templates' ``_()`` (jinja2's new-style gettext, the request's language) for Python.

    It takes a template context: an empty template's, with HTML autoescaping off,
    since the Markdown renderer escapes user text for Markdown itself.
    """
    env = aiohttp_jinja2.get_env(request.app)
    # installed by app.py (install_gettext_callables): jinja2 types its globals as objects
    gettext = cast("Callable[..., object]", env.globals["gettext"])
    context = env.from_string("").new_context()
    context.eval_ctx.autoescape = False

    def translate(message: str, **values: object) -> str:
        return str(gettext(context, message, **values))

    return translate


@routes.get("/api/meetings/{id}/minutes.md")
async def minutes_markdown(request: web.Request) -> web.Response:
    """The minutes as Markdown text, to download (user text escaped, never rendered by us)."""
    found = await _gather(request)
    text = await asyncio.to_thread(  # a long meeting's text is CPU work: not on the loop
        minutes_md.render,
        found,
        _gettext(request),
        audit_url=f"{base_url(request)}/meetings/{found.meeting_id}/audit",
    )
    return web.Response(
        text=text,
        content_type="text/markdown",
        charset="utf-8",
        headers={
            "Content-Disposition": f'inline; filename="minutes-{found.code}.md"',
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-store",
        },
    )


@routes.get("/api/meetings/{id}/minutes.html")
async def minutes_page(request: web.Request) -> web.Response:
    """The minutes as a printable page (A4), in the reader's language."""
    found = await _gather(request)
    context = await base_context(request)
    context.update(
        minutes=found,
        labels=minutes_service.LABELS,
        clock=minutes_service.clock,
        local_date_time=minutes_service.local_date_time,
        # segno's SVG holds only the QR's modules: no user text reaches the markup
        digest_qr=segno.make(found.audit.digest or "-", error="m").svg_inline(
            border=2, omitsize=True
        ),
    )
    # rendered in a thread (the locale travels with the copied context)
    html = await asyncio.to_thread(aiohttp_jinja2.render_string, "minutes.html", request, context)
    return web.Response(
        text=html, content_type="text/html", charset="utf-8", headers={"Cache-Control": "no-store"}
    )
