"""The JSON API as an outside client uses it: login, meetings, errors in the contract's shape."""

from __future__ import annotations

from .support.api import PASSWORD, auth, error_code


async def test_login_returns_token_user_and_cookie(client, clerk_token):
    response = await client.post("/api/login", json={"username": "clerk", "password": PASSWORD})
    body = await response.json()
    assert response.status == 200
    assert body["user"]["username"] == "clerk" and isinstance(body["user"]["id"], int)
    assert body["token"]
    assert "cunhui_session" in response.cookies


async def test_wrong_password_and_unknown_user_get_the_same_401(client, clerk_token):
    wrong = await client.post("/api/login", json={"username": "clerk", "password": "nope"})
    unknown = await client.post("/api/login", json={"username": "ghost", "password": "nope"})
    assert wrong.status == unknown.status == 401
    assert (await wrong.json()) == (await unknown.json())


async def test_create_get_start_end_meeting(client, clerk_token):
    response = await client.post(
        "/api/meetings",
        json={
            "title": "2026年第四季度村民会议",
            "starts_at": "2026-12-01T09:00:00+08:00",
            "agenda": [{"title": "修村道", "description": "预算 12 万元"}, {"title": "低保名单"}],
        },
        headers=auth(clerk_token),
    )
    assert response.status == 201
    created = await response.json()
    assert created["status"] == "scheduled"
    assert created["code"].isdigit() and len(created["code"]) == 9
    assert created["join_url"].endswith(f"/m/{created['code']}")
    assert [a["title"] for a in created["agenda"]] == ["修村道", "低保名单"]
    assert all(isinstance(a["id"], int) for a in created["agenda"])
    assert created["allow_guests"] is False

    got = await (
        await client.get(f"/api/meetings/{created['id']}", headers=auth(clerk_token))
    ).json()
    assert got["title"] == "2026年第四季度村民会议"
    assert got["starts_at"].startswith("2026-12-01T01:00:00")

    listed = await (await client.get("/api/meetings", headers=auth(clerk_token))).json()
    assert [m["id"] for m in listed["meetings"]] == [created["id"]]

    start = await client.post(f"/api/meetings/{created['id']}/start", headers=auth(clerk_token))
    assert (await start.json())["status"] == "live"
    again = await client.post(f"/api/meetings/{created['id']}/start", headers=auth(clerk_token))
    assert again.status == 200  # the host reconnecting may press start again
    end = await client.post(f"/api/meetings/{created['id']}/end", headers=auth(clerk_token))
    assert (await end.json())["status"] == "ended"
    restart = await client.post(f"/api/meetings/{created['id']}/start", headers=auth(clerk_token))
    assert restart.status == 409 and await error_code(restart) == "conflict"


async def test_ending_a_meeting_that_never_started_is_a_conflict(client, clerk_token):
    created = await (
        await client.post("/api/meetings", json={"title": "t"}, headers=auth(clerk_token))
    ).json()
    response = await client.post(f"/api/meetings/{created['id']}/end", headers=auth(clerk_token))
    assert response.status == 409 and await error_code(response) == "conflict"


async def test_committee_only_routes_refuse_anonymous_and_bad_tokens(client, clerk_token):
    anonymous = await client.post("/api/meetings", json={"title": "x"})
    assert anonymous.status == 401 and await error_code(anonymous) == "unauthorized"
    forged = await client.post(
        "/api/meetings", json={"title": "x"}, headers=auth(clerk_token[:-4] + "AAAA")
    )
    assert forged.status == 401 and await error_code(forged) == "unauthorized"
    scheme = await client.post(
        "/api/meetings", json={"title": "x"}, headers={"Authorization": "Basic abc"}
    )
    assert scheme.status == 401


async def test_members_only_meeting_is_hidden_from_anonymous_callers(client, clerk_token):
    created = await (
        await client.post("/api/meetings", json={"title": "t"}, headers=auth(clerk_token))
    ).json()
    response = await client.get(f"/api/meetings/{created['id']}")
    assert response.status == 401
    listed = await (await client.get("/api/meetings")).json()
    assert listed["meetings"] == []


