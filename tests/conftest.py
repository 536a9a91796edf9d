"""Shared fixtures: a real app on SQLite (or PostgreSQL), with media on loopback only.

Plain helpers (clients, peers, servers) live in ``tests/support``; the fixtures built
on them are here.
"""

from __future__ import annotations

import pytest

from media import install_aiortc_patches
from media.aiortc_hooks import restrict_host_addresses
from server.app import create_app
from server.keys import DATABASE
from server.services import accounts
from server.settings import Settings
from server.store import Database

from .support.api import PASSWORD, auth, login_clerk, server_env
from .support.browser import require_browser_sandbox
from .support.databases import fresh_database
from .support.realtime import Room


@pytest.fixture(autouse=True, scope="session")
def aiortc_patches():
    """Peers built without the app (tests/support/peers.py) receive encoded frames too."""
    install_aiortc_patches()


@pytest.fixture(autouse=True)
def loopback_ice():
    """Every aiortc peer in every test offers only 127.0.0.1 (MEDIA-NOTES: loopback only)."""
    restrict_host_addresses(["127.0.0.1"])
    yield
    restrict_host_addresses(["127.0.0.1"])


@pytest.fixture
def settings(tmp_path) -> Settings:
    env = {
        **server_env(tmp_path),
        # every test client is 127.0.0.1: a test's twenty viewers are twenty users
        # (tests/test_attack_media.py checks the per-address limit itself)
        "MEDIA_PENDING_PER_ADDRESS": "64",
    }
    return Settings.from_env(env)


@pytest.fixture
async def client(aiohttp_client, settings):
    return await aiohttp_client(create_app(settings))


@pytest.fixture
async def clerk_token(client) -> str:
    """A committee account, logged in over the API."""
    return await login_clerk(client)


@pytest.fixture
async def live_meeting(client, clerk_token) -> dict:
    response = await client.post(
        "/api/meetings",
        json={"title": "村民会议", "agenda": [{"title": "修路"}], "allow_guests": True},
        headers=auth(clerk_token),
    )
    assert response.status == 201
    meeting = await response.json()
    response = await client.post(f"/api/meetings/{meeting['id']}/start", headers=auth(clerk_token))
    assert response.status == 200
    return await response.json()


@pytest.fixture
async def room_of(client):
    """``room_of(meeting)``: a :class:`Room` of that meeting, closed after the test."""
    rooms = []

    def make(meeting):
        rooms.append(Room(client, meeting))
        return rooms[-1]

    yield make
    for r in rooms:
        await r.close()


@pytest.fixture
async def pg_database():
    """A migrated :class:`Database` on a fresh PostgreSQL database of its own."""
    async with fresh_database() as url:
        database = Database(url)
        try:
            await database.migrate()
            yield database
        finally:
            await database.close()


@pytest.fixture
async def server(aiohttp_server, settings):
    """The app on a real port for Chromium (browser tests only), with the clerk's account."""
    require_browser_sandbox()
    app = create_app(settings)
    srv = await aiohttp_server(app, host="127.0.0.1")
    async with app[DATABASE].session() as db:
        await accounts.create_user(db, "clerk", PASSWORD)
    return srv
