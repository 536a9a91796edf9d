"""Shared fixtures: a real app on SQLite (or PostgreSQL), with media on loopback only."""

from __future__ import annotations

import pytest

from media.aiortc_hooks import restrict_host_addresses
from server.app import create_app
from server.keys import DATABASE
from server.services import accounts
from server.settings import Settings

PASSWORD = "correct horse battery"


@pytest.fixture(autouse=True)
def loopback_ice():
    """Every aiortc peer in every test offers only 127.0.0.1 (MEDIA-NOTES: loopback only)."""
    restrict_host_addresses(["127.0.0.1"])
    yield
    restrict_host_addresses(["127.0.0.1"])


@pytest.fixture
def settings(tmp_path) -> Settings:
    env = {
        "DATA_DIR": str(tmp_path / "data"),
        "RECORDINGS_DIR": str(tmp_path / "recordings"),
        "SECRET_KEY": "test-secret-key",
        # MEDIA-NOTES: keep ICE on loopback; no STUN server.
        "ICE_HOST_ADDRESSES": "127.0.0.1",
        "ICE_SERVERS": "",
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
    async with client.app[DATABASE].session() as db:
        await accounts.create_user(db, "clerk", PASSWORD)
    response = await client.post("/api/login", json={"username": "clerk", "password": PASSWORD})
    assert response.status == 200
    # Tests call with an explicit Bearer token; keep the jar free of the session
    # cookie so that "anonymous" requests really are anonymous.
    client.session.cookie_jar.clear()
    return (await response.json())["token"]


async def app_with_clerk(aiohttp_client, settings: Settings, **overrides):
    """The app with some settings changed, and a logged-in clerk: (client, token)."""
    from dataclasses import replace

    client = await aiohttp_client(create_app(replace(settings, **overrides)))
    async with client.app[DATABASE].session() as db:
        await accounts.create_user(db, "clerk", PASSWORD)
    login = await client.post("/api/login", json={"username": "clerk", "password": PASSWORD})
    assert login.status == 200
    client.session.cookie_jar.clear()
    return client, (await login.json())["token"]


def auth(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


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
