"""The HTTP API as a test uses it: the clerk's password, tokens, members, meetings, errors."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from server.app import create_app
from server.keys import DATABASE
from server.services import accounts
from server.settings import Settings

PASSWORD = "correct horse battery"


def auth(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def server_env(tmp_path: Path) -> dict[str, str]:
    """The settings every test server gets: its own folders, ICE on loopback, no STUN server."""
    return {
        "DATA_DIR": str(tmp_path / "data"),
        "RECORDINGS_DIR": str(tmp_path / "recordings"),
        "SECRET_KEY": "test-secret-key",
        # MEDIA-NOTES: keep ICE on loopback; no STUN server.
        "ICE_HOST_ADDRESSES": "127.0.0.1",
        "ICE_SERVERS": "",
        # a leave is recorded at once, as the tests of who came and went expect
        # (tests/test_attendance_grace.py and the link-cut test use the grace)
        "ATTENDANCE_LEAVE_GRACE": "0",
    }


async def login_clerk(client, username: str = "clerk", **user) -> str:
    """Create a committee account and log it in over the API: its token."""
    async with client.app[DATABASE].session() as db:
        await accounts.create_user(db, username, PASSWORD, **user)
    return await log_in(client, username)


async def log_in(client, username: str = "clerk") -> str:
    """Log an existing committee account in over the API: its token."""
    response = await client.post("/api/login", json={"username": username, "password": PASSWORD})
    assert response.status == 200
    # Tests call with an explicit Bearer token; keep the jar free of the session
    # cookie so that "anonymous" requests really are anonymous.
    client.session.cookie_jar.clear()
    return (await response.json())["token"]


async def app_with_clerk(aiohttp_client, settings: Settings, **overrides):
    """The app with some settings changed, and a logged-in clerk: (client, token)."""
    client = await aiohttp_client(create_app(replace(settings, **overrides)))
    return client, await login_clerk(client)


async def second_village_clerk(client) -> str:
    """The committee of another village (李家村): its token."""
    return await login_clerk(client, "other-clerk", village="李家村")


async def error_code(response) -> str:
    body = await response.json()
    # the contract's two fields; extensions (tries_left, retry_after, rows) may come too
    assert set(body) == {"error"} and {"code", "message"} <= set(body["error"]), body
    assert body["error"]["message"]
    return body["error"]["code"]


async def create_meeting(client, token, **extra) -> dict:
    response = await client.post(
        "/api/meetings", json={"title": "会", **extra}, headers=auth(token)
    )
    assert response.status == 201
    return await response.json()


async def start_meeting(client, clerk_token, **extra) -> dict:
    """A new meeting, started: the meeting as created."""
    meeting = await create_meeting(client, clerk_token, **extra)
    await client.post(f"/api/meetings/{meeting['id']}/start", headers=auth(clerk_token))
    return meeting


async def add_member(client, clerk_token, name: str, **fields) -> dict:
    """The clerk puts someone on the roll: the member as the API answers (with its invite)."""
    response = await client.post(
        "/api/members", json={"name": name, **fields}, headers=auth(clerk_token)
    )
    assert response.status == 201, await response.text()
    return await response.json()


async def join_by_invite(client, invite: str) -> dict:
    """A phone opens the member's invite link: the join answer (participant, token)."""
    response = await client.post("/api/join", json={"invite": invite})
    assert response.status == 200, await response.text()
    client.session.cookie_jar.clear()
    return await response.json()


async def member(client, clerk_token, name="村民") -> tuple[str, str]:
    """A member of the clerk's village: (participant id, token)."""
    added = await add_member(client, clerk_token, name)
    joined = await join_by_invite(client, added["invite"])
    return joined["participant"]["id"], joined["token"]


async def new_member(client, clerk_token, name: str) -> tuple[int, str]:
    """A member of the clerk's village and their token (joined by invite)."""
    added = await add_member(client, clerk_token, name)
    return added["id"], (await join_by_invite(client, added["invite"]))["token"]