async def test_bad_meeting_bodies_are_400_with_reasons(client, clerk_token):
    for body in (
        {},
        {"title": ""},
        {"title": "x" * 201},
        {"title": "t", "agenda": "not a list"},
        {"title": "t", "agenda": [{"description": "no title"}]},
        {"title": "t", "starts_at": "tomorrow"},
        {"title": "t", "starts_at": "2026-12-01T09:00:00"},
        {"title": "t", "allow_guests": "yes"},
    ):
        response = await client.post("/api/meetings", json=body, headers=auth(clerk_token))
        assert response.status == 400, body
        assert await error_code(response) == "bad_request"
    response = await client.post(
        "/api/meetings",
        data="{not json",
        headers={**auth(clerk_token), "Content-Type": "application/json"},
    )
    assert response.status == 400 and await error_code(response) == "bad_request"


async def test_unknown_ids_of_any_form_are_404(client, clerk_token):
    for path in (
        "/api/meetings/999",
        "/api/meetings/abc",
        "/api/meetings/-1",
        "/api/meetings/99999999999999999999999",
        "/api/nothing-here",
    ):
        response = await client.get(path, headers=auth(clerk_token))
        assert response.status == 404, path
        assert await error_code(response) == "not_found"


async def test_oversized_json_body_is_413(client, clerk_token):
    response = await client.post(
        "/api/meetings",
        data='{"title": "' + "x" * 300_000 + '"}',
        headers={**auth(clerk_token), "Content-Type": "application/json"},
    )
    assert response.status == 413 and await error_code(response) == "too_large"


async def test_cookie_session_refuses_cross_site_posts(client, clerk_token):
    await client.post("/api/login", json={"username": "clerk", "password": PASSWORD})
    same = await client.post(
        "/api/meetings",
        json={"title": "t"},
        headers={"Origin": f"http://{client.host}:{client.port}"},
    )
    assert same.status == 201
    cross = await client.post(
        "/api/meetings", json={"title": "t"}, headers={"Origin": "https://evil.example"}
    )
    assert cross.status == 403 and await error_code(cross) == "forbidden"


async def test_healthz(client):
    response = await client.get("/healthz")
    assert response.status == 200
    assert (await response.json())["ok"] is True


async def test_unknown_meeting_code_gets_a_friendly_page(client):
    response = await client.get("/m/123456789", headers={"Accept-Language": "zh-CN"})
    assert response.status == 404
    page = await response.text()
    assert "没有这个会议" in page and "123456789" in page


async def test_pages_escape_user_text(client, clerk_token):
    response = await client.post(
        "/api/meetings",
        json={
            "title": "<script>alert(1)</script>",
            "allow_guests": True,
            "agenda": [{"title": "<img src=x onerror=alert(2)>"}],
        },
        headers=auth(clerk_token),
    )
    meeting = await response.json()
    page = await (await client.get(f"/m/{meeting['code']}")).text()
    assert "<script>alert(1)</script>" not in page
    assert "<img src=x onerror" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page or "\\u003cscript\\u003e" in page


async def test_password_guessing_is_locked_out(client, clerk_token):
    for _ in range(10):
        wrong = await client.post("/api/login", json={"username": "clerk", "password": "guess"})
        assert wrong.status == 401
    locked = await client.post("/api/login", json={"username": "clerk", "password": PASSWORD})
    assert locked.status == 429 and await error_code(locked) == "rate_limited"


async def _wrong_login_from(client, forwarded_for: str, username: str = "someone") -> int:
    """A wrong password, from the address a proxy names: the answer's status."""
    response = await client.post(
        "/api/login",
        json={"username": username, "password": "x"},
        headers={"X-Forwarded-For": forwarded_for},
    )
    return response.status


async def _lock_out_address(client, forwarded_for: str) -> None:
    """Wrong passwords for as many different accounts: only the address can be locked."""
    from server.http.api import LOGIN_LIMITS

    for i in range(LOGIN_LIMITS["address"].count):
        assert await _wrong_login_from(client, forwarded_for, f"nobody{i}") == 401


async def test_lockouts_key_on_the_client_behind_a_trusted_proxy(aiohttp_client, settings):
    """Behind nginx, one villager's wrong guesses must not lock out the whole village."""
    from dataclasses import replace

    from server.app import create_app

    client = await aiohttp_client(create_app(replace(settings, trusted_proxies=("127.0.0.1",))))
    await _lock_out_address(client, "127.0.0.5")
    assert await _wrong_login_from(client, "127.0.0.5") == 429
    # another phone behind the same proxy is not locked out
    assert await _wrong_login_from(client, "127.0.0.6") == 401


async def test_forwarded_headers_from_untrusted_peers_are_ignored(client):
    """Without TRUSTED_PROXIES a caller cannot dodge the lockout by naming another address."""
    await _lock_out_address(client, "127.0.0.5")
    assert await _wrong_login_from(client, "127.0.0.6") == 429
