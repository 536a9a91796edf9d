"""Two server processes' worth of apps share one Redis: a broadcast reaches both rooms."""

from __future__ import annotations

import secrets
from dataclasses import replace

import pytest

from server.app import create_app
from server.keys import DATABASE
from server.services import accounts

from .support.api import PASSWORD, auth
from .support.databases import REDIS_URL, redis_or_skip
from .support.realtime import Recorder


async def test_events_from_one_process_reach_clients_of_another(aiohttp_client, settings):
    redis_or_skip()
    shared = replace(
        settings, redis_url=REDIS_URL, redis_channel=f"cunhui-test-{secrets.token_hex(4)}"
    )
    a = await aiohttp_client(create_app(shared))  # same database, same secret: one deployment
    b = await aiohttp_client(create_app(shared))
    async with a.app[DATABASE].session() as db:
        await accounts.create_user(db, "clerk", PASSWORD)
    token = (
        await (await a.post("/api/login", json={"username": "clerk", "password": PASSWORD})).json()
    )["token"]
    a.session.cookie_jar.clear()
    meeting = await (
        await a.post(
            "/api/meetings", json={"title": "会", "allow_guests": True}, headers=auth(token)
        )
    ).json()
    on_b, on_a = Recorder(), Recorder()
    try:
        await on_b.connect(b)
        assert (await on_b.call("join", {"meeting_id": meeting["id"]}))["ok"]
        await on_a.connect(a, token)
        assert (await on_a.call("join", {"meeting_id": meeting["id"]}))["ok"]
        await a.post(f"/api/meetings/{meeting['id']}/start", headers=auth(token))
        assert (await on_b.wait_for("meeting:status"))["status"] == "live"
        assert (await on_a.call("chat:send", {"text": "两边都听得到吗"}))["ok"]
        assert (await on_b.wait_for("chat:message"))["text"] == "两边都听得到吗"
    finally:
        await on_a.close()
        await on_b.close()


async def test_an_unreachable_redis_stops_the_start(aiohttp_client, settings):
    with pytest.raises(RuntimeError, match="does not answer"):
        await aiohttp_client(create_app(replace(settings, redis_url="redis://127.0.0.1:1/0")))
